// Ceilings of the AVX2 table-lookup conv (csrc/gxnor/cpu/conv_lut.h) on this CPU, in G MAC/s at
// 640 MACs per 10 vpshufb (the 5 x 2 micro-kernel's step): (1) vpshufb alone, (2) 10 vpshufb +
// 10 vpaddb with everything in registers (the instruction mix, no loads), (3) the kernel's two-step
// body step2_5x2 itself, its codes, table rows and weights served from L1; and for scale (4) the fp32
// FMA ceiling that bounds a dense fp32 conv (vfmadd231ps, 8 MACs each, registers only). Torch-free;
// build and run:
//   g++ -O3 -mavx2 -fopenmp -Icsrc bench/lut_roofline.cpp -o /tmp/lut_roofline
//   OMP_NUM_THREADS=2 /tmp/lut_roofline
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "gxnor/cpu/conv_lut.h"

namespace {

constexpr int64_t kIters = 100000000;  // 10-shuffle steps per thread and run

// Ten independent products of two table and two index registers (x: vpshufb, add: + vpaddb).
#define SHUF(W, T, A) "vpshufb %[" #W "], %[" #T "], %[" #A "]\n\t"
#define SHUFADD(W, T, A, P) \
  "vpshufb %[" #W "], %[" #T "], %%" #P "\n\tvpaddb %%" #P ", %[" #A "], %[" #A "]\n\t"

__attribute__((target("avx2"))) int64_t registers(bool add) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
          a9 = a0;
  const __m256i t0 = _mm256_set1_epi8(3), t1 = _mm256_set1_epi8(5), w0 = _mm256_set1_epi8(1),
                w1 = _mm256_set1_epi8(2);
  for (int64_t n = 0; n < kIters; ++n) {
    if (add)
      __asm__ volatile(SHUFADD(w0, t0, a0, ymm15) SHUFADD(w1, t0, a1, ymm14) SHUFADD(w0, t1, a2, ymm15)
                           SHUFADD(w1, t1, a3, ymm14) SHUFADD(w0, t0, a4, ymm15) SHUFADD(w1, t0, a5, ymm14)
                               SHUFADD(w0, t1, a6, ymm15) SHUFADD(w1, t1, a7, ymm14)
                                   SHUFADD(w0, t0, a8, ymm15) SHUFADD(w1, t0, a9, ymm14)
                       : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4),
                         [a5] "+x"(a5), [a6] "+x"(a6), [a7] "+x"(a7), [a8] "+x"(a8), [a9] "+x"(a9)
                       : [t0] "x"(t0), [t1] "x"(t1), [w0] "x"(w0), [w1] "x"(w1)
                       : "xmm14", "xmm15");
    else
      __asm__ volatile(SHUF(w0, t0, a0) SHUF(w1, t0, a1) SHUF(w0, t1, a2) SHUF(w1, t1, a3) SHUF(w0, t0, a4)
                           SHUF(w1, t0, a5) SHUF(w0, t1, a6) SHUF(w1, t1, a7) SHUF(w0, t0, a8)
                               SHUF(w1, t0, a9)
                       : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4),
                         [a5] "+x"(a5), [a6] "+x"(a6), [a7] "+x"(a7), [a8] "+x"(a8), [a9] "+x"(a9)
                       : [t0] "x"(t0), [t1] "x"(t1), [w0] "x"(w0), [w1] "x"(w1));
  }
  const __m256i s = _mm256_add_epi8(_mm256_add_epi8(_mm256_add_epi8(a0, a1), _mm256_add_epi8(a2, a3)),
                                    _mm256_add_epi8(_mm256_add_epi8(a4, a5), _mm256_add_epi8(a6, a7)));
  return _mm256_extract_epi8(_mm256_add_epi8(s, _mm256_add_epi8(a8, a9)), 0);
}

// Ten independent fp32 FMA chains (80 MACs per iteration; report() counts 640 per iteration, so
// the caller divides by 8).
__attribute__((target("avx2,fma"))) int64_t fma() {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
         a9 = a0;
  const __m256 x = _mm256_set1_ps(1e-9f), y = _mm256_set1_ps(1.0f);
  for (int64_t n = 0; n < kIters; ++n)
    __asm__ volatile(
        "vfmadd231ps %[x], %[y], %[a0]\n\tvfmadd231ps %[x], %[y], %[a1]\n\tvfmadd231ps %[x], %[y], %[a2]\n\t"
        "vfmadd231ps %[x], %[y], %[a3]\n\tvfmadd231ps %[x], %[y], %[a4]\n\tvfmadd231ps %[x], %[y], %[a5]\n\t"
        "vfmadd231ps %[x], %[y], %[a6]\n\tvfmadd231ps %[x], %[y], %[a7]\n\tvfmadd231ps %[x], %[y], %[a8]\n\t"
        "vfmadd231ps %[x], %[y], %[a9]\n\t"
        : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4), [a5] "+x"(a5),
          [a6] "+x"(a6), [a7] "+x"(a7), [a8] "+x"(a8), [a9] "+x"(a9)
        : [x] "x"(x), [y] "x"(y));
  const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  return static_cast<int64_t>(_mm256_cvtss_f32(_mm256_add_ps(s, _mm256_add_ps(a8, a9))));
}

// The kernel body over 62 steps at a time (a flush window) of 5 rows of codes and 2 x 62 weight
// vectors, all in L1; each call of step2_5x2 is two steps.
GXNOR_TARGET_AVX2 int64_t kernel_body() {
  namespace L = gxnor::cpu::lut;
  constexpr int64_t kSteps = L::kFlush;
  std::vector<uint8_t> codes(5 * kSteps), w(kSteps * 2 * L::kLanes);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>((i * 37 + 11) % 9 * 4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint8_t>((i * 13 + 5) % 16);
  for (int r = 0; r < 5; ++r) L::combine_pairs(codes.data() + r * kSteps, kSteps);
  const uint8_t* p[5];
  for (int r = 0; r < 5; ++r) p[r] = codes.data() + r * kSteps;
  const auto* tbl = reinterpret_cast<const uint8_t*>(L::kTable2.t);
  __m256i acc[5][2] = {};
  int64_t sum = 0;
  for (int64_t n = 0; n < kIters / kSteps; ++n) {
    for (int64_t i = 0; i < kSteps; i += 2) L::step2_5x2(acc, p, i, w.data() + i * 2 * L::kLanes, tbl);
    for (auto& row : acc)
      for (auto& a : row) sum += _mm256_extract_epi8(a, 0), a = _mm256_setzero_si256();
  }
  return sum;
}

template <class F>
void report(const char* what, F f, double macs_per_iter = 640) {
  const int threads = omp_get_max_threads();
  int64_t sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : sink)
  sink += f();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double steps = static_cast<double>(kIters / gxnor::cpu::lut::kFlush * gxnor::cpu::lut::kFlush);
  std::printf("%-44s %2d threads: %6.1f G MAC/s (%.1f per thread)  [%lld]\n", what, threads,
              steps * threads * macs_per_iter / s / 1e9, steps * macs_per_iter / s / 1e9,
              static_cast<long long>(sink & 1));
}

}  // namespace

int main() {
  for (int rep = 0; rep < 3; ++rep) {
    report("vpshufb only (registers)", [] { return registers(false); });
    report("vpshufb + vpaddb (registers)", [] { return registers(true); });
    report("step2_5x2 kernel body (L1)", [] { return kernel_body(); });
    report("fp32 FMA (registers; dense conv ceiling)", [] { return fma(); }, 80);
  }
}
