"""Every op of the schema table has an implementation on every backend, each listed in its backend's
one table: the reference and Triton tables of ``_registry.py`` (Triton with stated exceptions), the
CPU table ``csrc/bind/cpu_registry.cpp`` and the CUDA table ``csrc/bind/cuda_ops.cpp`` (read from the
source, so a CPU-only build checks it too), the kernels the dispatcher holds, and a fake. Adding a
schema without its implementations fails here."""

from __future__ import annotations

import pathlib
import re

import pytest
import torch

from gxnor_cuda import _backend, _ops, _registry

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _cpp_table(path: str) -> dict[str, str]:
    """op -> bound function of a TORCH_LIBRARY_IMPL(gxnor, ...) table."""
    text = (ROOT / path).read_text()
    blocks = re.findall(r"TORCH_LIBRARY_IMPL\(gxnor, \w+, m\) \{(.*?)\n\}", text, flags=re.S)
    assert len(blocks) == 1, f"{path}: expected one registration table, got {len(blocks)}"
    return dict(re.findall(r'm\.impl\("(\w+)", &([\w:]+)\);', blocks[0]))


def test_one_cpu_registration_table():
    tables = [p for p in (ROOT / "csrc").rglob("*.cpp") if "TORCH_LIBRARY_IMPL(gxnor, CPU" in p.read_text()]
    assert [p.name for p in tables] == ["cpu_registry.cpp"]


@pytest.mark.parametrize("op", list(_ops.SCHEMAS))
def test_op_has_every_implementation(op):
    assert callable(_registry.REFERENCE.get(op)), f"{op}: no entry in the reference table"
    tri = _registry.triton_table()
    assert callable(tri.get(op)) or op in _registry.TRITON_EXCEPTIONS, f"{op}: no Triton entry, no stated exception"
    assert op in _cpp_table("csrc/bind/cpu_registry.cpp"), f"{op}: no entry in the CPU table"
    assert op in _cpp_table("csrc/bind/cuda_ops.cpp") or op in _registry.CUDA_EXCEPTIONS, f"{op}: no CUDA entry"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gxnor::{op}", "CPU"), f"{op}: no CPU kernel"
    if "cuda_archs" in _backend.native_info() or torch.cuda.is_available():
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gxnor::{op}", "CUDA"), f"{op}: no CUDA kernel"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gxnor::{op}", "Meta"), f"{op}: no fake"


def test_tables_hold_only_schema_ops_and_real_exceptions():
    ops = set(_ops.SCHEMAS)
    assert set(_registry.REFERENCE) == ops and set(_registry.triton_table()) <= ops
    assert set(_cpp_table("csrc/bind/cpu_registry.cpp")) == ops
    assert set(_cpp_table("csrc/bind/cuda_ops.cpp")) == ops - set(_registry.CUDA_EXCEPTIONS)
    assert not set(_registry.TRITON_EXCEPTIONS) & set(_registry.triton_table())


def test_the_checks_see_a_missing_kernel():
    lib = torch.library.Library("gxnor_regtest", "DEF")  # noqa: TOR901
    lib.define("lonely(Tensor x) -> Tensor")
    assert not torch._C._dispatch_has_kernel_for_dispatch_key("gxnor_regtest::lonely", "CPU")
    assert not torch._C._dispatch_has_kernel_for_dispatch_key("gxnor_regtest::lonely", "Meta")
    assert "lonely" not in _registry.REFERENCE
