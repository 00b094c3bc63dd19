"""Every CPU instruction-set path (AMX, AVX-512 VPOPCNTDQ, AVX2, scalar) through the torch op."""

import pytest
import torch

from gxnor_cuda import _backend
from gxnor_cuda import functional as F
from gxnor_cuda import reference as ref
from tests.helpers import rand_ternary

pytestmark = pytest.mark.skipif(not _backend.available("cpp"), reason="native library not loaded")


@pytest.mark.parametrize("K", [1, 17, 32, 64, 65, 999])
def test_pack_paths_agree(cpu_isa, K):
    x = rand_ternary(7, K)
    assert torch.equal(F.pack_ternary(x, backend="cpp"), ref.pack_ternary(x))
    assert torch.equal(F.pack_ternary(x.to(torch.int8), backend="cpp"), ref.pack_ternary(x))
    y = torch.randn(7, K)
    assert torch.equal(F.quantize_pack(y, 0.6, backend="cpp"), ref.quantize_pack(y, 0.6))
    p = ref.pack_ternary(x)
    assert torch.equal(F.unpack_ternary(p, K, torch.float32, backend="cpp"), x)
    assert torch.equal(F.unpack_ternary(p, K, torch.int8, backend="cpp"), x.to(torch.int8))
    with pytest.raises(RuntimeError, match="x: expected values"):
        F.pack_ternary(x + 0.5, backend="cpp")


def test_set_isa_rejects_unknown():
    with pytest.raises(RuntimeError, match="isa: expected 'amx', 'avx512', 'avx2' or 'scalar'"):
        torch.ops.gxnor_native.set_cpu_isa("sse9")
