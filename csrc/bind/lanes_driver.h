// Multithreaded driver of the lane-parallel AVX-512 kernels (csrc/gxnor/cpu/conv_lanes.h, CPUs with
// VPOPCNTDQ and no AMX), shared by xnor_conv2d and xnor_gemm (a GEMM is the 1x1 convolution of M
// one-pixel images with N output channels). Tasks: kStripRows output rows x one group, each with
// its own tap-pointer table; weights interleaved once per call into a kept per-thread buffer.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <optional>
#include <vector>

#include "../gxnor/cpu/conv_lanes.h"
#include "gemm_driver.h"

namespace gxnor::bind {

// The weights of shape s interleaved for the lanes kernels, and the zero words of a padding tap.
struct LaneWeights {
  CallBuffer<uint64_t> w;
  std::vector<uint64_t> zero;

  // w_packed: (o, kh, kw, 2, wg) int32, contiguous.
  LaneWeights(const int32_t* w_packed, const ConvShape& s) : w(cpu::lanes::weight_elems(s)), zero(s.wg, 0) {
    at::parallel_for(0, s.g * cpu::lanes::channel_blocks(s), 8, [&](int64_t b0, int64_t b1) {
      cpu::lanes::interleave_weights(w_packed, s, b0, b1, w.data());
    });
  }

  // Output rows [mb, me) of the implicit GEMM into o (o's row 0 is row mb).
  void run(const int32_t* x, const ConvShape& s, int64_t mb, int64_t me, const cpu::GemmOut& o) const {
#if GXNOR_X86
    using cpu::lanes::kStripRows;
    const int64_t taps = s.kh * s.kw, strips = (me - mb + kStripRows - 1) / kStripRows;
    at::parallel_for(0, strips * s.g, 1, [&](int64_t t0, int64_t t1) {
      const uint64_t** ptr = thread_scratch<const uint64_t*>(kStripRows * taps);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t gi = t % s.g, m0 = mb + (t / s.g) * kStripRows, m1 = std::min(me, m0 + kStripRows);
        cpu::lanes::tap_pointers(x, s, gi, m0, m1, zero.data(), ptr);
        cpu::lanes::strip(ptr, s, gi, m0, m1, w.data(), o, mb);
      }
    });
#else
    (void)x, (void)s, (void)mb, (void)me, (void)o;
    TORCH_CHECK(false, "gxnor: the lanes kernels need x86 AVX-512");
#endif
  }
};

// The shape that makes C = a @ b.T (a: (M, 2, W), b: (N, 2, W)) a 1x1 convolution.
inline ConvShape gemm_as_conv(int64_t M, int64_t N, int64_t W) {
  return ConvShape{M, 1, 1, 1, W, N, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1};
}

}  // namespace gxnor::bind
