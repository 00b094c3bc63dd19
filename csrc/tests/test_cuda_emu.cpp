// Runs the CUDA pack/unpack/validate kernel sources through the host emulation header on small
// grids and compares them bit-exactly with the CPU kernels.
#include <random>
#include <vector>

#include "../gxnor/cpu/pack.h"
#include "../gxnor/emu/emu_lib.cpp"
#include "check.h"

using namespace gxnor;

int main() {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> tern(-1, 1);
  for (int64_t K : {1, 31, 32, 63, 64, 65, 300}) {
    const int64_t rows = 5, W = packed_words(K);
    std::vector<float> x(rows * K);
    for (auto& v : x) v = static_cast<float>(tern(rng));
    std::vector<int32_t> want(rows * 2 * W), got(rows * 2 * W, -1);
    cpu::pack_range(x.data(), K, want.data(), 0, rows * W, cpu::PackMode::kStrict, 0.f, cpu::Isa::kScalar);
    unsigned long long bad = 0;
    CHECK(gxnor_cuda_pack_f32(x.data(), rows, K, 0, 0.f, got.data(), &bad, nullptr) == 0, "launch failed");
    CHECK(got == want && bad == 0, "emulated pack mismatch K=%ld", (long)K);
    std::vector<float> back(x.size(), 9.f);
    gxnor_cuda_unpack_f32(got.data(), rows, K, back.data(), nullptr);
    CHECK(back == x, "emulated unpack mismatch K=%ld", (long)K);
    unsigned long long nc = 0;
    gxnor_cuda_count_noncanonical(got.data(), rows, K, &nc, nullptr);
    CHECK(nc == 0, "canonical flagged K=%ld", (long)K);
    got[W] |= 1;
    got[0] &= ~1;
    gxnor_cuda_count_noncanonical(got.data(), rows, K, &nc, nullptr);
    CHECK(nc == 1, "non-canonical missed K=%ld", (long)K);
  }
  TEST_MAIN_END();
}
