"""Every Triton launch configuration the package uses, in one table.

The wrappers launch through ``launch(name, grid, *args, **constexprs)``, so the options a kernel
runs with on a GPU are the ones ``tests/test_compiled.py`` compiles ahead of time for sm_80 and
sm_90 (``configs()``) and checks (no spills, the hot loop's instructions, no FMA contraction).

``exact`` kernels are compiled with ``enable_fp_fusion=False``: their float results (the DST
rule's rational tanh, the scale/bias epilogues that feed a threshold) must round like the C++
kernels, which build with ``-ffp-contract=off``; an FMA rounds once where they round twice.
Grids are 1-D (the x dimension allows 2^31 - 1 programs; y and z stop at 65535).
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import torch
import triton


@dataclasses.dataclass(frozen=True)
class Kernel:
    module: str  # gxnor_cuda._triton.<module>
    name: str  # the @triton.jit function
    signature: dict[str, str]  # runtime argument -> Triton type, for ahead-of-time compiles
    constexprs: dict[str, tuple]  # constexpr argument -> every value the wrapper launches with
    variants: tuple = ({},)  # signature overrides the wrappers also launch (other dtypes)
    exact: bool = True
    explicit_fma: bool = False  # exact, with tl.fma written out where the C++ twin rounds by an FMA
    hot: str | None = None  # instruction class the hot loop must hold: "POPC" or "MMA"
    num_warps: int = 4
    num_stages: int = 3
    per_arch: dict = dataclasses.field(default_factory=dict)  # constexpr -> {sm major: values launched there}

    def fn(self):
        import importlib

        return getattr(importlib.import_module(f"gxnor_cuda._triton.{self.module}"), self.name)


# Integer arguments: Triton specialises a Python int as i32 when it fits (every shape the tests and
# benchmarks launch), i64 past that; seed and offset are compiled both ways.
_P32, _PF, _P64, _I64, _F = "*i32", "*fp32", "*i64", "i32", "fp32"
_GEMM_SIG = {"a_ptr": _P32, "b_ptr": _P32, "c_ptr": _P32, "scale_ptr": _PF, "bias_ptr": _PF,
             "M": _I64, "N": _I64, "W": _I64}
_FLAGS = {"HAS_SCALE": (False, True), "HAS_BIAS": (False, True), "FLOAT_OUT": (False, True)}
_POOL_INTS = ("P", "OC", "C", "HP", "WP", "PH", "PW", "KH", "KW", "SH", "SW", "DH", "DW")
_XPOOL_INTS = ("P", "OG", "O", "H", "Wd", "G", "WG", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "HP", "WP")
_CONV_INTS = ("M", "OG", "O", "H", "Wd", "G", "WG", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "HO", "WO")

KERNELS = {
    "pack": Kernel("pack", "_pack_kernel",
                   {"x_ptr": _PF, "out_ptr": _P32, "bad_ptr": _P64, "n_words": _I64, "K": _I64, "W": _I64,
                    "thr": _F}, {"MODE": (0, 1), "BLOCK_W": (32,)}),
    "unpack": Kernel("pack", "_unpack_kernel",
                     {"p_ptr": _P32, "out_ptr": "*i8", "n": _I64, "K": _I64, "W": _I64}, {"BLOCK": (1024,)},
                     variants=({}, {"out_ptr": _PF})),
    "noncanonical": Kernel("pack", "_noncanonical_kernel",
                           {"p_ptr": _P32, "count_ptr": _P64, "n_words": _I64, "K": _I64, "W": _I64},
                           {"BLOCK": (1024,)}),
    "xnor_popcount": Kernel("gemm", "_xnor_popcount_kernel", _GEMM_SIG,
                            {**_FLAGS, "BM": (16,), "BN": (16,), "BW": (2,), "HW_POPC": (True,)}, hot="POPC"),
    "xnor_dot": Kernel("gemm", "_xnor_dot_kernel", _GEMM_SIG, {**_FLAGS, "BM": (32,), "BN": (32,)}, hot="MMA"),
    "to_tc": Kernel("tc", "_to_tc_kernel", {"p_ptr": _P32, "out_ptr": _P32, "n_words": _I64, "W": _I64, "T": _I64},
                    {"BLOCK": (1024,)}),
    "xnor_tc": Kernel("tc", "_xnor_tc_kernel", {**{k: v for k, v in _GEMM_SIG.items() if k != "W"}, "T": _I64},
                      {**_FLAGS, "BM": (128,), "BN": (128, 256), "BT": (8,), "HW_ASM": (True,)}, hot="MMA",
                      num_warps=8, per_arch={"BN": {8: (128,), 9: (256,)}}),  # tc.tc_config
    "xnor_tc_skinny": Kernel("tc", "_xnor_tc_kernel", {**{k: v for k, v in _GEMM_SIG.items() if k != "W"}, "T": _I64},
                             {**_FLAGS, "BM": (16,), "BN": (256,), "BT": (8,), "HW_ASM": (True,)}, hot="MMA"),
    "xnor_tc_conv": Kernel("tc_conv", "_xnor_tc_conv_kernel",
                           {"x_ptr": _P32, "w_ptr": _P32, "c_ptr": _P32, "scale_ptr": _PF, "bias_ptr": _PF,
                            **{k: _I64 for k in _CONV_INTS if k != "WG"}, "T": _I64, "ZERO_ROW": "i64"},
                           {**_FLAGS, "BM": (128,), "BN": (128,), "BT": (8,), "HW_ASM": (True,)}, hot="MMA",
                           num_warps=8),
    "xnor_conv_pool": Kernel("xnor_conv_pool", "_xnor_conv_pool_kernel",
                             {"x_ptr": _P32, "w_ptr": _P32, "y_ptr": _PF, "a_ptr": "*u8",
                              **{k: _I64 for k in _XPOOL_INTS}},
                             {"BM": (16,), "BN": (16,), "BW": (2,), "HW_POPC": (True,)}, hot="POPC", num_warps=8),
    "xnor_tc_conv_pool": Kernel("xnor_conv_pool", "_xnor_tc_conv_pool_kernel",
                                {"x_ptr": _P32, "w_ptr": _P32, "y_ptr": _PF, "a_ptr": "*u8",
                                 **{k: _I64 for k in _XPOOL_INTS if k != "WG"}, "T": _I64, "ZERO_ROW": "i64"},
                                {"BM": (128,), "BN": (128,), "BT": (8,), "HW_ASM": (True,)}, hot="MMA", num_warps=8),
    "ternary_nt": Kernel("gemm", "_ternary_nt_kernel",
                         {"x_ptr": _PF, "w_ptr": _P32, "o_ptr": _PF, "M": _I64, "N": _I64, "K": _I64, "W": _I64},
                         {"BM": (32,), "BN": (32,)}, ({}, {"x_ptr": "*bf16", "o_ptr": "*bf16"}), exact=False,
                         num_stages=1),  # pipelined stages spill: the fp32 dot's operands fill 255 registers
    "ternary_nn": Kernel("gemm", "_ternary_nn_kernel",
                         {"g_ptr": _PF, "w_ptr": _P32, "o_ptr": _PF, "M": _I64, "N": _I64, "K": _I64, "W": _I64},
                         {"BM": (32,), "BN": (32,)}, ({}, {"g_ptr": "*bf16", "o_ptr": "*bf16"}), exact=False,
                         num_warps=8, num_stages=1),
    "xnor_conv": Kernel("conv", "_xnor_conv_kernel",
                        {"x_ptr": _P32, "w_ptr": _P32, "c_ptr": _P32, "scale_ptr": _PF, "bias_ptr": _PF,
                         **{k: _I64 for k in _CONV_INTS}, "thr": _F, "WP": _I64},
                        {**_FLAGS, "PACK": (False, True), "BM": (16,), "BN": (16, 32), "BW": (2,), "HW_POPC": (True,)},
                        hot="POPC", num_warps=8),  # 4 warps spill in the fused pack epilogue
    "conv_pool": Kernel("conv_pool", "_conv_pool_kernel",
                        {"x_ptr": _PF, "w_ptr": _PF, "y_ptr": _PF, "a_ptr": "*u8", **{k: _I64 for k in _POOL_INTS}},
                        {"BP": (128,), "BO": (32,)}, explicit_fma=True),
    "conv_pool_wgrad": Kernel("conv_pool", "_conv_pool_wgrad_kernel",
                              {"x_ptr": _PF, "g_ptr": _PF, "a_ptr": "*u8", "part_ptr": _PF,
                               **{k: _I64 for k in ("R", *_POOL_INTS[1:])}},
                              {"ROWS": (32,), "BT": (32,), "BO": (32,)}, explicit_fma=True,
                              num_warps=8),
    "sum_blocks": Kernel("conv_pool", "_sum_blocks_kernel",
                         {"part_ptr": _PF, "out_ptr": _PF, "n_blocks": _I64, "size": _I64}, {"BLOCK": (1024,)}),
    "accumulator_stats": Kernel("stats", "_stats_kernel",
                                {"x_ptr": _PF, "q_ptr": "*i16", "sums_ptr": _P64, "bad_ptr": _P64, "R": _I64,
                                 "C": _I64, "S": _I64}, {"CL": (False, True), "BL": (64,), "BC": (32,)}),
    "dst_packed": Kernel("dst", "_dst_packed_kernel",
                         {"w_ptr": _P32, "g_ptr": _PF, "bad_ptr": _P64, "n_words": _I64, "K": _I64, "W": _I64,
                          "lr": _F, "m": _F, "seed": "i64", "offset": "i32"},
                         {"INCREMENT": (False, True), "RNG": (1, 2), "BLOCK_W": (16,)}, ({}, {"offset": "i64"})),
    "dst_states": Kernel("dst", "_dst_states_kernel",
                         {"s_ptr": "*i8", "g_ptr": _PF, "bad_ptr": _P64, "n": _I64, "K": _I64, "lr": _F, "m": _F,
                          "inv_dz": _F, "hi": "i32", "step": "i32", "seed": "i64", "offset": "i32"},
                         {"INCREMENT": (False, True), "RNG": (1, 2), "BLOCK": (1024,)}, ({}, {"offset": "i64"})),
}


def _valid(name: str, c: dict) -> bool:
    """Constexpr combinations the wrappers actually launch."""
    if "FLOAT_OUT" in c and c["FLOAT_OUT"] != (c["HAS_SCALE"] or c["HAS_BIAS"]):
        return False
    if name == "xnor_conv":  # the fused pack tiles are one packed word (32 columns) wide
        return c["BN"] == (32 if c["PACK"] else 16)
    return True


def configs():
    """(name, Kernel, signature, constexprs) for every launch configuration the wrappers use."""
    for name, k in KERNELS.items():
        keys = list(k.constexprs)
        for variant in k.variants:
            for vals in itertools.product(*(k.constexprs[key] for key in keys)):
                c = dict(zip(keys, vals, strict=True))
                if _valid(name, c):
                    yield name, k, {**k.signature, **variant}, c


def runs_on(k: Kernel, const: dict, arch: int) -> bool:
    """Whether the wrappers launch this configuration on sm_<arch> (see Kernel.per_arch)."""
    return all(const[key] in by_major.get(arch // 10, ()) for key, by_major in k.per_arch.items())


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


HW_FLAGS = ("HW_POPC", "HW_ASM")


def launch(name: str, n_programs: int, *args, **constexprs) -> None:
    """Launch KERNELS[name] on a 1-D grid of ``n_programs``, on the device of the first tensor.
    The HW_ flags (HW_POPC: the POPC instruction, HW_ASM: inline PTX) are set here: on for compiled
    code, off in the interpreter, which has neither."""
    k = KERNELS[name]
    for flag in HW_FLAGS:
        if flag in k.constexprs:
            constexprs[flag] = not interpreting()
    for key, v in constexprs.items():
        if key in HW_FLAGS:
            continue
        assert v in k.constexprs[key], f"{name}: {key}={v} is not in the launch table"
    dev = next(a.device for a in args if isinstance(a, torch.Tensor))
    opts = dict(num_warps=k.num_warps, num_stages=k.num_stages, enable_fp_fusion=not k.exact)
    if dev.type == "cuda":
        with torch.cuda.device(dev):
            k.fn()[(n_programs,)](*args, **constexprs, **opts)
    else:
        k.fn()[(n_programs,)](*args, **constexprs, **opts)


def cdiv(a: int, b: int) -> int:
    return triton.cdiv(a, b)
