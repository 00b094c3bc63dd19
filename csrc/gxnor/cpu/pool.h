// 2 x 2 / stride 2 max pooling with a 1-byte argmax (torch-free): the forward writes the maxima and
// the window position of each (2 dy + dx), the backward writes the whole input gradient in one
// pass (the gradient where the position matches, 0 elsewhere and in a dropped odd last row or
// column). torch's max_pool2d rules: the window is scanned row by row, a value replaces the
// maximum when greater or NaN (the first maximum wins a tie, the last NaN wins over anything).
// Channels-last tensors run channel rows written for the compiler's vectoriser; others go element
// by element through their strides.
#pragma once
#include <cstdint>

#include "parallel.h"

namespace gxnor::cpu {

// A (N, C, H, W) tensor's strides in elements.
struct Strides4 {
  int64_t n, c, h, w;
};

// Input (n, c, h, w) with strides xs; outputs (n, c, h / 2, w / 2) with strides ys (maxima and
// argmax alike).
struct Pool2x2 {
  int64_t n, c, h, w;
  Strides4 xs, ys;
  int64_t ho() const { return h / 2; }
  int64_t wo() const { return w / 2; }
};

// One window element v at position k against the running maximum (v != v: NaN).
inline void pool_take(float v, int32_t k, float& m, int32_t& arg) {
  const bool t = v > m || v != v;
  m = t ? v : m;
  arg = t ? k : arg;
}

// C channels of one window whose four rows p0..p3 are contiguous in channels.
inline void maxpool_channels(const float* __restrict p0, const float* __restrict p1,
                             const float* __restrict p2, const float* __restrict p3, float* __restrict y,
                             uint8_t* __restrict arg, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    float m = p0[c];
    int32_t k = 0;  // int32, not uint8: the compare masks stay one width and the loop vectorises
    pool_take(p1[c], 1, m, k);
    pool_take(p2[c], 2, m, k);
    pool_take(p3[c], 3, m, k);
    y[c] = m;
    arg[c] = static_cast<uint8_t>(k);
  }
}

// out[c] = g[c] where arg[c] == want, else +0.0: a bit mask on the float's bits (no float select,
// so NaN and -0.0 pass unchanged, and the loop vectorises).
inline void unpool_channels(const float* __restrict g, const uint8_t* __restrict arg, float* __restrict out,
                            int64_t C, uint8_t want) {
  using bits = uint32_t __attribute__((may_alias));
  const bits* gb = reinterpret_cast<const bits*>(g);
  bits* ob = reinterpret_cast<bits*>(out);
  for (int64_t c = 0; c < C; ++c) ob[c] = gb[c] & (0u - static_cast<uint32_t>(arg[c] == want));
}

// Rows (sample, output row) [r0, r1): every channel and output column.
inline void maxpool2x2_rows(const float* x, float* y, uint8_t* arg, const Pool2x2& s, int64_t r0,
                            int64_t r1) {
  const int64_t ho = s.ho(), wo = s.wo();
  const bool unit = s.xs.c == 1 && s.ys.c == 1;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / ho, oy = r % ho;
    for (int64_t ox = 0; ox < wo; ++ox) {
      const float* p0 = x + n * s.xs.n + 2 * oy * s.xs.h + 2 * ox * s.xs.w;
      const float* p2 = p0 + s.xs.h;
      float* yo = y + n * s.ys.n + oy * s.ys.h + ox * s.ys.w;
      uint8_t* ao = arg + n * s.ys.n + oy * s.ys.h + ox * s.ys.w;
      if (unit) {
        maxpool_channels(p0, p0 + s.xs.w, p2, p2 + s.xs.w, yo, ao, s.c);
        continue;
      }
      for (int64_t c = 0; c < s.c; ++c) {
        const int64_t o = c * s.xs.c;
        float m = p0[o];
        int32_t k = 0;
        pool_take(p0[o + s.xs.w], 1, m, k);
        pool_take(p2[o], 2, m, k);
        pool_take(p2[o + s.xs.w], 3, m, k);
        yo[c * s.ys.c] = m;
        ao[c * s.ys.c] = static_cast<uint8_t>(k);
      }
    }
  }
}

// Input-gradient rows (sample, input row) [r0, r1) with strides gis; g with strides gs, arg ys.
inline void maxpool2x2_backward_rows(const float* g, const uint8_t* arg, float* gi, const Pool2x2& s,
                                     const Strides4& gs, const Strides4& gis, int64_t r0, int64_t r1) {
  const int64_t ho = s.ho(), wo = s.wo();
  const bool unit = gs.c == 1 && s.ys.c == 1 && gis.c == 1;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / s.h, iy = r % s.h, oy = iy / 2;
    for (int64_t ix = 0; ix < s.w; ++ix) {
      float* go = gi + n * gis.n + iy * gis.h + ix * gis.w;
      const int64_t ox = ix / 2;
      if (oy >= ho || ox >= wo) {  // the row or column a floor-mode pool drops
        for (int64_t c = 0; c < s.c; ++c) go[c * gis.c] = 0.0f;
        continue;
      }
      const uint8_t want = static_cast<uint8_t>(2 * (iy & 1) + (ix & 1));
      const float* gp = g + n * gs.n + oy * gs.h + ox * gs.w;
      const uint8_t* ap = arg + n * s.ys.n + oy * s.ys.h + ox * s.ys.w;
      if (unit) {
        unpool_channels(gp, ap, go, s.c, want);
        continue;
      }
      for (int64_t c = 0; c < s.c; ++c) go[c * gis.c] = ap[c * s.ys.c] == want ? gp[c * gs.c] : 0.0f;
    }
  }
}

inline void maxpool2x2(const float* x, float* y, uint8_t* arg, const Pool2x2& s) {
  parallel_for(0, s.n * s.ho(), 1, [&](int64_t r0, int64_t r1) { maxpool2x2_rows(x, y, arg, s, r0, r1); });
}

inline void maxpool2x2_backward(const float* g, const uint8_t* arg, float* gi, const Pool2x2& s,
                                const Strides4& gs, const Strides4& gis) {
  parallel_for(0, s.n * s.h, 1,
               [&](int64_t r0, int64_t r1) { maxpool2x2_backward_rows(g, arg, gi, s, gs, gis, r0, r1); });
}

}  // namespace gxnor::cpu
