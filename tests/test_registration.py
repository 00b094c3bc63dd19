"""Every op of the schema table has an implementation on every backend: the reference twin, a Triton
kernel (or a stated exception), a kernel for the CPU dispatch key and, in a CUDA build, for CUDA;
and a fake. Adding a schema without its implementations fails here."""

from __future__ import annotations

import pytest
import torch

from gxnor_cuda import _backend, _ops, _triton

# ops Triton does not implement, and why (their CUDA dispatch runs the platform's kernel)
TRITON_EXCEPTIONS = {"xnor_conv2d_weight_grad": "the float weight gradient runs on cuDNN from the reference"}


@pytest.mark.parametrize("op", list(_ops.SCHEMAS))
def test_op_has_every_implementation(op):
    assert callable(_backend.reference_impl(op)), f"{op}: no reference twin"
    assert hasattr(_triton, op) or op in TRITON_EXCEPTIONS, f"{op}: no Triton kernel and no stated exception"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gxnor::{op}", "CPU"), f"{op}: no CPU kernel"
    if "cuda_archs" in _backend.native_info() or torch.cuda.is_available():
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gxnor::{op}", "CUDA"), f"{op}: no CUDA kernel"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gxnor::{op}", "Meta"), f"{op}: no fake"


def test_exceptions_are_real():
    assert all(op in _ops.SCHEMAS and not hasattr(_triton, op) for op in TRITON_EXCEPTIONS)


def test_the_checks_see_a_missing_kernel():
    lib = torch.library.Library("gxnor_regtest", "DEF")  # noqa: TOR901
    lib.define("lonely(Tensor x) -> Tensor")
    assert not torch._C._dispatch_has_kernel_for_dispatch_key("gxnor_regtest::lonely", "CPU")
    assert not torch._C._dispatch_has_kernel_for_dispatch_key("gxnor_regtest::lonely", "Meta")
    with pytest.raises(AttributeError):
        _backend.reference_impl("lonely")
