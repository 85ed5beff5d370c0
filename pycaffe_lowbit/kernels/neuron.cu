// Neuron layers: y = f(x) elementwise, and dL/dx = dL/dy f'(.) (layers/neuron.py).
// In place (x == y) is allowed: each item reads its own inputs before writing.

// ReLU: y = x > 0 ? x : slope x
template <typename T>
__global__ void lowbit_relu_fwd(const index_t n, const T* x, T* y, const T slope) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = x[i] > 0 ? x[i] : x[i] * slope; }
}

// dx = dy (x > 0 ? 1 : slope); x is the bottom data (the top, when in place)
template <typename T>
__global__ void lowbit_relu_bwd(const index_t n, const T* dy, const T* x, T* dx,
                                const T slope) {
  LOWBIT_KERNEL_LOOP(i, n) { dx[i] = dy[i] * (x[i] > 0 ? T(1) : slope); }
}

// Sigmoid, as Caffe: y = 0.5 tanh(0.5 x) + 0.5
template <typename T>
__global__ void lowbit_sigmoid_fwd(const index_t n, const T* x, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = T(0.5) * tanh(T(0.5) * x[i]) + T(0.5); }
}

// dx = dy y (1 - y)
template <typename T>
__global__ void lowbit_sigmoid_bwd(const index_t n, const T* dy, const T* y, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) { dx[i] = dy[i] * y[i] * (T(1) - y[i]); }
}

// TanH: y = tanh(x); dx = dy (1 - y^2)
template <typename T>
__global__ void lowbit_tanh_fwd(const index_t n, const T* x, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = tanh(x[i]); }
}

template <typename T>
__global__ void lowbit_tanh_bwd(const index_t n, const T* dy, const T* y, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) { dx[i] = dy[i] * (T(1) - y[i] * y[i]); }
}
