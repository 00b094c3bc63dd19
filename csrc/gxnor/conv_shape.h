// Shape of a packed channels-last convolution (xnor_conv2d), torch-free, shared by the CPU and
// CUDA kernels. x: (n, h, w, g, 2, wg) int32; weights: (o, kh, kw, 2, wg) int32 (o = g * og);
// output rows m = (b, oy, ox) of the implicit GEMM, K words = (ky, kx, word) = kh * kw * wg.
#pragma once
#include <cstdint>

#include "format.h"

namespace gxnor {

struct ConvShape {
  int64_t n, h, w, g, wg, o, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo;

  GXNOR_HD int64_t rows() const { return n * ho * wo; }         // M of the implicit GEMM
  GXNOR_HD int64_t og() const { return o / g; }                 // output channels per group
  GXNOR_HD int64_t words() const { return kh * kw * wg; }       // K words per plane
  GXNOR_HD int64_t pixel_stride() const { return g * 2 * wg; }  // int32 per input pixel

  // Offset (in int32) of group gi's packed channels at the input pixel read by output row m for
  // kernel tap (ky, kx), or -1 where that tap falls in the zero padding.
  GXNOR_HD int64_t src(int64_t m, int64_t ky, int64_t kx, int64_t gi) const {
    const int64_t ox = m % wo, t = m / wo, oy = t % ho, b = t / ho;
    const int64_t iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
    if (iy < 0 || iy >= h || ix < 0 || ix >= w) return -1;
    return ((b * h + iy) * w + ix) * pixel_stride() + gi * 2 * wg;
  }
};

}  // namespace gxnor
