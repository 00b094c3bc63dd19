"""Checks on the machine code a GPU would run, made here without a GPU.

Every Triton launch configuration of gxnor_cuda/_triton/launch.py is compiled ahead of time for
sm_80 and sm_90 with the options the wrappers launch with. Checks: it compiles; no local-memory
spills; the hot loop's instruction class is there (POPC in popcount loops, IMMA/IGMMA in int8
tensor-core loops); no fused multiply-add in the PTX of kernels whose float results must match the
C++ backends bit for bit. Each check is shown to fail on a deliberately broken compile.
The native library's CUDA kernels are checked from its fatbin in test_sass.py.
"""

from __future__ import annotations

import pytest

triton = pytest.importorskip("triton")

from gxnor_cuda._triton import aot, launch  # noqa: E402

ARCHS = (80, 90)
CONFIGS = list(launch.configs())


def _id(c):
    name, _, sig, const = c
    dt = "-".join(v.strip("*") for k, v in sig.items() if k in ("x_ptr", "out_ptr", "g_ptr", "offset"))
    return f"{name}-{dt}-" + "-".join(f"{k}{int(v) if isinstance(v, bool) else v}" for k, v in const.items())


def _index(name: str, **const) -> int:
    return next(i for i, (n, _, _, c) in enumerate(CONFIGS) if n == name and all(c[k] == v for k, v in const.items()))


_BROKEN = [  # (request, what it breaks)
    ((_index("dst_packed", INCREMENT=False, RNG=2), 90, True, {}), "fp fusion on"),
    ((_index("xnor_popcount", HAS_SCALE=False), 90, None, {"HW_POPC": False}), "SWAR popcount"),
    ((_index("xnor_tc", HAS_SCALE=False, BN=256), 90, None, {"HW_ASM": False}), "byte split by shift + truncate"),
]


# (config, arch) pairs the wrappers launch
PAIRS = [(i, arch) for i, c in enumerate(CONFIGS) for arch in ARCHS if launch.runs_on(c[1], c[3], arch)]


@pytest.fixture(scope="module")
def compiled():
    """Every configuration for every arch it runs on, plus the deliberately broken compiles, in one batch."""
    reqs = [(i, arch, None, {}) for i, arch in PAIRS] + [r for r, _ in _BROKEN]
    return dict(zip([(r[0], r[1], r[2], str(r[3])) for r in reqs], aot.compile_many(reqs), strict=True))


def _get(compiled, i, arch, fusion=None, over=None):
    return compiled[(i, arch, fusion, str(over or {}))]


@pytest.mark.parametrize("i, arch", PAIRS, ids=[f"{_id(CONFIGS[i])}-sm{arch}" for i, arch in PAIRS])
def test_compiled_kernel(compiled, i, arch):
    name, k, _, const = CONFIGS[i]
    c = _get(compiled, i, arch)
    assert c.spills() == 0, f"{name} sm_{arch} {const}: {c.local_bytes} bytes of local memory (spills)"
    if k.exact and not k.explicit_fma:
        fused = c.fused_fp_ops()
        assert not fused, f"{name} sm_{arch}: FMA contraction in an exact kernel: {fused[:3]}"
    if k.explicit_fma:  # its tl.fma reach the machine code as FFMA
        assert c.count("FFMA") > 0, f"{name} sm_{arch}: no FFMA for the kernel's tl.fma"
    if k.hot == "POPC":
        # one POPC per gate word and one per disagreement word of every (row, column, word) triple
        per_thread = 2 * const["BM"] * const["BN"] * const["BW"] // (32 * k.num_warps)
        assert c.count("POPC") >= per_thread, f"{name} sm_{arch}: {c.count('POPC')} POPC < {per_thread}"
    if k.hot == "MMA":
        assert c.count("IMMA") + c.count("IGMMA") > 0, f"{name} sm_{arch}: no int8 tensor-core instruction"
    if name.startswith("xnor_tc"):
        decode, total, prmt = _tc_decode_cost(c, const, k.num_warps)
        assert prmt == 0 and decode <= 0.5 and total <= TC_INT_PER_VALUE, (
            f"{name} sm_{arch} {const}: {decode:.3f} decode and {total:.3f} integer instructions in all per "
            f"decoded value in the hot loop (at most 0.5 and {TC_INT_PER_VALUE}), {prmt} byte permutes")


# The decode is 7 instructions per word of 16 values (0.44: three shifts, four ANDs); the loop's
# cp.async addresses (one per 4-byte load) and counters add 0.09-0.16.
TC_INT_PER_VALUE = 0.6


def _tc_decode_cost(c, const, warps):
    """(decode instructions, integer instructions, PRMTs) per decoded value in the tc16 hot loop."""
    body = aot.hot_loop(aot.parse(c.sass))
    values = (const["BM"] + const["BN"]) * 16 * const["BT"] / (32 * warps)  # per thread and iteration
    decode = sum(1 for _, op, mods, args in body if (op == "LOP3" and "0xc0c0c0c0" in args)
                 or (op == "IMAD" and mods.startswith(".SHL")) or (op == "SHF" and mods.startswith(".L")))
    total = sum(1 for _, op, _, _ in body if op in aot.INT_OPS)
    return decode / values, total / values, sum(1 for _, op, _, _ in body if op == "PRMT")


def test_fma_check_fails_on_a_fused_dst_kernel(compiled):
    """The DST kernel compiled as Triton does by default (fp fusion on) has FMAs: the check sees them."""
    (i, arch, fusion, over), _ = _BROKEN[0]
    assert _get(compiled, i, arch, fusion, over).fused_fp_ops()


def test_popc_check_fails_on_the_swar_popcount(compiled):
    """The SWAR popcount (what the interpreter runs) does not all become POPC when compiled."""
    (i, arch, fusion, over), _ = _BROKEN[1]
    const = CONFIGS[i][3]
    per_thread = 2 * const["BM"] * const["BN"] * const["BW"] // (32 * CONFIGS[i][1].num_warps)
    assert _get(compiled, i, arch, fusion, over).count("POPC") < per_thread


def test_tc_decode_check_fails_on_a_byte_split_decode(compiled):
    """Splitting the decoded words into bytes by shifts and truncation (what the interpreter runs)
    makes ptxas re-pack every register with PRMT: the decode-cost check sees it."""
    (i, arch, fusion, over), _ = _BROKEN[2]
    _, total, prmt = _tc_decode_cost(_get(compiled, i, arch, fusion, over), CONFIGS[i][3], CONFIGS[i][1].num_warps)
    assert prmt > 0 and total > TC_INT_PER_VALUE


def test_every_wrapper_launch_is_in_the_table():
    """launch() refuses a constexpr value the table (and so this file) does not compile."""
    import torch

    with pytest.raises(AssertionError, match="not in the launch table"):
        launch.launch("pack", 1, torch.zeros(1), MODE=2, BLOCK_W=32)
