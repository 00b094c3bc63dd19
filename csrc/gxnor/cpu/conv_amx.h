// AMX A operand of the implicit-GEMM convolution, gathered and unpacked in one pass: for output
// rows [m0, m0 + nr) of group gi, the int8 im2col rows read straight from the packed
// channels-last input and written in the A-tile layout of gemm_amx.h (block (r / 16, kb) at
// ((r / 16) * KB + kb) * 1 KiB, 16 rows x 64 k inside). K is (ky, kx, channel), the order of
// weights_to_rows; wg is even (channels padded to 64), so every tap fills wg / 2 whole 64-wide
// k blocks. Taps in the zero padding and rows in [nr, rows_padded) are zeros. Torch-free.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../conv_shape.h"
#include "gemm_amx.h"
#include "isa.h"
#include "parallel.h"
#include "taps.h"

namespace gxnor::cpu {

GXNOR_TARGET_AMX inline void im2col_unpack_i8(const int32_t* x, const ConvShape& s, int64_t gi, int64_t m0,
                                              int64_t nr, int64_t rows_padded, int8_t* dst) {
  using namespace amx;
  const int64_t wq = s.wg / 2, taps = s.kh * s.kw, KB = taps * wq;
  const __m512i zero = _mm512_setzero_si512();
  // Tap pointers of one 16-row tile block at a time (null in the padding).
  const int32_t** ptr = thread_scratch<const int32_t*, 4>(16 * taps);
  for (int64_t r0 = 0; r0 < rows_padded; r0 += 16) {
    int8_t* blk = dst + (r0 / 16) * KB * kVnniBytes;
    const int64_t r1 = std::min(nr, r0 + 16);
    if (r0 < r1) packed_tap_pointers(x, s, gi, m0 + r0, m0 + r1, nullptr, ptr);
    for (int64_t r = r0; r < r0 + 16; ++r) {
      int8_t* row = blk + (r % 16) * kTileK;
      for (int64_t tap = 0; tap < taps; ++tap) {
        int8_t* d = row + tap * wq * kVnniBytes;
        const auto* g64 = r < r1 ? reinterpret_cast<const uint64_t*>(ptr[(r - r0) * taps + tap]) : nullptr;
        for (int64_t q = 0; q < wq; ++q)
          _mm512_storeu_si512(d + q * kVnniBytes, g64 ? unpack64(g64[q], g64[wq + q]) : zero);
      }
    }
  }
}

}  // namespace gxnor::cpu
