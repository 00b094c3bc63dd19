// Multithreaded driver of the lane-parallel AVX-512 kernels (conv_lanes.h, CPUs with VPOPCNTDQ and
// no AMX), for xnor_conv2d and xnor_gemm alike (a GEMM is the 1x1 convolution of M one-pixel
// images with N output channels). Tasks: kStripRows output rows x one group, each with its own
// tap-pointer table; weights interleaved once per call into a kept per-thread buffer. Torch-free.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "conv_lanes.h"
#include "parallel.h"

namespace gxnor::cpu {

// The weights of shape s interleaved for the lanes kernels, and the zero words of a padding tap.
struct LaneWeights {
  CallBuffer<uint64_t> w;
  std::vector<uint64_t> zero;

  // w_packed: (o, kh, kw, 2, wg) int32, contiguous.
  LaneWeights(const int32_t* w_packed, const ConvShape& s) : w(lanes::weight_elems(s)), zero(s.wg, 0) {
    parallel_for(0, s.g * lanes::channel_blocks(s), 8,
                 [&](int64_t b0, int64_t b1) { lanes::interleave_weights(w_packed, s, b0, b1, w.data()); });
  }

  // Output rows [mb, me) of the implicit GEMM of input x into o (o's row 0 is row mb).
  void run(const int32_t* x, const ConvShape& s, int64_t mb, int64_t me, const GemmOut& o) const {
#if GXNOR_X86
    using lanes::kStripRows;
    const int64_t taps = s.kh * s.kw, strips = (me - mb + kStripRows - 1) / kStripRows;
    run_tasks(strips * s.g, [&](TaskQueue& next) {
      const uint64_t** ptr = thread_scratch<const uint64_t*>(kStripRows * taps);
      for (int64_t t; next(t);) {
        const int64_t gi = t % s.g, m0 = mb + (t / s.g) * kStripRows, m1 = std::min(me, m0 + kStripRows);
        lanes::tap_pointers(x, s, gi, m0, m1, zero.data(), ptr);
        lanes::strip(ptr, s, gi, m0, m1, w.data(), o, mb);
      }
    });
#else
    (void)x, (void)s, (void)mb, (void)me, (void)o;
    throw std::logic_error("gxnor: the lanes kernels need x86 AVX-512");
#endif
  }
};

}  // namespace gxnor::cpu
