// CPU in-place DST update (torch-free): the kernel selector that picks the ISA path (AVX-512 with
// 16-lane Philox, AVX2 with 8 lanes, or the scalar code); every path gives the same bits.
#pragma once
#include <cstdint>

#include "dst_avx2.h"
#include "dst_avx512.h"
#include "dst_generic.h"

namespace gxnor::cpu {

// The packed DST kernel: plane words [t0, t1) of w (rows of K elements) updated in place from the
// float32 gradient; returns the number of non-finite increments.
using DstKernel = int64_t (*)(int32_t* w, const float* grad, int64_t K, int64_t t0, int64_t t1,
                              const DstParams& p);

// The packed DST kernel for an ISA: chosen once per call, not per chunk.
inline DstKernel select_dst_kernel(Isa isa) {
#if GXNOR_X86
  if (isa >= Isa::kAvx512) return dst_packed_words_avx512;
  if (isa == Isa::kAvx2) return dst_packed_words_avx2;
#endif
  (void)isa;
  return dst_packed_words_generic<float>;
}

}  // namespace gxnor::cpu
