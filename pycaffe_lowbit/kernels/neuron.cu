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

// ELU: y = max(x, 0) + alpha (exp(min(x, 0)) - 1)
template <typename T>
__global__ void lowbit_elu_fwd(const index_t n, const T* x, T* y, const T alpha) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    y[i] = max(v, T(0)) + alpha * (exp(min(v, T(0))) - T(1));
  }
}

// dx = dy (x > 0 ? 1 : alpha + y)
template <typename T>
__global__ void lowbit_elu_bwd(const index_t n, const T* dy, const T* x, const T* y, T* dx,
                               const T alpha) {
  LOWBIT_KERNEL_LOOP(i, n) { dx[i] = dy[i] * (x[i] > 0 ? T(1) : alpha + y[i]); }
}

// AbsVal: y = |x|; dx = dy sign(x), sign(0) = 0
template <typename T>
__global__ void lowbit_absval_fwd(const index_t n, const T* x, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = fabs(x[i]); }
}

template <typename T>
__global__ void lowbit_absval_bwd(const index_t n, const T* dy, const T* x, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    dx[i] = dy[i] * (v > 0 ? T(1) : (v < 0 ? T(-1) : v));   // NaN stays NaN
  }
}

// BNLL: y = max(x, 0) + log(1 + exp(-|x|)) (= log(1 + exp(x)), overflow-safe)
template <typename T>
__global__ void lowbit_bnll_fwd(const index_t n, const T* x, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    y[i] = max(v, T(0)) + log1p(exp(-fabs(v)));
  }
}

// dx = dy e / (e + 1), e = exp(min(x, threshold)) (Caffe's kBNLL_THRESHOLD, 50)
template <typename T>
__global__ void lowbit_bnll_bwd(const index_t n, const T* dy, const T* x, T* dx,
                                const T threshold) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T e = exp(min(x[i], threshold));
    dx[i] = dy[i] * e / (e + T(1));
  }
}

// Power: y = (shift + scale x)^power, with power == 1 giving shift + scale x, and
// diff_scale = power scale == 0 giving the constant 1 (power 0) or shift^power.
// scale != 1 and shift != 0 are applied only where set, as the NumPy layer does.
template <typename T>
__global__ void lowbit_power_fwd(const index_t n, const T* x, T* y, const T power,
                                 const T scale, const T shift, const T diff_scale) {
  LOWBIT_KERNEL_LOOP(i, n) {
    if (diff_scale == T(0)) {
      y[i] = power == T(0) ? T(1) : pow(shift, power);
      continue;
    }
    T v = scale != T(1) ? x[i] * scale : x[i];
    if (shift != T(0)) v = v + shift;
    y[i] = power != T(1) ? pow(v, power) : v;
  }
}

// dx = dy d with d = 0 (diff_scale 0), diff_scale (power 1),
// x (diff_scale scale) + diff_scale shift (power 2), y / x power (shift 0),
// else diff_scale y / (shift + scale x). x is the bottom data (y, in place).
template <typename T>
__global__ void lowbit_power_bwd(const index_t n, const T* dy, const T* x, const T* y, T* dx,
                                 const T power, const T scale, const T shift,
                                 const T diff_scale) {
  LOWBIT_KERNEL_LOOP(i, n) {
    if (diff_scale == T(0)) {
      dx[i] = T(0);
      continue;
    }
    if (power == T(1)) {
      dx[i] = diff_scale * dy[i];
      continue;
    }
    T d;
    if (power == T(2)) {
      d = x[i] * (diff_scale * scale);
      if (shift != T(0)) d = d + diff_scale * shift;
    } else if (shift == T(0)) {
      d = y[i] / x[i] * power;
    } else {
      T v = scale != T(1) ? x[i] * scale : x[i];
      d = y[i] / (v + shift);
      if (diff_scale != T(1)) d = d * diff_scale;
    }
    dx[i] = dy[i] * d;
  }
}

// Exp: y = outer exp(inner x) (inner = scale ln(base), outer = base^shift)
template <typename T>
__global__ void lowbit_exp_fwd(const index_t n, const T* x, T* y, const T inner,
                               const T outer) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T e = exp(inner != T(1) ? x[i] * inner : x[i]);
    y[i] = outer != T(1) ? e * outer : e;
  }
}

// dx = y dy inner
template <typename T>
__global__ void lowbit_exp_bwd(const index_t n, const T* dy, const T* y, T* dx,
                               const T inner) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T d = y[i] * dy[i];
    dx[i] = inner != T(1) ? d * inner : d;
  }
}

// Log: y = base_scale ln(shift + scale x)
template <typename T>
__global__ void lowbit_log_fwd(const index_t n, const T* x, T* y, const T scale,
                               const T shift, const T base_scale) {
  LOWBIT_KERNEL_LOOP(i, n) {
    T v = scale != T(1) ? x[i] * scale : x[i];
    if (shift != T(0)) v = v + shift;
    const T l = log(v);
    y[i] = base_scale != T(1) ? l * base_scale : l;
  }
}

// dx = dy num_scale / (shift + scale x), num_scale = scale / ln(base); x is
// the bottom data (y, in place, as in Caffe)
template <typename T>
__global__ void lowbit_log_bwd(const index_t n, const T* dy, const T* x, T* dx, const T scale,
                               const T shift, const T num_scale) {
  LOWBIT_KERNEL_LOOP(i, n) {
    T v = scale != T(1) ? x[i] * scale : x[i];
    if (shift != T(0)) v = v + shift;
    T d = T(1) / v;
    if (num_scale != T(1)) d = d * num_scale;
    dx[i] = dy[i] * d;
  }
}

// Threshold: y = x > threshold ? 1 : 0 (no backward)
template <typename T>
__global__ void lowbit_threshold_fwd(const index_t n, const T* x, T* y, const T threshold) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = x[i] > threshold ? T(1) : T(0); }
}

// Clip: y = max(lo, min(x, hi)) as std::max(lo, std::min(x, hi)): NaN gives lo
template <typename T>
__global__ void lowbit_clip_fwd(const index_t n, const T* x, T* y, const T lo, const T hi) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = hi < x[i] ? hi : x[i];
    y[i] = lo < v ? v : lo;
  }
}

// dx = dy where lo <= x <= hi, else 0 (x: the bottom data, y in place)
template <typename T>
__global__ void lowbit_clip_bwd(const index_t n, const T* dy, const T* x, T* dx, const T lo,
                                const T hi) {
  LOWBIT_KERNEL_LOOP(i, n) {
    dx[i] = dy[i] * ((x[i] >= lo && x[i] <= hi) ? T(1) : T(0));
  }
}

// Swish: s = sigmoid(beta x) = 0.5 tanh(0.5 beta x) + 0.5 (kept for backward), y = x s
template <typename T>
__global__ void lowbit_swish_fwd(const index_t n, const T* x, T* s, T* y, const T beta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    const T sv = T(0.5) * tanh(T(0.5) * (v * beta)) + T(0.5);
    s[i] = sv;
    y[i] = v * sv;
  }
}

// dx = dy (beta y + s (1 - beta y))
template <typename T>
__global__ void lowbit_swish_bwd(const index_t n, const T* dy, const T* y, const T* s, T* dx,
                                 const T beta) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T by = beta * y[i];
    dx[i] = dy[i] * (by + s[i] * (T(1) - by));
  }
}

// PReLU over x viewed as (N, C, inner), item i in channel c = (i / inner) % C
// (channel_shared: C = 1): y = max(x, 0) + a_c min(x, 0)
template <typename T>
__global__ void lowbit_prelu_fwd(const index_t n, const T* x, const T* a, T* y,
                                 const index_t channels, const index_t inner) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    y[i] = max(v, T(0)) + a[(i / inner) % channels] * min(v, T(0));
  }
}

// dx = dy (x > 0 ? 1 : a_c)
template <typename T>
__global__ void lowbit_prelu_bwd(const index_t n, const T* dy, const T* x, const T* a, T* dx,
                                 const index_t channels, const index_t inner) {
  LOWBIT_KERNEL_LOOP(i, n) {
    dx[i] = dy[i] * (x[i] > 0 ? T(1) : a[(i / inner) % channels]);
  }
}

// The slope gradient, pass 1: one thread per row r of (rows, inner):
// part[r] = sum_l dy x [x <= 0] over the row's inner items
template <typename T>
__global__ void lowbit_prelu_slope_rows(const index_t rows, const index_t inner, const T* dy,
                                        const T* x, T* part) {
  LOWBIT_KERNEL_LOOP(r, rows) {
    T sum = T(0);
    for (index_t l = r * inner; l < (r + 1) * inner; ++l) {
      if (x[l] <= 0) sum += dy[l] * x[l];
    }
    part[r] = sum;
  }
}

// Pass 2: one thread per slope d of (slopes,): da[d] += sum_k part[k slopes + d]
// over the k < groups rows of part viewed as (groups, slopes)
template <typename T>
__global__ void lowbit_prelu_slope_add(const index_t slopes, const index_t groups, const T* part,
                                       T* da) {
  LOWBIT_KERNEL_LOOP(d, slopes) {
    T sum = T(0);
    for (index_t k = 0; k < groups; ++k) sum += part[k * slopes + d];
    da[d] = da[d] + sum;
  }
}

// Dropout, TRAIN: y = x (keep ? factor : 0), the keep-mask drawn on the host or
// by CuPy's generator; the same for the backward, dy to dx
template <typename T>
__global__ void lowbit_dropout_apply(const index_t n, const T* x, const bool* keep, T* y,
                                     const T factor) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = x[i] * (keep[i] ? factor : T(0)); }
}

// Dropout, TEST without scale_train: y = x factor
template <typename T>
__global__ void lowbit_dropout_scale(const index_t n, const T* x, T* y, const T factor) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = x[i] * factor; }
}
