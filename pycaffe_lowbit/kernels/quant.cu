// Quantizers (pycaffe_lowbit/quant): the HWGQ fork's Quant values and
// pseudo-gradients, QNN's activations and weights, binary / ternary weights
// (BWN, TWN, the HWGQ fork's Binary* layers), the SQ fork's row selection and
// the weight search's categorical selection. Each computes what the NumPy
// quantizer computes, operation by operation in T, so that the same inputs
// give the same bits (reductions aside: their order is stated where it differs).
// Elementwise kernels may run in place (x == y, dy == dx).

// A product rounded on its own: NumPy multiplies and adds in separate rounded
// steps, and NVRTC would otherwise fuse a * b + c into one FMA.
__device__ float lowbit_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ double lowbit_mul(double a, double b) { return __dmul_rn(a, b); }

// NumPy's sign: +1, -1, the zero itself (as +0) for 0 and -0.0, NaN for NaN.
template <typename T>
__device__ T lowbit_sign(const T v) {
  return v > T(0) ? T(1) : (v < T(0) ? T(-1) : (v == T(0) ? T(0) : v));
}

// round() with ties away from zero: sign(v) floor(|v| + 1/2) (quant/qnn.py)
template <typename T>
__device__ T lowbit_round_half_away(const T v) {
  return lowbit_sign(v) * floor(fabs(v) + T(0.5));
}

// HWGQ (forward_func hwgq): y = low (= -negative_slope, -0.0 for slope 0)
// for x <= 0 (and NaN); otherwise centers[i] for the first threshold t_i >= x
// (levels - 1 thresholds, increasing; past the last, the last center).
template <typename T>
__global__ void lowbit_hwgq_fwd(const index_t n, const T* x, T* y, const T* thresholds,
                                const T* centers, const int levels, const T low) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    if (v > T(0)) {
      int level = 0;
      while (level < levels - 1 && v > thresholds[level]) ++level;
      y[i] = centers[level];
    } else {
      y[i] = low;
    }
  }
}

// sign: y = x >= 0 ? 1 : -1 (0 and -0.0 give +1, NaN gives -1)
template <typename T>
__global__ void lowbit_sign_fwd(const index_t n, const T* x, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = x[i] >= T(0) ? T(1) : T(-1); }
}

// hard_tanh: y = clamp(x, -1, 1) (NaN passes)
template <typename T>
__global__ void lowbit_hardtanh_fwd(const index_t n, const T* x, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    y[i] = v < T(-1) ? T(-1) : (v > T(1) ? T(1) : v);
  }
}

// backward relu: dx = [!clipped or x <= clip] (x > 0 ? dy : dy slope)
template <typename T>
__global__ void lowbit_relu_grad(const index_t n, const T* dy, const T* x, T* dx,
                                 const T slope, const T clip, const int clipped) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    const T g = v > T(0) ? dy[i] : dy[i] * slope;
    dx[i] = (!clipped || v <= clip) ? g : T(0);
  }
}

// backward hard_tanh: dx = [!clipped or -clip <= x <= clip] dy
template <typename T>
__global__ void lowbit_hardtanh_grad(const index_t n, const T* dy, const T* x, T* dx,
                                     const T clip, const int clipped) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = x[i];
    dx[i] = (!clipped || (v >= -clip && v <= clip)) ? dy[i] : T(0);
  }
}

// QNN's unclipped activation: v = 2 round(hs(x) L) / L - 1, hs(x) =
// clip((x + 1) / 2, 0, 1), L = 2^nb (quant/qnn.py, step by step in T)
template <typename T>
__device__ T lowbit_qnn_level(const T x, const T levels) {
  T hs = (x + T(1)) * T(0.5);
  hs = hs < T(0) ? T(0) : (hs > T(1) ? T(1) : hs);
  return T(2) * lowbit_round_half_away(lowbit_mul(hs, levels)) / levels - T(1);
}

// QNN activation: y = clip(v, low, high)
template <typename T>
__global__ void lowbit_qnn_act_fwd(const index_t n, const T* x, T* y, const T levels,
                                   const T low, const T high) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = lowbit_qnn_level(x[i], levels);
    y[i] = v < low ? low : (v > high ? high : v);
  }
}

// QNN activation STE: dx = dy [|x| <= 1] [low <= v <= high]
template <typename T>
__global__ void lowbit_qnn_act_bwd(const index_t n, const T* dy, const T* x, T* dx,
                                   const T levels, const T low, const T high) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T v = lowbit_qnn_level(x[i], levels);
    const bool pass = fabs(x[i]) <= T(1) && v >= low && v <= high;
    dx[i] = dy[i] * (pass ? T(1) : T(0));
  }
}

// QNN weights: q = clip(round(w s), low, high) / s, s = 2^(nb - 1 + f)
template <typename T>
__global__ void lowbit_qnn_weight_fwd(const index_t n, const T* w, T* q, const T scale,
                                      const T low, const T high) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T r = lowbit_round_half_away(lowbit_mul(w[i], scale));
    q[i] = (r < low ? low : (r > high ? high : r)) / scale;
  }
}

// Binary weights, W (rows, k) row-major, item i = (i / k, i % k):
// q_i = a copysign(1, w_i + 0) (0 and -0.0 take +a), a = row_sums[i / k] * inv_k
// (the row sums of |W| come from BLAS, as the fork's) or 1 without alpha.
template <typename T>
__global__ void lowbit_binary_weights(const index_t n, const index_t k, const T* w,
                                      const T* row_sums, const T inv_k, const int use_alpha,
                                      T* q) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T a = use_alpha ? row_sums[i / k] * inv_k : T(1);
    q[i] = copysign(a, w[i] + T(0));
  }
}

// TWN, step 1: dev_i = |w_i - mean|, mean = mean[0] (of all W, on the device)
template <typename T>
__global__ void lowbit_abs_deviation(const index_t n, const T* w, const T* mean, T* dev) {
  LOWBIT_KERNEL_LOOP(i, n) { dev[i] = fabs(w[i] - mean[0]); }
}

// TWN, step 2, one item per row r of W (rows, k): with D = factor dev_mean[0],
// alpha_r = mean of |W_rj| over |W_rj| > D (0 when none); the sum in double
// from j = 0 up, rounded to T, divided by the count in T.
template <typename T>
__global__ void lowbit_ternary_alpha(const index_t rows, const index_t k, const T* w,
                                     const T* dev_mean, const T factor, T* alpha) {
  LOWBIT_KERNEL_LOOP(r, rows) {
    const T delta = factor * dev_mean[0];
    double sum = 0;
    index_t count = 0;
    for (index_t j = 0; j < k; ++j) {
      const T a = fabs(w[r * k + j]);
      if (a > delta) { sum += a; ++count; }
    }
    alpha[r] = T(sum) / T(count > 0 ? count : 1);
  }
}

// TWN, step 3, item i = (i / k, i % k): q_i = copysign(alpha_r, w_i + 0) [|w_i| > D]
// (a zero of Q may be -0.0, as in NumPy's product)
template <typename T>
__global__ void lowbit_ternary_weights(const index_t n, const index_t k, const T* w,
                                       const T* dev_mean, const T factor, const T* alpha,
                                       T* q) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T delta = factor * dev_mean[0];
    const T kept = fabs(w[i]) > delta ? T(1) : T(0);
    q[i] = copysign(alpha[i / k], w[i] + T(0)) * kept;
  }
}

// SQ, one item per row r of W, Q (rows, k): errors_r = sum_j |W_rj - Q_rj| /
// sum_j |W_rj| (0 when the row of W is all zero); differences in T, sums in
// double from j = 0 up.
template <typename T>
__global__ void lowbit_row_errors(const index_t rows, const index_t k, const T* w, const T* q,
                                  double* errors) {
  LOWBIT_KERNEL_LOOP(r, rows) {
    double num = 0, den = 0;
    for (index_t j = 0; j < k; ++j) {
      const T v = w[r * k + j];
      num += fabs(v - q[r * k + j]);
      den += fabs(v);
    }
    errors[r] = den > 0 ? num / den : 0.0;
  }
}

// SQ, item i = (i / k, i % k): the rows the roulette kept take W: q_i = w_i
// where keep[i / k] (in place on q)
template <typename T>
__global__ void lowbit_keep_rows(const index_t n, const index_t k, const T* w,
                                 const unsigned char* keep, T* q) {
  LOWBIT_KERNEL_LOOP(i, n) {
    if (keep[i / k]) q[i] = w[i];
  }
}

// Weight search forward, one item per weight j, its K logits a[j K .. j K + K):
// z_k = (a_k + g G_k) / tau (G the Gumbel noise when use_noise), p = softmax(z)
// (max subtracted, the sum from k = 0 up), written to p; w_j = v[first argmax
// p] (hard) or sum_k p_k v_k (soft).
template <typename T>
__global__ void lowbit_ws_select_fwd(const index_t n, const int K, const T* a, const T* noise,
                                     const int use_noise, const T gscale, const T tau,
                                     const T* values, const int hard, T* p, T* w) {
  LOWBIT_KERNEL_LOOP(j, n) {
    const T* aj = a + j * K;
    T* pj = p + j * K;
    T top = T(0);
    for (int k = 0; k < K; ++k) {
      T z = aj[k];
      if (use_noise) z = z + lowbit_mul(gscale, noise[j * K + k]);
      z = z / tau;
      pj[k] = z;
      if (k == 0 || z > top) top = z;
    }
    T sum = T(0);
    for (int k = 0; k < K; ++k) {
      pj[k] = exp(pj[k] - top);
      sum += pj[k];
    }
    int best = 0;
    T mean = T(0);
    for (int k = 0; k < K; ++k) {
      pj[k] = pj[k] / sum;
      if (pj[k] > pj[best]) best = k;
      mean += lowbit_mul(pj[k], values[k]);
    }
    w[j] = hard ? values[best] : mean;
  }
}

// Weight search backward, one item per weight j: with E = sum_k p_k v_k,
// da_jk += p_jk (v_k - E) (dw_j / tau) (accumulated into the logits' diff)
template <typename T>
__global__ void lowbit_ws_select_bwd(const index_t n, const int K, const T* p, const T* dw,
                                     const T* values, const T tau, T* da) {
  LOWBIT_KERNEL_LOOP(j, n) {
    const T* pj = p + j * K;
    T mean = T(0);
    for (int k = 0; k < K; ++k) mean += lowbit_mul(pj[k], values[k]);
    const T g = dw[j] / tau;
    for (int k = 0; k < K; ++k) {
      da[j * K + k] += lowbit_mul(lowbit_mul(pj[k], values[k] - mean), g);
    }
  }
}
