// C++ tests of accumulator_stats (cpu/stats.h) on a 3-thread pool, every ISA kernel this CPU runs:
// channels-last rows and channel-major planes, sums and sums of squares against a direct int64 definition,
// the int16 copy, and the first bad line (not an integer, past int16's range, NaN, infinity) reported.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "../gxnor/cpu/stats.h"
#include "check.h"
#include "threads.h"

using namespace gxnor;

static void run_case(cpu::StatsKernel kern, int64_t n, int64_t c, int64_t s, bool cl, int lim,
                     std::mt19937& rng) {
  std::uniform_int_distribution<int> v(-lim, lim);
  std::vector<float> x(n * c * s);
  for (auto& e : x) e = static_cast<float>(v(rng));
  if (!x.empty()) x.front() = -32768.f, x.back() = 32767.f;
  std::vector<int16_t> q(x.size(), 7);
  std::vector<int64_t> sums(2 * c, -1);
  const cpu::StatsShape sh{n, c, s, cl};
  const int64_t bad = cpu::accumulator_stats(kern, x.data(), q.data(), sums.data(), sh);
  CHECK(bad == -1, "bad line %lld on valid input", (long long)bad);
  std::vector<int64_t> want(2 * c, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j)
      for (int64_t k = 0; k < s; ++k) {
        const int64_t at = cl ? (i * s + k) * c + j : (i * c + j) * s + k;
        const auto e = static_cast<int64_t>(x[at]);
        want[j] += e, want[c + j] += e * e;
        CHECK(q[at] == e, "q at %lld: %d vs %lld", (long long)at, q[at], (long long)e);
      }
  for (int64_t j = 0; j < 2 * c; ++j) CHECK(sums[j] == want[j], "sum %lld cl=%d", (long long)j, cl);
  const float bads[] = {0.5f,
                        -32769.f,
                        32768.f,
                        std::numeric_limits<float>::quiet_NaN(),
                        std::numeric_limits<float>::infinity(),
                        -1e30f};
  if (x.empty()) return;
  for (float b : bads) {
    std::vector<float> y = x;
    const int64_t first = static_cast<int64_t>(y.size() / 3), second = static_cast<int64_t>(y.size() - 1);
    y[first] = b, y[second] = b;
    const int64_t got = cpu::accumulator_stats(kern, y.data(), q.data(), sums.data(), sh);
    CHECK(got == first / cpu::line_length(sh), "first bad line %lld, want %lld (value %g)", (long long)got,
          (long long)(first / cpu::line_length(sh)), b);
  }
}

int main() {
  test::use_threads();
  std::mt19937 rng(11);
  for (int isa = 0; isa <= static_cast<int>(cpu::detect_isa()) && isa <= 2; ++isa) {
    const cpu::StatsKernel kern = cpu::select_stats_kernel(static_cast<cpu::Isa>(isa));
    for (bool cl : {true, false}) {
      run_case(kern, 3, 40, 35, cl, 32767, rng);
      run_case(kern, 64, 7, 1, cl, 500, rng);
      run_case(kern, 2, 130, 64, cl, 4, rng);
      run_case(kern, 0, 5, 4, cl, 4, rng);
    }
  }
  TEST_MAIN_END();
}
