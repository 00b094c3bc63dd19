// CUDA ternary x ternary GEMM on the binary tensor cores of sm_80 / sm_86 / sm_89 (torch-free):
// mma.sync m16n8k256 .b1 .and.popc straight on format v1 operands, the paper's gated XNOR as AND
// popcounts of bit planes. With p = g & ~s (the +1 plane) and n = g & s (the -1 plane) of a row,
//   x . y = popc(pa & pb) + popc(na & nb) - popc(pa & nb) - popc(na & pb),
// and since popc(pa & nb) = popc(pa) - popc(pa & ~nb) (likewise for na), one accumulator takes
// four MMAs, pa.pb + na.nb + pa.~nb + na.~pb, and the epilogue subtracts the row's gate count
// popc(ga) (padding bits have g = 0, so ~nb's ones there add nothing). A fragment register of an
// m16n8k256 MMA is 32 consecutive k of one row, which is a format v1 word: the decode is one AND /
// ANDN per word (32 values), and no layout pass is needed.
//
//   CTA tile 128 x 128, 8 warps as 2 (M) x 4 (N), warp tile 64 x 32 = 4 x 4 tiles of 16 x 8
//   K step 256 values = 8 words per plane; shared As / Bs [2 buffers][128 rows][gate 8, sign 8]
//   (32 KiB); each thread loads one plane's 8 words of a row of A and of B into registers for the
//   next step while the warps multiply the current buffer (one barrier per step)
//
// Rows past M or N read the last valid row and are not stored; words past W read as zero.
#include "../format.h"
#include "api.h"
#include "compat.cuh"
#include "xnor_tile.cuh"

namespace gxnor::cuda {

constexpr int kB1BM = 128, kB1BN = 128, kB1Words = 8, kB1Threads = 256, kB1MI = 4, kB1NI = 4;

// The words [w0, w0 + 8) of one plane of a packed row, zero past W (W is even: whole pairs).
__device__ __forceinline__ void load_plane8(const int32_t* __restrict__ plane, int64_t w0, int64_t W,
                                            uint2 (&r)[4]) {
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int64_t w = w0 + 2 * q;
    r[q] = w < W ? *reinterpret_cast<const uint2*>(plane + w) : uint2{0u, 0u};
  }
}

__global__ void __launch_bounds__(kB1Threads)
    xnor_b1_gemm_kernel(const int32_t* __restrict__ a, const int32_t* __restrict__ b, int64_t M, int64_t N,
                        int64_t W, const float* __restrict__ scale, const float* __restrict__ bias,
                        int32_t* __restrict__ c_int, float* __restrict__ c_float) {
  __shared__ uint32_t As[2][kB1BM][2 * kB1Words];
  __shared__ uint32_t Bs[2][kB1BN][2 * kB1Words];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;  // the warp's tile in the CTA tile
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kB1BM, j0 = static_cast<int64_t>(blockIdx.y) * kB1BN;
  // Loader: plane lp (0 gate, 1 sign) of row lr of A and of B.
  const int lr = tid >> 1, lp = tid & 1;
  const int64_t ar = i0 + lr < M ? i0 + lr : M - 1, br = j0 + lr < N ? j0 + lr : N - 1;
  const int32_t* aplane = a + ar * 2 * W + lp * W;
  const int32_t* bplane = b + br * 2 * W + lp * W;
  int acc[kB1MI][kB1NI][4];
  zero_mma_tile(acc);
  int gates[kB1MI][2] = {};  // this lane's share of popc(ga) of rows g and g + 8 of each m16 tile
  uint2 ra[4], rb[4];
  load_plane8(aplane, 0, W, ra), load_plane8(bplane, 0, W, rb);
  for (int64_t w0 = 0; w0 < W; w0 += kB1Words) {
    const int buf = static_cast<int>((w0 / kB1Words) & 1);
    uint2* as = reinterpret_cast<uint2*>(&As[buf][lr][lp * kB1Words]);
    uint2* bs = reinterpret_cast<uint2*>(&Bs[buf][lr][lp * kB1Words]);
#pragma unroll
    for (int q = 0; q < 4; ++q) as[q] = ra[q], bs[q] = rb[q];
    __syncthreads();
    if (w0 + kB1Words < W) {  // the next step's words, in flight while this one multiplies
      load_plane8(aplane, w0 + kB1Words, W, ra), load_plane8(bplane, w0 + kB1Words, W, rb);
    }
    uint32_t pa[kB1MI][4], na[kB1MI][4];
#pragma unroll
    for (int mi = 0; mi < kB1MI; ++mi) {
      const uint32_t* r0 = As[buf][wm + 16 * mi + g];
      const uint32_t* r8 = As[buf][wm + 16 * mi + g + 8];
      const uint32_t ga[4] = {r0[t], r8[t], r0[4 + t], r8[4 + t]};
      const uint32_t sa[4] = {r0[kB1Words + t], r8[kB1Words + t], r0[kB1Words + 4 + t], r8[kB1Words + 4 + t]};
#pragma unroll
      for (int i = 0; i < 4; ++i) pa[mi][i] = ga[i] & ~sa[i], na[mi][i] = ga[i] & sa[i];
      gates[mi][0] += __popc(ga[0]) + __popc(ga[2]);
      gates[mi][1] += __popc(ga[1]) + __popc(ga[3]);
    }
#pragma unroll
    for (int ni = 0; ni < kB1NI; ++ni) {
      const uint32_t* c = Bs[buf][wn + 8 * ni + g];
      const uint32_t gb[2] = {c[t], c[4 + t]}, sb[2] = {c[kB1Words + t], c[kB1Words + 4 + t]};
      const uint32_t pb[2] = {gb[0] & ~sb[0], gb[1] & ~sb[1]}, nb[2] = {gb[0] & sb[0], gb[1] & sb[1]};
      const uint32_t not_pb[2] = {~pb[0], ~pb[1]}, not_nb[2] = {~nb[0], ~nb[1]};
#pragma unroll
      for (int mi = 0; mi < kB1MI; ++mi) {
        gx_mma_m16n8k256_and_popc(acc[mi][ni], pa[mi], pb);
        gx_mma_m16n8k256_and_popc(acc[mi][ni], na[mi], nb);
        gx_mma_m16n8k256_and_popc(acc[mi][ni], pa[mi], not_nb);
        gx_mma_m16n8k256_and_popc(acc[mi][ni], na[mi], not_pb);
      }
    }
  }
#pragma unroll
  for (int mi = 0; mi < kB1MI; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {  // the four lanes t of a group hold a quarter of each row's words
      gates[mi][h] += __shfl_xor_sync(GX_FULL_MASK, gates[mi][h], 1);
      gates[mi][h] += __shfl_xor_sync(GX_FULL_MASK, gates[mi][h], 2);
    }
  store_mma_tile(
      acc, i0 + wm, j0 + wn, M, N, N, 0, [&](int v, int mi, int h) { return v - gates[mi][h]; }, scale, bias,
      c_int, c_float);
}

}  // namespace gxnor::cuda

extern "C" int gxnor_cuda_xnor_gemm_b1(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                                       const float* scale, const float* bias, int32_t* c_int, float* c_float,
                                       void* stream) {
  using namespace gxnor::cuda;
  if (W % 2 != 0) return 1;  // format v1 pads rows to whole 64-value word pairs
  if (M == 0 || N == 0) return 0;
  return launch_tiles(xnor_b1_gemm_kernel, ceil_div(M, kB1BM), ceil_div(N, kB1BN), 1, dim3(kB1Threads),
                      stream, a, b, M, N, W, scale, bias, c_int, c_float);
}
