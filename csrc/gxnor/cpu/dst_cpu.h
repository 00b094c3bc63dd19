// CPU in-place DST update (torch-free): one entry per op that picks the ISA path (AVX-512 with
// 16-lane Philox, AVX2 with 8 lanes, or the scalar code); every path gives the same bits.
#pragma once
#include <cstdint>

#include "dst_avx2.h"
#include "dst_avx512.h"
#include "dst_generic.h"

namespace gxnor::cpu {

template <class G>
inline int64_t dst_packed_words(int32_t* w, const G* grad, int64_t K, int64_t t0, int64_t t1,
                                const DstParams& p, Isa isa) {
#if GXNOR_X86
  if (isa >= Isa::kAvx512) return dst_packed_words_avx512(w, grad, K, t0, t1, p);
  if (isa == Isa::kAvx2) return dst_packed_words_avx2(w, grad, K, t0, t1, p);
#endif
  (void)isa;
  return dst_packed_words_generic(w, grad, K, t0, t1, p);
}

}  // namespace gxnor::cpu
