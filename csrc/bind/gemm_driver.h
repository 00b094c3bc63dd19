// Multithreaded drivers of the CPU xnor GEMM (AMX-INT8 blocks or popcount micro-kernels), shared by
// xnor_gemm and xnor_conv2d (whose packed im2col rows feed the same drivers).
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "../gxnor/cpu/gemm.h"
#include "../gxnor/cpu/gemm_amx.h"
#include "kernel_select.h"

namespace gxnor::bind {

// A per-thread scratch of at least n elements, kept between calls: the AMX drivers' L2-sized
// buffers (<= 1 MiB) would otherwise be fresh mmap'd pages, faulted in on every call. kTag keeps
// the workers' per-task buffers (0) apart from the calling thread's per-call operands (1, through
// CallBuffer), since the calling thread is also a worker of the parallel loops.
template <class T, int kTag = 0>
inline T* thread_scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
  return buf.data();
}

// A per-call operand buffer (unpacked weights) of n uninitialized elements: up to kKeepBytes the
// calling thread's kept scratch (no page faults, no zero fill: on xnor_conv2d at batch 1, memset
// was 8 % of perf samples on CIFAR 512->512 and the best 256->512 call went 0.7 -> 0.5 ms), above
// it owned by this object. At most one live CallBuffer per element type, tag (>= 1) and thread.
template <class T, int kTag = 1>
class CallBuffer {
 public:
  static constexpr int64_t kKeepBytes = int64_t(32) << 20;
  explicit CallBuffer(int64_t n) {
    if (n * static_cast<int64_t>(sizeof(T)) <= kKeepBytes) {
      p_ = thread_scratch<T, kTag>(n);
    } else {
      own_.reset(new T[n]);
      p_ = own_.get();
    }
  }
  T* data() const { return p_; }

 private:
  std::unique_ptr<T[]> own_;
  T* p_ = nullptr;
};

// One 32 x 32 AMX block of C at (i0, j0), nr x nc of it inside C: a full block of an int32
// output is stored by the tiles straight into it; otherwise through the scratch c and the
// epilogue (partial edges, float output with scale / bias).
GXNOR_TARGET_AMX inline void amx_block_out(const cpu::GemmOut& o, int64_t i0, int64_t j0, int64_t nr,
                                           int64_t nc, const int8_t* a0, const int8_t* b0, int64_t KB,
                                           int32_t* c) {
  using namespace cpu::amx;
  const int8_t *a1 = a0 + KB * kVnniBytes, *b1 = b0 + KB * kVnniBytes;
  if (o.c_int && nr == kBlock && nc == kBlock) {
    block_32x32(a0, a1, b0, b1, KB, o.c_int + i0 * o.ldc + j0, o.ldc);
    return;
  }
  block_32x32(a0, a1, b0, b1, KB, c);
  o.store_block(i0, j0, nr, nc, c, kBlock);
}

inline void gemm_popcount(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                          const cpu::GemmOut& o, cpu::Isa isa) {
  const int64_t row_bytes = 8 * W;
  const int64_t MB = 64;
  int64_t NB = std::max<int64_t>(16, (256 * 1024 / row_bytes) / cpu::kNR * cpu::kNR);
  const int64_t mt = (M + MB - 1) / MB;
  // Enough tasks for every thread when M is small.
  while (NB > 16 && mt * ((N + NB - 1) / NB) < 4 * at::get_num_threads()) NB /= 2;
  const int64_t nt = (N + NB - 1) / NB;
  at::parallel_for(0, mt * nt, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t jb = t / mt, ib = t % mt;
      cpu::xnor_gemm_tile(a, b, W, ib * MB, std::min(M, (ib + 1) * MB), jb * NB, std::min(N, (jb + 1) * NB),
                          o, isa);
    }
  });
}

inline void gemm_amx(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                     const cpu::GemmOut& o) {
  using namespace cpu::amx;
  const int64_t Kp = 32 * W, KB = Kp / kTileK;
  const int64_t Mp = (M + kBlock - 1) / kBlock * kBlock, mt = Mp / kBlock, nt = (N + kBlock - 1) / kBlock;
  const CallBuffer<int8_t> ai(Mp * Kp);  // every row written below (rows >= M as zeros)
  at::parallel_for(0, Mp / 16, 4,
                   [&](int64_t r0, int64_t r1) { unpack_rows_i8(a, W, M, r0 * 16, r1 * 16, ai.data()); });
  // Tasks: (group of G 32-column blocks of B, range of 32-row A strips). A task unpacks its B
  // group into a thread-local VNNI buffer (<= 1 MiB: L2-resident; skipped when the thread's
  // previous task had the same group), then multiplies every strip of its range with it: B is
  // never unpacked to an N-sized buffer, and each A strip is read once per group.
  const int64_t G = std::clamp<int64_t>((int64_t(1) << 20) / (kBlock * Kp), 1, 8), ng = (nt + G - 1) / G;
  const int64_t mchunks = std::min(mt, std::max<int64_t>(1, (4 * at::get_num_threads() + ng - 1) / ng));
  const int64_t mper = (mt + mchunks - 1) / mchunks;
  at::parallel_for(0, ng * mchunks, 1, [&](int64_t t0, int64_t t1) {
    int8_t* bv = thread_scratch<int8_t>(G * kBlock * Kp);
    int64_t have = -1;
    alignas(64) int32_t c[kBlock * kBlock];
    configure();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / mchunks, ib0 = (t % mchunks) * mper, ib1 = std::min(mt, ib0 + mper);
      if (ib0 >= ib1) continue;  // the last chunks can be empty when mt is not a multiple of mper
      const int64_t n0 = g * G * kBlock, n1 = std::min(N, n0 + G * kBlock);
      const int64_t nb = (n1 - n0 + kBlock - 1) / kBlock;
      if (have != g) unpack_vnni_i8(b + n0 * 2 * W, W, n1 - n0, 0, nb * kBlock, bv);
      have = g;
      for (int64_t ib = ib0; ib < ib1; ++ib) {
        const int8_t* a0 = ai.data() + (2 * ib) * KB * kVnniBytes;
        for (int64_t jb = 0; jb < nb; ++jb) {
          const int64_t i0 = ib * kBlock, j0 = n0 + jb * kBlock;
          amx_block_out(o, i0, j0, std::min<int64_t>(kBlock, M - i0), std::min<int64_t>(kBlock, N - j0), a0,
                        bv + (2 * jb) * KB * kVnniBytes, KB, c);
        }
      }
    }
    release();
  });
}

// Epilogue writing into `out` (int32, or float32 with the optional contiguous scale / bias), rows ldc apart.
inline cpu::GemmOut make_gemm_out(at::Tensor& out, const at::Tensor& sc, const at::Tensor& bi, int64_t ldc) {
  cpu::GemmOut o;
  o.ldc = ldc;
  if (out.scalar_type() == at::kFloat) {
    o.c_float = out.data_ptr<float>();
    o.scale = sc.defined() ? sc.const_data_ptr<float>() : nullptr;
    o.bias = bi.defined() ? bi.const_data_ptr<float>() : nullptr;
  } else {
    o.c_int = out.data_ptr<int32_t>();
  }
  return o;
}

// C = a @ b.T on the AMX or popcount rows kernel (select_xnor_kernel: the lanes and table-lookup
// kernels have drivers of their own).
inline void gemm_any(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                     const cpu::GemmOut& o) {
  if (select_xnor_kernel(M, N, W) == XnorKernel::kAmx)
    gemm_amx(a, b, M, N, W, o);
  else
    gemm_popcount(a, b, M, N, W, o, cpu::current_isa());
}

}  // namespace gxnor::bind
