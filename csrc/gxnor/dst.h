// DST rule shared by the C++ CPU and CUDA kernels (and, through the emulation, the tests):
// Philox4x32-10 as Triton's tl.rand(seed, offset) (DESIGN.md section 3), the uint32 -> [0, 1)
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

// First output of Philox4x32-10 for counter (lo(offset), hi(offset), 0, 0), key (lo(seed), hi(seed)).
GXNOR_HD inline uint32_t philox_first(uint64_t seed, uint64_t offset) {
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
  return c0;
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

// States to move for increment t = D / dz (in units of one state): trunc(t) whole states plus one
// more toward sign(t) when u < tanh(m * |t - trunc(t)|). Non-finite t -> 0 (the caller counts it).
GXNOR_HD inline int move(float t, float m, float u) {
  if (!(t - t == 0.0f)) return 0;  // NaN or Inf
  const float lim = 1e9f;
  t = t > lim ? lim : (t < -lim ? -lim : t);
  const int k = static_cast<int>(t);  // trunc toward zero
  const float f = t - static_cast<float>(k);
  const float af = f < 0.0f ? -f : f;
  const float p = tanh_rational(GX_FMUL(m, af));
  const int extra = (u < p) ? (f > 0.0f ? 1 : (f < 0.0f ? -1 : 0)) : 0;
  return k + extra;
}

GXNOR_HD inline bool finite(float t) { return t - t == 0.0f; }

}  // namespace gxnor::dst
