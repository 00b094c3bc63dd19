// CPU bindings of xnor_gemm (AMX-INT8 or popcount micro-kernels, multithreaded with
// at::parallel_for) and ternary_matmul (float x ternary: weights unpacked to the input dtype in
// parallel, then the BLAS GEMM; measured faster than masked add/subtract on this CPU).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "../gxnor/cpu/gemm.h"
#include "../gxnor/cpu/gemm_amx.h"
#include "../gxnor/cpu/pack.h"
#include "checks.h"

namespace gxnor::bind {
namespace {

constexpr int64_t kAmxMinWork = int64_t(1) << 24;  // M*N*K below this: popcount path

void gemm_popcount(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W, const cpu::GemmOut& o,
                   cpu::Isa isa) {
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

void gemm_amx(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W, const cpu::GemmOut& o) {
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

at::Tensor xnor_gemm_cpu(const at::Tensor& a_in, const at::Tensor& b_in, int64_t K,
                         const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  check_device(a_in, "a", c10::DeviceType::CPU);
  check_device(b_in, "b", c10::DeviceType::CPU);
  check_gemm(a_in, b_in, K, scale, bias);
  const int64_t M = a_in.size(0), N = b_in.size(0), W = a_in.size(2);
  const bool fl = scale.has_value() || bias.has_value();
  at::Tensor out = at::empty({M, N}, a_in.options().dtype(fl ? at::kFloat : at::kInt));
  if (M == 0 || N == 0) return out;
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  at::Tensor sc = scale ? scale->contiguous() : at::Tensor(), bi = bias ? bias->contiguous() : at::Tensor();
  cpu::GemmOut o;
  o.ldc = N;
  if (fl) {
    o.c_float = out.data_ptr<float>();
    o.scale = sc.defined() ? sc.const_data_ptr<float>() : nullptr;
    o.bias = bi.defined() ? bi.const_data_ptr<float>() : nullptr;
  } else {
    o.c_int = out.data_ptr<int32_t>();
  }
  const auto isa = cpu::current_isa();
  if (isa == cpu::Isa::kAmx && M * N * K >= kAmxMinWork)
    gemm_amx(a.const_data_ptr<int32_t>(), b.const_data_ptr<int32_t>(), M, N, W, o);
  else
    gemm_popcount(a.const_data_ptr<int32_t>(), b.const_data_ptr<int32_t>(), M, N, W, o, isa);
  return out;
}

at::Tensor ternary_matmul_cpu(const at::Tensor& x, const at::Tensor& w, int64_t K, bool nn) {
  check_device(x, "x", c10::DeviceType::CPU);
  check_device(w, "w", c10::DeviceType::CPU);
  check_ternary_matmul(x, w, K, nn);
  const int64_t N = w.size(0);
  const at::Tensor wc = w.contiguous();
  at::Tensor wd = at::empty({N, K}, x.options().dtype(at::kFloat));
  const int64_t W = wc.size(2);
  const auto isa = cpu::current_isa();
  at::parallel_for(0, N * W, 4096, [&](int64_t t0, int64_t t1) {
    cpu::unpack_range(wc.const_data_ptr<int32_t>(), K, wd.data_ptr<float>(), t0, t1, isa);
  });
  if (x.scalar_type() != at::kFloat) wd = wd.to(x.scalar_type());
  if (N == 0 || x.size(0) == 0) return at::zeros({x.size(0), nn ? K : N}, x.options());
  return nn ? at::mm(x, wd) : at::mm(x, wd.t());
}

}  // namespace
}  // namespace gxnor::bind

TORCH_LIBRARY_IMPL(gxnor, CPU, m) {
  m.impl("xnor_gemm", &gxnor::bind::xnor_gemm_cpu);
  m.impl("ternary_matmul", &gxnor::bind::ternary_matmul_cpu);
}
