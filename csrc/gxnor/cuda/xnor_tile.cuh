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

// The K loop of a 64x64 tile, shared by the GEMM and conv kernels: words [0, words) in chunks of
// kChunk word pairs; per chunk each thread loads 4 of the 64 rows x 2 planes x kChunk words of
// each operand into shared memory, load(row, plane, word, a, b) setting the A and B words (0
// outside the operands), then the block multiplies the chunk into acc.
template <class Load>
__device__ __forceinline__ void xnor_tile_loop(int64_t words, const Load& load,
                                               uint32_t (&As)[kTile][2][kChunk],
                                               uint32_t (&Bs)[kTile][2][kChunk], int (&acc)[kReg][kReg]) {
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThr + tx;
#pragma unroll
  for (int i = 0; i < kReg; ++i)
#pragma unroll
    for (int j = 0; j < kReg; ++j) acc[i][j] = 0;
  for (int64_t w0 = 0; w0 < words; w0 += kChunk) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int idx = tid + e * kThr * kThr;
      const int row = idx / (2 * kChunk), plane = (idx / kChunk) % 2, wl = idx % kChunk;
      load(row, plane, w0 + wl, As[row][plane][wl], Bs[row][plane][wl]);
    }
    __syncthreads();
    xnor_tile_chunk(As, Bs, tx, ty, acc);
    __syncthreads();
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

// The accumulators [MI][NI][4] of a warp's tile of MI x NI mma.sync m16n8 fragments, zeroed.
template <class T, int MI, int NI>
__device__ __forceinline__ void zero_mma_tile(T (&acc)[MI][NI][4]) {
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[mi][ni][i] = T(0);
}

// Those accumulators into C through store_c, the warp's tile at (r0, c0) of an M x N block whose
// column c is output column cofs + c of rows ldc apart: lane (g, t) holds rows g, g + 8 and columns
// 2 t, 2 t + 1 of each fragment; value(acc, mi, h) gives C from an accumulator of fragment row mi,
// row half h.
template <int MI, int NI, class Value>
__device__ __forceinline__ void store_mma_tile(const int (&acc)[MI][NI][4], int64_t r0, int64_t c0, int64_t M,
                                               int64_t N, int64_t ldc, int64_t cofs, Value value,
                                               const float* scale, const float* bias, int32_t* c_int,
                                               float* c_float) {
  const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t r = r0 + 16 * mi + g + 8 * (i >> 1), c = c0 + 8 * ni + 2 * t + (i & 1);
        if (r < M && c < N)
          store_c(r * ldc + cofs + c, cofs + c, value(acc[mi][ni][i], mi, i >> 1), scale, bias, c_int,
                  c_float);
      }
}

}  // namespace gxnor::cuda
