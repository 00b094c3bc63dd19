// CPU in-place DST update on AVX-512 (torch-free): 16-lane Philox chains, interleaved (dst_simd.inc),
// and the dst::move rule in the same float operation order as dst.h (the extension builds with
// -ffp-contract=off, so no FMA changes the rounding).
#pragma once
#include <cstdint>

#include "dst_generic.h"

namespace gxnor::cpu {

#if GXNOR_X86
namespace simd16 {
// The 16-lane vector operations of dst_simd.inc.
struct V {
  using F = __m512;
  using I = __m512i;
  GXNOR_TARGET_AVX512 static F set1(float x) { return _mm512_set1_ps(x); }
  GXNOR_TARGET_AVX512 static I set1i(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
  GXNOR_TARGET_AVX512 static I zero() { return _mm512_setzero_si512(); }
  GXNOR_TARGET_AVX512 static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  GXNOR_TARGET_AVX512 static F add(F a, F b) { return _mm512_add_ps(a, b); }
  GXNOR_TARGET_AVX512 static F min(F a, F b) { return _mm512_min_ps(a, b); }
  GXNOR_TARGET_AVX512 static F div(F a, F b) { return _mm512_div_ps(a, b); }
  GXNOR_TARGET_AVX512 static I xor3(I a, I b, I c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }
  // Both 32-bit halves of the 16 products a * c from two 32x32->64 multiplies (even and odd
  // lanes), each half put in its lane by a shift and a masked blend: *hi = high words, return =
  // low words. Non-destructive (a two-source permute overwrote an operand, costing register copies).
  GXNOR_TARGET_AVX512 static I mul_hilo(I a, uint32_t c, I* hi) {
    const I cv = _mm512_set1_epi64(c);
    const I even = _mm512_mul_epu32(a, cv);
    const I odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), cv);
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  }
};
#define GXNOR_DST_TARGET GXNOR_TARGET_AVX512
#include "dst_simd.inc"
#undef GXNOR_DST_TARGET
}  // namespace simd16

// 64-bit counters base + lane (lanes 0-15), or base0 + lane / base1 + lane - 8 (two halves of 8):
// low and high 32-bit words with the carry.
GXNOR_TARGET_AVX512 inline void counters16(uint64_t base0, uint64_t base1, bool halves, __m512i* lo,
                                           __m512i* hi) {
  const __m512i lane = halves ? _mm512_set_epi32(7, 6, 5, 4, 3, 2, 1, 0, 7, 6, 5, 4, 3, 2, 1, 0)
                              : _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const uint64_t b1 = halves ? base1 : base0;
  const __m512i blo =
      _mm512_mask_set1_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(base0))), 0xff00,
                             static_cast<int>(static_cast<uint32_t>(b1)));
  const __m512i bhi = _mm512_mask_set1_epi32(_mm512_set1_epi32(static_cast<int>(base0 >> 32)), 0xff00,
                                             static_cast<int>(b1 >> 32));
  *lo = _mm512_add_epi32(blo, lane);
  *hi = _mm512_mask_add_epi32(bhi, _mm512_cmplt_epu32_mask(*lo, lane), bhi, _mm512_set1_epi32(1));
}

// Contract v1: u[v] = first Philox output of counters offset + idx0[v] + lane.
template <int NV>
GXNOR_TARGET_AVX512 inline void draws_v1(const uint64_t* idx0, const DstParams& p, __m512i* u) {
  __m512i c1[NV], c2[NV], c3[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) counters16(p.offset + idx0[v], 0, false, &u[v], &c1[v]);
  simd16::philox<NV, false>(u, c1, c2, c3, p.seed);
}

// Contract v2 for NW / 2 pairs of plane words: 8 counters per word (q[w] + [0, 8)), four outputs
// each, put back in element order: u[2 w + h] = elements 16 h + [0, 16) of word w.
template <int NW>
GXNOR_TARGET_AVX512 inline void draws_v2(const uint64_t* q, const DstParams& p, __m512i* u) {
  constexpr int NV = NW / 2;
  __m512i c0[NV], c1[NV], c2[NV], c3[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) counters16(q[2 * v], q[2 * v + 1], true, &c0[v], &c1[v]);
  simd16::philox<NV, true>(c0, c1, c2, c3, p.seed);
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    // 4 x 4 transpose: lane i of counter c's outputs (c0..c3)[c] -> element 4 c + i.
    const __m512i a = _mm512_unpacklo_epi32(c0[v], c1[v]), b = _mm512_unpackhi_epi32(c0[v], c1[v]);
    const __m512i c = _mm512_unpacklo_epi32(c2[v], c3[v]), d = _mm512_unpackhi_epi32(c2[v], c3[v]);
    const __m512i e = _mm512_unpacklo_epi64(a, c), f = _mm512_unpackhi_epi64(a, c);  // counters 4L, 4L+1
    const __m512i g = _mm512_unpacklo_epi64(b, d), h = _mm512_unpackhi_epi64(b, d);  // counters 4L+2, 4L+3
    const __m512i pl = _mm512_shuffle_i32x4(e, f, 0x44), ql = _mm512_shuffle_i32x4(g, h, 0x44);
    const __m512i ph = _mm512_shuffle_i32x4(e, f, 0xEE), qh = _mm512_shuffle_i32x4(g, h, 0xEE);
    u[4 * v + 0] = _mm512_shuffle_i32x4(pl, ql, 0x88);
    u[4 * v + 1] = _mm512_shuffle_i32x4(pl, ql, 0xDD);
    u[4 * v + 2] = _mm512_shuffle_i32x4(ph, qh, 0x88);
    u[4 * v + 3] = _mm512_shuffle_i32x4(ph, qh, 0xDD);
  }
}

// dst::move on NV groups of 16 lanes: t[v]: increments in state units, w[v]: their uint32 draws.
// mv[v]: moves; nonfinite[v]: lanes whose gradient is not finite (move 0); an infinite increment
// of a finite gradient saturates at the clamp.
template <int NV>
GXNOR_TARGET_AVX512 inline void move16(const __m512* t_in, const __m512i* w, const DstParams& p, __m512i* mv,
                                       const __mmask16* nonfinite) {
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    // uniform: int32 bitcast, -x - 1 = ~x if negative (x ^ sign mask), * 2^-31
    const __m512i xi = _mm512_xor_si512(w[v], _mm512_srai_epi32(w[v], 31));
    const __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(xi), _mm512_set1_ps(4.6566127342e-10f));
    __m512 t = t_in[v];
    t = _mm512_maskz_mov_ps(static_cast<__mmask16>(~nonfinite[v]), t);
    t = _mm512_max_ps(_mm512_min_ps(t, _mm512_set1_ps(1e9f)), _mm512_set1_ps(-1e9f));
    const __m512i k = _mm512_cvttps_epi32(t);
    const __m512 f = _mm512_sub_ps(t, _mm512_cvtepi32_ps(k));
    const __m512 af = _mm512_abs_ps(f);
    const __m512 pr = simd16::tanh_rational(_mm512_mul_ps(_mm512_set1_ps(p.m), af));
    const __mmask16 hit = _mm512_cmp_ps_mask(u, pr, _CMP_LT_OQ);
    const __mmask16 pos = _mm512_cmp_ps_mask(f, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __mmask16 ng = _mm512_cmp_ps_mask(f, _mm512_setzero_ps(), _CMP_LT_OQ);
    mv[v] = _mm512_mask_add_epi32(k, hit & pos, k, _mm512_set1_epi32(1));
    mv[v] = _mm512_mask_sub_epi32(mv[v], hit & ng, mv[v], _mm512_set1_epi32(1));
  }
}

// kWords plane words per pass (2 x kWords 16-lane halves), walking the words [t0, t1) row by row:
// per-word index arithmetic (divisions, pointer arrays) had cost more than the Philox draws.
template <int kWords, int kRng>
GXNOR_TARGET_AVX512 int64_t dst_packed_pass_avx512(int32_t* w, const float* grad, int64_t K, int64_t t0,
                                                   int64_t t1, const DstParams& params) {
  constexpr int kNV = 2 * kWords;
  const DstParams p = params;                               // a local copy: the weight stores cannot alias it
  const int64_t W = packed_words(K), used = (K + 31) / 32;  // words past `used` are padding: untouched
  const uint64_t kq = dst::counters_per_row(K);
  const __m512 scale = _mm512_set1_ps(p.increment ? p.inv_dz : -p.lr);
  int64_t bad = 0;
  for (int64_t row = t0 / W; row * W < t1; ++row) {
    const int64_t wa = t0 > row * W ? t0 - row * W : 0;
    const int64_t wb = t1 - row * W < used ? t1 - row * W : used;
    int32_t* gwp = w + row * 2 * W;
    const float* gr = grad + row * K;
    for (int64_t wi = wa; wi < wb; wi += kWords) {
      __mmask16 m[kNV], nf[kNV];
      __m512 tt[kNV];
      uint64_t idx[kNV], q[kWords];
#pragma GCC unroll 16
      for (int j = 0; j < kWords; ++j) {
        const int64_t lo = (wi + j) * 32;
        const int n = wi + j < wb ? static_cast<int>(K - lo < 32 ? K - lo : 32) : 0;
        q[j] = p.offset + static_cast<uint64_t>(row) * kq + static_cast<uint64_t>(wi + j) * 8;
#pragma GCC unroll 16
        for (int h = 0; h < 2; ++h) {
          const int nh = n - 16 * h, v = 2 * j + h;
          m[v] = nh >= 16 ? 0xffff : (nh <= 0 ? 0 : static_cast<__mmask16>((1u << nh) - 1));
          // D = -lr * grad then * inv_dz: two roundings like the scalar path (one when increment).
          const __m512 gv = load_ps16(m[v], gr + lo + 16 * h);
          nf[v] = _mm512_fpclass_ps_mask(gv, 0x99);  // QNaN, +Inf, -Inf, SNaN
          const __m512 d = _mm512_mul_ps(gv, scale);
          tt[v] = p.increment ? d : _mm512_mul_ps(d, _mm512_set1_ps(p.inv_dz));
          idx[v] = static_cast<uint64_t>(row * K + lo + 16 * h);
        }
      }
      __m512i u[kNV], mv[kNV];
      if constexpr (kRng == 1)
        draws_v1<kNV>(idx, p, u);
      else
        draws_v2<kWords>(q, p, u);
      move16<kNV>(tt, u, p, mv, nf);
#pragma GCC unroll 16
      for (int j = 0; j < kWords; ++j) {
        if (!(m[2 * j] | m[2 * j + 1])) continue;  // past the range
        const uint32_t gw = static_cast<uint32_t>(gwp[wi + j]), sw = static_cast<uint32_t>(gwp[W + wi + j]);
        uint32_t g = 0, sg = 0;
#pragma GCC unroll 16
        for (int h = 0; h < 2; ++h) {
          const int v = 2 * j + h;
          bad += __builtin_popcount(nf[v] & m[v]);
          const __mmask16 gate = static_cast<__mmask16>(gw >> (16 * h)),
                          sgn = static_cast<__mmask16>(sw >> (16 * h));
          __m512i s = _mm512_maskz_mov_epi32(
              gate, _mm512_mask_blend_epi32(sgn, _mm512_set1_epi32(1), _mm512_set1_epi32(-1)));
          s = _mm512_add_epi32(s, mv[v]);
          s = _mm512_max_epi32(_mm512_min_epi32(s, _mm512_set1_epi32(1)), _mm512_set1_epi32(-1));
          g |= static_cast<uint32_t>(_mm512_mask_cmpneq_epi32_mask(m[v], s, _mm512_setzero_si512()))
               << (16 * h);
          sg |= static_cast<uint32_t>(_mm512_mask_cmplt_epi32_mask(m[v], s, _mm512_setzero_si512()))
                << (16 * h);
        }
        gwp[wi + j] = static_cast<int32_t>(g);
        gwp[W + wi + j] = static_cast<int32_t>(sg);
      }
    }
  }
  return bad;
}

// v1: four Philox chains per pass of two words; v2: two chains per pass of four words.
GXNOR_TARGET_AVX512 inline int64_t dst_packed_words_avx512(int32_t* w, const float* grad, int64_t K,
                                                           int64_t t0, int64_t t1, const DstParams& p) {
  return p.rng == 1 ? dst_packed_pass_avx512<2, 1>(w, grad, K, t0, t1, p)
                    : dst_packed_pass_avx512<4, 2>(w, grad, K, t0, t1, p);
}
#endif

}  // namespace gxnor::cpu
