// conv2d_weight_grad on the CPU: gw[o][tap][c] = sum_p gy[p][o] * a[p + tap][c] with ternary
// activations a, by float table lookups. Output pixels go in horizontal pairs (ox, ox + 1); at a
// column (tap, c) the pair's two activations form a code v0 * 3 + v1 + 4 in [0, 9), and the pair's
// table T[code] = v0 * gy[p0] + v1 * gy[p1] (64 output channels, 9 x 256 B) turns 2 x 64 MACs into
// 8 vector loads-and-adds. Chunk: kRows output rows x kPR pairs (8 tables, 18 KiB: L1); the codes of
// the whole call are made once: grid [n][row][phase][pos][C] bytes (code * 16), split by the column
// stride so a chunk's pairs sit at fixed offsets. Task: (group, 64-channel block, block of columns,
// slice of chunks) accumulating G[slice][group][tap * cg + c][o]. Torch-free.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../conv_shape.h"
#include "isa.h"
#include "pack.h"

namespace gxnor::cpu::wgrad {

constexpr int kOB = 64;                           // output channels per table (8 ymm)
constexpr int kHalf = 32;                         // channels per table half
constexpr int kCodes = 9;                         // codes of a pixel pair
constexpr int kPR = 4;                            // pairs per output row in a chunk
constexpr int kRows = 2;                          // output rows in a chunk
constexpr int kPairs = kPR * kRows;               // tables per chunk
constexpr int kTableFloats = 2 * kCodes * kHalf;  // one pair's table: [half][code][32]
constexpr int kCodeScale = 16;                    // grid bytes hold code * 16 (table offset / 8 B)

// Where everything of one call lives.
struct Geometry {
  ConvShape s;
  int64_t cg, C;                   // channels per group, all channels
  int64_t ho2, prow;               // output rows rounded up to kRows, pairs per row rounded up to kPR
  int64_t rows, sp;                // grid rows, positions per phase
  int64_t row_stride, img_stride;  // grid bytes
  int64_t nob, opad, cols;         // 64-channel blocks per group, nob * 64, taps * cg

  Geometry(const ConvShape& sh, int64_t cg_) : s(sh), cg(cg_), C(sh.g * cg_) {
    ho2 = (s.ho + kRows - 1) / kRows * kRows;
    prow = ((s.wo + 1) / 2 + kPR - 1) / kPR * kPR;
    rows = (ho2 - 1) * s.sh + (s.kh - 1) * s.dh + 1;
    sp = 2 * prow + (s.kw - 1) * s.dw / s.sw + 1;
    row_stride = s.sw * sp * C;
    img_stride = rows * row_stride;
    nob = (s.og() + kOB - 1) / kOB;
    opad = nob * kOB;
    cols = s.kh * s.kw * cg;
  }
  int64_t grid_bytes() const { return s.n * img_stride; }
  int64_t chunks() const { return s.n * (ho2 / kRows) * (prow / kPR); }
  // Input columns of one grid row's unpacked scratch (int8 values, C each).
  int64_t u_cols() const { return (sp + 1) * s.sw; }
};

// Grid row r of image b: x (n, h, w, g, 2, wg) int32 -> dst [phase][pos][C] bytes,
// dst = (3 * a(col) + a(col + sw) + 4) * 16 with col = pos * sw + phase - pw (0 outside the input).
// u: g.u_cols() * C int8 scratch.
inline void grid_row(const int32_t* x, const Geometry& g, int64_t b, int64_t r, int8_t* u, uint8_t* dst,
                     Isa isa) {
  const ConvShape& s = g.s;
  const int64_t C = g.C, iy = r - s.ph, nu = g.u_cols();
  std::memset(u, 0, static_cast<size_t>(nu * C));
  if (iy >= 0 && iy < s.h) {
    for (int64_t col = 0; col < nu; ++col) {
      const int64_t ix = col - s.pw;
      if (ix < 0 || ix >= s.w) continue;
      const int32_t* px = x + ((b * s.h + iy) * s.w + ix) * s.pixel_stride();
      for (int64_t gi = 0; gi < s.g; ++gi)
        unpack_range(px + gi * 2 * s.wg, g.cg, u + col * C + gi * g.cg, 0, s.wg, isa);
    }
  }
  for (int64_t ph = 0; ph < s.sw; ++ph)
    for (int64_t p = 0; p < g.sp; ++p) {
      const int8_t* a0 = u + (p * s.sw + ph) * C;
      const int8_t* a1 = a0 + s.sw * C;
      uint8_t* d = dst + (ph * g.sp + p) * C;
      for (int64_t c = 0; c < C; ++c) d[c] = static_cast<uint8_t>((3 * a0[c] + a1[c] + 4) * kCodeScale);
    }
}

// The kPairs tables of chunk (b, oy0, pi0) for output channels [o0, o0 + 64) of group gi (lanes
// past the group's channels, past the row or past the output: 0). gy: (n, ho, wo, o) float.
inline void tables(const float* gy, const Geometry& g, int64_t b, int64_t oy0, int64_t pi0, int64_t gi,
                   int64_t ob, float* T) {
  const ConvShape& s = g.s;
  const int64_t og = s.og(), lo = ob * kOB, n = std::min<int64_t>(kOB, og - lo);
  for (int i = 0; i < kPairs; ++i) {
    const int64_t oy = oy0 + i / kPR, ox = 2 * (pi0 + i % kPR);
    alignas(32) float v[2][kOB] = {};
    for (int e = 0; e < 2; ++e)
      if (oy < s.ho && ox + e < s.wo) {
        const float* src = gy + ((b * s.ho + oy) * s.wo + ox + e) * s.o + gi * og + lo;
        std::memcpy(v[e], src, static_cast<size_t>(n) * sizeof(float));
      }
    float* t = T + i * kTableFloats;
    for (int h = 0; h < 2; ++h)
      for (int code = 0; code < kCodes; ++code) {
        const float v0 = static_cast<float>(code / 3 - 1), v1 = static_cast<float>(code % 3 - 1);
        float* d = t + (h * kCodes + code) * kHalf;
        const float* a = v[0] + h * kHalf;
        const float* c = v[1] + h * kHalf;
        for (int l = 0; l < kHalf; ++l) d[l] = v0 * a[l] + v1 * c[l];  // exact: +-a, +-c, +-a+-c or 0
      }
  }
}

// For columns c in [0, nc): G[c * gs + 0..64) += sum over the chunk's pairs of T[pair][code], the
// code of pair (row rr, pair pp) at q[c + rr * rstep + pp * pstep].
template <class F>
inline void accumulate_scalar(const float* T, const uint8_t* q, int64_t rstep, int64_t pstep, int64_t nc,
                              float* G, int64_t gs) {
  for (int64_t c = 0; c < nc; ++c) {
    F acc[kOB] = {};
    for (int i = 0; i < kPairs; ++i) {
      const float* e = T + i * kTableFloats + q[c + (i / kPR) * rstep + (i % kPR) * pstep] * 2;
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < kHalf; ++l) acc[h * kHalf + l] += e[h * kCodes * kHalf + l];
    }
    float* d = G + c * gs;
    for (int l = 0; l < kOB; ++l) d[l] += acc[l];
  }
}

#if GXNOR_X86
GXNOR_TARGET_AVX2 inline void accumulate_avx2(const float* T, const uint8_t* q, int64_t rstep, int64_t pstep,
                                              int64_t nc, float* G, int64_t gs) {
  const uint8_t* q1 = q + rstep;
  const int64_t p2 = 2 * pstep, p3 = 3 * pstep;
  constexpr int kH = kCodes * kHalf;  // floats from a code's half 0 to its half 1
  for (int64_t c = 0; c < nc; ++c) {
    const int64_t k[kPairs] = {q[c] * 2,  q[c + pstep] * 2,  q[c + p2] * 2,  q[c + p3] * 2,
                               q1[c] * 2, q1[c + pstep] * 2, q1[c + p2] * 2, q1[c + p3] * 2};
    __m256 acc[8];
#pragma GCC unroll 8
    for (int m = 0; m < 8; ++m) acc[m] = _mm256_load_ps(T + k[0] + (m / 4) * kH + (m % 4) * 8);
#pragma GCC unroll 8
    for (int i = 1; i < kPairs; ++i) {
      const float* e = T + i * kTableFloats + k[i];
#pragma GCC unroll 8
      for (int m = 0; m < 8; ++m)
        acc[m] = _mm256_add_ps(acc[m], _mm256_load_ps(e + (m / 4) * kH + (m % 4) * 8));
    }
    float* d = G + c * gs;
#pragma GCC unroll 8
    for (int m = 0; m < 8; ++m)
      _mm256_storeu_ps(d + m * 8, _mm256_add_ps(_mm256_loadu_ps(d + m * 8), acc[m]));
  }
}
#endif

// Chunks [k0, k1) of group gi, channel block ob, columns [j0, j1) into G (cols x opad of this
// group and slice). T: kPairs * kTableFloats floats, 32-byte aligned.
inline void run(const uint8_t* grid, const float* gy, const Geometry& g, int64_t gi, int64_t ob, int64_t j0,
                int64_t j1, int64_t k0, int64_t k1, float* G, float* T, Isa isa) {
  const ConvShape& s = g.s;
  const int64_t cpr = g.prow / kPR, cpi = g.ho2 / kRows * cpr;  // chunks per row pair, per image
  const int64_t taps = s.kh * s.kw, rstep = s.sh * g.row_stride, pstep = 2 * g.C;
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t b = k / cpi, oy0 = (k % cpi) / cpr * kRows, pi0 = (k % cpr) * kPR;
    tables(gy, g, b, oy0, pi0, gi, ob, T);
    for (int64_t tap = j0 / g.cg; tap < taps && tap * g.cg < j1; ++tap) {
      const int64_t c0 = std::max<int64_t>(j0 - tap * g.cg, 0), c1 = std::min<int64_t>(j1 - tap * g.cg, g.cg);
      const int64_t ky = tap / s.kw, kx = tap % s.kw, ph = kx * s.dw % s.sw, p0 = 2 * pi0 + kx * s.dw / s.sw;
      const uint8_t* q = grid + b * g.img_stride + (oy0 * s.sh + ky * s.dh) * g.row_stride +
                         (ph * g.sp + p0) * g.C + gi * g.cg + c0;
      float* d = G + (tap * g.cg + c0) * g.opad + ob * kOB;
#if GXNOR_X86
      if (isa >= Isa::kAvx2) {
        accumulate_avx2(T, q, rstep, pstep, c1 - c0, d, g.opad);
        continue;
      }
#endif
      accumulate_scalar<float>(T, q, rstep, pstep, c1 - c0, d, g.opad);
    }
  }
}

}  // namespace gxnor::cpu::wgrad
