// A ternary layer's integer accumulators, as BatchNorm takes them in training: per-channel sums and
// sums of squares in int64 (exact, so the batch statistics round once) and an int16 copy for the
// backward, in one pass over the float32 input (torch-free). A value that is not an integer in
// [-32768, 32767] (NaN included) is reported by its index; the outputs are then not meaningful.
#pragma once
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "isa.h"
#include "parallel.h"

namespace gxnor::cpu {

// x is n blocks of c channels x s positions: channels-last (position-major: row (n, s) holds the c
// channels) or contiguous (channel-major: plane (n, c) holds the s positions). q has x's layout.
struct StatsShape {
  int64_t n, c, s;
  bool channels_last;
};

inline int64_t line_length(const StatsShape& sh) { return sh.channels_last ? sh.c : sh.s; }

// v -> int16 in q; the return is 1 when v is not an integer in int16's range (NaN included). v is
// clamped first (NaN to the low end), so the float -> int conversion always has a defined result.
inline int32_t to_i16(float v, int16_t& q, int32_t& i) {
  float vs = v > -32768.f ? v : -32768.f;
  vs = vs < 32767.f ? vs : 32767.f;
  i = static_cast<int32_t>(vs);
  q = static_cast<int16_t>(i);
  return static_cast<int32_t>(static_cast<float>(i) != v);
}

// The vector kernels' operations on W values: load (zeros past n), clamp to int16's range (NaN to
// the low end: max / min return their second operand on NaN), truncate, flag the values that did
// not convert exactly, store the int16 copy, and add the values and their squares as int64.
#if GXNOR_X86
struct StatsAvx512 {
  static constexpr int64_t W = 16;
  using Acc = __m512i;  // 8 int64
  GXNOR_TARGET_AVX512 static int32_t step(const float* x, int16_t* q, int64_t n, Acc* s1, Acc* s2) {
    const __mmask16 m = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
    const __m512 v = load_ps16(m, x);
    const __m512 vs = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-32768.f)), _mm512_set1_ps(32767.f));
    const __m512i i = _mm512_cvttps_epi32(vs);
    const __mmask16 bad = _mm512_mask_cmp_ps_mask(m, _mm512_cvtepi32_ps(i), v, _CMP_NEQ_UQ);
    _mm256_mask_storeu_epi16(q, m, _mm512_cvtsepi32_epi16(i));
    const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(i));
    const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(i, 1));
    s1[0] = _mm512_add_epi64(s1[0], lo), s1[1] = _mm512_add_epi64(s1[1], hi);
    s2[0] = _mm512_add_epi64(s2[0], _mm512_mul_epi32(lo, lo));
    s2[1] = _mm512_add_epi64(s2[1], _mm512_mul_epi32(hi, hi));
    return bad != 0;
  }
  GXNOR_TARGET_AVX512 static void zero(Acc* a) { a[0] = a[1] = _mm512_setzero_si512(); }
  GXNOR_TARGET_AVX512 static void load(Acc* a, const int64_t* p, int64_t n) {  // n <= 16 int64
    a[0] = _mm512_maskz_loadu_epi64(n >= 8 ? 0xff : (1u << n) - 1, p);
    a[1] = n > 8 ? _mm512_maskz_loadu_epi64(n >= 16 ? 0xff : (1u << (n - 8)) - 1, p + 8)
                 : _mm512_setzero_si512();
  }
  GXNOR_TARGET_AVX512 static void store(int64_t* p, const Acc* a, int64_t n) {
    _mm512_mask_storeu_epi64(p, n >= 8 ? 0xff : (1u << n) - 1, a[0]);
    if (n > 8) _mm512_mask_storeu_epi64(p + 8, n >= 16 ? 0xff : (1u << (n - 8)) - 1, a[1]);
  }
  GXNOR_TARGET_AVX512 static int64_t total(const Acc* a) {
    return _mm512_reduce_add_epi64(_mm512_add_epi64(a[0], a[1]));
  }
};

struct StatsAvx2 {
  static constexpr int64_t W = 8;
  using Acc = __m256i;  // 4 int64
  GXNOR_TARGET_AVX2 static int32_t step(const float* x, int16_t* q, int64_t n, Acc* s1, Acc* s2) {
    alignas(32) float buf[8] = {};
    alignas(16) int16_t qb[8];
    const bool full = n >= 8;
    if (!full)
      for (int64_t k = 0; k < n; ++k) buf[k] = x[k];
    const __m256 v = full ? _mm256_loadu_ps(x) : _mm256_load_ps(buf);
    const __m256 vs = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-32768.f)), _mm256_set1_ps(32767.f));
    const __m256i i = _mm256_cvttps_epi32(vs);
    const int bad = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_cvtepi32_ps(i), v, _CMP_NEQ_UQ));
    const __m128i q8 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    if (full) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), q8);
    } else {
      _mm_store_si128(reinterpret_cast<__m128i*>(qb), q8);
      for (int64_t k = 0; k < n; ++k) q[k] = qb[k];
    }
    const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(i));
    const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(i, 1));
    s1[0] = _mm256_add_epi64(s1[0], lo), s1[1] = _mm256_add_epi64(s1[1], hi);
    s2[0] = _mm256_add_epi64(s2[0], _mm256_mul_epi32(lo, lo));
    s2[1] = _mm256_add_epi64(s2[1], _mm256_mul_epi32(hi, hi));
    return bad != 0;  // lanes past n hold 0: they convert exactly
  }
  GXNOR_TARGET_AVX2 static void zero(Acc* a) { a[0] = a[1] = _mm256_setzero_si256(); }
  GXNOR_TARGET_AVX2 static void load(Acc* a, const int64_t* p, int64_t n) {
    if (n >= 8) {
      a[0] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      a[1] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4));
      return;
    }
    alignas(32) int64_t b[8] = {};
    for (int64_t k = 0; k < n; ++k) b[k] = p[k];
    a[0] = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    a[1] = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 4));
  }
  GXNOR_TARGET_AVX2 static void store(int64_t* p, const Acc* a, int64_t n) {
    if (n >= 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), a[0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + 4), a[1]);
      return;
    }
    alignas(32) int64_t b[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(b), a[0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(b + 4), a[1]);
    for (int64_t k = 0; k < n; ++k) p[k] = b[k];
  }
  GXNOR_TARGET_AVX2 static int64_t total(const Acc* a) {
    alignas(32) int64_t b[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(b), _mm256_add_epi64(a[0], a[1]));
    return b[0] + b[1] + b[2] + b[3];
  }
};

// Lines [b, e) with the vector traits V: a channels-last row adds W channels at a time into the
// per-channel sums s1, s2; a plane keeps its sums in registers. Returns the first bad line, or -1.
template <class V>
__attribute__((always_inline)) inline int64_t stats_lines_simd(const float* x, int16_t* q, int64_t* s1,
                                                               int64_t* s2, const StatsShape& sh, int64_t b,
                                                               int64_t e) {
  const int64_t c = sh.c, len = line_length(sh);
  typename V::Acc a1[2], a2[2];
  for (int64_t l = b; l < e; ++l) {
    const float* xl = x + l * len;
    int16_t* ql = q + l * len;
    int32_t bad = 0;
    if (sh.channels_last) {
      for (int64_t k = 0; k < c; k += V::W) {
        const int64_t n = std::min<int64_t>(V::W, c - k);
        V::load(a1, s1 + k, n), V::load(a2, s2 + k, n);
        bad |= V::step(xl + k, ql + k, n, a1, a2);
        V::store(s1 + k, a1, n), V::store(s2 + k, a2, n);
      }
    } else {
      V::zero(a1), V::zero(a2);
      for (int64_t k = 0; k < len; k += V::W)
        bad |= V::step(xl + k, ql + k, std::min<int64_t>(V::W, len - k), a1, a2);
      s1[l % c] += V::total(a1);
      s2[l % c] += V::total(a2);
    }
    if (bad) return l;
  }
  return -1;
}
#endif

using StatsKernel = int64_t (*)(const float*, int16_t*, int64_t*, int64_t*, const StatsShape&, int64_t,
                                int64_t);

// The scalar kernel, and the definition the vector kernels follow.
inline int64_t stats_lines_scalar(const float* x, int16_t* q, int64_t* s1, int64_t* s2, const StatsShape& sh,
                                  int64_t b, int64_t e) {
  const int64_t c = sh.c, len = line_length(sh);
  for (int64_t l = b; l < e; ++l) {
    int32_t bad = 0;
    for (int64_t k = 0; k < len; ++k) {
      int32_t i;
      bad |= to_i16(x[l * len + k], q[l * len + k], i);
      const int64_t ch = sh.channels_last ? k : l % c;
      s1[ch] += i;
      s2[ch] += static_cast<int64_t>(i) * i;
    }
    if (bad) return l;
  }
  return -1;
}
#if GXNOR_X86
GXNOR_TARGET_AVX2 inline int64_t stats_lines_avx2(const float* x, int16_t* q, int64_t* s1, int64_t* s2,
                                                  const StatsShape& sh, int64_t b, int64_t e) {
  return stats_lines_simd<StatsAvx2>(x, q, s1, s2, sh, b, e);
}
GXNOR_TARGET_AVX512 inline int64_t stats_lines_avx512(const float* x, int16_t* q, int64_t* s1, int64_t* s2,
                                                      const StatsShape& sh, int64_t b, int64_t e) {
  return stats_lines_simd<StatsAvx512>(x, q, s1, s2, sh, b, e);
}
#endif

inline StatsKernel select_stats_kernel(Isa isa) {
#if GXNOR_X86
  if (isa >= Isa::kAvx512) return stats_lines_avx512;
  if (isa == Isa::kAvx2) return stats_lines_avx2;
#endif
  (void)isa;
  return stats_lines_scalar;
}

// sums: (2, c) int64, zeroed here: row 0 the sums, row 1 the sums of squares. Returns the first
// line holding a bad value (its index; its elements are the `line_length` from there), or -1; the
// other outputs are then incomplete. Integer sums: the same result for any split into chunks, any
// thread count and any ISA.
inline int64_t accumulator_stats(StatsKernel kernel, const float* x, int16_t* q, int64_t* sums,
                                 const StatsShape& sh) {
  const int64_t c = sh.c, len = line_length(sh), lines = sh.channels_last ? sh.n * sh.s : sh.n * sh.c;
  std::fill(sums, sums + 2 * c, int64_t{0});
  std::mutex merge;
  int64_t first_bad = -1;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, len));
  parallel_for(0, lines, grain, [&](int64_t b, int64_t e) {
    std::vector<int64_t> local(2 * c, 0);
    const int64_t bad = kernel(x, q, local.data(), local.data() + c, sh, b, e);
    const std::lock_guard<std::mutex> lock(merge);
    for (int64_t k = 0; k < 2 * c; ++k) sums[k] += local[k];
    if (bad >= 0 && (first_bad < 0 || bad < first_bad)) first_bad = bad;
  });
  return first_bad;
}

}  // namespace gxnor::cpu
