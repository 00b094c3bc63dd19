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
  // Grid limits: row tiles in x (2^31 - 1 blocks), column tiles and groups in y, z (65535): a
  // launch past them is refused (error 9, no wrong result), not truncated.
  CHECK(cuda::tile_grid(int64_t(1) << 20, 3, 2).x == (1u << 20), "row tiles past 65535 must fit in x");
  CHECK(cuda::tile_grid(5, 65536, 1).x == 0 && cuda::tile_grid(5, 1, 65536).x == 0, "y/z past 65535 refused");
  CHECK(cuda::tile_grid(int64_t(1) << 31, 1, 1).x == 0, "x past 2^31 - 1 refused");
  {
    const int64_t M = 3, N = int64_t(65536) * 64 + 1, W = 2;  // N past 65535 column tiles
    std::vector<int32_t> a(M * 2 * W, 0), c(1);
    CHECK(
        gxnor_cuda_xnor_gemm(a.data(), a.data(), M, N, W, nullptr, nullptr, c.data(), nullptr, nullptr) == 9,
        "a gemm past the grid limits must be refused");
  }
  TEST_MAIN_END();
}
