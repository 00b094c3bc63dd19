// Shared argument checks of the DST ops (CPU and CUDA bindings).
#pragma once
#include <ATen/ATen.h>

#include <cmath>

#include "../gxnor/format.h"
#include "checks.h"

namespace gxnor::bind {

inline void check_dst_common(const at::Tensor& w, const at::Tensor& grad, double lr, double m, int64_t seed,
                             int64_t offset, bool increment, int64_t rng) {
  TORCH_CHECK(rng == 1 || rng == 2, "rng: expected a random-number contract in (1, 2), got ", rng);
  TORCH_CHECK(grad.device() == w.device(), "grad: expected device ", w.device(), " (the device of w), got ",
              grad.device());
  TORCH_CHECK(grad.scalar_type() == at::kFloat || grad.scalar_type() == at::kBFloat16 ||
                  grad.scalar_type() == at::kHalf,
              "grad: expected a float32/bfloat16/float16 gradient, got ", grad.scalar_type());
  // lr and m multiply in float32: they must stay finite and nonzero there
  const float lr32 = static_cast<float>(lr), m32 = static_cast<float>(m);
  TORCH_CHECK(increment || (std::isfinite(lr) && lr32 > 0 && std::isfinite(lr32)),
              "lr: expected a finite float32 > 0, got ", lr);
  TORCH_CHECK(std::isfinite(m) && m32 > 0 && std::isfinite(m32), "m: expected a finite float32 > 0, got ", m);
  TORCH_CHECK(seed >= 0, "seed: expected an int in [0, 2^63), got ", seed);
  TORCH_CHECK(offset >= 0, "offset: expected an int >= 0, got ", offset);
}

inline void check_dst_packed(const at::Tensor& w, const at::Tensor& grad) {
  TORCH_CHECK(w.scalar_type() == at::kInt, "w: expected packed dtype torch.int32, got ", w.scalar_type());
  TORCH_CHECK(w.dim() >= 2 && w.size(-2) == 2, "w: expected packed shape (..., 2, W), got ", w.sizes());
  TORCH_CHECK(w.is_contiguous(), "w: expected a contiguous packed tensor (it is updated in place)");
  TORCH_CHECK(grad.dim() == w.dim() - 1, "grad: expected the logical shape (..., K) of w ", w.sizes(),
              ", got ", grad.sizes());
  for (int64_t d = 0; d < grad.dim() - 1; ++d)
    TORCH_CHECK(grad.size(d) == w.size(d), "grad: expected the logical shape (..., K) of w ", w.sizes(),
                ", got ", grad.sizes());
  const int64_t K = grad.size(-1);
  TORCH_CHECK(K >= 1 && packed_words(K) == w.size(-1),
              "grad: expected K with 2*ceil(K/64) = W = ", w.size(-1), " (w ", w.sizes(), "), got K = ", K);
}

inline void check_dst_states(const at::Tensor& s, const at::Tensor& grad, int64_t n_states) {
  TORCH_CHECK(n_states >= 0 && n_states <= 7, "n_states: expected N in [0, 7], got ", n_states);
  TORCH_CHECK(s.scalar_type() == at::kChar, "s: expected int8 state indices, got ", s.scalar_type());
  TORCH_CHECK(s.is_contiguous(), "s: expected a contiguous tensor (it is updated in place)");
  TORCH_CHECK(grad.sizes() == s.sizes(), "grad: expected the shape of s ", s.sizes(), ", got ", grad.sizes());
}

// Data check before an in-place update: indices in [-hi, hi]; binary (N = 0) has no zero state.
inline void check_state_values(const at::Tensor& s, int64_t n_states) {
  const int64_t hi = n_states == 0 ? 1 : (int64_t(1) << (n_states - 1));
  TORCH_CHECK(!at::logical_or(s.gt(hi), s.lt(-hi)).any().item<bool>(), "s: expected state indices in [", -hi,
              ", ", hi, "] for n_states = ", n_states, "; s was not modified");
  if (n_states == 0)
    TORCH_CHECK(!s.eq(0).any().item<bool>(),
                "s: expected binary states in {-1, +1}, got 0; s was not modified");
}

// Everything dst_update_ checks before it writes, on either device, but the canonical words.
inline void check_dst_packed_call(const at::Tensor& w, const at::Tensor& grad, double lr, double m,
                                  int64_t seed, int64_t offset, bool increment, int64_t rng,
                                  c10::DeviceType dev) {
  check_device(w, "w", dev);
  check_dst_common(w, grad, lr, m, seed, offset, increment, rng);
  check_dst_packed(w, grad);
}

// dst_update_'s check of the stored words: nc non-canonical word pairs counted.
inline void check_canonical_count(int64_t nc) {
  TORCH_CHECK(nc == 0, "w: expected canonical packed weights (sign only with gate, zero padding), got ", nc,
              " non-canonical word pair(s); w was not modified");
}

// Everything dst_update_states_ checks before it writes, on either device: the arguments, then (with
// check) the stored indices.
inline void check_dst_states_call(const at::Tensor& s, const at::Tensor& grad, double lr, double m,
                                  int64_t n_states, int64_t seed, int64_t offset, bool increment, int64_t rng,
                                  bool check, c10::DeviceType dev) {
  check_device(s, "s", dev);
  check_dst_common(s, grad, lr, m, seed, offset, increment, rng);
  check_dst_states(s, grad, n_states);
  if (check) check_state_values(s, n_states);
}

}  // namespace gxnor::bind
