// CPU bindings of conv2d_maxpool2x2 and its weight gradient (the kernels of csrc/gxnor/cpu/conv_pool.h).
#include <ATen/ATen.h>

#include <tuple>

#include "../gxnor/cpu/conv_pool.h"
#include "conv_pool_checks.h"
#include "cpu_ops.h"

namespace gxnor::bind {
namespace {

// x zero-padded, NCHW contiguous, and the kernels' geometry.
std::tuple<at::Tensor, cpu::ConvPool> padded_input(const at::Tensor& x, int64_t o, int64_t kh, int64_t kw,
                                                   const PoolConv& g) {
  at::Tensor xp = (g.ph || g.pw) ? at::constant_pad_nd(x, {g.pw, g.pw, g.ph, g.ph}) : x;
  xp = xp.contiguous();
  const cpu::ConvPool s{xp.size(0), xp.size(1), xp.size(2), xp.size(3), o,        kh,      kw,
                        g.sh,       g.sw,       g.dh,       g.dw,       g.ho / 2, g.wo / 2};
  return {xp, s};
}

at::Tensor channels_last(at::IntArrayRef shape, const at::Tensor& like, at::ScalarType dtype) {
  return at::empty(shape, like.options().dtype(dtype).memory_format(at::MemoryFormat::ChannelsLast));
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> conv2d_maxpool2x2_cpu(const at::Tensor& x, const at::Tensor& w,
                                                         at::IntArrayRef stride, at::IntArrayRef padding,
                                                         at::IntArrayRef dilation) {
  check_device(x, "x", c10::DeviceType::CPU);
  const PoolConv g = check_conv_maxpool2x2(x, w, stride, padding, dilation);
  const int64_t o = w.size(0), kh = w.size(2), kw = w.size(3);
  const std::vector<int64_t> shape{x.size(0), o, g.ho / 2, g.wo / 2};
  at::Tensor y = channels_last(shape, x, at::kFloat), arg = channels_last(shape, x, at::kByte);
  if (y.numel() == 0) return {y, arg};
  auto [xp, s] = padded_input(x, o, kh, kw, g);
  // (O, C, kh, kw) -> (taps, Op): taps in (c, ky, kx) order, zero columns up to Op
  at::Tensor wt = at::zeros({s.taps(), s.op()}, w.options());
  wt.narrow(1, 0, o).copy_(w.permute({1, 2, 3, 0}).reshape({s.taps(), o}));
  cpu::conv_maxpool2x2(xp.const_data_ptr<float>(), wt.const_data_ptr<float>(), y.data_ptr<float>(),
                       arg.data_ptr<uint8_t>(), s);
  return {y, arg};
}

at::Tensor conv2d_maxpool2x2_weight_grad_cpu(const at::Tensor& grad, const at::Tensor& argmax,
                                             const at::Tensor& x, at::IntArrayRef kernel_size,
                                             at::IntArrayRef stride, at::IntArrayRef padding,
                                             at::IntArrayRef dilation) {
  check_device(x, "x", c10::DeviceType::CPU);
  const PoolConv g =
      check_conv_maxpool2x2_weight_grad(grad, argmax, x, kernel_size, stride, padding, dilation);
  const int64_t o = grad.size(1), kh = kernel_size[0], kw = kernel_size[1];
  at::Tensor gw = channels_last({o, x.size(1), kh, kw}, x, at::kFloat);
  if (x.size(0) == 0) return gw.zero_();
  auto [xp, s] = padded_input(x, o, kh, kw, g);
  // the kernels read (N, Ph, Pw, O) rows: the channels-last layout the forward wrote
  const at::Tensor gr = grad.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor ar = argmax.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor buf = at::empty({s.taps(), s.op()}, x.options());
  cpu::conv_maxpool2x2_weight_grad(xp.const_data_ptr<float>(), gr.const_data_ptr<float>(),
                                   ar.const_data_ptr<uint8_t>(), buf.data_ptr<float>(), s);
  // (taps, Op) with taps = (c, ky, kx) -> (O, C, kh, kw)
  gw.copy_(buf.narrow(1, 0, o).t().reshape({o, x.size(1), kh, kw}));
  return gw;
}

}  // namespace gxnor::bind
