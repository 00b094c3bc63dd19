// AMX-INT8 ceilings of this CPU for the 2x2-tile block the CPU xnor_gemm / xnor_conv2d kernels use
// (4 accumulator tiles, 2 A + 2 B tile loads per 4 TDPBSSD): TDPBSSD alone, with the tile loads
// served from L1, and from L2-sized A / B regions. Torch-free; build and run:
//   g++ -O3 -march=sapphirerapids -fopenmp bench/amx_roofline.cpp -o /tmp/amx_roofline
//   OMP_NUM_THREADS=2 /tmp/amx_roofline
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Per thread: `blocks` 2x2-tile steps; A tiles cycle through a_bytes, B tiles through b_bytes
// (0: no loads at all, the TDPBSSD throughput alone).
// indep: the four loads go to the A / B tiles' twins in a 2 x 1 pattern that no TDPBSSD of the
// block reads (tiles 6, 7; the products use 4, 5 only), i.e. the same load and multiply work with
// no operand-tile dependency between them.
static double run(int64_t blocks, int64_t a_bytes, int64_t b_bytes, bool indep = false) {
  const int threads = omp_get_max_threads();
  std::vector<int8_t> mem(threads * (a_bytes + b_bytes + 4096), 1);
  auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel
  {
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
    const int8_t* a = mem.data() + omp_get_thread_num() * (a_bytes + b_bytes + 4096);
    const int8_t* b = a + a_bytes;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, a, 64);
    _tile_loadd(5, a, 64);
    _tile_loadd(6, a, 64);
    _tile_loadd(7, a, 64);
    const int64_t na = std::max<int64_t>(1, a_bytes / 2048), nb = std::max<int64_t>(1, b_bytes / 2048);
    for (int64_t i = 0; i < blocks; ++i) {
      const int8_t *pa = a + (i % na) * 2048, *pb = b + (i % nb) * 2048;
      if (indep) {
        _tile_loadd(6, pa, 64);
        _tile_loadd(7, pb, 64);
        _tile_loadd(6, pa + 1024, 64);
        _tile_loadd(7, pb + 1024, 64);
        _tile_dpbssd(0, 4, 5);
        _tile_dpbssd(1, 4, 5);
        _tile_dpbssd(2, 5, 4);
        _tile_dpbssd(3, 5, 4);
        continue;
      }
      if (b_bytes) {
        _tile_loadd(4, pa, 64);
        _tile_loadd(6, pb, 64);
        _tile_loadd(5, pa + 1024, 64);
        _tile_loadd(7, pb + 1024, 64);
      }
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
    alignas(64) int32_t c[256];
    _tile_stored(0, c, 64);
    _tile_release();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return threads * blocks * 4.0 * 16 * 16 * 64 / s / 1e9;  // G MAC/s, all threads
}

int main() {
  if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return std::puts("AMX not available"), 1;
  const int64_t blocks = 1 << 21;
  std::printf("threads %d, G int8 MAC/s (best of 3):\n", omp_get_max_threads());
  const struct {
    const char* name;
    int64_t a, b;
    bool indep = false;
  } cases[] = {{"TDPBSSD only (no tile loads)", 0, 0},
               {"L1 loads, no operand dependency", 16 << 10, 16 << 10, true},
               {"loads from L1 (A 16 KiB, B 16 KiB)", 16 << 10, 16 << 10},
               {"A 16 KiB L1, B 1 MiB L2", 16 << 10, 1 << 20},
               {"A 256 KiB, B 1 MiB (L2)", 256 << 10, 1 << 20},
               {"A 1 MiB, B 4 MiB (L2 / L3)", 1 << 20, 4 << 20}};
  for (const auto& c : cases) {
    double best = 0;
    for (int r = 0; r < 3; ++r) best = std::max(best, run(blocks, c.a, c.b, c.indep));
    std::printf("  %-36s %7.0f\n", c.name, best);
  }
}
