// Multithreaded driver of the AVX2 table-lookup kernels (csrc/gxnor/cpu/conv_lut.h, CPUs with AVX2
// and no AVX-512 VPOPCNTDQ), shared by xnor_conv2d and xnor_gemm (a GEMM is the 1x1 convolution of
// M one-pixel images). Per call: the input and the weights are encoded into pair codes once (in
// parallel, into kept per-thread buffers); tasks are kStripRows output rows x one group x a run of
// 32-channel blocks, each with its own tap-pointer table, taken by the threads one at a time.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "../gxnor/cpu/conv_lut.h"
#include "gemm_driver.h"

namespace gxnor::bind {

// Input and weights of one call in pair codes; cg real channels per group (K of a GEMM).
struct LutConv {
  ConvShape s;
  int64_t cg;
  CallBuffer<uint8_t, 1> w;
  CallBuffer<uint8_t, 2> codes;
  std::vector<uint8_t> zero;

  // x: (n, h, w, g, 2, wg) int32, w_packed: (o, kh, kw, 2, wg) int32, both contiguous.
  LutConv(const int32_t* x, const int32_t* w_packed, const ConvShape& shape, int64_t cg_)
      : s(shape),
        cg(cg_),
        w(cpu::lut::weight_bytes(shape, cg_)),
        codes(shape.n * shape.h * shape.w * shape.g * cpu::lut::pairs(cg_)),
        zero(cpu::lut::pairs(cg_), 0) {
    at::parallel_for(0, s.g * cpu::lut::channel_blocks(s), 1, [&](int64_t b0, int64_t b1) {
      cpu::lut::encode_weights(w_packed, s, cg, b0, b1, w.data());
    });
    at::parallel_for(0, s.n * s.h * s.w, 256, [&](int64_t p0, int64_t p1) {
      cpu::lut::encode_input(x, s.g, s.wg, cg, p0, p1, codes.data());
    });
  }

  // Output rows [mb, me) of the implicit GEMM into o (o's row 0 is row mb).
  void run(int64_t mb, int64_t me, const cpu::GemmOut& o) const {
#if GXNOR_X86
    using cpu::lut::kStripRows;
    const int64_t taps = s.kh * s.kw, strips = (me - mb + kStripRows - 1) / kStripRows;
    // Channel blocks split into runs (whole micro-kernels) when rows alone give too few tasks.
    const int64_t ncb = cpu::lut::channel_blocks(s), nk = (ncb + cpu::lut::kNC - 1) / cpu::lut::kNC;
    int64_t runs = 1;
    while (runs < nk && strips * s.g * runs < 4 * at::get_num_threads()) runs *= 2;
    runs = std::min(runs, nk);
    const int64_t per = (nk + runs - 1) / runs * cpu::lut::kNC;
    // Tasks are handed out one at a time (an atomic counter), not in static halves: on a shared
    // VM one thread can run slower for a while, and a static split then leaves the other idle.
    const int64_t tasks = strips * s.g * runs;
    std::atomic<int64_t> next{0};
    at::parallel_for(0, std::min<int64_t>(tasks, at::get_num_threads()), 1, [&](int64_t, int64_t) {
      const uint8_t** ptr = thread_scratch<const uint8_t*>(kStripRows * taps);
      for (int64_t t = next++; t < tasks; t = next++) {
        const int64_t ri = t % runs, gi = (t / runs) % s.g, m0 = mb + (t / runs / s.g) * kStripRows;
        const int64_t m1 = std::min(me, m0 + kStripRows), cb0 = ri * per, cb1 = std::min(ncb, cb0 + per);
        if (cb0 >= cb1) continue;
        cpu::lut::tap_pointers(codes.data(), s, cg, gi, m0, m1, zero.data(), ptr);
        cpu::lut::strip(ptr, s, cg, gi, m0, m1, cb0, cb1, w.data(), o, mb);
      }
    });
#else
    (void)mb, (void)me, (void)o;
    TORCH_CHECK(false, "gxnor: the table-lookup kernels need x86 AVX2");
#endif
  }
};

}  // namespace gxnor::bind
