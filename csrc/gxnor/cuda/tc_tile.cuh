// The int8 tensor-core main loop shared by the CUDA tc16 GEMM and conv (tc_gemm.cu, tc_conv.cu).
//
//   CTA tile 128 x 128, 4 warps as 2 (M) x 2 (N), warp tile 64 x 64 = 4 x 8 mma.sync m16n8k32 (a
//   warp decodes 64 A and 64 B fragment registers per step and reads 4 KiB of shared memory for
//   2^19 MACs); K step 128 values = 8 tc16 words per row; shared As / Bs [2 buffers][128 rows][8
//   words] (16 KiB); thread tid loads row tid of A and of B (32 B each) for the next step into
//   registers while the warps multiply the current buffer (one barrier per step).
#pragma once
#include "compat.cuh"
#include "xnor_tile.cuh"

namespace gxnor::cuda {

constexpr int kTcBM = 128, kTcBN = 128, kTcWords = 8, kTcThreads = 128, kTcMI = 4, kTcNI = 8;
constexpr uint32_t kTcMask = 0xC0C0C0C0u;

// steps K steps; a_row(st) / b_row(st): this thread's 8 words (two uint4) of A / B for step st,
// asked for st = 0, 1, 2, ... in order (so a loader may keep state).
// acc: the warp's 64 x 64 tile (rows wm + 16 mi + g (+ 8), columns wn + 8 ni + 2 t (+ 1)), 4096 C.
template <class ARow, class BRow>
__device__ __forceinline__ void tc_mainloop(int steps, const ARow& a_row, const BRow& b_row,
                                            int (&acc)[kTcMI][kTcNI][4]) {
  __shared__ uint32_t As[2][kTcBM][kTcWords];
  __shared__ uint32_t Bs[2][kTcBN][kTcWords];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int wm = (warp >> 1) * 64, wn = (warp & 1) * 64, sh = 2 * t;
  zero_mma_tile(acc);
  const uint4* ap = a_row(0);
  const uint4* bp = b_row(0);
  uint4 ra0 = ap[0], ra1 = ap[1], rb0 = bp[0], rb1 = bp[1];
  for (int st = 0; st < steps; ++st) {
    const int buf = st & 1;
    uint4* as = reinterpret_cast<uint4*>(As[buf][tid]);
    uint4* bs = reinterpret_cast<uint4*>(Bs[buf][tid]);
    as[0] = ra0, as[1] = ra1, bs[0] = rb0, bs[1] = rb1;
    __syncthreads();
    if (st + 1 < steps) {  // the next step's words, in flight while this one multiplies
      ap = a_row(st + 1), bp = b_row(st + 1);
      ra0 = ap[0], ra1 = ap[1], rb0 = bp[0], rb1 = bp[1];
    }
#pragma unroll
    for (int ks = 0; ks < kTcWords / 2; ++ks) {  // k32 sub-steps: words 2 ks (k < 16) and 2 ks + 1
      uint32_t af[kTcMI][4], bf[kTcNI][2];
#pragma unroll
      for (int mi = 0; mi < kTcMI; ++mi) {
        const uint32_t* r0 = As[buf][wm + 16 * mi + g];
        const uint32_t* r8 = As[buf][wm + 16 * mi + g + 8];
        af[mi][0] = (r0[2 * ks] << sh) & kTcMask;
        af[mi][1] = (r8[2 * ks] << sh) & kTcMask;
        af[mi][2] = (r0[2 * ks + 1] << sh) & kTcMask;
        af[mi][3] = (r8[2 * ks + 1] << sh) & kTcMask;
      }
#pragma unroll
      for (int ni = 0; ni < kTcNI; ++ni) {
        const uint32_t* c0 = Bs[buf][wn + 8 * ni + g];
        bf[ni][0] = (c0[2 * ks] << sh) & kTcMask;
        bf[ni][1] = (c0[2 * ks + 1] << sh) & kTcMask;
      }
#pragma unroll
      for (int mi = 0; mi < kTcMI; ++mi)
#pragma unroll
        for (int ni = 0; ni < kTcNI; ++ni) gx_mma_m16n8k32_s8(acc[mi][ni], af[mi], bf[ni]);
    }
  }
}

}  // namespace gxnor::cuda
