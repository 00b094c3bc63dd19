// CPU binding of xnor_conv2d: implicit GEMM in row chunks. Per chunk of output positions and per
// group, the packed im2col rows (2 bits per value: a few KiB per row at most) are gathered in
// parallel, then the xnor GEMM drivers (AMX-INT8 or popcount) write the channels-last output
// through the shared epilogue (int32, or float32 with per-channel scale and bias).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../gxnor/cpu/conv.h"
#include "checks.h"
#include "conv_checks.h"
#include "gemm_driver.h"

namespace gxnor::bind {
namespace {

constexpr int64_t kChunkBytes = int64_t(2) << 20;  // packed im2col rows per chunk: about 2 MiB

// AMX path, fused per super-strip of output positions (S strips of 32 rows, S * 32 * Kp int8 at
// most ~512 KiB: L2-resident): gather the packed im2col rows, unpack them to int8 tiles, then for
// every 32-column block of the group's weights (unpacked to VNNI tiles once) multiply all S strips,
// so each weight block is read from L3 once per super-strip, not once per strip. No M-sized buffer.
void conv_amx(const int32_t* x, const ConvShape& s, const int32_t* wrows, const cpu::GemmOut& o) {
  using namespace cpu::amx;
  const int64_t Kw = s.words(), Kp = 32 * Kw, KB = Kp / kTileK, og = s.og(), M = s.rows();
  const int64_t Np = (og + kBlock - 1) / kBlock * kBlock, nblk = Np / kBlock;
  std::vector<int8_t> bv(s.g * Np * Kp);
  at::parallel_for(0, s.g * (Np / 16), 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t gi = t / (Np / 16), r = (t % (Np / 16)) * 16;
      unpack_vnni_i8(wrows + gi * og * 2 * Kw, Kw, og, r, r + 16, bv.data() + gi * Np * Kp);
    }
  });
  const int64_t strips = (M + kBlock - 1) / kBlock;
  // Strips per task: A in L2, and enough tasks for every thread.
  int64_t S = std::clamp<int64_t>((int64_t(512) << 10) / (kBlock * Kp), 1, 8);
  while (S > 1 && (strips + S - 1) / S * s.g < 4 * at::get_num_threads()) S /= 2;
  const int64_t tasks = (strips + S - 1) / S;
  at::parallel_for(0, tasks * s.g, 1, [&](int64_t t0, int64_t t1) {
    std::vector<int32_t> pk(S * kBlock * 2 * Kw);
    std::vector<int8_t> a(S * kBlock * Kp);
    alignas(64) int32_t c[kBlock * kBlock];
    configure();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t gi = t % s.g, m0 = (t / s.g) * S * kBlock, nr = std::min(S * kBlock, M - m0);
      const int64_t ns = (nr + kBlock - 1) / kBlock;
      cpu::im2col_packed(x, s, gi, m0, m0 + nr, pk.data());
      unpack_rows_i8(pk.data(), Kw, nr, 0, ns * kBlock, a.data());
      const int8_t* bg = bv.data() + gi * Np * Kp;
      for (int64_t jb = 0; jb < nblk; ++jb) {
        const int8_t* b0 = bg + 2 * jb * KB * kVnniBytes;
        const int64_t j0 = jb * kBlock;
        for (int64_t si = 0; si < ns; ++si) {
          const int8_t* a0 = a.data() + 2 * si * KB * kVnniBytes;
          block_32x32(a0, a0 + KB * kVnniBytes, b0, b0 + KB * kVnniBytes, KB, c);
          o.store_block(m0 + si * kBlock, gi * og + j0, std::min<int64_t>(kBlock, nr - si * kBlock),
                        std::min<int64_t>(kBlock, og - j0), c, kBlock);
        }
      }
    }
    release();
  });
}

at::Tensor xnor_conv2d_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t C, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias) {
  check_device(x_in, "x", c10::DeviceType::CPU);
  check_device(w_in, "w", c10::DeviceType::CPU);
  const ConvShape s = check_conv(x_in, w_in, C, stride, padding, dilation, groups, scale, bias);
  const bool fl = scale.has_value() || bias.has_value();
  at::Tensor out = conv_out_empty(x_in, s, fl);  // (N, O, Ho, Wo), memory (N, Ho, Wo, O)
  const int64_t M = s.rows(), Kw = s.words(), og = s.og();
  if (M == 0 || s.o == 0) return out;
  const at::Tensor x = x_in.contiguous(), w = w_in.contiguous();
  at::Tensor sc = scale ? scale->contiguous() : at::Tensor(), bi = bias ? bias->contiguous() : at::Tensor();
  std::vector<int32_t> wrows(s.o * 2 * Kw);
  cpu::weights_to_rows(w.const_data_ptr<int32_t>(), s, wrows.data());
  const cpu::GemmOut full = make_gemm_out(out, sc, bi, s.o);  // the whole (M, O) output
  if (cpu::current_isa() == cpu::Isa::kAmx && M * s.o * 32 * Kw >= kAmxMinWork) {
    conv_amx(x.const_data_ptr<int32_t>(), s, wrows.data(), full);
    return out;
  }
  const int64_t chunk = std::max<int64_t>(32, kChunkBytes / (8 * Kw) / 32 * 32);
  std::vector<int32_t> cols(std::min(chunk, M) * 2 * Kw);
  const int32_t* xp = x.const_data_ptr<int32_t>();
  for (int64_t m0 = 0; m0 < M; m0 += chunk) {
    const int64_t m1 = std::min(M, m0 + chunk);
    for (int64_t gi = 0; gi < s.g; ++gi) {
      at::parallel_for(m0, m1, 64, [&](int64_t r0, int64_t r1) {
        cpu::im2col_packed(xp, s, gi, r0, r1, cols.data() + (r0 - m0) * 2 * Kw);
      });
      gemm_any(cols.data(), wrows.data() + gi * og * 2 * Kw, m1 - m0, og, Kw, full.at(m0, gi * og));
    }
  }
  return out;
}

}  // namespace
}  // namespace gxnor::bind

TORCH_LIBRARY_IMPL(gxnor, CPU, m) { m.impl("xnor_conv2d", &gxnor::bind::xnor_conv2d_cpu); }
