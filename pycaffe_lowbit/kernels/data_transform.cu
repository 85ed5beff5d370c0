// The data layers' transform on the device (layers/_data_device.py;
// kernels/data_transform.py): a batch arrives as uint8 crops, a quarter of the
// float32 traffic, and mirror, mean and scale are applied here, exactly as
// data/transformer.py does on the host:
//
//   y[b, c, i, j] = (x[b, c, i, jj] - m(b, c, i, jj)) * scale,
//   jj = w - 1 - j when image b is mirrored (flip[b] != 0), else j,
//
// in T (float: the difference rounded, then the product, never fused).
// x: (batch, channels, h, w) uint8, the unmirrored crops. The mean m is
// none (mean_kind 0), one value per channel or one for all (1: mean[c] or
// mean[0], mean_count values), or the mean file (2: mean of (channels,
// mean_h, mean_w) read at row offsets[2b] + i, column offsets[2b + 1] + jj,
// the crop's place in the full image). One item per element of y.

__device__ float lowbit_dt_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ double lowbit_dt_mul(double a, double b) { return __dmul_rn(a, b); }

template <typename T>
__global__ void lowbit_data_transform(const index_t n, const unsigned char* x,
                                      const int channels, const int h, const int w,
                                      const unsigned char* flip, const index_t* offsets,
                                      const int mean_kind, const T* mean,
                                      const int mean_count, const int mean_h,
                                      const int mean_w, const T scale, T* y) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const index_t j = idx % w;
    const index_t i = idx / w % h;
    const index_t c = idx / ((index_t)w * h) % channels;
    const index_t b = idx / ((index_t)w * h * channels);
    const index_t jj = flip[b] ? w - 1 - j : j;
    T value = (T)x[((b * channels + c) * h + i) * w + jj];
    if (mean_kind == 1) {
      value -= mean[mean_count > 1 ? c : 0];
    } else if (mean_kind == 2) {
      value -= mean[(c * mean_h + offsets[2 * b] + i) * mean_w + offsets[2 * b + 1] + jj];
    }
    y[idx] = lowbit_dt_mul(value, scale);
  }
}
