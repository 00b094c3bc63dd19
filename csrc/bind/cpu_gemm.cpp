// CPU bindings of xnor_gemm (AMX-INT8 or popcount micro-kernels, multithreaded with
// at::parallel_for) and ternary_matmul (float x ternary: weight rows unpacked to the input dtype in
// parallel, in chunks of at most 16 MiB, each followed by the BLAS GEMM on that chunk; measured
// faster than masked add/subtract on this CPU).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../gxnor/cpu/pack.h"
#include "checks.h"
#include "gemm_driver.h"

namespace gxnor::bind {
namespace {

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
  const cpu::GemmOut o = make_gemm_out(out, sc, bi, N);
  gemm_any(a.const_data_ptr<int32_t>(), b.const_data_ptr<int32_t>(), M, N, W, o);
  return out;
}

// Unpacked weight rows per chunk: at most 16 MiB of floats, so the scratch stays below glibc's
// largest mmap threshold and is reused from the heap instead of page-faulting in on every call
// (a 32 MiB copy measured 2x slower than the GEMM itself here), and peak memory stays bounded.
constexpr int64_t kScratchBytes = int64_t(16) << 20;

at::Tensor ternary_matmul_cpu(const at::Tensor& x, const at::Tensor& w, int64_t K, bool nn) {
  check_device(x, "x", c10::DeviceType::CPU);
  check_device(w, "w", c10::DeviceType::CPU);
  check_ternary_matmul(x, w, K, nn);
  const int64_t N = w.size(0), M = x.size(0);
  if (N == 0 || M == 0 || K == 0) return at::zeros({M, nn ? K : N}, x.options());
  const at::Tensor wc = w.contiguous();
  const int64_t W = wc.size(2);
  const auto isa = cpu::current_isa();
  const int64_t nb = std::min(N, std::max<int64_t>(64, kScratchBytes / (4 * K) / 16 * 16));
  at::Tensor out = at::empty({M, nn ? K : N}, x.options());
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

}  // namespace
}  // namespace gxnor::bind

TORCH_LIBRARY_IMPL(gxnor, CPU, m) {
  m.impl("xnor_gemm", &gxnor::bind::xnor_gemm_cpu);
  m.impl("ternary_matmul", &gxnor::bind::ternary_matmul_cpu);
}
