// The CPU registration table of the gxnor ops: op name -> implementation (declared in cpu_ops.h).
// The CUDA table is in cuda_ops.cpp, the Python backends' in gxnor_cuda/_registry.py.
#include <torch/library.h>

#include "cpu_ops.h"

TORCH_LIBRARY_IMPL(gxnor, CPU, m) {
  m.impl("pack_ternary", &gxnor::bind::pack_ternary_cpu);
  m.impl("quantize_pack", &gxnor::bind::quantize_pack_cpu);
  m.impl("unpack_ternary", &gxnor::bind::unpack_ternary_cpu);
  m.impl("count_noncanonical", &gxnor::bind::count_noncanonical_cpu);
  m.impl("xnor_gemm", &gxnor::bind::xnor_gemm_cpu);
  m.impl("ternary_matmul", &gxnor::bind::ternary_matmul_cpu);
  m.impl("xnor_conv2d", &gxnor::bind::xnor_conv2d_cpu);
  m.impl("xnor_conv2d_pack", &gxnor::bind::xnor_conv2d_pack_cpu);
  m.impl("xnor_conv2d_maxpool2x2", &gxnor::bind::xnor_conv2d_maxpool2x2_cpu);
  m.impl("xnor_conv2d_weight_grad", &gxnor::bind::xnor_conv2d_weight_grad_cpu);
  m.impl("dst_update_", &gxnor::bind::dst_update_cpu);
  m.impl("dst_update_states_", &gxnor::bind::dst_update_states_cpu);
  m.impl("maxpool2x2", &gxnor::bind::maxpool2x2_cpu);
  m.impl("maxpool2x2_backward", &gxnor::bind::maxpool2x2_backward_cpu);
  m.impl("conv2d_maxpool2x2", &gxnor::bind::conv2d_maxpool2x2_cpu);
  m.impl("conv2d_maxpool2x2_weight_grad", &gxnor::bind::conv2d_maxpool2x2_weight_grad_cpu);
  m.impl("accumulator_stats", &gxnor::bind::accumulator_stats_cpu);
}
