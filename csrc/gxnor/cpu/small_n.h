// Float32 x ternary matmul for a short weight (N <= 16 rows: a classifier layer such as the
// 10-way output of the MNIST / CIFAR networks), AVX-512. BLAS kernels are tuned for wide
// operands and pay a fixed cost per call that shows at these sizes (tens of microseconds).
//   NT  out[m, n] = sum_k x[m, k] wf[n, k], wf the weight unpacked to float32 (N x ldw, zero past
//       K): R rows x N columns of accumulators (N a template argument so they stay in
//       registers), reduced across lanes once per row block; float32 FMAs.
//   NN  out[m, k] = sum_n g[m, n] w[n, k] by table lookup over groups of three weight rows (see
//       nn_lut_indices): no multiplications in the inner loop, float32 sums.
// Torch-free.
#pragma once
#include <cstdint>

#include "isa.h"

namespace gxnor::cpu {

inline constexpr int64_t kSmallNMax = 16;

#if GXNOR_X86

namespace small_n {

// Rows per NT block: R * N accumulators + R x vectors + 1 weight vector within 31 registers.
template <int N>
constexpr int nt_rows() {
  return 31 / (N + 1) < 8 ? 31 / (N + 1) : 8;
}

// acc[r][n] += xv[r] * wf[n, k .. k + 16) for one 16-wide k step.
template <int N, int R>
GXNOR_TARGET_AVX512 inline void nt_step(const __m512 (&xv)[R], const float* wfk, int64_t ldw,
                                        __m512 (&acc)[R][N]) {
#pragma GCC unroll 16
  for (int n = 0; n < N; ++n) {
    const __m512 w = _mm512_loadu_ps(wfk + n * ldw);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][n] = _mm512_fmadd_ps(xv[r], w, acc[r][n]);
  }
}

template <int N, int R>
GXNOR_TARGET_AVX512 inline void nt_block(const float* x, int64_t ldx, const float* wf, int64_t ldw, int64_t K,
                                         float* out) {
  __m512 acc[R][N];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int n = 0; n < N; ++n) acc[r][n] = _mm512_setzero_ps();
  const int64_t kfull = K / 16 * 16;
  __m512 xv[R];
  for (int64_t k = 0; k < kfull; k += 16) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) xv[r] = _mm512_loadu_ps(x + r * ldx + k);
    nt_step<N, R>(xv, wf + k, ldw, acc);
  }
  if (kfull < K) {  // the weight is zero-padded to ldw >= roundup(K, 16); x is read masked
    const __mmask16 tail = static_cast<__mmask16>((1u << (K - kfull)) - 1);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) xv[r] = _mm512_maskz_loadu_ps(tail, x + r * ldx + kfull);
    nt_step<N, R>(xv, wf + kfull, ldw, acc);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int n = 0; n < N; ++n) out[r * N + n] = _mm512_reduce_add_ps(acc[r][n]);
}

template <int N>
GXNOR_TARGET_AVX512 inline void nt_rows(const float* x, int64_t ldx, const float* wf, int64_t ldw, int64_t K,
                                        int64_t m0, int64_t m1, float* out) {
  constexpr int R = nt_rows<N>();
  int64_t m = m0;
  for (; m + R <= m1; m += R) nt_block<N, R>(x + m * ldx, ldx, wf, ldw, K, out + m * N);
  for (; m < m1; ++m) nt_block<N, 1>(x + m * ldx, ldx, wf, ldw, K, out + m * N);
}

// NN by table lookup. The weight rows are taken three at a time (groups j = 0 .. G-1, G =
// ceil(N / 3)); column k of group j is one of 27 ternary patterns p = sum_i (w[3j+i, k] + 1) 3^i.
// For output row m, the 27 sums T_j[p] = sum_i (digit_i(p) - 1) g[m, 3j+i] fit two registers, so
// out[m, k] = sum_j T_j[p_j(k)] is G two-register permutes (vpermt2ps) and G - 1 adds per 16
// outputs instead of N FMAs (N = 10: 4 + 3 instead of 10).

// Pattern indices: idx[(c * G + j) * 16 + l] = p_j(16 c + l), straight from the packed rows p
// (N rows of 2 W words, format v1: 32 elements per word, gate and sign planes). A lane past K
// holds some valid index (its output is never stored).
GXNOR_TARGET_AVX512 inline void nn_lut_indices(const int32_t* p, int64_t W, int64_t N, int64_t K,
                                               int32_t* idx) {
  const int64_t G = (N + 2) / 3, chunks = (K + 15) / 16;
  const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t wd = c / 2, sh = 16 * (c % 2);
    for (int64_t j = 0; j < G; ++j) {
      __m512i v = zero;
      for (int64_t i = 2; i >= 0; --i) {  // Horner: ((d2) 3 + d1) 3 + d0, d = weight + 1
        const int64_t n = 3 * j + i;
        __m512i d = one;  // a missing row: weight 0
        if (n < N) {
          const auto g = static_cast<__mmask16>(static_cast<uint32_t>(p[n * 2 * W + wd]) >> sh);
          const auto sg = static_cast<__mmask16>(static_cast<uint32_t>(p[n * 2 * W + W + wd]) >> sh);
          d = _mm512_mask_blend_epi32(g, one, _mm512_mask_blend_epi32(sg, two, zero));
        }
        v = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(v, 1), v), d);  // 3 v + d
      }
      _mm512_storeu_si512(idx + (c * G + j) * 16, v);
    }
  }
}

// Digit i of the pattern in each lane p (lanes 0-15 and 16-31), minus 1, as float; 0 past 26.
GXNOR_TARGET_AVX512 inline void nn_lut_digits(__m512 (&lo)[3], __m512 (&hi)[3]) {
  alignas(64) float d[3][32];
  for (int p = 0; p < 32; ++p)
    for (int i = 0, q = p; i < 3; ++i, q /= 3) d[i][p] = p < 27 ? static_cast<float>(q % 3 - 1) : 0.f;
  for (int i = 0; i < 3; ++i) {
    lo[i] = _mm512_load_ps(d[i]);
    hi[i] = _mm512_load_ps(d[i] + 16);
  }
}

// 16 outputs: sum_j T_j[p_j] for the G index vectors at ic.
template <int G>
GXNOR_TARGET_AVX512 inline __m512 nn_lut_lookup(const int32_t* ic, const __m512 (&tlo)[G],
                                                const __m512 (&thi)[G]) {
  __m512 v = _mm512_permutex2var_ps(tlo[0], _mm512_loadu_si512(ic), thi[0]);
#pragma GCC unroll 6
  for (int j = 1; j < G; ++j)
    v = _mm512_add_ps(v, _mm512_permutex2var_ps(tlo[j], _mm512_loadu_si512(ic + 16 * j), thi[j]));
  return v;
}

template <int G, bool kStream>
GXNOR_TARGET_AVX512 inline void nn_lut_row(const float* g, int64_t N, const int32_t* idx, int64_t K,
                                           const __m512 (&dlo)[3], const __m512 (&dhi)[3], float* out) {
  __m512 tlo[G], thi[G];
#pragma GCC unroll 6
  for (int j = 0; j < G; ++j) {
    tlo[j] = _mm512_setzero_ps();
    thi[j] = _mm512_setzero_ps();
#pragma GCC unroll 3
    for (int i = 0; i < 3; ++i) {
      const int64_t n = 3 * j + i;
      if (n >= N) break;
      const __m512 b = _mm512_set1_ps(g[n]);
      tlo[j] = _mm512_fmadd_ps(dlo[i], b, tlo[j]);
      thi[j] = _mm512_fmadd_ps(dhi[i], b, thi[j]);
    }
  }
  const int64_t full = K / 16;
  for (int64_t c = 0; c < full; ++c) {
    const __m512 v = nn_lut_lookup<G>(idx + c * G * 16, tlo, thi);
    if constexpr (kStream)
      _mm512_stream_ps(out + 16 * c, v);
    else
      _mm512_storeu_ps(out + 16 * c, v);
  }
  if (full * 16 < K)
    _mm512_mask_storeu_ps(out + 16 * full, static_cast<__mmask16>((1u << (K - 16 * full)) - 1),
                          nn_lut_lookup<G>(idx + full * G * 16, tlo, thi));
}

template <int G>
GXNOR_TARGET_AVX512 inline void nn_lut_rows(const float* g, int64_t ldg, int64_t N, const int32_t* idx,
                                            int64_t K, int64_t m0, int64_t m1, float* out, bool stream) {
  __m512 dlo[3], dhi[3];
  nn_lut_digits(dlo, dhi);
  for (int64_t m = m0; m < m1; ++m) {
    if (stream)
      nn_lut_row<G, true>(g + m * ldg, N, idx, K, dlo, dhi, out + m * K);
    else
      nn_lut_row<G, false>(g + m * ldg, N, idx, K, dlo, dhi, out + m * K);
  }
}

}  // namespace small_n

// NT: out (rows [m0, m1) of an M x N row-major float32) = x (M x K, row stride ldx) @ wf^T,
// wf: N (1..16) rows of ldw >= roundup(K, 16) floats, zero past K.
GXNOR_TARGET_AVX512 inline void small_n_nt(const float* x, int64_t ldx, const float* wf, int64_t ldw,
                                           int64_t N, int64_t K, int64_t m0, int64_t m1, float* out) {
  using namespace small_n;
  switch (N) {
#define GXNOR_SMALL_N_CASE(n) \
  case n:                     \
    return nt_rows<n>(x, ldx, wf, ldw, K, m0, m1, out);
    GXNOR_SMALL_N_CASE(1)
    GXNOR_SMALL_N_CASE(2)
    GXNOR_SMALL_N_CASE(3)
    GXNOR_SMALL_N_CASE(4)
    GXNOR_SMALL_N_CASE(5)
    GXNOR_SMALL_N_CASE(6)
    GXNOR_SMALL_N_CASE(7)
    GXNOR_SMALL_N_CASE(8)
    GXNOR_SMALL_N_CASE(9)
    GXNOR_SMALL_N_CASE(10)
    GXNOR_SMALL_N_CASE(11)
    GXNOR_SMALL_N_CASE(12)
    GXNOR_SMALL_N_CASE(13)
    GXNOR_SMALL_N_CASE(14)
    GXNOR_SMALL_N_CASE(15)
    GXNOR_SMALL_N_CASE(16)
#undef GXNOR_SMALL_N_CASE
    default:
      return;  // callers check 1 <= N <= kSmallNMax
  }
}

// NN: out (rows [m0, m1) of an M x K row-major float32) = g (M x N, row stride ldg) @ w, through
// the pattern indices idx of nn_lut_indices (K rounded up to 16, ceil(N / 3) vectors per chunk).
// stream: whole 16-float chunks written with non-temporal stores (an output larger than the L2;
// needs out 64-byte aligned and K % 16 == 0); the caller issues _mm_sfence() before it is read.
GXNOR_TARGET_AVX512 inline void small_n_nn(const float* g, int64_t ldg, const int32_t* idx, int64_t N,
                                           int64_t K, int64_t m0, int64_t m1, float* out, bool stream) {
  using namespace small_n;
  switch ((N + 2) / 3) {
    case 1:
      return nn_lut_rows<1>(g, ldg, N, idx, K, m0, m1, out, stream);
    case 2:
      return nn_lut_rows<2>(g, ldg, N, idx, K, m0, m1, out, stream);
    case 3:
      return nn_lut_rows<3>(g, ldg, N, idx, K, m0, m1, out, stream);
    case 4:
      return nn_lut_rows<4>(g, ldg, N, idx, K, m0, m1, out, stream);
    case 5:
      return nn_lut_rows<5>(g, ldg, N, idx, K, m0, m1, out, stream);
    case 6:
      return nn_lut_rows<6>(g, ldg, N, idx, K, m0, m1, out, stream);
    default:
      return;  // callers check 1 <= N <= kSmallNMax
  }
}

#endif  // GXNOR_X86

}  // namespace gxnor::cpu
