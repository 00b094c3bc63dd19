// AMX A operand of the implicit-GEMM convolution, gathered and unpacked in one pass: for output
// rows [m0, m0 + nr) of group gi, the int8 im2col rows read straight from the packed
// channels-last input and written in the A-tile layout of gemm_amx.h (block (r / 16, kb) at
// ((r / 16) * KB + kb) * 1 KiB, 16 rows x 64 k inside). K is (ky, kx, channel), the order of
// weights_to_rows; wg is even (channels padded to 64), so every tap fills wg / 2 whole 64-wide
// k blocks. Taps in the zero padding and rows in [nr, rows_padded) are zeros. Torch-free.
#pragma once
#include <cstdint>

#include "../conv_shape.h"
#include "gemm_amx.h"
#include "isa.h"

namespace gxnor::cpu {

GXNOR_TARGET_AMX inline void im2col_unpack_i8(const int32_t* x, const ConvShape& s, int64_t gi, int64_t m0,
                                              int64_t nr, int64_t rows_padded, int8_t* dst) {
  using namespace amx;
  const int64_t wq = s.wg / 2, KB = s.kh * s.kw * wq, ps = s.pixel_stride();
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t r = 0; r < rows_padded; ++r) {
    int8_t* row = dst + (r / 16) * KB * kVnniBytes + (r % 16) * kTileK;
    if (r >= nr) {
      for (int64_t kb = 0; kb < KB; ++kb) _mm512_storeu_si512(row + kb * kVnniBytes, zero);
      continue;
    }
    const int64_t m = m0 + r, ox = m % s.wo, t = m / s.wo, oy = t % s.ho, b = t / s.ho;
    const int32_t* img = x + b * s.h * s.w * ps + gi * 2 * s.wg;
    for (int64_t ky = 0; ky < s.kh; ++ky) {
      const int64_t iy = oy * s.sh - s.ph + ky * s.dh;
      for (int64_t kx = 0; kx < s.kw; ++kx) {
        const int64_t ix = ox * s.sw - s.pw + kx * s.dw;
        int8_t* d = row + (ky * s.kw + kx) * wq * kVnniBytes;
        if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) {
          for (int64_t q = 0; q < wq; ++q) _mm512_storeu_si512(d + q * kVnniBytes, zero);
          continue;
        }
        const auto* g64 = reinterpret_cast<const uint64_t*>(img + (iy * s.w + ix) * ps);
        for (int64_t q = 0; q < wq; ++q)
          _mm512_storeu_si512(d + q * kVnniBytes, unpack64(g64[q], g64[wq + q]));
      }
    }
  }
}

}  // namespace gxnor::cpu
