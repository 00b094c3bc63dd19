// CPU in-place DST update on AVX2 (torch-free): the AVX-512 design on 8 lanes (CPUs such as AMD
// Zen 3). A plane word of 32 elements is 4 vectors; under contract 2 its 8 Philox counters fill one
// 8-lane chain whose four outputs are transposed into element order. Same float operation order as
// dst.h (no FMA: the extension builds with -ffp-contract=off and these are separate mul/add).
#pragma once
#include <cstdint>

#include "dst_generic.h"

namespace gxnor::cpu {

#if GXNOR_X86
namespace simd8 {
// The 8-lane vector operations of dst_simd.inc.
struct V {
  using F = __m256;
  using I = __m256i;
  GXNOR_TARGET_AVX2 static F set1(float x) { return _mm256_set1_ps(x); }
  GXNOR_TARGET_AVX2 static I set1i(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
  GXNOR_TARGET_AVX2 static I zero() { return _mm256_setzero_si256(); }
  GXNOR_TARGET_AVX2 static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  GXNOR_TARGET_AVX2 static F add(F a, F b) { return _mm256_add_ps(a, b); }
  GXNOR_TARGET_AVX2 static F min(F a, F b) { return _mm256_min_ps(a, b); }
  GXNOR_TARGET_AVX2 static F div(F a, F b) { return _mm256_div_ps(a, b); }
  GXNOR_TARGET_AVX2 static I xor3(I a, I b, I c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
  // Both 32-bit halves of the 8 products a * c: two 32x32->64 multiplies (even, odd lanes), each
  // half moved into its lane by a shift and a blend.
  GXNOR_TARGET_AVX2 static I mul_hilo(I a, uint32_t c, I* hi) {
    const I cv = _mm256_set1_epi64x(c);
    const I even = _mm256_mul_epu32(a, cv);
    const I odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), cv);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  }
};
#define GXNOR_DST_TARGET GXNOR_TARGET_AVX2
#include "dst_simd.inc"
#undef GXNOR_DST_TARGET
}  // namespace simd8

// 64-bit counters base + lane (8 lanes) as low and high 32-bit words (the carry by a sign-flipped
// compare: AVX2 has no unsigned one).
GXNOR_TARGET_AVX2 inline void counters8(uint64_t base, __m256i* lo, __m256i* hi) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), flip = _mm256_set1_epi32(INT32_MIN);
  *lo = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(base))), lane);
  const __m256i carry = _mm256_cmpgt_epi32(_mm256_xor_si256(lane, flip), _mm256_xor_si256(*lo, flip));
  *hi = _mm256_sub_epi32(_mm256_set1_epi32(static_cast<int>(base >> 32)), carry);  // carry lanes are -1
}

// dst::move on NV vectors of 8: t increments in state units, w their uint32 draws, nf all-ones
// where the gradient is not finite (move 0; an infinite increment of a finite one saturates); mv moves.
template <int NV>
GXNOR_TARGET_AVX2 inline void move8(const __m256* t_in, const __m256i* w, const DstParams& p, __m256i* mv,
                                    const __m256* nf) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), zero = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    const __m256i xi = _mm256_xor_si256(w[v], _mm256_srai_epi32(w[v], 31));  // -x - 1 = ~x if negative
    const __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(xi), _mm256_set1_ps(4.6566127342e-10f));
    __m256 t = t_in[v];
    t = _mm256_andnot_ps(nf[v], t);
    t = _mm256_max_ps(_mm256_min_ps(t, _mm256_set1_ps(1e9f)), _mm256_set1_ps(-1e9f));
    const __m256i k = _mm256_cvttps_epi32(t);
    const __m256 f = _mm256_sub_ps(t, _mm256_cvtepi32_ps(k));
    const __m256 pr = simd8::tanh_rational(_mm256_mul_ps(_mm256_set1_ps(p.m), _mm256_and_ps(f, absmask)));
    const __m256 hit = _mm256_cmp_ps(u, pr, _CMP_LT_OQ);
    const __m256i up = _mm256_castps_si256(_mm256_and_ps(hit, _mm256_cmp_ps(f, zero, _CMP_GT_OQ)));
    const __m256i down = _mm256_castps_si256(_mm256_and_ps(hit, _mm256_cmp_ps(f, zero, _CMP_LT_OQ)));
    mv[v] = _mm256_add_epi32(_mm256_sub_epi32(k, up), down);  // true lanes are -1
  }
}

// kWords plane words per pass, walking [t0, t1) row by row (as the AVX-512 pass).
template <int kWords, int kRng>
GXNOR_TARGET_AVX2 int64_t dst_packed_pass_avx2(int32_t* w, const float* grad, int64_t K, int64_t t0,
                                               int64_t t1, const DstParams& params) {
  constexpr int kNV = 4 * kWords;
  const DstParams p = params;
  const int64_t W = packed_words(K), used = (K + 31) / 32;
  const uint64_t kq = dst::counters_per_row(K);
  const __m256 scale = _mm256_set1_ps(p.increment ? p.inv_dz : -p.lr);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  int64_t bad = 0;
  for (int64_t row = t0 / W; row * W < t1; ++row) {
    const int64_t wa = t0 > row * W ? t0 - row * W : 0;
    const int64_t wb = t1 - row * W < used ? t1 - row * W : used;
    int32_t* gwp = w + row * 2 * W;
    const float* gr = grad + row * K;
    for (int64_t wi = wa; wi < wb; wi += kWords) {
      __m256i valid[kNV], u[kNV], mv[kNV];
      __m256 tt[kNV], nf[kNV];
      int n[kWords];
#pragma GCC unroll 16
      for (int j = 0; j < kWords; ++j) {
        const int64_t lo = (wi + j) * 32;
        n[j] = wi + j < wb ? static_cast<int>(K - lo < 32 ? K - lo : 32) : 0;
#pragma GCC unroll 16
        for (int h = 0; h < 4; ++h) {
          const int v = 4 * j + h;
          valid[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n[j] - 8 * h), lane);
          // D = -lr * grad then * inv_dz: two roundings like the scalar path (one when increment).
          const __m256 gv = _mm256_maskload_ps(gr + lo + 8 * h, valid[v]);
          nf[v] = _mm256_cmp_ps(_mm256_and_ps(gv, absmask), _mm256_set1_ps(3.40282347e38f), _CMP_NLE_UQ);
          const __m256 d = _mm256_mul_ps(gv, scale);
          tt[v] = p.increment ? d : _mm256_mul_ps(d, _mm256_set1_ps(p.inv_dz));
          if constexpr (kRng == 1)
            counters8(p.offset + static_cast<uint64_t>(row * K + lo + 8 * h), &u[v], &mv[v]);
        }
      }
      if constexpr (kRng == 1) {
        __m256i c2[kNV], c3[kNV];
        simd8::philox<kNV, false>(u, mv, c2, c3, p.seed);
      } else {
        __m256i c0[kWords], c1[kWords], c2[kWords], c3[kWords];
#pragma GCC unroll 16
        for (int j = 0; j < kWords; ++j)
          counters8(p.offset + static_cast<uint64_t>(row) * kq + static_cast<uint64_t>(wi + j) * 8, &c0[j],
                    &c1[j]);
        simd8::philox<kWords, true>(c0, c1, c2, c3, p.seed);
#pragma GCC unroll 16
        for (int j = 0; j < kWords; ++j) {  // counter i's outputs (c0..c3)[i] -> elements 4 i + [0, 4)
          const __m256i a = _mm256_unpacklo_epi32(c0[j], c1[j]), b = _mm256_unpackhi_epi32(c0[j], c1[j]);
          const __m256i c = _mm256_unpacklo_epi32(c2[j], c3[j]), d = _mm256_unpackhi_epi32(c2[j], c3[j]);
          const __m256i e = _mm256_unpacklo_epi64(a, c),
                        f = _mm256_unpackhi_epi64(a, c);  // counters 0|4, 1|5
          const __m256i g = _mm256_unpacklo_epi64(b, d),
                        h = _mm256_unpackhi_epi64(b, d);  // counters 2|6, 3|7
          u[4 * j + 0] = _mm256_permute2x128_si256(e, f, 0x20);
          u[4 * j + 1] = _mm256_permute2x128_si256(g, h, 0x20);
          u[4 * j + 2] = _mm256_permute2x128_si256(e, f, 0x31);
          u[4 * j + 3] = _mm256_permute2x128_si256(g, h, 0x31);
        }
      }
      move8<kNV>(tt, u, p, mv, nf);
#pragma GCC unroll 16
      for (int j = 0; j < kWords; ++j) {
        if (n[j] == 0) continue;  // past the range
        const uint32_t gw = static_cast<uint32_t>(gwp[wi + j]), sw = static_cast<uint32_t>(gwp[W + wi + j]);
        uint32_t g = 0, sg = 0;
#pragma GCC unroll 16
        for (int h = 0; h < 4; ++h) {
          const int v = 4 * j + h;
          const __m256 vm = _mm256_castsi256_ps(valid[v]);
          bad += __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(_mm256_and_ps(nf[v], vm))));
          const __m256i gate = _mm256_cmpeq_epi32(
              _mm256_and_si256(_mm256_set1_epi32(static_cast<int>((gw >> (8 * h)) & 0xff)), bit), bit);
          const __m256i sgn = _mm256_cmpeq_epi32(
              _mm256_and_si256(_mm256_set1_epi32(static_cast<int>((sw >> (8 * h)) & 0xff)), bit), bit);
          __m256i s = _mm256_and_si256(gate, _mm256_or_si256(sgn, _mm256_set1_epi32(1)));  // -1, 0 or +1
          s = _mm256_add_epi32(s, mv[v]);
          s = _mm256_max_epi32(_mm256_min_epi32(s, _mm256_set1_epi32(1)), _mm256_set1_epi32(-1));
          const __m256 nz =
              _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(s, _mm256_setzero_si256())), vm);
          g |= static_cast<uint32_t>(_mm256_movemask_ps(nz)) << (8 * h);
          sg |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_and_ps(_mm256_castsi256_ps(s), vm)))
                << (8 * h);
        }
        gwp[wi + j] = static_cast<int32_t>(g);
        gwp[W + wi + j] = static_cast<int32_t>(sg);
      }
    }
  }
  return bad;
}

GXNOR_TARGET_AVX2 inline int64_t dst_packed_words_avx2(int32_t* w, const float* grad, int64_t K, int64_t t0,
                                                       int64_t t1, const DstParams& p) {
  return p.rng == 1 ? dst_packed_pass_avx2<1, 1>(w, grad, K, t0, t1, p)
                    : dst_packed_pass_avx2<2, 2>(w, grad, K, t0, t1, p);
}
#endif

}  // namespace gxnor::cpu
