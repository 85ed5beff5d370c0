// The host stand-ins for CUDA's built-ins, so that a grid-stride kernel of
// this folder compiles with a host C++ compiler and runs on the CPU: every
// (block, thread) pair of the launch grid in turn, the built-in variables
// set before each call. Kernels that use __shared__ or __syncthreads are
// device-only (kernels/__init__.py's DEVICE_ONLY) and are not compiled here.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#define LOWBIT_HOST 1
#define __global__
#define __device__ inline
#define __host__
#define __forceinline__ inline

struct dim3 { unsigned int x, y, z; };
static dim3 threadIdx, blockIdx, blockDim, gridDim;

using std::abs; using std::ceil; using std::exp; using std::expm1; using std::floor;
using std::fabs; using std::fmax; using std::fmin; using std::log; using std::log1p;
using std::pow; using std::sqrt; using std::tanh; using std::isfinite; using std::isnan;
using std::copysign;

template <typename T> inline T min(T a, T b) { return b < a ? b : a; }
template <typename T> inline T max(T a, T b) { return a < b ? b : a; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
// Products rounded on their own (never fused into an FMA): the host never fuses here.
inline float __fmul_rn(float a, float b) { return a * b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __float_as_int(float x) { int i; __builtin_memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; __builtin_memcpy(&x, &i, 4); return x; }
template <typename T> inline T __ldg(const T* p) { return *p; }
// One thread at a time: the read-modify-write needs no atomicity here.
template <typename T> inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <typename T> inline T atomicMax(T* p, T v) { T old = *p; if (old < v) *p = v; return old; }
template <typename T> inline T atomicOr(T* p, T v) { T old = *p; *p = old | v; return old; }

namespace lowbit_host {
// The kernel's parameters from CUDA's launch convention: args[k] points at
// the value of parameter k (what cuLaunchKernel's kernelParams holds).
template <typename... P, std::size_t... I>
void invoke(void (*kernel)(P...), void** args, std::index_sequence<I...>) {
  kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(args[I])...);
}

template <typename... P>
void run(unsigned int grid, unsigned int block, void (*kernel)(P...), void** args) {
  gridDim = {grid, 1, 1};
  blockDim = {block, 1, 1};
  for (unsigned int b = 0; b < grid; ++b) {
    for (unsigned int t = 0; t < block; ++t) {
      blockIdx = {b, 0, 0};
      threadIdx = {t, 0, 0};
      invoke(kernel, args, std::index_sequence_for<P...>{});
    }
  }
}
}  // namespace lowbit_host
