// The one indirection walk of the CPU implicit-GEMM convolutions: for output rows [m0, m1) and
// every kernel tap, the input pixel it reads, or -1 where the tap falls in the zero padding. The
// lanes and table-lookup paths turn it into tap-pointer tables; the im2col gathers (popcount rows,
// AMX int8 tiles) copy through it.
#pragma once
#include <cstdint>

#include "../conv_shape.h"

namespace gxnor::cpu {

// f(r, tap, pixel) for r = m - m0 in [0, m1 - m0), tap = ky * kw + kx, pixel = (b * h + iy) * w + ix
// or -1 in the padding; rows in order, taps in order within a row.
template <class F>
inline void for_each_tap(const ConvShape& s, int64_t m0, int64_t m1, F&& f) {
  int64_t ox = m0 % s.wo, oy = (m0 / s.wo) % s.ho, b = m0 / (s.wo * s.ho);  // one division per call
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t ky = 0; ky < s.kh; ++ky) {
      const int64_t iy = oy * s.sh - s.ph + ky * s.dh;
      for (int64_t kx = 0; kx < s.kw; ++kx) {
        const int64_t ix = ox * s.sw - s.pw + kx * s.dw;
        const bool in = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
        f(m - m0, ky * s.kw + kx, in ? (b * s.h + iy) * s.w + ix : int64_t(-1));
      }
    }
    if (++ox == s.wo) {
      ox = 0;
      if (++oy == s.ho) oy = 0, ++b;
    }
  }
}

// dst[(m - m0) * kh * kw + tap] = base + pixel * pix (pix: elements per pixel), or zero in the padding.
template <class T>
inline void tap_pointers(const T* base, int64_t pix, const ConvShape& s, int64_t m0, int64_t m1,
                         const T* zero, const T** dst) {
  const int64_t taps = s.kh * s.kw;
  for_each_tap(s, m0, m1, [&](int64_t r, int64_t tap, int64_t px) {
    dst[r * taps + tap] = px < 0 ? zero : base + px * pix;
  });
}

// The packed channels-last input x (n, h, w, g, 2, wg) int32 of group gi, as tap pointers.
inline void packed_tap_pointers(const int32_t* x, const ConvShape& s, int64_t gi, int64_t m0, int64_t m1,
                                const int32_t* zero, const int32_t** dst) {
  tap_pointers(x + gi * 2 * s.wg, s.pixel_stride(), s, m0, m1, zero, dst);
}

}  // namespace gxnor::cpu
