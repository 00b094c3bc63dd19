// Host emulation of the CUDA subset the gxnor kernels use, so the same kernel sources compile as
// host C++ and run small grids on the CPU (docs/design.md). Threads of a block are
// std::threads (kept for the whole grid), blocks run in sequence, __syncthreads is a block
// barrier, warp intrinsics (__ballot_sync, __shfl_xor_sync, __shfl_sync) go through a per-warp
// exchange buffer and a per-warp barrier, __shared__ becomes static (block-local because blocks
// run one at a time). Needs C++20 (std::barrier).
#pragma once
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
using cudaStream_t = void*;
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;

namespace gxemu {

inline thread_local dim3 t_thread_idx;
inline thread_local dim3 t_block_idx;
inline dim3 g_block_dim;
inline dim3 g_grid_dim;
inline std::barrier<>* g_block_barrier = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> g_warp_barriers;
inline std::vector<uint64_t> g_xchg;  // one slot per thread of the block
inline std::vector<uint32_t> g_mma;   // mma.sync operands: kMmaSlots per thread of the block
inline constexpr unsigned kMmaSlots = 6;
inline std::atomic<int64_t> g_launches{0};

inline unsigned linear_tid() {
  return t_thread_idx.x + g_block_dim.x * (t_thread_idx.y + g_block_dim.y * t_thread_idx.z);
}

// Run kernel(args...) on grid x block, blocks in sequence, threads of a block concurrently.
template <class Kernel, class... Args>
void launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
  const unsigned nt = block.x * block.y * block.z;
  const unsigned nwarps = (nt + 31) / 32;
  g_block_dim = block;
  g_grid_dim = grid;
  std::barrier<> block_bar(nt);
  g_block_barrier = &block_bar;
  g_warp_barriers.clear();
  for (unsigned w = 0; w < nwarps; ++w)
    g_warp_barriers.emplace_back(std::make_unique<std::barrier<>>(w + 1 < nwarps ? 32 : nt - 32 * w));
  g_xchg.assign(nt, 0);
  g_mma.assign(size_t(nt) * kMmaSlots, 0);
  std::vector<std::thread> threads;
  threads.reserve(nt);
  for (unsigned t = 0; t < nt; ++t) {
    threads.emplace_back([&, t] {
      t_thread_idx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
      for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
          for (unsigned bx = 0; bx < grid.x; ++bx) {
            t_block_idx = dim3(bx, by, bz);
            kernel(args...);
            block_bar.arrive_and_wait();  // the next block starts when every thread is done
          }
    });
  }
  for (auto& th : threads) th.join();
  g_block_barrier = nullptr;
  ++g_launches;
}

inline void warp_sync() { g_warp_barriers[linear_tid() / 32]->arrive_and_wait(); }

// An mma.sync of the calling warp: each lane posts its A (4) and B (2) registers to the warp's
// exchange; once the whole warp has, each lane adds dot(reg, row, col) to its four accumulators
// (row g or g + 8, column 2 t + i % 2; reg(l, r): lane l's register r, A in 0-3, B in 4-5), and
// writes them only after every lane has read the operands.
template <class Acc, class Dot>
inline void mma_accumulate(Acc (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], Dot dot) {
  const unsigned tid = linear_tid(), lane = tid & 31u, base = tid - lane;
  uint32_t* mine = &g_mma[size_t(tid) * kMmaSlots];
  for (int r = 0; r < 4; ++r) mine[r] = a[r];
  mine[4] = b[0], mine[5] = b[1];
  warp_sync();
  const auto reg = [base](unsigned l, int r) { return g_mma[size_t(base + l) * kMmaSlots + r]; };
  const int g = static_cast<int>(lane >> 2), t = static_cast<int>(lane & 3u);
  Acc out[4];
  for (int i = 0; i < 4; ++i) out[i] = acc[i] + dot(reg, g + 8 * (i >= 2), 2 * t + i % 2);
  warp_sync();
  for (int i = 0; i < 4; ++i) acc[i] = out[i];
}

// The dot of one (row, column) of a dense mma.sync whose A and B fragment registers each hold E
// elements of consecutive k (int8: E = 4, k32; bf16: E = 2, k16), the PTX ISA's layouts for both:
// k = 8 E values, lane t of a row's or column's group holds k = E t + [0, E) in its first
// register (A: a0 / a1 for rows g / g + 8; B: b0) and 4 E + E t + [0, E) in its second (a2 / a3;
// b1); elem(word, i) is element i of a register. T: the accumulator type.
template <int E, class T, class Reg, class Elem>
inline T dense_fragment_dot(const Reg& reg, int row, int col, Elem elem) {
  T sum = T(0);
  for (int k = 0; k < 8 * E; ++k) {
    const unsigned q = static_cast<unsigned>(k % (4 * E)) / E;  // the lane's t holding k
    const int hi = k >= 4 * E;
    sum += elem(reg((row % 8) * 4 + q, (row >= 8) + 2 * hi), k % E) * elem(reg(col * 4 + q, 4 + hi), k % E);
  }
  return sum;
}

template <class T>
inline uint64_t to_bits(T v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

}  // namespace gxemu

#define threadIdx (::gxemu::t_thread_idx)
#define blockIdx (::gxemu::t_block_idx)
#define blockDim (::gxemu::g_block_dim)
#define gridDim (::gxemu::g_grid_dim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__ __restrict

inline void __syncthreads() { gxemu::g_block_barrier->arrive_and_wait(); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }

inline unsigned __ballot_sync(unsigned mask, int pred) {
  const unsigned tid = gxemu::linear_tid(), base = tid & ~31u;
  gxemu::g_xchg[tid] = pred != 0;
  gxemu::warp_sync();
  unsigned r = 0;
  const unsigned n = static_cast<unsigned>(gxemu::g_xchg.size());
  for (unsigned l = 0; l < 32 && base + l < n; ++l) r |= static_cast<unsigned>(gxemu::g_xchg[base + l]) << l;
  gxemu::warp_sync();
  return r & mask;
}

template <class T>
inline T __shfl_sync(unsigned, T v, int src_lane, int width = 32) {
  const unsigned tid = gxemu::linear_tid();
  const unsigned lane = tid & 31u, base = tid - lane;
  const unsigned seg = lane & ~static_cast<unsigned>(width - 1);
  gxemu::g_xchg[tid] = gxemu::to_bits(v);
  gxemu::warp_sync();
  const T r =
      gxemu::from_bits<T>(gxemu::g_xchg[base + seg + (static_cast<unsigned>(src_lane) & (width - 1))]);
  gxemu::warp_sync();
  return r;
}

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int lane_mask, int width = 32) {
  const unsigned tid = gxemu::linear_tid();
  const unsigned lane = tid & 31u, base = tid - lane;
  gxemu::g_xchg[tid] = gxemu::to_bits(v);
  gxemu::warp_sync();
  (void)width;
  const unsigned src = (lane ^ static_cast<unsigned>(lane_mask)) & 31u;
  const T r = gxemu::from_bits<T>(gxemu::g_xchg[base + src]);
  gxemu::warp_sync();
  return r;
}

template <class T>
inline T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}
template <class T>
inline T atomicOr(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_or(v);
}

// mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 for the calling warp: acc += A B with the
// PTX ISA's fragment layouts (groupID g = lane >> 2, t = lane % 4): A (16 x 32, row-major) a[r]
// holds rows g (r even) or g + 8 (r odd) at k = 4 t + [0, 4) (r < 2) or 16 + 4 t + [0, 4), byte i
// = k % 4; B (32 x 8, column-major) b[r] holds column g at k = 4 t + 16 r + [0, 4); the 16 x 8
// accumulator acc[i] is row g (i < 2) or g + 8, column 2 t + i % 2.
inline void gx_mma_m16n8k32_s8(int (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  gxemu::mma_accumulate(acc, a, b, [](const auto& reg, int row, int col) {
    auto byte = [](uint32_t w, int i) { return static_cast<int>(static_cast<int8_t>(w >> (8 * i))); };
    return gxemu::dense_fragment_dot<4, int>(reg, row, col, byte);
  });
}

// mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc for the calling warp: acc +=
// popc(A & B) per (row, column), the PTX ISA's fragment layouts (bit i of a register is element i):
// a[r] holds row g (r even) or g + 8 at k = 32 t + [0, 32) (r < 2) or 128 + 32 t + [0, 32); b[r]
// holds column g at k = 128 r + 32 t + [0, 32); acc as for m16n8k32.
inline void gx_mma_m16n8k256_and_popc(int (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  gxemu::mma_accumulate(acc, a, b, [](const auto& reg, int row, int col) {
    int sum = 0;
    for (int h = 0; h < 2; ++h)  // k in [128 h, 128 h + 128): 4 lanes x 32 bits
      for (unsigned q = 0; q < 4; ++q)
        sum += __builtin_popcount(reg((row % 8) * 4 + q, (row >= 8) + 2 * h) & reg(col * 4 + q, 4 + h));
    return sum;
  });
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 for the calling warp: acc += A B, the PTX
// ISA's fragment layouts (the low half of a register is the lower k): a[r] holds row g (r even) or
// g + 8 at k = 2 t + [0, 2) (r < 2) or 8 + 2 t + [0, 2); b[r] holds column g at k = 8 r + 2 t +
// [0, 2); acc as for m16n8k32. The products of bf16 values are exact in fp32; the hardware's
// order of the additions is not specified, so the tests use sums that are exact in any order.
inline void gx_mma_m16n8k16_bf16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  gxemu::mma_accumulate(acc, a, b, [](const auto& reg, int row, int col) {
    auto half = [](uint32_t w, int i) {
      return gxemu::from_bits<float>((w >> (16 * i)) << 16 & 0xFFFF0000u);
    };
    return gxemu::dense_fragment_dot<2, float>(reg, row, col, half);
  });
}

// ldmatrix.sync.aligned.m8n8.x4.shared.b16 for the calling warp: lane l posts the address of row
// l % 8 of matrix l / 8; r[i] = matrix i's row lane / 4, 16-bit elements 2 (lane % 4) and + 1.
inline void gx_ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  const unsigned tid = gxemu::linear_tid(), lane = tid & 31u, base = tid - lane;
  gxemu::g_xchg[tid] = reinterpret_cast<uintptr_t>(row);
  gxemu::warp_sync();
  for (unsigned i = 0; i < 4; ++i) {
    const auto* src = reinterpret_cast<const unsigned char*>(gxemu::g_xchg[base + 8 * i + lane / 4]);
    std::memcpy(&r[i], src + 4 * (lane % 4), 4);
  }
  gxemu::warp_sync();
}

// cp.async.cg 16 bytes with zero-fill past src_bytes: copied at once here (the kernel's
// wait + barrier order the real copy the same way), so commit and wait have nothing to do.
inline void gx_cp_async16(void* dst, const void* src, int src_bytes) {
  std::memcpy(dst, src, static_cast<size_t>(src_bytes));
  std::memset(static_cast<unsigned char*>(dst) + src_bytes, 0, static_cast<size_t>(16 - src_bytes));
}
inline void gx_cp_async_commit() {}
template <int N>
inline void gx_cp_async_wait() {}

inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "no error (host emulation)"; }

#define GX_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ((void)(stream), ::gxemu::launch(grid, block, kernel, __VA_ARGS__))
