// Minimal test harness for the torch-free C++ tests (ctest runs each binary; nonzero = failure).
#pragma once
#include <cstdio>
#include <cstdlib>

inline int g_failures = 0;
#define CHECK(cond, ...)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                            \
      std::fprintf(stderr, "\n");                                                   \
      ++g_failures;                                                                 \
    }                                                                               \
  } while (0)
#define TEST_MAIN_END()                                    \
  do {                                                     \
    if (g_failures)                                        \
      std::fprintf(stderr, "%d failure(s)\n", g_failures); \
    else                                                   \
      std::printf("ok\n");                                 \
    return g_failures ? 1 : 0;                             \
  } while (0)
