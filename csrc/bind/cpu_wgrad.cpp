// CPU binding of xnor_conv2d_weight_grad (csrc/gxnor/cpu/wgrad.h): the code grid is made once
// per call in parallel over (image, grid row); tasks (slice of chunks, group, 64-channel block,
// block of columns) are taken one at a time and accumulate into their own slice of G, which is
// summed over slices and transposed into the (O, kh, kw, C/groups) result.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>

#include "../gxnor/cpu/parallel.h"
#include "../gxnor/cpu/wgrad.h"
#include "checks.h"
#include "conv_checks.h"
#include "cpu_ops.h"

namespace gxnor::bind {
namespace {

constexpr int64_t kMinCols = 256;   // columns per task at least (the chunk's tables are rebuilt per task)
constexpr int64_t kMaxCols = 1024;  // and at most (G rows of a task: 256 KiB, L2)

}  // namespace

at::Tensor xnor_conv2d_weight_grad_cpu(const at::Tensor& grad_out, const at::Tensor& x_in,
                                       const at::Tensor& w, int64_t C, at::IntArrayRef stride,
                                       at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  check_device(x_in, "x", c10::DeviceType::CPU);
  check_device(w, "w", c10::DeviceType::CPU);
  check_device(grad_out, "grad_out", c10::DeviceType::CPU);
  const ConvShape s = check_conv(x_in, w, C, stride, padding, dilation, groups, std::nullopt, std::nullopt);
  check_conv_grad_out(grad_out, s);
  const int64_t cg = C / groups;
  at::Tensor out = at::empty({s.o, s.kh, s.kw, cg}, grad_out.options());
  if (s.n == 0 || s.o == 0) return out.zero_();
  using namespace cpu::wgrad;
  const Geometry g(s, cg);
  const auto isa = cpu::current_isa();
  const at::Tensor x = x_in.contiguous();
  const at::Tensor gy =
      grad_out.permute({0, 2, 3, 1}).contiguous();  // (n, ho, wo, o): free for xnor_conv2d's
  const int32_t* xp = x.const_data_ptr<int32_t>();
  const float* gp = gy.const_data_ptr<float>();

  cpu::CallBuffer<uint8_t, 3> grid(g.grid_bytes());
  at::parallel_for(0, s.n * g.rows, 1, [&](int64_t t0, int64_t t1) {
    int8_t* u = cpu::thread_scratch<int8_t, 3>(g.u_cols() * g.C);
    for (int64_t t = t0; t < t1; ++t)
      cpu::wgrad::grid_row(xp, g, t / g.rows, t % g.rows, u, grid.data() + t * g.row_stride, isa);
  });

  // Tasks: column blocks of kMinCols..kMaxCols, then slices of chunks while too few for the threads.
  const int64_t threads = at::get_num_threads(), chunks = g.chunks();
  int64_t njb = (g.cols + kMaxCols - 1) / kMaxCols;
  while (s.g * g.nob * njb < 4 * threads && g.cols / (2 * njb) >= kMinCols) njb *= 2;
  int64_t nsl = 1;
  while (s.g * g.nob * njb * nsl < 4 * threads && nsl * 2 <= chunks) nsl *= 2;
  const int64_t jb = (g.cols + njb - 1) / njb, per = (chunks + nsl - 1) / nsl;
  const int64_t gsize = s.g * g.cols * g.opad;  // floats of G per slice
  at::Tensor G = at::zeros({nsl * gsize}, grad_out.options());
  float* gbuf = G.data_ptr<float>();
  const int64_t tasks = nsl * s.g * g.nob * njb;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min(tasks, threads), 1, [&](int64_t, int64_t) {
    float* T = cpu::thread_scratch<float, 3>(kPairs * kTableFloats + 8);
    T += (8 - reinterpret_cast<uintptr_t>(T) / sizeof(float) % 8) % 8;  // 32-byte aligned
    for (int64_t t = next++; t < tasks; t = next++) {
      const int64_t ji = t % njb, ob = t / njb % g.nob, gi = t / njb / g.nob % s.g,
                    sl = t / njb / g.nob / s.g;
      const int64_t j0 = ji * jb, j1 = std::min(g.cols, j0 + jb), k0 = sl * per,
                    k1 = std::min(chunks, k0 + per);
      if (j0 >= j1 || k0 >= k1) continue;
      cpu::wgrad::run(grid.data(), gp, g, gi, ob, j0, j1, k0, k1, gbuf + sl * gsize + gi * g.cols * g.opad, T,
                      isa);
    }
  });

  // out[gi * og + o][tap][c] = sum over slices of G[sl][gi][tap * cg + c][o], 16 channels (one
  // line of G) at a time.
  float* dst = out.data_ptr<float>();
  const int64_t og = s.og();
  at::parallel_for(0, (s.o + 15) / 16, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t oc0 = b0 * 16; oc0 < std::min(s.o, b1 * 16); oc0 += 16) {
      const int64_t oc1 = std::min(s.o, oc0 + 16);
      int64_t src[16];  // G offset of channel oc's column 0 (its group's rows, lane o)
      for (int64_t oc = oc0; oc < oc1; ++oc) src[oc - oc0] = oc / og * g.cols * g.opad + oc % og;
      for (int64_t j = 0; j < g.cols; ++j)
        for (int64_t oc = oc0; oc < oc1; ++oc) {
          const float* e = gbuf + src[oc - oc0] + j * g.opad;
          float v = 0.f;
          for (int64_t sl = 0; sl < nsl; ++sl) v += e[sl * gsize];
          dst[oc * g.cols + j] = v;
        }
    }
  });
  return out;
}

}  // namespace gxnor::bind
