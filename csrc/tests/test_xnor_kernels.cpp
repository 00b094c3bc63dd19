// C++ test of the xnor conv / GEMM kernel objects (cpu/xnor_kernel.h), through the same drivers the
// extension runs, on a pool of std::threads: every kernel this CPU can run (popcount on each ISA,
// AVX2 table lookups, AVX-512 lanes, AMX), against a naive convolution of the dense ternary values
// (conv_case.h). Cases: strides, padding, dilation, groups, channel counts that are not multiples of
// 8 / 16 / 32 / 64, odd channel counts (half pairs), 1-5 channel blocks, a K whose table-lookup sums
// overflow u16 without the int32 widening, and GEMMs; int32 and float (scale, bias) epilogues;
// the rows run as two ranges so the row offset of the drivers is exercised. ASan + UBSan: `make
// ctest-sanitize`.
#include <algorithm>
#include <vector>

#include "../gxnor/cpu/xnor_kernel.h"
#include "conv_case.h"
#include "threads.h"

using namespace gxnor;
using cpu::Isa;
using cpu::XnorKernel;

namespace {

struct Choice {
  XnorKernel k;
  Isa isa;
  const char* name;
};

std::vector<Choice> runnable(Isa have) {
  std::vector<Choice> c{{XnorKernel::kPopcount, Isa::kScalar, "popcount/scalar"}};
  if (have >= Isa::kAvx2) c.push_back({XnorKernel::kPopcount, Isa::kAvx2, "popcount/avx2"});
  if (have >= Isa::kAvx2) c.push_back({XnorKernel::kLut, Isa::kAvx2, "lut"});
  if (have >= Isa::kAvx512) c.push_back({XnorKernel::kPopcount, Isa::kAvx512, "popcount/avx512"});
  if (have >= Isa::kAvx512) c.push_back({XnorKernel::kLanes, Isa::kAvx512, "lanes"});
  if (have >= Isa::kAmx) c.push_back({XnorKernel::kAmx, Isa::kAmx, "amx"});
  return c;
}

}  // namespace

int main() {
  test::use_threads();
  std::vector<test::Case> cases(std::begin(test::kCases), std::end(test::kCases));
  cases.insert(cases.end(),
               {
                   {2, 7, 6, 6, 130, 3, 1, 1, 1, 1},     // 5 channel blocks of 32
                   {1, 33, 5, 6, 128, 3, 2, 1, 1, 1},    // 4 channel blocks of 32
                   {3, 2, 4, 4, 64, 5, 1, 2, 1, 2},      // two groups of 32 channels
                   {1, 16000, 3, 3, 35, 3, 1, 1, 1, 1},  // 72000 pair steps: int32 widening
                   {100, 300, 1, 1, 70, 1, 1, 0, 1, 1},  // a GEMM with AMX and micro-kernel tails
               });
  std::mt19937 rng(42);
  for (const Choice& ch : runnable(cpu::detect_isa())) {
    std::printf("%s\n", ch.name);
    for (const auto& cs : cases) {
      const bool gemm = cs.h == 1 && cs.w == 1 && cs.k == 1 && cs.groups == 1;
      for (bool fl : {false, true}) {
        test::run_case(cs, rng, fl, [&](const test::ConvData& d, const cpu::GemmOut& o) {
          const cpu::XnorConv conv(d.xp.data(), d.wp.data(), d.s, d.cg, ch.k, ch.isa);
          const int64_t M = d.s.rows(), split = M / 3;
          conv.run(0, split, o);
          conv.run(split, M, o.at(split, 0));
        });
        if (gemm)
          test::run_case(cs, rng, fl, [&](const test::ConvData& d, const cpu::GemmOut& o) {
            cpu::xnor_gemm_run(ch.k, ch.isa, d.xp.data(), d.wp.data(), d.s.rows(), d.s.o, d.s.wg, d.cg, o);
          });
      }
    }
  }
  TEST_MAIN_END();
}
