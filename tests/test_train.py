"""The training CLI on the bundled 8x8 digits: report, resume bit-identical, clear errors."""

from __future__ import annotations

import gzip

import pytest
import torch

from gxnor_cuda import data as D
from gxnor_cuda.train import main


def test_digits_run_reports(tmp_path, capsys):
    assert main(["--dataset", "digits", "--epochs", "3", "--out", str(tmp_path), "--lr", "0.03"]) == 0
    out = capsys.readouterr().out
    for needle in ["test accuracy, final epoch (3)", "best epoch", "gated-XNOR event rate", "input sparsity",
                   "weight memory: packed", "2.00 bits/weight", "time per epoch: GXNOR"]:
        assert needle in out, needle
    acc = float(out.split("test accuracy, final epoch (3): ")[1].split(" %")[0])
    assert acc > 60.0  # 10 classes: chance is 10 %
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "curves.png").exists()


def test_resume_after_interruption(tmp_path, monkeypatch):
    common = ["--dataset", "digits", "--no-float-twin", "--lr", "0.03", "--epochs", "4"]
    straight = tmp_path / "s"
    assert main([*common, "--out", str(straight)]) == 0
    part = tmp_path / "p"
    import gxnor_cuda.train as T

    real = T.run_epoch
    calls = {"n": 0}

    def stop_after_two(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "run_epoch", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        main([*common, "--out", str(part)])
    monkeypatch.setattr(T, "run_epoch", real)
    assert main([*common, "--out", str(part), "--resume", str(part / "checkpoint.pt")]) == 0
    s = torch.load(straight / "checkpoint.pt", weights_only=False)
    p = torch.load(part / "checkpoint.pt", weights_only=False)
    for k, v in s["model"].items():
        assert torch.equal(v, p["model"][k]), k


def test_bad_inputs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--dataset", "imagenet"])
    assert main(["--dataset", "cifar10", "--out", str(tmp_path)]) == 2
    assert "cifar10: pass --data-dir" in capsys.readouterr().err
    bad = tmp_path / "mnist"
    bad.mkdir()
    for v in D.MNIST_FILES.values():
        with gzip.open(bad / f"{v}.gz", "wb") as f:
            f.write(b"\x00\x00\x08\x03" + b"\x00" * 20)
    assert main(["--dataset", "mnist", "--data-dir", str(bad), "--out", str(tmp_path)]) == 2
    assert "train-images-idx3-ubyte.gz: expected" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--n-states", "9"])
    assert "--n-states: expected N in [0, 7], got 9" in capsys.readouterr().err
    for bad_lf in ("0", "1.5", "nan"):
        with pytest.raises(SystemExit):
            main(["--dataset", "digits", "--lr-final", bad_lf])
        assert "--lr-final: expected a factor in (0, 1]" in capsys.readouterr().err
    ck = tmp_path / "other.pt"
    torch.save({"args_key": {"dataset": "mnist"}}, ck)
    assert main(["--dataset", "digits", "--out", str(tmp_path), "--resume", str(ck)]) == 2
    assert "incompatible" in capsys.readouterr().err
