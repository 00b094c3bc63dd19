// C++ test of the lane-parallel AVX-512 convolution kernels (conv_lanes.h) against a naive
// convolution of the dense ternary values: strides, padding, dilation, groups, channel counts that
// are not multiples of 8 / 16 / 64, row counts that leave micro-kernel and strip tails, int32 and
// float (scale, bias) epilogues. Run with ASan + UBSan by `make ctest-sanitize`.
#include <random>
#include <vector>

#include "../gxnor/cpu/conv_lanes.h"
#include "check.h"

using namespace gxnor;

namespace {

struct Case {
  int64_t n, c, h, w, o, k, stride, pad, dil, groups;
};

// Pack dense values v[(pixel or row) * cg + ch] of `count` rows into (count, 2, wg) int32.
std::vector<int32_t> pack_rows(const std::vector<int>& v, int64_t count, int64_t cg, int64_t wg) {
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

void run_case(const Case& cs, std::mt19937& rng, bool float_out) {
  std::uniform_int_distribution<int> tern(-1, 1);
  const int64_t cg = cs.c / cs.groups, og = cs.o / cs.groups, wg = packed_words(cg);
  const int64_t ho = (cs.h + 2 * cs.pad - cs.dil * (cs.k - 1) - 1) / cs.stride + 1;
  const int64_t wo = (cs.w + 2 * cs.pad - cs.dil * (cs.k - 1) - 1) / cs.stride + 1;
  const ConvShape s{cs.n,      cs.h,      cs.w,   cs.groups, wg,     cs.o,   cs.k, cs.k,
                    cs.stride, cs.stride, cs.pad, cs.pad,    cs.dil, cs.dil, ho,   wo};
  // Dense x (n, h, w, groups, cg) and w (o, k, k, cg); packed per (pixel, group) and (o, tap).
  std::vector<int> xd(cs.n * cs.h * cs.w * cs.c), wd(cs.o * cs.k * cs.k * cg);
  for (auto& v : xd) v = tern(rng);
  for (auto& v : wd) v = tern(rng);
  const auto xp = pack_rows(xd, cs.n * cs.h * cs.w * cs.groups, cg, wg);
  const auto wp = pack_rows(wd, cs.o * cs.k * cs.k, cg, wg);
  std::vector<float> scale(cs.o), bias(cs.o);
  for (int64_t j = 0; j < cs.o; ++j)
    scale[j] = 0.25f * static_cast<float>(j % 7 - 3), bias[j] = 0.5f * (j % 5);

  std::vector<uint64_t> wi(cpu::lanes::weight_elems(s), ~uint64_t(0)), zero(wg, 0);
  cpu::lanes::interleave_weights(wp.data(), s, 0, s.g * cpu::lanes::channel_blocks(s), wi.data());
  const int64_t M = s.rows();
  std::vector<int32_t> ci(M * cs.o, -7);
  std::vector<float> cf(M * cs.o, -7.f);
  cpu::GemmOut o;
  o.ldc = cs.o;
  if (float_out) {
    o.c_float = cf.data(), o.scale = scale.data(), o.bias = bias.data();
  } else {
    o.c_int = ci.data();
  }
  std::vector<const uint64_t*> ptr(cpu::lanes::kStripRows * cs.k * cs.k);
  for (int64_t gi = 0; gi < s.g; ++gi)
    for (int64_t m0 = 0; m0 < M; m0 += cpu::lanes::kStripRows) {
      const int64_t m1 = std::min(M, m0 + cpu::lanes::kStripRows);
      cpu::lanes::tap_pointers(xp.data(), s, gi, m0, m1, zero.data(), ptr.data());
      cpu::lanes::strip(ptr.data(), s, gi, m0, m1, wi.data(), o, 0);
    }

  int bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    const int64_t ox = m % wo, oy = (m / wo) % ho, b = m / (wo * ho);
    for (int64_t j = 0; j < cs.o; ++j) {
      const int64_t gi = j / og;
      int64_t acc = 0;
      for (int64_t ky = 0; ky < cs.k; ++ky)
        for (int64_t kx = 0; kx < cs.k; ++kx) {
          const int64_t iy = oy * cs.stride - cs.pad + ky * cs.dil,
                        ix = ox * cs.stride - cs.pad + kx * cs.dil;
          if (iy < 0 || iy >= cs.h || ix < 0 || ix >= cs.w) continue;
          for (int64_t ch = 0; ch < cg; ++ch)
            acc += xd[((b * cs.h + iy) * cs.w + ix) * cs.c + gi * cg + ch] *
                   wd[((j * cs.k + ky) * cs.k + kx) * cg + ch];
        }
      const bool ok = float_out ? cf[m * cs.o + j] == static_cast<float>(acc) * scale[j] + bias[j]
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

}  // namespace

int main() {
  if (cpu::detect_isa() < cpu::Isa::kAvx512) {
    std::printf("skipped: no AVX-512 VPOPCNTDQ here\n");
    return 0;
  }
  std::mt19937 rng(42);
  const Case cases[] = {
      {1, 6, 10, 9, 4, 3, 1, 1, 1, 1},   {1, 6, 10, 9, 6, 5, 2, 2, 2, 2},   {1, 6, 9, 9, 6, 3, 1, 0, 1, 6},
      {2, 70, 7, 6, 9, 3, 2, 1, 2, 1},   {2, 130, 5, 5, 34, 3, 1, 1, 1, 2}, {3, 64, 9, 9, 40, 1, 1, 0, 1, 1},
      {2, 200, 6, 5, 17, 3, 1, 1, 1, 1}, {5, 32, 8, 8, 64, 5, 1, 2, 1, 1},  {1, 1, 14, 13, 3, 5, 1, 0, 1, 1},
      {70, 2, 1, 1, 100, 1, 1, 0, 1, 1},  // a GEMM (1x1 conv of one-pixel images): strip and row tails
  };
  for (const auto& cs : cases)
    for (bool fl : {false, true}) run_case(cs, rng, fl);
  TEST_MAIN_END();
}
