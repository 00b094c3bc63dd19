// AVX-512 VPOPCNTDQ implicit-GEMM xnor_conv2d with output channels in the vector lanes (CPUs
// without AMX, e.g. AMD Zen 4/5). Weights are interleaved once per call so that one zmm holds one
// K word of 8 output channels ([group][8-channel block][k word][gate, sign][8 lanes] u64); the
// input is read in place: each output row's K word is broadcast straight from the packed
// channels-last image through a per-strip table of tap pointers (zero row for padding taps), so
// there is no im2col copy. Micro-kernel: MR rows x 16 channels, 4 MR (gate, xor) popcount
// accumulators; per (row, 8 channels): vpandq, vpternlogq, 2 vpopcntq, 2 vpaddq per 512 MACs, no
// horizontal reduction, and the epilogue stores 8 contiguous channels per vector. Torch-free.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../conv_shape.h"
#include "gemm.h"
#include "isa.h"
#include "taps.h"

namespace gxnor::cpu::lanes {

constexpr int kLanes = 8;           // output channels per zmm
constexpr int kNR = 2;              // zmm channel blocks per micro-kernel (16 channels)
constexpr int kMR = 4;              // output rows per micro-kernel
constexpr int64_t kStripRows = 64;  // output rows per tap-pointer table
static_assert(kNR == 2, "micro() is written for two 8-channel blocks (w0, w1)");

// 8-channel blocks of one group, rounded up to a whole micro-kernel (zero channels beyond og).
inline int64_t channel_blocks(const ConvShape& s) {
  return (s.og() + kLanes * kNR - 1) / (kLanes * kNR) * kNR;
}

// u64 elements of the interleaved weights of all groups.
inline int64_t weight_elems(const ConvShape& s) { return s.g * channel_blocks(s) * s.words() * kLanes; }

// w: (o, kh, kw, 2, wg) int32 -> dst [g][cb][kq][2][8] u64, kq = tap * wq + q (the K order of
// weights_to_rows); blocks [cb0, cb1) of the flattened (group, block) index.
inline void interleave_weights(const int32_t* w, const ConvShape& s, int64_t cb0, int64_t cb1,
                               uint64_t* dst) {
  const int64_t taps = s.kh * s.kw, wq = s.wg / 2, Kq = taps * wq, ncb = channel_blocks(s), og = s.og();
  const auto* w64 = reinterpret_cast<const uint64_t*>(w);
  for (int64_t t = cb0; t < cb1; ++t) {
    const int64_t gi = t / ncb, cb = t % ncb;
    uint64_t* d = dst + t * Kq * 2 * kLanes;
    for (int64_t l = 0; l < kLanes; ++l) {
      const int64_t oc = cb * kLanes + l;
      const uint64_t* src = oc < og ? w64 + (gi * og + oc) * taps * 2 * wq : nullptr;
      for (int64_t tap = 0; tap < taps; ++tap)
        for (int64_t p = 0; p < 2; ++p)
          for (int64_t q = 0; q < wq; ++q)
            d[((tap * wq + q) * 2 + p) * kLanes + l] = src ? src[(tap * 2 + p) * wq + q] : 0;
    }
  }
}

// Tap pointers (taps.h) to the gate words of group gi for output rows [m0, m1), as u64 words;
// taps in the zero padding point at `zero` (at least 2 * wq zero words).
inline void tap_pointers(const int32_t* x, const ConvShape& s, int64_t gi, int64_t m0, int64_t m1,
                         const uint64_t* zero, const uint64_t** dst) {
  static_assert(sizeof(uint64_t) == 2 * sizeof(int32_t));
  cpu::tap_pointers(reinterpret_cast<const uint64_t*>(x + gi * 2 * s.wg), s.pixel_stride() / 2, s, m0, m1,
                    zero, dst);
}

#if GXNOR_X86
// Results of one (row, 8-channel) accumulator pair to the output: row `row` of o, columns
// [j, j + n), n <= 8.
GXNOR_TARGET_AVX512 inline void store8(const GemmOut& o, int64_t row, int64_t j, int n, __m512i accg,
                                       __m512i accx) {
  const __m256i v = _mm512_maskz_cvtepi64_epi32(0xff, _mm512_sub_epi64(accg, _mm512_add_epi64(accx, accx)));
  const __mmask8 m = static_cast<__mmask8>((1u << n) - 1);
  if (o.c_int) return store_epi32x8(o.c_int + row * o.ldc + j, m, v);
  __m256 f = _mm256_cvtepi32_ps(v);
  if (o.scale) f = _mm256_mul_ps(f, load_ps8(m, o.scale + j));
  f = _mm256_add_ps(f, o.bias ? load_ps8(m, o.bias + j) : _mm256_setzero_ps());
  store_ps8(o.c_float + row * o.ldc + j, m, f);
}

// MR output rows (tap pointer rows ptr[r * taps ..]) x 16 channels (interleaved blocks w0, w1 =
// w0 + Kq * 16), into rows [row0, row0 + MR) and channels [j0, j0 + nc) of o.
template <int MR>
GXNOR_TARGET_AVX512 inline void micro(const uint64_t* const* ptr, int64_t taps, int64_t wq,
                                      const uint64_t* w0, const GemmOut& o, int64_t row0, int64_t j0,
                                      int64_t nc) {
  const int64_t Kq = taps * wq;
  const uint64_t* w1 = w0 + Kq * 2 * kLanes;
  __m512i ag[MR][kNR], ax[MR][kNR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < kNR; ++c) ag[r][c] = ax[r][c] = _mm512_setzero_si512();
  for (int64_t t = 0; t < taps; ++t) {
    const uint64_t* p[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) p[r] = ptr[r * taps + t];
    const uint64_t* wa = w0 + t * wq * 2 * kLanes;
    const uint64_t* wb = w1 + t * wq * 2 * kLanes;
    for (int64_t q = 0; q < wq; ++q) {
      const __m512i g0 = _mm512_loadu_si512(wa + q * 2 * kLanes),
                    s0 = _mm512_loadu_si512(wa + q * 2 * kLanes + 8);
      const __m512i g1 = _mm512_loadu_si512(wb + q * 2 * kLanes),
                    s1 = _mm512_loadu_si512(wb + q * 2 * kLanes + 8);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512i ga = _mm512_set1_epi64(static_cast<long long>(p[r][q]));
        const __m512i sa = _mm512_set1_epi64(static_cast<long long>(p[r][wq + q]));
        const __m512i h0 = _mm512_and_si512(ga, g0), h1 = _mm512_and_si512(ga, g1);
        const __m512i x0 = _mm512_ternarylogic_epi64(h0, sa, s0, 0x60);  // h & (sa ^ s)
        const __m512i x1 = _mm512_ternarylogic_epi64(h1, sa, s1, 0x60);
        ag[r][0] = _mm512_add_epi64(ag[r][0], _mm512_popcnt_epi64(h0));
        ag[r][1] = _mm512_add_epi64(ag[r][1], _mm512_popcnt_epi64(h1));
        ax[r][0] = _mm512_add_epi64(ax[r][0], _mm512_popcnt_epi64(x0));
        ax[r][1] = _mm512_add_epi64(ax[r][1], _mm512_popcnt_epi64(x1));
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < kNR; ++c) {
      const int64_t n = std::min<int64_t>(kLanes, nc - c * kLanes);
      if (n > 0) store8(o, row0 + r, j0 + c * kLanes, static_cast<int>(n), ag[r][c], ax[r][c]);
    }
}

// micro<mr> for a tail of mr < kMR rows.
template <int MR>
GXNOR_TARGET_AVX512 inline void micro_tail(int mr, const uint64_t* const* ptr, int64_t taps, int64_t wq,
                                           const uint64_t* w0, const GemmOut& o, int64_t row0, int64_t j0,
                                           int64_t nc) {
  if constexpr (MR > 1) {
    if (mr < MR) return micro_tail<MR - 1>(mr, ptr, taps, wq, w0, o, row0, j0, nc);
  }
  micro<MR>(ptr, taps, wq, w0, o, row0, j0, nc);
}

// Output rows [m0, m1) (o's row 0 is row `base`) of group gi: for every 16-channel block, every
// MR-row block of the strip. ptr holds the strip's tap pointers ([m - m0][tap]).
GXNOR_TARGET_AVX512 inline void strip(const uint64_t* const* ptr, const ConvShape& s, int64_t gi, int64_t m0,
                                      int64_t m1, const uint64_t* wi, const GemmOut& o, int64_t base) {
  const int64_t taps = s.kh * s.kw, wq = s.wg / 2, Kq = taps * wq, ncb = channel_blocks(s), og = s.og();
  for (int64_t cb = 0; cb < ncb; cb += kNR) {
    const uint64_t* w0 = wi + (gi * ncb + cb) * Kq * 2 * kLanes;
    const int64_t j = cb * kLanes, nc = std::min<int64_t>(kLanes * kNR, og - j);
    if (nc <= 0) break;
    int64_t m = m0;
    for (; m + kMR <= m1; m += kMR)
      micro<kMR>(ptr + (m - m0) * taps, taps, wq, w0, o, m - base, gi * og + j, nc);
    if (m < m1)
      micro_tail<kMR - 1>(static_cast<int>(m1 - m), ptr + (m - m0) * taps, taps, wq, w0, o, m - base,
                          gi * og + j, nc);
  }
}
#endif

}  // namespace gxnor::cpu::lanes
