// Pooling over 2-D windows of planes x (P, H, W), P = N C (layers/pooling.py,
// kernels/pooling.py). Output (oh, ow) of plane p covers the rows
// hs = oh stride_h - pad_h .. hs + kernel_h (columns likewise), clipped to
// the image. Outputs y and their masks are (P, OH, OW); the mask holds
// Caffe's index h W + w of the chosen input of the plane (-1: none).
//
// Forward kernels: one item per output, index (p OH + oh) OW + ow.
// Backward kernels: one item per input, index (p H + h) W + w, gathering from
// the outputs whose window holds it (lowbit_cover), so no two items write the
// same place.

// The clipped window of output item idx (and its plane's offset).
struct LowbitWindow {
  index_t plane;
  int hs, he, ws, we;
};

__device__ LowbitWindow lowbit_window(const index_t idx, const int height, const int width,
                                      const int out_h, const int out_w, const int kernel_h,
                                      const int kernel_w, const int stride_h,
                                      const int stride_w, const int pad_h, const int pad_w) {
  LowbitWindow win;
  const int ow = (int)(idx % out_w);
  const int oh = (int)((idx / out_w) % out_h);
  win.plane = idx / ((index_t)out_w * out_h) * height * width;
  win.hs = oh * stride_h - pad_h;
  win.ws = ow * stride_w - pad_w;
  win.he = min(win.hs + kernel_h, height);
  win.we = min(win.ws + kernel_w, width);
  win.hs = max(win.hs, 0);
  win.ws = max(win.ws, 0);
  return win;
}

// The outputs whose window holds input item idx (h, w) of its plane: rows
// [oh0, oh1), columns [ow0, ow1) of the output plane starting at out_plane;
// target = h W + w, the input's index in a mask.
struct LowbitCover {
  index_t out_plane;
  int oh0, oh1, ow0, ow1, target;
};

__device__ LowbitCover lowbit_cover(const index_t idx, const int height, const int width,
                                    const int out_h, const int out_w, const int kernel_h,
                                    const int kernel_w, const int stride_h,
                                    const int stride_w, const int pad_h, const int pad_w) {
  LowbitCover cov;
  const int w = (int)(idx % width);
  const int h = (int)((idx / width) % height);
  cov.out_plane = idx / ((index_t)width * height) * out_h * out_w;
  cov.oh0 = h + pad_h < kernel_h ? 0 : (h + pad_h - kernel_h) / stride_h + 1;
  cov.oh1 = min((h + pad_h) / stride_h + 1, out_h);
  cov.ow0 = w + pad_w < kernel_w ? 0 : (w + pad_w - kernel_w) / stride_w + 1;
  cov.ow1 = min((w + pad_w) / stride_w + 1, out_w);
  cov.target = h * width + w;
  return cov;
}

// The lowest finite value of T (Caffe starts its max at -FLT_MAX; the NumPy
// layer at the dtype's lowest).
template <typename T> __device__ T lowbit_lowest();
template <> __device__ float lowbit_lowest<float>() { return -3.402823466e+38f; }
template <> __device__ double lowbit_lowest<double>() { return -1.7976931348623157e+308; }

// MAX: y = the window's maximum, the first in row-major order on ties (strict
// '>'), mask = its index h W + w; y = lowest and mask = -1 when no element
// beats the lowest value (NaN never does). M is int (the layer's own mask)
// or T (the mask top, Caffe's top[1]).
template <typename T, typename M>
__device__ void lowbit_maxpool_item(const index_t idx, const T* x, const int height,
                                    const int width, const int out_h, const int out_w,
                                    const int kernel_h, const int kernel_w, const int stride_h,
                                    const int stride_w, const int pad_h, const int pad_w, T* y,
                                    M* mask) {
  const LowbitWindow win = lowbit_window(idx, height, width, out_h, out_w, kernel_h, kernel_w,
                                         stride_h, stride_w, pad_h, pad_w);
  T best = lowbit_lowest<T>();
  int arg = -1;
  for (int h = win.hs; h < win.he; ++h) {
    for (int w = win.ws; w < win.we; ++w) {
      const T v = x[win.plane + (index_t)h * width + w];
      if (v > best) {
        best = v;
        arg = h * width + w;
      }
    }
  }
  y[idx] = best;
  mask[idx] = M(arg);
}

template <typename T>
__global__ void lowbit_maxpool_fwd(const index_t n, const T* x, const int height,
                                   const int width, const int out_h, const int out_w,
                                   const int kernel_h, const int kernel_w, const int stride_h,
                                   const int stride_w, const int pad_h, const int pad_w, T* y,
                                   int* mask) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    lowbit_maxpool_item(idx, x, height, width, out_h, out_w, kernel_h, kernel_w, stride_h,
                        stride_w, pad_h, pad_w, y, mask);
  }
}

// MAX with two tops: the mask is written into the mask top (as a float).
template <typename T>
__global__ void lowbit_maxpool_fwd_topmask(const index_t n, const T* x, const int height,
                                           const int width, const int out_h, const int out_w,
                                           const int kernel_h, const int kernel_w,
                                           const int stride_h, const int stride_w,
                                           const int pad_h, const int pad_w, T* y,
                                           T* top_mask) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    lowbit_maxpool_item(idx, x, height, width, out_h, out_w, kernel_h, kernel_w, stride_h,
                        stride_w, pad_h, pad_w, y, top_mask);
  }
}

// AVE: y = sum of the clipped window (row-major order) / pool_size, with
// pool_size = (min(hs + kh, H + pad_h) - hs) (min(ws + kw, W + pad_w) - ws)
// from the unclipped start: padding inside H + pad counts, the overhang of a
// ceil-mode window does not.
__device__ int lowbit_pool_size(const index_t idx, const int height, const int width,
                                const int out_h, const int out_w, const int kernel_h,
                                const int kernel_w, const int stride_h, const int stride_w,
                                const int pad_h, const int pad_w) {
  const int ow = (int)(idx % out_w);
  const int oh = (int)((idx / out_w) % out_h);
  const int hs = oh * stride_h - pad_h, ws = ow * stride_w - pad_w;
  return (min(hs + kernel_h, height + pad_h) - hs) * (min(ws + kernel_w, width + pad_w) - ws);
}

template <typename T>
__global__ void lowbit_avepool_fwd(const index_t n, const T* x, const int height,
                                   const int width, const int out_h, const int out_w,
                                   const int kernel_h, const int kernel_w, const int stride_h,
                                   const int stride_w, const int pad_h, const int pad_w, T* y) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const LowbitWindow win = lowbit_window(idx, height, width, out_h, out_w, kernel_h,
                                           kernel_w, stride_h, stride_w, pad_h, pad_w);
    T sum = T(0);
    for (int h = win.hs; h < win.he; ++h) {
      for (int w = win.ws; w < win.we; ++w) sum += x[win.plane + (index_t)h * width + w];
    }
    y[idx] = sum / T(lowbit_pool_size(idx, height, width, out_h, out_w, kernel_h, kernel_w,
                                      stride_h, stride_w, pad_h, pad_w));
  }
}

// STOCHASTIC, TRAIN (no padding): with s = the window's sum and u[idx] in
// [0, 1) drawn by the layer, y = the first element (row-major) whose running
// sum reaches u s (the first element if none does), mask = its index h W + w.
// A window wholly past the image (ceil mode, stride > kernel) gives 0 and -1.
template <typename T>
__global__ void lowbit_stopool_fwd_train(const index_t n, const T* x, const T* u,
                                         const int height, const int width, const int out_h,
                                         const int out_w, const int kernel_h,
                                         const int kernel_w, const int stride_h,
                                         const int stride_w, T* y, int* mask) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const LowbitWindow win = lowbit_window(idx, height, width, out_h, out_w, kernel_h,
                                           kernel_w, stride_h, stride_w, 0, 0);
    if (win.hs >= win.he || win.ws >= win.we) {   // a ceil-mode window past the image
      y[idx] = T(0);
      mask[idx] = -1;
      continue;
    }
    T total = T(0);
    for (int h = win.hs; h < win.he; ++h) {
      for (int w = win.ws; w < win.we; ++w) total += x[win.plane + (index_t)h * width + w];
    }
    const T threshold = u[idx] * total;
    T running = T(0);
    int arg = win.hs * width + win.ws;
    T value = x[win.plane + arg];
    bool found = false;
    for (int h = win.hs; h < win.he && !found; ++h) {
      for (int w = win.ws; w < win.we; ++w) {
        const T v = x[win.plane + (index_t)h * width + w];
        running += v;
        if (running >= threshold) {
          arg = h * width + w;
          value = v;
          found = true;
          break;
        }
      }
    }
    y[idx] = value;
    mask[idx] = arg;
  }
}

// STOCHASTIC, TEST: y = sum x^2 / (FLT_MIN + sum x) over the window; the two
// sums are kept for the backward.
template <typename T>
__global__ void lowbit_stopool_fwd_test(const index_t n, const T* x, const int height,
                                        const int width, const int out_h, const int out_w,
                                        const int kernel_h, const int kernel_w,
                                        const int stride_h, const int stride_w, T* y, T* sums,
                                        T* squares) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const LowbitWindow win = lowbit_window(idx, height, width, out_h, out_w, kernel_h,
                                           kernel_w, stride_h, stride_w, 0, 0);
    T total = T(1.1754943508222875e-38);   // FLT_MIN, for float and double (as Caffe)
    T square = T(0);
    for (int h = win.hs; h < win.he; ++h) {
      for (int w = win.ws; w < win.we; ++w) {
        const T v = x[win.plane + (index_t)h * width + w];
        total += v;
        square += v * v;
      }
    }
    sums[idx] = total;
    squares[idx] = square;
    y[idx] = square / total;
  }
}

// MAX and STOCHASTIC TRAIN backward: dx[h, w] = sum of dy over the outputs
// covering (h, w) whose mask is h W + w. M: int mask or T mask top.
template <typename T, typename M>
__device__ void lowbit_pool_mask_bwd_item(const index_t idx, const T* dy, const M* mask,
                                          const int height, const int width, const int out_h,
                                          const int out_w, const int kernel_h,
                                          const int kernel_w, const int stride_h,
                                          const int stride_w, const int pad_h, const int pad_w,
                                          T* dx) {
  const LowbitCover cov = lowbit_cover(idx, height, width, out_h, out_w, kernel_h, kernel_w,
                                      stride_h, stride_w, pad_h, pad_w);
  T grad = T(0);
  for (int oh = cov.oh0; oh < cov.oh1; ++oh) {
    for (int ow = cov.ow0; ow < cov.ow1; ++ow) {
      const index_t o = cov.out_plane + (index_t)oh * out_w + ow;
      if ((int)mask[o] == cov.target) grad += dy[o];
    }
  }
  dx[idx] = grad;
}

template <typename T>
__global__ void lowbit_pool_mask_bwd(const index_t n, const T* dy, const int* mask,
                                     const int height, const int width, const int out_h,
                                     const int out_w, const int kernel_h, const int kernel_w,
                                     const int stride_h, const int stride_w, const int pad_h,
                                     const int pad_w, T* dx) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    lowbit_pool_mask_bwd_item(idx, dy, mask, height, width, out_h, out_w, kernel_h, kernel_w,
                              stride_h, stride_w, pad_h, pad_w, dx);
  }
}

template <typename T>
__global__ void lowbit_pool_topmask_bwd(const index_t n, const T* dy, const T* top_mask,
                                        const int height, const int width, const int out_h,
                                        const int out_w, const int kernel_h,
                                        const int kernel_w, const int stride_h,
                                        const int stride_w, const int pad_h, const int pad_w,
                                        T* dx) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    lowbit_pool_mask_bwd_item(idx, dy, top_mask, height, width, out_h, out_w, kernel_h,
                              kernel_w, stride_h, stride_w, pad_h, pad_w, dx);
  }
}

// AVE backward: dx[h, w] = sum over the outputs covering (h, w) of dy / pool_size.
template <typename T>
__global__ void lowbit_avepool_bwd(const index_t n, const T* dy, const int height,
                                   const int width, const int out_h, const int out_w,
                                   const int kernel_h, const int kernel_w, const int stride_h,
                                   const int stride_w, const int pad_h, const int pad_w, T* dx) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const LowbitCover cov = lowbit_cover(idx, height, width, out_h, out_w, kernel_h, kernel_w,
                                        stride_h, stride_w, pad_h, pad_w);
    T grad = T(0);
    for (int oh = cov.oh0; oh < cov.oh1; ++oh) {
      for (int ow = cov.ow0; ow < cov.ow1; ++ow) {
        const index_t o = cov.out_plane + (index_t)oh * out_w + ow;
        grad += dy[o] / T(lowbit_pool_size(o, height, width, out_h, out_w, kernel_h, kernel_w,
                                           stride_h, stride_w, pad_h, pad_w));
      }
    }
    dx[idx] = grad;
  }
}

// STOCHASTIC TEST backward, the gradient of y = q / s (q = sum x^2, s = FLT_MIN
// + sum x): dx[h, w] = sum over covering outputs of (2 dy / s) x - dy q / s^2.
template <typename T>
__global__ void lowbit_stopool_bwd_test(const index_t n, const T* dy, const T* x,
                                        const T* sums, const T* squares, const int height,
                                        const int width, const int out_h, const int out_w,
                                        const int kernel_h, const int kernel_w,
                                        const int stride_h, const int stride_w, T* dx) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const LowbitCover cov = lowbit_cover(idx, height, width, out_h, out_w, kernel_h, kernel_w,
                                        stride_h, stride_w, 0, 0);
    T grad = T(0);
    for (int oh = cov.oh0; oh < cov.oh1; ++oh) {
      for (int ow = cov.ow0; ow < cov.ow1; ++ow) {
        const index_t o = cov.out_plane + (index_t)oh * out_w + ow;
        const T s = sums[o];
        grad += T(2) * dy[o] / s * x[idx] - dy[o] * squares[o] / (s * s);
      }
    }
    dx[idx] = grad;
  }
}
