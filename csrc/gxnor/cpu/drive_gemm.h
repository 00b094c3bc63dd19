// Multithreaded drivers of the CPU xnor GEMM C = a @ b.T (a: (M, 2, W), b: (N, 2, W) packed words):
// AMX-INT8 blocks or popcount micro-kernels, also fed by the packed im2col rows of the
// convolution's scalar and AMX paths. Torch-free: threads through parallel.h.
#pragma once
#include <algorithm>
#include <cstdint>

#include "gemm.h"
#include "gemm_amx.h"
#include "parallel.h"

namespace gxnor::cpu {

// One 32 x 32 AMX block of C at (i0, j0), nr x nc of it inside C: a full block of an int32
// output is stored by the tiles straight into it; otherwise through the scratch c and the
// epilogue (partial edges, float output with scale / bias).
GXNOR_TARGET_AMX inline void amx_block_out(const GemmOut& o, int64_t i0, int64_t j0, int64_t nr, int64_t nc,
                                           const int8_t* a0, const int8_t* b0, int64_t KB, int32_t* c) {
  using namespace amx;
  const int8_t *a1 = a0 + KB * kVnniBytes, *b1 = b0 + KB * kVnniBytes;
  if (o.c_int && nr == kBlock && nc == kBlock) {
    block_32x32(a0, a1, b0, b1, KB, o.c_int + i0 * o.ldc + j0, o.ldc);
    return;
  }
  block_32x32(a0, a1, b0, b1, KB, c);
  o.store_block(i0, j0, nr, nc, c, kBlock);
}

// Tasks: 64-row x NB-column tiles of C (NB: B tile in L2, halved until every thread has tasks).
inline void gemm_popcount(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                          const GemmOut& o, Isa isa) {
  const int64_t row_bytes = 8 * W;
  const int64_t MB = 64;
  int64_t NB = std::max<int64_t>(16, (256 * 1024 / row_bytes) / kNR * kNR);
  const int64_t mt = (M + MB - 1) / MB;
  while (NB > 16 && mt * ((N + NB - 1) / NB) < 4 * num_threads()) NB /= 2;
  const int64_t nt = (N + NB - 1) / NB;
  run_tasks(mt * nt, [&](TaskQueue& next) {
    for (int64_t t; next(t);) {
      const int64_t jb = t / mt, ib = t % mt;
      xnor_gemm_tile(a, b, W, ib * MB, std::min(M, (ib + 1) * MB), jb * NB, std::min(N, (jb + 1) * NB), o,
                     isa);
    }
  });
}

inline void gemm_amx(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W, const GemmOut& o) {
  using namespace amx;
  const int64_t Kp = 32 * W, KB = Kp / kTileK;
  const int64_t Mp = (M + kBlock - 1) / kBlock * kBlock, mt = Mp / kBlock, nt = (N + kBlock - 1) / kBlock;
  const CallBuffer<int8_t> ai(Mp * Kp);  // every row written below (rows >= M as zeros)
  parallel_for(0, Mp / 16, 4,
               [&](int64_t r0, int64_t r1) { unpack_rows_i8(a, W, M, r0 * 16, r1 * 16, ai.data()); });
  // Tasks: (group of G 32-column blocks of B, range of 32-row A strips). A task unpacks its B
  // group into a thread-local VNNI buffer (<= 1 MiB: L2-resident; skipped when the thread's
  // previous task had the same group), then multiplies every strip of its range with it: B is
  // never unpacked to an N-sized buffer, and each A strip is read once per group.
  const int64_t G = std::clamp<int64_t>((int64_t(1) << 20) / (kBlock * Kp), 1, 8), ng = (nt + G - 1) / G;
  const int64_t mchunks = std::min(mt, std::max<int64_t>(1, (4 * num_threads() + ng - 1) / ng));
  const int64_t mper = (mt + mchunks - 1) / mchunks;
  // A static split, not run_tasks: a thread's tasks are consecutive, so it unpacks each of its
  // groups once (a queue would hand the strips of one group to different threads).
  parallel_for(0, ng * mchunks, 1, [&](int64_t t0, int64_t t1) {
    int8_t* bv = thread_scratch<int8_t>(G * kBlock * Kp);
    int64_t have = -1;
    alignas(64) int32_t c[kBlock * kBlock];
    configure();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / mchunks, ib0 = (t % mchunks) * mper, ib1 = std::min(mt, ib0 + mper);
      if (ib0 >= ib1) continue;  // the last chunks can be empty when mt is not a multiple of mper
      const int64_t n0 = g * G * kBlock, n1 = std::min(N, n0 + G * kBlock);
      const int64_t nb = (n1 - n0 + kBlock - 1) / kBlock;
      if (have != g) unpack_vnni_i8(b + n0 * 2 * W, W, n1 - n0, 0, nb * kBlock, bv);
      have = g;
      for (int64_t ib = ib0; ib < ib1; ++ib) {
        const int8_t* a0 = ai.data() + (2 * ib) * KB * kVnniBytes;
        for (int64_t jb = 0; jb < nb; ++jb) {
          const int64_t i0 = ib * kBlock, j0 = n0 + jb * kBlock;
          amx_block_out(o, i0, j0, std::min<int64_t>(kBlock, M - i0), std::min<int64_t>(kBlock, N - j0), a0,
                        bv + (2 * jb) * KB * kVnniBytes, KB, c);
        }
      }
    }
    release();
  });
}

}  // namespace gxnor::cpu
