// C++ tests of the conv + 2 x 2 max-pool kernels (cpu/conv_pool.h) on a 3-thread pool, every ISA
// path this CPU has: bit-exact against a position-by-position definition in the same arithmetic
// (fma over the taps in order; the weight gradient's blocks of kConvPoolRows pooled rows summed in
// order), with random floats, ties, NaN, strides, dilation, odd conv sizes and channel tails.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../gxnor/cpu/conv_pool.h"
#include "check.h"
#include "threads.h"

using namespace gxnor;

static bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

struct Case {
  int64_t n, c, h, w, o, kh, kw, sh, sw, dh, dw;
};

static void run_case(const Case& k, cpu::Isa isa, bool ties, std::mt19937& rng) {
  const int64_t ho = (k.h - k.dh * (k.kh - 1) - 1) / k.sh + 1, wo = (k.w - k.dw * (k.kw - 1) - 1) / k.sw + 1;
  const cpu::ConvPool s{k.n, k.c, k.h, k.w, k.o, k.kh, k.kw, k.sh, k.sw, k.dh, k.dw, ho / 2, wo / 2};
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> small(-1, 1), pick(0, 40);
  auto draw = [&] { return ties ? static_cast<float>(small(rng)) : u(rng); };
  std::vector<float> x(k.n * k.c * k.h * k.w), wt(s.taps() * s.op(), 0.0f);
  for (auto& e : x) e = !ties && pick(rng) == 0 ? std::numeric_limits<float>::quiet_NaN() : draw();
  for (int64_t t = 0; t < s.taps(); ++t)
    for (int64_t o = 0; o < k.o; ++o) wt[t * s.op() + o] = draw();
  const int64_t outs = s.rows() * s.pw * k.o;
  std::vector<float> y(outs, -7.0f), g(outs), gw(s.taps() * s.op(), -7.0f);
  std::vector<uint8_t> arg(outs, 9);
  for (auto& e : g) e = u(rng);
  cpu::set_isa(isa);
  cpu::conv_maxpool2x2(x.data(), wt.data(), y.data(), arg.data(), s);
  cpu::conv_maxpool2x2_weight_grad(x.data(), g.data(), arg.data(), gw.data(), s);
  const auto toff = cpu::conv_pool_taps(s);
  auto base = [&](int64_t n, int64_t oy, int64_t ox) {
    return n * k.c * k.h * k.w + oy * k.sh * k.w + ox * k.sw;
  };
  auto conv = [&](int64_t n, int64_t oy, int64_t ox, int64_t o) {
    float a = 0.0f;
    for (int64_t t = 0; t < s.taps(); ++t) a = std::fma(x[base(n, oy, ox) + toff[t]], wt[t * s.op() + o], a);
    return a;
  };
  std::vector<uint8_t> want_arg(outs);
  for (int64_t r = 0; r < s.rows(); ++r)
    for (int64_t px = 0; px < s.pw; ++px)
      for (int64_t o = 0; o < k.o; ++o) {
        const int64_t n = r / s.ph, py = r % s.ph, i = (r * s.pw + px) * k.o + o;
        float m = conv(n, 2 * py, 2 * px, o);
        int q = 0;
        for (int j = 1; j < 4; ++j) {
          const float e = conv(n, 2 * py + j / 2, 2 * px + j % 2, o);
          if (e > m || std::isnan(e)) m = e, q = j;
        }
        want_arg[i] = static_cast<uint8_t>(q);
        CHECK(same_bits(y[i], m) && arg[i] == q, "%s forward row %lld col %lld ch %lld: %g/%d vs %g/%d",
              cpu::isa_name(isa), (long long)r, (long long)px, (long long)o, y[i], arg[i], m, q);
      }
  std::vector<float> total(s.taps() * k.o, 0.0f), part(total.size());
  for (int64_t b0 = 0; b0 < s.rows(); b0 += cpu::kConvPoolRows) {
    std::fill(part.begin(), part.end(), 0.0f);
    for (int64_t r = b0; r < std::min(s.rows(), b0 + cpu::kConvPoolRows); ++r)
      for (int64_t px = 0; px < s.pw; ++px)
        for (int64_t o = 0; o < k.o; ++o) {
          const int64_t n = r / s.ph, py = r % s.ph, i = (r * s.pw + px) * k.o + o, q = want_arg[i];
          const int64_t at = base(n, 2 * py + q / 2, 2 * px + q % 2);
          for (int64_t t = 0; t < s.taps(); ++t)
            part[t * k.o + o] = std::fma(x[at + toff[t]], g[i], part[t * k.o + o]);
        }
    for (size_t i = 0; i < total.size(); ++i) total[i] += part[i];
  }
  for (int64_t t = 0; t < s.taps(); ++t)
    for (int64_t o = 0; o < k.o; ++o)
      CHECK(same_bits(gw[t * s.op() + o], total[t * k.o + o]), "%s weight grad tap %lld ch %lld: %g vs %g",
            cpu::isa_name(isa), (long long)t, (long long)o, gw[t * s.op() + o], total[t * k.o + o]);
}

int main() {
  test::use_threads();
  std::mt19937 rng(11);
  const cpu::Isa have = cpu::detect_isa();
  const Case cases[] = {
      {3, 1, 28, 28, 32, 5, 5, 1, 1, 1, 1},  // the MNIST first layer
      {2, 3, 11, 9, 40, 3, 3, 1, 1, 1, 1},   // channel tail past one block, odd conv size
      {2, 2, 13, 12, 7, 2, 3, 2, 1, 1, 2},   // strides, dilation, fewer channels than a vector
      {70, 1, 6, 6, 5, 3, 3, 1, 1, 1, 1},    // more pooled rows than one gradient block
  };
  for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
    if (isa > have) continue;
    for (const Case& k : cases)
      for (bool ties : {false, true}) run_case(k, isa, ties, rng);
  }
  TEST_MAIN_END();
}
