// The xnor conv / GEMM family's kernel selector and kernel objects (xnor_gemm, xnor_conv2d,
// xnor_conv2d_pack): the kernel is chosen once, from the ISA in effect and the problem size, when
// the object is made; the object then holds the weights in that kernel's layout and runs any range
// of output rows. A GEMM is the 1x1 convolution of M one-pixel images with N output channels.
// Torch-free: the bindings and the C++ tests run the same objects.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "conv.h"
#include "conv_amx.h"
#include "drive_gemm.h"
#include "drive_lanes.h"
#include "drive_lut.h"
#include "isa.h"

namespace gxnor::cpu {

enum class XnorKernel {
  kLanes,     // AVX-512 VPOPCNTDQ without AMX: output channels in the vector lanes (drive_lanes.h)
  kLut,       // AVX2: vpshufb table lookups over channel pairs (drive_lut.h)
  kAmx,       // AMX-INT8 tiles on rows of unpacked int8 values (drive_gemm.h, conv_amx.h)
  kPopcount,  // gated-XNOR popcount micro-kernels of the ISA (drive_gemm.h)
};

constexpr int64_t kAmxMinWork = int64_t(1) << 24;  // M*N*K below this: the tile set-up does not pay off

// rows: output rows (GEMM M, conv N*Ho*Wo), cols: outputs per row (N or O), words: packed words per
// row of the reduction (W, or kh*kw*Wg for a conv).
inline XnorKernel select_xnor_kernel(Isa isa, int64_t rows, int64_t cols, int64_t words) {
  switch (isa) {
    case Isa::kAvx512:
      return XnorKernel::kLanes;
    case Isa::kAvx2:
      return XnorKernel::kLut;
    case Isa::kAmx:
      return rows * cols * 32 * words >= kAmxMinWork ? XnorKernel::kAmx : XnorKernel::kPopcount;
    default:
      return XnorKernel::kPopcount;
  }
}

// The shape that makes C = a @ b.T (a: (M, 2, W), b: (N, 2, W)) a 1x1 convolution.
inline ConvShape gemm_as_conv(int64_t M, int64_t N, int64_t W) {
  return ConvShape{M, 1, 1, 1, W, N, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1};
}

// C = a @ b.T with kernel k (K: the real reduction length, which the table lookups need).
inline void xnor_gemm_run(XnorKernel k, Isa isa, const int32_t* a, const int32_t* b, int64_t M, int64_t N,
                          int64_t W, int64_t K, const GemmOut& o) {
  const ConvShape s = gemm_as_conv(M, N, W);
  switch (k) {
    case XnorKernel::kLanes:
      return LaneWeights(b, s).run(a, s, 0, M, o);
    case XnorKernel::kLut:
      return LutConv(a, b, s, K).run(0, M, o);
    case XnorKernel::kAmx:
      return gemm_amx(a, b, M, N, W, o);
    case XnorKernel::kPopcount:
      return gemm_popcount(a, b, M, N, W, o, isa);
  }
}

// The implicit-GEMM convolution of packed channels-last x (n, h, w, g, 2, wg) with weights
// (o, kh, kw, 2, wg) (both int32, contiguous, alive while the object is), cg real channels per group.
class XnorConv {
 public:
  XnorConv(const int32_t* x, const int32_t* w, const ConvShape& s, int64_t cg, XnorKernel k, Isa isa)
      : x_(x), s_(s), k_(k), isa_(isa) {
    if (k == XnorKernel::kLanes) {
      lanes_.emplace(w, s);
    } else if (k == XnorKernel::kLut) {
      lut_.emplace(x, w, s, cg);
    } else {
      wrows_.emplace(s.o * 2 * s.words());
      weights_to_rows(w, s, wrows_->data());
      if (k == XnorKernel::kAmx) amx_weights();
    }
  }

  // Output rows [mb, me) into o (o's row 0 is row mb).
  void run(int64_t mb, int64_t me, const GemmOut& o) const {
    switch (k_) {
      case XnorKernel::kLanes:
        return lanes_->run(x_, s_, mb, me, o);
      case XnorKernel::kLut:
        return lut_->run(mb, me, o);
      case XnorKernel::kAmx:
        return run_amx(mb, me, o);
      case XnorKernel::kPopcount:
        return run_popcount(mb, me, o);
    }
  }

 private:
  static constexpr int64_t kChunkBytes = int64_t(2) << 20;  // packed im2col rows per chunk (popcount path)

  // The group weights unpacked once into VNNI tiles: group gi, 32-column block jb at
  // (gi * np_ + 32 jb) * Kp bytes.
  void amx_weights() {
    using namespace amx;
    const int64_t Kw = s_.words(), Kp = 32 * Kw, og = s_.og();
    np_ = (og + kBlock - 1) / kBlock * kBlock;
    bv_.emplace(s_.g * np_ * Kp);
    const int64_t nb16 = np_ / 16;
    parallel_for(0, s_.g * nb16, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t gi = t / nb16, r = (t % nb16) * 16;
        unpack_vnni_i8(wrows_->data() + gi * og * 2 * Kw, Kw, og, r, r + 16, bv_->data() + gi * np_ * Kp);
      }
    });
  }

  // AMX, fused per super-strip of output positions (S strips of 32 rows, S * 32 * Kp int8 at most
  // ~512 KiB: L2-resident): gather the im2col rows unpacked to int8 tiles in one pass, then for
  // every 32-column block of the group's weights multiply all S strips, so each weight block is
  // read from L3 once per super-strip, not once per strip. No M-sized buffer.
  void run_amx(int64_t mb, int64_t me, const GemmOut& o) const {
    using namespace amx;
    const ConvShape& s = s_;
    const int64_t Kw = s.words(), Kp = 32 * Kw, KB = Kp / kTileK, og = s.og(), M = me - mb;
    const int64_t nblk = np_ / kBlock, strips = (M + kBlock - 1) / kBlock;
    // Strips per task: A in L2, and enough tasks for every thread.
    int64_t S = std::clamp<int64_t>((int64_t(512) << 10) / (kBlock * Kp), 1, 8);
    while (S > 1 && (strips + S - 1) / S * s.g < 4 * num_threads()) S /= 2;
    const int64_t tasks = (strips + S - 1) / S;
    run_tasks(tasks * s.g, [&](TaskQueue& next) {
      int8_t* a = thread_scratch<int8_t>(S * kBlock * Kp);
      alignas(64) int32_t c[kBlock * kBlock];
      configure();
      for (int64_t t; next(t);) {
        const int64_t gi = t % s.g, m0 = (t / s.g) * S * kBlock, nr = std::min(S * kBlock, M - m0);
        const int64_t ns = (nr + kBlock - 1) / kBlock;
        im2col_unpack_i8(x_, s, gi, mb + m0, nr, ns * kBlock, a);
        const int8_t* bg = bv_->data() + gi * np_ * Kp;
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

  // Packed im2col chunks (about 2 MiB) into the popcount GEMM driver.
  void run_popcount(int64_t mb, int64_t me, const GemmOut& o) const {
    const int64_t Kw = s_.words(), og = s_.og();
    const int64_t chunk = std::max<int64_t>(32, kChunkBytes / (8 * Kw) / 32 * 32);
    std::vector<int32_t> cols(std::min(chunk, me - mb) * 2 * Kw);
    for (int64_t m0 = mb; m0 < me; m0 += chunk) {
      const int64_t m1 = std::min(me, m0 + chunk);
      for (int64_t gi = 0; gi < s_.g; ++gi) {
        parallel_for(m0, m1, 64, [&](int64_t r0, int64_t r1) {
          im2col_packed(x_, s_, gi, r0, r1, cols.data() + (r0 - m0) * 2 * Kw);
        });
        gemm_popcount(cols.data(), wrows_->data() + gi * og * 2 * Kw, m1 - m0, og, Kw, o.at(m0 - mb, gi * og),
                      isa_);
      }
    }
  }

  const int32_t* x_;
  ConvShape s_;
  XnorKernel k_;
  Isa isa_;
  std::optional<LaneWeights> lanes_;
  std::optional<LutConv> lut_;
  std::optional<CallBuffer<int32_t>> wrows_;
  std::optional<CallBuffer<int8_t>> bv_;
  int64_t np_ = 0;
};

}  // namespace gxnor::cpu
