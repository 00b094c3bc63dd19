// CUDA bindings: checks arguments, allocates outputs and calls the torch-free kernels of
// csrc/gxnor/cuda through their C API on the current stream; TORCH_LIBRARY_IMPL(gxnor, CUDA).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <string>

#include "../gxnor/cuda/api.h"
#include "checks.h"
#include "conv_checks.h"
#include "dst_checks.h"

namespace gxnor::bind {
namespace {

void check_cuda(int err, const char* what) {
  TORCH_CHECK(err == 0, what, ": CUDA error ", err, " (", cudaGetErrorString(static_cast<cudaError_t>(err)),
              ")");
}

void* stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

at::Tensor pack_cuda(const at::Tensor& x_in, int mode, double thr) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  if (mode == 0) check_strict_float64(x_in);
  at::Tensor x = x_in;
  if (x.scalar_type() != at::kFloat && !(mode == 0 && x.scalar_type() == at::kChar)) x = x.to(at::kFloat);
  x = x.contiguous();
  const int64_t K = x.size(-1), rows = x.numel() / K;
  at::Tensor out = at::empty(packed_shape(x_in), x.options().dtype(at::kInt));
  at::Tensor bad = at::zeros({}, x.options().dtype(at::kLong));
  if (rows == 0) return out;
  auto* badp = reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>());
  if (x.scalar_type() == at::kChar)
    check_cuda(
        gxnor_cuda_pack_i8(x.const_data_ptr<int8_t>(), rows, K, out.data_ptr<int32_t>(), badp, stream()),
        "pack_ternary");
  else
    check_cuda(gxnor_cuda_pack_f32(x.const_data_ptr<float>(), rows, K, mode, static_cast<float>(thr),
                                   out.data_ptr<int32_t>(), badp, stream()),
               "pack_ternary");
  if (mode == 0) {
    const int64_t nbad = bad.item<int64_t>();
    TORCH_CHECK(nbad == 0, "x: expected values in {-1, 0, +1} (or pass threshold=), got ", nbad,
                " element(s) outside that set");
  }
  return out;
}

at::Tensor pack_ternary_cuda(const at::Tensor& x, std::optional<double> threshold) {
  check_device(x, "x", c10::DeviceType::CUDA);
  check_pack_input(x, "x", threshold.has_value());
  if (threshold.has_value()) {
    check_threshold(*threshold);
    return pack_cuda(x, 1, *threshold);
  }
  return pack_cuda(x, 0, 0.0);
}

at::Tensor quantize_pack_cuda(const at::Tensor& x, double threshold) {
  check_device(x, "x", c10::DeviceType::CUDA);
  check_pack_input(x, "x", true);
  check_threshold(threshold);
  return pack_cuda(x, 1, threshold);
}

at::Tensor unpack_ternary_cuda(const at::Tensor& packed_in, int64_t K, std::optional<at::ScalarType> dtype) {
  check_device(packed_in, "packed", c10::DeviceType::CUDA);
  check_packed(packed_in, "packed", K);
  const c10::cuda::CUDAGuard guard(packed_in.device());
  const auto dt = out_dtype(dtype);
  const at::Tensor p = packed_in.contiguous();
  const auto kdt = unpack_kernel_dtype(dt);
  at::Tensor out = at::empty(unpacked_shape(p, K), p.options().dtype(kdt));
  const int64_t rows = out.numel() / K;
  if (rows == 0) return out.to(dt);
  if (kdt == at::kChar)
    check_cuda(gxnor_cuda_unpack_i8(p.const_data_ptr<int32_t>(), rows, K, out.data_ptr<int8_t>(), stream()),
               "unpack_ternary");
  else
    check_cuda(gxnor_cuda_unpack_f32(p.const_data_ptr<int32_t>(), rows, K, out.data_ptr<float>(), stream()),
               "unpack_ternary");
  return dt == kdt ? out : out.to(dt);
}

at::Tensor count_noncanonical_cuda(const at::Tensor& packed_in, int64_t K) {
  check_device(packed_in, "packed", c10::DeviceType::CUDA);
  check_packed(packed_in, "packed", K);
  const c10::cuda::CUDAGuard guard(packed_in.device());
  const at::Tensor p = packed_in.contiguous();
  at::Tensor count = at::zeros({}, p.options().dtype(at::kLong));
  const int64_t rows = p.numel() / (2 * packed_words(K));
  if (rows == 0) return count;
  check_cuda(gxnor_cuda_count_noncanonical(p.const_data_ptr<int32_t>(), rows, K,
                                           reinterpret_cast<unsigned long long*>(count.data_ptr<int64_t>()),
                                           stream()),
             "count_noncanonical");
  return count;
}

// Words per row of the tensor-core layout tc16 for K values (gxnor_cuda/_triton/tc.py: tc_words).
int64_t tc16_words(int64_t K) { return 8 * ((K + 127) / 128); }

// Words per row of the bf16 tensor-core layout tb16 for rows of R values: whole 64-value K steps of
// bf16_gemm.cu (gxnor_cuda/reference.py: bf16_layout_words).
int64_t tb16_words(int64_t R) { return 4 * ((R + 63) / 64); }

// Format v1 rows p (rows, 2, W) in the tc16 layout (rows + zero_rows, T), the extra rows zero (a
// conv's padding taps read one).
at::Tensor tc16_rows(const int32_t* p, int64_t rows, int64_t W, int64_t T, int64_t zero_rows,
                     const at::TensorOptions& options, const char* what) {
  at::Tensor out = at::empty({rows + zero_rows, T}, options);
  if (zero_rows) out.narrow(0, rows, zero_rows).zero_();
  check_cuda(gxnor_cuda_to_tc16(p, rows, W, T, out.data_ptr<int32_t>(), stream()), what);
  return out;
}

// The tensor-core condition of gxnor_cuda.functional.gpu_gemm_method ("tc" / "b1"), for the native
// CUDA op: B fills the 128-column tile's columns and K amortises the layout pass; 4096 K fits int32.
// On sm_8x the op takes the binary tensor cores, on sm_90 and newer int8 ones.
bool gemm_uses_tc(int64_t N, int64_t K) { return N >= 64 && K >= 256 && K < (int64_t(1) << 19); }

// gxnor_cuda.functional.gpu_conv_method's "tc" condition, for the native CUDA conv (sm_80 and newer):
// a group's output channels fill half the 128-column tile and its input channels half a K step.
bool conv_uses_tc(int64_t C, int64_t O, int64_t taps, int64_t groups) {
  const int64_t cg = C / groups, og = O / groups;
  return og >= 64 && cg >= 64 && taps * cg < (int64_t(1) << 19);
}

// gxnor_cuda.functional.bf16_tensor_core_shape, for the native ternary_matmul (sm_80 and newer, bf16
// x): x's rows of R values are whole 16-byte cp.async chunks, the P output columns fit grid y.
bool bf16_uses_tc(int64_t R, int64_t P) { return R % 8 == 0 && (P + 127) / 128 <= 65535; }

at::Tensor xnor_gemm_cuda(const at::Tensor& a_in, const at::Tensor& b_in, int64_t K,
                          const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  check_device(a_in, "a", c10::DeviceType::CUDA);
  check_gemm(a_in, b_in, K, scale, bias);
  const int64_t M = a_in.size(0), N = b_in.size(0), W = a_in.size(2);
  TORCH_CHECK((N + 63) / 64 <= 65535,
              "b: expected at most 65535 * 64 rows on the CUDA backend (grid y), got ", N,
              "; the Triton backend takes any N");
  const c10::cuda::CUDAGuard guard(a_in.device());
  const bool fl = scale.has_value() || bias.has_value();
  at::Tensor out = at::empty({M, N}, a_in.options().dtype(fl ? at::kFloat : at::kInt));
  if (M == 0 || N == 0) return out;
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor sc = scale ? scale->contiguous() : at::Tensor(),
                   bi = bias ? bias->contiguous() : at::Tensor();
  const float* scp = sc.defined() ? sc.const_data_ptr<float>() : nullptr;
  const float* bip = bi.defined() ? bi.const_data_ptr<float>() : nullptr;
  int32_t* c_int = fl ? nullptr : out.data_ptr<int32_t>();
  float* c_float = fl ? out.data_ptr<float>() : nullptr;
  const int major = at::cuda::getDeviceProperties(a_in.device().index())->major;
  if (gemm_uses_tc(N, K) && major == 8) {
    // binary tensor cores (b1_gemm.cu) on the format v1 bit planes: no layout pass
    check_cuda(gxnor_cuda_xnor_gemm_b1(a.const_data_ptr<int32_t>(), b.const_data_ptr<int32_t>(), M, N, W, scp,
                                       bip, c_int, c_float, stream()),
               "xnor_gemm (binary tensor cores)");
  } else if (gemm_uses_tc(N, K) && major >= 9) {
    // int8 tensor cores (tc_gemm.cu): both operands to the tc16 layout, one memory-bound pass each
    const int64_t T = tc16_words(K);
    const at::Tensor ta = tc16_rows(a.const_data_ptr<int32_t>(), M, W, T, 0, a.options(), "xnor_gemm (a)"),
                     tb = tc16_rows(b.const_data_ptr<int32_t>(), N, W, T, 0, b.options(), "xnor_gemm (b)");
    check_cuda(gxnor_cuda_xnor_gemm_tc(ta.const_data_ptr<int32_t>(), tb.const_data_ptr<int32_t>(), M, N, T,
                                       scp, bip, c_int, c_float, stream()),
               "xnor_gemm (tensor cores)");
  } else {
    check_cuda(gxnor_cuda_xnor_gemm(a.const_data_ptr<int32_t>(), b.const_data_ptr<int32_t>(), M, N, W, scp,
                                    bip, c_int, c_float, stream()),
               "xnor_gemm");
  }
  return out;
}

// The grid limits of the CUDA conv kernels (grid y = output-channel tiles of a group, z = groups).
void check_conv_grid(const ConvShape& s) {
  TORCH_CHECK(s.g <= 65535, "groups: expected at most 65535 on the CUDA backend (grid z), got ", s.g);
  TORCH_CHECK((s.og() + 63) / 64 <= 65535,
              "w: expected at most 65535 * 64 output channels per group on the CUDA ",
              "backend (grid y), got ", s.og());
}

// The contiguous operands, optional scale / bias and ConvShape fields the conv kernels take.
struct ConvLaunch {
  at::Tensor x, w, sc, bi;
  int64_t shape16[16];
  ConvLaunch(const at::Tensor& x_in, const at::Tensor& w_in, const ConvShape& s,
             const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias)
      : x(x_in.contiguous()),
        w(w_in.contiguous()),
        sc(scale ? scale->contiguous() : at::Tensor()),
        bi(bias ? bias->contiguous() : at::Tensor()),
        shape16{s.n, s.h, s.w, s.g, s.wg, s.o, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.dh, s.dw, s.ho, s.wo} {}
  const int32_t* xp() const { return x.const_data_ptr<int32_t>(); }
  const int32_t* wp() const { return w.const_data_ptr<int32_t>(); }
  const float* scale() const { return sc.defined() ? sc.const_data_ptr<float>() : nullptr; }
  const float* bias() const { return bi.defined() ? bi.const_data_ptr<float>() : nullptr; }
};

at::Tensor xnor_conv2d_cuda(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                            const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  const ConvShape s =
      check_conv_call(x_in, w_in, C, stride, padding, dilation, groups, scale, bias, c10::DeviceType::CUDA);
  check_conv_grid(s);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const bool fl = scale.has_value() || bias.has_value();
  at::Tensor out = conv_out_empty(x_in, s, fl);
  if (s.rows() == 0 || s.o == 0) return out;
  const ConvLaunch a(x_in, w_in, s, scale, bias);
  int32_t* c_int = fl ? nullptr : out.data_ptr<int32_t>();
  float* c_float = fl ? out.data_ptr<float>() : nullptr;
  if (conv_uses_tc(C, s.o, s.kh * s.kw, s.g) &&
      at::cuda::getDeviceProperties(x_in.device().index())->major >= 8) {
    // int8 tensor cores (tc_conv.cu): the input per (pixel, group) and the weights per (channel, tap)
    // in tc16, a zero input row last for the padding taps
    const int64_t Tc = tc16_words(C / s.g);
    const at::Tensor xt = tc16_rows(a.xp(), s.n * s.h * s.w * s.g, s.wg, Tc, 1, x_in.options(),
                                    "xnor_conv2d (x)"),
                     wt =
                         tc16_rows(a.wp(), s.o * s.kh * s.kw, s.wg, Tc, 0, x_in.options(), "xnor_conv2d (w)");
    check_cuda(gxnor_cuda_xnor_conv2d_tc(xt.const_data_ptr<int32_t>(), wt.const_data_ptr<int32_t>(),
                                         a.shape16, Tc, a.scale(), a.bias(), c_int, c_float, stream()),
               "xnor_conv2d (tensor cores)");
  } else {
    check_cuda(
        gxnor_cuda_xnor_conv2d(a.xp(), a.wp(), a.shape16, a.scale(), a.bias(), c_int, c_float, stream()),
        "xnor_conv2d");
  }
  return out;
}

// xnor_conv2d with the threshold + pack fused into the conv kernel's epilogue; grouped convs whose
// groups would share output words (o / groups not a multiple of 32) run the conv, then the pack.
at::Tensor xnor_conv2d_pack_cuda(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, double threshold,
                                 at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                 int64_t groups, const std::optional<at::Tensor>& scale,
                                 const std::optional<at::Tensor>& bias) {
  check_threshold(threshold);
  const ConvShape s =
      check_conv_call(x_in, w_in, C, stride, padding, dilation, groups, scale, bias, c10::DeviceType::CUDA);
  check_conv_grid(s);
  const c10::cuda::CUDAGuard guard(x_in.device());
  if (s.g != 1 && s.og() % 32 != 0) {
    const at::Tensor y = xnor_conv2d_cuda(x_in, w_in, C, stride, padding, dilation, groups, scale, bias);
    return pack_cuda(y.to(at::kFloat).permute({0, 2, 3, 1}), 1, threshold);
  }
  const int64_t wp = packed_words(s.o);
  at::Tensor out = at::zeros({s.n, s.ho, s.wo, 2, wp}, x_in.options().dtype(at::kInt));  // padding words 0
  if (s.rows() == 0 || s.o == 0) return out;
  const ConvLaunch a(x_in, w_in, s, scale, bias);
  check_cuda(
      gxnor_cuda_xnor_conv2d_pack(a.xp(), a.wp(), a.shape16, a.scale(), a.bias(),
                                  static_cast<float>(threshold), out.data_ptr<int32_t>(), wp, stream()),
      "xnor_conv2d_pack");
  return out;
}

at::Tensor ternary_matmul_cuda(const at::Tensor& x, const at::Tensor& w, int64_t K, bool nn) {
  check_device(x, "x", c10::DeviceType::CUDA);
  check_ternary_matmul(x, w, K, nn);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t M = x.size(0), R = x.size(1), N = w.size(0), W = w.size(2), P = nn ? K : N;
  if (x.scalar_type() == at::kBFloat16 && bf16_uses_tc(R, P) &&
      at::cuda::getDeviceProperties(x.device().index())->major >= 8) {
    // bf16 tensor cores (bf16_gemm.cu): W (nt) or its transpose (nn) in the tb16 layout, one
    // memory-bound pass over the 2-bit weights; x read as it is
    const at::Tensor xc = x.contiguous(), wc = w.contiguous();
    const int64_t Tq = tb16_words(R);
    at::Tensor b = at::empty({P, Tq}, w.options());
    at::Tensor out = at::empty({M, P}, x.options());
    check_cuda(
        gxnor_cuda_to_tb16(wc.const_data_ptr<int32_t>(), N, K, W, nn, Tq, b.data_ptr<int32_t>(), stream()),
        "ternary_matmul (layout)");
    check_cuda(
        gxnor_cuda_ternary_gemm_bf16(
            reinterpret_cast<const uint16_t*>(xc.const_data_ptr<at::BFloat16>()), b.const_data_ptr<int32_t>(),
            M, P, R, Tq, reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()), nullptr, stream()),
        "ternary_matmul (bf16 tensor cores)");
    return out;
  }
  const at::Tensor wd = unpack_ternary_cuda(w, K, x.scalar_type());
  return nn ? at::mm(x, wd) : at::mm(x, wd.t());
}

at::Tensor dst_update_cuda(at::Tensor& w, const at::Tensor& grad_in, double lr, double m, int64_t seed,
                           int64_t offset, bool increment, int64_t rng, bool check) {
  check_dst_packed_call(w, grad_in, lr, m, seed, offset, increment, rng, c10::DeviceType::CUDA);
  const int64_t K = grad_in.size(-1), W = w.size(-1), rows = w.numel() / (2 * W);
  if (check) {  // one host sync; the DST optimizer skips it for weights only it has written
    const int64_t nc = count_noncanonical_cuda(w.view({rows, 2, W}), K).item<int64_t>();
    check_canonical_count(nc);
  }
  const c10::cuda::CUDAGuard guard(w.device());
  const at::Tensor grad = grad_in.to(at::kFloat).contiguous();
  at::Tensor bad = at::zeros({}, w.options().dtype(at::kLong));
  if (rows == 0) return bad;
  check_cuda(
      gxnor_cuda_dst_packed(w.data_ptr<int32_t>(), grad.const_data_ptr<float>(), rows, K,
                            static_cast<float>(lr), static_cast<float>(m), increment, static_cast<int>(rng),
                            static_cast<uint64_t>(seed), static_cast<uint64_t>(offset),
                            reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>()), stream()),
      "dst_update_");
  return bad;
}

at::Tensor dst_update_states_cuda(at::Tensor& s, const at::Tensor& grad_in, double lr, double m,
                                  int64_t n_states, int64_t seed, int64_t offset, bool increment, int64_t rng,
                                  bool check) {
  check_dst_states_call(s, grad_in, lr, m, n_states, seed, offset, increment, rng, check,
                        c10::DeviceType::CUDA);
  const int hi = n_states == 0 ? 1 : (1 << (n_states - 1));
  const c10::cuda::CUDAGuard guard(s.device());
  const at::Tensor grad = grad_in.to(at::kFloat).contiguous();
  at::Tensor bad = at::zeros({}, s.options().dtype(at::kLong));
  if (s.numel() == 0) return bad;
  const float inv_dz = n_states == 0 ? 0.5f : static_cast<float>(hi);
  check_cuda(gxnor_cuda_dst_states(s.data_ptr<int8_t>(), grad.const_data_ptr<float>(), s.numel(),
                                   s.dim() ? s.size(-1) : 1, static_cast<float>(lr), static_cast<float>(m),
                                   inv_dz, hi, n_states == 0 ? 2 : 1, increment, static_cast<int>(rng),
                                   static_cast<uint64_t>(seed), static_cast<uint64_t>(offset),
                                   reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>()), stream()),
             "dst_update_states_");
  return bad;
}

std::string cuda_archs() { return gxnor_cuda_archs(); }

}  // namespace
}  // namespace gxnor::bind

TORCH_LIBRARY_IMPL(gxnor, CUDA, m) {
  m.impl("pack_ternary", &gxnor::bind::pack_ternary_cuda);
  m.impl("quantize_pack", &gxnor::bind::quantize_pack_cuda);
  m.impl("unpack_ternary", &gxnor::bind::unpack_ternary_cuda);
  m.impl("count_noncanonical", &gxnor::bind::count_noncanonical_cuda);
  m.impl("xnor_gemm", &gxnor::bind::xnor_gemm_cuda);
  m.impl("xnor_conv2d", &gxnor::bind::xnor_conv2d_cuda);
  m.impl("xnor_conv2d_pack", &gxnor::bind::xnor_conv2d_pack_cuda);
  m.impl("ternary_matmul", &gxnor::bind::ternary_matmul_cuda);
  m.impl("dst_update_", &gxnor::bind::dst_update_cuda);
  m.impl("dst_update_states_", &gxnor::bind::dst_update_states_cuda);
}

TORCH_LIBRARY_FRAGMENT(gxnor_native, m) {
  m.def("cuda_archs() -> str", &gxnor::bind::cuda_archs);
  m.def("cuda_gemm_uses_tc(int N, int K) -> bool", &gxnor::bind::gemm_uses_tc);
  m.def("cuda_conv_uses_tc(int C, int O, int taps, int groups) -> bool", &gxnor::bind::conv_uses_tc);
  m.def("cuda_bf16_uses_tc(int R, int P) -> bool", &gxnor::bind::bf16_uses_tc);
}
