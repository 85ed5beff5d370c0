// Accuracy (layers/accuracy.py): scores x viewed as (outer, channels, inner),
// labels one per position p = o inner + l, read as floats and truncated.

// One thread per position: skipped when its label is ignore_label; else
// counted for its class l and in total (counts[l], counts[channels]), and a hit
// (hits[l], hits[channels]) when #{c : x_c >= x_l} - 1 < top_k, ties counting
// against the label, as Caffe. Integer atomics: the counts are exact and do
// not depend on the order of the threads. A label outside [0, channels) sets
// bad[0] = 1.
template <typename T>
__global__ void lowbit_accuracy_count(const index_t positions, const index_t channels,
                                      const index_t inner, const T* x, const T* label,
                                      const bool has_ignore, const int ignore_label,
                                      const int top_k, int* hits, int* counts, int* bad) {
  LOWBIT_KERNEL_LOOP(p, positions) {
    const index_t l = (index_t)label[p];
    if (has_ignore && l == ignore_label) continue;
    if (l < 0 || l >= channels) {
      bad[0] = 1;
      continue;
    }
    const index_t first = (p / inner) * channels * inner + p % inner;
    const T truth = x[first + l * inner];
    index_t at_least = 0;
    for (index_t c = 0; c < channels; ++c) at_least += x[first + c * inner] >= truth ? 1 : 0;
    atomicAdd(&counts[l], 1);
    atomicAdd(&counts[channels], 1);
    if (at_least - 1 < top_k) {
      atomicAdd(&hits[l], 1);
      atomicAdd(&hits[channels], 1);
    }
  }
}

// The ratios hits / max(counts, 1): item 0 the total into total[0], item
// k >= 1 class k - 1 into per_class[k - 1] (n = 1, or 1 + channels for the
// per-class top)
template <typename T>
__global__ void lowbit_accuracy_ratio(const index_t n, const index_t channels, const int* hits,
                                      const int* counts, T* total, T* per_class) {
  LOWBIT_KERNEL_LOOP(k, n) {
    const index_t c = k == 0 ? channels : k - 1;
    const T ratio = T(hits[c]) / T(max(counts[c], 1));
    if (k == 0) {
      total[0] = ratio;
    } else {
      per_class[c] = ratio;
    }
  }
}
