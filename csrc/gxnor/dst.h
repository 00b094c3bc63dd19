// DST rule shared by the C++ CPU and CUDA kernels (and, through the emulation, the tests):
// Philox4x32-10 as Triton's tl.randint4x (contracts v1 and v2, docs/design.md), the uint32 -> [0, 1)
// conversion of Triton's uint_to_uniform_float, and a float32 rational tanh built from + * /
// only, so every backend rounds identically (CUDA uses __fmul_rn/__fadd_rn against contraction).
#pragma once
#include <cstdint>

#include "format.h"

#if defined(__CUDA_ARCH__)
#define GX_FMUL(a, b) __fmul_rn(a, b)
#define GX_FADD(a, b) __fadd_rn(a, b)
#else
#define GX_FMUL(a, b) ((a) * (b))
#define GX_FADD(a, b) ((a) + (b))
#endif

namespace gxnor::dst {

GXNOR_HD inline uint32_t mulhi32(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

// The four outputs of Philox4x32-10 for counter (lo(offset), hi(offset), 0, 0), key (lo(seed),
// hi(seed)): Triton's tl.randint4x(seed, offset).
GXNOR_HD inline void philox4(uint64_t seed, uint64_t offset, uint32_t out[4]) {
  uint32_t c0 = static_cast<uint32_t>(offset), c1 = static_cast<uint32_t>(offset >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint32_t p0 = c0, p2 = c2;
    c0 = mulhi32(0xCD9E8D57u, p2) ^ c1 ^ k0;
    c2 = mulhi32(0xD2511F53u, p0) ^ c3 ^ k1;
    c1 = 0xCD9E8D57u * p2;
    c3 = 0xD2511F53u * p0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// First output only (tl.randint): the draw of random-number contract v1.
GXNOR_HD inline uint32_t philox_first(uint64_t seed, uint64_t offset) {
  uint32_t out[4];
  philox4(seed, offset, out);
  return out[0];
}

// Contract v2: a tensor is read as rows of K elements; element (row, k) takes output k % 4 of
// counter offset + row * ceil(K / 4) + k / 4, so one Philox call feeds four elements.
GXNOR_HD inline uint64_t counters_per_row(int64_t K) { return static_cast<uint64_t>((K + 3) / 4); }

// Draws of the four elements (row, k + i), i < 4, k a multiple of 4, under contract `rng`.
GXNOR_HD inline void draw4(int rng, uint64_t seed, uint64_t offset, int64_t K, int64_t row, int64_t k,
                           uint32_t out[4]) {
  if (rng == 1) {
    for (int i = 0; i < 4; ++i) out[i] = philox_first(seed, offset + static_cast<uint64_t>(row * K + k + i));
    return;
  }
  philox4(seed, offset + static_cast<uint64_t>(row) * counters_per_row(K) + static_cast<uint64_t>(k / 4),
          out);
}

// Draws of the n <= 32 elements (row, k0 + j), k0 a multiple of 4.
GXNOR_HD inline void draws(int rng, uint64_t seed, uint64_t offset, int64_t K, int64_t row, int64_t k0, int n,
                           uint32_t* u) {
  for (int j = 0; j < n; j += 4) {
    uint32_t w[4];
    draw4(rng, seed, offset, K, row, k0 + j, w);
    for (int i = 0; i < 4 && j + i < n; ++i) u[j + i] = w[i];
  }
}

// Triton's uint_to_uniform_float for 32-bit values: int32 bitcast, ~x if negative, * 2^-31.
GXNOR_HD inline float uniform(uint32_t u) {
  int32_t x = static_cast<int32_t>(u);
  if (x < 0) x = -x - 1;
  return GX_FMUL(static_cast<float>(x), 4.6566127342e-10f);
}

// tanh(x) for x >= 0 as x * P(x^2) / Q(x^2) (Eigen's fast tanh coefficients), clamped at 7.905;
// max abs error vs tanh about 1e-7 (tests/test_dst_stats.py checks it).
GXNOR_HD inline float tanh_rational(float x) {
  x = x > 7.90531110763549805f ? 7.90531110763549805f : x;
  const float x2 = GX_FMUL(x, x);
  float p = -2.76076847742355e-16f;
  p = GX_FADD(GX_FMUL(p, x2), 2.00018790482477e-13f);
  p = GX_FADD(GX_FMUL(p, x2), -8.60467152213735e-11f);
  p = GX_FADD(GX_FMUL(p, x2), 5.12229709037114e-08f);
  p = GX_FADD(GX_FMUL(p, x2), 1.48572235717979e-05f);
  p = GX_FADD(GX_FMUL(p, x2), 6.37261928875436e-04f);
  p = GX_FADD(GX_FMUL(p, x2), 4.89352455891786e-03f);
  p = GX_FMUL(p, x);
  float q = 1.19825839466702e-06f;
  q = GX_FADD(GX_FMUL(q, x2), 1.18534705686654e-04f);
  q = GX_FADD(GX_FMUL(q, x2), 2.26843463243900e-03f);
  q = GX_FADD(GX_FMUL(q, x2), 4.89352518554385e-03f);
  return p / q;
}

// NaN and +-Inf fail both comparisons; no arithmetic a compiler could contract into an FMA.
GXNOR_HD inline bool finite(float t) { return t >= -3.40282347e38f && t <= 3.40282347e38f; }

// States to move for increment t = D / dz (in units of one state): trunc(t) whole states plus one
// more toward sign(t) when u < tanh(m * |t - trunc(t)|). An infinite t (a finite gradient whose
// increment overflowed) saturates at +-1e9 states; the caller passes 0 for a non-finite gradient
// (and counts it), so NaN only guards.
GXNOR_HD inline int move(float t, float m, float u) {
  if (t != t) return 0;  // NaN
  const float lim = 1e9f;
  t = t > lim ? lim : (t < -lim ? -lim : t);
  const int k = static_cast<int>(t);  // trunc toward zero
  const float f = t - static_cast<float>(k);
  const float af = f < 0.0f ? -f : f;
  const float p = tanh_rational(GX_FMUL(m, af));
  const int extra = (u < p) ? (f > 0.0f ? 1 : (f < 0.0f ? -1 : 0)) : 0;
  return k + extra;
}

}  // namespace gxnor::dst
