// Torch-free C API of the gxnor CUDA kernels. Pointers are device pointers (host pointers under
// the emulation build), `stream` is a cudaStream_t. Every function returns a cudaError_t (0 = ok).
// The torch binding (csrc/bind/cuda_ops.cpp) and the emulation library (tests) both call these.
#pragma once
#include <cstdint>

extern "C" {
// Pack rows of K values (mode 0: strict, counts values outside {-1,0,1} into *bad; mode 1:
// threshold phi_thr). out: rows x 2 x W int32.
int gxnor_cuda_pack_f32(const float* x, int64_t rows, int64_t K, int mode, float thr, int32_t* out,
                        unsigned long long* bad, void* stream);
int gxnor_cuda_pack_i8(const int8_t* x, int64_t rows, int64_t K, int32_t* out, unsigned long long* bad,
                       void* stream);
// Unpack rows x 2 x W words into rows x K values.
int gxnor_cuda_unpack_i8(const int32_t* p, int64_t rows, int64_t K, int8_t* out, void* stream);
int gxnor_cuda_unpack_f32(const int32_t* p, int64_t rows, int64_t K, float* out, void* stream);
// Add the number of non-canonical plane-word pairs to *count.
int gxnor_cuda_count_noncanonical(const int32_t* p, int64_t rows, int64_t K, unsigned long long* count,
                                  void* stream);
// C (M, N) = a_dense @ b_dense.T for packed a (M, 2, W), b (N, 2, W): int32 into c_int, or (when
// c_int is null) float c_float = C * scale[j] + bias[j] (scale/bias may be null).
int gxnor_cuda_xnor_gemm(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                         const float* scale, const float* bias, int32_t* c_int, float* c_float, void* stream);
// Format v1 rows (rows, 2, W) -> the tensor-core layout tc16 (rows, T), T = 8 ceil(K / 128) >= 2 W.
int gxnor_cuda_to_tc16(const int32_t* p, int64_t rows, int64_t W, int64_t T, int32_t* out, void* stream);
// C (M, N) = a_dense @ b_dense.T for a (M, T), b (N, T) in tc16 on int8 tensor cores (mma.sync,
// sm_80 and newer; K < 2^19; returns 1 when T is not a multiple of 8); epilogue as xnor_gemm.
int gxnor_cuda_xnor_gemm_tc(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t T,
                            const float* scale, const float* bias, int32_t* c_int, float* c_float,
                            void* stream);
// C (M, N) = a_dense @ b_dense.T for format v1 a (M, 2, W), b (N, 2, W) on the binary tensor cores
// (mma.sync .b1 .and.popc, sm_80 / sm_86 / sm_89); epilogue as xnor_gemm.
int gxnor_cuda_xnor_gemm_b1(const int32_t* a, const int32_t* b, int64_t M, int64_t N, int64_t W,
                            const float* scale, const float* bias, int32_t* c_int, float* c_float,
                            void* stream);
// Format v1 (rows, 2, W) along K -> the bf16 tensor-core layout tb16: out (rows, Tq) (transpose 0) or
// the transpose's rows, out (K, Tq) (transpose 1); Tq words of 16 values, zero codes past the end.
int gxnor_cuda_to_tb16(const int32_t* p, int64_t rows, int64_t K, int64_t W, int transpose, int64_t Tq,
                       int32_t* out, void* stream);
// C (M, P) = a (M, R) bf16 row-major @ b_dense.T for b (P, Tq) in tb16, fp32 accumulation on bf16
// tensor cores (mma.sync, sm_80 and newer), into bf16 c_bf16 or (when null) float c_f32. Returns 1
// unless R % 8 == 0, Tq % 4 == 0 and 16 Tq >= R.
int gxnor_cuda_ternary_gemm_bf16(const uint16_t* a, const int32_t* b, int64_t M, int64_t P, int64_t R,
                                 int64_t Tq, uint16_t* c_bf16, float* c_f32, void* stream);
// Packed channels-last conv: x (n, h, w, g, 2, wg), w (o, kh, kw, 2, wg); shape16 = the 16 fields of
// gxnor::ConvShape (csrc/gxnor/conv_shape.h) in order. Output (n, ho, wo, o): int32 into c_int, or
// (when c_int is null) float32 c_float = C * scale[oc] + bias[oc].
int gxnor_cuda_xnor_conv2d(const int32_t* x, const int32_t* w, const int64_t* shape16, const float* scale,
                           const float* bias, int32_t* c_int, float* c_float, void* stream);
// xnor_conv2d on int8 tensor cores (mma.sync, sm_80 and newer) from tc16 operands: x (n h w g + 1,
// Tc) with a zero row last, w (o kh kw, Tc), Tc = 8 ceil(C / groups / 128); output as xnor_conv2d.
int gxnor_cuda_xnor_conv2d_tc(const int32_t* x, const int32_t* w, const int64_t* shape16, int64_t Tc,
                              const float* scale, const float* bias, int32_t* c_int, float* c_float,
                              void* stream);
// The same conv emitting packed phi_thr(C * scale[oc] + bias[oc]) into out (n, ho, wo, 2, wp), whose
// padding words the caller zeroes. Needs groups = 1 or o / groups a multiple of 32 (else returns 1).
int gxnor_cuda_xnor_conv2d_pack(const int32_t* x, const int32_t* w, const int64_t* shape16,
                                const float* scale, const float* bias, float thr, int32_t* out, int64_t wp,
                                void* stream);
// In-place DST on packed ternary rows (rows x 2 x W) from a float gradient (rows x K); adds the
// number of non-finite entries to *bad. rng: random-number contract (1 or 2, dst.h).
int gxnor_cuda_dst_packed(int32_t* w, const float* grad, int64_t rows, int64_t K, float lr, float m,
                          int increment, int rng, uint64_t seed, uint64_t offset, unsigned long long* bad,
                          void* stream);
// In-place DST on n int8 state indices in [-hi, hi] (step 2 for binary), rows of K.
int gxnor_cuda_dst_states(int8_t* s, const float* grad, int64_t n, int64_t K, float lr, float m, float inv_dz,
                          int hi, int step, int increment, int rng, uint64_t seed, uint64_t offset,
                          unsigned long long* bad, void* stream);
// Architectures compiled into this library, e.g. "sm_80;sm_90" ("host-emulation" when emulated).
const char* gxnor_cuda_archs();
}
