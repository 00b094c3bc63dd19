// A float convolution followed by a 2 x 2 / stride 2 max-pool in one pass, and its weight gradient
// from the pooled gradient and argmax (torch-free): the conv output (four times the pooled size) is
// never stored. The layer it serves is a network's first conv (real-valued input, few channels,
// the MNIST 1 -> 32 5x5 layer), where that output is the step's largest tensor.
//
// Layouts. x: zero-padded input (N, C, Hp, Wp), NCHW contiguous. wt: the weight as (taps, Op),
// taps = (c, ky, kx) in that order, Op = O rounded up to kConvPoolBlock with zero columns. Outputs
// (N, Ph, Pw, O) contiguous (the (N, O, Ph, Pw) channels-last tensor), argmax as maxpool2x2's
// (2 dy + dx, torch's tie and NaN rules). Weight gradient: (taps, Op).
//
// Arithmetic: each conv output is fma(x, w, acc) over the taps in order from 0, the weight gradient
// per block of kConvPoolRows pooled rows fma(x, g, acc) over the rows' positions in order, the
// blocks then summed in order: every ISA path gives the same bits, for any thread count. Positions
// the pool did not pick contribute nothing to the weight gradient.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "isa.h"
#include "parallel.h"

namespace gxnor::cpu {

constexpr int kConvPoolBlock = 32;     // output channels per pass (accumulators in registers)
constexpr int64_t kConvPoolRows = 32;  // pooled rows per weight-gradient partial sum

struct ConvPool {
  int64_t n, c, hp, wp;  // padded input
  int64_t o, kh, kw;     // weight (O, C, kh, kw)
  int64_t sh, sw, dh, dw;
  int64_t ph, pw;  // pooled output: conv output (2 ph, 2 pw) and any dropped odd row / column
  int64_t taps() const { return c * kh * kw; }
  int64_t op() const { return (o + kConvPoolBlock - 1) / kConvPoolBlock * kConvPoolBlock; }
  int64_t rows() const { return n * ph; }
};

// Offset of tap (c, ky, kx) from a window's top-left input element.
inline std::vector<int64_t> conv_pool_taps(const ConvPool& s) {
  std::vector<int64_t> t;
  t.reserve(s.taps());
  for (int64_t c = 0; c < s.c; ++c)
    for (int64_t ky = 0; ky < s.kh; ++ky)
      for (int64_t kx = 0; kx < s.kw; ++kx) t.push_back(c * s.hp * s.wp + ky * s.dh * s.wp + kx * s.dw);
  return t;
}

namespace cp_scalar {
// One lane: the reference order of every vector path.
struct V {
  static constexpr int L = 1;
  using F = float;
  using I = int32_t;
  using Sel = int32_t;
  static F zero() { return 0.0f; }
  static F load(const float* p) { return *p; }
  static F load_n(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static F bcast(float v) { return v; }
  static F fma(F a, F b, F c) { return std::fma(a, b, c); }
  static void store(float* p, F v) { *p = v; }
  static void store_n(float* p, F v, int n) {
    if (n > 0) *p = v;
  }
  static I izero() { return 0; }
  static void take(F v, int q, F& m, I& k) {
    const bool t = v > m || v != v;
    m = t ? v : m;
    k = t ? q : k;
  }
  static void store_arg(uint8_t* p, I k, int n) {
    if (n > 0) *p = static_cast<uint8_t>(k);
  }
  static Sel selector(const uint8_t* p, int n) { return n > 0 ? *p : 0; }
  static F select(Sel s, F b0, F b1, F b2, F b3) { return s == 0 ? b0 : s == 1 ? b1 : s == 2 ? b2 : b3; }
};
#define GXNOR_CP_TARGET
#include "conv_pool_simd.inc"
#undef GXNOR_CP_TARGET
}  // namespace cp_scalar

#if GXNOR_X86
namespace cp_avx2 {
struct V {
  static constexpr int L = 8;
  using F = __m256;
  using I = __m256i;
  struct Sel {
    __m256 m1, m2, m3;
  };
  GXNOR_TARGET_AVX2 static __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  GXNOR_TARGET_AVX2 static F zero() { return _mm256_setzero_ps(); }
  GXNOR_TARGET_AVX2 static F load(const float* p) { return _mm256_loadu_ps(p); }
  GXNOR_TARGET_AVX2 static F load_n(const float* p, int n) {
    return n >= L ? _mm256_loadu_ps(p) : n <= 0 ? zero() : _mm256_maskload_ps(p, lanes_below(n));
  }
  GXNOR_TARGET_AVX2 static F bcast(float v) { return _mm256_set1_ps(v); }
  GXNOR_TARGET_AVX2 static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  GXNOR_TARGET_AVX2 static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  GXNOR_TARGET_AVX2 static void store_n(float* p, F v, int n) {
    if (n >= L) return _mm256_storeu_ps(p, v);
    if (n > 0) _mm256_maskstore_ps(p, lanes_below(n), v);
  }
  GXNOR_TARGET_AVX2 static I izero() { return _mm256_setzero_si256(); }
  GXNOR_TARGET_AVX2 static void take(F v, int q, F& m, I& k) {
    const __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m = _mm256_blendv_ps(m, v, t);
    k = _mm256_blendv_epi8(k, _mm256_set1_epi32(q), _mm256_castps_si256(t));
  }
  GXNOR_TARGET_AVX2 static void store_arg(uint8_t* p, I k, int n) {
    alignas(32) int32_t t[L];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), k);
    for (int i = 0; i < std::min(n, L); ++i) p[i] = static_cast<uint8_t>(t[i]);
  }
  GXNOR_TARGET_AVX2 static Sel selector(const uint8_t* p, int n) {
    uint8_t b[L] = {};
    std::memcpy(b, p, static_cast<size_t>(std::clamp(n, 0, L)));
    int64_t word;
    std::memcpy(&word, b, sizeof word);
    const __m256i a = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(word));
    return {eq(a, 1), eq(a, 2), eq(a, 3)};
  }
  GXNOR_TARGET_AVX2 static __m256 eq(__m256i a, int q) {
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_set1_epi32(q)));
  }
  GXNOR_TARGET_AVX2 static F select(const Sel& s, F b0, F b1, F b2, F b3) {
    return _mm256_blendv_ps(_mm256_blendv_ps(_mm256_blendv_ps(b0, b1, s.m1), b2, s.m2), b3, s.m3);
  }
};
#define GXNOR_CP_TARGET GXNOR_TARGET_AVX2
#include "conv_pool_simd.inc"
#undef GXNOR_CP_TARGET
}  // namespace cp_avx2

namespace cp_avx512 {
struct V {
  static constexpr int L = 16;
  using F = __m512;
  using I = __m512i;
  struct Sel {
    __mmask16 m1, m2, m3;
  };
  static __mmask16 lanes_below(int n) {
    return n >= L ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
  }
  GXNOR_TARGET_AVX512 static F zero() { return _mm512_setzero_ps(); }
  GXNOR_TARGET_AVX512 static F load(const float* p) { return _mm512_loadu_ps(p); }
  GXNOR_TARGET_AVX512 static F load_n(const float* p, int n) { return load_ps16(lanes_below(n), p); }
  GXNOR_TARGET_AVX512 static F bcast(float v) { return _mm512_set1_ps(v); }
  GXNOR_TARGET_AVX512 static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  GXNOR_TARGET_AVX512 static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  GXNOR_TARGET_AVX512 static void store_n(float* p, F v, int n) { store_ps16(p, lanes_below(n), v); }
  GXNOR_TARGET_AVX512 static I izero() { return _mm512_setzero_si512(); }
  GXNOR_TARGET_AVX512 static void take(F v, int q, F& m, I& k) {
    const __mmask16 t = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    m = _mm512_mask_blend_ps(t, m, v);
    k = _mm512_mask_blend_epi32(t, k, _mm512_set1_epi32(q));
  }
  GXNOR_TARGET_AVX512 static void store_arg(uint8_t* p, I k, int n) {
    store_epi8x16(p, lanes_below(n), _mm512_cvtepi32_epi8(k));
  }
  GXNOR_TARGET_AVX512 static Sel selector(const uint8_t* p, int n) {
    const __m512i a = _mm512_cvtepu8_epi32(load_epi8x16(lanes_below(n), p));
    return {_mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(1)),
            _mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(2)),
            _mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(3))};
  }
  GXNOR_TARGET_AVX512 static F select(const Sel& s, F b0, F b1, F b2, F b3) {
    return _mm512_mask_blend_ps(s.m3, _mm512_mask_blend_ps(s.m2, _mm512_mask_blend_ps(s.m1, b0, b1), b2), b3);
  }
};
#define GXNOR_CP_TARGET GXNOR_TARGET_AVX512
#include "conv_pool_simd.inc"
#undef GXNOR_CP_TARGET
}  // namespace cp_avx512
#endif

// The ISA's row kernels, chosen once per call.
struct ConvPoolKernels {
  void (*forward)(const float*, const float*, const int64_t*, float*, uint8_t*, const ConvPool&, int64_t,
                  int64_t);
  void (*wgrad)(const float*, const float*, const uint8_t*, const int64_t*, float*, const ConvPool&, int64_t,
                int64_t);
};

inline ConvPoolKernels select_conv_pool_kernels(Isa isa) {
#if GXNOR_X86
  if (isa >= Isa::kAvx512) return {cp_avx512::conv_pool_rows, cp_avx512::conv_pool_wgrad_rows};
  if (isa >= Isa::kAvx2) return {cp_avx2::conv_pool_rows, cp_avx2::conv_pool_wgrad_rows};
#endif
  (void)isa;
  return {cp_scalar::conv_pool_rows, cp_scalar::conv_pool_wgrad_rows};
}

// y (N, Ph, Pw, O), arg (N, Ph, Pw, O) from x and wt (see the top of the file).
inline void conv_maxpool2x2(const float* x, const float* wt, float* y, uint8_t* arg, const ConvPool& s) {
  const std::vector<int64_t> toff = conv_pool_taps(s);
  const ConvPoolKernels k = select_conv_pool_kernels(current_isa());
  parallel_for(0, s.rows(), 1,
               [&](int64_t r0, int64_t r1) { k.forward(x, wt, toff.data(), y, arg, s, r0, r1); });
}

// gw (taps, Op) from the pooled gradient g (N, Ph, Pw, O), arg and x.
inline void conv_maxpool2x2_weight_grad(const float* x, const float* g, const uint8_t* arg, float* gw,
                                        const ConvPool& s) {
  const std::vector<int64_t> toff = conv_pool_taps(s);
  const ConvPoolKernels k = select_conv_pool_kernels(current_isa());
  const int64_t size = s.taps() * s.op(), blocks = (s.rows() + kConvPoolRows - 1) / kConvPoolRows;
  std::fill(gw, gw + size, 0.0f);
  if (blocks == 0) return;
  std::vector<float> part(static_cast<size_t>(blocks * size), 0.0f);
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      k.wgrad(x, g, arg, toff.data(), part.data() + b * size, s, b * kConvPoolRows,
              std::min(s.rows(), (b + 1) * kConvPoolRows));
  });
  for (int64_t b = 0; b < blocks; ++b) {
    const float* p = part.data() + b * size;
    for (int64_t i = 0; i < size; ++i) gw[i] += p[i];
  }
}

}  // namespace gxnor::cpu
