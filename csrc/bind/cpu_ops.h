// The CPU implementations of the gxnor ops, registered in one table (cpu_registry.cpp). Each checks
// its arguments, allocates the output and runs the kernels of csrc/gxnor/cpu chosen for the machine's ISA.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace gxnor::bind {

// defined in cpu_ops.cpp
at::Tensor pack_ternary_cpu(const at::Tensor& x, std::optional<double> threshold);
at::Tensor quantize_pack_cpu(const at::Tensor& x, double threshold);
at::Tensor unpack_ternary_cpu(const at::Tensor& packed_in, int64_t K, std::optional<at::ScalarType> dtype);
at::Tensor count_noncanonical_cpu(const at::Tensor& packed_in, int64_t K);

// defined in cpu_gemm.cpp
at::Tensor xnor_gemm_cpu(const at::Tensor& a_in, const at::Tensor& b_in, int64_t K,
                         const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias);
at::Tensor ternary_matmul_cpu(const at::Tensor& x, const at::Tensor& w, int64_t K, bool nn);

// defined in cpu_conv.cpp
at::Tensor xnor_conv2d_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias);
at::Tensor xnor_conv2d_pack_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, double threshold,
                                at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                int64_t groups, const std::optional<at::Tensor>& scale,
                                const std::optional<at::Tensor>& bias);
std::tuple<at::Tensor, at::Tensor> xnor_conv2d_maxpool2x2_cpu(const at::Tensor& x_in, const at::Tensor& w_in,
                                                              int64_t C, at::IntArrayRef stride,
                                                              at::IntArrayRef padding,
                                                              at::IntArrayRef dilation, int64_t groups);

// defined in cpu_wgrad.cpp
at::Tensor xnor_conv2d_weight_grad_cpu(const at::Tensor& grad_out, const at::Tensor& x_in,
                                       const at::Tensor& w, int64_t C, at::IntArrayRef stride,
                                       at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);

// defined in cpu_dst.cpp
at::Tensor dst_update_cpu(at::Tensor& w, const at::Tensor& grad_in, double lr, double m, int64_t seed,
                          int64_t offset, bool increment, int64_t rng, bool check);
at::Tensor dst_update_states_cpu(at::Tensor& s, const at::Tensor& grad_in, double lr, double m,
                                 int64_t n_states, int64_t seed, int64_t offset, bool increment, int64_t rng,
                                 bool check);

// defined in cpu_pool.cpp
std::tuple<at::Tensor, at::Tensor> maxpool2x2_cpu(const at::Tensor& x);
at::Tensor maxpool2x2_backward_cpu(const at::Tensor& grad, const at::Tensor& argmax, int64_t H, int64_t W);

// defined in cpu_conv_pool.cpp
std::tuple<at::Tensor, at::Tensor> conv2d_maxpool2x2_cpu(const at::Tensor& x, const at::Tensor& w,
                                                         at::IntArrayRef stride, at::IntArrayRef padding,
                                                         at::IntArrayRef dilation);
at::Tensor conv2d_maxpool2x2_weight_grad_cpu(const at::Tensor& grad, const at::Tensor& argmax,
                                             const at::Tensor& x, at::IntArrayRef kernel_size,
                                             at::IntArrayRef stride, at::IntArrayRef padding,
                                             at::IntArrayRef dilation);

// defined in cpu_stats.cpp
std::tuple<at::Tensor, at::Tensor> accumulator_stats_cpu(const at::Tensor& x);

}  // namespace gxnor::bind
