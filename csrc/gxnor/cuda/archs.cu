// Reports the architectures this CUDA library was compiled for (GXNOR_CUDA_ARCHS, set by the
// build), or "host-emulation" when compiled as host C++ through compat.cuh.
#include "api.h"
#include "compat.cuh"

#ifndef GXNOR_CUDA_ARCHS
#define GXNOR_CUDA_ARCHS "unknown"
#endif

extern "C" const char* gxnor_cuda_archs() { return GX_EMULATED ? "host-emulation" : GXNOR_CUDA_ARCHS; }
