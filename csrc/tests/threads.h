// The C++ tests' thread pool for the CPU drivers (cpu/parallel.h): each parallel_for splits its
// range into up to kThreads chunks, one std::thread each, so the drivers' scheduler, per-thread
// scratch and concurrent output writes run as in the extension (and under ASan + UBSan).
#pragma once
#include <algorithm>
#include <thread>
#include <vector>

#include "../gxnor/cpu/parallel.h"

namespace gxnor::test {

constexpr int kThreads = 3;

inline void threads_parallel_for(int64_t begin, int64_t end, int64_t grain, const cpu::RangeBody& body) {
  const int64_t n = end - begin, chunks = std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 1, kThreads);
  const int64_t per = (n + chunks - 1) / chunks;
  std::vector<std::thread> ts;
  for (int64_t c = 1; c < chunks; ++c) {
    const int64_t b = begin + c * per, e = std::min(end, b + per);
    if (b < e) ts.emplace_back([&body, b, e] { body(b, e); });
  }
  body(begin, std::min(end, begin + per));
  for (auto& t : ts) t.join();
}

// Sets the pool for the test's lifetime.
inline void use_threads() {
  cpu::thread_pool() = {threads_parallel_for, [] { return kThreads; }};
}

}  // namespace gxnor::test
