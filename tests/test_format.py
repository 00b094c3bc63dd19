"""The Python definition of format v1 and the C++ header agree."""

import pathlib
import re

import pytest

from gxnor_cuda import _backend
from gxnor_cuda import format as fmt

HEADER = pathlib.Path(__file__).resolve().parents[1] / "csrc" / "gxnor" / "format.h"


def _header_constants() -> dict[str, int]:
    text = HEADER.read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"constexpr int (k\w+) = (\d+);", text)}


def test_header_constants_match_python():
    c = _header_constants()
    assert c == {
        "kFormatVersion": fmt.FORMAT_VERSION,
        "kBitsPerWord": fmt.BITS_PER_WORD,
        "kPadElems": fmt.PAD_ELEMS,
        "kGatePlane": fmt.GATE_PLANE,
        "kSignPlane": fmt.SIGN_PLANE,
    }


@pytest.mark.skipif(not _backend.available("cpp"), reason="native library not loaded")
def test_compiled_constants_match_python():
    got = list(_backend.native_info()["format_constants"])
    assert got == [fmt.FORMAT_VERSION, fmt.BITS_PER_WORD, fmt.PAD_ELEMS, fmt.GATE_PLANE, fmt.SIGN_PLANE]


def test_packed_words_and_masks():
    assert [fmt.packed_words(k) for k in (1, 63, 64, 65, 128, 129)] == [2, 2, 2, 4, 4, 6]
    assert fmt.valid_mask(0, 1) == 1 and fmt.valid_mask(1, 1) == 0 and fmt.valid_mask(1, 64) == 0xFFFFFFFF
    with pytest.raises(ValueError, match="K: expected a positive"):
        fmt.packed_words(0)
