// CUDA gated XNOR convolution (torch-free): implicit GEMM on packed channels-last operands.
// Rows m = (b, oy, ox) of the output, columns = output channels of one group (grid z), K words =
// (ky, kx, word) = kh * kw * wg. Same tiling as gemm.cu (64x64 C tile per 16x16 block, 4x4 per
// thread, K chunks of 8 word pairs in shared memory); the A tile loader gathers the input words
// of each tap (zero words in the padding: gate off), the B loader reads the (o, kh, kw, 2, wg)
// weights directly. Output (n, ho, wo, o) int32, or float32 with per-channel scale and bias, or
// (c_pack) the next layer's packed activations phi_thr(acc * scale + bias): the tile's ternary
// values go through shared memory and 128 threads each build one (row, 32-channel word) pair of
// words, so the float output is never written. That needs every group's first output channel at
// a word boundary (groups = 1 or o / groups a multiple of 32): the binding checks.
#include "../conv_shape.h"
#include "api.h"
#include "compat.cuh"
#include "xnor_tile.cuh"

namespace gxnor::cuda {

__global__ void __launch_bounds__(kThr* kThr)
    xnor_conv2d_kernel(const int32_t* __restrict__ x, const int32_t* __restrict__ w, ConvShape s,
                       const float* __restrict__ scale, const float* __restrict__ bias,
                       int32_t* __restrict__ c_int, float* __restrict__ c_float, int32_t* __restrict__ c_pack,
                       float thr, int64_t wp) {
  __shared__ uint32_t As[kTile][2][kChunk];
  __shared__ uint32_t Bs[kTile][2][kChunk];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThr + tx;
  const int64_t og = s.og(), M = s.rows(), Kw = s.words(), taps = s.kh * s.kw;
  const int64_t gi = blockIdx.z, i0 = static_cast<int64_t>(blockIdx.x) * kTile,
                j0 = static_cast<int64_t>(blockIdx.y) * kTile;
  int acc[kReg][kReg];
  xnor_tile_loop(
      Kw,
      [&](int row, int plane, int64_t gw, uint32_t& av, uint32_t& bv) {
        const int64_t m = i0 + row, jc = j0 + row, tap = gw / s.wg, wi = gw % s.wg;
        uint32_t xa = 0u, wb = 0u;
        if (m < M && gw < Kw) {
          const int64_t off = s.src(m, tap / s.kw, tap % s.kw, gi);
          if (off >= 0) xa = static_cast<uint32_t>(x[off + plane * s.wg + wi]);
        }
        if (jc < og && gw < Kw)
          wb = static_cast<uint32_t>(w[(((gi * og + jc) * taps + tap) * 2 + plane) * s.wg + wi]);
        av = xa, bv = wb;
      },
      As, Bs, acc);
  if (c_pack) {
    __shared__ uint8_t Ps[kTile][kTile];  // bit 0: nonzero (gate), bit 1: negative (sign)
#pragma unroll
    for (int i = 0; i < kReg; ++i)
#pragma unroll
      for (int j = 0; j < kReg; ++j) {
        const int64_t r = i0 + ty + kThr * i, jc = j0 + tx + kThr * j;
        uint8_t v = 0;
        if (r < M && jc < og) {
          const int64_t oc = gi * og + jc;
          const float y =
              static_cast<float>(acc[i][j]) * (scale ? scale[oc] : 1.0f) + (bias ? bias[oc] : 0.0f);
          v = y >= thr ? 1 : (y <= -thr ? 3 : 0);  // NaN: 0
        }
        Ps[ty + kThr * i][tx + kThr * j] = v;
      }
    __syncthreads();
    if (tid < 2 * kTile) {
      const int row = tid / 2, half = tid % 2;
      const int64_t r = i0 + row;
      if (r < M && j0 + 32 * half < og) {
        uint32_t g = 0u, sg = 0u;
#pragma unroll
        for (int b = 0; b < 32; ++b) {
          const uint32_t v = Ps[row][32 * half + b];
          g |= (v & 1u) << b;
          sg |= (v >> 1) << b;
        }
        const int64_t word = (gi * og + j0) / 32 + half;
        c_pack[r * 2 * wp + word] = static_cast<int32_t>(g);
        c_pack[r * 2 * wp + wp + word] = static_cast<int32_t>(sg);
      }
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < kReg; ++i)
#pragma unroll
    for (int j = 0; j < kReg; ++j) {
      const int64_t r = i0 + ty + kThr * i, jc = j0 + tx + kThr * j;
      if (r < M && jc < og) {
        const int64_t oc = gi * og + jc;
        store_c(r * s.o + oc, oc, acc[i][j], scale, bias, c_int, c_float);
      }
    }
}

}  // namespace gxnor::cuda

namespace {
gxnor::ConvShape shape_of(const int64_t* v) {
  return gxnor::ConvShape{v[0], v[1], v[2],  v[3],  v[4],  v[5],  v[6],  v[7],
                          v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
}
}  // namespace

extern "C" int gxnor_cuda_xnor_conv2d(const int32_t* x, const int32_t* w, const int64_t* shape16,
                                      const float* scale, const float* bias, int32_t* c_int, float* c_float,
                                      void* stream) {
  using namespace gxnor::cuda;
  const gxnor::ConvShape s = shape_of(shape16);
  return launch_tiles(xnor_conv2d_kernel, ceil_div(s.rows(), kTile), ceil_div(s.og(), kTile), s.g,
                      dim3(kThr, kThr), stream, x, w, s, scale, bias, c_int, c_float,
                      static_cast<int32_t*>(nullptr), 0.0f, int64_t{0});
}

extern "C" int gxnor_cuda_xnor_conv2d_pack(const int32_t* x, const int32_t* w, const int64_t* shape16,
                                           const float* scale, const float* bias, float thr, int32_t* out,
                                           int64_t wp, void* stream) {
  using namespace gxnor::cuda;
  const gxnor::ConvShape s = shape_of(shape16);
  if (s.g != 1 && s.og() % 32 != 0) return 1;  // cudaErrorInvalidValue: groups would share words
  return launch_tiles(xnor_conv2d_kernel, ceil_div(s.rows(), kTile), ceil_div(s.og(), kTile), s.g,
                      dim3(kThr, kThr), stream, x, w, s, scale, bias, static_cast<int32_t*>(nullptr),
                      static_cast<float*>(nullptr), out, thr, wp);
}
