// The register-blocked inner product shared by the CUDA xnor GEMM and conv kernels: a 16x16
// block owns a 64x64 C tile, each thread a 4x4 block (rows ty+16i, cols tx+16j); shared tiles
// hold 64 rows x (gate, sign) x kChunk words. Gated XNOR per word pair: AND, XOR, AND, 2x POPC.
#pragma once
#include "compat.cuh"

namespace gxnor::cuda {

constexpr int kTile = 64, kThr = 16, kReg = 4, kChunk = 8;

__device__ __forceinline__ void xnor_tile_chunk(const uint32_t (&As)[kTile][2][kChunk],
                                                const uint32_t (&Bs)[kTile][2][kChunk], int tx, int ty,
                                                int (&acc)[kReg][kReg]) {
#pragma unroll
  for (int w = 0; w < kChunk; ++w) {
    uint32_t ga[kReg], sa[kReg], gb[kReg], sb[kReg];
#pragma unroll
    for (int i = 0; i < kReg; ++i) {
      ga[i] = As[ty + kThr * i][0][w];
      sa[i] = As[ty + kThr * i][1][w];
      gb[i] = Bs[tx + kThr * i][0][w];
      sb[i] = Bs[tx + kThr * i][1][w];
    }
#pragma unroll
    for (int i = 0; i < kReg; ++i)
#pragma unroll
      for (int j = 0; j < kReg; ++j) {
        const uint32_t g = ga[i] & gb[j];
        acc[i][j] += __popc(g) - 2 * __popc(g & (sa[i] ^ sb[j]));
      }
  }
}

// Epilogue for one C element: int32, or float32 acc * scale[col] + bias[col].
__device__ __forceinline__ void store_c(int64_t idx, int64_t col, int v, const float* scale,
                                        const float* bias, int32_t* c_int, float* c_float) {
  if (c_int)
    c_int[idx] = v;
  else
    c_float[idx] = static_cast<float>(v) * (scale ? scale[col] : 1.0f) + (bias ? bias[col] : 0.0f);
}

}  // namespace gxnor::cuda
