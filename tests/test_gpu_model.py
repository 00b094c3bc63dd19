"""The SASS throughput model (bench/gpu_model.py) on compiled kernels: it finds the hot loop, counts
the pipes, and predicts less for a worse compile. A model, checked for consistency, not accuracy."""

from __future__ import annotations

import pathlib
import sys

import pytest

pytest.importorskip("triton")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bench"))

import gpu_model as gm  # noqa: E402

from gxnor_cuda._triton import aot, launch  # noqa: E402


def test_model_on_the_popcount_and_dot_kernels():
    cfgs = list(launch.configs())
    pc = next(i for i, c in enumerate(cfgs) if c[0] == "xnor_popcount" and not c[3]["HAS_SCALE"])
    dot = next(i for i, c in enumerate(cfgs) if c[0] == "xnor_dot" and not c[3]["HAS_SCALE"])
    hw, swar, mma = aot.compile_many([(pc, 90, None, {}), (pc, 90, None, {"HW_POPC": False}), (dot, 90, None, {})])
    h100 = gm.GPUS["H100 SXM"]
    body = gm.hot_loop(gm.parse(hw.sass))
    assert sum(op == "POPC" for _, op, _, _ in body) == 8, "the hot loop is the popcount loop"
    per_warp = 16 * 16 * 64 / 4
    p_hw, p_swar = gm.predict(body, per_warp, h100), gm.predict(gm.hot_loop(gm.parse(swar.sass)), per_warp, h100)
    assert 0 < p_swar["T MAC/s"] < p_hw["T MAC/s"], (p_swar, p_hw)
    bf16 = gm.CUBLAS * h100["bf16"] * h100["sms"] * h100["ghz"] * 1e-3
    assert p_hw["T MAC/s"] < bf16, "a CUDA-core popcount loop cannot beat bf16 tensor cores on Hopper"
    mbody = gm.hot_loop(gm.parse(mma.sass))
    assert any(op == "IMMA" for _, op, _, _ in mbody)
    assert gm.mma_macs("IMMA", ".16832.S8.S8") == 16 * 8 * 32
    assert gm.mma_macs("IGMMA", ".64x128x32.S8.S8") == 64 * 128 * 32 // 4


def test_model_counts_shared_memory_and_the_mma_wait():
    """The tc16 kernel on sm_90: wgmma present, the loop waits for it each iteration, shared-memory
    traffic counted; the full model predicts less than the pipes alone, and it beats cuBLAS bf16
    (at 75 % of its peak) while staying under the int8 peak."""
    cfgs = list(launch.configs())
    i = next(i for i, c in enumerate(cfgs) if c[0] == "xnor_tc" and not c[3]["HAS_SCALE"] and c[3]["BN"] == 256)
    (c,) = aot.compile_many([(i, 90, None, {})])
    h100 = gm.GPUS["H100 SXM"]
    body = gm.hot_loop(gm.parse(c.sass))
    macs = 128 * 256 * 128
    full = gm.predict_full(body, macs, 8, c.registers, h100)
    pipes = gm.predict(body, macs / 8, h100)
    assert full["serial"] and full["CTAs/SM"] == 1 and full["bound"].startswith("MMA wait")
    peak = h100["int8"] * h100["sms"] * h100["ghz"] * 1e-3
    bf16 = gm.CUBLAS * h100["bf16"] * h100["sms"] * h100["ghz"] * 1e-3
    assert bf16 < full["T MAC/s"] < pipes["T MAC/s"] <= peak * 1.0001
    assert gm.smem_bytes("STS", ".128", "[R1], R4") == 16 and gm.smem_bytes("LDSM", ".16.M88.4", "R4, [R2]") == 16
    assert gm.wgmma_smem_bytes("IGMMA", ".64x256x32.S8.S8", "R24, R88, gdesc[UR12], R24") == 256 * 32
    assert gm.wgmma_smem_bytes("IGMMA", ".64x256x32.S8.S8", "R24, gdesc[UR12], R24") == (256 + 64) * 32
