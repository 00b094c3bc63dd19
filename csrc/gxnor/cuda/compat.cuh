// One include for every gxnor CUDA kernel source: the real CUDA runtime under nvcc, the host
// emulation (csrc/gxnor/emu/cuda_emu.h) otherwise. GX_LAUNCH hides the <<<>>> syntax.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_runtime.h>
#define GX_LAUNCH(kernel, grid, block, smem, stream, ...) \
  kernel<<<grid, block, smem, static_cast<cudaStream_t>(stream)>>>(__VA_ARGS__)
#define GX_EMULATED 0
#else
#include "../emu/cuda_emu.h"
#define GX_EMULATED 1
#endif

#include "../format.h"  // GXNOR_HD

#ifdef __CUDACC__
// One int8 tensor-core MMA of the calling warp, acc += A B (m16n8k32, the PTX ISA's fragment
// layouts; the host emulation implements the same in cuda_emu.h). sm_80 and newer.
__device__ __forceinline__ void gx_mma_m16n8k32_s8(int (&acc)[4], const uint32_t (&a)[4],
                                                   const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(acc[0]), "+r"(acc[1]), "+r"(acc[2]), "+r"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // the binding launches tensor-core kernels on sm_80 and newer only
#endif
}

// One binary tensor-core MMA of the calling warp, acc += popc(A & B) (m16n8k256 .b1 .and.popc, the
// PTX ISA's fragment layouts; emulated in cuda_emu.h). sm_80 and newer.
__device__ __forceinline__ void gx_mma_m16n8k256_and_popc(int (&acc)[4], const uint32_t (&a)[4],
                                                          const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, "
      "%9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(acc[0]), "+r"(acc[1]), "+r"(acc[2]), "+r"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}

// One bf16 tensor-core MMA of the calling warp, acc += A B in fp32 (m16n8k16, the PTX ISA's
// fragment layouts; emulated in cuda_emu.h). sm_80 and newer.
__device__ __forceinline__ void gx_mma_m16n8k16_bf16(float (&acc)[4], const uint32_t (&a)[4],
                                                     const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}

// ldmatrix.x4 (four 8 x 8 matrices of 16-bit elements): lane l gives the shared-memory address of
// row l % 8 of matrix l / 8 (16 bytes); r[i] receives matrix i's row lane / 4, elements 2 (lane % 4)
// and 2 (lane % 4) + 1. sm_75 and newer.
__device__ __forceinline__ void gx_ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#else
  __trap();
#endif
}

// cp.async of 16 bytes global -> shared, bypassing the registers; the bytes past src_bytes (0 or
// 16 here) are zero-filled. Groups: commit closes one, wait<n> waits until at most n are in flight.
__device__ __forceinline__ void gx_cp_async16(void* dst, const void* src, int src_bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src), "r"(src_bytes));
#else
  __trap();
#endif
}
__device__ __forceinline__ void gx_cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N>
__device__ __forceinline__ void gx_cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}
#endif

#define GX_FULL_MASK 0xffffffffu

namespace gxnor::cuda {
GXNOR_HD inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Grid size for a grid-stride loop over n items with `per_block` items per block.
inline unsigned grid_for(int64_t n, int64_t per_block, int64_t cap = 65535) {
  const int64_t g = ceil_div(n, per_block);
  return static_cast<unsigned>(g < 1 ? 1 : (g > cap ? cap : g));
}

// Tile grids put the row tiles (M = batch rows or N * Ho * Wo, unbounded) in x, which allows
// 2^31 - 1 blocks; column tiles and groups go in y and z, which stop at 65535. Returns a zero grid
// (refuse the launch) past those limits.
inline dim3 tile_grid(int64_t row_tiles, int64_t col_tiles, int64_t groups) {
  if (row_tiles > 2147483647 || col_tiles > 65535 || groups > 65535) return dim3(0, 0, 0);
  return dim3(static_cast<unsigned>(row_tiles), static_cast<unsigned>(col_tiles),
              static_cast<unsigned>(groups));
}

// Launches kernel(args...) with `block` threads on tile_grid(row_tiles, col_tiles, groups): the
// launch's cudaError_t, or cudaErrorInvalidConfiguration (9) past the grid limits, nothing launched.
template <class Kernel, class... Args>
inline int launch_tiles(Kernel kernel, int64_t row_tiles, int64_t col_tiles, int64_t groups, dim3 block,
                        void* stream, Args... args) {
  const dim3 grid = tile_grid(row_tiles, col_tiles, groups);
  if (grid.x == 0) return 9;
  GX_LAUNCH(kernel, grid, block, 0, stream, args...);
  return static_cast<int>(cudaGetLastError());
}
}  // namespace gxnor::cuda
