// CUDA in-place DST update (torch-free). Packed: one thread per plane word (32 elements), grid-
// stride over rows * W words, 256 threads per block; Philox in-kernel from dst.h (dst::draws, the
// same draws as the Triton kernel). States: one thread per 32-element chunk of a row. No shared
// memory.
#include "../dst.h"
#include "api.h"
#include "compat.cuh"

namespace gxnor::cuda {

constexpr int kDstThreads = 256;

__global__ void __launch_bounds__(kDstThreads)
    dst_packed_kernel(int32_t* __restrict__ w, const float* __restrict__ grad, int64_t rows, int64_t K,
                      float lr, float m, int increment, int rng, uint64_t seed, uint64_t offset,
                      unsigned long long* bad) {
  const int64_t W = packed_words(K);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kDstThreads;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kDstThreads + threadIdx.x; t < rows * W; t += stride) {
    const int64_t row = t / W, wi = t - row * W, lo = wi * 32;
    if (lo >= K) continue;
    const int n = static_cast<int>(K - lo < 32 ? K - lo : 32);
    const uint32_t gw = static_cast<uint32_t>(w[row * 2 * W + wi]);
    const uint32_t sw = static_cast<uint32_t>(w[row * 2 * W + W + wi]);
    uint32_t ng = 0, ns = 0;
    unsigned nbad = 0;
    for (int j0 = 0; j0 < n; j0 += 4) {
      uint32_t u[4];  // constant indices below: registers, not local memory
      dst::draw4(rng, seed, offset, K, row, lo + j0, u);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int j = j0 + i;
        if (j >= n) break;
        const float g = grad[row * K + lo + j];
        const bool fin = dst::finite(g);  // non-finite: no move; an overflowing increment saturates
        const float d = increment ? g : GX_FMUL(-lr, g);
        nbad += !fin;
        const int mv = dst::move(fin ? d : 0.0f, m, dst::uniform(u[i]));
        int s = ((gw >> j) & 1u) ? (((sw >> j) & 1u) ? -1 : 1) : 0;
        s += mv;
        s = s > 1 ? 1 : (s < -1 ? -1 : s);
        ng |= static_cast<uint32_t>(s != 0) << j;
        ns |= static_cast<uint32_t>(s < 0) << j;
      }
    }
    w[row * 2 * W + wi] = static_cast<int32_t>(ng);
    w[row * 2 * W + W + wi] = static_cast<int32_t>(ns);
    if (nbad) atomicAdd(bad, static_cast<unsigned long long>(nbad));
  }
}

__global__ void __launch_bounds__(kDstThreads)
    dst_states_kernel(int8_t* __restrict__ s, const float* __restrict__ grad, int64_t n, int64_t K, float lr,
                      float m, float inv_dz, int hi, int step, int increment, int rng, uint64_t seed,
                      uint64_t offset, unsigned long long* bad) {
  const int64_t per_row = (K + 31) / 32, chunks = n / K * per_row;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kDstThreads;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * kDstThreads + threadIdx.x; c < chunks; c += stride) {
    const int64_t row = c / per_row, k0 = (c - row * per_row) * 32, i0 = row * K + k0;
    const int cnt = static_cast<int>(K - k0 < 32 ? K - k0 : 32);
    unsigned nbad = 0;
    for (int j0 = 0; j0 < cnt; j0 += 4) {
      uint32_t u[4];
      dst::draw4(rng, seed, offset, K, row, k0 + j0, u);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int j = j0 + i;
        if (j >= cnt) break;
        const float g = grad[i0 + j];
        const bool fin = dst::finite(g);
        const float d = increment ? g : GX_FMUL(-lr, g);
        nbad += !fin;
        const int mv = dst::move(fin ? GX_FMUL(d, inv_dz) : 0.0f, m, dst::uniform(u[i]));
        int v = s[i0 + j] + step * mv;
        v = v > hi ? hi : (v < -hi ? -hi : v);
        s[i0 + j] = static_cast<int8_t>(v);
      }
    }
    if (nbad) atomicAdd(bad, static_cast<unsigned long long>(nbad));
  }
}

}  // namespace gxnor::cuda

extern "C" int gxnor_cuda_dst_packed(int32_t* w, const float* grad, int64_t rows, int64_t K, float lr,
                                     float m, int increment, int rng, uint64_t seed, uint64_t offset,
                                     unsigned long long* bad, void* stream) {
  using namespace gxnor::cuda;
  const dim3 grid(grid_for(rows * gxnor::packed_words(K), kDstThreads));
  GX_LAUNCH(dst_packed_kernel, grid, dim3(kDstThreads), 0, stream, w, grad, rows, K, lr, m, increment, rng,
            seed, offset, bad);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int gxnor_cuda_dst_states(int8_t* s, const float* grad, int64_t n, int64_t K, float lr, float m,
                                     float inv_dz, int hi, int step, int increment, int rng, uint64_t seed,
                                     uint64_t offset, unsigned long long* bad, void* stream) {
  using namespace gxnor::cuda;
  if (n == 0 || K == 0) return 0;
  GX_LAUNCH(dst_states_kernel, dim3(grid_for(n / K * ((K + 31) / 32), kDstThreads)), dim3(kDstThreads), 0,
            stream, s, grad, n, K, lr, m, inv_dz, hi, step, increment, rng, seed, offset, bad);
  return static_cast<int>(cudaGetLastError());
}
