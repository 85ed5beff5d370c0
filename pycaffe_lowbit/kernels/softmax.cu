// Softmax along one axis (layers/softmax.py; also the probabilities of
// SoftmaxWithLoss and InfogainLoss). x is viewed as (outer, channels, inner);
// one thread per position p = o inner + l (positions = outer * inner) loops
// over its channels, x[(o channels + c) inner + l]. In place (x == y) is
// allowed: a thread reads each value before writing it.

// y_c = exp(x_c - max_k x_k) / sum_k exp(x_k - max_k x_k)
template <typename T>
__global__ void lowbit_softmax_fwd(const index_t positions, const index_t channels,
                                   const index_t inner, const T* x, T* y) {
  LOWBIT_KERNEL_LOOP(p, positions) {
    const index_t first = (p / inner) * channels * inner + p % inner;
    T m = x[first];
    for (index_t c = 1; c < channels; ++c) m = max(m, x[first + c * inner]);
    T sum = T(0);
    for (index_t c = 0; c < channels; ++c) {
      const T e = exp(x[first + c * inner] - m);
      y[first + c * inner] = e;
      sum += e;
    }
    for (index_t c = 0; c < channels; ++c) y[first + c * inner] = y[first + c * inner] / sum;
  }
}

// dx_c = (dy_c - sum_k dy_k y_k) y_c (dx may be dy)
template <typename T>
__global__ void lowbit_softmax_bwd(const index_t positions, const index_t channels,
                                   const index_t inner, const T* dy, const T* y, T* dx) {
  LOWBIT_KERNEL_LOOP(p, positions) {
    const index_t first = (p / inner) * channels * inner + p % inner;
    T dot = T(0);
    for (index_t c = 0; c < channels; ++c) dot += dy[first + c * inner] * y[first + c * inner];
    for (index_t c = 0; c < channels; ++c) {
      const index_t i = first + c * inner;
      dx[i] = (dy[i] - dot) * y[i];
    }
  }
}
