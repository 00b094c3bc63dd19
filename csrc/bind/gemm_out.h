// The xnor kernels' epilogue (cpu::GemmOut) over an output tensor, for the CPU bindings.
#pragma once
#include <ATen/ATen.h>

#include "../gxnor/cpu/gemm.h"

namespace gxnor::bind {

// Epilogue writing into `out` (int32, or float32 with the optional contiguous scale / bias), rows ldc apart.
inline cpu::GemmOut make_gemm_out(at::Tensor& out, const at::Tensor& sc, const at::Tensor& bi, int64_t ldc) {
  cpu::GemmOut o;
  o.ldc = ldc;
  if (out.scalar_type() == at::kFloat) {
    o.c_float = out.data_ptr<float>();
    o.scale = sc.defined() ? sc.const_data_ptr<float>() : nullptr;
    o.bias = bi.defined() ? bi.const_data_ptr<float>() : nullptr;
  } else {
    o.c_int = out.data_ptr<int32_t>();
  }
  return o;
}

}  // namespace gxnor::bind
