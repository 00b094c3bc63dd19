// CPU bindings of xnor_gemm (the kernel object of cpu/xnor_kernel.h) and ternary_matmul (float x
// ternary: the weight unpacked to float and multiplied by the BLAS, either per L2-sized tile inside
// each thread (float32, up to 1024 rows) or in chunks of at most 16 MiB, each followed by one
// multithreaded GEMM; faster than masked add/subtract; for a weight of at most 16 rows, the AVX-512
// kernels of small_n.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/library.h>

#include "../gxnor/cpu/pack.h"
#include "../gxnor/cpu/small_n.h"
#include "../gxnor/cpu/xnor_kernel.h"
#include "alloc.h"
#include "checks.h"
#include "cpu_ops.h"
#include "gemm_out.h"

namespace gxnor::bind {

at::Tensor xnor_gemm_cpu(const at::Tensor& a_in, const at::Tensor& b_in, int64_t K,
                         const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  check_device(a_in, "a", c10::DeviceType::CPU);
  check_device(b_in, "b", c10::DeviceType::CPU);
  check_gemm(a_in, b_in, K, scale, bias);
  const int64_t M = a_in.size(0), N = b_in.size(0), W = a_in.size(2);
  const bool fl = scale.has_value() || bias.has_value();
  at::Tensor out = empty_out({M, N}, a_in.options().dtype(fl ? at::kFloat : at::kInt));
  if (M == 0 || N == 0) return out;
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  at::Tensor sc = scale ? scale->contiguous() : at::Tensor(), bi = bias ? bias->contiguous() : at::Tensor();
  const cpu::GemmOut o = make_gemm_out(out, sc, bi, N);
  const auto isa = cpu::current_isa();
  cpu::xnor_gemm_run(cpu::select_xnor_kernel(isa, M, N, W), isa, a.const_data_ptr<int32_t>(),
                     b.const_data_ptr<int32_t>(), M, N, W, K, o);
  return out;
}

namespace {

// Unpacked weight rows per chunk: at most 16 MiB of floats, so the scratch stays below glibc's
// largest mmap threshold and is reused from the heap instead of page-faulting in on every call
// (fresh pages would cost more than the GEMM itself), and peak memory stays bounded.
constexpr int64_t kScratchBytes = int64_t(16) << 20;

// Cache-blocked float32 path: each thread unpacks an (nb x kc) weight tile (256 KiB) into its own
// L2 scratch and multiplies it right away with a single-threaded BLAS call, so the unpacked weight
// never goes out to memory and is read once from L2. NT: threads split the N blocks, each
// accumulates over K chunks; NN: threads split the K chunks, each accumulates over N blocks.
// The BLAS is the one torch links (Fortran sgemm_, looked up at load time: ATen's own cpublas
// wrapper is not exported); without one, the one-big-GEMM path below runs.
constexpr int64_t kTileRows = 256, kTileCols = 256;
// Above kBlockedMaxM rows, or for the NN form with fewer than kBlockedMinInner weight rows (the
// inner dimension: each tile GEMM would be a rank-N update), the one-big-GEMM path is faster,
// except for at most kSmallM rows and a weight that fits one tile (no unpacked copy to allocate).
constexpr int64_t kBlockedMaxM = 1024, kBlockedMinInner = 128, kSmallM = 256;

using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*,
                         const float*, const int*, const float*, const int*, const float*, float*,
                         const int*);

SgemmFn find_sgemm() {
  static const SgemmFn f = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return f;
}

// Column-major C (m x n, ldc) = op(A) op(B) + beta C, as BLAS; int arguments (all < 2^31 here).
void sgemm(SgemmFn f, char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int mi = int(m), ni = int(n), ki = int(k), la = int(lda), lb = int(ldb), lc = int(ldc);
  const float one = 1.f;
  f(&ta, &tb, &mi, &ni, &ki, &one, a, &la, b, &lb, &beta, c, &lc);
}

void ternary_matmul_blocked(SgemmFn f, const float* x, const int32_t* w, int64_t M, int64_t N, int64_t K,
                            bool nn, float* out, cpu::Isa isa) {
  // Tile width along K: 256, or for an NT weight of at most 256 rows as wide as the same 256 KiB
  // allows (N = 10, K = 512: one BLAS call instead of two).
  const int64_t tk =
      !nn && N <= kTileRows
          ? std::min((K + 31) / 32 * 32, std::max(kTileCols, kTileRows * kTileCols / N / 32 * 32))
          : kTileCols;
  const int64_t nblk = (N + kTileRows - 1) / kTileRows, kblk = (K + tk - 1) / tk;
  const int64_t outer = nn ? kblk : nblk, inner = nn ? nblk : kblk;
  auto body = [&](int64_t t0, int64_t t1) {
    float* tile = cpu::thread_scratch<float>(kTileRows * kTileCols);
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t nb = nn ? i : t, kb = nn ? t : i;
        const int64_t n0 = nb * kTileRows, n1 = std::min(N, n0 + kTileRows);
        const int64_t k0 = kb * tk, k1 = std::min(K, k0 + tk);
        cpu::unpack_tile(w, K, n0, n1, k0, k1, tile, tk, isa);
        const float beta = i == 0 ? 0.f : 1.f;
        if (!nn)  // out[:, n0:n1] (+)= x[:, k0:k1] @ tile^T   (column-major: C^T = tile @ x^T)
          sgemm(f, 'T', 'N', n1 - n0, M, k1 - k0, tile, tk, x + k0, K, beta, out + n0, N);
        else  // out[:, k0:k1] (+)= x[:, n0:n1] @ tile   (column-major: C^T = tile^T @ x^T)
          sgemm(f, 'N', 'N', k1 - k0, M, n1 - n0, tile, tk, x + n0, N, beta, out + k0, K);
      }
    }
  };
  // One task: run it here (no thread-pool round trip, which costs more than a small GEMM, and
  // the BLAS may use the threads itself).
  if (outer == 1)
    body(0, 1);
  else
    at::parallel_for(0, outer, 1, body);
}

// Rows per task of the short-weight kernels: at least this many MACs, so that a smaller call stays
// on the calling thread (below it the split costs more than it gains; the NN lookup is cheaper per
// MAC, so it splits sooner).
constexpr int64_t kSmallNtTaskMacs = int64_t(1) << 20, kSmallNnTaskMacs = int64_t(1) << 17;
// NN outputs from this size on (beyond half the L2) are written with non-temporal stores, which
// pay off only once the output would not stay in the cache.
constexpr int64_t kSmallNStreamBytes = int64_t(1) << 20;

// N <= 16 weight rows, float32 x, AVX-512: the weight unpacked once to zero-padded float32 rows
// (NT: register-blocked FMAs) or to pattern indices (NN: table lookups), then the kernels of
// small_n.h over row ranges (bench/bench_gemm.py times them against torch's fp32 mm on the
// MNIST / CIFAR output layers, N = 10).
at::Tensor ternary_matmul_small_n(const at::Tensor& x, const at::Tensor& w, int64_t K, bool nn,
                                  cpu::Isa isa) {
#if GXNOR_X86
  const at::Tensor xc = x.contiguous();
  const int64_t M = xc.size(0), N = w.size(0), ldw = (K + 15) / 16 * 16;
  // NT: the weight as zero-padded float32 rows; NN: its pattern indices, read from the packed bits.
  const cpu::CallBuffer<float> wfb(nn ? 0 : N * ldw);
  float* wf = wfb.data();
  const cpu::CallBuffer<int32_t> idx(nn ? ldw * ((N + 2) / 3) : 0);
  if (nn) {
    cpu::small_n::nn_lut_indices(w.const_data_ptr<int32_t>(), w.size(2), N, K, idx.data());
  } else {
    for (int64_t n = 0; n < N; ++n) std::fill(wf + n * ldw + K, wf + (n + 1) * ldw, 0.f);
    cpu::unpack_tile(w.const_data_ptr<int32_t>(), K, 0, N, 0, K, wf, ldw, isa);
  }
  at::Tensor out = empty_out({M, nn ? K : N}, x.options());
  const float* xp = xc.const_data_ptr<float>();
  float* op = out.data_ptr<float>();
  const bool stream =
      nn && M * K * 4 >= kSmallNStreamBytes && K % 16 == 0 && reinterpret_cast<uintptr_t>(op) % 64 == 0;
  const int64_t grain = std::max<int64_t>(8, (nn ? kSmallNnTaskMacs : kSmallNtTaskMacs) / (N * K));
  at::parallel_for(0, M, grain, [&](int64_t m0, int64_t m1) {
    if (nn)
      cpu::small_n_nn(xp, N, idx.data(), N, K, m0, m1, op, stream);
    else
      cpu::small_n_nt(xp, K, wf, ldw, N, K, m0, m1, op);
    if (stream) _mm_sfence();
  });
  return out;
#else
  (void)x, (void)w, (void)K, (void)nn, (void)isa;
  TORCH_CHECK(false, "ternary_matmul_small_n: built without x86 AVX-512 support");
#endif
}

}  // namespace

at::Tensor ternary_matmul_cpu(const at::Tensor& x, const at::Tensor& w, int64_t K, bool nn) {
  check_device(x, "x", c10::DeviceType::CPU);
  check_device(w, "w", c10::DeviceType::CPU);
  check_ternary_matmul(x, w, K, nn);
  const int64_t N = w.size(0), M = x.size(0);
  if (N == 0 || M == 0 || K == 0) return at::zeros({M, nn ? K : N}, x.options());
  const at::Tensor wc = w.contiguous();
  const int64_t W = wc.size(2);
  const auto isa = cpu::current_isa();
  if (x.scalar_type() == at::kFloat && N <= cpu::kSmallNMax && isa >= cpu::Isa::kAvx512)
    return ternary_matmul_small_n(x, wc, K, nn, isa);
  const SgemmFn f = find_sgemm();
  if (f && x.scalar_type() == at::kFloat && M <= kBlockedMaxM &&
      (!nn || N >= kBlockedMinInner || (M <= kSmallM && N * K <= kTileRows * kTileCols))) {
    const at::Tensor xc = x.contiguous();
    at::Tensor out = empty_out({M, nn ? K : N}, x.options());
    ternary_matmul_blocked(f, xc.const_data_ptr<float>(), wc.const_data_ptr<int32_t>(), M, N, K, nn,
                           out.data_ptr<float>(), isa);
    return out;
  }
  const int64_t nb = std::min(N, std::max<int64_t>(64, kScratchBytes / (4 * K) / 16 * 16));
  at::Tensor out = empty_out({M, nn ? K : N}, x.options());
  at::Tensor wf = at::empty({nb, K}, x.options().dtype(at::kFloat));
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t n1 = std::min(N, n0 + nb);
    at::Tensor wd = wf.narrow(0, 0, n1 - n0);
    const int32_t* src = wc.const_data_ptr<int32_t>() + n0 * 2 * W;
    at::parallel_for(0, (n1 - n0) * W, 4096, [&](int64_t t0, int64_t t1) {
      cpu::unpack_range(src, K, wd.data_ptr<float>(), t0, t1, isa);
    });
    if (x.scalar_type() != at::kFloat) wd = wd.to(x.scalar_type());
    if (!nn) {
      at::Tensor o = out.narrow(1, n0, n1 - n0);
      at::mm_out(o, x, wd.t());
    } else if (n0 == 0) {
      at::mm_out(out, x.narrow(1, 0, n1), wd);
    } else {
      out.addmm_(x.narrow(1, n0, n1 - n0), wd);
    }
  }
  return out;
}

}  // namespace gxnor::bind
