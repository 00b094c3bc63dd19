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
}  // namespace gxnor::cuda
