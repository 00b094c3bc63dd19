// conv2d_maxpool2x2 argument checks: the C++ twin of gxnor_cuda/_conv_checks.py's
// check_conv_maxpool2x2 / check_conv_maxpool2x2_weight_grad (same messages).
#pragma once
#include <ATen/ATen.h>

#include "conv_checks.h"

namespace gxnor::bind {

// The conv before the pool: stride, padding, dilation and its output size (Ho, Wo).
struct PoolConv {
  int64_t sh, sw, ph, pw, dh, dw, ho, wo;
};

inline void check_float_input(const at::Tensor& x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat, "x: expected dtype torch.float32, got ", x.scalar_type());
  TORCH_CHECK(x.dim() == 4, "x: expected shape (N, C, H, W), got ", x.sizes());
}

inline PoolConv pool_geometry(const at::Tensor& x, int64_t kh, int64_t kw, at::IntArrayRef stride,
                              at::IntArrayRef padding, at::IntArrayRef dilation) {
  check_conv_spec(stride, padding, dilation);
  constexpr int64_t kLim = int64_t(1) << 31;
  const int64_t size[2] = {x.size(2), x.size(3)}, k[2] = {kh, kw};
  for (int i = 0; i < 2; ++i)
    TORCH_CHECK(padding[i] < kLim && size[i] + 2 * padding[i] < kLim && dilation[i] < kLim &&
                    dilation[i] * (k[i] - 1) + 1 < kLim,
                "padding: expected padded input size and dilated kernel < 2^31 (32-bit indices), got size ",
                size[i], ", kernel ", k[i], ", padding ", padding, ", dilation ", dilation);
  PoolConv g{stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], 0, 0};
  const int64_t eh = size[0] + 2 * g.ph - g.dh * (kh - 1) - 1, ew = size[1] + 2 * g.pw - g.dw * (kw - 1) - 1;
  g.ho = eh < 0 ? 0 : eh / g.sh + 1;
  g.wo = ew < 0 ? 0 : ew / g.sw + 1;
  TORCH_CHECK(g.ho >= 2 && g.wo >= 2, "x: expected a conv output of at least 2 x 2 for the 2 x 2 pool, got (",
              g.ho, ", ", g.wo, ") from input (", size[0], ", ", size[1], "), kernel (", kh, ", ", kw,
              "), stride ", stride, ", padding ", padding, ", dilation ", dilation);
  return g;
}

inline PoolConv check_conv_maxpool2x2(const at::Tensor& x, const at::Tensor& w, at::IntArrayRef stride,
                                      at::IntArrayRef padding, at::IntArrayRef dilation) {
  check_float_input(x);
  TORCH_CHECK(w.scalar_type() == at::kFloat, "w: expected dtype torch.float32, got ", w.scalar_type());
  TORCH_CHECK(w.dim() == 4 && w.size(1) == x.size(1) && w.size(0) >= 1 && w.size(1) >= 1 && w.size(2) >= 1 &&
                  w.size(3) >= 1,
              "w: expected shape (O, C, kh, kw) with C = ", x.size(1),
              " (x's channels) and every size >= 1, got ", w.sizes());
  TORCH_CHECK(w.device() == x.device(), "w: expected device ", x.device(), " (the device of x), got ",
              w.device());
  return pool_geometry(x, w.size(2), w.size(3), stride, padding, dilation);
}

inline PoolConv check_conv_maxpool2x2_weight_grad(const at::Tensor& grad, const at::Tensor& argmax,
                                                  const at::Tensor& x, at::IntArrayRef kernel_size,
                                                  at::IntArrayRef stride, at::IntArrayRef padding,
                                                  at::IntArrayRef dilation) {
  check_float_input(x);
  TORCH_CHECK(kernel_size.size() == 2, "kernel_size: expected an int or 2 ints, got ", kernel_size);
  TORCH_CHECK(kernel_size[0] >= 1 && kernel_size[1] >= 1, "kernel_size: expected ints >= 1, got ",
              kernel_size);
  const PoolConv g = pool_geometry(x, kernel_size[0], kernel_size[1], stride, padding, dilation);
  TORCH_CHECK(grad.scalar_type() == at::kFloat, "grad: expected dtype torch.float32, got ",
              grad.scalar_type());
  TORCH_CHECK(argmax.scalar_type() == at::kByte, "argmax: expected dtype torch.uint8, got ",
              argmax.scalar_type());
  TORCH_CHECK(grad.dim() == 4 && grad.size(0) == x.size(0) && grad.size(1) >= 1 && grad.size(2) == g.ho / 2 &&
                  grad.size(3) == g.wo / 2,
              "grad: expected shape (N, O, Ho // 2, Wo // 2) = (", x.size(0), ", O, ", g.ho / 2, ", ",
              g.wo / 2, ") (the pooled conv output), got ", grad.sizes());
  TORCH_CHECK(argmax.sizes() == grad.sizes(), "argmax: expected grad's shape ", grad.sizes(), ", got ",
              argmax.sizes());
  TORCH_CHECK(grad.device() == x.device(), "grad: expected device ", x.device(), " (the device of x), got ",
              grad.device());
  TORCH_CHECK(argmax.device() == x.device(), "argmax: expected device ", x.device(),
              " (the device of x), got ", argmax.device());
  return g;
}

}  // namespace gxnor::bind
