// CPU binding of accumulator_stats (the kernel of csrc/gxnor/cpu/stats.h).
#include <ATen/ATen.h>

#include <tuple>

#include "../gxnor/cpu/stats.h"
#include "alloc.h"
#include "checks.h"
#include "cpu_ops.h"

namespace gxnor::bind {

std::tuple<at::Tensor, at::Tensor> accumulator_stats_cpu(const at::Tensor& x_in) {
  check_device(x_in, "x", c10::DeviceType::CPU);
  TORCH_CHECK(x_in.scalar_type() == at::kFloat, "x: expected dtype torch.float32, got ", x_in.scalar_type());
  TORCH_CHECK(x_in.dim() == 2 || x_in.dim() == 4, "x: expected shape (N, C) or (N, C, H, W), got ",
              x_in.sizes());
  const bool keep_cl = channels_last_only(x_in);
  const at::Tensor x =
      x_in.contiguous(keep_cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  at::Tensor q = empty_in_format_of(x_in, x_in.sizes(), at::kShort);
  const bool cl = keep_cl || x.dim() == 2;  // (N, C): rows of C channels
  const int64_t c = x.size(1);
  at::Tensor sums = at::empty({2, c}, x.options().dtype(at::kLong));
  const cpu::StatsShape sh{x.size(0), c, x.dim() == 4 ? x.size(2) * x.size(3) : 1, cl};
  if (x.numel() == 0) return {q, sums.zero_()};
  const float* xp = x.const_data_ptr<float>();
  const int64_t bad = cpu::accumulator_stats(cpu::select_stats_kernel(cpu::current_isa()), xp,
                                             q.data_ptr<int16_t>(), sums.data_ptr<int64_t>(), sh);
  if (bad >= 0) {
    const float* line = xp + bad * cpu::line_length(sh);
    int64_t k = 0;
    int16_t qk;
    int32_t ik;
    while (k + 1 < cpu::line_length(sh) && !cpu::to_i16(line[k], qk, ik)) ++k;
    TORCH_CHECK(false, "x: expected integer values in [-32768, 32767] (a ternary layer's accumulators), got ",
                line[k]);
  }
  return {q, sums};
}

}  // namespace gxnor::bind
