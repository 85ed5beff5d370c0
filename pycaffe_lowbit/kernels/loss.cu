// Loss layers (layers/loss.py, layers/loss_more.py). A forward kernel writes
// one loss term per position (and 1 / 0 in count for a counted / ignored
// position); the host sums them (CuPy's reduction, as Caffe's asum) and
// divides by the normaliser. A backward kernel reads the loss weight over the
// normaliser from a one-element device array (scale[0]), so nothing waits for
// the host. Labels are read as floats and truncated toward zero; a label
// outside [0, channels) that is not ignore_label sets bad[0] = 1 (the host
// reports it, naming the layer). Scores are viewed as (outer, channels,
// inner), position p = o inner + l, its channels at (o channels + c) inner + l.

#define LOWBIT_FLT_MIN 1.175494350822287507969e-38   // FLT_MIN, for every T (as Caffe)
#define LOWBIT_LOG_THRESHOLD 1e-20                   // Caffe's kLOG_THRESHOLD

// The label of position p, or -1 when ignored; bad[0] = 1 when out of range.
template <typename T>
__device__ index_t lowbit_label(const T* label, const index_t p, const index_t channels,
                                const bool has_ignore, const int ignore_label, int* bad) {
  const index_t l = (index_t)label[p];
  if (has_ignore && l == ignore_label) return -1;
  if (l < 0 || l >= channels) {
    bad[0] = 1;
    return -1;
  }
  return l;
}

// SoftmaxWithLoss: loss_p = -log(max(prob_{p, l_p}, FLT_MIN)), count_p = 1;
// 0 and 0 at an ignored position
template <typename T>
__global__ void lowbit_softmax_loss_fwd(const index_t positions, const index_t channels,
                                        const index_t inner, const T* prob, const T* label,
                                        const bool has_ignore, const int ignore_label,
                                        T* loss, T* count, int* bad) {
  LOWBIT_KERNEL_LOOP(p, positions) {
    const index_t l = lowbit_label(label, p, channels, has_ignore, ignore_label, bad);
    if (l < 0) {
      loss[p] = T(0);
      count[p] = T(0);
    } else {
      const T q = prob[(p / inner) * channels * inner + l * inner + p % inner];
      loss[p] = -log(max(q, T(LOWBIT_FLT_MIN)));
      count[p] = T(1);
    }
  }
}

// dx_{p,c} = (prob_{p,c} - [c == l_p]) scale[0], 0 at an ignored position;
// one thread per score i
template <typename T>
__global__ void lowbit_softmax_loss_bwd(const index_t n, const index_t channels,
                                        const index_t inner, const T* prob, const T* label,
                                        const bool has_ignore, const int ignore_label,
                                        const T* scale, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t c = (i / inner) % channels;
    const index_t p = (i / (channels * inner)) * inner + i % inner;
    const index_t l = (index_t)label[p];
    const bool counted = !(has_ignore && l == ignore_label);
    dx[i] = counted ? (prob[i] - (c == l ? T(1) : T(0))) * scale[0] : T(0);
  }
}

// diff = a - b (EuclideanLoss)
template <typename T>
__global__ void lowbit_loss_diff(const index_t n, const T* a, const T* b, T* diff) {
  LOWBIT_KERNEL_LOOP(i, n) { diff[i] = a[i] - b[i]; }
}

// y = ((sign w[0]) / num) x, w the loss weight (the top's diff)
template <typename T>
__global__ void lowbit_loss_scaled(const index_t n, const T* x, const T* w, const T sign,
                                   const T num, T* y) {
  LOWBIT_KERNEL_LOOP(i, n) { y[i] = (sign * w[0]) / num * x[i]; }
}

// SigmoidCrossEntropyLoss: term_i = -(x (t - [x >= 0]) - log(1 + exp(-|x|))),
// count_i = 1; 0 and 0 where int(t) == ignore_label
template <typename T>
__global__ void lowbit_sigmoid_xent_fwd(const index_t n, const T* x, const T* t,
                                        const bool has_ignore, const int ignore_label,
                                        T* loss, T* count) {
  LOWBIT_KERNEL_LOOP(i, n) {
    if (has_ignore && (index_t)t[i] == ignore_label) {
      loss[i] = T(0);
      count[i] = T(0);
    } else {
      const T v = x[i];
      loss[i] = -(v * (t[i] - (v >= 0 ? T(1) : T(0))) - log1p(exp(-fabs(v))));
      count[i] = T(1);
    }
  }
}

// dx = (sigmoid(x) - t) scale[0], 0 where ignored
template <typename T>
__global__ void lowbit_sigmoid_xent_bwd(const index_t n, const T* x, const T* t,
                                        const bool has_ignore, const int ignore_label,
                                        const T* scale, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const bool ignored = has_ignore && (index_t)t[i] == ignore_label;
    const T s = T(0.5) * tanh(T(0.5) * x[i]) + T(0.5);
    dx[i] = ignored ? T(0) : (s - t[i]) * scale[0];
  }
}

// HingeLoss over x (num, dim), item i = (r, j): t = max(0, 1 + s x), s = -1
// if j == l_r else +1 (no ignore_label)
template <typename T>
__global__ void lowbit_hinge_fwd(const index_t n, const index_t dim, const T* x,
                                 const T* label, T* t, int* bad) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t l = lowbit_label(label, i / dim, dim, false, 0, bad);
    const T s = (i % dim == l) ? T(-1) : T(1);
    t[i] = max(T(1) + s * x[i], T(0));
  }
}

// L1: dx = sign(t) s scale[0]; L2: dx = t s (2 scale[0])
template <typename T>
__global__ void lowbit_hinge_bwd(const index_t n, const index_t dim, const T* t,
                                 const T* label, const bool l2, const T* scale, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const T s = (i % dim == (index_t)label[i / dim]) ? T(-1) : T(1);
    if (l2) {
      dx[i] = t[i] * s * (T(2) * scale[0]);
    } else {
      dx[i] = (t[i] > 0 ? T(1) : T(0)) * s * scale[0];
    }
  }
}

// MultinomialLogisticLoss over p (num, dim), one thread per row r:
// picked_r = max(p_{r, l_r}, 1e-20), term_r = -log(picked_r)
template <typename T>
__global__ void lowbit_multinomial_fwd(const index_t num, const index_t dim, const T* p,
                                       const T* label, T* loss, int* bad) {
  LOWBIT_KERNEL_LOOP(r, num) {
    index_t l = lowbit_label(label, r, dim, false, 0, bad);
    if (l < 0) l = 0;
    loss[r] = -log(max(p[r * dim + l], T(LOWBIT_LOG_THRESHOLD)));
  }
}

// dp_{r,j} = [j == l_r] scale[0] / picked_r, scale = -w / num
template <typename T>
__global__ void lowbit_multinomial_bwd(const index_t n, const index_t dim, const T* p,
                                       const T* label, const T* scale, T* dp) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t r = i / dim;
    const index_t l = (index_t)label[r];
    dp[i] = (i % dim == l) ? scale[0] / max(p[r * dim + l], T(LOWBIT_LOG_THRESHOLD)) : T(0);
  }
}

// ContrastiveLoss over a, b (num, channels) and the similarity y (num,), one
// thread per pair r: diff = a - b, dist_sq_r = ||diff_r||^2,
// term_r = dist_sq (similar: int(y) != 0), else max(margin - dist_sq, 0)
// (legacy) or max(margin - sqrt(dist_sq), 0)^2
template <typename T>
__global__ void lowbit_contrastive_fwd(const index_t num, const index_t channels, const T* a,
                                       const T* b, const T* y, const T margin,
                                       const bool legacy, T* diff, T* dist_sq, T* loss) {
  LOWBIT_KERNEL_LOOP(r, num) {
    T d2 = T(0);
    for (index_t k = r * channels; k < (r + 1) * channels; ++k) {
      const T d = a[k] - b[k];
      diff[k] = d;
      d2 += d * d;
    }
    dist_sq[r] = d2;
    if ((index_t)y[r] != 0) {
      loss[r] = d2;
    } else if (legacy) {
      loss[r] = max(margin - d2, T(0));
    } else {
      const T m = max(margin - sqrt(d2), T(0));
      loss[r] = m * m;
    }
  }
}

// d(a or b) = ((sign w[0]) / num) coef_r diff, coef_r = 1 (similar), else, where
// the margin term is positive, -1 (legacy) or -(margin - d) / (d + 1e-4), else 0
template <typename T>
__global__ void lowbit_contrastive_bwd(const index_t n, const index_t channels, const T* diff,
                                       const T* dist_sq, const T* y, const T margin,
                                       const bool legacy, const T* w, const T sign,
                                       const T num, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t r = i / channels;
    T coef = T(1);
    if ((index_t)y[r] == 0) {
      if (legacy) {
        coef = margin - dist_sq[r] > 0 ? T(-1) : T(0);
      } else {
        const T d = sqrt(dist_sq[r]);
        const T mdist = margin - d;
        coef = mdist > 0 ? -mdist / (d + T(1e-4)) : T(0);
      }
    }
    dx[i] = (sign * w[0]) / num * (diff[i] * coef);
  }
}

// InfogainLoss with H (channels, channels): term_p = -sum_c H[l_p, c]
// log(max(prob_{p,c}, 1e-20)), count_p = 1; 0 and 0 at an ignored position
template <typename T>
__global__ void lowbit_infogain_fwd(const index_t positions, const index_t channels,
                                    const index_t inner, const T* prob, const T* label,
                                    const T* h, const bool has_ignore, const int ignore_label,
                                    T* loss, T* count, int* bad) {
  LOWBIT_KERNEL_LOOP(p, positions) {
    const index_t l = lowbit_label(label, p, channels, has_ignore, ignore_label, bad);
    const index_t first = (p / inner) * channels * inner + p % inner;
    T sum = T(0);
    if (l >= 0) {
      for (index_t c = 0; c < channels; ++c) {
        sum += h[l * channels + c] * log(max(prob[first + c * inner], T(LOWBIT_LOG_THRESHOLD)));
      }
    }
    loss[p] = -sum;
    count[p] = l >= 0 ? T(1) : T(0);
  }
}

// dx_{p,c} = (prob_{p,c} sum_k H[l_p, k] - H[l_p, c]) scale[0], 0 where ignored
template <typename T>
__global__ void lowbit_infogain_bwd(const index_t n, const index_t channels,
                                    const index_t inner, const T* prob, const T* label,
                                    const T* h, const bool has_ignore, const int ignore_label,
                                    const T* scale, T* dx) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t c = (i / inner) % channels;
    const index_t l = (index_t)label[(i / (channels * inner)) * inner + i % inner];
    if (has_ignore && l == ignore_label) {
      dx[i] = T(0);
      continue;
    }
    T row = T(0);
    for (index_t k = 0; k < channels; ++k) row += h[l * channels + k];
    dx[i] = (prob[i] * row - h[l * channels + c]) * scale[0];
  }
}
