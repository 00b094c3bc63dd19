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
#include "../gxnor/cpu/pool.h"
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

// xnor_conv2d then a 2 x 2 / stride 2 max-pool on its accumulators, per chunk of output-row pairs:
// the chunk's float accumulators go to an L2-sized scratch and are pooled from there (maxpool2x2's
// rule and 1-byte argmax), so the (N, O, Ho, Wo) conv output never exists.
std::tuple<at::Tensor, at::Tensor> xnor_conv2d_maxpool2x2_cpu(const at::Tensor& x_in, const at::Tensor& w_in,
                                                              int64_t C, at::IntArrayRef stride,
                                                              at::IntArrayRef padding,
                                                              at::IntArrayRef dilation, int64_t groups) {
  const ConvShape s = check_conv_call(x_in, w_in, C, stride, padding, dilation, groups, std::nullopt,
                                      std::nullopt, c10::DeviceType::CPU);
  check_conv_pool_output(s);
  const int64_t ph = s.ho / 2, pw = s.wo / 2, pairs = s.n * ph, pair_rows = 2 * s.wo;
  at::Tensor y = alloc_named({s.n, ph, pw, s.o}, x_in.options().dtype(at::kFloat)).permute({0, 3, 1, 2});
  at::Tensor arg = alloc_named({s.n, ph, pw, s.o}, x_in.options().dtype(at::kByte)).permute({0, 3, 1, 2});
  if (pairs == 0) return {y, arg};
  const ConvOperands ops(x_in, w_in, s, C, std::nullopt, std::nullopt);
  const int64_t per =
      std::clamp<int64_t>(kPackScratchBytes / (4 * s.o * pair_rows), 1, pairs);  // pooled rows
  at::Tensor scratch = at::empty({per * pair_rows, s.o}, x_in.options().dtype(at::kFloat));
  float* sp = scratch.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  uint8_t* ap = arg.data_ptr<uint8_t>();
  for (int64_t q0 = 0; q0 < pairs; q0 += per) {
    const int64_t q1 = std::min(pairs, q0 + per);
    // pooled rows q0..q1 as runs of consecutive conv rows: one run per sample when Ho is odd (its last
    // row is dropped), else one for the whole chunk; run r lands at scratch row (q - q0) * pair_rows
    for (int64_t a = q0; a < q1;) {
      const int64_t b = s.ho % 2 ? std::min(q1, (a / ph + 1) * ph) : q1;
      cpu::GemmOut o;
      o.ldc = s.o;
      o.c_float = sp + (a - q0) * pair_rows * s.o;
      const int64_t m0 = ((a / ph) * s.ho + 2 * (a % ph)) * s.wo;
      ops.conv.run(m0, m0 + (b - a) * pair_rows, o);
      a = b;
    }
    cpu::parallel_for(q0, q1, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t q = r0; q < r1; ++q) {
        const float* p = sp + (q - q0) * pair_rows * s.o;
        for (int64_t px = 0; px < pw; ++px) {
          const float* top = p + 2 * px * s.o;
          const float* bottom = top + s.wo * s.o;
          const int64_t out = (q * pw + px) * s.o;
          cpu::maxpool_channels(top, top + s.o, bottom, bottom + s.o, yp + out, ap + out, s.o);
        }
      }
    });
  }
  return {y, arg};
}

}  // namespace gxnor::bind
