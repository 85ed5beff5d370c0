// Prepended to every kernel source of this folder, on the device (NVRTC) and
// on the host (cuda_host.h), so a family file is self-contained.
//
// index_t: element counts and offsets (64-bit: a col buffer may pass 2^31).
// LOWBIT_KERNEL_LOOP(i, n): the grid-stride loop. Each thread starts at its
// global index and strides by the whole grid, so any grid covers any n and a
// thread never depends on another: the shape every kernel here has unless
// it is listed in kernels/__init__.py's DEVICE_ONLY.
typedef long long index_t;

#define LOWBIT_KERNEL_LOOP(i, n)                                              \
  for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);   \
       i += (index_t)blockDim.x * gridDim.x)
