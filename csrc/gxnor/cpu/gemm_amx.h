// AMX-INT8 path of the CPU xnor_gemm (Sapphire Rapids and later): exact int32 like the popcount
// path, ~4x its throughput. Packed operands are unpacked to int8 once, both into 1 KiB tiles:
// A as (m16, k64) row blocks (rows padded to 32), B as VNNI (16 columns x 64 k) blocks.
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

// C (32 x 32 int32, rows ldc apart) = A rows [0, 16) in tiles a0, rows [16, 32) in a1, times B
// blocks b0, b1 (KB consecutive 1 KiB tiles each). Every tile load reads 1 KiB of contiguous
// memory: no row stride, so no 4 KiB cache-set aliasing when K is a power of two. c may be the
// int32 output itself (ldc = its row length): the tiles are stored straight into it.
GXNOR_TARGET_AMX inline void block_32x32(const int8_t* a0, const int8_t* a1, const int8_t* b0,
                                         const int8_t* b1, int64_t KB, int32_t* c, int64_t ldc = kBlock) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t kb = 0; kb < KB; ++kb) {
    _tile_loadd(4, a0 + kb * kVnniBytes, 64);
    _tile_loadd(6, b0 + kb * kVnniBytes, 64);
    _tile_loadd(5, a1 + kb * kVnniBytes, 64);
    _tile_loadd(7, b1 + kb * kVnniBytes, 64);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  const int64_t ld = ldc * static_cast<int64_t>(sizeof(int32_t));
  _tile_stored(0, c, ld);
  _tile_stored(1, c + 16, ld);
  _tile_stored(2, c + 16 * ldc, ld);
  _tile_stored(3, c + 16 * ldc + 16, ld);
}

// 64 int8 values of packed row word q (gate word g, sign word s): 0, +1 or -1.
GXNOR_TARGET_AMX inline __m512i unpack64(uint64_t g, uint64_t s) {
  return _mm512_maskz_mov_epi8(g, _mm512_mask_blend_epi8(s, _mm512_set1_epi8(1), _mm512_set1_epi8(-1)));
}

// Packed rows [r0, r1) (multiples of 16; rows >= `rows` zero) into int8 A tiles: block
// (r / 16, kb) at ((r / 16) * Wq + kb) * 1 KiB, 16 rows x 64 k row-major inside; written tile by
// tile, one 64-byte store per 64 values.
GXNOR_TARGET_AMX inline void unpack_rows_i8(const int32_t* p, int64_t W, int64_t rows, int64_t r0, int64_t r1,
                                            int8_t* dst) {
  const int64_t Wq = W / 2;
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int nc = static_cast<int>(rows - rb < 16 ? (rows > rb ? rows - rb : 0) : 16);
    for (int64_t q = 0; q < Wq; ++q) {
      int8_t* d = dst + ((rb / 16) * Wq + q) * kVnniBytes;
      for (int c = 0; c < nc; ++c) {
        const auto* g64 = reinterpret_cast<const uint64_t*>(p + (rb + c) * 2 * W);
        _mm512_storeu_si512(d + c * 64, unpack64(g64[q], g64[Wq + q]));
      }
      for (int c = nc; c < 16; ++c) _mm512_storeu_si512(d + c * 64, _mm512_setzero_si512());
    }
  }
}

// Packed rows [r0, r1) (multiples of 16; rows >= `rows` zero) into int8 B VNNI tiles: block
// (n16, kb) at (n16 * Wq + kb) * 1 KiB, tile row i = bytes [4i, 4i + 4) of each of the 16 rows.
// Per (n16, kb): 16 row vectors, a 16 x 16 transpose of 4-byte groups (64 shuffles), 16 stores.
GXNOR_TARGET_AMX inline void unpack_vnni_i8(const int32_t* p, int64_t W, int64_t rows, int64_t r0, int64_t r1,
                                            int8_t* dst) {
  const int64_t Wq = W / 2;
  for (int64_t rb = r0; rb < r1; rb += 16) {
    for (int64_t q = 0; q < Wq; ++q) {
      __m512i v[16], t[16];
      for (int c = 0; c < 16; ++c) {
        const auto* g64 = reinterpret_cast<const uint64_t*>(p + (rb + c) * 2 * W);
        v[c] = rb + c < rows ? unpack64(g64[q], g64[Wq + q]) : _mm512_setzero_si512();
      }
      // Lane L of t[4i + j] after two stages: dwords (k = 4L + j) of rows 4i .. 4i + 3.
      for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
      }
      for (int i = 0; i < 4; ++i) {
        v[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        v[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
      }
      // 4 x 4 transpose of 128-bit lanes across v[j], v[4 + j], v[8 + j], v[12 + j].
      int8_t* d = dst + ((rb / 16) * Wq + q) * kVnniBytes;
      for (int j = 0; j < 4; ++j) {
        const __m512i w0 = _mm512_shuffle_i32x4(v[j], v[4 + j], 0x44);
        const __m512i w1 = _mm512_shuffle_i32x4(v[j], v[4 + j], 0xEE);
        const __m512i w2 = _mm512_shuffle_i32x4(v[8 + j], v[12 + j], 0x44);
        const __m512i w3 = _mm512_shuffle_i32x4(v[8 + j], v[12 + j], 0xEE);
        _mm512_storeu_si512(d + (0 + j) * 64, _mm512_shuffle_i32x4(w0, w2, 0x88));
        _mm512_storeu_si512(d + (4 + j) * 64, _mm512_shuffle_i32x4(w0, w2, 0xDD));
        _mm512_storeu_si512(d + (8 + j) * 64, _mm512_shuffle_i32x4(w1, w3, 0x88));
        _mm512_storeu_si512(d + (12 + j) * 64, _mm512_shuffle_i32x4(w1, w3, 0xDD));
      }
    }
  }
}

}  // namespace gxnor::cpu::amx
