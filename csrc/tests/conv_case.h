// Shared harness of the CPU convolution kernel tests: random dense ternary cases, packed as
// xnor_conv2d takes them, a kernel run into int32 or float (scale, bias) output poisoned before the
// call, and the check against a naive convolution of the dense values.
#pragma once
#include <random>
#include <vector>

#include "../gxnor/conv_shape.h"
#include "../gxnor/cpu/gemm.h"
#include "check.h"

namespace gxnor::test {

struct Case {
  int64_t n, c, h, w, o, k, stride, pad, dil, groups;
};

// Strides, padding, dilation, groups (depthwise too), channel counts that are not multiples of
// 8 / 16 / 32 / 64, one-channel input, and a GEMM (1x1 conv of one-pixel images).
inline const Case kCases[] = {
    {1, 6, 10, 9, 4, 3, 1, 1, 1, 1},   {1, 6, 10, 9, 6, 5, 2, 2, 2, 2},   {1, 6, 9, 9, 6, 3, 1, 0, 1, 6},
    {2, 70, 7, 6, 9, 3, 2, 1, 2, 1},   {2, 130, 5, 5, 34, 3, 1, 1, 1, 2}, {3, 64, 9, 9, 40, 1, 1, 0, 1, 1},
    {2, 200, 6, 5, 17, 3, 1, 1, 1, 1}, {5, 32, 8, 8, 64, 5, 1, 2, 1, 1},  {1, 1, 14, 13, 3, 5, 1, 0, 1, 1},
    {70, 2, 1, 1, 100, 1, 1, 0, 1, 1},  // a GEMM: strip and row tails
};

// Pack dense values v[(pixel or row) * cg + ch] of `count` rows into (count, 2, wg) int32.
inline std::vector<int32_t> pack_rows(const std::vector<int>& v, int64_t count, int64_t cg, int64_t wg) {
  std::vector<int32_t> out(count * 2 * wg, 0);
  for (int64_t r = 0; r < count; ++r)
    for (int64_t ch = 0; ch < cg; ++ch) {
      const int x = v[r * cg + ch];
      const auto bit = static_cast<int32_t>(1u << (ch % 32));
      if (x != 0) out[(r * 2) * wg + ch / 32] |= bit;
      if (x < 0) out[(r * 2 + 1) * wg + ch / 32] |= bit;
    }
  return out;
}

// One case's operands: dense x (n, h, w, groups, cg) and w (o, k, k, cg), packed per (pixel,
// group) and (o, tap); per-channel scale and bias for the float epilogue.
struct ConvData {
  ConvShape s;
  int64_t cg, og;
  std::vector<int> xd, wd;
  std::vector<int32_t> xp, wp;
  std::vector<float> scale, bias;
};

inline ConvData make_case(const Case& cs, std::mt19937& rng) {
  std::uniform_int_distribution<int> tern(-1, 1);
  ConvData d;
  d.cg = cs.c / cs.groups, d.og = cs.o / cs.groups;
  const int64_t wg = packed_words(d.cg);
  const int64_t ho = (cs.h + 2 * cs.pad - cs.dil * (cs.k - 1) - 1) / cs.stride + 1;
  const int64_t wo = (cs.w + 2 * cs.pad - cs.dil * (cs.k - 1) - 1) / cs.stride + 1;
  d.s = ConvShape{cs.n,      cs.h,      cs.w,   cs.groups, wg,     cs.o,   cs.k, cs.k,
                  cs.stride, cs.stride, cs.pad, cs.pad,    cs.dil, cs.dil, ho,   wo};
  d.xd.resize(cs.n * cs.h * cs.w * cs.c), d.wd.resize(cs.o * cs.k * cs.k * d.cg);
  for (auto& v : d.xd) v = tern(rng);
  for (auto& v : d.wd) v = tern(rng);
  d.xp = pack_rows(d.xd, cs.n * cs.h * cs.w * cs.groups, d.cg, wg);
  d.wp = pack_rows(d.wd, cs.o * cs.k * cs.k, d.cg, wg);
  d.scale.resize(cs.o), d.bias.resize(cs.o);
  for (int64_t j = 0; j < cs.o; ++j)
    d.scale[j] = 0.25f * static_cast<float>(j % 7 - 3), d.bias[j] = 0.5f * (j % 5);
  return d;
}

// Runs run(d, o) (the kernel under test writing every output row through o) into poisoned int32
// or float output and checks it against the naive convolution of the dense values.
template <class Run>
void run_case(const Case& cs, std::mt19937& rng, bool float_out, Run run) {
  const ConvData d = make_case(cs, rng);
  const int64_t M = d.s.rows(), ho = d.s.ho, wo = d.s.wo;
  std::vector<int32_t> ci(M * cs.o, -7);
  std::vector<float> cf(M * cs.o, -7.f);
  cpu::GemmOut o;
  o.ldc = cs.o;
  if (float_out) {
    o.c_float = cf.data(), o.scale = d.scale.data(), o.bias = d.bias.data();
  } else {
    o.c_int = ci.data();
  }
  run(d, o);

  int bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    const int64_t ox = m % wo, oy = (m / wo) % ho, b = m / (wo * ho);
    for (int64_t j = 0; j < cs.o; ++j) {
      const int64_t gi = j / d.og;
      int64_t acc = 0;
      for (int64_t ky = 0; ky < cs.k; ++ky)
        for (int64_t kx = 0; kx < cs.k; ++kx) {
          const int64_t iy = oy * cs.stride - cs.pad + ky * cs.dil,
                        ix = ox * cs.stride - cs.pad + kx * cs.dil;
          if (iy < 0 || iy >= cs.h || ix < 0 || ix >= cs.w) continue;
          for (int64_t ch = 0; ch < d.cg; ++ch)
            acc += d.xd[((b * cs.h + iy) * cs.w + ix) * cs.c + gi * d.cg + ch] *
                   d.wd[((j * cs.k + ky) * cs.k + kx) * d.cg + ch];
        }
      const bool ok = float_out ? cf[m * cs.o + j] == static_cast<float>(acc) * d.scale[j] + d.bias[j]
                                : ci[m * cs.o + j] == acc;
      if (!ok && bad++ < 3)
        CHECK(false,
              "n=%lld c=%lld o=%lld k=%lld s=%lld p=%lld d=%lld g=%lld float=%d: row %lld ch %lld want %lld",
              (long long)cs.n, (long long)cs.c, (long long)cs.o, (long long)cs.k, (long long)cs.stride,
              (long long)cs.pad, (long long)cs.dil, (long long)cs.groups, int(float_out), (long long)m,
              (long long)j, (long long)acc);
    }
  }
}

}  // namespace gxnor::test
