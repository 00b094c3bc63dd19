// C++ test of the AVX2 table-lookup convolution kernels (conv_lut.h) against a naive convolution of
// the dense ternary values (conv_case.h): the shared cases plus odd channel counts (half pairs),
// 1-5 channel blocks (both micro-kernel widths, runs split as the driver splits them), two groups
// of 32 channels, and a K whose sums overflow u16 without the int32 widening; int32 and float (scale, bias)
// epilogues. Run with ASan + UBSan by `make ctest-sanitize`.
#include <algorithm>

#include "../gxnor/cpu/conv_lut.h"
#include "conv_case.h"

using namespace gxnor;

int main() {
  if (cpu::detect_isa() < cpu::Isa::kAvx2) {
    std::printf("skipped: no AVX2 here\n");
    return 0;
  }
  namespace L = cpu::lut;
  std::vector<test::Case> cases(std::begin(test::kCases), std::end(test::kCases));
  cases.insert(cases.end(), {
                                {2, 7, 6, 6, 130, 3, 1, 1, 1, 1},     // 5 channel blocks
                                {1, 33, 5, 6, 128, 3, 2, 1, 1, 1},    // 4 channel blocks
                                {3, 2, 4, 4, 64, 5, 1, 2, 1, 2},      // two groups of 32 channels
                                {1, 16000, 3, 3, 35, 3, 1, 1, 1, 1},  // 72000 pair steps: int32 widening
                            });
  std::mt19937 rng(42);
  for (const auto& cs : cases)
    for (bool fl : {false, true})
      test::run_case(cs, rng, fl, [](const test::ConvData& d, const cpu::GemmOut& o) {
        const ConvShape& s = d.s;
        const int64_t P = L::pairs(d.cg), pixels = s.n * s.h * s.w, ncb = L::channel_blocks(s);
        std::vector<uint8_t> wi(L::weight_bytes(s, d.cg), 0xff), zero(P, 0), codes(pixels * s.g * P, 0xff);
        L::encode_weights(d.wp.data(), s, d.cg, 0, s.g * ncb, wi.data());
        L::encode_input(d.xp.data(), s.g, s.wg, d.cg, 0, pixels, codes.data());
        std::vector<const uint8_t*> ptr(L::kStripRows * s.kh * s.kw);
        for (int64_t gi = 0; gi < s.g; ++gi)
          for (int64_t m0 = 0; m0 < s.rows(); m0 += L::kStripRows) {
            const int64_t m1 = std::min(s.rows(), m0 + L::kStripRows);
            L::tap_pointers(codes.data(), s, d.cg, gi, m0, m1, zero.data(), ptr.data());
            // two channel-block runs, as the driver splits them when rows give too few tasks
            const int64_t split = std::min<int64_t>(L::kNC, ncb);
            L::strip(ptr.data(), s, d.cg, gi, m0, m1, 0, split, wi.data(), o, 0);
            L::strip(ptr.data(), s, d.cg, gi, m0, m1, split, ncb, wi.data(), o, 0);
          }
      });
  TEST_MAIN_END();
}
