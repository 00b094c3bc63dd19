// CPU bindings of xnor_conv2d and xnor_conv2d_pack: checks, then the implicit-GEMM kernel object of
// cpu/xnor_kernel.h (AMX super-strips, AVX-512 lanes, AVX2 table lookups or popcount im2col chunks).
// Results go through the shared epilogue (int32, or float32 with per-channel scale and bias), or,
// for xnor_conv2d_pack, into an L2-sized float scratch per row chunk that is thresholded and packed
// for the next layer.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../gxnor/cpu/pack.h"
#include "../gxnor/cpu/xnor_kernel.h"
#include "checks.h"
#include "conv_checks.h"
#include "cpu_ops.h"
#include "gemm_out.h"

namespace gxnor::bind {
namespace {

constexpr int64_t kPackScratchBytes = int64_t(2) << 20;  // xnor_conv2d_pack float rows per chunk (L2)

// Contiguous operands and the kernel object chosen for them (cpu/xnor_kernel.h).
struct ConvOperands {
  at::Tensor x, w, sc, bi;
  cpu::XnorConv conv;

  // C: input channels (all groups).
  ConvOperands(const at::Tensor& x_in, const at::Tensor& w_in, const ConvShape& s, int64_t C,
               const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias,
               cpu::Isa isa = cpu::current_isa())
      : x(x_in.contiguous()),
        w(w_in.contiguous()),
        sc(scale ? scale->contiguous() : at::Tensor()),
        bi(bias ? bias->contiguous() : at::Tensor()),
        conv(x.const_data_ptr<int32_t>(), w.const_data_ptr<int32_t>(), s, C / s.g,
             cpu::select_xnor_kernel(isa, s.rows(), s.o, s.words()), isa) {}
};

}  // namespace

at::Tensor xnor_conv2d_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  const ConvShape s =
      check_conv_call(x_in, w_in, C, stride, padding, dilation, groups, scale, bias, c10::DeviceType::CPU);
  const bool fl = scale.has_value() || bias.has_value();
  at::Tensor out = conv_out_empty(x_in, s, fl);  // (N, O, Ho, Wo), memory (N, Ho, Wo, O)
  if (s.rows() == 0 || s.o == 0) return out;
  const ConvOperands ops(x_in, w_in, s, C, scale, bias);
  ops.conv.run(0, s.rows(), make_gemm_out(out, ops.sc, ops.bi, s.o));
  return out;
}

// xnor_conv2d with the next layer's activations emitted directly: per chunk of output rows the
// float results (acc * scale + bias) go to an L2-sized scratch and are thresholded and packed
// from there (phi_r as quantize_pack), so the float (N, O, Ho, Wo) tensor never exists.
at::Tensor xnor_conv2d_pack_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, double threshold,
                                at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                int64_t groups, const std::optional<at::Tensor>& scale,
                                const std::optional<at::Tensor>& bias) {
  check_threshold(threshold);
  const ConvShape s =
      check_conv_call(x_in, w_in, C, stride, padding, dilation, groups, scale, bias, c10::DeviceType::CPU);
  const int64_t Wo = packed_words(s.o), M = s.rows();
  at::Tensor out = alloc_named({s.n, s.ho, s.wo, 2, Wo}, x_in.options().dtype(at::kInt));
  if (M == 0) return out;
  if (s.o == 0) return out.zero_();
  const ConvOperands ops(x_in, w_in, s, C, scale, bias);
  const int64_t chunk = std::min(M, std::max<int64_t>(256, kPackScratchBytes / (4 * s.o) / 256 * 256));
  at::Tensor scratch = at::empty({chunk, s.o}, x_in.options().dtype(at::kFloat));
  const cpu::GemmOut o = make_gemm_out(scratch, ops.sc, ops.bi, s.o);
  const auto pack = cpu::select_pack_kernel<float>(cpu::current_isa());
  const float thr = static_cast<float>(threshold);
  int32_t* dst = out.data_ptr<int32_t>();
  for (int64_t m0 = 0; m0 < M; m0 += chunk) {
    const int64_t m1 = std::min(M, m0 + chunk);
    ops.conv.run(m0, m1, o);
    at::parallel_for(0, (m1 - m0) * Wo, 1024, [&](int64_t t0, int64_t t1) {
      pack(scratch.const_data_ptr<float>(), s.o, dst + m0 * 2 * Wo, t0, t1, cpu::PackMode::kThreshold, thr);
    });
  }
  return out;
}

}  // namespace gxnor::bind
