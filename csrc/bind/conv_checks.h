// xnor_conv2d argument checks for the CPU and CUDA bindings: the C++ twin of
// gxnor_cuda/_conv_checks.py (same messages). Returns the ConvShape.
#pragma once
#include <ATen/ATen.h>

#include "../gxnor/conv_shape.h"
#include "alloc.h"
#include "checks.h"

namespace gxnor::bind {

// stride, padding, dilation: 2 ints each, stride and dilation >= 1, padding >= 0.
inline void check_conv_spec(at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(stride.size() == 2, "stride: expected an int or 2 ints, got ", stride);
  TORCH_CHECK(padding.size() == 2, "padding: expected an int or 2 ints, got ", padding);
  TORCH_CHECK(dilation.size() == 2, "dilation: expected an int or 2 ints, got ", dilation);
  TORCH_CHECK(stride[0] >= 1 && stride[1] >= 1, "stride: expected ints >= 1, got ", stride);
  TORCH_CHECK(dilation[0] >= 1 && dilation[1] >= 1, "dilation: expected ints >= 1, got ", dilation);
  TORCH_CHECK(padding[0] >= 0 && padding[1] >= 0, "padding: expected ints >= 0, got ", padding);
}

inline ConvShape check_conv(const at::Tensor& x, const at::Tensor& w, int64_t C, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                            const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  check_conv_spec(stride, padding, dilation);
  TORCH_CHECK(groups >= 1, "groups: expected an int >= 1, got ", groups);
  TORCH_CHECK(C >= 1, "C: expected the input channel count >= 1, got ", C);
  TORCH_CHECK(C % groups == 0, "groups: expected a divisor of C = ", C, ", got ", groups);
  TORCH_CHECK(x.scalar_type() == at::kInt, "x: expected packed dtype torch.int32, got ", x.scalar_type());
  TORCH_CHECK(w.scalar_type() == at::kInt, "w: expected packed dtype torch.int32, got ", w.scalar_type());
  TORCH_CHECK(x.dim() == 6 || (x.dim() == 5 && groups == 1),
              "x: expected packed channels-last activations (N, H, W, 2, Wc) or (N, H, W, groups, 2, Wg) "
              "(groups = ",
              groups, "), got shape ", x.sizes());
  const bool six = x.dim() == 6;
  ConvShape s{};
  s.n = x.size(0), s.h = x.size(1), s.w = x.size(2), s.g = six ? x.size(3) : 1;
  s.wg = x.size(-1);
  const int64_t wg_want = packed_words(C / groups);
  TORCH_CHECK(s.g == groups && x.size(-2) == 2 && s.wg == wg_want, "x: expected shape (N, H, W, ", groups,
              ", 2, ", wg_want, ") for C = ", C, " in ", groups, " group(s) (W = 2*ceil(C/groups/64)), got ",
              x.sizes());
  TORCH_CHECK(w.dim() == 5 && w.size(3) == 2, "w: expected packed weights (O, kh, kw, 2, Wg), got shape ",
              w.sizes());
  TORCH_CHECK(w.size(4) == wg_want, "w: expected Wg = ", wg_want, " words for C/groups = ", C / groups,
              " channels, got shape ", w.sizes());
  s.o = w.size(0), s.kh = w.size(1), s.kw = w.size(2);
  TORCH_CHECK(s.o % groups == 0, "w: expected out channels O divisible by groups = ", groups,
              ", got O = ", s.o);
  TORCH_CHECK(s.kh >= 1 && s.kw >= 1, "w: expected a kernel of size >= 1, got shape ", w.sizes());
  TORCH_CHECK(s.o >= 1, "w: expected O >= 1 output channels, got shape ", w.sizes());
  // Padded sizes and kernel extents below 2^31 (the kernels index in 32 bits), checked without overflow.
  constexpr int64_t kLim = int64_t(1) << 31;
  for (int i = 0; i < 2; ++i) {
    const int64_t size = i ? s.w : s.h, k = i ? s.kw : s.kh;
    TORCH_CHECK(size < kLim && padding[i] < (kLim - size) / 2 + 1 && size + 2 * padding[i] < kLim,
                "padding: expected input size + 2 * padding < 2^31 (32-bit indices), got size ", size,
                " and padding ", padding);
    TORCH_CHECK(k - 1 == 0 || dilation[i] <= (kLim - 2) / (k - 1),
                "dilation: expected dilation * (kernel - 1) + 1 ", "< 2^31 (32-bit indices), got kernel ", k,
                " and dilation ", dilation);
  }
  TORCH_CHECK(w.device() == x.device(), "w: expected device ", x.device(), " (the device of x), got ",
              w.device());
  s.sh = stride[0], s.sw = stride[1], s.ph = padding[0], s.pw = padding[1], s.dh = dilation[0],
  s.dw = dilation[1];
  s.ho = (s.h + 2 * s.ph - s.dh * (s.kh - 1) - 1) / s.sh + 1;
  s.wo = (s.w + 2 * s.pw - s.dw * (s.kw - 1) - 1) / s.sw + 1;
  const bool neg_h = s.h + 2 * s.ph - s.dh * (s.kh - 1) - 1 < 0,
             neg_w = s.w + 2 * s.pw - s.dw * (s.kw - 1) - 1 < 0;
  TORCH_CHECK(!neg_h && !neg_w && s.ho >= 1 && s.wo >= 1, "w: expected a kernel (", s.kh, ", ", s.kw,
              ") with dilation ", dilation, " no larger than the padded input (", s.h + 2 * s.ph, ", ",
              s.w + 2 * s.pw, "), got output size (", neg_h ? 0 : s.ho, ", ", neg_w ? 0 : s.wo, ")");
  const double out_elems = static_cast<double>(s.n) * s.o * s.ho * s.wo;  // no int64 overflow
  TORCH_CHECK(out_elems < 281474976710656.0, "padding: expected an output (N, O, Ho, Wo) of fewer than 2^48 ",
              "elements, got (", s.n, ", ", s.o, ", ", s.ho, ", ", s.wo, ") with padding ", padding,
              " and stride ", stride);
  for (const auto* v : {&scale, &bias}) {
    if (!v->has_value()) continue;
    const char* name = v == &scale ? "scale" : "bias";
    const at::Tensor& t = **v;
    TORCH_CHECK(t.scalar_type() == at::kFloat, name, ": expected dtype torch.float32, got ", t.scalar_type());
    TORCH_CHECK(t.dim() == 1 && t.size(0) == s.o, name, ": expected shape (O,) = (", s.o, ",), got ",
                t.sizes());
    TORCH_CHECK(t.device() == x.device(), name, ": expected device ", x.device(), ", got ", t.device());
  }
  return s;
}

// Everything xnor_conv2d / xnor_conv2d_pack check before any work, on either device: x on `dev`,
// then the shapes, w, scale and bias on x's device (check_conv).
inline ConvShape check_conv_call(const at::Tensor& x, const at::Tensor& w, int64_t C, at::IntArrayRef stride,
                                 at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                 const std::optional<at::Tensor>& scale,
                                 const std::optional<at::Tensor>& bias, c10::DeviceType dev) {
  check_device(x, "x", dev);
  return check_conv(x, w, C, stride, padding, dilation, groups, scale, bias);
}

// An output buffer; a failed allocation says which arguments made it that large.
inline at::Tensor alloc_named(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  try {
    return empty_out(sizes, opts);
  } catch (const std::bad_alloc&) {
  } catch (const c10::Error&) {
  }
  TORCH_CHECK(false, "padding, stride: the output of shape ", sizes,
              " (from the input size, padding and stride) ", "could not be allocated");
}

// (N, O, Ho, Wo) output in channels-last memory: what the implicit GEMM writes row by row.
inline at::Tensor conv_out_empty(const at::Tensor& x, const ConvShape& s, bool float_out) {
  return alloc_named({s.n, s.ho, s.wo, s.o}, x.options().dtype(float_out ? at::kFloat : at::kInt))
      .permute({0, 3, 1, 2});
}

// xnor_conv2d_maxpool2x2: a conv output holding at least one 2 x 2 window.
inline void check_conv_pool_output(const ConvShape& s) {
  TORCH_CHECK(s.ho >= 2 && s.wo >= 2, "x: expected a conv output of at least 2 x 2 for the 2 x 2 pool, got (",
              s.ho, ", ", s.wo, ")");
}

// grad_out of xnor_conv2d_weight_grad: (N, O, Ho, Wo) float32 of the conv of shape s (any strides).
inline void check_conv_grad_out(const at::Tensor& gy, const ConvShape& s) {
  TORCH_CHECK(gy.scalar_type() == at::kFloat, "grad_out: expected dtype torch.float32, got ",
              gy.scalar_type());
  TORCH_CHECK(
      gy.dim() == 4 && gy.size(0) == s.n && gy.size(1) == s.o && gy.size(2) == s.ho && gy.size(3) == s.wo,
      "grad_out: expected shape (N, O, Ho, Wo) = (", s.n, ", ", s.o, ", ", s.ho, ", ", s.wo,
      ") (the conv's output), got ", gy.sizes());
}

}  // namespace gxnor::bind
