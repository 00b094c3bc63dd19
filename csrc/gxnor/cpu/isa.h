// Run-time CPU instruction-set choice for the CPU kernels: AMX-INT8 (+ AVX-512 VPOPCNTDQ),
// AVX-512 VPOPCNTDQ, AVX2 or scalar, picked by CPUID once (AMX also needs the kernel's XTILEDATA
// permission); GXNOR_CPU_ISA=amx|avx512|avx2|scalar (or set_isa) forces a lower path so tests can
// run every path on one machine. Torch-free.
#pragma once
#include <atomic>
#include <mutex>
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <cstdlib>
#include <cstring>

namespace gxnor::cpu {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };

inline const char* isa_name(Isa i) {
  switch (i) {
    case Isa::kAmx:
      return "amx_int8";
    case Isa::kAvx512:
      return "avx512_vpopcntdq";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "scalar";
  }
}

// AMX-TILE + AMX-INT8 in CPUID, and the OS grants this process the XTILEDATA state.
inline bool amx_usable() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!((d >> 24) & 1) || !((d >> 25) & 1)) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

inline Isa detect_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq"))
    return amx_usable() ? Isa::kAmx : Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi2"))
    return Isa::kAvx2;
#endif
  return Isa::kScalar;
}

inline Isa parse_isa(const char* s, Isa fallback) {
  if (!s) return fallback;
  if (!std::strcmp(s, "amx") || !std::strcmp(s, "amx_int8")) return Isa::kAmx;
  if (!std::strcmp(s, "avx512") || !std::strcmp(s, "avx512_vpopcntdq")) return Isa::kAvx512;
  if (!std::strcmp(s, "avx2")) return Isa::kAvx2;
  if (!std::strcmp(s, "scalar")) return Isa::kScalar;
  return fallback;
}

inline std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{[] {
    const Isa hw = detect_isa();
    Isa want = parse_isa(std::getenv("GXNOR_CPU_ISA"), hw);
    return static_cast<int>(want > hw ? hw : want);
  }()};
  return slot;
}

// The ISA the kernels use now.
inline Isa current_isa() { return static_cast<Isa>(isa_slot().load(std::memory_order_relaxed)); }

// Force an ISA (clamped to what the hardware has); returns the one in effect.
inline Isa set_isa(Isa want) {
  const Isa hw = detect_isa();
  const Isa eff = want > hw ? hw : want;
  isa_slot().store(static_cast<int>(eff));
  return eff;
}

}  // namespace gxnor::cpu

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GXNOR_X86 1
#define GXNOR_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,popcnt,bmi2")))
#define GXNOR_TARGET_AVX2 __attribute__((target("avx2,fma,popcnt,bmi2")))
#define GXNOR_TARGET_AMX                                                                    \
  __attribute__((                                                                           \
      target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,popcnt," \
             "bmi2")))
#include <immintrin.h>

namespace gxnor::cpu {
// Masked AVX-512 loads and stores of 64 / 32 / 16 bytes, with the plain instruction when every lane
// is on: on Zen 4 the masked forms cost several times a plain one even with a full mask, and the
// kernels' full-width words, rows and channel blocks are the common case.
GXNOR_TARGET_AVX512 inline __m512 load_ps16(__mmask16 m, const float* p) {
  return m == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}
GXNOR_TARGET_AVX512 inline void store_ps16(float* p, __mmask16 m, __m512 v) {
  if (m == 0xffff) return _mm512_storeu_ps(p, v);
  _mm512_mask_storeu_ps(p, m, v);
}
GXNOR_TARGET_AVX512 inline __m512i load_epi64x8(__mmask8 m, const void* p) {
  return m == 0xff ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi64(m, p);
}
GXNOR_TARGET_AVX512 inline __m256 load_ps8(__mmask8 m, const float* p) {
  return m == 0xff ? _mm256_loadu_ps(p) : _mm256_maskz_loadu_ps(m, p);
}
GXNOR_TARGET_AVX512 inline void store_ps8(float* p, __mmask8 m, __m256 v) {
  if (m == 0xff) return _mm256_storeu_ps(p, v);
  _mm256_mask_storeu_ps(p, m, v);
}
GXNOR_TARGET_AVX512 inline void store_epi32x8(int32_t* p, __mmask8 m, __m256i v) {
  if (m == 0xff) return _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  _mm256_mask_storeu_epi32(p, m, v);
}
GXNOR_TARGET_AVX512 inline __m256i load_epi8x32(__mmask32 m, const void* p) {
  return m == 0xffffffffu ? _mm256_loadu_si256(static_cast<const __m256i*>(p))
                          : _mm256_maskz_loadu_epi8(m, p);
}
GXNOR_TARGET_AVX512 inline void store_epi8x32(void* p, __mmask32 m, __m256i v) {
  if (m == 0xffffffffu) return _mm256_storeu_si256(static_cast<__m256i*>(p), v);
  _mm256_mask_storeu_epi8(p, m, v);
}
GXNOR_TARGET_AVX512 inline __m128i load_epi8x16(__mmask16 m, const void* p) {
  return m == 0xffff ? _mm_loadu_si128(static_cast<const __m128i*>(p)) : _mm_maskz_loadu_epi8(m, p);
}
GXNOR_TARGET_AVX512 inline void store_epi8x16(void* p, __mmask16 m, __m128i v) {
  if (m == 0xffff) return _mm_storeu_si128(static_cast<__m128i*>(p), v);
  _mm_mask_storeu_epi8(p, m, v);
}
}  // namespace gxnor::cpu
#else
#define GXNOR_X86 0
#define GXNOR_TARGET_AVX512
#define GXNOR_TARGET_AVX2
#define GXNOR_TARGET_AMX
#endif
