// CUDA in-place DST update (torch-free). Packed: one thread per plane word (32 elements), grid-
// stride over rows * W words, 256 threads per block; Philox in-kernel from dst.h (same draws as
// tl.rand(seed, offset + row*K + k)). States: one thread per int8 state. No shared memory.
#include "../dst.h"
#include "api.h"
#include "compat.cuh"

namespace gxnor::cuda {

constexpr int kDstThreads = 256;

__global__ void __launch_bounds__(kDstThreads)
    dst_packed_kernel(int32_t* __restrict__ w, const float* __restrict__ grad, int64_t rows, int64_t K,
                      float lr, float m, int increment, uint64_t seed, uint64_t offset,
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
    for (int j = 0; j < n; ++j) {
      const float g = grad[row * K + lo + j];
      const float d = increment ? g : GX_FMUL(-lr, g);
      const uint64_t idx = static_cast<uint64_t>(row * K + lo + j);
      nbad += !dst::finite(d);
      const int mv = dst::move(d, m, dst::uniform(dst::philox_first(seed, offset + idx)));
      int s = ((gw >> j) & 1u) ? (((sw >> j) & 1u) ? -1 : 1) : 0;
      s += mv;
      s = s > 1 ? 1 : (s < -1 ? -1 : s);
      ng |= static_cast<uint32_t>(s != 0) << j;
      ns |= static_cast<uint32_t>(s < 0) << j;
    }
    w[row * 2 * W + wi] = static_cast<int32_t>(ng);
    w[row * 2 * W + W + wi] = static_cast<int32_t>(ns);
    if (nbad) atomicAdd(bad, static_cast<unsigned long long>(nbad));
  }
}

__global__ void __launch_bounds__(kDstThreads)
    dst_states_kernel(int8_t* __restrict__ s, const float* __restrict__ grad, int64_t n, float lr, float m,
                      float inv_dz, int hi, int step, int increment, uint64_t seed, uint64_t offset,
                      unsigned long long* bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kDstThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kDstThreads + threadIdx.x; i < n; i += stride) {
    const float g = grad[i];
    const float d = increment ? g : GX_FMUL(-lr, g);
    const float t = GX_FMUL(d, inv_dz);
    if (!dst::finite(t)) atomicAdd(bad, 1ull);
    const int mv = dst::move(t, m, dst::uniform(dst::philox_first(seed, offset + static_cast<uint64_t>(i))));
    int v = s[i] + step * mv;
    v = v > hi ? hi : (v < -hi ? -hi : v);
    s[i] = static_cast<int8_t>(v);
  }
}

}  // namespace gxnor::cuda

extern "C" int gxnor_cuda_dst_packed(int32_t* w, const float* grad, int64_t rows, int64_t K, float lr,
                                     float m, int increment, uint64_t seed, uint64_t offset,
                                     unsigned long long* bad, void* stream) {
  using namespace gxnor::cuda;
  const dim3 grid(grid_for(rows * gxnor::packed_words(K), kDstThreads));
  GX_LAUNCH(dst_packed_kernel, grid, dim3(kDstThreads), 0, stream, w, grad, rows, K, lr, m, increment, seed,
            offset, bad);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int gxnor_cuda_dst_states(int8_t* s, const float* grad, int64_t n, float lr, float m, float inv_dz,
                                     int hi, int step, int increment, uint64_t seed, uint64_t offset,
                                     unsigned long long* bad, void* stream) {
  using namespace gxnor::cuda;
  GX_LAUNCH(dst_states_kernel, dim3(grid_for(n, kDstThreads)), dim3(kDstThreads), 0, stream, s, grad, n, lr,
            m, inv_dz, hi, step, increment, seed, offset, bad);
  return static_cast<int>(cudaGetLastError());
}
