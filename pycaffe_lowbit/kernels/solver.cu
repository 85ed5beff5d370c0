// Solver updates (pycaffe_lowbit/solvers, Caffe's SGDSolver::ApplyUpdate):
// one fused pass per rule over every learnable param of a net.
//
// Layout: the P params form one index of n = sum of their sizes items; param
// p holds items [offsets[p], offsets[p + 1]) (offsets: P + 1 values, item i
// is element i - offsets[p] of param p). Its arrays, all of type T and
// C-contiguous, are reached through tables of addresses: data[p], diff[p],
// hist[p] (and hist2[p]), so no param is copied into a concatenation.
// Per param: rates[p] = T(rate lr_mult_p) (Adam: times its bias correction),
// decays[p] = T(weight_decay decay_mult_p), reg[p] = 0 (none: decay 0), 1
// (L2) or 2 (L1), clips[p] = T(clip_data_p), or -1 for none.
//
// Each item does, in T, in the order and with the roundings of the NumPy path
// (solvers/update.py, sgd.py, adaptive.py), so the results are the same bits:
//   g = diff clip_scale iter_scale (+ decay data | + decay sign(data))
//   the rule: the history update and the step u (below, per kernel)
//   diff = u; data = data - u, then clamped to [-clip, clip] when clipped.
// Products are rounded on their own (lowbit_mul: no FMA), as NumPy's are.

__device__ float lowbit_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ double lowbit_mul(double a, double b) { return __dmul_rn(a, b); }

// The param holding item i: the largest p with offsets[p] <= i (empty params
// share their offset with the next one and are skipped).
__device__ int lowbit_param_of(const index_t i, const index_t* offsets, const int n_params) {
  int lo = 0, hi = n_params - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= i) lo = mid; else hi = mid - 1;
  }
  return lo;
}

template <typename T>
__device__ T* lowbit_param_array(const unsigned long long* table, const int p) {
  return reinterpret_cast<T*>(table[p]);
}

// NumPy's sign: +1, -1, +0 for either zero, NaN for NaN
template <typename T>
__device__ T lowbit_solver_sign(const T v) {
  return v > T(0) ? T(1) : (v < T(0) ? T(-1) : (v == T(0) ? T(0) : v));
}

// The gradient the rule sees: clip scaling, iter_size normalization, then
// regularization (a scale of exactly 1 leaves g as it is).
template <typename T>
__device__ T lowbit_solver_grad(const T diff, const T data, const T clip_scale,
                                const T iter_scale, const unsigned char reg, const T decay) {
  T g = diff * clip_scale;
  g = g * iter_scale;
  if (reg == 1) g = g + lowbit_mul(decay, data);
  if (reg == 2) g = g + lowbit_mul(decay, lowbit_solver_sign(data));
  return g;
}

// diff = u; data -= u; clip_data
template <typename T>
__device__ void lowbit_solver_step(T* data, T* diff, const index_t j, const T u, const T clip) {
  diff[j] = u;
  T w = data[j] - u;
  if (clip >= T(0)) w = w < -clip ? -clip : (w > clip ? clip : w);
  data[j] = w;
}

// SGD: h = rate g + momentum h; u = h
template <typename T>
__global__ void lowbit_sgd_update(const index_t n, const int n_params, const index_t* offsets,
                                  const unsigned long long* data,
                                  const unsigned long long* diff,
                                  const unsigned long long* hist, const T* rates,
                                  const T* decays, const unsigned char* reg, const T* clips,
                                  const T clip_scale, const T iter_scale, const T momentum) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const int p = lowbit_param_of(i, offsets, n_params);
    const index_t j = i - offsets[p];
    T* w = lowbit_param_array<T>(data, p);
    T* d = lowbit_param_array<T>(diff, p);
    T* h = lowbit_param_array<T>(hist, p);
    const T g = lowbit_solver_grad(d[j], w[j], clip_scale, iter_scale, reg[p], decays[p]);
    const T v = lowbit_mul(rates[p], g) + lowbit_mul(momentum, h[j]);
    h[j] = v;
    lowbit_solver_step(w, d, j, v, clips[p]);
  }
}

// Nesterov: h' = rate g + momentum h; u = (1 + momentum) h' - momentum h
template <typename T>
__global__ void lowbit_nesterov_update(const index_t n, const int n_params,
                                       const index_t* offsets, const unsigned long long* data,
                                       const unsigned long long* diff,
                                       const unsigned long long* hist, const T* rates,
                                       const T* decays, const unsigned char* reg,
                                       const T* clips, const T clip_scale, const T iter_scale,
                                       const T momentum) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const int p = lowbit_param_of(i, offsets, n_params);
    const index_t j = i - offsets[p];
    T* w = lowbit_param_array<T>(data, p);
    T* d = lowbit_param_array<T>(diff, p);
    T* h = lowbit_param_array<T>(hist, p);
    const T g = lowbit_solver_grad(d[j], w[j], clip_scale, iter_scale, reg[p], decays[p]);
    const T previous = h[j];
    const T v = lowbit_mul(rates[p], g) + lowbit_mul(momentum, previous);
    h[j] = v;
    const T u = lowbit_mul(T(1) + momentum, v) - lowbit_mul(momentum, previous);
    lowbit_solver_step(w, d, j, u, clips[p]);
  }
}

// AdaGrad: h = h + g^2; u = rate (g / (sqrt(h) + delta))
template <typename T>
__global__ void lowbit_adagrad_update(const index_t n, const int n_params,
                                      const index_t* offsets, const unsigned long long* data,
                                      const unsigned long long* diff,
                                      const unsigned long long* hist, const T* rates,
                                      const T* decays, const unsigned char* reg,
                                      const T* clips, const T clip_scale, const T iter_scale,
                                      const T delta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const int p = lowbit_param_of(i, offsets, n_params);
    const index_t j = i - offsets[p];
    T* w = lowbit_param_array<T>(data, p);
    T* d = lowbit_param_array<T>(diff, p);
    T* h = lowbit_param_array<T>(hist, p);
    const T g = lowbit_solver_grad(d[j], w[j], clip_scale, iter_scale, reg[p], decays[p]);
    const T v = h[j] + lowbit_mul(g, g);
    h[j] = v;
    lowbit_solver_step(w, d, j, lowbit_mul(rates[p], g / (sqrt(v) + delta)), clips[p]);
  }
}

// RMSProp: h = (1 - rms_decay) g^2 + rms_decay h; u = rate (g / (sqrt(h) + delta))
template <typename T>
__global__ void lowbit_rmsprop_update(const index_t n, const int n_params,
                                      const index_t* offsets, const unsigned long long* data,
                                      const unsigned long long* diff,
                                      const unsigned long long* hist, const T* rates,
                                      const T* decays, const unsigned char* reg,
                                      const T* clips, const T clip_scale, const T iter_scale,
                                      const T rms_decay, const T delta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const int p = lowbit_param_of(i, offsets, n_params);
    const index_t j = i - offsets[p];
    T* w = lowbit_param_array<T>(data, p);
    T* d = lowbit_param_array<T>(diff, p);
    T* h = lowbit_param_array<T>(hist, p);
    const T g = lowbit_solver_grad(d[j], w[j], clip_scale, iter_scale, reg[p], decays[p]);
    const T v = lowbit_mul(T(1) - rms_decay, lowbit_mul(g, g)) + lowbit_mul(rms_decay, h[j]);
    h[j] = v;
    lowbit_solver_step(w, d, j, lowbit_mul(rates[p], g / (sqrt(v) + delta)), clips[p]);
  }
}

// AdaDelta: h = (1 - m) g^2 + m h; s = g sqrt((h2 + delta) / (h + delta));
// h2 = (1 - m) s^2 + m h2; u = rate s
template <typename T>
__global__ void lowbit_adadelta_update(const index_t n, const int n_params,
                                       const index_t* offsets, const unsigned long long* data,
                                       const unsigned long long* diff,
                                       const unsigned long long* hist,
                                       const unsigned long long* hist2, const T* rates,
                                       const T* decays, const unsigned char* reg,
                                       const T* clips, const T clip_scale, const T iter_scale,
                                       const T momentum, const T delta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const int p = lowbit_param_of(i, offsets, n_params);
    const index_t j = i - offsets[p];
    T* w = lowbit_param_array<T>(data, p);
    T* d = lowbit_param_array<T>(diff, p);
    T* h = lowbit_param_array<T>(hist, p);
    T* h2 = lowbit_param_array<T>(hist2, p);
    const T g = lowbit_solver_grad(d[j], w[j], clip_scale, iter_scale, reg[p], decays[p]);
    const T keep = T(1) - momentum;
    const T v = lowbit_mul(keep, lowbit_mul(g, g)) + lowbit_mul(momentum, h[j]);
    h[j] = v;
    const T s = lowbit_mul(g, sqrt((h2[j] + delta) / (v + delta)));
    h2[j] = lowbit_mul(keep, lowbit_mul(s, s)) + lowbit_mul(momentum, h2[j]);
    lowbit_solver_step(w, d, j, lowbit_mul(rates[p], s), clips[p]);
  }
}

// Adam: m = (1 - b1) g + b1 m; v = (1 - b2) g^2 + b2 v;
// u = rate (m / (sqrt(v) + delta)), the rate holding the bias correction
template <typename T>
__global__ void lowbit_adam_update(const index_t n, const int n_params, const index_t* offsets,
                                   const unsigned long long* data,
                                   const unsigned long long* diff,
                                   const unsigned long long* hist,
                                   const unsigned long long* hist2, const T* rates,
                                   const T* decays, const unsigned char* reg, const T* clips,
                                   const T clip_scale, const T iter_scale, const T beta1,
                                   const T beta2, const T delta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const int p = lowbit_param_of(i, offsets, n_params);
    const index_t j = i - offsets[p];
    T* w = lowbit_param_array<T>(data, p);
    T* d = lowbit_param_array<T>(diff, p);
    T* m = lowbit_param_array<T>(hist, p);
    T* v = lowbit_param_array<T>(hist2, p);
    const T g = lowbit_solver_grad(d[j], w[j], clip_scale, iter_scale, reg[p], decays[p]);
    const T mj = lowbit_mul(T(1) - beta1, g) + lowbit_mul(beta1, m[j]);
    const T vj = lowbit_mul(T(1) - beta2, lowbit_mul(g, g)) + lowbit_mul(beta2, v[j]);
    m[j] = mj;
    v[j] = vj;
    lowbit_solver_step(w, d, j, lowbit_mul(rates[p], mj / (sqrt(vj) + delta)), clips[p]);
  }
}

// Gradient clipping's sum of squares, in double: partial[t] = sum of diff^2
// over the items t, t + n_partial, t + 2 n_partial, ... of the index (the
// host adds the n_partial partial sums).
template <typename T>
__global__ void lowbit_params_sumsq(const index_t n_partial, const index_t n,
                                    const int n_params, const index_t* offsets,
                                    const unsigned long long* diff, double* partial) {
  LOWBIT_KERNEL_LOOP(t, n_partial) {
    double sum = 0;
    int p = 0;
    for (index_t i = t; i < n; i += n_partial) {
      while (offsets[p + 1] <= i) ++p;
      const double v = (double)lowbit_param_array<T>(diff, p)[i - offsets[p]];
      sum += lowbit_mul(v, v);
    }
    partial[t] = sum;
  }
}
