// Large CPU outputs on 2 MiB pages. A fresh (N, O, Ho, Wo) conv output or a 4096^2 GEMM result is
// tens of MB that the kernel then writes once; with 4 KiB pages every call takes one page fault per
// 4 KiB (about a quarter of xnor_conv2d's time on CIFAR 128->128 at 32x32, measured with perf).
// Before the first touch, the 2 MiB-aligned interior of such an allocation is advised
// MADV_HUGEPAGE (what torch does for all its CPU allocations when THP_MEM_ALLOC_ENABLE=1), so the
// kernel faults it in 2 MiB at a time where transparent huge pages are enabled ("always" or
// "madvise"); elsewhere the advice is a no-op. Contents and results are unchanged.
#pragma once
#include <ATen/ATen.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <cstdint>

namespace gxnor::bind {

inline constexpr int64_t kHugePageBytes = int64_t(2) << 20;
inline constexpr int64_t kHugeAdviseMinBytes = int64_t(4) << 20;

inline void advise_huge(void* p, int64_t nbytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (nbytes < kHugeAdviseMinBytes) return;
  const auto lo = (reinterpret_cast<uintptr_t>(p) + kHugePageBytes - 1) & ~uintptr_t(kHugePageBytes - 1);
  const auto hi = (reinterpret_cast<uintptr_t>(p) + nbytes) & ~uintptr_t(kHugePageBytes - 1);
  if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // advice only
#else
  (void)p, (void)nbytes;
#endif
}

// at::empty, with large CPU tensors advised onto huge pages before anything touches them.
inline at::Tensor empty_out(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  at::Tensor t = at::empty(sizes, opts);
  if (t.device().is_cpu()) advise_huge(t.data_ptr(), static_cast<int64_t>(t.nbytes()));
  return t;
}

}  // namespace gxnor::bind
