"""Guard against silent skips: when GXNOR_REQUIRE_BACKENDS names backends (CI sets
"cpp,triton"), each must really be available, or the per-backend tests would only skip."""

import os

import pytest

from gxnor_cuda import _backend

REQUIRED = [b for b in os.environ.get("GXNOR_REQUIRE_BACKENDS", "").split(",") if b]


@pytest.mark.skipif(not REQUIRED, reason="GXNOR_REQUIRE_BACKENDS not set")
@pytest.mark.parametrize("name", REQUIRED or ["none"])
def test_required_backend_is_loaded(name):
    ok, why = _backend.STATUS.get(name, (False, "unknown backend"))
    assert ok, f"backend {name!r} is required here but not available: {why}"


def test_cpu_dispatch_is_native_when_cpp_loaded():
    if _backend.available("cpp"):
        assert _backend.STATUS["dispatch_cpu"] == (True, "cpp")
