// Routes the torch-free CPU drivers' thread pool (cpu/parallel.h) to ATen's, at load time, so
// that torch.set_num_threads and ATen's nesting rule (no nested parallel regions) apply to them.
#include <ATen/Parallel.h>

#include "../gxnor/cpu/parallel.h"

namespace gxnor::bind {
namespace {

void aten_parallel_for(int64_t begin, int64_t end, int64_t grain, const cpu::RangeBody& body) {
  at::parallel_for(begin, end, grain, body);
}

int aten_num_threads() { return at::get_num_threads(); }

const bool kPoolSet = [] {
  cpu::thread_pool() = {aten_parallel_for, aten_num_threads};
  return true;
}();

}  // namespace
}  // namespace gxnor::bind
