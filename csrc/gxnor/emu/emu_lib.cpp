// The CUDA kernel sources compiled as host C++ through the emulation header: a shared library
// exposing the same C API (csrc/gxnor/cuda/api.h) over host memory, loaded by the Python tests
// with ctypes and run on small grids bit-exactly against gxnor_cuda/reference.py.
#include "../cuda/archs.cu"
#include "../cuda/b1_gemm.cu"
#include "../cuda/bf16_gemm.cu"
#include "../cuda/conv.cu"
#include "../cuda/dst.cu"
#include "../cuda/gemm.cu"
#include "../cuda/pack.cu"
#include "../cuda/tc_conv.cu"
#include "../cuda/tc_gemm.cu"

extern "C" long long gxnor_emu_launches() { return gxemu::g_launches.load(); }
