// The one place that chooses the CPU kernel of the xnor conv / GEMM family (xnor_gemm, xnor_conv2d,
// xnor_conv2d_pack) from the ISA in effect and the problem size: every binding asks here, then runs
// that kernel's driver. A GEMM is the 1x1 convolution of M one-pixel images with N output channels.
#pragma once
#include <cstdint>

#include "../gxnor/cpu/isa.h"

namespace gxnor::bind {

enum class XnorKernel {
  kLanes,     // AVX-512 VPOPCNTDQ without AMX: output channels in the vector lanes (lanes_driver.h)
  kLut,       // AVX2: vpshufb table lookups over channel pairs (lut_driver.h)
  kAmx,       // AMX-INT8 tiles on rows of unpacked int8 values (gemm_driver.h)
  kPopcount,  // gated-XNOR popcount micro-kernels of the ISA (gemm_driver.h)
};

constexpr int64_t kAmxMinWork = int64_t(1) << 24;  // M*N*K below this: the tile set-up does not pay off

// rows: output rows (GEMM M, conv N*Ho*Wo), cols: outputs per row (N or O), words: packed words per
// row of the reduction (W, or kh*kw*Wg for a conv).
inline XnorKernel select_xnor_kernel(int64_t rows, int64_t cols, int64_t words) {
  switch (cpu::current_isa()) {
    case cpu::Isa::kAvx512:
      return XnorKernel::kLanes;
    case cpu::Isa::kAvx2:
      return XnorKernel::kLut;
    case cpu::Isa::kAmx:
      return rows * cols * 32 * words >= kAmxMinWork ? XnorKernel::kAmx : XnorKernel::kPopcount;
    default:
      return XnorKernel::kPopcount;
  }
}

}  // namespace gxnor::bind
