// CPU bindings of xnor_gemm (AMX-INT8 or popcount micro-kernels, multithreaded with
// at::parallel_for) and ternary_matmul (float x ternary: weights unpacked to the input dtype in
// parallel, then the BLAS GEMM; measured faster than masked add/subtract on this CPU).
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
