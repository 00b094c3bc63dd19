// CPU bindings of maxpool2x2 and its backward (the kernels of csrc/gxnor/cpu/pool.h).
#include <ATen/ATen.h>

#include <tuple>

#include "../gxnor/cpu/pool.h"
#include "alloc.h"
#include "checks.h"
#include "cpu_ops.h"

namespace gxnor::bind {
namespace {

cpu::Strides4 strides4(const at::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }

}  // namespace

std::tuple<at::Tensor, at::Tensor> maxpool2x2_cpu(const at::Tensor& x) {
  check_device(x, "x", c10::DeviceType::CPU);
  check_maxpool2x2(x);
  const std::vector<int64_t> shape{x.size(0), x.size(1), x.size(2) / 2, x.size(3) / 2};
  at::Tensor y = empty_in_format_of(x, shape, at::kFloat), arg = empty_in_format_of(x, shape, at::kByte);
  if (y.numel() == 0) return {y, arg};
  const cpu::Pool2x2 s{x.size(0), x.size(1), x.size(2), x.size(3), strides4(x), strides4(y)};
  cpu::maxpool2x2(x.const_data_ptr<float>(), y.data_ptr<float>(), arg.data_ptr<uint8_t>(), s);
  return {y, arg};
}

at::Tensor maxpool2x2_backward_cpu(const at::Tensor& grad, const at::Tensor& argmax, int64_t H, int64_t W) {
  check_device(grad, "grad", c10::DeviceType::CPU);
  check_maxpool2x2_backward(grad, argmax, H, W);
  at::Tensor gi = empty_in_format_of(argmax, {grad.size(0), grad.size(1), H, W}, at::kFloat);
  if (gi.numel() == 0) return gi;
  const cpu::Pool2x2 s{grad.size(0), grad.size(1), H, W, strides4(gi), strides4(argmax)};
  cpu::maxpool2x2_backward(grad.const_data_ptr<float>(), argmax.const_data_ptr<uint8_t>(),
                           gi.data_ptr<float>(), s, strides4(grad), strides4(gi));
  return gi;
}

}  // namespace gxnor::bind
