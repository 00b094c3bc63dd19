// Packed ternary format, version 1 (docs/design.md). The C++ twin of gxnor_cuda/format.py;
// tests/test_format.py proves the two agree. Torch-free: included by CPU, CUDA and emulation code.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define GXNOR_HD __host__ __device__
#else
#define GXNOR_HD
#endif

namespace gxnor {

constexpr int kFormatVersion = 1;
constexpr int kBitsPerWord = 32;  // int32 words, least significant bit first
constexpr int kPadElems = 64;     // K is padded to a multiple of 64 (two words = one u64)
constexpr int kGatePlane = 0;     // 1 = nonzero
constexpr int kSignPlane = 1;     // 1 = negative

// Words per plane for a logical length K: W = 2 * ceil(K / 64).
GXNOR_HD inline constexpr int64_t packed_words(int64_t K) { return 2 * ((K + kPadElems - 1) / kPadElems); }

// Mask of the valid bits of word w (index inside a plane) for logical length K.
GXNOR_HD inline constexpr uint32_t valid_mask(int64_t w, int64_t K) {
  const int64_t lo = w * kBitsPerWord;
  if (K >= lo + kBitsPerWord) return 0xffffffffu;
  if (K <= lo) return 0u;
  return (1u << (K - lo)) - 1u;
}

}  // namespace gxnor
