// CUDA float x ternary GEMM on bf16 tensor cores (torch-free): C (M, P) = A (M, R) B (P, R)^T with
// A bf16 row-major and B ternary in the layout tb16, fp32 accumulation (mma.sync m16n8k16, sm_80 and
// newer). ternary_matmul's three products are this one kernel: y = x W^T (B = W), dX = dY W
// (B = W^T) and dW = dY^T X (B = X^T, the packed activations), the transposes made by the
// layout conversion.
//
// tb16: word q of a row holds the 16 values r = 16 q + j as 2-bit codes (gate, sign) at bits
// 14 - 2 (j >> 1) + 16 (j & 1) and one above, so `(word << s) & 0xC000C000` is two bf16 values
// {0, 2.0, -2.0} (0x4000 = 2.0, the sign bit set for -2.0) for j = s / 2 (low half) and s / 2 + 1.
// Lane (g, t) of an m16n8k16 MMA holds B's k = 2 t + [0, 2) in b0 and 8 + 2 t + [0, 2) in b1: a
// shift by 2 t (b0) or 2 t + 8 (b1) and one AND per register, 1 integer instruction per value (the
// bf16 MMA runs at half the int8 rate, so this costs what the int8 kernel's 0.5 does). B is 2x its
// values: the fp32 products are exact and every partial sum is exactly twice the unscaled one, so
// the epilogue's * 0.5 gives the same bits as B's own values would.
//
//   CTA tile 128 x 128, 4 warps as 2 (M) x 2 (P), warp tile 64 x 64 = 4 x 8 mma.sync m16n8k16 per
//   16 k; K step 64: A tile 128 x 64 bf16 (cp.async, rows padded to 72 so ldmatrix is free of bank
//   conflicts), B tile 128 x 4 words (cp.async, one LDS.128 per warp column); two stages, the next
//   step's copies in flight while the warps multiply the current one.
#include <cstring>

#include "api.h"
#include "compat.cuh"
#include "xnor_tile.cuh"

namespace gxnor::cuda {

constexpr int kBfBM = 128, kBfBN = 128, kBfBK = 64, kBfWords = kBfBK / 16, kBfThreads = 128;
constexpr int kBfLda = kBfBK + 8;  // shared A row stride in bf16 (144 B: 8 rows hit 8 bank groups)
constexpr uint32_t kBfMask = 0xC000C000u;

// fp32 -> bf16, round to nearest even (NaN stays a quiet NaN): the same bits on the host and GPU.
GXNOR_HD inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// Format v1 (rows, 2, W) along K -> tb16. transpose 0: out (rows, Tq), word q = values 16 q + [0, 16)
// of a row; transpose 1: out (K, Tq), word q of row k = column k of rows 16 q + [0, 16). Codes past
// the source's extent are 0; one output word per thread.
__global__ void to_tb16_kernel(const int32_t* __restrict__ p, int64_t rows, int64_t K, int64_t W,
                               int transpose, int64_t Tq, int32_t* __restrict__ out) {
  const int64_t out_rows = transpose ? K : rows, n = out_rows * Tq;
  const int64_t along = transpose ? rows : K;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / Tq, q = i % Tq;
    uint32_t w = 0u;
    for (int j = 0; j < 16; ++j) {
      const int64_t v = 16 * q + j;
      if (v >= along) break;
      const int64_t row = transpose ? v : r, col = transpose ? r : v;
      const uint32_t gw = static_cast<uint32_t>(p[row * 2 * W + col / 32]);
      const uint32_t sw = static_cast<uint32_t>(p[row * 2 * W + W + col / 32]);
      const uint32_t g = (gw >> (col % 32)) & 1u, s = (sw >> (col % 32)) & g;
      const int pos = 14 - 2 * (j >> 1) + 16 * (j & 1);
      w |= (g << pos) | (s << (pos + 1));
    }
    out[i] = static_cast<int32_t>(w);
  }
}

__global__ void __launch_bounds__(kBfThreads)
    ternary_bf16_gemm_kernel(const uint16_t* __restrict__ a, const int32_t* __restrict__ b, int64_t M,
                             int64_t P, int64_t R, int64_t Tq, uint16_t* __restrict__ c_bf16,
                             float* __restrict__ c_f32) {
  alignas(16) __shared__ uint16_t As[2][kBfBM][kBfLda];
  alignas(16) __shared__ uint32_t Bs[2][kBfBN][kBfWords];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int wm = (warp >> 1) * 64, wn = (warp & 1) * 64, sh0 = 2 * t, sh1 = 2 * t + 8;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kBfBM, j0 = static_cast<int64_t>(blockIdx.y) * kBfBN;
  // A: thread tid copies the 16-byte chunk tid % 8 of rows tid / 8 + 16 c (c < 8); B: row tid.
  // Rows past M or P copy the last valid row and are not stored; A's chunks past R are zero-filled.
  // In a full M tile the 8 rows are 16 R apart; in the last one, rows past M read row M - 1.
  const int chunk = tid % 8;
  const bool full = i0 + kBfBM <= M;
  const uint16_t* a0 = a + (i0 + tid / 8) * R + 8 * chunk;
  const int32_t* brow = b + (j0 + tid < P ? j0 + tid : P - 1) * Tq;
  const int steps = static_cast<int>((R + kBfBK - 1) / kBfBK);
  auto load = [&](int st, int buf) {
    const int64_t k = static_cast<int64_t>(st) * kBfBK;
    const int bytes = k + 8 * chunk < R ? 16 : 0;
#pragma unroll
    for (int c = 0; c < 8; ++c) {
      const int64_t r = i0 + tid / 8 + 16 * c;
      const uint16_t* src = full || r < M ? a0 + 16 * c * R : a + (M - 1) * R + 8 * chunk;
      gx_cp_async16(&As[buf][tid / 8 + 16 * c][8 * chunk], bytes ? src + k : src, bytes);
    }
    gx_cp_async16(Bs[buf][tid], brow + static_cast<int64_t>(st) * kBfWords, 16);
    gx_cp_async_commit();
  };
  float acc[4][8][4];
  zero_mma_tile(acc);
  load(0, 0);
  for (int st = 0; st < steps; ++st) {
    const int buf = st & 1;
    if (st + 1 < steps) {
      load(st + 1, buf ^ 1);  // that buffer's readers passed the barrier at the end of step st - 1
      gx_cp_async_wait<1>();
    } else {
      gx_cp_async_wait<0>();
    }
    __syncthreads();
    uint4 bw[8];
#pragma unroll
    for (int ni = 0; ni < 8; ++ni) bw[ni] = *reinterpret_cast<const uint4*>(Bs[buf][wn + 8 * ni + g]);
#pragma unroll
    for (int kk = 0; kk < kBfWords; ++kk) {
      uint32_t af[4][4], bf[8][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
        gx_ldmatrix_x4(af[mi], &As[buf][wm + 16 * mi + lane % 16][16 * kk + 8 * (lane / 16)]);
#pragma unroll
      for (int ni = 0; ni < 8; ++ni) {
        const uint32_t w = kk == 0 ? bw[ni].x : kk == 1 ? bw[ni].y : kk == 2 ? bw[ni].z : bw[ni].w;
        bf[ni][0] = (w << sh0) & kBfMask;
        bf[ni][1] = (w << sh1) & kBfMask;
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 8; ++ni) gx_mma_m16n8k16_bf16(acc[mi][ni], af[mi], bf[ni]);
    }
    __syncthreads();
  }
  // acc[mi][ni][e]: row wm + 16 mi + g + 8 (e >= 2), column wn + 8 ni + 2 t + e % 2 (of the CTA tile)
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 8; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t i = i0 + wm + 16 * mi + g + 8 * (e >> 1), j = j0 + wn + 8 * ni + 2 * t + (e & 1);
        if (i >= M || j >= P) continue;
        const float v = acc[mi][ni][e] * 0.5f;  // B held 2 v
        if (c_bf16)
          c_bf16[i * P + j] = f32_to_bf16(v);
        else
          c_f32[i * P + j] = v;
      }
}

}  // namespace gxnor::cuda

extern "C" int gxnor_cuda_to_tb16(const int32_t* p, int64_t rows, int64_t K, int64_t W, int transpose,
                                  int64_t Tq, int32_t* out, void* stream) {
  using namespace gxnor::cuda;
  const int64_t n = (transpose ? K : rows) * Tq;
  if (n == 0) return 0;
  GX_LAUNCH(to_tb16_kernel, dim3(grid_for(n, 256)), dim3(256), 0, stream, p, rows, K, W, transpose, Tq, out);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int gxnor_cuda_ternary_gemm_bf16(const uint16_t* a, const int32_t* b, int64_t M, int64_t P,
                                            int64_t R, int64_t Tq, uint16_t* c_bf16, float* c_f32,
                                            void* stream) {
  using namespace gxnor::cuda;
  // A's rows are copied 16 bytes at a time; B's whole 64-value steps are read
  if (R % 8 != 0 || Tq % kBfWords != 0 || 16 * Tq < R) return 1;
  if (M == 0 || P == 0) return 0;
  return launch_tiles(ternary_bf16_gemm_kernel, ceil_div(M, kBfBM), ceil_div(P, kBfBN), 1, dim3(kBfThreads),
                      stream, a, b, M, P, R, Tq, c_bf16, c_f32);
}
