// Large CPU outputs: on 2 MiB pages, and kept mapped between calls. A fresh (N, O, Ho, Wo) conv
// output or a 4096^2 GEMM result is tens of MB that the kernel then writes once; with 4 KiB pages
// every call takes one page fault per 4 KiB (about a quarter of xnor_conv2d's time on the widest
// CIFAR layer, seen with perf). Such an allocation is advised MADV_HUGEPAGE before the
// first touch (what torch does for all its CPU allocations when THP_MEM_ALLOC_ENABLE=1), so the
// kernel faults it in 2 MiB at a time where transparent huge pages are enabled ("always" or
// "madvise"; elsewhere the advice is a no-op). Even so, faulting in and zeroing fresh pages costs
// several times writing the same bytes again, so freed outputs go
// back to a small pool (OutputPool: at most kPoolBuffers buffers, kPoolBytes in all) and the next
// output of about the same size reuses one, already mapped, as torch's CUDA caching allocator does.
// Contents and results are unchanged: every output byte is written by the op.
#pragma once
#include <ATen/ATen.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

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

inline constexpr int64_t kPoolBuffers = 8;
inline constexpr int64_t kPoolBytes = int64_t(512) << 20;

// Freed large outputs (2 MiB-aligned, whole 2 MiB pages), reused by size: a buffer serves a request
// of at least 3/4 of its size. Thread-safe (tensors are freed on any thread).
class OutputPool {
 public:
  struct Buffer {
    void* p;
    int64_t bytes;
  };

  static OutputPool& get() {
    static auto* pool = new OutputPool();  // never destroyed: tensors may be freed at exit
    return *pool;
  }

  // A buffer of at least n bytes: a pooled one, or fresh (advised onto huge pages).
  Buffer take(int64_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      int best = -1;
      for (int i = 0; i < static_cast<int>(free_.size()); ++i)
        if (free_[i].bytes >= n && free_[i].bytes / 4 * 3 <= n &&
            (best < 0 || free_[i].bytes < free_[best].bytes))
          best = i;
      if (best >= 0) {
        const Buffer b = free_[best];
        free_.erase(free_.begin() + best);
        held_ -= b.bytes;
        return b;
      }
    }
    const int64_t bytes = (n + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    void* p = std::aligned_alloc(kHugePageBytes, static_cast<size_t>(bytes));
    if (!p) throw std::bad_alloc();
    advise_huge(p, bytes);
    return {p, bytes};
  }

  // Returns b to the pool, or frees it when the pool is full.
  void give(Buffer b) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (static_cast<int64_t>(free_.size()) < kPoolBuffers && held_ + b.bytes <= kPoolBytes) {
        free_.push_back(b);
        held_ += b.bytes;
        return;
      }
    }
    std::free(b.p);
  }

 private:
  std::mutex mu_;
  std::vector<Buffer> free_;
  int64_t held_ = 0;
};

// at::empty; a CPU tensor of kHugeAdviseMinBytes or more comes from the OutputPool (on huge pages,
// possibly reused, contents undefined like at::empty's).
inline at::Tensor empty_out(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  if (opts.device().is_cpu()) {
    const int64_t n =
        c10::multiply_integers(sizes) * static_cast<int64_t>(c10::elementSize(opts.dtype().toScalarType()));
    if (n >= kHugeAdviseMinBytes) {
      const OutputPool::Buffer b = OutputPool::get().take(n);
      return at::from_blob(b.p, sizes, [b](void*) { OutputPool::get().give(b); }, opts);
    }
  }
  return at::empty(sizes, opts);
}

// Whether t is channels-last and not also contiguous (the ops keep such an input's layout).
inline bool channels_last_only(const at::Tensor& t) {
  return t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast) && !t.is_contiguous();
}

// An empty tensor of `shape` in like's memory format (channels-last or contiguous), as the fake and
// reference implementations make it (_ops.pool_out).
inline at::Tensor empty_in_format_of(const at::Tensor& like, at::IntArrayRef shape, at::ScalarType dtype) {
  return at::empty(shape, like.options().dtype(dtype).memory_format(channels_last_only(like)
                                                                        ? at::MemoryFormat::ChannelsLast
                                                                        : at::MemoryFormat::Contiguous));
}

}  // namespace gxnor::bind
