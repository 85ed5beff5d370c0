// LRN of x (N, C, H, W) (layers/lrn.py, kernels/lrn.py). One item per element,
// index ((n C + c) H + h) W + w; each reads its window and writes only its own
// outputs (y and scale may not alias x).
//
//   ACROSS_CHANNELS  s = k + sum_{|c' - c| <= half} x[c']^2 alpha / size
//   WITHIN_CHANNEL   s = 1 + alpha (sum over the (2 half + 1)^2 window of x^2) / size^2
//   y = x s^-beta
//   dx = dy s^-beta - coef x window_sum(dy y / s),  coef = 2 alpha beta / size
//        (across) or / size^2 (within)
//
// Window sums run in layers/lrn.py's window_sum order: the centre, then +1,
// -1, +2, -2, ... (terms outside the blob skipped); the within-channel sum is
// that order along W of that order along H.

// s^-beta; beta = 0.75 as 1 / sqrt(sqrt(s) s), as the NumPy layer's neg_pow.
template <typename T>
__device__ T lowbit_neg_pow(const T s, const T beta) {
  if (beta == T(0.75)) {
    T r = sqrt(s);
    r = r * s;
    r = sqrt(r);
    return T(1) / r;
  }
  return pow(s, -beta);
}

// One term of a window sum: v, or v^2 coef when squaring the input.
template <typename T>
__device__ T lowbit_lrn_term(const T v, const bool square, const T coef) {
  return square ? v * v * coef : v;
}

// sum over i = centre, centre + 1, centre - 1, ... (|i - centre| <= half,
// 0 <= i < count) of term(a[base + i step]).
template <typename T>
__device__ T lowbit_lrn_line_sum(const T* a, const index_t base, const index_t step,
                                 const int centre, const int count, const int half,
                                 const bool square, const T coef) {
  T s = lowbit_lrn_term(a[base + centre * step], square, coef);
  for (int d = 1; d <= half; ++d) {
    if (centre + d < count) s += lowbit_lrn_term(a[base + (centre + d) * step], square, coef);
    if (centre - d >= 0) s += lowbit_lrn_term(a[base + (centre - d) * step], square, coef);
  }
  return s;
}

// The (2 half + 1)^2 window sum around (h, w) of a plane starting at base:
// along W of the sums along H.
template <typename T>
__device__ T lowbit_lrn_plane_sum(const T* a, const index_t base, const int h, const int w,
                                  const int height, const int width, const int half,
                                  const bool square, const T coef) {
  T s = lowbit_lrn_line_sum(a, base + w, width, h, height, half, square, coef);
  for (int d = 1; d <= half; ++d) {
    if (w + d < width) s += lowbit_lrn_line_sum(a, base + w + d, width, h, height, half,
                                                square, coef);
    if (w - d >= 0) s += lowbit_lrn_line_sum(a, base + w - d, width, h, height, half,
                                             square, coef);
  }
  return s;
}

// ACROSS_CHANNELS forward: scale = k + window of x^2 alpha / size; y = x scale^-beta.
// area = H W; alpha_over_size = alpha / size in T.
template <typename T>
__global__ void lowbit_lrn_across_fwd(const index_t n, const T* x, const int channels,
                                      const index_t area, const int half,
                                      const T alpha_over_size, const T k, const T beta,
                                      T* scale, T* y) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const int c = (int)((idx / area) % channels);
    const T s = lowbit_lrn_line_sum(x, idx - c * area, area, c, channels, half, true,
                                    alpha_over_size) + k;
    scale[idx] = s;
    y[idx] = x[idx] * lowbit_neg_pow(s, beta);
  }
}

// WITHIN_CHANNEL forward: scale = (window of x^2) / size^2 alpha + 1; y = x scale^-beta.
template <typename T>
__global__ void lowbit_lrn_within_fwd(const index_t n, const T* x, const int height,
                                      const int width, const int half, const T size_sq,
                                      const T alpha, const T beta, T* scale, T* y) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const int w = (int)(idx % width);
    const int h = (int)((idx / width) % height);
    const index_t base = idx - ((index_t)h * width + w);
    const T sum = lowbit_lrn_plane_sum(x, base, h, w, height, width, half, true, T(1));
    const T s = sum / size_sq * alpha + T(1);
    scale[idx] = s;
    y[idx] = x[idx] * lowbit_neg_pow(s, beta);
  }
}

// The backward's first pass: ratio = dy y / scale, elementwise.
template <typename T>
__global__ void lowbit_lrn_ratio(const index_t n, const T* dy, const T* y, const T* scale,
                                 T* ratio) {
  LOWBIT_KERNEL_LOOP(idx, n) { ratio[idx] = dy[idx] * y[idx] / scale[idx]; }
}

// dx of one element from its window sum of ratios: dy s^-beta - (acc x) coef.
template <typename T>
__device__ T lowbit_lrn_grad(const T dy, const T x, const T s, const T acc, const T beta,
                             const T coef) {
  return dy * lowbit_neg_pow(s, beta) - acc * x * coef;
}

// ACROSS_CHANNELS backward: dx = dy scale^-beta - (window of ratio) x coef.
template <typename T>
__global__ void lowbit_lrn_across_bwd(const index_t n, const T* x, const T* dy,
                                      const T* ratio, const T* scale, const int channels,
                                      const index_t area, const int half, const T beta,
                                      const T coef, T* dx) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const int c = (int)((idx / area) % channels);
    const T acc = lowbit_lrn_line_sum(ratio, idx - c * area, area, c, channels, half, false, T(1));
    dx[idx] = lowbit_lrn_grad(dy[idx], x[idx], scale[idx], acc, beta, coef);
  }
}

// WITHIN_CHANNEL backward: dx = dy scale^-beta - (plane window of ratio) x coef.
template <typename T>
__global__ void lowbit_lrn_within_bwd(const index_t n, const T* x, const T* dy,
                                      const T* ratio, const T* scale, const int height,
                                      const int width, const int half, const T beta,
                                      const T coef, T* dx) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const int w = (int)(idx % width);
    const int h = (int)((idx / width) % height);
    const index_t base = idx - ((index_t)h * width + w);
    const T acc = lowbit_lrn_plane_sum(ratio, base, h, w, height, width, half, false, T(1));
    dx[idx] = lowbit_lrn_grad(dy[idx], x[idx], scale[idx], acc, beta, coef);
  }
}
