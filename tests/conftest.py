"""Test setup: Triton runs in its interpreter when no GPU is visible (set before triton imports)."""

import os

try:
    import torch

    _has_cuda = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    _has_cuda = False
if not _has_cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(params=["scalar", "avx2", "avx512", "amx"])
def cpu_isa(request):
    """Run the test with the C++ kernels forced to one ISA path; skip paths this CPU lacks."""
    from gxnor_cuda import _backend

    if not _backend.available("cpp"):
        pytest.skip("native library not loaded")
    ns = torch.ops.gxnor_native
    before = ns.cpu_isa()
    got = ns.set_cpu_isa(request.param)
    if not got.startswith(request.param):
        ns.set_cpu_isa(before)
        pytest.skip(f"this CPU lacks {request.param} (got {got})")
    yield got
    ns.set_cpu_isa(before)


def pytest_report_header(config):
    """Say at the top of every run which backends load, and why not: their tests skip otherwise
    (GXNOR_REQUIRE_BACKENDS=cpp,triton, as `make test` sets, turns those skips into failures)."""
    from gxnor_cuda import _backend

    return [f"gxnor backend {name}: {'ok' if ok else 'UNAVAILABLE'} ({why})"
            for name, (ok, why) in _backend.STATUS.items() if name in _backend.BACKENDS]
