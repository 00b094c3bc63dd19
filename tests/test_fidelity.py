"""The paper's operating point: activation windows (N = 1 and multi-level), the recipes, the
validation split, the results CSV and the README table rendered from it, and the CIFAR-10 loader."""

from __future__ import annotations

import csv
import math
import pathlib
import warnings

import numpy as np
import pytest
import torch

import gxnor_cuda.train as T
from gxnor_cuda import data as D
from gxnor_cuda import models
from gxnor_cuda.nn import TernaryActivation, phi_levels, window_grad, windows_merge

from .helpers import parsed_train_args

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n_states", [1, 2, 3])
@pytest.mark.parametrize("window", ["rect", "tri", "bell"])
def test_multilevel_staircase_and_windows_reduce_to_the_ternary_case(n_states, window):
    r, a = 1.0, 0.5
    h = 2 ** (n_states - 1)
    x = torch.linspace(-2.5, 2.5, 5001, dtype=torch.float64)
    # jump k (to level k / h) at |x| = r k / h: the top level starts at r as in the ternary case
    want = torch.sign(x) * sum((x.abs() >= r * k / h).double() for k in range(1, h + 1)) / h
    assert torch.equal(phi_levels(x, r, n_states), want)
    # a window per jump, area = the jump's height: the surrogate integrates to the staircase's rise
    xs = torch.linspace(0, 6, 600001, dtype=torch.float64)
    area = float(window_grad(xs, r, a, window, n_states).sum() * (xs[1] - xs[0]))
    lost = 0.5 * math.erfc(r / h / (a / h) / math.sqrt(2)) / h if window == "bell" else 0.0  # tail below 0
    assert abs(area - (1.0 - lost)) < 2e-3
    if window == "rect":  # windows of half-width a / h, height 1 / (2a): they tile [r/h - a/h, r + a/h]
        g = window_grad(xs, r, a, window, n_states)
        inside = (xs > r / h - a / h + 1e-9) & (xs < r + a / h - 1e-9)
        assert torch.all(g[inside] >= 1 / (2 * a) - 1e-12)
    if n_states == 1:  # unchanged closed form of the ternary case
        d = (x.abs() - r).abs()
        closed = {"rect": (d <= a).double() / (2 * a), "tri": torch.clamp(1 - d / a, min=0) / a,
                  "bell": torch.exp(-0.5 * (d / a) ** 2) / (a * math.sqrt(2 * math.pi))}[window]
        torch.testing.assert_close(window_grad(x, r, a, window, 1), closed)


def test_binary_activation_is_sign_with_one_window():
    x = torch.linspace(-2, 2, 4001, dtype=torch.float64, requires_grad=True)
    y = TernaryActivation(1.0, 1.0, n_states=0)(x)
    assert torch.equal(y.detach(), torch.where(x.detach() >= 0, 1.0, -1.0).double())
    y.sum().backward()
    assert torch.equal(x.grad, (x.detach().abs() <= 1).double())  # the BNN straight-through window


def test_activation_backward_uses_its_levels():
    x = torch.tensor([0.3, 0.6, 0.9, 1.2], dtype=torch.float64, requires_grad=True)
    TernaryActivation(1.0, 0.5, n_states=2)(x).sum().backward()
    # jumps at 0.5 and 1, half-width 0.25, height 1/(2a) = 1 on [0.25, 1.25]
    assert torch.equal(x.grad, torch.ones(4, dtype=torch.float64))
    x.grad = None
    TernaryActivation(1.0, 0.5, n_states=1)(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("r, a, n, merge", [(1.0, 0.5, 1, False), (1.0, 1.0, 1, False), (0.35, 0.5, 1, True),
                                            (1.0, 0.5, 2, False), (1.0, 0.6, 2, True), (0.1, 5.0, 0, False)])
def test_merged_windows_warn(r, a, n, merge):
    assert windows_merge(r, a, n) == merge
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        TernaryActivation(r, a, n_states=n)
    assert any("clipped straight-through" in str(x.message) for x in w) == merge


def test_networks_wire_activation_states_and_bn_eps():
    net = models.mnist_net(True, 1, r=1.0, a=0.5, act_states=2, bn_eps=1e-4)
    acts = [m for m in net.modules() if isinstance(m, TernaryActivation)]
    assert len(acts) == 3 and all(m.n_states == 2 for m in acts)
    assert all(m.eps == 1e-4 for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    x = torch.randn(4, 1, 28, 28)
    h = net[:7](x)  # the 64C5 block's BatchNorm output, flattened: what the FC layer's phi sees
    levels = torch.unique(phi_levels(h, 1.0, 2))
    assert set(levels.tolist()) <= {-1.0, -0.5, 0.0, 0.5, 1.0}
    T.squared_hinge(net(x), torch.arange(4)).backward()
    fc = net[7]
    assert fc.weight.grad.abs().sum() > 0  # the multi-level activations pass a gradient


def test_recipes_fill_the_unset_options(tmp_path, monkeypatch):
    argv = ["--dataset", "mnist", "--recipe", "paper", "--val", "16", "--out", str(tmp_path)]
    a = parsed_train_args(argv, monkeypatch)
    got = {k: getattr(a, k) for k in ("epochs", "batch_size", "batch_final", "act_r", "act_a", "window", "base", "m",
                                      "bn", "bn_eps", "augment", "val")}
    assert got == {"epochs": 100, "batch_size": 1000, "batch_final": 8000, "act_r": 1.0, "act_a": 0.5,
                   "window": "rect", "base": "adam", "m": 3.0, "bn": "running", "bn_eps": 1e-4, "augment": 0, "val": 16}
    a = parsed_train_args(["--dataset", "mnist", "--out", str(tmp_path)], monkeypatch)
    assert (a.recipe, a.act_r, a.base, a.bn, a.bn_eps, a.val, a.augment) == ("fast", 0.35, "normalized",
                                                                             "recalibrate", 1e-5, 0, 1)
    a = parsed_train_args(["--dataset", "mnist", "--recipe", "paper", "--base", "sgd", "--act-r", "0.5", "--val", "8",
                "--out", str(tmp_path)], monkeypatch)
    assert (a.base, a.act_r, a.bn) == ("sgd", 0.5, "running")  # what the command line sets stays


def test_paper_recipe_selects_on_validation_and_records(tmp_path, capsys):
    rec = tmp_path / "runs.csv"
    argv = ["--dataset", "digits", "--recipe", "paper", "--epochs", "3", "--val", "300", "--no-float-twin",
            "--out", str(tmp_path / "r"), "--record", str(rec)]
    assert T.main(argv) == 0
    out = capsys.readouterr().out
    assert "recipe paper" in out and "1200 training images" in out and "at the epoch best on validation" in out
    assert "BatchNorm running (eps 0.0001)" in out and "8.2" in out.split("persistent training state: ")[1][:6]
    log = list(csv.DictReader(open(tmp_path / "r" / "log.csv")))
    assert len(log) == 3 and all(row["val_acc"] for row in log)
    best = max(log, key=lambda row: float(row["val_acc"]))
    rows = list(csv.DictReader(open(rec)))
    assert len(rows) == 1
    r = rows[0]
    assert r["recipe"] == "paper" and r["base"] == "adam" and r["bn"] == "running" and r["train_images"] == "1200"
    assert int(r["best_val_epoch"]) == int(best["epoch"])
    assert float(r["best_val_test"]) == round(float(best["test_acc"]) * 100, 2)
    assert float(r["final_test"]) == round(float(log[-1]["test_acc"]) * 100, 2)
    assert len(r["input_sparsity"].split("/")) == 2 and float(r["bytes_per_weight"]) > 8  # Adam: 2 floats


def test_selections():
    h = [{"epoch": 1, "test_acc": 0.9, "val_acc": 0.95}, {"epoch": 2, "test_acc": 0.97, "val_acc": 0.93},
         {"epoch": 3, "test_acc": 0.92, "val_acc": 0.94}]
    assert T.selections(h) == {"final": (3, 0.92), "best_test": (2, 0.97), "best_val": (1, 0.9)}


def test_readme_results_table_is_rendered_from_the_csv():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mnist_table", ROOT / "bench" / "mnist_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table = mod.render(ROOT / "bench" / "results" / "mnist_runs.csv")
    assert mod.readme_table(ROOT / "README.md") == table.strip(), (
        "README's MNIST table differs from the CSV: python bench/mnist_table.py --readme README.md")


def _write_cifar_bin(d: pathlib.Path, n: int, rng: np.random.Generator):
    d.mkdir(parents=True)
    want = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        pix = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        np.concatenate([labels[:, None], pix], axis=1).tofile(d / f"{name}.bin")
        want[name] = (pix.reshape(n, 3, 32, 32), labels)
    return want


def test_cifar10_binary_loader_and_a_few_vgg_steps(tmp_path, capsys):
    want = _write_cifar_bin(tmp_path / "cifar-10-batches-bin", 8, np.random.default_rng(0))
    (xs, ys), (xt, yt) = D.load("cifar10", str(tmp_path))
    assert xs.shape == (40, 3, 32, 32) and xt.shape == (8, 3, 32, 32)
    pix, lab = want["data_batch_2"]
    assert torch.equal(xs[8:16], torch.from_numpy(pix.astype(np.float32) / 127.5 - 1.0))  # R, G, B planes
    assert torch.equal(ys[8:16], torch.from_numpy(lab.astype(np.int64))) and torch.equal(
        yt, torch.from_numpy(want["test_batch"][1].astype(np.int64)))
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(D.DataError, match="data_batch_3.bin: expected records of 3073 bytes"):
        D.load("cifar10", str(tmp_path))
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").write_bytes(b"\x00" * 3073 * 8)
    # the paper's VGG-like net trains a few steps on it (paper recipe: 5k validation is too many here)
    assert T.main(["--dataset", "cifar10", "--data-dir", str(tmp_path), "--recipe", "paper", "--epochs", "1",
                   "--batch-size", "16", "--val", "8", "--no-float-twin", "--out", str(tmp_path / "run")]) == 0
    assert "recipe paper: dataset cifar10 (32 training images)" in capsys.readouterr().out


def test_cli_trains_with_multilevel_activations(tmp_path, capsys):
    assert T.main(["--dataset", "digits", "--epochs", "1", "--act-states", "2", "--no-float-twin",
                   "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "N = 1 (activations 2)" in out
    acc = float(out.split("test accuracy, final epoch (1): ")[1].split(" %")[0])
    assert acc > 30.0  # ten classes: chance is 10 %
    with pytest.raises(SystemExit):
        T.main(["--dataset", "digits", "--act-states", "8"])
    assert "--act-states: expected N in [0, 7], got 8" in capsys.readouterr().err
