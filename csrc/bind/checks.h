// Argument checks for the torch bindings (CPU and CUDA): the C++ twin of gxnor_cuda/_checks.py.
// Messages name the argument, what was expected and what came.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "../gxnor/format.h"

namespace gxnor::bind {

inline void check_pack_input(const at::Tensor& x, const char* name, bool any_values) {
  const auto dt = x.scalar_type();
  const bool is_float = dt == at::kFloat || dt == at::kDouble || dt == at::kHalf || dt == at::kBFloat16;
  const bool is_int = dt == at::kChar || dt == at::kInt || dt == at::kLong;
  TORCH_CHECK(
      is_float || (!any_values && is_int), name, ": expected dtype ",
      any_values ? "float32/float64/float16/bfloat16" : "float32/float64/float16/bfloat16/int8/int32/int64",
      ", got ", dt);
  TORCH_CHECK(x.dim() >= 1, name, ": expected shape (..., K), got a 0-dim tensor");
  TORCH_CHECK(x.size(-1) >= 1, name, ": expected K = shape[-1] >= 1, got shape ", x.sizes());
}

inline void check_packed(const at::Tensor& p, const char* name, int64_t K) {
  TORCH_CHECK(K >= 1 && K < (int64_t(1) << 31), "K: expected an int in [1, 2^31), got ", K);
  TORCH_CHECK(p.scalar_type() == at::kInt, name, ": expected packed dtype torch.int32, got ",
              p.scalar_type());
  TORCH_CHECK(p.dim() >= 2 && p.size(-2) == 2, name, ": expected packed shape (..., 2, W), got ", p.sizes());
  const int64_t W = packed_words(K);
  TORCH_CHECK(p.size(-1) == W, name, ": expected W = 2*ceil(K/64) = ", W, " words for K = ", K,
              ", got W = ", p.size(-1), " (shape ", p.sizes(), ")");
}

// Strict packing reads float64 values in float32: values such as 1 + 2^-40 would pass as 1 there.
inline void check_strict_float64(const at::Tensor& x) {
  if (x.scalar_type() != at::kDouble || x.numel() == 0) return;
  const int64_t n = at::logical_and(at::logical_and(x.ne(0), x.ne(1)), x.ne(-1)).sum().item<int64_t>();
  TORCH_CHECK(n == 0, "x: expected values in {-1, 0, +1} (or pass threshold=), got ", n,
              " float64 element(s) outside that set");
}

inline void check_threshold(double thr) {
  TORCH_CHECK(std::isfinite(thr) && thr > 0, "threshold: expected a finite float > 0, got ", thr);
  const float t32 = static_cast<float>(thr);  // the kernels compare in float32
  TORCH_CHECK(t32 > 0 && std::isfinite(t32),
              "threshold: expected a float32-representable value > 0 (the kernels ",
              "compare in float32), got ", thr, " (float32: ", t32, ")");
}

inline void check_device(const at::Tensor& t, const char* name, c10::DeviceType dev) {
  TORCH_CHECK(t.device().type() == dev, name, ": expected a ", c10::DeviceTypeName(dev),
              " tensor, got device ", t.device());
}

inline at::ScalarType out_dtype(const std::optional<at::ScalarType>& d) {
  const auto dt = d.value_or(at::kChar);
  TORCH_CHECK(
      dt == at::kChar || dt == at::kFloat || dt == at::kDouble || dt == at::kHalf || dt == at::kBFloat16,
      "dtype: expected one of int8/float32/float64/float16/bfloat16, got ", dt);
  return dt;
}

// unpack_ternary's output: shape (..., K) of packed (..., 2, W), and the dtype its kernels write
// (int8, else float32: another float dtype is a conversion after).
inline std::vector<int64_t> unpacked_shape(const at::Tensor& packed, int64_t K) {
  auto shape = packed.sizes().vec();
  shape.pop_back();
  shape.back() = K;
  return shape;
}

inline at::ScalarType unpack_kernel_dtype(at::ScalarType dt) {
  return dt == at::kChar ? at::kChar : at::kFloat;
}

// xnor_gemm operands: a (M, 2, W), b (N, 2, W) on a's device; optional float32 (N,) scale, bias.
inline void check_gemm(const at::Tensor& a, const at::Tensor& b, int64_t K,
                       const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  check_packed(a, "a", K);
  check_packed(b, "b", K);
  TORCH_CHECK(b.device() == a.device(), "b: expected device ", a.device(), " (the device of a), got ",
              b.device());
  TORCH_CHECK(a.dim() == 3, "a: expected packed shape (M, 2, W), got ", a.sizes());
  TORCH_CHECK(b.dim() == 3, "b: expected packed shape (N, 2, W), got ", b.sizes());
  const int64_t N = b.size(0);
  for (const auto* v : {&scale, &bias}) {
    if (!v->has_value()) continue;
    const char* name = v == &scale ? "scale" : "bias";
    const at::Tensor& t = **v;
    TORCH_CHECK(t.scalar_type() == at::kFloat, name, ": expected dtype torch.float32, got ", t.scalar_type());
    TORCH_CHECK(t.dim() == 1 && t.size(0) == N, name, ": expected shape (N,) = (", N, ",), got ", t.sizes());
    TORCH_CHECK(t.device() == a.device(), name, ": expected device ", a.device(), ", got ", t.device());
  }
}

// ternary_matmul operands: w (N, 2, W) packed along K; x (M, K) (NT) or (M, N) (NN), float32/bfloat16.
inline void check_ternary_matmul(const at::Tensor& x, const at::Tensor& w, int64_t K, bool nn) {
  check_packed(w, "w", K);
  TORCH_CHECK(w.device() == x.device(), "w: expected device ", x.device(), " (the device of x), got ",
              w.device());
  TORCH_CHECK(w.dim() == 3, "w: expected packed shape (N, 2, W), got ", w.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16,
              "x: expected dtype float32 or bfloat16, got ", x.scalar_type());
  TORCH_CHECK(x.dim() == 2, "x: expected shape (M, ", nn ? "N" : "K", "), got ", x.sizes());
  const int64_t inner = nn ? w.size(0) : K;
  TORCH_CHECK(x.size(1) == inner, "x: expected ", nn ? "N = " : "K = ", inner, " columns (",
              nn ? "rows of w" : "the K of w", "), got shape ", x.sizes());
}

// Packed output shape (..., 2, W) for an input (..., K).
inline std::vector<int64_t> packed_shape(const at::Tensor& x) {
  auto s = x.sizes().vec();
  const int64_t K = s.back();
  s.back() = 2;
  s.push_back(packed_words(K));
  return s;
}

// gxnor_cuda/_checks.py: check_maxpool2x2, check_maxpool2x2_backward
inline void check_maxpool2x2(const at::Tensor& x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat, "x: expected dtype torch.float32, got ", x.scalar_type());
  TORCH_CHECK(x.dim() == 4, "x: expected shape (N, C, H, W), got ", x.sizes());
  TORCH_CHECK(x.size(2) >= 2 && x.size(3) >= 2, "x: expected H, W >= 2 (a 2 x 2 window), got shape (",
              x.size(0), ", ", x.size(1), ", ", x.size(2), ", ", x.size(3), ")");
}

inline void check_maxpool2x2_backward(const at::Tensor& grad, const at::Tensor& argmax, int64_t H,
                                      int64_t W) {
  TORCH_CHECK(grad.scalar_type() == at::kFloat, "grad: expected dtype torch.float32, got ",
              grad.scalar_type());
  TORCH_CHECK(argmax.scalar_type() == at::kByte, "argmax: expected dtype torch.uint8, got ",
              argmax.scalar_type());
  TORCH_CHECK(grad.dim() == 4, "grad: expected shape (N, C, H // 2, W // 2), got ", grad.sizes());
  TORCH_CHECK(H >= 0 && W >= 0, "H, W: expected sizes >= 0, got ", H, ", ", W);
  TORCH_CHECK(grad.size(2) == H / 2 && grad.size(3) == W / 2 && argmax.sizes() == grad.sizes(),
              "argmax: expected grad's shape ", grad.sizes(), " = (N, C, H // 2, W // 2) for H, W = ", H,
              ", ", W, ", got argmax ", argmax.sizes());
  TORCH_CHECK(grad.device() == argmax.device(), "argmax: expected device ", grad.device(),
              " (the device of grad), got ", argmax.device());
}

}  // namespace gxnor::bind
