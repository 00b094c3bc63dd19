// CUDA ternary x ternary convolution on int8 tensor cores (torch-free): the implicit GEMM of
// xnor_conv2d on tc16 operands through the main loop of tc_tile.cuh. Rows m = (b, oy, ox) of the
// output, columns = output channels of one group (grid z); K = (tap, channel): per tap
// Tc = 8 ceil(C/groups / 128) words, so a K step (8 words) never crosses a tap.
//   x: (n h w g + 1, Tc) tc16, one row per (pixel, group) plus a zero row last (the padding taps)
//   w: (o kh kw, Tc) tc16, one row per (output channel, tap)
// Output (n, ho, wo, o): int32, or float32 acc * scale + bias. Rows past M or channels past the
// group read the last valid row and are not stored.
#include "../conv_shape.h"
#include "api.h"
#include "compat.cuh"
#include "tc_tile.cuh"

namespace gxnor::cuda {

__global__ void __launch_bounds__(kTcThreads)
    xnor_tc_conv2d_kernel(const int32_t* __restrict__ x, const int32_t* __restrict__ w, ConvShape s,
                          int64_t Tc, const float* __restrict__ scale, const float* __restrict__ bias,
                          int32_t* __restrict__ c_int, float* __restrict__ c_float) {
  const int tid = threadIdx.x, warp = tid >> 5;
  const int wm = (warp >> 1) * 64, wn = (warp & 1) * 64;
  const int64_t og = s.og(), M = s.rows(), gi = blockIdx.z, taps = s.kh * s.kw;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kTcBM, j0 = static_cast<int64_t>(blockIdx.y) * kTcBN;
  const int chunks = static_cast<int>(Tc / kTcWords);  // K steps per tap
  // This thread's output row (b, oy, ox) and output channel, clamped into range.
  const int64_t m = i0 + tid < M ? i0 + tid : M - 1, oc = gi * og + (j0 + tid < og ? j0 + tid : og - 1);
  const int64_t ox = m % s.wo, oy = (m / s.wo) % s.ho, b = m / (s.wo * s.ho);
  const int64_t zero_row = s.n * s.h * s.w * s.g;
  // The rows of step st: B's are consecutive (K = (tap, chunk) is the weight row's own order); A's
  // move to another input pixel at each new tap (tc_mainloop asks for st = 0, 1, 2, ... in order).
  const int32_t* wrow = w + oc * taps * Tc;
  const int32_t* ximg = x + (b * s.h * s.w * s.g + gi) * Tc;  // pixel (iy, ix) of this image and group
  const int64_t iy0 = oy * s.sh - s.ph, ix0 = ox * s.sw - s.pw, pix = s.g * Tc;
  int ky = 0, kx = -1, chunk = chunks - 1;
  const int32_t* xrow = nullptr;
  const auto a_row = [&](int) {
    if (++chunk == chunks) {  // the next tap
      chunk = 0;
      if (++kx == s.kw) kx = 0, ++ky;
      const int64_t iy = iy0 + ky * s.dh, ix = ix0 + kx * s.dw;
      xrow = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w ? ximg + (iy * s.w + ix) * pix : x + zero_row * Tc;
    }
    return reinterpret_cast<const uint4*>(xrow + chunk * kTcWords);
  };
  const auto b_row = [&](int st) { return reinterpret_cast<const uint4*>(wrow + st * kTcWords); };
  int acc[kTcMI][kTcNI][4];
  tc_mainloop(static_cast<int>(taps) * chunks, a_row, b_row, acc);
  store_mma_tile(
      acc, i0 + wm, j0 + wn, M, og, s.o, gi * og, [](int v, int, int) { return v >> 12; }, scale, bias, c_int,
      c_float);
}

}  // namespace gxnor::cuda

extern "C" int gxnor_cuda_xnor_conv2d_tc(const int32_t* x, const int32_t* w, const int64_t* shape16,
                                         int64_t Tc, const float* scale, const float* bias, int32_t* c_int,
                                         float* c_float, void* stream) {
  using namespace gxnor::cuda;
  const int64_t* v = shape16;
  const gxnor::ConvShape s{v[0], v[1], v[2],  v[3],  v[4],  v[5],  v[6],  v[7],
                           v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
  if (Tc % kTcWords != 0 || Tc == 0) return 1;  // the tc16 layout pads rows to whole 128-value steps
  if (s.rows() == 0 || s.o == 0) return 0;
  return launch_tiles(xnor_tc_conv2d_kernel, ceil_div(s.rows(), kTcBM), ceil_div(s.og(), kTcBN), s.g,
                      dim3(kTcThreads), stream, x, w, s, Tc, scale, bias, c_int, c_float);
}
