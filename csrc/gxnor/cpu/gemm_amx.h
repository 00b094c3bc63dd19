// AMX-INT8 path of the CPU xnor_gemm (Sapphire Rapids and later): exact int32 like the popcount
// path, ~4x its throughput. Packed operands are unpacked to int8 once: A row-major (rows padded
// to 32, ld = Kp = 32 W), B into VNNI tiles (16 columns x 64 k = 1 KiB per (n16, k64) block).
// B block (nb, kb) of VNNI layout: bytes [4c, 4c+4) of row r = B[16 nb + c][64 kb + 4r ...].
// A 32 x 32 C block lives in tiles 0-3; tiles 4-5 hold two 16-row A strips, 6-7 two B blocks;
// per 64-wide k step: 4 tile loads + 4 TDPBSSD. Torch-free.
#pragma once
#include <cstdint>
#include <cstring>

#include "isa.h"

namespace gxnor::cpu::amx {

constexpr int kBlock = 32;           // C block edge
constexpr int kTileK = 64;           // int8 k per tile row
constexpr int kVnniBytes = 16 * 64;  // one B tile

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

inline constexpr TileConfig make_config() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  return cfg;
}
// A static object: GCC drops stores into a stack config as dead before ldtilecfg.
inline constexpr TileConfig kTileConfig = make_config();

GXNOR_TARGET_AMX inline void configure() { _tile_loadconfig(&kTileConfig); }

GXNOR_TARGET_AMX inline void release() { _tile_release(); }

// C (32 x 32 int32, ld 32) = A (32 rows, ld Kp) x B blocks bv0, bv1 (KB blocks each).
GXNOR_TARGET_AMX inline void block_32x32(const int8_t* a, int64_t Kp, const int8_t* bv0, const int8_t* bv1,
                                         int32_t* c) {
  const int64_t KB = Kp / kTileK;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t kb = 0; kb < KB; ++kb) {
    _tile_loadd(4, a + kb * kTileK, Kp);
    _tile_loadd(5, a + 16 * Kp + kb * kTileK, Kp);
    _tile_loadd(6, bv0 + kb * kVnniBytes, 64);
    _tile_loadd(7, bv1 + kb * kVnniBytes, 64);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  _tile_stored(0, c, 128);
  _tile_stored(1, c + 16, 128);
  _tile_stored(2, c + 16 * 32, 128);
  _tile_stored(3, c + 16 * 32 + 16, 128);
}

// Direct AVX-512 unpack of packed rows [r0, r1) (of `rows`; later rows zero) into int8:
// A layout (row-major, ld Kp) or B VNNI layout (block (nb, kb) at (nb * Wq + kb) * 1 KiB), 64 values
// per masked byte move.
template <bool kVnni>
GXNOR_TARGET_AMX inline void unpack_i8_avx512(const int32_t* p, int64_t W, int64_t rows, int64_t r0,
                                              int64_t r1, int8_t* dst) {
  const int64_t Wq = W / 2, Kp = 32 * W;
  const __m512i one = _mm512_set1_epi8(1), mone = _mm512_set1_epi8(-1);
  const __m512i vidx = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(64));
  for (int64_t r = r0; r < r1; ++r) {
    const auto* g64 = reinterpret_cast<const uint64_t*>(p + r * 2 * W);
    for (int64_t q = 0; q < Wq; ++q) {
      __m512i v = _mm512_setzero_si512();
      if (r < rows) v = _mm512_maskz_mov_epi8(g64[q], _mm512_mask_blend_epi8(g64[Wq + q], one, mone));
      if constexpr (kVnni) {
        int8_t* base = dst + ((r / 16) * Wq + q) * kVnniBytes + (r % 16) * 4;
        _mm512_i32scatter_epi32(base, vidx, v, 1);
      } else {
        _mm512_storeu_si512(dst + r * Kp + q * 64, v);
      }
    }
  }
}

}  // namespace gxnor::cpu::amx
