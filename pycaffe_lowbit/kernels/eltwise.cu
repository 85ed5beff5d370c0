// Eltwise (layers/eltwise.py) over two or more bottoms of one shape, folded a
// pair at a time as Caffe does: each launch combines the running result with
// the next bottom. An output may be one of the inputs (the running result).

// SUM: y = ca a + cb b (the first pair; then a = y, ca = 1)
template <typename T>
__global__ void lowbit_eltwise_sum(const index_t n, const T* a, const T ca, const T* b,
                                   const T cb, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = ca * a[i] + cb * b[i]; }
}

// SUM's gradient: dx = c dy
template <typename T>
__global__ void lowbit_eltwise_scale(const index_t n, const T* dy, const T c, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) { dx[i] = c * dy[i]; }
}

// PROD: y = a b (forward, and the stable gradient's products with dy)
template <typename T>
__global__ void lowbit_eltwise_prod(const index_t n, const T* a, const T* b, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = a[i] * b[i]; }
}

// PROD's gradient without stable_prod_grad: dx = y / x dy
template <typename T>
__global__ void lowbit_eltwise_prod_quotient(const index_t n, const T* y, const T* x,
                                             const T* dy, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) { dx[i] = y[i] / x[i] * dy[i]; }
}

// MAX with its mask (the index of the winning bottom), Caffe's CPU ties:
// the first pair (index 1): y = a > b ? a : b, mask 0 or 1; a later bottom
// b (index >= 2) against the running y = a wins only when strictly greater
template <typename T>
__global__ void lowbit_eltwise_max_fwd(const index_t n, const T* a, const T* b,
                                       const int index, T* y, int* mask) {
  LOWBIT_KERNEL_LOOP(i, n) {
    if (index == 1) {
      const bool first = a[i] > b[i];
      y[i] = first ? a[i] : b[i];
      mask[i] = first ? 0 : 1;
    } else if (b[i] > a[i]) {
      y[i] = b[i];
      mask[i] = index;
    }
  }
}

// dx = dy where bottom ``index`` won, else 0
template <typename T>
__global__ void lowbit_eltwise_max_bwd(const index_t n, const T* dy, const int* mask,
                                       const int index, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) { dx[i] = dy[i] * (mask[i] == index ? T(1) : T(0)); }
}
