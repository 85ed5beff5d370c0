// Solver updates (pycaffe_lowbit/solvers, Caffe's SGDSolver::ApplyUpdate):
// one fused pass per rule over every learnable param of a net.
//
// Layout: the P params form one index of n = sum of their sizes items; param
// p holds items [offsets[p], offsets[p + 1]) (offsets: P + 1 values, item i
// is element i - offsets[p] of param p). Its arrays, all of type T and
// C-contiguous, are reached through a table of addresses, one row of P per
// kind: arrays[kind P + p], kind 0 data, 1 diff, 2 history, 3 second history
// (as many rows as the rule has), so no param is copied into a concatenation.
// per_param (3 P): rates [0, P) = T(rate lr_mult_p) (Adam: times its bias
// correction), decays [P, 2 P) = T(weight_decay decay_mult_p), clips [2 P, 3 P)
// = T(clip_data_p) or -1 for none; reg[p] = 0 (no decay), 1 (L2) or 2 (L1).
//
// Each item does, in T, in the order and with the roundings of the NumPy path
// (solvers/update.py, sgd.py, adaptive.py), so the results are the same bits:
//   g = diff clip_scale iter_scale (+ decay data | + decay sign(data))
//   the rule: the history update and the step u (below, per kernel)
//   diff = u; data = data - u, then clamped to [-clip, clip] when clipped
//   (with apply = 0 only diff = u: the solver checks the update first).
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

// NumPy's sign: +1, -1, +0 for either zero, NaN for NaN
template <typename T>
__device__ T lowbit_solver_sign(const T v) {
  return v > T(0) ? T(1) : (v < T(0) ? T(-1) : (v == T(0) ? T(0) : v));
}

// One item of the update: its param p, its element j, and g, the gradient
// the rule sees (clip scaling, iter_size normalization, then regularization;
// a scale of exactly 1 leaves g as it is).
template <typename T>
struct LowbitSolverItem {
  const unsigned long long* arrays;
  const T* per_param;
  int n_params, p, apply;
  index_t j;
  T g;
  __device__ T* array(const int kind) const {
    return reinterpret_cast<T*>(arrays[kind * n_params + p]);
  }
  __device__ T& at(const int kind) const { return array(kind)[j]; }
  __device__ T rate() const { return per_param[p]; }
};

template <typename T>
__device__ LowbitSolverItem<T> lowbit_solver_item(
    const index_t i, const int n_params, const index_t* offsets,
    const unsigned long long* arrays, const T* per_param, const unsigned char* reg,
    const T clip_scale, const T iter_scale, const int apply) {
  LowbitSolverItem<T> e;
  e.apply = apply;
  e.arrays = arrays;
  e.per_param = per_param;
  e.n_params = n_params;
  e.p = lowbit_param_of(i, offsets, n_params);
  e.j = i - offsets[e.p];
  const T data = e.at(0), decay = per_param[n_params + e.p];
  T g = e.at(1) * clip_scale;
  g = g * iter_scale;
  if (reg[e.p] == 1) g = g + lowbit_mul(decay, data);
  if (reg[e.p] == 2) g = g + lowbit_mul(decay, lowbit_solver_sign(data));
  e.g = g;
  return e;
}

// diff = u; then, with apply, data -= u and clip_data (without: the caller
// checks the update values first, then applies them itself)
template <typename T>
__device__ void lowbit_solver_step(const LowbitSolverItem<T>& e, const T u) {
  const T clip = e.per_param[2 * e.n_params + e.p];
  e.at(1) = u;
  if (!e.apply) return;
  T w = e.at(0) - u;
  if (clip >= T(0)) w = w < -clip ? -clip : (w > clip ? clip : w);
  e.at(0) = w;
}

// SGD: h = rate g + momentum h; u = h
template <typename T>
__global__ void lowbit_sgd_update(const index_t n, const int n_params, const index_t* offsets,
                                  const unsigned long long* arrays, const T* per_param,
                                  const unsigned char* reg, const T clip_scale,
                                  const T iter_scale, const int apply, const T momentum) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const LowbitSolverItem<T> e = lowbit_solver_item(i, n_params, offsets, arrays, per_param,
                                                     reg, clip_scale, iter_scale, apply);
    const T v = lowbit_mul(e.rate(), e.g) + lowbit_mul(momentum, e.at(2));
    e.at(2) = v;
    lowbit_solver_step(e, v);
  }
}

// Nesterov: h' = rate g + momentum h; u = (1 + momentum) h' - momentum h
template <typename T>
__global__ void lowbit_nesterov_update(const index_t n, const int n_params,
                                       const index_t* offsets, const unsigned long long* arrays,
                                       const T* per_param, const unsigned char* reg,
                                       const T clip_scale, const T iter_scale,
                                       const int apply,
                                       const T momentum) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const LowbitSolverItem<T> e = lowbit_solver_item(i, n_params, offsets, arrays, per_param,
                                                     reg, clip_scale, iter_scale, apply);
    const T previous = e.at(2);
    const T v = lowbit_mul(e.rate(), e.g) + lowbit_mul(momentum, previous);
    e.at(2) = v;
    lowbit_solver_step(e, lowbit_mul(T(1) + momentum, v) - lowbit_mul(momentum, previous));
  }
}

// AdaGrad: h = h + g^2; u = rate (g / (sqrt(h) + delta))
template <typename T>
__global__ void lowbit_adagrad_update(const index_t n, const int n_params,
                                      const index_t* offsets, const unsigned long long* arrays,
                                      const T* per_param, const unsigned char* reg,
                                      const T clip_scale, const T iter_scale,
                                      const int apply, const T delta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const LowbitSolverItem<T> e = lowbit_solver_item(i, n_params, offsets, arrays, per_param,
                                                     reg, clip_scale, iter_scale, apply);
    const T v = e.at(2) + lowbit_mul(e.g, e.g);
    e.at(2) = v;
    lowbit_solver_step(e, lowbit_mul(e.rate(), e.g / (sqrt(v) + delta)));
  }
}

// RMSProp: h = (1 - rms_decay) g^2 + rms_decay h; u = rate (g / (sqrt(h) + delta))
template <typename T>
__global__ void lowbit_rmsprop_update(const index_t n, const int n_params,
                                      const index_t* offsets, const unsigned long long* arrays,
                                      const T* per_param, const unsigned char* reg,
                                      const T clip_scale, const T iter_scale,
                                      const int apply,
                                      const T rms_decay, const T delta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const LowbitSolverItem<T> e = lowbit_solver_item(i, n_params, offsets, arrays, per_param,
                                                     reg, clip_scale, iter_scale, apply);
    const T v = lowbit_mul(T(1) - rms_decay, lowbit_mul(e.g, e.g))
                + lowbit_mul(rms_decay, e.at(2));
    e.at(2) = v;
    lowbit_solver_step(e, lowbit_mul(e.rate(), e.g / (sqrt(v) + delta)));
  }
}

// AdaDelta: h = (1 - m) g^2 + m h; s = g sqrt((h2 + delta) / (h + delta));
// h2 = (1 - m) s^2 + m h2; u = rate s
template <typename T>
__global__ void lowbit_adadelta_update(const index_t n, const int n_params,
                                       const index_t* offsets, const unsigned long long* arrays,
                                       const T* per_param, const unsigned char* reg,
                                       const T clip_scale, const T iter_scale,
                                       const int apply,
                                       const T momentum, const T delta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const LowbitSolverItem<T> e = lowbit_solver_item(i, n_params, offsets, arrays, per_param,
                                                     reg, clip_scale, iter_scale, apply);
    const T keep = T(1) - momentum;
    const T v = lowbit_mul(keep, lowbit_mul(e.g, e.g)) + lowbit_mul(momentum, e.at(2));
    e.at(2) = v;
    const T s = lowbit_mul(e.g, sqrt((e.at(3) + delta) / (v + delta)));
    e.at(3) = lowbit_mul(keep, lowbit_mul(s, s)) + lowbit_mul(momentum, e.at(3));
    lowbit_solver_step(e, lowbit_mul(e.rate(), s));
  }
}

// Adam: m = (1 - b1) g + b1 m; v = (1 - b2) g^2 + b2 v;
// u = rate (m / (sqrt(v) + delta)), the rate holding the bias correction
template <typename T>
__global__ void lowbit_adam_update(const index_t n, const int n_params, const index_t* offsets,
                                   const unsigned long long* arrays, const T* per_param,
                                   const unsigned char* reg, const T clip_scale,
                                   const T iter_scale, const int apply, const T beta1,
                                   const T beta2,
                                   const T delta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const LowbitSolverItem<T> e = lowbit_solver_item(i, n_params, offsets, arrays, per_param,
                                                     reg, clip_scale, iter_scale, apply);
    const T m = lowbit_mul(T(1) - beta1, e.g) + lowbit_mul(beta1, e.at(2));
    const T v = lowbit_mul(T(1) - beta2, lowbit_mul(e.g, e.g)) + lowbit_mul(beta2, e.at(3));
    e.at(2) = m;
    e.at(3) = v;
    lowbit_solver_step(e, lowbit_mul(e.rate(), m / (sqrt(v) + delta)));
  }
}

// Gradient clipping's sum of squares, in double: partial[t] = sum of diff^2
// over the items t, t + n_partial, t + 2 n_partial, ... of the index (the
// host adds the n_partial partial sums).
template <typename T>
__global__ void lowbit_params_sumsq(const index_t n_partial, const index_t n,
                                    const int n_params, const index_t* offsets,
                                    const unsigned long long* arrays, double* partial) {
  LOWBIT_KERNEL_LOOP(t, n_partial) {
    double sum = 0;
    int p = 0;
    for (index_t i = t; i < n; i += n_partial) {
      while (offsets[p + 1] <= i) ++p;
      const T* diff = reinterpret_cast<const T*>(arrays[n_params + p]);
      const double v = (double)diff[i - offsets[p]];
      sum += lowbit_mul(v, v);
    }
    partial[t] = sum;
  }
}
