// CPU pack of NCHW activations straight into channels-last packed rows (pack_conv_input on an NCHW
// tensor): for a block of 16 pixels of one image, each of the 32 channels of a plane word is one
// 16-float load from its channel plane, compared into lane masks and OR-ed as bit c of the 16
// pixels' words (masked vpord), so the NCHW -> NHWC transpose never materialises. Output rows are
// (image, pixel, group): 2 * Wg int32 each (gate words, sign words). AVX-512: 16-pixel blocks and
// scatter stores; AVX2: 8-pixel blocks (compare masks AND-ed with the channel bit, OR-ed into the
// words), stored per pixel. Torch-free.
#pragma once
#include <cstdint>

#include "../format.h"
#include "isa.h"
#include "pack.h"

namespace gxnor::cpu {

constexpr int64_t kNchwPixels = 16;     // pixels per vector (AVX-512)
constexpr int64_t kNchwPixelsAvx2 = 8;  // pixels per vector (AVX2)

#if GXNOR_X86
// Pixel blocks [t0, t1) of the flattened (image, 16-pixel block) index: x (N, G * cg, HW) float32
// with image stride ldn, out (N, HW, G, 2, Wg). Returns the elements outside {-1, 0, +1} (strict mode).
GXNOR_TARGET_AVX512 inline int64_t pack_nchw_range(const float* x, int64_t ldn, int64_t HW, int64_t G,
                                                   int64_t cg, int32_t* out, int64_t t0, int64_t t1,
                                                   PackMode mode, float thr) {
  const int64_t Wg = packed_words(cg), blocks = (HW + kNchwPixels - 1) / kNchwPixels;
  const __m512 p = _mm512_set1_ps(thr), q = _mm512_set1_ps(-thr), z = _mm512_setzero_ps(),
               one = _mm512_set1_ps(1.0f);
  // Lane l's output row starts 2 * G * Wg int32 after lane l - 1's.
  const __m512i lane =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(static_cast<int>(2 * G * Wg)));
  int64_t bad = 0;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t n = t / blocks, p0 = (t % blocks) * kNchwPixels;
    const int np = static_cast<int>(HW - p0 < kNchwPixels ? HW - p0 : kNchwPixels);
    const __mmask16 pm = static_cast<__mmask16>((1u << np) - 1);
    const float* img = x + n * ldn + p0;
    int32_t* orow = out + (n * HW + p0) * 2 * G * Wg;
    for (int64_t gi = 0; gi < G; ++gi)
      for (int64_t w = 0; w < Wg; ++w) {
        __m512i g = _mm512_setzero_si512(), s = _mm512_setzero_si512();
        const int64_t c0 = w * kBitsPerWord, nc = cg - c0 < 32 ? cg - c0 : 32;
        for (int64_t i = 0; i < nc; ++i) {
          const __m512 v = load_ps16(pm, img + (gi * cg + c0 + i) * HW);
          const __m512i bit = _mm512_set1_epi32(static_cast<int>(1u << i));
          __mmask16 nz, neg;
          if (mode == PackMode::kThreshold) {
            neg = _mm512_cmp_ps_mask(v, q, _CMP_LE_OQ);
            nz = neg | _mm512_cmp_ps_mask(v, p, _CMP_GE_OQ);
          } else {
            nz = _mm512_cmp_ps_mask(v, z, _CMP_NEQ_UQ);
            neg = _mm512_cmp_ps_mask(v, z, _CMP_LT_OQ);
            const __mmask16 ok = _mm512_cmp_ps_mask(_mm512_abs_ps(v), one, _CMP_EQ_OQ) | ~nz;
            bad += __builtin_popcount(static_cast<unsigned>(~ok & pm) & 0xffffu);
          }
          g = _mm512_mask_or_epi32(g, nz, g, bit);
          s = _mm512_mask_or_epi32(s, neg, s, bit);
        }
        int32_t* o = orow + gi * 2 * Wg + w;
        _mm512_mask_i32scatter_epi32(o, pm, lane, g, 4);
        _mm512_mask_i32scatter_epi32(o + Wg, pm, lane, s, 4);
      }
  }
  return bad;
}

// pack_nchw_range on AVX2: the same contract with blocks of kNchwPixelsAvx2 pixels.
GXNOR_TARGET_AVX2 inline int64_t pack_nchw_range_avx2(const float* x, int64_t ldn, int64_t HW, int64_t G,
                                                      int64_t cg, int32_t* out, int64_t t0, int64_t t1,
                                                      PackMode mode, float thr) {
  const int64_t Wg = packed_words(cg), blocks = (HW + kNchwPixelsAvx2 - 1) / kNchwPixelsAvx2;
  const __m256 p = _mm256_set1_ps(thr), q = _mm256_set1_ps(-thr), z = _mm256_setzero_ps(),
               one = _mm256_set1_ps(1.0f), absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  const int64_t row = 2 * G * Wg;  // int32 between consecutive pixels' output rows
  int64_t bad = 0;
  alignas(32) int32_t gw[kNchwPixelsAvx2], sw[kNchwPixelsAvx2];
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t n = t / blocks, p0 = (t % blocks) * kNchwPixelsAvx2;
    const int np = static_cast<int>(HW - p0 < kNchwPixelsAvx2 ? HW - p0 : kNchwPixelsAvx2);
    const __m256i pm = _mm256_cmpgt_epi32(_mm256_set1_epi32(np), lanes);  // lanes < np
    const unsigned pbits = (1u << np) - 1;
    const float* img = x + n * ldn + p0;
    int32_t* orow = out + (n * HW + p0) * row;
    for (int64_t gi = 0; gi < G; ++gi)
      for (int64_t w = 0; w < Wg; ++w) {
        __m256i g = _mm256_setzero_si256(), s = _mm256_setzero_si256();
        const int64_t c0 = w * kBitsPerWord, nc = cg - c0 < 32 ? cg - c0 : 32;
        for (int64_t i = 0; i < nc; ++i) {
          const float* src = img + (gi * cg + c0 + i) * HW;
          const __m256 v = np == kNchwPixelsAvx2 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, pm);
          const __m256i bit = _mm256_set1_epi32(static_cast<int>(1u << i));
          __m256 nz, neg;
          if (mode == PackMode::kThreshold) {
            neg = _mm256_cmp_ps(v, q, _CMP_LE_OQ);
            nz = _mm256_or_ps(neg, _mm256_cmp_ps(v, p, _CMP_GE_OQ));
          } else {
            nz = _mm256_cmp_ps(v, z, _CMP_NEQ_UQ);
            neg = _mm256_cmp_ps(v, z, _CMP_LT_OQ);
            const __m256 ok = _mm256_or_ps(_mm256_cmp_ps(_mm256_and_ps(v, absmask), one, _CMP_EQ_OQ),
                                           _mm256_cmp_ps(v, z, _CMP_EQ_OQ));
            bad += __builtin_popcount(~static_cast<unsigned>(_mm256_movemask_ps(ok)) & pbits);
          }
          g = _mm256_or_si256(g, _mm256_and_si256(_mm256_castps_si256(nz), bit));
          s = _mm256_or_si256(s, _mm256_and_si256(_mm256_castps_si256(neg), bit));
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(gw), g);
        _mm256_store_si256(reinterpret_cast<__m256i*>(sw), s);
        int32_t* o = orow + gi * 2 * Wg + w;
        for (int l = 0; l < np; ++l) o[l * row] = gw[l], o[l * row + Wg] = sw[l];
      }
  }
  return bad;
}
#endif

}  // namespace gxnor::cpu
