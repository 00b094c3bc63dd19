"""DistributedDataParallel with DST: two CPU processes on the gloo backend train the MNIST network
on different data; their discrete weights must stay bit-identical (DDP averages the discrete
weights' ordinary ``.grad`` like any weight's, and the optimizer uses rank 0's DST seed). The control
run under ``no_sync`` (no all-reduce) shows the check can fail."""

from __future__ import annotations

import contextlib
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gxnor_cuda import models
from gxnor_cuda.optim import DST, is_discrete
from gxnor_cuda.train import squared_hinge


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, reduce: bool, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        torch.manual_seed(rank)  # different initial weights: DDP broadcasts rank 0's
        net = torch.nn.parallel.DistributedDataParallel(models.mnist_net(True, 1, r=0.35, a=0.5))
        disc = [p for p in net.parameters() if is_discrete(p)]
        flt = [p for p in net.parameters() if not is_discrete(p)]
        opt = DST([{"params": disc}, {"params": flt, "base": "adam", "lr": 1e-3}], lr=0.05, base="normalized",
                  seed=100 + rank)  # different seeds: the optimizer takes rank 0's
        gen = torch.Generator().manual_seed(1000 + rank)  # each rank its own data
        for _ in range(3):
            x = torch.randn(16, 1, 28, 28, generator=gen)
            y = torch.randint(0, 10, (16,), generator=gen)
            opt.zero_grad()
            with contextlib.nullcontext() if reduce else net.no_sync():  # no_sync: DDP skips the all-reduce
                squared_hinge(net(x), y).backward()
            opt.step()
        assert all(p.grad is not None and p.grad.shape == p.shape for p in disc)  # .grad, reduced by DDP
        torch.save({"w": [p.detach().clone() for p in disc], "seed": opt.dst_seed}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _run(tmp_path, reduce: bool):
    out = str(tmp_path / ("on" if reduce else "off"))
    mp.start_processes(_worker, args=(2, _free_port(), reduce, out), nprocs=2, start_method="spawn")
    return [torch.load(f"{out}.{r}") for r in range(2)]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ranks_keep_identical_discrete_weights(tmp_path):
    a, b = _run(tmp_path, reduce=True)
    assert a["seed"] == b["seed"] == 100
    assert all(torch.equal(x, y) for x, y in zip(a["w"], b["w"], strict=True))
    c, d = _run(tmp_path, reduce=False)
    assert not all(torch.equal(x, y) for x, y in zip(c["w"], d["w"], strict=True)), \
        "without DDP's all-reduce the ranks should drift apart (the check would pass vacuously)"


def test_train_cli_under_torchrun_writes_once_and_resumes_on_one_process(tmp_path):
    """python -m torch.distributed.run ... gxnor_cuda.train: rank 0 alone writes the checkpoint, which
    then resumes in a single process (another world size)."""
    import subprocess
    import sys

    out = tmp_path / "run"
    common = ["-m", "gxnor_cuda.train", "--dataset", "digits", "--epochs", "2", "--no-float-twin", "--device",
              "cpu", "--threads", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                        str(_free_port()), *common], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("=== GXNOR training report ===") == 1, "only rank 0 reports"
    from gxnor_cuda.train import load_checkpoint

    ck = load_checkpoint(out / "checkpoint.pt", "cpu")
    assert ck["epoch"] == 2 and not any(k.startswith("module.") for k in ck["model"])
    r = subprocess.run([sys.executable, *common, "--resume", str(out / "checkpoint.pt")], capture_output=True,
                       text=True, timeout=600, env=env)
    assert r.returncode == 0 and "final epoch (2)" in r.stdout, r.stderr[-3000:]
