// CPU gated XNOR-popcount GEMM: C[i, j] = sum_k a[i, k] * b[j, k] for packed ternary rows.
// Rows are (gate u64[Wq], sign u64[Wq]) with Wq = W / 2. Work is split into (MB x NB) tiles of
// C handed to threads; inside a tile an NR-row B micro-panel stays in L1 while MR-row strips of
// A stream from L2. Micro-kernel (MR x NR register block): g = ga & gb, x = g & (sa ^ sb)
// (one vpternlogq), acc_g += popcnt(g), acc_x += popcnt(x); C = acc_g - 2 acc_x.
// AVX-512 VPOPCNTDQ: 8 u64 lanes per step, masked tail; AVX2/scalar: u64 words, popcnt.
#pragma once
#include <cstdint>

#include "isa.h"

namespace gxnor::cpu {

constexpr int kMR = 2;  // rows of A per micro-kernel
constexpr int kNR = 4;  // rows of B per micro-kernel

template <int MR, int NR>
inline void xnor_micro_u64(const uint64_t* a, const uint64_t* b, int64_t Wq, int64_t lda, int64_t ldb,
                           int64_t* out) {
  int64_t accg[MR][NR] = {}, accx[MR][NR] = {};
  for (int64_t q = 0; q < Wq; ++q) {
    uint64_t ga[MR], sa[MR];
    for (int r = 0; r < MR; ++r) {
      ga[r] = a[r * lda + q];
      sa[r] = a[r * lda + Wq + q];
    }
    for (int c = 0; c < NR; ++c) {
      const uint64_t gb = b[c * ldb + q], sb = b[c * ldb + Wq + q];
      for (int r = 0; r < MR; ++r) {
        const uint64_t g = ga[r] & gb;
        accg[r][c] += __builtin_popcountll(g);
        accx[r][c] += __builtin_popcountll(g & (sa[r] ^ sb));
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) out[r * NR + c] = accg[r][c] - 2 * accx[r][c];
}

#if GXNOR_X86
template <int MR, int NR>
GXNOR_TARGET_AVX2 inline void xnor_micro_avx2(const uint64_t* a, const uint64_t* b, int64_t Wq, int64_t lda,
                                              int64_t ldb, int64_t* out) {
  xnor_micro_u64<MR, NR>(a, b, Wq, lda, ldb, out);  // same code, hardware popcnt
}

template <int MR, int NR>
GXNOR_TARGET_AVX512 inline void xnor_micro_avx512(const uint64_t* a, const uint64_t* b, int64_t Wq,
                                                  int64_t lda, int64_t ldb, int64_t* out) {
  // acc[p] counts popcnt(g) and acc[MR*NR + p] counts popcnt(g & (sa ^ sb)) for pair p = r*NR + c.
  __m512i acc[2 * MR * NR];
#pragma GCC unroll 32
  for (int p = 0; p < 2 * MR * NR; ++p) acc[p] = _mm512_setzero_si512();
  for (int64_t q = 0; q < Wq; q += 8) {
    const __mmask8 m =
        Wq - q >= 8 ? static_cast<__mmask8>(0xff) : static_cast<__mmask8>((1u << (Wq - q)) - 1);
    __m512i ga[MR], sa[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      ga[r] = load_epi64x8(m, a + r * lda + q);
      sa[r] = load_epi64x8(m, a + r * lda + Wq + q);
    }
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) {
      const __m512i gb = load_epi64x8(m, b + c * ldb + q);
      const __m512i sb = load_epi64x8(m, b + c * ldb + Wq + q);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512i g = _mm512_and_si512(ga[r], gb);
        const __m512i x = _mm512_ternarylogic_epi64(g, sa[r], sb, 0x60);  // g & (sa ^ sb)
        acc[r * NR + c] = _mm512_add_epi64(acc[r * NR + c], _mm512_popcnt_epi64(g));
        acc[MR * NR + r * NR + c] = _mm512_add_epi64(acc[MR * NR + r * NR + c], _mm512_popcnt_epi64(x));
      }
    }
  }
#pragma GCC unroll 32
  for (int p = 0; p < MR * NR; ++p) {
    const __m512i d = _mm512_sub_epi64(acc[p], _mm512_slli_epi64(acc[MR * NR + p], 1));
    out[p] = _mm512_reduce_add_epi64(d);
  }
}
#endif

template <int MR, int NR>
inline void xnor_micro(Isa isa, const uint64_t* a, const uint64_t* b, int64_t Wq, int64_t lda, int64_t ldb,
                       int64_t* out) {
#if GXNOR_X86
  if (isa >= Isa::kAvx512) return xnor_micro_avx512<MR, NR>(a, b, Wq, lda, ldb, out);
  if (isa == Isa::kAvx2) return xnor_micro_avx2<MR, NR>(a, b, Wq, lda, ldb, out);
#endif
  (void)isa;
  xnor_micro_u64<MR, NR>(a, b, Wq, lda, ldb, out);
}

// Dispatch a partial block (mr <= MR, nr <= NR) to the matching template instance.
template <int MR, int NR>
inline void xnor_micro_dyn(int mr, int nr, Isa isa, const uint64_t* a, const uint64_t* b, int64_t Wq,
                           int64_t lda, int64_t ldb, int64_t* out) {
  if constexpr (MR > 1) {
    if (mr < MR) return xnor_micro_dyn<MR - 1, NR>(mr, nr, isa, a, b, Wq, lda, ldb, out);
  }
  if constexpr (NR > 1) {
    if (nr < NR) return xnor_micro_dyn<MR, NR - 1>(mr, nr, isa, a, b, Wq, lda, ldb, out);
  }
  xnor_micro<MR, NR>(isa, a, b, Wq, lda, ldb, out);
}

// Epilogue: integer result, or float with per-column scale and bias.
struct GemmOut {
  int32_t* c_int = nullptr;      // (M, N) int32, or
  float* c_float = nullptr;      // (M, N) float32 = acc * scale[j] + bias[j]
  const float* scale = nullptr;  // (N,) or null (1)
  const float* bias = nullptr;   // (N,) or null (0)
  int64_t ldc = 0;

  // A block of nr x nc int32 results (row stride ldb) at C[i0.., j0..], branches hoisted so the
  // column loops vectorise.
  void store_block(int64_t i0, int64_t j0, int64_t nr, int64_t nc, const int32_t* blk, int64_t ldb) const {
    for (int64_t r = 0; r < nr; ++r) {
      const int32_t* src = blk + r * ldb;
      if (c_int) {
        int32_t* dst = c_int + (i0 + r) * ldc + j0;
        for (int64_t c = 0; c < nc; ++c) dst[c] = src[c];
        continue;
      }
      float* dst = c_float + (i0 + r) * ldc + j0;
      if (scale && bias)
        for (int64_t c = 0; c < nc; ++c) dst[c] = static_cast<float>(src[c]) * scale[j0 + c] + bias[j0 + c];
      else if (scale)
        for (int64_t c = 0; c < nc; ++c) dst[c] = static_cast<float>(src[c]) * scale[j0 + c] + 0.0f;
      else if (bias)
        for (int64_t c = 0; c < nc; ++c) dst[c] = static_cast<float>(src[c]) * 1.0f + bias[j0 + c];
      else
        for (int64_t c = 0; c < nc; ++c) dst[c] = static_cast<float>(src[c]);
    }
  }

  // The same epilogue for the sub-block starting at row i0, column j0.
  GemmOut at(int64_t i0, int64_t j0) const {
    GemmOut o = *this;
    const int64_t off = i0 * ldc + j0;
    if (c_int) o.c_int += off;
    if (c_float) o.c_float += off;
    if (scale) o.scale += j0;
    if (bias) o.bias += j0;
    return o;
  }

  void store(int64_t i, int64_t j, int64_t v) const {
    const int64_t idx = i * ldc + j;
    if (c_int)
      c_int[idx] = static_cast<int32_t>(v);
    else
      c_float[idx] = static_cast<float>(v) * (scale ? scale[j] : 1.0f) + (bias ? bias[j] : 0.0f);
  }
};

// Compute the C tile rows [i0, i1) x cols [j0, j1). a: (M, 2, W) int32 rows, b: (N, 2, W).
inline void xnor_gemm_tile(const int32_t* a, const int32_t* b, int64_t W, int64_t i0, int64_t i1, int64_t j0,
                           int64_t j1, const GemmOut& o, Isa isa) {
  const int64_t Wq = W / 2, ld = 2 * Wq;
  const auto* a64 = reinterpret_cast<const uint64_t*>(a);
  const auto* b64 = reinterpret_cast<const uint64_t*>(b);
  int64_t tile[kMR * kNR];
  for (int64_t j = j0; j < j1; j += kNR) {
    const int nr = static_cast<int>(j1 - j < kNR ? j1 - j : kNR);
    for (int64_t i = i0; i < i1; i += kMR) {
      const int mr = static_cast<int>(i1 - i < kMR ? i1 - i : kMR);
      xnor_micro_dyn<kMR, kNR>(mr, nr, isa, a64 + i * ld, b64 + j * ld, Wq, ld, ld, tile);
      // The instance used is exactly (mr, nr): `tile` holds nr values per row.
      for (int r = 0; r < mr; ++r)
        for (int c = 0; c < nr; ++c) o.store(i + r, j + c, tile[r * nr + c]);
    }
  }
}

}  // namespace gxnor::cpu
