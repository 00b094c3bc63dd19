// CPU bindings of the in-place DST update: gxnor::dst_update_ (packed ternary) and
// gxnor::dst_update_states_ (int8 state indices, N in 0..7). Refused calls leave w untouched.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>

#include "../gxnor/cpu/dst_cpu.h"
#include "../gxnor/cpu/pack.h"
#include "checks.h"
#include "cpu_ops.h"
#include "dst_checks.h"

namespace gxnor::bind {
namespace {

cpu::DstParams params(double lr, double m, int64_t seed, int64_t offset, bool increment, int64_t n_states,
                      int64_t rng) {
  cpu::DstParams p;
  p.rng = static_cast<int>(rng);
  p.lr = static_cast<float>(lr);
  p.m = static_cast<float>(m);
  p.increment = increment;
  p.seed = static_cast<uint64_t>(seed);
  p.offset = static_cast<uint64_t>(offset);
  if (n_states == 0) {
    p.inv_dz = 0.5f;
    p.hi = 1;
    p.step = 2;
  } else {
    p.inv_dz = static_cast<float>(int64_t(1) << (n_states - 1));
    p.hi = static_cast<int>(int64_t(1) << (n_states - 1));
    p.step = 1;
  }
  return p;
}

}  // namespace

at::Tensor dst_update_cpu(at::Tensor& w, const at::Tensor& grad_in, double lr, double m, int64_t seed,
                          int64_t offset, bool increment, int64_t rng, bool check) {
  check_dst_packed_call(w, grad_in, lr, m, seed, offset, increment, rng, c10::DeviceType::CPU);
  const int64_t K = grad_in.size(-1), W = w.size(-1), rows = w.numel() / (2 * W);
  if (check) {
    std::atomic<int64_t> nc{0};
    at::parallel_for(0, rows * W, 4096, [&](int64_t t0, int64_t t1) {
      nc += cpu::count_noncanonical_range(w.const_data_ptr<int32_t>(), K, t0, t1);
    });
    check_canonical_count(nc.load());
  }
  const at::Tensor grad = grad_in.to(at::kFloat).contiguous();
  const auto p = params(lr, m, seed, offset, increment, 1, rng);
  const cpu::DstKernel dst = cpu::select_dst_kernel(cpu::current_isa());
  std::atomic<int64_t> bad{0};
  at::parallel_for(0, rows * W, 256, [&](int64_t t0, int64_t t1) {
    bad += dst(w.data_ptr<int32_t>(), grad.const_data_ptr<float>(), K, t0, t1, p);
  });
  return at::scalar_tensor(bad.load(), w.options().dtype(at::kLong));
}

at::Tensor dst_update_states_cpu(at::Tensor& s, const at::Tensor& grad_in, double lr, double m,
                                 int64_t n_states, int64_t seed, int64_t offset, bool increment, int64_t rng,
                                 bool check) {
  check_dst_states_call(s, grad_in, lr, m, n_states, seed, offset, increment, rng, check,
                        c10::DeviceType::CPU);
  const at::Tensor grad = grad_in.to(at::kFloat).contiguous();
  const auto p = params(lr, m, seed, offset, increment, n_states, rng);
  const int64_t K = s.dim() ? s.size(-1) : 1, chunks = K ? s.numel() / K * ((K + 31) / 32) : 0;
  std::atomic<int64_t> bad{0};
  at::parallel_for(0, chunks, 128, [&](int64_t c0, int64_t c1) {
    bad += cpu::dst_states_generic(s.data_ptr<int8_t>(), grad.const_data_ptr<float>(), K, c0, c1, p);
  });
  return at::scalar_tensor(bad.load(), s.options().dtype(at::kLong));
}

}  // namespace gxnor::bind
