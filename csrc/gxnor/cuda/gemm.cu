// CUDA gated XNOR-popcount GEMM (torch-free): C (M, N) = a_dense @ b_dense.T, exact int32, with an
// optional float epilogue (per-column scale, bias). Grid (ceil(M/64), ceil(N/64)), block 16x16;
// each block owns a 64x64 C tile, each thread a 4x4 register block (rows ty+16i, cols tx+16j).
// K loop in chunks of 8 word pairs (256 k): shared As/Bs[64][2][8] uint32 (4 KiB each), loaded
// cooperatively (4 words per thread per operand); inner loop: AND, XOR, AND, 2x POPC per pair.
#include "../format.h"
#include "api.h"
#include "compat.cuh"
#include "xnor_tile.cuh"

namespace gxnor::cuda {

__global__ void __launch_bounds__(kThr* kThr)
    xnor_gemm_kernel(const int32_t* __restrict__ a, const int32_t* __restrict__ b, int64_t M, int64_t N,
                     int64_t W, const float* __restrict__ scale, const float* __restrict__ bias,
                     int32_t* __restrict__ c_int, float* __restrict__ c_float) {
  __shared__ uint32_t As[kTile][2][kChunk];
  __shared__ uint32_t Bs[kTile][2][kChunk];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kTile, j0 = static_cast<int64_t>(blockIdx.y) * kTile;
  int acc[kReg][kReg];
  xnor_tile_loop(
      W,
      [&](int row, int plane, int64_t gw, uint32_t& av, uint32_t& bv) {
        const int64_t ga = i0 + row, gb = j0 + row;
        av = (ga < M && gw < W) ? static_cast<uint32_t>(a[ga * 2 * W + plane * W + gw]) : 0u;
        bv = (gb < N && gw < W) ? static_cast<uint32_t>(b[gb * 2 * W + plane * W + gw]) : 0u;
      },
      As, Bs, acc);
#pragma unroll
  for (int i = 0; i < kReg; ++i)
#pragma unroll
    for (int j = 0; j < kReg; ++j) {
      const int64_t r = i0 + ty + kThr * i, c = j0 + tx + kThr * j;
      if (r < M && c < N) store_c(r * N + c, c, acc[i][j], scale, bias, c_int, c_float);
    }
}

}  // namespace gxnor::cuda

extern "C" int gxnor_cuda_xnor_gemm(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                                    const float* scale, const float* bias, int32_t* c_int, float* c_float,
                                    void* stream) {
  using namespace gxnor::cuda;
  return launch_tiles(xnor_gemm_kernel, ceil_div(M, kTile), ceil_div(N, kTile), 1, dim3(kThr, kThr), stream,
                      a, b, M, N, W, scale, bias, c_int, c_float);
}
