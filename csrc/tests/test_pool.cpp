// C++ tests of the 2 x 2 max-pool kernels (cpu/pool.h) on a 3-thread pool, channels-last (the
// vectorised channel rows) and NCHW (the strided path), odd sizes, ties and NaN, against a
// window-by-window definition of torch's rule (row by row, greater or NaN replaces).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../gxnor/cpu/pool.h"
#include "check.h"
#include "threads.h"

using namespace gxnor;

static cpu::Strides4 strides(int64_t c, int64_t h, int64_t w, bool cl) {
  return cl ? cpu::Strides4{h * w * c, 1, w * c, c} : cpu::Strides4{c * h * w, h * w, w, 1};
}

static bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

static void run_case(int64_t n, int64_t c, int64_t h, int64_t w, bool cl, std::mt19937& rng) {
  const int64_t ho = h / 2, wo = w / 2;
  std::uniform_int_distribution<int> v(-2, 2), pick(0, 12);
  std::vector<float> x(n * c * h * w);
  for (auto& e : x) e = pick(rng) == 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(v(rng));
  const cpu::Strides4 xs = strides(c, h, w, cl), ys = strides(c, ho, wo, cl);
  const cpu::Pool2x2 s{n, c, h, w, xs, ys};
  std::vector<float> y(n * c * ho * wo, -7.0f);
  std::vector<uint8_t> arg(y.size(), 9);
  cpu::maxpool2x2(x.data(), y.data(), arg.data(), s);
  auto at = [&](const cpu::Strides4& st, int64_t i, int64_t j, int64_t yy, int64_t xx) {
    return i * st.n + j * st.c + yy * st.h + xx * st.w;
  };
  std::vector<float> g(y.size()), gi(x.size(), -7.0f);
  for (auto& e : g) e = static_cast<float>(v(rng)) + 0.5f;
  cpu::maxpool2x2_backward(g.data(), arg.data(), gi.data(), s, ys, xs);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j) {
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          float m = x[at(xs, i, j, 2 * oy, 2 * ox)];
          int k = 0;
          for (int q = 1; q < 4; ++q) {
            const float e = x[at(xs, i, j, 2 * oy + q / 2, 2 * ox + q % 2)];
            if (e > m || std::isnan(e)) m = e, k = q;
          }
          const int64_t o = at(ys, i, j, oy, ox);
          CHECK(same_bits(y[o], m) && arg[o] == k, "max (%lld,%lld,%lld,%lld) cl=%d", (long long)i,
                (long long)j, (long long)oy, (long long)ox, cl);
        }
      for (int64_t iy = 0; iy < h; ++iy)
        for (int64_t ix = 0; ix < w; ++ix) {
          const int64_t oy = iy / 2, ox = ix / 2;
          float want = 0.0f;
          if (oy < ho && ox < wo && arg[at(ys, i, j, oy, ox)] == 2 * (iy & 1) + (ix & 1))
            want = g[at(ys, i, j, oy, ox)];
          CHECK(same_bits(gi[at(xs, i, j, iy, ix)], want), "grad (%lld,%lld,%lld,%lld) cl=%d", (long long)i,
                (long long)j, (long long)iy, (long long)ix, cl);
        }
    }
}

int main() {
  test::use_threads();
  std::mt19937 rng(7);
  for (bool cl : {true, false}) {
    run_case(2, 5, 8, 8, cl, rng);
    run_case(3, 70, 9, 7, cl, rng);
    run_case(1, 1, 2, 3, cl, rng);
    run_case(4, 33, 12, 10, cl, rng);
  }
  TEST_MAIN_END();
}
