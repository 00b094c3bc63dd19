// Multithreaded drivers of the CPU xnor GEMM (AMX-INT8 blocks or popcount micro-kernels), shared by
// xnor_gemm and xnor_conv2d (whose packed im2col rows feed the same drivers).
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../gxnor/cpu/gemm.h"
#include "../gxnor/cpu/gemm_amx.h"

namespace gxnor::bind {

constexpr int64_t kAmxMinWork = int64_t(1) << 24;  // M*N*K below this: popcount path

inline void gemm_popcount(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                          const cpu::GemmOut& o, cpu::Isa isa) {
  const int64_t row_bytes = 8 * W;
  const int64_t MB = 64;
  int64_t NB = std::max<int64_t>(16, (256 * 1024 / row_bytes) / cpu::kNR * cpu::kNR);
  const int64_t mt = (M + MB - 1) / MB;
  // Enough tasks for every thread when M is small.
  while (NB > 16 && mt * ((N + NB - 1) / NB) < 4 * at::get_num_threads()) NB /= 2;
  const int64_t nt = (N + NB - 1) / NB;
  at::parallel_for(0, mt * nt, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t jb = t / mt, ib = t % mt;
      cpu::xnor_gemm_tile(a, b, W, ib * MB, std::min(M, (ib + 1) * MB), jb * NB, std::min(N, (jb + 1) * NB),
                          o, isa);
    }
  });
}

inline void gemm_amx(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                     const cpu::GemmOut& o) {
  using namespace cpu::amx;
  const int64_t Kp = 32 * W, KB = Kp / kTileK;
  const int64_t Mp = (M + kBlock - 1) / kBlock * kBlock, Np = (N + kBlock - 1) / kBlock * kBlock;
  std::vector<int8_t> ai(Mp * Kp), bv(Np * Kp);
  at::parallel_for(0, Mp / 16, 4, [&](int64_t r0, int64_t r1) {
    unpack_i8_avx512<false>(a, W, M, r0 * 16, r1 * 16, ai.data());
  });
  at::parallel_for(0, Np / 16, 4, [&](int64_t r0, int64_t r1) {
    unpack_i8_avx512<true>(b, W, N, r0 * 16, r1 * 16, bv.data());
  });
  // Tasks: (B group of kGroup 32-column blocks, kept in L2) x (32-row A strip); consecutive
  // tasks share the B group, so each A strip is read from L3 once per group.
  constexpr int64_t kGroup = 8;
  const int64_t mt = Mp / kBlock, nt = Np / kBlock, ng = (nt + kGroup - 1) / kGroup;
  at::parallel_for(0, mt * ng, 1, [&](int64_t t0, int64_t t1) {
    configure();
    alignas(64) int32_t c[kBlock * kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / mt, ib = t % mt;
      for (int64_t jb = g * kGroup; jb < std::min(nt, (g + 1) * kGroup); ++jb) {
        const int8_t* bv0 = bv.data() + (2 * jb) * KB * kVnniBytes;
        block_32x32(ai.data() + ib * kBlock * Kp, Kp, bv0, bv0 + KB * kVnniBytes, c);
        const int64_t i0 = ib * kBlock, j0 = jb * kBlock;
        for (int64_t r = 0; r < kBlock && i0 + r < M; ++r)
          for (int64_t col = 0; col < kBlock && j0 + col < N; ++col)
            o.store(i0 + r, j0 + col, c[r * kBlock + col]);
      }
    }
    release();
  });
}

// Epilogue writing into `out` (int32, or float32 with the optional contiguous scale / bias), rows ldc apart.
inline cpu::GemmOut make_gemm_out(at::Tensor& out, const at::Tensor& sc, const at::Tensor& bi, int64_t ldc) {
  cpu::GemmOut o;
  o.ldc = ldc;
  if (out.scalar_type() == at::kFloat) {
    o.c_float = out.data_ptr<float>();
    o.scale = sc.defined() ? sc.const_data_ptr<float>() : nullptr;
    o.bias = bi.defined() ? bi.const_data_ptr<float>() : nullptr;
  } else {
    o.c_int = out.data_ptr<int32_t>();
  }
  return o;
}

// C = a @ b.T through the fastest path for this ISA and size.
inline void gemm_any(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                     const cpu::GemmOut& o) {
  const auto isa = cpu::current_isa();
  if (isa == cpu::Isa::kAmx && M * N * 32 * W >= kAmxMinWork)
    gemm_amx(a, b, M, N, W, o);
  else
    gemm_popcount(a, b, M, N, W, o, isa);
}

}  // namespace gxnor::bind
