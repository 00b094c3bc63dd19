// CUDA ternary x ternary GEMM on int8 tensor cores (torch-free): mma.sync m16n8k32 (sm_80 and
// newer) on operands in the tensor-core layout tc16 (gxnor_cuda/_triton/tc.py: word t of a row holds
// the 16 values k = 16 t + 4 p + j as 2-bit codes, so `(word << 2 p) & 0xC0C0C0C0` is four int8
// 64 v, consecutive k, in one register). That is exactly a fragment register: lane (g, t) of an
// m16n8k32 MMA holds k = 4 t + [0, 4) of its row in a0 / a1 and k = 16 + 4 t + [0, 4) in a2 / a3,
// so the decode is one shift by 2 t and one AND per register, 0.5 integer instructions per value.
// Both operands are 64x their values: the int32 accumulator holds 4096 C (exact while K < 2^19),
// shifted back in the epilogue.
//
// The tile and its loop: tc_tile.cuh. Rows past M or N read the last valid row and are not stored
// (no masks in the loop).
#include "../format.h"
#include "api.h"
#include "compat.cuh"
#include "tc_tile.cuh"

namespace gxnor::cuda {

// Format v1 rows (rows, 2, W) -> tc16 (rows, T): one output word (16 values) per thread.
__global__ void to_tc16_kernel(const int32_t* __restrict__ p, int64_t rows, int64_t W, int64_t T,
                               int32_t* __restrict__ out) {
  const int64_t n = rows * T;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / T, t = i % T, wi = t / 2;
    uint32_t g = 0u, s = 0u;
    if (wi < W) {
      const int sh = static_cast<int>(t % 2) * 16;
      g = (static_cast<uint32_t>(p[r * 2 * W + wi]) >> sh) & 0xFFFFu;
      s = (static_cast<uint32_t>(p[r * 2 * W + W + wi]) >> sh) & 0xFFFFu;
    }
    uint32_t w = 0u;
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      const int pos = 8 * (k % 4) + 6 - 2 * (k / 4);  // value k = 4 p + j at bits 8 j + 6 - 2 p, + 1
      w |= ((g >> k) & 1u) << pos;
      w |= ((s >> k) & 1u) << (pos + 1);
    }
    out[i] = static_cast<int32_t>(w);
  }
}

__global__ void __launch_bounds__(kTcThreads)
    xnor_tc_gemm_kernel(const int32_t* __restrict__ a, const int32_t* __restrict__ b, int64_t M, int64_t N,
                        int64_t T, const float* __restrict__ scale, const float* __restrict__ bias,
                        int32_t* __restrict__ c_int, float* __restrict__ c_float) {
  const int tid = threadIdx.x, warp = tid >> 5;
  const int wm = (warp >> 1) * 64, wn = (warp & 1) * 64;  // the warp's tile in the CTA tile
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kTcBM, j0 = static_cast<int64_t>(blockIdx.y) * kTcBN;
  // This thread's rows of A and B (row tid of the tiles), read a K step (8 words) at a time.
  const int64_t ar = i0 + tid < M ? i0 + tid : M - 1, br = j0 + tid < N ? j0 + tid : N - 1;
  const uint4* ap = reinterpret_cast<const uint4*>(a + ar * T);
  const uint4* bp = reinterpret_cast<const uint4*>(b + br * T);
  int acc[kTcMI][kTcNI][4];
  tc_mainloop(
      static_cast<int>(T / kTcWords),  // T < 2^16 (K < 2^19)
      [&](int st) { return ap + st * (kTcWords / 4); }, [&](int st) { return bp + st * (kTcWords / 4); },
      acc);
  store_mma_tile(
      acc, i0 + wm, j0 + wn, M, N, N, 0, [](int v, int, int) { return v >> 12; }, scale, bias, c_int,
      c_float);
}

}  // namespace gxnor::cuda

extern "C" int gxnor_cuda_to_tc16(const int32_t* p, int64_t rows, int64_t W, int64_t T, int32_t* out,
                                  void* stream) {
  using namespace gxnor::cuda;
  if (rows * T == 0) return 0;
  GX_LAUNCH(to_tc16_kernel, dim3(grid_for(rows * T, 256)), dim3(256), 0, stream, p, rows, W, T, out);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int gxnor_cuda_xnor_gemm_tc(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t T,
                                       const float* scale, const float* bias, int32_t* c_int, float* c_float,
                                       void* stream) {
  using namespace gxnor::cuda;
  if (T % kTcWords != 0) return 1;  // the tc16 layout pads rows to whole 128-value steps
  if (M == 0 || N == 0) return 0;
  return launch_tiles(xnor_tc_gemm_kernel, ceil_div(M, kTcBM), ceil_div(N, kTcBN), 1, dim3(kTcThreads),
                      stream, a, b, M, N, T, scale, bias, c_int, c_float);
}
