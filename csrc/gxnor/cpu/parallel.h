// The CPU drivers' only link to a thread pool, so that they stay torch-free: the extension routes
// it to at::parallel_for (csrc/bind/cpu_threads.cpp), the C++ tests to std::thread workers
// (csrc/tests/threads.h), and both run the very same drivers. Unset, loops run on the caller.
// Also the one task scheduler of the drivers and their kept per-thread buffers.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace gxnor::cpu {

using RangeBody = std::function<void(int64_t, int64_t)>;

struct ThreadPool {
  // Calls body on chunks [b, e) covering [begin, end), chunks of at least `grain` where possible,
  // possibly concurrently; returns when every chunk is done.
  void (*parallel_for)(int64_t begin, int64_t end, int64_t grain, const RangeBody& body) = nullptr;
  int (*num_threads)() = nullptr;
};

inline ThreadPool& thread_pool() {
  static ThreadPool pool;
  return pool;
}

inline void parallel_for(int64_t begin, int64_t end, int64_t grain, const RangeBody& body) {
  if (begin >= end) return;
  if (const auto f = thread_pool().parallel_for) return f(begin, end, grain, body);
  body(begin, end);
}

inline int num_threads() {
  const auto f = thread_pool().num_threads;
  return f ? f() : 1;
}

// The scheduler: tasks [0, tasks) handed out one at a time through an atomic counter to at most
// num_threads() workers (on a shared machine one thread can run slower for a while, and a static
// split then leaves the other idle). worker(next) runs once per worker; `next(t)` gives it its
// next task in t, false when none is left. Workers that need set-up (AMX tile configuration, a
// scratch buffer) do it once around their loop.
class TaskQueue {
 public:
  explicit TaskQueue(int64_t tasks) : tasks_(tasks) {}
  bool operator()(int64_t& t) {
    t = next_++;
    return t < tasks_;
  }

 private:
  int64_t tasks_;
  std::atomic<int64_t> next_{0};
};

template <class Worker>
void run_tasks(int64_t tasks, Worker&& worker) {
  if (tasks <= 0) return;
  TaskQueue next(tasks);
  const int64_t workers = std::min<int64_t>(tasks, num_threads());
  parallel_for(0, workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) worker(next);
  });
}

// A per-thread scratch of at least n elements, kept between calls: the drivers' L2-sized buffers
// would otherwise be fresh mmap'd pages, faulted in on every call. kTag keeps the workers'
// per-task buffers (0) apart from the calling thread's per-call operands (1, through CallBuffer),
// since the calling thread is also a worker of the parallel loops.
template <class T, int kTag = 0>
inline T* thread_scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
  return buf.data();
}

// A per-call operand buffer (unpacked weights) of n uninitialized elements: up to kKeepBytes the
// calling thread's kept scratch (no page faults, no zero fill, which costs most at batch 1), above
// it owned by this object. At most one live CallBuffer per element type, tag (>= 1) and thread.
template <class T, int kTag = 1>
class CallBuffer {
 public:
  static constexpr int64_t kKeepBytes = int64_t(32) << 20;
  explicit CallBuffer(int64_t n) {
    if (n * static_cast<int64_t>(sizeof(T)) <= kKeepBytes) {
      p_ = thread_scratch<T, kTag>(n);
    } else {
      own_.reset(new T[n]);
      p_ = own_.get();
    }
  }
  T* data() const { return p_; }

 private:
  std::unique_ptr<T[]> own_;
  T* p_ = nullptr;
};

}  // namespace gxnor::cpu
