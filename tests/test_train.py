"""The training CLI on the bundled 8x8 digits: report, resume bit-identical, clear errors."""

from __future__ import annotations

import gzip

import pytest
import torch

from gxnor_cuda import data as D
from gxnor_cuda.train import load_checkpoint, main, random_shift

from .helpers import parsed_train_args


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
    # augmentation draws from the checkpointed generator: the resumed run must still match
    common = ["--dataset", "digits", "--no-float-twin", "--lr", "0.03", "--epochs", "4", "--augment", "1",
              "--window", "tri", "--act-r", "0.8", "--batch-final", "400"]
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
    s = load_checkpoint(straight / "checkpoint.pt", "cpu")
    p = load_checkpoint(part / "checkpoint.pt", "cpu")
    for k, v in s["model"].items():
        assert torch.equal(v, p["model"][k]), k


def test_batch_grows_geometrically():
    from types import SimpleNamespace

    from gxnor_cuda.train import batch_at

    a = SimpleNamespace(batch_size=1000, batch_final=8000, epochs=4)
    assert [batch_at(a, e) for e in range(4)] == [1000, 2000, 4000, 8000]
    a.batch_final = 1000
    assert {batch_at(a, e) for e in range(4)} == {1000}


def test_mnist_full_runs_grow_the_batch_and_shift_by_default(tmp_path, monkeypatch):
    import gxnor_cuda.train as T

    seen = []
    for extra in ([], ["--quick"], ["--batch-final", "1000"]):
        a = parsed_train_args(["--dataset", "mnist", "--out", str(tmp_path), *extra], monkeypatch)
        seen.append((a.epochs, a.batch_size, a.batch_final, a.augment))
    assert seen == [(100, 1000, 8000, 1), (T.QUICK_EPOCHS, 1000, 4000, 0), (100, 1000, 1000, 1)]


def test_random_shift_translates_each_image():
    x = torch.randn(64, 2, 7, 9)
    s = 2
    y = random_shift(x, s, torch.Generator().manual_seed(0))
    xp = torch.nn.functional.pad(x, (s, s, s, s), value=float(x.min()))
    seen = set()
    for b in range(len(x)):
        hits = [(dy, dx) for dy in range(2 * s + 1) for dx in range(2 * s + 1)
                if torch.equal(xp[b, :, dy:dy + 7, dx:dx + 9], y[b])]
        assert len(hits) == 1, b
        seen.add(hits[0])
    assert len(seen) > 10  # the shifts vary per image
    assert random_shift(x, 0, torch.Generator()) is x


def test_bad_inputs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--dataset", "imagenet"])
    assert main(["--dataset", "cifar10", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no CIFAR-10 batches found" in err and "data_batch_1.bin" in err and "--data-dir" in err
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
    for flag, v, msg in (("--act-r", "0", "--act-r: expected a positive number, got 0.0"),
                         ("--act-a", "nan", "--act-a: expected a positive number, got nan"),
                         ("--augment", "-1", "--augment: expected a shift in pixels >= 0, got -1"),
                         ("--batch-final", "0", "--batch-final: expected a batch size >= 1, got 0")):
        with pytest.raises(SystemExit):
            main(["--dataset", "digits", flag, v])
        assert msg in capsys.readouterr().err
    ck = tmp_path / "other.pt"
    torch.save({"args_key": {"dataset": "mnist"}}, ck)
    assert main(["--dataset", "digits", "--out", str(tmp_path), "--resume", str(ck)]) == 2
    assert "incompatible" in capsys.readouterr().err


def test_checkpoint_and_cli_errors_are_clean(tmp_path, capsys):
    """Corrupt, empty and foreign checkpoints, a changed hyper-parameter, an unusable --out and labels out
    of range: exit 2 with a line naming the flag or file, nothing trained or overwritten."""
    out = tmp_path / "run"
    common = ["--dataset", "digits", "--epochs", "1", "--no-float-twin", "--out", str(out)]
    assert main(common) == 0
    ck = out / "checkpoint.pt"
    good = ck.read_bytes()
    assert load_checkpoint(ck, "cpu")["epoch"] == 1
    flipped = bytearray(good)
    for i in range(len(flipped) // 2, len(flipped) // 2 + 64):
        flipped[i] ^= 0xFF
    cases = [(bytes(flipped), "incompatible or unreadable"), (b"", "incompatible or unreadable"),
             (b"not a checkpoint", "incompatible or unreadable")]
    for content, msg in cases:
        bad = tmp_path / "bad.pt"
        bad.write_bytes(content)
        assert main([*common, "--resume", str(bad)]) == 2
        assert msg in capsys.readouterr().err
    assert main([*common, "--m", "2.0", "--resume", str(ck)]) == 2  # a changed --m is not silently kept
    assert "incompatible" in capsys.readouterr().err
    assert ck.read_bytes() == good, "a refused run must not overwrite the checkpoint"
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--out", str(afile)])
    assert "--out" in capsys.readouterr().err


def test_labels_out_of_range_are_refused(monkeypatch, tmp_path, capsys):
    import gxnor_cuda.train as T

    x = torch.randn(20, 1, 8, 8)
    monkeypatch.setattr(T.D, "load_digits", lambda: ((x, torch.full((20,), 200)), (x, torch.zeros(20).long())))
    assert T.main(["--dataset", "digits", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "labels: expected classes in [0, 10)" in capsys.readouterr().err
