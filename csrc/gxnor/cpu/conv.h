// CPU packed im2col for xnor_conv2d: gathers, for output rows [m0, m1) and group gi, the packed
// channel words of every kernel tap into GEMM rows (2, kh * kw * wg) (gate words of all taps,
// then sign words). Taps in the zero padding become zero words (gate off): the popcount GEMM
// then gives exactly F.conv2d with zero padding. Channel padding bits are zero in both operands.
#pragma once
#include <cstdint>
#include <cstring>

#include "../conv_shape.h"
#include "taps.h"

namespace gxnor::cpu {

inline void im2col_packed(const int32_t* x, const ConvShape& s, int64_t gi, int64_t m0, int64_t m1,
                          int32_t* dst) {
  const int64_t kw_words = s.words(), wg = s.wg, ps = s.pixel_stride();
  const int32_t* xg = x + gi * 2 * wg;
  for_each_tap(s, m0, m1, [&](int64_t r, int64_t tap, int64_t px) {
    int32_t* g = dst + r * 2 * kw_words + tap * wg;  // gate words of all taps, then sign words
    int32_t* sg = g + kw_words;
    if (px < 0) {
      for (int64_t q = 0; q < wg; ++q) g[q] = sg[q] = 0;
      return;
    }
    const int32_t* src = xg + px * ps;
    for (int64_t q = 0; q < wg; ++q) {
      g[q] = src[q];
      sg[q] = src[wg + q];
    }
  });
}

// Weights (o, kh, kw, 2, wg) -> GEMM rows (o, 2, kh * kw * wg) in the same tap order.
inline void weights_to_rows(const int32_t* w, const ConvShape& s, int32_t* dst) {
  const int64_t taps = s.kh * s.kw, kw_words = s.words(), wg = s.wg;
  for (int64_t oc = 0; oc < s.o; ++oc)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t p = 0; p < 2; ++p)
        std::memcpy(dst + (oc * 2 + p) * kw_words + t * wg, w + ((oc * taps + t) * 2 + p) * wg,
                    static_cast<size_t>(wg) * sizeof(int32_t));
}

}  // namespace gxnor::cpu
