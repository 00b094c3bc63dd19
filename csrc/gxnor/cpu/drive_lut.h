// Multithreaded driver of the AVX2 table-lookup kernels (conv_lut.h, CPUs with AVX2 and no AVX-512
// VPOPCNTDQ), for xnor_conv2d and xnor_gemm alike (a GEMM is the 1x1 convolution of M one-pixel
// images). Per call: the input and the weights are encoded into pair codes once (in parallel,
// into kept per-thread buffers); tasks are kStripRows output rows x one group x a run of 32-channel
// blocks, each with its own tap-pointer table. Torch-free.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "conv_lut.h"
#include "parallel.h"

namespace gxnor::cpu {

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
        w(lut::weight_bytes(shape, cg_)),
        codes(shape.n * shape.h * shape.w * shape.g * lut::pairs(cg_)),
        zero(lut::pairs(cg_), 0) {
    parallel_for(0, s.g * lut::channel_blocks(s), 1,
                 [&](int64_t b0, int64_t b1) { lut::encode_weights(w_packed, s, cg, b0, b1, w.data()); });
    parallel_for(0, s.n * s.h * s.w, 256,
                 [&](int64_t p0, int64_t p1) { lut::encode_input(x, s.g, s.wg, cg, p0, p1, codes.data()); });
  }

  // Output rows [mb, me) of the implicit GEMM into o (o's row 0 is row mb).
  void run(int64_t mb, int64_t me, const GemmOut& o) const {
#if GXNOR_X86
    using lut::kStripRows;
    const int64_t taps = s.kh * s.kw, strips = (me - mb + kStripRows - 1) / kStripRows;
    // Channel blocks split into runs (whole micro-kernels) when rows alone give too few tasks.
    const int64_t ncb = lut::channel_blocks(s), nk = (ncb + lut::kNC - 1) / lut::kNC;
    int64_t runs = 1;
    while (runs < nk && strips * s.g * runs < 4 * num_threads()) runs *= 2;
    runs = std::min(runs, nk);
    const int64_t per = (nk + runs - 1) / runs * lut::kNC;
    run_tasks(strips * s.g * runs, [&](TaskQueue& next) {
      const uint8_t** ptr = thread_scratch<const uint8_t*>(kStripRows * taps);
      for (int64_t t; next(t);) {
        const int64_t ri = t % runs, gi = (t / runs) % s.g, m0 = mb + (t / runs / s.g) * kStripRows;
        const int64_t m1 = std::min(me, m0 + kStripRows), cb0 = ri * per, cb1 = std::min(ncb, cb0 + per);
        if (cb0 >= cb1) continue;
        lut::tap_pointers(codes.data(), s, cg, gi, m0, m1, zero.data(), ptr);
        lut::strip(ptr, s, cg, gi, m0, m1, cb0, cb1, w.data(), o, mb);
      }
    });
#else
    (void)mb, (void)me, (void)o;
    throw std::logic_error("gxnor: the table-lookup kernels need x86 AVX2");
#endif
  }
};

}  // namespace gxnor::cpu
