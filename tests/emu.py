"""Builds and loads the CUDA kernel sources compiled for the host through the emulation header
(csrc/gxnor/emu/emu_lib.cpp), and wraps its C API for torch CPU tensors."""

from __future__ import annotations

import ctypes
import hashlib
import os
import pathlib
import shutil
import subprocess

import torch

from gxnor_cuda import format as fmt
from gxnor_cuda._checks import state_grid
from gxnor_cuda.reference import conv2d_then_pack

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "csrc" / "gxnor"


def _digest() -> str:
    h = hashlib.sha256()
    for p in sorted(SRC.rglob("*")):
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build() -> ctypes.CDLL:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise RuntimeError("no C++ compiler found to build the CUDA emulation library")
    out_dir = ROOT / "build" / "emu"
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / f"libgxnor_cuda_emu_{_digest()}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        cmd = [cxx, "-std=c++20", "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-pthread", f"-I{ROOT / 'csrc'}",
               str(SRC / "emu" / "emu_lib.cpp"), "-o", str(tmp)]
        subprocess.run(cmd, check=True)
        tmp.rename(lib)
    return ctypes.CDLL(str(lib))


_LIB: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        _LIB = build()
    return _LIB


def _p(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def _ok(err: int, what: str) -> None:
    if err != 0:
        raise RuntimeError(f"{what}: emulated launch returned error {err}")


def pack_ternary(x: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    K = x.shape[-1]
    rows = x.numel() // K
    out = torch.full(fmt.packed_shape(tuple(x.shape)), -1, dtype=torch.int32)  # poisoned
    bad = torch.zeros((), dtype=torch.int64)
    if x.dtype == torch.int8 and threshold is None:
        xc = x.contiguous()
        _ok(lib().gxnor_cuda_pack_i8(_p(xc), ctypes.c_int64(rows), ctypes.c_int64(K), _p(out), _p(bad), None),
            "pack_i8")
    else:
        xc = x.to(torch.float32).contiguous()
        mode = 0 if threshold is None else 1
        thr = ctypes.c_float(0.0 if threshold is None else threshold)
        _ok(lib().gxnor_cuda_pack_f32(_p(xc), ctypes.c_int64(rows), ctypes.c_int64(K), ctypes.c_int(mode), thr,
                                      _p(out), _p(bad), None), "pack_f32")
    if threshold is None and int(bad):
        raise RuntimeError(f"x: expected values in {{-1, 0, +1}}, got {int(bad)} element(s) outside that set")
    return out


def unpack_ternary(packed: torch.Tensor, K: int, dtype=torch.int8) -> torch.Tensor:
    rows = packed.numel() // packed.shape[-1] // 2
    p = packed.contiguous()
    if dtype == torch.int8:
        out = torch.full((*packed.shape[:-2], K), 7, dtype=torch.int8)
        _ok(lib().gxnor_cuda_unpack_i8(_p(p), ctypes.c_int64(rows), ctypes.c_int64(K), _p(out), None), "unpack")
    else:
        out = torch.full((*packed.shape[:-2], K), 7.0, dtype=torch.float32)
        _ok(lib().gxnor_cuda_unpack_f32(_p(p), ctypes.c_int64(rows), ctypes.c_int64(K), _p(out), None), "unpack")
    return out


def count_noncanonical(packed: torch.Tensor, K: int) -> torch.Tensor:
    rows = packed.numel() // packed.shape[-1] // 2
    count = torch.zeros((), dtype=torch.int64)
    _ok(lib().gxnor_cuda_count_noncanonical(_p(packed.contiguous()), ctypes.c_int64(rows), ctypes.c_int64(K),
                                            _p(count), None), "validate")
    return count


def launches() -> int:
    lib().gxnor_emu_launches.restype = ctypes.c_longlong
    return int(lib().gxnor_emu_launches())


def _gemm_out(fn, operands: list, M: int, N: int, scale, bias, what: str) -> torch.Tensor:
    """Run a GEMM entry point fn(*operands, scale, bias, c_int, c_float, stream) into a poisoned output."""
    fl = scale is not None or bias is not None
    out = torch.full((M, N), -7, dtype=torch.float32 if fl else torch.int32)
    null = ctypes.c_void_p(0)
    sc = scale.contiguous() if scale is not None else None
    bi = bias.contiguous() if bias is not None else None
    _ok(fn(*operands, _p(sc) if sc is not None else null, _p(bi) if bi is not None else null,
           null if fl else _p(out), _p(out) if fl else null, None), what)
    return out


def _v1_gemm(name: str, a: torch.Tensor, b: torch.Tensor, scale, bias) -> torch.Tensor:
    """A GEMM entry point gxnor_cuda_<name>(a, b, M, N, W, ...) on format v1 operands."""
    M, N, W = a.shape[0], b.shape[0], a.shape[2]
    ops = [_p(a.contiguous()), _p(b.contiguous()), ctypes.c_int64(M), ctypes.c_int64(N), ctypes.c_int64(W)]
    return _gemm_out(getattr(lib(), f"gxnor_cuda_{name}"), ops, M, N, scale, bias, name)


def xnor_gemm(a: torch.Tensor, b: torch.Tensor, K: int, scale=None, bias=None) -> torch.Tensor:
    return _v1_gemm("xnor_gemm", a, b, scale, bias)


def xnor_gemm_b1(a: torch.Tensor, b: torch.Tensor, K: int, scale=None, bias=None) -> torch.Tensor:
    """xnor_gemm through the CUDA binary tensor-core kernel (mma.sync .b1 .and.popc emulated)."""
    return _v1_gemm("xnor_gemm_b1", a, b, scale, bias)


def to_tc16(p: torch.Tensor, K: int) -> torch.Tensor:
    """Format v1 rows (R, 2, W) -> the tensor-core layout tc16 (R, T) through the CUDA kernel."""
    from gxnor_cuda._triton.tc import tc_words

    R, W, T = p.shape[0], p.shape[2], tc_words(K)
    out = torch.full((R, T), -7, dtype=torch.int32)
    _ok(lib().gxnor_cuda_to_tc16(_p(p.contiguous()), ctypes.c_int64(R), ctypes.c_int64(W), ctypes.c_int64(T),
                                 _p(out), None), "to_tc16")
    return out


def xnor_gemm_tc(a: torch.Tensor, b: torch.Tensor, K: int, scale=None, bias=None) -> torch.Tensor:
    """xnor_gemm through the CUDA tensor-core kernel (mma.sync emulated): both operands to tc16 first."""
    at, bt = to_tc16(a, K), to_tc16(b, K)
    M, N, T = at.shape[0], bt.shape[0], at.shape[1]
    ops = [_p(at), _p(bt), ctypes.c_int64(M), ctypes.c_int64(N), ctypes.c_int64(T)]
    return _gemm_out(lib().gxnor_cuda_xnor_gemm_tc, ops, M, N, scale, bias, "xnor_gemm_tc")


def to_tb16(p: torch.Tensor, K: int, transpose: bool = False) -> torch.Tensor:
    """Format v1 rows (R, 2, W) -> the bf16 tensor-core layout tb16 through the CUDA kernel."""
    from gxnor_cuda.reference import bf16_layout_words

    R, W = p.shape[0], p.shape[2]
    rows, Tq = (K, bf16_layout_words(R)) if transpose else (R, bf16_layout_words(K))
    out = torch.full((rows, Tq), -7, dtype=torch.int32)
    _ok(lib().gxnor_cuda_to_tb16(_p(p.contiguous()), ctypes.c_int64(R), ctypes.c_int64(K), ctypes.c_int64(W),
                                 ctypes.c_int(int(transpose)), ctypes.c_int64(Tq), _p(out), None), "to_tb16")
    return out


def ternary_matmul_bf16(x: torch.Tensor, w: torch.Tensor, K: int, nn: bool = False, out_dtype=torch.bfloat16):
    """ternary_matmul for bf16 x through the CUDA bf16 tensor-core kernel (mma.sync, ldmatrix and
    cp.async emulated): w to tb16 (transposed for nn), then C = x @ B.T."""
    x = x.contiguous()
    b = to_tb16(w, K, transpose=nn)
    M, R, P = x.shape[0], x.shape[1], b.shape[0]
    out = torch.full((M, P), float("nan"), dtype=out_dtype)
    bf = out_dtype == torch.bfloat16
    _ok(lib().gxnor_cuda_ternary_gemm_bf16(_p(x), _p(b), ctypes.c_int64(M), ctypes.c_int64(P), ctypes.c_int64(R),
                                           ctypes.c_int64(b.shape[1]), _p(out) if bf else None,
                                           None if bf else _p(out), None), "ternary_gemm_bf16")
    return out


def dst_update_(w: torch.Tensor, grad: torch.Tensor, lr, m, seed, offset, increment=False, rng=2) -> torch.Tensor:
    K = grad.shape[-1]
    rows = w.numel() // w.shape[-1] // 2
    g = grad.to(torch.float32).contiguous()
    bad = torch.zeros((), dtype=torch.int64)
    _ok(lib().gxnor_cuda_dst_packed(_p(w), _p(g), ctypes.c_int64(rows), ctypes.c_int64(K), ctypes.c_float(lr),
                                    ctypes.c_float(m), ctypes.c_int(int(increment)), ctypes.c_int(rng),
                                    ctypes.c_uint64(seed), ctypes.c_uint64(offset), _p(bad), None), "dst_packed")
    return bad


def dst_update_states_(s: torch.Tensor, grad: torch.Tensor, lr, m, n_states, seed, offset, increment=False, rng=2):
    hi, inv_dz, step = state_grid(n_states)
    g = grad.to(torch.float32).contiguous()
    bad = torch.zeros((), dtype=torch.int64)
    K = s.shape[-1] if s.dim() else 1
    _ok(lib().gxnor_cuda_dst_states(_p(s), _p(g), ctypes.c_int64(s.numel()), ctypes.c_int64(K), ctypes.c_float(lr),
                                    ctypes.c_float(m), ctypes.c_float(inv_dz), ctypes.c_int(hi), ctypes.c_int(step),
                                    ctypes.c_int(int(increment)), ctypes.c_int(rng), ctypes.c_uint64(seed),
                                    ctypes.c_uint64(offset), _p(bad), None), "dst_states")
    return bad


def xnor_conv2d(x, w, C, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None) -> torch.Tensor:
    from gxnor_cuda._conv_checks import check_conv

    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups, scale, bias)
    shape = torch.tensor([N, H, Wd, G, Wg, O, kh, kw, *s, *p, *d, Ho, Wo], dtype=torch.int64)
    ops = [_p(x.contiguous()), _p(w.contiguous()), _p(shape)]
    out = _gemm_out(lib().gxnor_cuda_xnor_conv2d, ops, N * Ho * Wo, O, scale, bias, "xnor_conv2d")
    return out.reshape(N, Ho, Wo, O).permute(0, 3, 1, 2)


def xnor_conv2d_tc(x, w, C, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None) -> torch.Tensor:
    """xnor_conv2d through the CUDA tensor-core conv (mma.sync emulated): operands to tc16 per
    (pixel, group) and per (output channel, tap), a zero row appended to the input."""
    from gxnor_cuda._conv_checks import check_conv

    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups, scale, bias)
    cg = C // groups
    xt = to_tc16(x.contiguous().reshape(-1, 2, Wg), cg)
    xt = torch.cat([xt, torch.zeros(1, xt.shape[1], dtype=torch.int32)])
    wt = to_tc16(w.contiguous().reshape(-1, 2, Wg), cg)
    shape = torch.tensor([N, H, Wd, G, Wg, O, kh, kw, *s, *p, *d, Ho, Wo], dtype=torch.int64)
    ops = [_p(xt), _p(wt), _p(shape), ctypes.c_int64(xt.shape[1])]
    out = _gemm_out(lib().gxnor_cuda_xnor_conv2d_tc, ops, N * Ho * Wo, O, scale, bias, "xnor_conv2d_tc")
    return out.reshape(N, Ho, Wo, O).permute(0, 3, 1, 2)


def xnor_conv2d_pack(x, w, C, threshold, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
    """As the CUDA binding: the fused conv + pack kernel, or (groups sharing output words) the conv
    kernel then the threshold pack kernel."""
    from gxnor_cuda._checks import check_threshold
    from gxnor_cuda._conv_checks import check_conv

    check_threshold(threshold)
    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups, scale, bias)
    if groups != 1 and (O // groups) % 32:
        return conv2d_then_pack(xnor_conv2d, pack_ternary)(x, w, C, threshold, stride, padding, dilation, groups,
                                                           scale, bias)
    shape = torch.tensor([N, H, Wd, G, Wg, O, kh, kw, *s, *p, *d, Ho, Wo], dtype=torch.int64)
    wp = fmt.packed_words(O)
    out = torch.zeros((N, Ho, Wo, 2, wp), dtype=torch.int32)  # the padding words: zeroed by the caller
    out[..., 1, :(O + 31) // 32] = -1  # real words poisoned (sign without gate): a missed store is non-canonical
    null = ctypes.c_void_p(0)
    sc = scale.contiguous() if scale is not None else None
    bi = bias.contiguous() if bias is not None else None
    r = float(torch.tensor(threshold, dtype=torch.float32))
    _ok(lib().gxnor_cuda_xnor_conv2d_pack(_p(x.contiguous()), _p(w.contiguous()), _p(shape),
                                          _p(sc) if sc is not None else null, _p(bi) if bi is not None else null,
                                          ctypes.c_float(r), _p(out), ctypes.c_int64(wp), None), "xnor_conv2d_pack")
    return out
