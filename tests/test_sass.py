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
