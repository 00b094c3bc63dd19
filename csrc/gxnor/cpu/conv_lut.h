// AVX2 implicit-GEMM xnor_conv2d by 16-entry table lookups (CPUs without AVX-512 VPOPCNTDQ, e.g.
// AMD Zen 2/3, Intel Haswell..Alder Lake): K is taken two channels (one "pair") at a time. A pair
// of ternary values is a 4-bit code (g0 | g1 << 1 | s0 << 2 | s1 << 3). For each input pair the
// 16-byte table T[ca][cw] = a . w + 2 (all weight pairs, biased into [0, 4]), in both halves of a
// ymm, is loaded and `vpshufb` looks up 32 output channels' weight codes at once: one vpshufb + one vpaddb
// per 64 MACs, u8 accumulators widened to u16 every 62 steps, result = sum - 2 * steps. Layout: input codes
// per (pixel, group, pair), two pairs per 16-bit offset into kTable2 (the rows of both pairs), made once
// per call (encode_input); weight codes [group][run of kNC 32-channel blocks][tap][pair][block] [32 lanes]
// u8 (encode_weights); pairs padded to an even count. Micro-kernel: MR output rows x NC 32-channel blocks;
// rows read the input codes in place through a per-strip table of tap pointers (zero-code row for padding
// taps); the hot 5 x 2 step pair is inline asm (step2_5x2). Torch-free.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../conv_shape.h"
#include "gemm.h"
#include "isa.h"
#include "taps.h"

namespace gxnor::cpu::lut {

constexpr int kLanes = 32;  // output channels per ymm (one byte each)
// 5 x 2: 10 accumulators, 4 weight (two steps), 1 table and 1 product register of the 16 ymm; the
// fastest blocking on the CIFAR layers (6 x 2 and 3 x 3 were slower, 4 x 3 spills an accumulator).
// See docs/cpu_lut.md for the two-step codes.
constexpr int kMR = 5;              // output rows per micro-kernel
constexpr int kNC = 2;              // 32-channel blocks per micro-kernel
constexpr int kFlush = 62;          // u8 accumulator steps before widening (62 * 4 <= 255; even)
constexpr int kFlush16 = 264 * 62;  // u16 accumulator steps before widening (16368 * 4 <= 65535)
constexpr int64_t kStripRows = 65;  // output rows per tap-pointer table (13 micro-kernels of kMR rows)

// Value of one ternary element (gate, sign): 0, +1 or -1 (a set sign without a gate counts 0).
constexpr int tern_value(int g, int s) { return g ? (s ? -1 : 1) : 0; }

// The table T[ca][cw] = a . w + 2 over pair codes (g0 | g1 << 1 | s0 << 2 | s1 << 3), each row
// twice (both 128-bit lanes of a ymm, so a row is one plain load); kTable2 holds the rows of two
// consecutive input pairs side by side, T2[ca0 | ca1 << 4] = (T[ca0], T[ca1]), so that one 16-bit
// code load addresses the tables of two steps.
struct PairTable {
  alignas(64) uint8_t t[16][32];
  constexpr PairTable() : t{} {
    for (int a = 0; a < 16; ++a)
      for (int w = 0; w < 16; ++w) {
        const int v = tern_value(a & 1, (a >> 2) & 1) * tern_value(w & 1, (w >> 2) & 1) +
                      tern_value((a >> 1) & 1, (a >> 3) & 1) * tern_value((w >> 1) & 1, (w >> 3) & 1);
        t[a][w] = t[a][w + 16] = static_cast<uint8_t>(v + 2);
      }
  }
};
inline constexpr PairTable kTable{};

struct PairTable2 {
  alignas(64) uint8_t t[256][64];
  constexpr PairTable2() : t{} {
    for (int c = 0; c < 256; ++c)
      for (int l = 0; l < 32; ++l) t[c][l] = kTable.t[c & 15][l], t[c][32 + l] = kTable.t[c >> 4][l];
  }
};
inline constexpr PairTable2 kTable2{};

// Pairs of K per tap for cg channels of a group, rounded up to even (the micro-kernel takes two
// pairs per code load; a padding pair has code 0, whose products are the bias 2 like any zero).
inline int64_t pairs(int64_t cg) { return (cg + 3) / 4 * 2; }

// Byte-spread tables: kSpread[b] puts the four 2-bit fields of byte b into the low bits of four bytes.
struct SpreadTable {
  uint32_t t[256];
  constexpr SpreadTable() : t{} {
    for (unsigned b = 0; b < 256; ++b)
      t[b] = (b & 3) | ((b >> 2) & 3) << 8 | ((b >> 4) & 3) << 16 | ((b >> 6) & 3) << 24;
  }
};
inline constexpr SpreadTable kSpread{};

// The codes of pairs [4 b, 4 b + 4) of a gate word g and sign word s (64 channels), one per byte.
inline uint32_t pair_codes4(uint64_t g, uint64_t s, int b) {
  return kSpread.t[(g >> (8 * b)) & 0xff] | kSpread.t[(s >> (8 * b)) & 0xff] << 2;
}

// Pair order: a full 64-channel word (both planes' 64 bits real channels) puts pair 4 j + k of the
// word in slot 8 k + j, the order its AVX2 encoder makes (qword k of a ymm holds the word shifted by
// 2 k, so byte j holds pair 4 j + k in its low 2 bits); a partial last word keeps pair order. The
// weights use the same order, and the sum over slots is the same.
inline bool full_word(int64_t q, int64_t cg) { return (q + 1) * 64 <= cg; }
inline int64_t slot(int64_t p) { return 8 * (p % 4) + p / 4; }  // slot of pair p of a full word

#if GXNOR_X86
// The 32 codes (code * 4) of one full word in slot order: g, s the gate and sign planes' 64 bits.
GXNOR_TARGET_AVX2 inline void encode_word_avx2(uint64_t g, uint64_t s, uint8_t* dst) {
  const __m256i sh = _mm256_setr_epi64x(0, 2, 4, 6), m = _mm256_set1_epi8(3);
  const __m256i gv = _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x(static_cast<int64_t>(g)), sh), m);
  const __m256i sv = _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x(static_cast<int64_t>(s)), sh), m);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                      _mm256_or_si256(_mm256_slli_epi64(gv, 2), _mm256_slli_epi64(sv, 4)));
}
#endif

// Turns P bytes of codes * 4 (P even) into P / 2 16-bit table offsets in place: the two codes of
// steps 2 k and 2 k + 1 become (c0 | c1 << 4) * 8, the offset of their kTable2 entry in 8-byte units.
GXNOR_TARGET_AVX2 inline void combine_pairs(uint8_t* d, int64_t P) {
  int64_t k = 0;
#if GXNOR_X86
  const __m256i m0 = _mm256_set1_epi16(0x3c), m1 = _mm256_set1_epi16(0x780);
  for (; k + 32 <= P; k += 32) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + k));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + k),
                        _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(x, m0), 1),
                                        _mm256_and_si256(_mm256_srli_epi16(x, 3), m1)));
  }
#endif
  for (; k < P; k += 2) {
    const uint16_t v = static_cast<uint16_t>((d[k] >> 2 | (d[k + 1] >> 2) << 4) * 8);
    std::memcpy(d + k, &v, 2);
  }
}

// Input codes of pixels [p0, p1): x (pixels, g, 2, wg) int32 -> dst (pixels, g, P) bytes, read as
// P / 2 16-bit kTable2 offsets (combine_pairs; P = pairs(cg), even), full words in slot order.
GXNOR_TARGET_AVX2 inline void encode_input(const int32_t* x, int64_t g, int64_t wg, int64_t cg, int64_t p0,
                                           int64_t p1, uint8_t* dst) {
  const int64_t P = pairs(cg), wq = wg / 2, nfull = cg / 64;
  for (int64_t px = p0; px < p1; ++px)
    for (int64_t gi = 0; gi < g; ++gi) {
      const auto* w64 = reinterpret_cast<const uint64_t*>(x + (px * g + gi) * 2 * wg);
      uint8_t* d = dst + (px * g + gi) * P;
      for (int64_t q = 0; q < nfull; ++q) {
#if GXNOR_X86
        encode_word_avx2(w64[q], w64[wq + q], d + 32 * q);
#else
        for (int b = 0; b < 8; ++b) {
          const uint32_t v = pair_codes4(w64[q], w64[wq + q], b) << 2;
          for (int k = 0; k < 4; ++k) d[32 * q + slot(4 * b + k)] = static_cast<uint8_t>(v >> (8 * k));
        }
#endif
      }
      // a partial last word in pair order; its padding channels (and a padding pair) are zero codes
      for (int64_t p = 32 * nfull; p < P; p += 4) {
        const uint32_t v = pair_codes4(w64[p / 32], w64[wq + p / 32], static_cast<int>(p % 32 / 4)) << 2;
        std::memcpy(d + p, &v, static_cast<size_t>(std::min<int64_t>(4, P - p)));
      }
      combine_pairs(d, P);
    }
}

// 32-channel blocks of one group.
inline int64_t channel_blocks(const ConvShape& s) { return (s.og() + kLanes - 1) / kLanes; }

// Bytes of the encoded weights of all groups.
inline int64_t weight_bytes(const ConvShape& s, int64_t cg) {
  return s.g * channel_blocks(s) * s.kh * s.kw * pairs(cg) * kLanes;
}

// w: (o, kh, kw, 2, wg) int32 -> dst pair codes (channels beyond og: 0), [g][run of kNC blocks][tap]
// [pair][nb][32] (nb: the run's blocks, kNC but in a group's last run), so that a micro-kernel's
// weights for one step are contiguous; blocks [b0, b1) of the flattened (group, block) index.
inline void encode_weights(const int32_t* w, const ConvShape& s, int64_t cg, int64_t b0, int64_t b1,
                           uint8_t* dst) {
  const int64_t taps = s.kh * s.kw, wq = s.wg / 2, P = pairs(cg), ncb = channel_blocks(s), og = s.og();
  const auto* w64 = reinterpret_cast<const uint64_t*>(w);
  for (int64_t t = b0; t < b1; ++t) {
    const int64_t gi = t / ncb, cb = t % ncb, c = cb % kNC, nb = std::min<int64_t>(kNC, ncb - cb / kNC * kNC);
    uint8_t* d = dst + (gi * ncb + cb - c) * taps * P * kLanes + c * kLanes;  // the run's base, block c
    for (int64_t tap = 0; tap < taps; ++tap) {
      for (int64_t q = 0; q * 32 < P; ++q) {  // 32 pairs x 32 lanes at a time
        const int64_t np = std::min<int64_t>(32, P - q * 32);
        uint8_t* dq = d + (tap * P + q * 32) * nb * kLanes;  // pair p of lane l: dq[p * nb * kLanes + l]
        const int64_t ps = nb * kLanes;
        for (int64_t l = 0; l < kLanes; ++l) {
          const int64_t oc = cb * kLanes + l;
          if (oc >= og) {
            for (int64_t p = 0; p < np; ++p) dq[p * ps + l] = 0;
            continue;
          }
          const uint64_t* src = w64 + ((gi * og + oc) * taps + tap) * 2 * wq;
          const bool full = full_word(q, cg);
          for (int64_t p = 0; p < np; p += 4) {
            const uint32_t v = pair_codes4(src[q], src[wq + q], static_cast<int>(p / 4));
            for (int64_t k = 0; k < 4 && p + k < np; ++k)
              dq[(full ? slot(p + k) : p + k) * ps + l] = static_cast<uint8_t>(v >> (8 * k));
          }
        }
      }
    }
  }
}

// Tap pointers (taps.h) to the input codes of group gi for output rows [m0, m1); taps in the
// zero padding point at `zero` (at least P zero bytes).
inline void tap_pointers(const uint8_t* codes, const ConvShape& s, int64_t cg, int64_t gi, int64_t m0,
                         int64_t m1, const uint8_t* zero, const uint8_t** dst) {
  const int64_t P = pairs(cg);
  cpu::tap_pointers(codes + gi * P, s.g * P, s, m0, m1, zero, dst);
}

#if GXNOR_X86
// Adds the u8 accumulators (32 channels) to u16 sums d[0, 32) in channel order, or (first) stores
// them there.
GXNOR_TARGET_AVX2 inline void widen_add(__m256i a, uint16_t* d, bool first) {
  const __m256i lo = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(a));
  const __m256i hi = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(a, 1));
  auto* v = reinterpret_cast<__m256i*>(d);
  _mm256_store_si256(v, first ? lo : _mm256_add_epi16(_mm256_load_si256(v), lo));
  _mm256_store_si256(v + 1, first ? hi : _mm256_add_epi16(_mm256_load_si256(v + 1), hi));
}

// Widens the u8 accumulators into the u16 sums (and those into the int32 sums before they could
// overflow); cnt: steps in the u8 accumulators, cnt16: steps in the u16 sums (0: s16 holds nothing
// yet and is written, not added to), has32: whether s32 holds sums. Neither array needs zeroing:
// zeroing both with `= {}` (rep stos) per micro-kernel was 6 % of its samples on 128->256@16.
template <int MR, int NC>
GXNOR_TARGET_AVX2 inline void flush(__m256i (&acc)[MR][NC], uint16_t (&s16)[MR][NC][kLanes],
                                    int32_t (&s32)[MR][NC * kLanes], int& cnt, int& cnt16, bool& has32) {
  const bool first = cnt16 == 0;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) {
      widen_add(acc[r][c], s16[r][c], first);
      acc[r][c] = _mm256_setzero_si256();
    }
  cnt16 += cnt;
  cnt = 0;
  if (cnt16 + kFlush > kFlush16) {
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NC; ++c)
        for (int l = 0; l < kLanes; ++l)
          s32[r][c * kLanes + l] = (has32 ? s32[r][c * kLanes + l] : 0) + s16[r][c][l];
    has32 = true;
    cnt16 = 0;
  }
}

// Steps i and i + 1 of the 5 x 2 micro-kernel: per row one 16-bit code load, two table-row loads,
// four vpshufb and four vpaddb (w: the steps' four 32-lane weight vectors). Written in asm because GCC
// reorders the intrinsics into a schedule that holds all ten table rows live and spills accumulators.
__attribute__((always_inline)) GXNOR_TARGET_AVX2 inline void step2_5x2(__m256i (&a)[5][2],
                                                                       const uint8_t* const (&p)[5],
                                                                       int64_t i, const uint8_t* w,
                                                                       const uint8_t* tbl) {
  // clang-format off
#define GXNOR_LUT_ROW(R)                           \
  "movzwl (%[p" #R "],%[i]), %k[t]\n\t"            \
  "vmovdqa (%[tbl],%[t],8), %%ymm14\n\t"          \
  "vpshufb %%ymm10, %%ymm14, %%ymm15\n\t"         \
  "vpaddb %%ymm15, %[a" #R "0], %[a" #R "0]\n\t"  \
  "vpshufb %%ymm11, %%ymm14, %%ymm14\n\t"         \
  "vpaddb %%ymm14, %[a" #R "1], %[a" #R "1]\n\t"  \
  "vmovdqa 32(%[tbl],%[t],8), %%ymm14\n\t"        \
  "vpshufb %%ymm12, %%ymm14, %%ymm15\n\t"         \
  "vpaddb %%ymm15, %[a" #R "0], %[a" #R "0]\n\t"  \
  "vpshufb %%ymm13, %%ymm14, %%ymm14\n\t"         \
  "vpaddb %%ymm14, %[a" #R "1], %[a" #R "1]\n\t"
  // clang-format on
  int64_t t;
  __asm__(
      "vmovdqu (%[w]), %%ymm10\n\t"
      "vmovdqu 32(%[w]), %%ymm11\n\t"
      "vmovdqu 64(%[w]), %%ymm12\n\t"
      "vmovdqu 96(%[w]), %%ymm13\n\t" GXNOR_LUT_ROW(0) GXNOR_LUT_ROW(1) GXNOR_LUT_ROW(2) GXNOR_LUT_ROW(3)
          GXNOR_LUT_ROW(4)
      : [t] "=&r"(t), [a00] "+x"(a[0][0]), [a01] "+x"(a[0][1]), [a10] "+x"(a[1][0]), [a11] "+x"(a[1][1]),
        [a20] "+x"(a[2][0]), [a21] "+x"(a[2][1]), [a30] "+x"(a[3][0]), [a31] "+x"(a[3][1]),
        [a40] "+x"(a[4][0]), [a41] "+x"(a[4][1])
      : [p0] "r"(p[0]), [p1] "r"(p[1]), [p2] "r"(p[2]), [p3] "r"(p[3]), [p4] "r"(p[4]), [i] "r"(i),
        [w] "r"(w), [tbl] "r"(tbl)
      : "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory");
#undef GXNOR_LUT_ROW
}

// MR output rows (tap pointer rows ptr[r * taps ..]) x the NC 32-channel blocks of one run (encoded
// weights w), into rows [row0, row0 + MR) and channels [j0, j0 + nc) of o.
template <int MR, int NC>
GXNOR_TARGET_AVX2 inline void micro(const uint8_t* const* ptr, int64_t taps, int64_t P, const uint8_t* w,
                                    const GemmOut& o, int64_t row0, int64_t j0, int64_t nc) {
  const auto* tbl = reinterpret_cast<const uint8_t*>(kTable2.t);
  alignas(32) uint16_t s16[MR][NC][kLanes];
  alignas(32) int32_t s32[MR][NC * kLanes];
  bool has32 = false;
  __m256i acc[MR][NC];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm256_setzero_si256();
  int cnt = 0, cnt16 = 0;
  for (int64_t t = 0; t < taps; ++t) {
    const uint8_t* p[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) p[r] = ptr[r * taps + t];
    const uint8_t* wt = w + t * P * NC * kLanes;
    for (int64_t q = 0; q < P;) {
      const int64_t n = std::min<int64_t>(P - q, kFlush - cnt);  // even: P, kFlush and cnt are
      if constexpr (MR == 5 && NC == 2) {
        for (int64_t i = q; i < q + n; i += 2) step2_5x2(acc, p, i, wt + i * NC * kLanes, tbl);
      } else {  // the other shapes (row and block tails): the same two steps from intrinsics
#pragma GCC unroll 2
        for (int64_t i = q; i < q + n; i += 2) {
          __m256i wv[2][NC];
#pragma GCC unroll 8
          for (int h = 0; h < 2; ++h)
            for (int c = 0; c < NC; ++c)
              wv[h][c] =
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt + ((i + h) * NC + c) * kLanes));
#pragma GCC unroll 8
          for (int r = 0; r < MR; ++r) {
            // one row at a time: without the barrier GCC hoists every row's table loads and spills
            // accumulators
            __asm__ volatile("" ::: "memory");
            uint16_t v;
            std::memcpy(&v, p[r] + i, 2);
            const uint8_t* row = tbl + 8 * static_cast<int64_t>(v);
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
              const __m256i tb = _mm256_load_si256(reinterpret_cast<const __m256i*>(row + 32 * h));
#pragma GCC unroll 4
              for (int c = 0; c < NC; ++c)
                acc[r][c] = _mm256_add_epi8(acc[r][c], _mm256_shuffle_epi8(tb, wv[h][c]));
            }
          }
        }
      }
      q += n;
      cnt += static_cast<int>(n);
      if (cnt == kFlush) flush<MR, NC>(acc, s16, s32, cnt, cnt16, has32);
    }
  }
  flush<MR, NC>(acc, s16, s32, cnt, cnt16, has32);
  // Epilogue: sum = s32 (if has32) + s16 - 2 * steps. An int32 output with whole 8-channel groups is written
  // straight from the registers; a float output or a channel tail goes through store_block.
  const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(2 * taps * P));
  const int64_t ncols = std::min<int64_t>(nc, NC * kLanes);
  const bool direct = o.c_int && ncols % 8 == 0;
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c)
      for (int e = 0; e < kLanes / 8; ++e) {
        const int64_t col = c * kLanes + e * 8;
        if (col >= ncols) break;
        int32_t* s = &s32[r][col];
        const __m256i lo =
            _mm256_cvtepu16_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(&s16[r][c][e * 8])));
        const __m256i v = _mm256_sub_epi32(
            has32 ? _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(s)), lo) : lo, bias);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(direct ? o.c_int + (row0 + r) * o.ldc + j0 + col : s),
                            v);
      }
  if (!direct) o.store_block(row0, j0, MR, ncols, &s32[0][0], NC * kLanes);
}

// micro<mr, NC> for mr <= MR rows.
template <int MR, int NC>
GXNOR_TARGET_AVX2 inline void micro_rows(int mr, const uint8_t* const* ptr, int64_t taps, int64_t P,
                                         const uint8_t* w, const GemmOut& o, int64_t row0, int64_t j0,
                                         int64_t nc) {
  if constexpr (MR > 1) {
    if (mr < MR) return micro_rows<MR - 1, NC>(mr, ptr, taps, P, w, o, row0, j0, nc);
  }
  micro<MR, NC>(ptr, taps, P, w, o, row0, j0, nc);
}

// micro_rows<kMR, nb> for nb <= NC channel blocks.
template <int NC>
GXNOR_TARGET_AVX2 inline void micro_cols(int nb, int mr, const uint8_t* const* ptr, int64_t taps, int64_t P,
                                         const uint8_t* w, const GemmOut& o, int64_t row0, int64_t j0,
                                         int64_t nc) {
  if constexpr (NC > 1) {
    if (nb < NC) return micro_cols<NC - 1>(nb, mr, ptr, taps, P, w, o, row0, j0, nc);
  }
  micro_rows<kMR, NC>(mr, ptr, taps, P, w, o, row0, j0, nc);
}

// Output rows [m0, m1) (o's row 0 is row `base`) of group gi, 32-channel blocks [cb0, cb1): for every
// run of up to kNC blocks, every MR-row block of the strip. ptr holds the strip's tap pointers
// ([m - m0][tap]); wc the encoded weights of all groups.
GXNOR_TARGET_AVX2 inline void strip(const uint8_t* const* ptr, const ConvShape& s, int64_t cg, int64_t gi,
                                    int64_t m0, int64_t m1, int64_t cb0, int64_t cb1, const uint8_t* wc,
                                    const GemmOut& o, int64_t base) {
  const int64_t taps = s.kh * s.kw, P = pairs(cg), ncb = channel_blocks(s), og = s.og();
  const int64_t bstride = taps * P * kLanes;  // bytes of one block's weights
  for (int64_t cb = cb0; cb < cb1;) {
    const int64_t nb = std::min<int64_t>(kNC, cb1 - cb);
    const uint8_t* w = wc + (gi * ncb + cb) * bstride;
    const int64_t j = cb * kLanes, nc = std::min<int64_t>(nb * kLanes, og - j);
    for (int64_t m = m0; m < m1; m += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, m1 - m));
      micro_cols<kNC>(static_cast<int>(nb), mr, ptr + (m - m0) * taps, taps, P, w, o, m - base, gi * og + j,
                      nc);
    }
    cb += nb;
  }
}
#endif

}  // namespace gxnor::cpu::lut
