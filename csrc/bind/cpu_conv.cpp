// CPU bindings of xnor_conv2d and xnor_conv2d_pack: implicit GEMM. AMX: fused super-strips of
// output rows (gather packed im2col rows, unpack to int8 tiles, multiply every weight block);
// AVX-512 without AMX: lanes_driver.h; AVX2: lut_driver.h (pair-code table lookups); scalar:
// packed im2col chunks into the popcount GEMM drivers. Results go through the shared
// epilogue (int32, or float32 with per-channel scale and bias), or, for xnor_conv2d_pack, into an
// L2-sized float scratch per row chunk that is thresholded and packed for the next layer.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../gxnor/cpu/conv.h"
#include "../gxnor/cpu/conv_amx.h"
#include "../gxnor/cpu/pack.h"
#include "checks.h"
#include "conv_checks.h"
#include "cpu_ops.h"
#include "gemm_driver.h"
#include "lanes_driver.h"
#include "lut_driver.h"

namespace gxnor::bind {
namespace {

constexpr int64_t kChunkBytes = int64_t(2) << 20;        // packed im2col rows per chunk: about 2 MiB
constexpr int64_t kPackScratchBytes = int64_t(2) << 20;  // xnor_conv2d_pack float rows per chunk (L2)

// The group weights unpacked once into VNNI tiles for the AMX path: group gi, 32-column block jb
// at (gi * Np + 32 jb) * Kp bytes.
struct AmxWeights {
  std::optional<CallBuffer<int8_t>> bv;
  int64_t Np = 0;
};

void amx_weights(const int32_t* wrows, const ConvShape& s, AmxWeights& wt) {
  using namespace cpu::amx;
  const int64_t Kw = s.words(), Kp = 32 * Kw, og = s.og();
  wt.Np = (og + kBlock - 1) / kBlock * kBlock;
  wt.bv.emplace(s.g * wt.Np * Kp);
  const int64_t nb16 = wt.Np / 16;
  at::parallel_for(0, s.g * nb16, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t gi = t / nb16, r = (t % nb16) * 16;
      unpack_vnni_i8(wrows + gi * og * 2 * Kw, Kw, og, r, r + 16, wt.bv->data() + gi * wt.Np * Kp);
    }
  });
}

// AMX path for output rows [mb, me) (o addresses row mb as its row 0), fused per super-strip of
// output positions (S strips of 32 rows, S * 32 * Kp int8 at most ~512 KiB: L2-resident): gather
// the im2col rows unpacked to int8 tiles in one pass, then for every 32-column block of the group's
// weights multiply all S strips, so each weight block is read from L3 once per super-strip, not
// once per strip. No M-sized buffer.
void conv_amx(const int32_t* x, const ConvShape& s, const AmxWeights& wt, int64_t mb, int64_t me,
              const cpu::GemmOut& o) {
  using namespace cpu::amx;
  const int64_t Kw = s.words(), Kp = 32 * Kw, KB = Kp / kTileK, og = s.og(), M = me - mb;
  const int64_t nblk = wt.Np / kBlock;
  const int64_t strips = (M + kBlock - 1) / kBlock;
  // Strips per task: A in L2, and enough tasks for every thread.
  int64_t S = std::clamp<int64_t>((int64_t(512) << 10) / (kBlock * Kp), 1, 8);
  while (S > 1 && (strips + S - 1) / S * s.g < 4 * at::get_num_threads()) S /= 2;
  const int64_t tasks = (strips + S - 1) / S;
  at::parallel_for(0, tasks * s.g, 1, [&](int64_t t0, int64_t t1) {
    int8_t* a = thread_scratch<int8_t>(S * kBlock * Kp);
    alignas(64) int32_t c[kBlock * kBlock];
    configure();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t gi = t % s.g, m0 = (t / s.g) * S * kBlock, nr = std::min(S * kBlock, M - m0);
      const int64_t ns = (nr + kBlock - 1) / kBlock;
      cpu::im2col_unpack_i8(x, s, gi, mb + m0, nr, ns * kBlock, a);
      const int8_t* bg = wt.bv->data() + gi * wt.Np * Kp;
      for (int64_t jb = 0; jb < nblk; ++jb) {
        const int8_t* b0 = bg + 2 * jb * KB * kVnniBytes;
        const int64_t j0 = jb * kBlock;
        for (int64_t si = 0; si < ns; ++si)
          amx_block_out(o, m0 + si * kBlock, gi * og + j0, std::min<int64_t>(kBlock, nr - si * kBlock),
                        std::min<int64_t>(kBlock, og - j0), a + 2 * si * KB * kVnniBytes, b0, KB, c);
      }
    }
    release();
  });
}

// The implicit GEMM for output rows [mb, me) into o (row 0 = row mb): AMX when `amx` is set,
// else packed im2col chunks (about 2 MiB) into the popcount GEMM drivers.
void conv_rows(const int32_t* x, const ConvShape& s, const int32_t* wrows, const AmxWeights* amx, int64_t mb,
               int64_t me, const cpu::GemmOut& o) {
  if (amx) return conv_amx(x, s, *amx, mb, me, o);
  const int64_t Kw = s.words(), og = s.og();
  const int64_t chunk = std::max<int64_t>(32, kChunkBytes / (8 * Kw) / 32 * 32);
  std::vector<int32_t> cols(std::min(chunk, me - mb) * 2 * Kw);
  for (int64_t m0 = mb; m0 < me; m0 += chunk) {
    const int64_t m1 = std::min(me, m0 + chunk);
    for (int64_t gi = 0; gi < s.g; ++gi) {
      at::parallel_for(m0, m1, 64, [&](int64_t r0, int64_t r1) {
        cpu::im2col_packed(x, s, gi, r0, r1, cols.data() + (r0 - m0) * 2 * Kw);
      });
      gemm_any(cols.data(), wrows + gi * og * 2 * Kw, m1 - m0, og, Kw, o.at(m0 - mb, gi * og));
    }
  }
}

// Contiguous operands and the weights in the layout of the path that runs: AMX tiles, interleaved
// 8-channel lanes (AVX-512 without AMX), pair codes (AVX2 table lookups), or GEMM rows (scalar).
struct ConvOperands {
  at::Tensor x, w, sc, bi;
  std::optional<CallBuffer<int32_t>> wrows;
  std::optional<LaneWeights> lanes;
  std::optional<LutConv> lut;
  AmxWeights amx;
  bool amx_on = false;

  // C: input channels (all groups).
  ConvOperands(const at::Tensor& x_in, const at::Tensor& w_in, const ConvShape& s, int64_t C,
               const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias)
      : x(x_in.contiguous()), w(w_in.contiguous()) {
    if (scale) sc = scale->contiguous();
    if (bias) bi = bias->contiguous();
    const XnorKernel k = select_xnor_kernel(s.rows(), s.o, s.words());
    if (k == XnorKernel::kLanes) {
      lanes.emplace(w.const_data_ptr<int32_t>(), s);
      return;
    }
    if (k == XnorKernel::kLut) {
      lut.emplace(x.const_data_ptr<int32_t>(), w.const_data_ptr<int32_t>(), s, C / s.g);
      return;
    }
    wrows.emplace(s.o * 2 * s.words());
    cpu::weights_to_rows(w.const_data_ptr<int32_t>(), s, wrows->data());
    amx_on = k == XnorKernel::kAmx;
    if (amx_on) amx_weights(wrows->data(), s, amx);
  }

  void run(const ConvShape& s, int64_t mb, int64_t me, const cpu::GemmOut& o) const {
    if (lanes) return lanes->run(x.const_data_ptr<int32_t>(), s, mb, me, o);
    if (lut) return lut->run(mb, me, o);
    conv_rows(x.const_data_ptr<int32_t>(), s, wrows->data(), amx_on ? &amx : nullptr, mb, me, o);
  }
};

}  // namespace

at::Tensor xnor_conv2d_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  check_device(x_in, "x", c10::DeviceType::CPU);
  check_device(w_in, "w", c10::DeviceType::CPU);
  const ConvShape s = check_conv(x_in, w_in, C, stride, padding, dilation, groups, scale, bias);
  const bool fl = scale.has_value() || bias.has_value();
  at::Tensor out = conv_out_empty(x_in, s, fl);  // (N, O, Ho, Wo), memory (N, Ho, Wo, O)
  if (s.rows() == 0 || s.o == 0) return out;
  const ConvOperands ops(x_in, w_in, s, C, scale, bias);
  ops.run(s, 0, s.rows(), make_gemm_out(out, ops.sc, ops.bi, s.o));
  return out;
}

// xnor_conv2d with the next layer's activations emitted directly: per chunk of output rows the
// float results (acc * scale + bias) go to an L2-sized scratch and are thresholded and packed
// from there (phi_r as quantize_pack), so the float (N, O, Ho, Wo) tensor never exists.
at::Tensor xnor_conv2d_pack_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, double threshold,
                                at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                int64_t groups, const std::optional<at::Tensor>& scale,
                                const std::optional<at::Tensor>& bias) {
  check_device(x_in, "x", c10::DeviceType::CPU);
  check_device(w_in, "w", c10::DeviceType::CPU);
  check_threshold(threshold);
  const ConvShape s = check_conv(x_in, w_in, C, stride, padding, dilation, groups, scale, bias);
  const int64_t Wo = packed_words(s.o), M = s.rows();
  at::Tensor out = alloc_named({s.n, s.ho, s.wo, 2, Wo}, x_in.options().dtype(at::kInt));
  if (M == 0) return out;
  if (s.o == 0) return out.zero_();
  const ConvOperands ops(x_in, w_in, s, C, scale, bias);
  const int64_t chunk = std::min(M, std::max<int64_t>(256, kPackScratchBytes / (4 * s.o) / 256 * 256));
  at::Tensor scratch = at::empty({chunk, s.o}, x_in.options().dtype(at::kFloat));
  const cpu::GemmOut o = make_gemm_out(scratch, ops.sc, ops.bi, s.o);
  const auto isa = cpu::current_isa();
  const float thr = static_cast<float>(threshold);
  int32_t* dst = out.data_ptr<int32_t>();
  for (int64_t m0 = 0; m0 < M; m0 += chunk) {
    const int64_t m1 = std::min(M, m0 + chunk);
    ops.run(s, m0, m1, o);
    at::parallel_for(0, (m1 - m0) * Wo, 1024, [&](int64_t t0, int64_t t1) {
      cpu::pack_range(scratch.const_data_ptr<float>(), s.o, dst + m0 * 2 * Wo, t0, t1,
                      cpu::PackMode::kThreshold, thr, isa);
    });
  }
  return out;
}

}  // namespace gxnor::bind
