// Normalisation: BatchNorm, Scale / Bias with broadcast, MVN
// (layers/batch_norm.py, layers/scale_bias.py, layers/mvn.py).
//
// Every layer views its bottom as (outer, dim, inner): item i belongs to
// channel c = (i / inner) % dim and to row r = i / inner of (rows, inner),
// rows = outer * dim. BatchNorm: (N, C, H*W); Scale / Bias: the axes before,
// of, and after the operand; MVN: (groups, 1, dim).
//
// Sums over the outer and inner axes take two passes, as Caffe's gemv pair:
// one thread per row sums its inner items (lowbit_sum_inner*), then one thread
// per channel sums its rows (lowbit_sum_outer).

// out[r] = scale sum_l a[r inner + l]
template <typename T>
__global__ void lowbit_sum_inner(const index_t rows, const index_t inner, const T* a,
                                 const T scale, T* out) {
  LOWBIT_KERNEL_LOOP(r, rows) {
    T sum = T(0);
    for (index_t l = r * inner; l < (r + 1) * inner; ++l) sum += a[l];
    out[r] = sum * scale;
  }
}

// out[r] = scale sum_l a[r inner + l] b[r inner + l]
template <typename T>
__global__ void lowbit_sum_inner_prod(const index_t rows, const index_t inner, const T* a,
                                      const T* b, const T scale, T* out) {
  LOWBIT_KERNEL_LOOP(r, rows) {
    T sum = T(0);
    for (index_t l = r * inner; l < (r + 1) * inner; ++l) sum += a[l] * b[l];
    out[r] = sum * scale;
  }
}

// out[r] = scale sum_l (a[r inner + l] - mean[r % dim])^2
template <typename T>
__global__ void lowbit_sum_inner_centred_sq(const index_t rows, const index_t dim,
                                            const index_t inner, const T* a, const T* mean,
                                            const T scale, T* out) {
  LOWBIT_KERNEL_LOOP(r, rows) {
    const T m = mean[r % dim];
    T sum = T(0);
    for (index_t l = r * inner; l < (r + 1) * inner; ++l) {
      const T d = a[l] - m;
      sum += d * d;
    }
    out[r] = sum * scale;
  }
}

// out[c] = (accumulate ? out[c] : 0) + sum_o part[o dim + c], part: (outer, dim)
template <typename T>
__global__ void lowbit_sum_outer(const index_t dim, const index_t outer, const T* part,
                                 const bool accumulate, T* out) {
  LOWBIT_KERNEL_LOOP(c, dim) {
    T sum = T(0);
    for (index_t o = 0; o < outer; ++o) sum += part[o * dim + c];
    out[c] = accumulate ? out[c] + sum : sum;
  }
}

// y = x s_c (Scale; dx = dy s_c too)
template <typename T>
__global__ void lowbit_scale_fwd(const index_t n, const index_t dim, const index_t inner,
                                 const T* x, const T* s, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = x[i] * s[(i / inner) % dim]; }
}

// y = x s_c + b_c (Scale with its bias term, fused)
template <typename T>
__global__ void lowbit_scale_bias_fwd(const index_t n, const index_t dim, const index_t inner,
                                      const T* x, const T* s, const T* b, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t c = (i / inner) % dim;
    y[i] = x[i] * s[c] + b[c];
  }
}

// y = x + b_c (Bias)
template <typename T>
__global__ void lowbit_bias_fwd(const index_t n, const index_t dim, const index_t inner,
                                const T* x, const T* b, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = x[i] + b[(i / inner) % dim]; }
}

// BatchNorm with the stored statistics, one thread per channel:
// f = 0 if stats[0] == 0 else 1 / stats[0] (stats: blobs[2]),
// mean_c = mean_blob_c f, std_c = sqrt(var_blob_c f + eps)
template <typename T>
__global__ void lowbit_bn_global_stats(const index_t channels, const T* mean_blob,
                                       const T* var_blob, const T* stats, const T eps,
                                       T* mean, T* std) {
  LOWBIT_KERNEL_LOOP(c, channels) {
    const T f = stats[0] == T(0) ? T(0) : T(1) / stats[0];
    mean[c] = mean_blob[c] * f;
    std[c] = sqrt(var_blob[c] * f + eps);
  }
}

// BatchNorm with batch statistics mean_c, var_c: the moving averages, one
// thread per channel (thread 0 also updates the scale factor stats[0]):
// stats = a stats + 1, mean_blob = mean + a mean_blob,
// var_blob = correction var + a var_blob; and std_c = sqrt(var_c + eps)
template <typename T>
__global__ void lowbit_bn_update_stats(const index_t channels, const T* mean, const T* var,
                                       const T a, const T correction, const T eps,
                                       T* mean_blob, T* var_blob, T* stats, T* std) {
  LOWBIT_KERNEL_LOOP(c, channels) {
    if (c == 0) stats[0] = stats[0] * a + T(1);
    mean_blob[c] = mean[c] + a * mean_blob[c];
    var_blob[c] = correction * var[c] + a * var_blob[c];
    std[c] = sqrt(var[c] + eps);
  }
}

// y = y2 = (x - mean_c) / std_c (BatchNorm keeps x_norm in y2; MVN's groups
// are its channels, with inner = dim)
template <typename T>
__global__ void lowbit_channel_normalize(const index_t n, const index_t dim,
                                         const index_t inner, const T* x, const T* mean,
                                         const T* std, T* y, T* y2) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t c = (i / inner) % dim;
    const T v = (x[i] - mean[c]) / std[c];
    y[i] = v;
    y2[i] = v;
  }
}

// y = x - mean_c (MVN without variance, forward and backward)
template <typename T>
__global__ void lowbit_channel_subtract(const index_t n, const index_t dim, const index_t inner,
                                        const T* x, const T* mean, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = x[i] - mean[(i / inner) % dim]; }
}

// dx = dy / std_c (BatchNorm's backward with the stored statistics)
template <typename T>
__global__ void lowbit_channel_divide(const index_t n, const index_t dim, const index_t inner,
                                      const T* dy, const T* std, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) { dx[i] = dy[i] / std[(i / inner) % dim]; }
}

// BatchNorm's backward with batch statistics (sums over n and the spatial axes):
// dx = (dy + neg_inv_m (sum_dyy_c y + sum_dy_c)) / std_c, y = x_norm, neg_inv_m = -1/m
template <typename T>
__global__ void lowbit_bn_bwd(const index_t n, const index_t dim, const index_t inner,
                              const T* dy, const T* y, const T* sum_dyy, const T* sum_dy,
                              const T neg_inv_m, const T* std, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t c = (i / inner) % dim;
    dx[i] = (dy[i] + neg_inv_m * (sum_dyy[c] * y[i] + sum_dy[c])) / std[c];
  }
}

// MVN's scale per group: s = sqrt(var) + eps
template <typename T>
__global__ void lowbit_mvn_scale(const index_t groups, const T* var, const T eps, T* s) {
  LOWBIT_KERNEL_LOOP(g, groups) { s[g] = sqrt(var[g]) + eps; }
}

// MVN's backward with variance, group g = i / dim:
// dx = (dy - mean_dy_g - y mean_ydy_g) / s_g
template <typename T>
__global__ void lowbit_mvn_bwd(const index_t n, const index_t dim, const T* dy, const T* y,
                               const T* mean_dy, const T* mean_ydy, const T* s, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t g = i / dim;
    dx[i] = (dy[i] - mean_dy[g] - y[i] * mean_ydy[g]) / s[g];
  }
}
