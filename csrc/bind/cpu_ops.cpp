// CPU bindings of the pack ops (registered in cpu_registry.cpp) and the native info ops
// (gxnor_native::*: the ISA in use, the format constants). Schemas live in gxnor_cuda/_ops.py.
#include "cpu_ops.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <string>

#include "../gxnor/cpu/pack.h"
#include "../gxnor/cpu/pack_nchw.h"
#include "alloc.h"
#include "checks.h"

namespace gxnor::bind {
namespace {

constexpr int64_t kGrainWords = 4096;

// Strict packing saw `bad` elements outside {-1, 0, +1}: refuse (the output is fresh, nothing else written).
void check_pack_values(int64_t bad) {
  TORCH_CHECK(bad == 0, "x: expected values in {-1, 0, +1} (or pass threshold=), got ", bad,
              " element(s) outside that set");
}

// x is a channels-last view of an NCHW float32 tensor: (N, H, W, C) with strides (ldn, W, 1, HW), or
// (N, H, W, G, cg) with strides (ldn, W, 1, cg HW, HW) (what pack_conv_input passes). Sets HW.
bool nchw_view(const at::Tensor& x, int64_t& hw) {
  if (x.scalar_type() != at::kFloat || (x.dim() != 4 && x.dim() != 5) || x.numel() == 0) return false;
  const int64_t h = x.size(1), w = x.size(2), k = x.size(-1);
  hw = h * w;
  if (x.stride(-1) != hw || (w > 1 && x.stride(2) != 1) || (h > 1 && x.stride(1) != w) || x.is_contiguous())
    return false;
  return x.dim() == 4 || x.size(3) == 1 || x.stride(3) == k * hw;
}

// pack_impl for nchw_view inputs: the fused transpose-pack of pack_nchw.h.
at::Tensor pack_nchw(const at::Tensor& x, int64_t hw, cpu::PackMode mode, double thr) {
  const int64_t n = x.size(0), G = x.dim() == 5 ? x.size(3) : 1, cg = x.size(-1);
  at::Tensor out = at::empty(packed_shape(x), x.options().dtype(at::kInt));
  std::atomic<int64_t> bad{0};
  const bool avx512 = cpu::current_isa() >= cpu::Isa::kAvx512;
  const int64_t px = avx512 ? cpu::kNchwPixels : cpu::kNchwPixelsAvx2, blocks = (hw + px - 1) / px;
  const auto f = avx512 ? cpu::pack_nchw_range : cpu::pack_nchw_range_avx2;
  at::parallel_for(0, n * blocks, 16, [&](int64_t t0, int64_t t1) {
    bad += f(x.const_data_ptr<float>(), x.stride(0), hw, G, cg, out.data_ptr<int32_t>(), t0, t1, mode,
             static_cast<float>(thr));
  });
  check_pack_values(bad.load());
  return out;
}

at::Tensor pack_impl(const at::Tensor& x_in, cpu::PackMode mode, double thr) {
  if (mode == cpu::PackMode::kStrict) check_strict_float64(x_in);
  int64_t hw = 0;
  if (cpu::current_isa() >= cpu::Isa::kAvx2 && nchw_view(x_in, hw)) return pack_nchw(x_in, hw, mode, thr);
  at::Tensor x = x_in;
  const auto dt = x.scalar_type();
  if (dt != at::kFloat && dt != at::kChar) x = x.to(at::kFloat);
  x = x.contiguous();
  const int64_t K = x.size(-1);
  const int64_t rows = x.numel() / K;
  const int64_t W = packed_words(K);
  at::Tensor out = at::empty(packed_shape(x_in), x.options().dtype(at::kInt));
  std::atomic<int64_t> bad{0};
  const auto isa = cpu::current_isa();
  const auto pack_f = cpu::select_pack_kernel<float>(isa);
  const auto pack_i8 = cpu::select_pack_kernel<int8_t>(isa);
  int32_t* o = out.data_ptr<int32_t>();
  const float t = static_cast<float>(thr);
  at::parallel_for(0, rows * W, kGrainWords, [&](int64_t t0, int64_t t1) {
    bad += x.scalar_type() == at::kFloat ? pack_f(x.const_data_ptr<float>(), K, o, t0, t1, mode, t)
                                         : pack_i8(x.const_data_ptr<int8_t>(), K, o, t0, t1, mode, t);
  });
  check_pack_values(bad.load());
  return out;
}

}  // namespace

at::Tensor pack_ternary_cpu(const at::Tensor& x, std::optional<double> threshold) {
  check_device(x, "x", c10::DeviceType::CPU);
  check_pack_input(x, "x", threshold.has_value());
  if (threshold.has_value()) {
    check_threshold(*threshold);
    return pack_impl(x, cpu::PackMode::kThreshold, *threshold);
  }
  return pack_impl(x, cpu::PackMode::kStrict, 0.0);
}

at::Tensor quantize_pack_cpu(const at::Tensor& x, double threshold) {
  check_device(x, "x", c10::DeviceType::CPU);
  check_pack_input(x, "x", true);
  check_threshold(threshold);
  return pack_impl(x, cpu::PackMode::kThreshold, threshold);
}

at::Tensor unpack_ternary_cpu(const at::Tensor& packed_in, int64_t K, std::optional<at::ScalarType> dtype) {
  check_device(packed_in, "packed", c10::DeviceType::CPU);
  check_packed(packed_in, "packed", K);
  const auto dt = out_dtype(dtype);
  const at::Tensor p = packed_in.contiguous();
  const auto kdt = unpack_kernel_dtype(dt);
  at::Tensor out = empty_out(unpacked_shape(p, K), p.options().dtype(kdt));
  const int64_t W = packed_words(K);
  const int64_t rows = out.numel() / K;
  const auto isa = cpu::current_isa();
  at::parallel_for(0, rows * W, kGrainWords, [&](int64_t t0, int64_t t1) {
    if (kdt == at::kChar)
      cpu::unpack_range(p.const_data_ptr<int32_t>(), K, out.data_ptr<int8_t>(), t0, t1, isa);
    else
      cpu::unpack_range(p.const_data_ptr<int32_t>(), K, out.data_ptr<float>(), t0, t1, isa);
  });
  return dt == kdt ? out : out.to(dt);
}

at::Tensor count_noncanonical_cpu(const at::Tensor& packed_in, int64_t K) {
  check_device(packed_in, "packed", c10::DeviceType::CPU);
  check_packed(packed_in, "packed", K);
  const at::Tensor p = packed_in.contiguous();
  const int64_t W = packed_words(K);
  const int64_t rows = p.numel() / (2 * W);
  std::atomic<int64_t> bad{0};
  at::parallel_for(0, rows * W, kGrainWords, [&](int64_t t0, int64_t t1) {
    bad += cpu::count_noncanonical_range(p.const_data_ptr<int32_t>(), K, t0, t1);
  });
  return at::scalar_tensor(bad.load(), p.options().dtype(at::kLong));
}

namespace {

std::string cpu_isa() { return cpu::isa_name(cpu::current_isa()); }
std::string detected_cpu_isa() { return cpu::isa_name(cpu::detect_isa()); }
std::string set_cpu_isa(std::string name) {
  TORCH_CHECK(name == "amx" || name == "amx_int8" || name == "avx512" || name == "avx512_vpopcntdq" ||
                  name == "avx2" || name == "scalar",
              "isa: expected 'amx', 'avx512', 'avx2' or 'scalar', got '", name, "'");
  return cpu::isa_name(cpu::set_isa(cpu::parse_isa(name.c_str(), cpu::Isa::kScalar)));
}
std::vector<int64_t> format_constants() {
  return {kFormatVersion, kBitsPerWord, kPadElems, kGatePlane, kSignPlane};
}

}  // namespace
}  // namespace gxnor::bind

TORCH_LIBRARY(gxnor_native, m) {
  m.def("cpu_isa() -> str", &gxnor::bind::cpu_isa);
  m.def("detected_cpu_isa() -> str", &gxnor::bind::detected_cpu_isa);
  m.def("set_cpu_isa(str isa) -> str", &gxnor::bind::set_cpu_isa);
  m.def("format_constants() -> int[]", &gxnor::bind::format_constants);
}
