// C++ tests of the CPU pack/unpack/canonical-check kernels on every ISA path available here,
// against a bit-by-bit scalar definition of format v1.
#include <random>
#include <vector>

#include "../gxnor/cpu/pack.h"
#include "check.h"

using namespace gxnor;

static std::vector<int32_t> pack_naive(const std::vector<float>& x, int64_t rows, int64_t K) {
  const int64_t W = packed_words(K);
  std::vector<int32_t> out(rows * 2 * W, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const float v = x[r * K + k];
      const uint32_t bit = 1u << (k % 32);
      if (v != 0) out[r * 2 * W + k / 32] |= static_cast<int32_t>(bit);
      if (v < 0) out[r * 2 * W + W + k / 32] |= static_cast<int32_t>(bit);
    }
  return out;
}

int main() {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> tern(-1, 1);
  const cpu::Isa isas[] = {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512};
  for (int64_t K : {1, 31, 32, 33, 63, 64, 65, 100, 1000}) {
    for (int64_t rows : {1, 3}) {
      std::vector<float> x(rows * K);
      std::vector<int8_t> xi(rows * K);
      for (size_t i = 0; i < x.size(); ++i) xi[i] = static_cast<int8_t>(x[i] = static_cast<float>(tern(rng)));
      const auto want = pack_naive(x, rows, K);
      const int64_t W = packed_words(K);
      for (auto isa : isas) {
        if (isa > cpu::detect_isa()) continue;
        std::vector<int32_t> got(want.size(), -1), goti(want.size(), -1);
        CHECK(cpu::pack_range(x.data(), K, got.data(), 0, rows * W, cpu::PackMode::kStrict, 0.f, isa) == 0,
              "valid input reported bad");
        cpu::pack_range(xi.data(), K, goti.data(), 0, rows * W, cpu::PackMode::kStrict, 0.f, isa);
        CHECK(got == want, "f32 pack mismatch K=%ld isa=%s", (long)K, cpu::isa_name(isa));
        CHECK(goti == want, "i8 pack mismatch K=%ld isa=%s", (long)K, cpu::isa_name(isa));
        std::vector<float> back(x.size(), 7.f);
        std::vector<int8_t> backi(x.size(), 7);
        cpu::unpack_range(got.data(), K, back.data(), 0, rows * W, isa);
        cpu::unpack_range(got.data(), K, backi.data(), 0, rows * W, isa);
        CHECK(back == x, "f32 unpack mismatch K=%ld isa=%s", (long)K, cpu::isa_name(isa));
        CHECK(backi == xi, "i8 unpack mismatch K=%ld isa=%s", (long)K, cpu::isa_name(isa));
        CHECK(cpu::count_noncanonical_range(got.data(), K, 0, rows * W) == 0, "canonical data flagged");
        // Bad values are counted; threshold mode quantizes instead.
        std::vector<float> y = x;
        y[K / 2] = 0.5f;
        CHECK(cpu::pack_range(y.data(), K, got.data(), 0, rows * W, cpu::PackMode::kStrict, 0.f, isa) == 1,
              "0.5 not reported K=%ld isa=%s", (long)K, cpu::isa_name(isa));
        cpu::pack_range(y.data(), K, got.data(), 0, rows * W, cpu::PackMode::kThreshold, 0.5f, isa);
        y[K / 2] = 1.f;
        CHECK(got == pack_naive(y, rows, K), "threshold pack mismatch K=%ld isa=%s", (long)K,
              cpu::isa_name(isa));
      }
      // Sign without gate, and a padding bit, are non-canonical.
      auto bad = want;
      const int64_t k = K - 1;
      bad[W + k / 32] |= 1 << (k % 32);
      bad[k / 32] &= ~(1 << (k % 32));
      CHECK(cpu::count_noncanonical_range(bad.data(), K, 0, rows * W) == 1, "sign-without-gate missed");
      if (K % 64) {
        auto pad = want;
        pad[W - 1] |= static_cast<int32_t>(1u << 31);
        CHECK(cpu::count_noncanonical_range(pad.data(), K, 0, rows * W) == 1, "padding bit missed K=%ld",
              (long)K);
      }
    }
  }
  TEST_MAIN_END();
}
