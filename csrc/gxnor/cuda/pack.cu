// CUDA pack / unpack / canonical check for packed ternary format v1 (torch-free).
// pack: one warp per plane word; lane l reads element 32w+l (coalesced), two __ballot_sync build
//       the gate and sign words, lane 0 stores them; 256 threads = 8 words per block, grid-stride.
// unpack: one thread per output element, grid-stride. validate: one thread per plane word.
// No shared memory. Compiles under nvcc and, through compat.cuh, as host C++ for the emulation.
#include "../format.h"
#include "api.h"
#include "compat.cuh"

namespace gxnor::cuda {

constexpr int kThreads = 256;

template <class T, int kMode>
__global__ void __launch_bounds__(kThreads)
    pack_kernel(const T* __restrict__ x, int64_t rows, int64_t K, float thr, int32_t* __restrict__ out,
                unsigned long long* bad) {
  const int64_t W = packed_words(K);
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kThreads / 32);
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5); t < rows * W;
       t += warps) {
    const int64_t row = t / W, w = t - row * W;
    const int64_t k = w * 32 + lane;
    const float v = k < K ? static_cast<float>(x[row * K + k]) : 0.0f;
    bool nz, neg;
    bool invalid = false;
    if (kMode == 1) {
      neg = v <= -thr;
      nz = neg || v >= thr;
    } else {
      nz = v != 0.0f;
      neg = v < 0.0f;
      invalid = !(v == 0.0f || v == 1.0f || v == -1.0f);
    }
    const unsigned g = __ballot_sync(GX_FULL_MASK, nz);
    const unsigned s = __ballot_sync(GX_FULL_MASK, neg);
    const unsigned b = __ballot_sync(GX_FULL_MASK, invalid);
    if (lane == 0) {
      out[row * 2 * W + w] = static_cast<int32_t>(g);
      out[row * 2 * W + W + w] = static_cast<int32_t>(s);
      if (b) atomicAdd(bad, static_cast<unsigned long long>(__popc(b)));
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    unpack_kernel(const int32_t* __restrict__ p, int64_t rows, int64_t K, T* __restrict__ out) {
  const int64_t W = packed_words(K);
  const int64_t n = rows * K;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += stride) {
    const int64_t row = i / K, k = i - row * K;
    const unsigned g = static_cast<unsigned>(p[row * 2 * W + (k >> 5)]);
    const unsigned s = static_cast<unsigned>(p[row * 2 * W + W + (k >> 5)]);
    const int bit = static_cast<int>(k & 31);
    const int v = ((g >> bit) & 1u) ? (((s >> bit) & 1u) ? -1 : 1) : 0;
    out[i] = static_cast<T>(v);
  }
}

__global__ void __launch_bounds__(kThreads)
    noncanonical_kernel(const int32_t* __restrict__ p, int64_t rows, int64_t K, unsigned long long* count) {
  const int64_t W = packed_words(K);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < rows * W; t += stride) {
    const int64_t row = t / W, w = t - row * W;
    const unsigned g = static_cast<unsigned>(p[row * 2 * W + w]);
    const unsigned s = static_cast<unsigned>(p[row * 2 * W + W + w]);
    const unsigned m = valid_mask(w, K);
    if ((s & ~g) | (g & ~m) | (s & ~m)) atomicAdd(count, 1ull);
  }
}

}  // namespace gxnor::cuda

using namespace gxnor::cuda;

extern "C" int gxnor_cuda_pack_f32(const float* x, int64_t rows, int64_t K, int mode, float thr, int32_t* out,
                                   unsigned long long* bad, void* stream) {
  const dim3 grid(grid_for(rows * gxnor::packed_words(K), kThreads / 32));
  if (mode == 1)
    GX_LAUNCH((pack_kernel<float, 1>), grid, dim3(kThreads), 0, stream, x, rows, K, thr, out, bad);
  else
    GX_LAUNCH((pack_kernel<float, 0>), grid, dim3(kThreads), 0, stream, x, rows, K, thr, out, bad);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int gxnor_cuda_pack_i8(const int8_t* x, int64_t rows, int64_t K, int32_t* out,
                                  unsigned long long* bad, void* stream) {
  const dim3 grid(grid_for(rows * gxnor::packed_words(K), kThreads / 32));
  GX_LAUNCH((pack_kernel<int8_t, 0>), grid, dim3(kThreads), 0, stream, x, rows, K, 0.0f, out, bad);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int gxnor_cuda_unpack_i8(const int32_t* p, int64_t rows, int64_t K, int8_t* out, void* stream) {
  GX_LAUNCH(unpack_kernel<int8_t>, dim3(grid_for(rows * K, kThreads)), dim3(kThreads), 0, stream, p, rows, K,
            out);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int gxnor_cuda_unpack_f32(const int32_t* p, int64_t rows, int64_t K, float* out, void* stream) {
  GX_LAUNCH(unpack_kernel<float>, dim3(grid_for(rows * K, kThreads)), dim3(kThreads), 0, stream, p, rows, K,
            out);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int gxnor_cuda_count_noncanonical(const int32_t* p, int64_t rows, int64_t K,
                                             unsigned long long* count, void* stream) {
  const dim3 grid(grid_for(rows * gxnor::packed_words(K), kThreads));
  GX_LAUNCH(noncanonical_kernel, grid, dim3(kThreads), 0, stream, p, rows, K, count);
  return static_cast<int>(cudaGetLastError());
}
