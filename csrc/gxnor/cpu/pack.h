// CPU pack / unpack / canonical check for packed ternary format v1. Torch-free.
// Work is split over "plane words": t = row * W + w covers elements [32w, 32w+32) of a row;
// the caller hands each thread a range [t0, t1). Per word: AVX-512 (two 16-lane compares or
// one 32-lane int8 compare -> mask registers), AVX2 (movemask), or scalar.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../format.h"
#include "isa.h"

namespace gxnor::cpu {

enum class PackMode { kStrict, kThreshold };

template <class T>
inline void pack_word_scalar(const T* x, int n, PackMode mode, float thr, uint32_t& g, uint32_t& s,
                             int64_t& bad) {
  uint32_t gg = 0, ss = 0;
  for (int i = 0; i < n; ++i) {
    const float v = static_cast<float>(x[i]);
    bool nz, neg;
    if (mode == PackMode::kThreshold) {
      neg = v <= -thr;
      nz = neg || v >= thr;
    } else {
      nz = v != 0.0f;
      neg = v < 0.0f;
      bad += !(v == 0.0f || v == 1.0f || v == -1.0f);
    }
    gg |= static_cast<uint32_t>(nz) << i;
    ss |= static_cast<uint32_t>(neg) << i;
  }
  g = gg;
  s = ss;
}

#if GXNOR_X86
GXNOR_TARGET_AVX512 inline void pack_word_avx512(const float* x, int n, PackMode mode, float thr, uint32_t& g,
                                                 uint32_t& s, int64_t& bad) {
  const __mmask16 m0 = n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? 0xffff : n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1) : 0;
  const __m512 a = load_ps16(m0, x);
  const __m512 b = load_ps16(m1, x + 16);
  uint32_t ga, gb, sa, sb;
  if (mode == PackMode::kThreshold) {
    const __m512 p = _mm512_set1_ps(thr), q = _mm512_set1_ps(-thr);
    sa = _mm512_cmp_ps_mask(a, q, _CMP_LE_OQ);
    sb = _mm512_cmp_ps_mask(b, q, _CMP_LE_OQ);
    ga = sa | _mm512_cmp_ps_mask(a, p, _CMP_GE_OQ);
    gb = sb | _mm512_cmp_ps_mask(b, p, _CMP_GE_OQ);
  } else {
    const __m512 z = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    const __m512 aa = _mm512_abs_ps(a), ab = _mm512_abs_ps(b);
    ga = _mm512_cmp_ps_mask(a, z, _CMP_NEQ_UQ);
    gb = _mm512_cmp_ps_mask(b, z, _CMP_NEQ_UQ);
    sa = _mm512_cmp_ps_mask(a, z, _CMP_LT_OQ);
    sb = _mm512_cmp_ps_mask(b, z, _CMP_LT_OQ);
    const uint32_t oka = _mm512_cmp_ps_mask(aa, one, _CMP_EQ_OQ) | (~ga & 0xffffu);
    const uint32_t okb = _mm512_cmp_ps_mask(ab, one, _CMP_EQ_OQ) | (~gb & 0xffffu);
    bad += __builtin_popcount(~(oka | (okb << 16)));
  }
  g = ga | (gb << 16);
  s = sa | (sb << 16);
}

GXNOR_TARGET_AVX512 inline void pack_word_avx512(const int8_t* x, int n, PackMode, float, uint32_t& g,
                                                 uint32_t& s, int64_t& bad) {
  const __mmask32 m = n >= 32 ? 0xffffffffu : static_cast<__mmask32>((1u << n) - 1);
  const __m256i v = load_epi8x32(m, x);
  const __m256i z = _mm256_setzero_si256();
  g = _mm256_cmpneq_epi8_mask(v, z);
  s = _mm256_cmplt_epi8_mask(v, z);
  const uint32_t ok = _mm256_cmpeq_epi8_mask(_mm256_abs_epi8(v), _mm256_set1_epi8(1)) | ~g;
  bad += __builtin_popcount(~ok);
}

GXNOR_TARGET_AVX2 inline void pack_word_avx2(const float* x, int n, PackMode mode, float thr, uint32_t& g,
                                             uint32_t& s, int64_t& bad) {
  if (n < 32) return pack_word_scalar(x, n, mode, thr, g, s, bad);
  uint32_t gg = 0, ss = 0, okk = 0;
  const __m256 z = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), mone = _mm256_set1_ps(-1.0f);
  const __m256 p = _mm256_set1_ps(thr), q = _mm256_set1_ps(-thr);
  for (int j = 0; j < 4; ++j) {
    const __m256 v = _mm256_loadu_ps(x + 8 * j);
    uint32_t gj, sj;
    if (mode == PackMode::kThreshold) {
      sj = _mm256_movemask_ps(_mm256_cmp_ps(v, q, _CMP_LE_OQ));
      gj = sj | _mm256_movemask_ps(_mm256_cmp_ps(v, p, _CMP_GE_OQ));
    } else {
      gj = _mm256_movemask_ps(_mm256_cmp_ps(v, z, _CMP_NEQ_UQ));
      sj = _mm256_movemask_ps(_mm256_cmp_ps(v, z, _CMP_LT_OQ));
      const __m256 ok =
          _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(v, z, _CMP_EQ_OQ), _mm256_cmp_ps(v, one, _CMP_EQ_OQ)),
                       _mm256_cmp_ps(v, mone, _CMP_EQ_OQ));
      okk |= static_cast<uint32_t>(_mm256_movemask_ps(ok)) << (8 * j);
    }
    gg |= gj << (8 * j);
    ss |= sj << (8 * j);
  }
  if (mode != PackMode::kThreshold) bad += __builtin_popcount(~okk);
  g = gg;
  s = ss;
}

GXNOR_TARGET_AVX512 inline void unpack_word_avx512(uint32_t g, uint32_t s, int n, float* o) {
  const __m512 one = _mm512_set1_ps(1.0f), mone = _mm512_set1_ps(-1.0f);
  const __mmask16 m0 = n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? 0xffff : n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1) : 0;
  const __m512 a = _mm512_maskz_mov_ps(static_cast<__mmask16>(g),
                                       _mm512_mask_blend_ps(static_cast<__mmask16>(s), one, mone));
  const __m512 b = _mm512_maskz_mov_ps(static_cast<__mmask16>(g >> 16),
                                       _mm512_mask_blend_ps(static_cast<__mmask16>(s >> 16), one, mone));
  store_ps16(o, m0, a);
  store_ps16(o + 16, m1, b);
}

GXNOR_TARGET_AVX512 inline void unpack_word_avx512(uint32_t g, uint32_t s, int n, int8_t* o) {
  const __mmask32 m = n >= 32 ? 0xffffffffu : static_cast<__mmask32>((1u << n) - 1);
  const __m256i v =
      _mm256_maskz_mov_epi8(g, _mm256_mask_blend_epi8(s, _mm256_set1_epi8(1), _mm256_set1_epi8(-1)));
  store_epi8x32(o, m, v);
}

// AVX2: bit i of (g, s) -> lane i; gate lanes are all-ones where bit i is set (AND with a per-lane
// bit, compare). float: +-1.0f is 0x3f800000 with the sign bit taken from s. int8: 1 | sign mask.
GXNOR_TARGET_AVX2 inline void unpack_word_avx2(uint32_t g, uint32_t s, int n, float* o) {
  const __m256i bits = _mm256_set_epi32(128, 64, 32, 16, 8, 4, 2, 1);
  const __m256i one = _mm256_set1_epi32(0x3f800000), sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  alignas(32) float tail[32];
  float* d = n >= 32 ? o : tail;
  for (int j = 0; j < 4; ++j) {
    const __m256i gb = _mm256_set1_epi32(static_cast<int>((g >> (8 * j)) & 0xff));
    const __m256i sb = _mm256_set1_epi32(static_cast<int>((s >> (8 * j)) & 0xff));
    const __m256i gm = _mm256_cmpeq_epi32(_mm256_and_si256(gb, bits), bits);
    const __m256i sm = _mm256_cmpeq_epi32(_mm256_and_si256(sb, bits), bits);
    const __m256i v = _mm256_and_si256(gm, _mm256_or_si256(one, _mm256_and_si256(sm, sign)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 8 * j), v);
  }
  if (n < 32)
    for (int i = 0; i < n; ++i) o[i] = tail[i];
}

GXNOR_TARGET_AVX2 inline void unpack_word_avx2(uint32_t g, uint32_t s, int n, int8_t* o) {
  // byte i of the spread word holds byte i / 8 of g (or s); the per-byte bit picks bit i % 8
  const __m256i idx = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                       3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bits = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  const __m256i gb = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(g)), idx);
  const __m256i sb = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(s)), idx);
  const __m256i gm = _mm256_cmpeq_epi8(_mm256_and_si256(gb, bits), bits);
  const __m256i sm = _mm256_cmpeq_epi8(_mm256_and_si256(sb, bits), bits);
  const __m256i v = _mm256_and_si256(gm, _mm256_or_si256(_mm256_set1_epi8(1), sm));
  if (n >= 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v);
    return;
  }
  alignas(32) int8_t tail[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(tail), v);
  for (int i = 0; i < n; ++i) o[i] = tail[i];
}
#endif

// The pack kernel: plane words [t0, t1) of rows of length K (row stride K) into out (row stride
// 2W). Returns the number of elements outside {-1, 0, +1} seen (strict mode).
template <class T>
using PackKernel = int64_t (*)(const T* x, int64_t K, int32_t* out, int64_t t0, int64_t t1, PackMode mode,
                               float thr);

// The word loop of a pack kernel around one word packer; compiled inside each ISA's own function
// (pack_words_*), so that the word packer inlines into it instead of being called per word across
// the target boundary.
template <class T, void (*kWord)(const T*, int, PackMode, float, uint32_t&, uint32_t&, int64_t&)>
__attribute__((always_inline)) inline int64_t pack_words_body(const T* x, int64_t K, int32_t* out, int64_t t0,
                                                              int64_t t1, PackMode mode, float thr) {
  const int64_t W = packed_words(K);
  int64_t bad = 0;
  int64_t row = t0 / W, w = t0 % W;
  for (int64_t t = t0; t < t1; ++t, w = (w + 1 == W) ? (++row, 0) : w + 1) {
    const int64_t lo = w * kBitsPerWord;
    const int n = lo >= K ? 0 : static_cast<int>(K - lo < 32 ? K - lo : 32);
    uint32_t g = 0, s = 0;
    if (n > 0) kWord(x + row * K + lo, n, mode, thr, g, s, bad);
    int32_t* o = out + row * 2 * W;
    o[w] = static_cast<int32_t>(g);
    o[W + w] = static_cast<int32_t>(s);
  }
  return bad;
}

template <class T, void (*kWord)(const T*, int, PackMode, float, uint32_t&, uint32_t&, int64_t&)>
int64_t pack_words(const T* x, int64_t K, int32_t* out, int64_t t0, int64_t t1, PackMode mode, float thr) {
  return pack_words_body<T, kWord>(x, K, out, t0, t1, mode, thr);
}

#if GXNOR_X86
template <class T, void (*kWord)(const T*, int, PackMode, float, uint32_t&, uint32_t&, int64_t&)>
GXNOR_TARGET_AVX512 int64_t pack_words_avx512(const T* x, int64_t K, int32_t* out, int64_t t0, int64_t t1,
                                              PackMode mode, float thr) {
  return pack_words_body<T, kWord>(x, K, out, t0, t1, mode, thr);
}

template <class T, void (*kWord)(const T*, int, PackMode, float, uint32_t&, uint32_t&, int64_t&)>
GXNOR_TARGET_AVX2 int64_t pack_words_avx2(const T* x, int64_t K, int32_t* out, int64_t t0, int64_t t1,
                                          PackMode mode, float thr) {
  return pack_words_body<T, kWord>(x, K, out, t0, t1, mode, thr);
}
#endif

// The pack kernel of element type T for an ISA: chosen once per call, not per word.
template <class T>
inline PackKernel<T> select_pack_kernel(Isa isa) {
#if GXNOR_X86
  if constexpr (std::is_same_v<T, float>) {
    if (isa >= Isa::kAvx512) return pack_words_avx512<float, pack_word_avx512>;
    if (isa == Isa::kAvx2) return pack_words_avx2<float, pack_word_avx2>;
  } else if constexpr (std::is_same_v<T, int8_t>) {
    if (isa >= Isa::kAvx512) return pack_words_avx512<int8_t, pack_word_avx512>;
  }
#endif
  (void)isa;
  return pack_words<T, pack_word_scalar<T>>;
}

template <class T>
inline int64_t pack_range(const T* x, int64_t K, int32_t* out, int64_t t0, int64_t t1, PackMode mode,
                          float thr, Isa isa) {
  return select_pack_kernel<T>(isa)(x, K, out, t0, t1, mode, thr);
}

// One plane-word pair (n <= 32 elements) to dense values.
template <class T>
inline void unpack_word_scalar(uint32_t g, uint32_t s, int n, T* o) {
  for (int i = 0; i < n; ++i) o[i] = static_cast<T>(((g >> i) & 1) ? (((s >> i) & 1) ? -1 : 1) : 0);
}

template <class T>
using UnpackWord = void (*)(uint32_t, uint32_t, int, T*);

// The word loops of unpack_range / unpack_tile around one word unpacker, compiled inside each ISA's
// own function (as pack_words_body) so that it inlines.
template <class T, UnpackWord<T> kWord>
__attribute__((always_inline)) inline void unpack_range_body(const int32_t* p, int64_t K, T* out, int64_t t0,
                                                             int64_t t1) {
  const int64_t W = packed_words(K);
  int64_t row = t0 / W, w = t0 % W;
  for (int64_t t = t0; t < t1; ++t, w = (w + 1 == W) ? (++row, 0) : w + 1) {
    const int64_t lo = w * kBitsPerWord;
    if (lo >= K) continue;
    const int n = static_cast<int>(K - lo < 32 ? K - lo : 32);
    kWord(static_cast<uint32_t>(p[row * 2 * W + w]), static_cast<uint32_t>(p[row * 2 * W + W + w]), n,
          out + row * K + lo);
  }
}

template <class T, UnpackWord<T> kWord>
__attribute__((always_inline)) inline void unpack_tile_body(const int32_t* p, int64_t K, int64_t r0,
                                                            int64_t r1, int64_t k0, int64_t k1, T* out,
                                                            int64_t ld) {
  const int64_t W = packed_words(K);
  for (int64_t r = r0; r < r1; ++r) {
    const int32_t* gp = p + r * 2 * W;
    T* o = out + (r - r0) * ld;
    for (int64_t lo = k0; lo < k1; lo += kBitsPerWord, o += kBitsPerWord) {
      const int n = static_cast<int>(k1 - lo < 32 ? k1 - lo : 32);
      kWord(static_cast<uint32_t>(gp[lo / kBitsPerWord]), static_cast<uint32_t>(gp[W + lo / kBitsPerWord]), n,
            o);
    }
  }
}

#if GXNOR_X86
template <class T>
GXNOR_TARGET_AVX512 void unpack_range_avx512(const int32_t* p, int64_t K, T* out, int64_t t0, int64_t t1) {
  unpack_range_body<T, unpack_word_avx512>(p, K, out, t0, t1);
}
template <class T>
GXNOR_TARGET_AVX2 void unpack_range_avx2(const int32_t* p, int64_t K, T* out, int64_t t0, int64_t t1) {
  unpack_range_body<T, unpack_word_avx2>(p, K, out, t0, t1);
}
template <class T>
GXNOR_TARGET_AVX512 void unpack_tile_avx512(const int32_t* p, int64_t K, int64_t r0, int64_t r1, int64_t k0,
                                            int64_t k1, T* out, int64_t ld) {
  unpack_tile_body<T, unpack_word_avx512>(p, K, r0, r1, k0, k1, out, ld);
}
template <class T>
GXNOR_TARGET_AVX2 void unpack_tile_avx2(const int32_t* p, int64_t K, int64_t r0, int64_t r1, int64_t k0,
                                        int64_t k1, T* out, int64_t ld) {
  unpack_tile_body<T, unpack_word_avx2>(p, K, r0, r1, k0, k1, out, ld);
}
#endif

// Whether the vector unpackers cover T (float and int8 outputs).
template <class T>
constexpr bool kVectorUnpack = std::is_same_v<T, float> || std::is_same_v<T, int8_t>;

// Unpack plane words [t0, t1) into rows of length K of int8 or float values.
template <class T>
inline void unpack_range(const int32_t* p, int64_t K, T* out, int64_t t0, int64_t t1, Isa isa) {
#if GXNOR_X86
  if constexpr (kVectorUnpack<T>) {
    if (isa >= Isa::kAvx512) return unpack_range_avx512<T>(p, K, out, t0, t1);
    if (isa == Isa::kAvx2) return unpack_range_avx2<T>(p, K, out, t0, t1);
  }
#endif
  (void)isa;
  unpack_range_body<T, unpack_word_scalar<T>>(p, K, out, t0, t1);
}

// Unpack the tile rows [r0, r1) x elements [k0, k1) (k0 a multiple of 32, k1 <= K) of packed rows
// of length K into out, row stride ld: out[(r - r0) * ld + (k - k0)].
template <class T>
inline void unpack_tile(const int32_t* p, int64_t K, int64_t r0, int64_t r1, int64_t k0, int64_t k1, T* out,
                        int64_t ld, Isa isa) {
#if GXNOR_X86
  if constexpr (kVectorUnpack<T>) {
    if (isa >= Isa::kAvx512) return unpack_tile_avx512<T>(p, K, r0, r1, k0, k1, out, ld);
    if (isa == Isa::kAvx2) return unpack_tile_avx2<T>(p, K, r0, r1, k0, k1, out, ld);
  }
#endif
  (void)isa;
  unpack_tile_body<T, unpack_word_scalar<T>>(p, K, r0, r1, k0, k1, out, ld);
}

// Count non-canonical plane-pair words among [t0, t1).
inline int64_t count_noncanonical_range(const int32_t* p, int64_t K, int64_t t0, int64_t t1) {
  const int64_t W = packed_words(K);
  int64_t bad = 0;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t row = t / W, w = t % W;
    const uint32_t g = static_cast<uint32_t>(p[row * 2 * W + w]);
    const uint32_t s = static_cast<uint32_t>(p[row * 2 * W + W + w]);
    const uint32_t m = valid_mask(w, K);
    bad += ((s & ~g) | (g & ~m) | (s & ~m)) != 0;
  }
  return bad;
}

}  // namespace gxnor::cpu
