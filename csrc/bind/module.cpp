// Python module stub: importing gxnor_cuda._C loads the shared library, whose static
// initialisers register the CPU (and, when built, CUDA) kernels with the torch dispatcher.
#include <Python.h>

static PyModuleDef gxnor_module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};

extern "C" PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&gxnor_module); }
