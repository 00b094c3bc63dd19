// CUDA gated XNOR convolution (torch-free): implicit GEMM on packed channels-last operands.
// Rows m = (b, oy, ox) of the output, columns = output channels of one group (grid z), K words =
// (ky, kx, word) = kh * kw * wg. Same tiling as gemm.cu (64x64 C tile per 16x16 block, 4x4 per
// thread, K chunks of 8 word pairs in shared memory); the A tile loader gathers the input words
// of each tap (zero words in the padding: gate off), the B loader reads the (o, kh, kw, 2, wg)
// weights directly. Output (n, ho, wo, o) int32, or float32 with per-channel scale and bias.
#include "../conv_shape.h"
#include "api.h"
#include "compat.cuh"
#include "xnor_tile.cuh"

namespace gxnor::cuda {

__global__ void __launch_bounds__(kThr* kThr)
    xnor_conv2d_kernel(const int32_t* __restrict__ x, const int32_t* __restrict__ w, ConvShape s,
                       const float* __restrict__ scale, const float* __restrict__ bias,
                       int32_t* __restrict__ c_int, float* __restrict__ c_float) {
  __shared__ uint32_t As[kTile][2][kChunk];
  __shared__ uint32_t Bs[kTile][2][kChunk];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThr + tx;
  const int64_t gi = blockIdx.z, og = s.og(), M = s.rows(), Kw = s.words(), taps = s.kh * s.kw;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kTile, j0 = static_cast<int64_t>(blockIdx.x) * kTile;
  int acc[kReg][kReg];
#pragma unroll
  for (int i = 0; i < kReg; ++i)
#pragma unroll
    for (int j = 0; j < kReg; ++j) acc[i][j] = 0;
  for (int64_t w0 = 0; w0 < Kw; w0 += kChunk) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int idx = tid + e * kThr * kThr;
      const int row = idx / (2 * kChunk), plane = (idx / kChunk) % 2, wl = idx % kChunk;
      const int64_t m = i0 + row, jc = j0 + row, gw = w0 + wl;
      const int64_t tap = gw / s.wg, wi = gw % s.wg;
      uint32_t av = 0u, bv = 0u;
      if (m < M && gw < Kw) {
        const int64_t off = s.src(m, tap / s.kw, tap % s.kw, gi);
        if (off >= 0) av = static_cast<uint32_t>(x[off + plane * s.wg + wi]);
      }
      if (jc < og && gw < Kw)
        bv = static_cast<uint32_t>(w[(((gi * og + jc) * taps + tap) * 2 + plane) * s.wg + wi]);
      As[row][plane][wl] = av;
      Bs[row][plane][wl] = bv;
    }
    __syncthreads();
    xnor_tile_chunk(As, Bs, tx, ty, acc);
    __syncthreads();
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

extern "C" int gxnor_cuda_xnor_conv2d(const int32_t* x, const int32_t* w, const int64_t* shape16,
                                      const float* scale, const float* bias, int32_t* c_int, float* c_float,
                                      void* stream) {
  using namespace gxnor::cuda;
  const gxnor::ConvShape s{shape16[0],  shape16[1],  shape16[2],  shape16[3], shape16[4],  shape16[5],
                           shape16[6],  shape16[7],  shape16[8],  shape16[9], shape16[10], shape16[11],
                           shape16[12], shape16[13], shape16[14], shape16[15]};
  const dim3 grid(static_cast<unsigned>(ceil_div(s.og(), kTile)),
                  static_cast<unsigned>(ceil_div(s.rows(), kTile)), static_cast<unsigned>(s.g));
  GX_LAUNCH(xnor_conv2d_kernel, grid, dim3(kThr, kThr), 0, stream, x, w, s, scale, bias, c_int, c_float);
  return static_cast<int>(cudaGetLastError());
}
