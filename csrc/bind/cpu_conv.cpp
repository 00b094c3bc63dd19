// CPU binding of xnor_conv2d: implicit GEMM in row chunks. Per chunk of output positions and per
// group, the packed im2col rows (2 bits per value: a few KiB per row at most) are gathered in
// parallel, then the xnor GEMM drivers (AMX-INT8 or popcount) write the channels-last output
// through the shared epilogue (int32, or float32 with per-channel scale and bias).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "../gxnor/cpu/conv.h"
#include "checks.h"
#include "conv_checks.h"
#include "gemm_driver.h"

namespace gxnor::bind {
namespace {

constexpr int64_t kChunkBytes = int64_t(2) << 20;  // packed im2col rows per chunk: about 2 MiB

at::Tensor xnor_conv2d_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  check_device(x_in, "x", c10::DeviceType::CPU);
  check_device(w_in, "w", c10::DeviceType::CPU);
  const ConvShape s = check_conv(x_in, w_in, C, stride, padding, dilation, groups, scale, bias);
  const bool fl = scale.has_value() || bias.has_value();
  at::Tensor out = conv_out_empty(x_in, s, fl);  // (N, O, Ho, Wo), memory (N, Ho, Wo, O)
  const int64_t M = s.rows(), Kw = s.words(), og = s.og();
  if (M == 0 || s.o == 0) return out;
  const at::Tensor x = x_in.contiguous(), w = w_in.contiguous();
  at::Tensor sc = scale ? scale->contiguous() : at::Tensor(), bi = bias ? bias->contiguous() : at::Tensor();
  std::vector<int32_t> wrows(s.o * 2 * Kw);
  cpu::weights_to_rows(w.const_data_ptr<int32_t>(), s, wrows.data());
  const int64_t chunk = std::max<int64_t>(32, kChunkBytes / (8 * Kw) / 32 * 32);
  std::vector<int32_t> cols(std::min(chunk, M) * 2 * Kw);
  const int32_t* xp = x.const_data_ptr<int32_t>();
  for (int64_t m0 = 0; m0 < M; m0 += chunk) {
    const int64_t m1 = std::min(M, m0 + chunk);
    for (int64_t gi = 0; gi < s.g; ++gi) {
      at::parallel_for(m0, m1, 64, [&](int64_t r0, int64_t r1) {
        cpu::im2col_packed(xp, s, gi, r0, r1, cols.data() + (r0 - m0) * 2 * Kw);
      });
      cpu::GemmOut o;
      o.ldc = s.o;
      const int64_t off = m0 * s.o + gi * og;
      if (fl) {
        o.c_float = out.data_ptr<float>() + off;
        o.scale = sc.defined() ? sc.const_data_ptr<float>() + gi * og : nullptr;
        o.bias = bi.defined() ? bi.const_data_ptr<float>() + gi * og : nullptr;
      } else {
        o.c_int = out.data_ptr<int32_t>() + off;
      }
      gemm_any(cols.data(), wrows.data() + gi * og * 2 * Kw, m1 - m0, og, Kw, o);
    }
  }
  return out;
}

}  // namespace
}  // namespace gxnor::bind

TORCH_LIBRARY_IMPL(gxnor, CPU, m) { m.impl("xnor_conv2d", &gxnor::bind::xnor_conv2d_cpu); }
