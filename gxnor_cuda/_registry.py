"""Where each op of the schema table (``_ops.SCHEMAS``) is implemented: one table per backend, the
op's name next to its implementation, so one search for a name finds every implementation.

- reference: ``REFERENCE`` (pure torch; the oracle of every test, and the CPU / CUDA kernel where
  the native library is missing);
- triton: ``triton_table()`` (imported only where Triton loads); ``TRITON_EXCEPTIONS`` names the ops
  it leaves to another kernel, and why;
- cpp: ``csrc/bind/cpu_registry.cpp``; cuda: ``csrc/bind/cuda_ops.cpp`` (one TORCH_LIBRARY_IMPL
  table each; ``CUDA_EXCEPTIONS`` are the ops the CUDA build leaves to the reference twin);
- fake (shapes, for torch.compile and FakeTensorMode): ``_ops.py``, beside the schemas.
``tests/test_registration.py`` fails when an op lacks an entry in any of them.
"""

from __future__ import annotations

import functools

from . import reference as ref
from . import reference_dst as ref_dst

REFERENCE = {
    "pack_ternary": ref.pack_ternary,
    "quantize_pack": ref.quantize_pack,
    "unpack_ternary": ref.unpack_ternary,
    "count_noncanonical": ref.count_noncanonical,
    "xnor_gemm": ref.xnor_gemm,
    "ternary_matmul": ref.ternary_matmul,
    "xnor_conv2d": ref.xnor_conv2d,
    "xnor_conv2d_pack": ref.xnor_conv2d_pack,
    "xnor_conv2d_weight_grad": ref.xnor_conv2d_weight_grad,
    "xnor_conv2d_maxpool2x2": ref.xnor_conv2d_maxpool2x2,
    "dst_update_": ref_dst.dst_update_,
    "dst_update_states_": ref_dst.dst_update_states_,
    "maxpool2x2": ref.maxpool2x2,
    "maxpool2x2_backward": ref.maxpool2x2_backward,
    "conv2d_maxpool2x2": ref.conv2d_maxpool2x2,
    "conv2d_maxpool2x2_weight_grad": ref.conv2d_maxpool2x2_weight_grad,
    "accumulator_stats": ref.accumulator_stats,
}

# ops the GPU backends leave to the reference twin (torch's own GPU kernels), and why
TRITON_EXCEPTIONS = {
    "xnor_conv2d_weight_grad": "a float conv: the reference twin runs it on cuDNN",
    "maxpool2x2": "float pooling: the reference twin runs torch's GPU kernel (MaxPool2x2 uses it off the CPU)",
    "maxpool2x2_backward": "float pooling: the reference twin runs on torch's GPU ops",
}
# ops the native CUDA build leaves to the Triton table (else the reference twin)
CUDA_EXCEPTIONS = {
    **TRITON_EXCEPTIONS,
    "xnor_conv2d_maxpool2x2": "the Triton kernels pool in the conv epilogue (tensor-core or popcount conv)",
    "conv2d_maxpool2x2": "a float conv + pool on CUDA cores: the Triton kernel (no tensor-core work to add)",
    "conv2d_maxpool2x2_weight_grad": "the Triton kernel, as its forward",
    "accumulator_stats": "a memory-bound pass with atomics: the Triton kernel",
}


@functools.cache
def triton_table() -> dict:
    """op -> Triton implementation (GPU, or the interpreter with TRITON_INTERPRET=1)."""
    from ._triton import conv, conv_pool, dst, gemm, pack, stats, xnor_conv_pool

    return {
        "pack_ternary": pack.pack_ternary,
        "quantize_pack": pack.quantize_pack,
        "unpack_ternary": pack.unpack_ternary,
        "count_noncanonical": pack.count_noncanonical,
        "xnor_gemm": gemm.xnor_gemm,
        "ternary_matmul": gemm.ternary_matmul,
        "xnor_conv2d": conv.xnor_conv2d,
        "xnor_conv2d_pack": conv.xnor_conv2d_pack,
        "xnor_conv2d_maxpool2x2": xnor_conv_pool.xnor_conv2d_maxpool2x2,
        "conv2d_maxpool2x2": conv_pool.conv2d_maxpool2x2,
        "conv2d_maxpool2x2_weight_grad": conv_pool.conv2d_maxpool2x2_weight_grad,
        "accumulator_stats": stats.accumulator_stats,
        "dst_update_": dst.dst_update_,
        "dst_update_states_": dst.dst_update_states_,
    }
