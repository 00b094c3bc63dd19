// C++ test of the lane-parallel AVX-512 convolution kernels (conv_lanes.h) against a naive
// convolution of the dense ternary values (conv_case.h): strides, padding, dilation, groups,
// channel counts that are not multiples of 8 / 16 / 64, row counts that leave micro-kernel and
// strip tails, int32 and float (scale, bias) epilogues. Run with ASan + UBSan by `make ctest-sanitize`.
#include <algorithm>

#include "../gxnor/cpu/conv_lanes.h"
#include "conv_case.h"

using namespace gxnor;

int main() {
  if (cpu::detect_isa() < cpu::Isa::kAvx512) {
    std::printf("skipped: no AVX-512 VPOPCNTDQ here\n");
    return 0;
  }
  namespace L = cpu::lanes;
  std::mt19937 rng(42);
  for (const auto& cs : test::kCases)
    for (bool fl : {false, true})
      test::run_case(cs, rng, fl, [](const test::ConvData& d, const cpu::GemmOut& o) {
        const ConvShape& s = d.s;
        std::vector<uint64_t> wi(L::weight_elems(s), ~uint64_t(0)), zero(s.wg, 0);
        L::interleave_weights(d.wp.data(), s, 0, s.g * L::channel_blocks(s), wi.data());
        std::vector<const uint64_t*> ptr(L::kStripRows * s.kh * s.kw);
        for (int64_t gi = 0; gi < s.g; ++gi)
          for (int64_t m0 = 0; m0 < s.rows(); m0 += L::kStripRows) {
            const int64_t m1 = std::min(s.rows(), m0 + L::kStripRows);
            L::tap_pointers(d.xp.data(), s, gi, m0, m1, zero.data(), ptr.data());
            L::strip(ptr.data(), s, gi, m0, m1, wi.data(), o, 0);
          }
      });
  TEST_MAIN_END();
}
