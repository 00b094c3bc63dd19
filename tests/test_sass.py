"""SASS checks on the built CUDA kernels: no local-memory spills (STL/LDL) in any kernel."""

import pytest

from tests import sass

pytestmark = pytest.mark.skipif(sass.skip_reason() is not None, reason=str(sass.skip_reason()))


def test_every_arch_compiled():
    archs = {a for a, _ in sass.kernels()}
    assert {"sm_80", "sm_90"} <= archs


def test_no_local_memory_spills():
    k = sass.kernels()
    assert any("pack_kernel" in name for _, name in k), "pack kernels missing from the library"
    spills = [f"{a}:{n}" for (a, n), text in k.items() if "STL" in text or "LDL" in text]
    assert not spills, f"kernels using local memory: {spills}"


@pytest.mark.parametrize("kernel", ["xnor_gemm_kernel", "xnor_conv2d_kernel"])
def test_inner_loop_uses_popc(kernel):
    k = sass.kernels()
    gemm = {a: t for (a, n), t in k.items() if kernel in n}
    assert set(gemm) >= {"sm_80", "sm_90"}, f"{kernel} missing"
    for arch, text in gemm.items():
        n_popc = text.count("POPC")
        # 8 words x 16 register-blocked pairs x 2 popcounts in the unrolled chunk loop
        assert n_popc >= 256, f"{arch}: expected >= 256 POPC in the unrolled inner loop, found {n_popc}"


@pytest.mark.parametrize("kernel,limit", [("xnor_tc_gemm_kernel", 0.55), ("xnor_tc_conv2d_kernel", 0.8)])
def test_tc_kernels_use_tensor_cores(kernel, limit):
    """The int8 mma.sync GEMM and conv: IMMA in the loop (4 k32 sub-steps x 4 x 8 MMAs per warp),
    decode at 2 integer instructions per fragment register (a shift and an AND: 0.5 per value; the
    conv adds its per-step tap address arithmetic), no spills (checked above)."""
    from gxnor_cuda._triton.aot import INT_OPS, hot_loop, parse

    k = {a: t for (a, n), t in sass.kernels().items() if kernel in n}
    assert set(k) >= {"sm_80", "sm_90"}, f"{kernel} missing"
    for arch, text in k.items():
        body = hot_loop(parse(text))
        ops = [i[1] for i in body]
        assert ops.count("IMMA") == 128, f"{arch}: expected 128 IMMA in the hot loop, found {ops.count('IMMA')}"
        decode = sum(1 for i in body if i[1] == "LOP3" and "0xc0c0c0c0" in i[3])
        values = 128 * 4  # 64 A and 64 B fragment registers of 4 int8 each per iteration
        integer = sum(1 for o in ops if o in INT_OPS)
        assert decode == 128 and integer / values <= limit, f"{arch}: {integer} integer instructions, {values} values"


def test_b1_gemm_uses_binary_tensor_cores():
    """The binary mma.sync kernel: 4 bit-plane MMAs per 16 x 8 tile (4 x 4 tiles per warp), format v1
    words used as fragments after one AND / ANDN (a tenth of an integer instruction per value, loop
    bookkeeping included: a fifth)."""
    from gxnor_cuda._triton.aot import INT_OPS, hot_loop, parse

    k = {a: t for (a, n), t in sass.kernels().items() if "xnor_b1_gemm_kernel" in n}
    assert set(k) >= {"sm_80", "sm_90"}, "xnor_b1_gemm_kernel missing"
    for arch, text in k.items():
        ops = [i[1] for i in hot_loop(parse(text))]
        assert ops.count("BMMA") == 64, f"{arch}: expected 64 BMMA in the hot loop, found {ops.count('BMMA')}"
        values = (16 + 8) * 32  # 16 A and 8 B words of 32 values per lane per iteration
        integer = sum(1 for o in ops if o in INT_OPS)
        assert ops.count("LOP3") / values <= 0.1 and integer / values <= 0.2, f"{arch}: {integer} for {values} values"


def test_bf16_gemm_uses_bf16_tensor_cores():
    """The float x ternary mma.sync kernel: HMMA in the loop (4 k16 sub-steps x 4 x 8 MMAs per warp),
    A fragments by ldmatrix, both tiles by cp.async, B decoded at a shift and an AND per fragment
    register (1 integer instruction per value; with the copy and ldmatrix addressing at most 1.5)."""
    from gxnor_cuda._triton.aot import INT_OPS, hot_loop, parse

    k = {a: t for (a, n), t in sass.kernels().items() if "ternary_bf16_gemm_kernel" in n}
    assert set(k) >= {"sm_80", "sm_90"}, "ternary_bf16_gemm_kernel missing"
    for arch, text in k.items():
        body = hot_loop(parse(text))
        ops = [i[1] for i in body]
        assert ops.count("HMMA") == 128, f"{arch}: expected 128 HMMA in the hot loop, found {ops.count('HMMA')}"
        assert ops.count("LDSM") == 16 and ops.count("LDGSTS") == 9, f"{arch}: ldmatrix / cp.async missing"
        decode = sum(1 for i in body if i[1] == "LOP3" and "0xc000c000" in i[3])
        values = 8 * 4 * 4  # 8 B fragments x 4 k16 sub-steps x 4 values per lane per iteration
        integer = sum(1 for o in ops if o in INT_OPS)
        assert decode == 64 and integer / values <= 1.5, f"{arch}: {integer} integer instructions, {values} values"


def test_ptx_for_newer_gpus():
    """The fatbin carries compute_90 PTX, so the kernels JIT-load on GPUs newer than sm_90."""
    import subprocess

    out = subprocess.run([sass.cuobjdump(), "-lptx", sass.library_path()], capture_output=True, text=True).stdout
    assert "sm_90" in out or "compute_90" in out, f"no PTX in the library: {out[:300]}"
