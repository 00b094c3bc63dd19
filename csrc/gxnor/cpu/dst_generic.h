// CPU in-place DST update, portable part (torch-free): the parameters and the scalar kernels.
// Packed ternary: per plane word, 32 elements: read the (gate, sign) bits, take the draws of
// dst::draws, apply dst::move, write the word back (canonical; padding stays 0). Multi-state: int8
// state indices, in 32-element chunks of a row. Returns the number of non-finite increments.
#pragma once
#include <cstdint>
#include <type_traits>

#include "../dst.h"
#include "isa.h"

namespace gxnor::cpu {

// dst::tanh_rational's coefficients (highest power first) and clamp, for the vector paths: tanh(x) is
// x * P(x^2) / Q(x^2), evaluated with a multiply then an add per coefficient in this order. The
// scalar function keeps them as literals because CUDA device code cannot read a namespace-scope
// array.
inline constexpr float kTanhP[] = {-2.76076847742355e-16f, 2.00018790482477e-13f, -8.60467152213735e-11f,
                                   5.12229709037114e-08f,  1.48572235717979e-05f, 6.37261928875436e-04f,
                                   4.89352455891786e-03f};
inline constexpr float kTanhQ[] = {1.19825839466702e-06f, 1.18534705686654e-04f, 2.26843463243900e-03f,
                                   4.89352518554385e-03f};
inline constexpr float kTanhClamp = 7.90531110763549805f;

struct DstParams {
  float lr = 0.f;          // D = -lr * grad, unless increment
  bool increment = false;  // grad holds D itself
  float m = 3.f;           // nonlinearity factor
  float inv_dz = 1.f;      // 1 / state step (2^(N-1); 0.5 for binary)
  int hi = 1;              // state index range [-hi, hi]
  int step = 1;            // index change per state move (2 for binary {-1, +1})
  uint64_t seed = 0, offset = 0;
  int rng = 2;  // random-number contract (dst.h: draws)
};

// The n <= 32 elements (row, k0 + j) of a row of K.
template <class G>
__attribute__((always_inline)) inline int64_t dst_block32(const G* grad, int n, int64_t K, int64_t row,
                                                          int64_t k0, const DstParams& p, const int8_t* s_in,
                                                          int8_t* s_out) {
  float t[32];
  bool fin[32];
  uint32_t u[32] = {};
  int64_t bad = 0;
  dst::draws(p.rng, p.seed, p.offset, K, row, k0, n, u);
  for (int j = 0; j < 32; ++j) {
    const float g = j < n ? static_cast<float>(grad[j]) : 0.f;
    fin[j] = dst::finite(g);  // a non-finite gradient moves nothing; an overflowing increment saturates
    const float d = p.increment ? g : -p.lr * g;
    t[j] = fin[j] ? d * p.inv_dz : 0.f;
  }
  for (int j = 0; j < 32; ++j) {
    bad += (j < n) & !fin[j];
    const int mv = dst::move(t[j], p.m, dst::uniform(u[j]));
    int s = s_in[j] + p.step * mv;
    s = s > p.hi ? p.hi : (s < -p.hi ? -p.hi : s);
    s_out[j] = static_cast<int8_t>(s);
  }
  return bad;
}

template <class G>
inline int64_t dst_packed_words_generic(int32_t* w, const G* grad, int64_t K, int64_t t0, int64_t t1,
                                        const DstParams& p) {
  const int64_t W = packed_words(K);
  int64_t bad = 0;
  int8_t s[32], o[32];
  int64_t row = t0 / W, wi = t0 % W;
  for (int64_t t = t0; t < t1; ++t, wi = (wi + 1 == W) ? (++row, 0) : wi + 1) {
    const int64_t lo = wi * 32;
    if (lo >= K) continue;  // padding word: stays zero
    const int n = static_cast<int>(K - lo < 32 ? K - lo : 32);
    uint32_t& gw = reinterpret_cast<uint32_t&>(w[row * 2 * W + wi]);
    uint32_t& sw = reinterpret_cast<uint32_t&>(w[row * 2 * W + W + wi]);
    for (int j = 0; j < 32; ++j)
      s[j] = static_cast<int8_t>(((gw >> j) & 1u) ? (((sw >> j) & 1u) ? -1 : 1) : 0);
    bad += dst_block32(grad + row * K + lo, n, K, row, lo, p, s, o);
    uint32_t g = 0, sg = 0;
    for (int j = 0; j < n; ++j) {
      g |= static_cast<uint32_t>(o[j] != 0) << j;
      sg |= static_cast<uint32_t>(o[j] < 0) << j;
    }
    gw = g;
    sw = sg;
  }
  return bad;
}

// States seen as rows of K; chunks [c0, c1) of the rows * ceil(K / 32) 32-element chunks.
template <class G>
inline int64_t dst_states_generic(int8_t* s, const G* grad, int64_t K, int64_t c0, int64_t c1,
                                  const DstParams& p) {
  const int64_t per_row = (K + 31) / 32;
  int64_t bad = 0;
  int8_t o[32];
  for (int64_t c = c0; c < c1; ++c) {
    const int64_t row = c / per_row, k0 = (c % per_row) * 32, i = row * K + k0;
    const int n = static_cast<int>(K - k0 < 32 ? K - k0 : 32);
    int8_t in[32] = {};
    for (int j = 0; j < n; ++j) in[j] = s[i + j];
    bad += dst_block32(grad + i, n, K, row, k0, p, in, o);
    for (int j = 0; j < n; ++j) s[i + j] = o[j];
  }
  return bad;
}

}  // namespace gxnor::cpu
