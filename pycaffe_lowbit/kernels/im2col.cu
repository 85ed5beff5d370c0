// im2col / col2im of a 2-D convolution geometry, and the layout glue around
// the convolution GEMMs (layers/_im2col.py, layers/conv.py, kernels/im2col.py).
//
// Geometry: input x (M, C, H, W) C-contiguous; kernel (KH, KW), pad, stride,
// dilation; output (OH, OW). Output position (oh, ow) and kernel offset
// (i, j) read the input at
//   h = oh * stride_h - pad_h + i * dilation_h,  w = ow * stride_w - pad_w + j * dilation_w
// (zero outside [0, H) x [0, W)). A 1-D geometry is H = KH = OH = 1.
//
// The column entry (m, c, k = i * KW + j, o = oh * OW + ow) lives at
//   m * stride_m + c * stride_c + k * stride_k + o
// so one kernel serves both layouts of layers/_im2col.py:
//   batch last  col[c, i, j, m, oh, ow]: stride_m = OH OW, stride_k = M OH OW,
//               stride_c = KH KW M OH OW (one GEMM per group over the batch)
//   batch first col[m, c, i, j, oh, ow]: stride_m = C KH KW OH OW,
//               stride_c = KH KW OH OW, stride_k = OH OW (the Im2col layer)

// One item per (m, c, oh, ow), item index ((m C + c) OH + oh) OW + ow; it
// writes its KH KW column entries (consecutive items write consecutive o).
template <typename T>
__global__ void lowbit_im2col(const index_t n, const T* x, const int channels,
                              const int height, const int width, const int kernel_h,
                              const int kernel_w, const int pad_h, const int pad_w,
                              const int stride_h, const int stride_w, const int dilation_h,
                              const int dilation_w, const int out_h, const int out_w,
                              const index_t stride_m, const index_t stride_c,
                              const index_t stride_k, T* col) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const int ow = (int)(idx % out_w);
    const int oh = (int)((idx / out_w) % out_h);
    const index_t mc = idx / ((index_t)out_w * out_h);
    const index_t m = mc / channels;
    const int c = (int)(mc % channels);
    const T* plane = x + mc * height * width;
    T* dst = col + m * stride_m + c * stride_c + (index_t)oh * out_w + ow;
    const int h0 = oh * stride_h - pad_h;
    const int w0 = ow * stride_w - pad_w;
    for (int i = 0; i < kernel_h; ++i) {
      const int h = h0 + i * dilation_h;
      const bool row_inside = h >= 0 && h < height;
      for (int j = 0; j < kernel_w; ++j) {
        const int w = w0 + j * dilation_w;
        dst[(index_t)(i * kernel_w + j) * stride_k] =
            (row_inside && w >= 0 && w < width) ? plane[(index_t)h * width + w] : T(0);
      }
    }
  }
}

// The adjoint: x[m, c, h, w] = sum of the column entries that read (h, w),
// one item per input element (a gather: no two items write the same place).
// Entry (i, j) reads (h, w) when h + pad_h - i dilation_h = oh stride_h with
// 0 <= oh < OH (likewise w). Summed in (i, j) row-major order, starting at 0,
// the order of layers/_im2col.py's col2im.
template <typename T>
__global__ void lowbit_col2im(const index_t n, const T* col, const int channels,
                              const int height, const int width, const int kernel_h,
                              const int kernel_w, const int pad_h, const int pad_w,
                              const int stride_h, const int stride_w, const int dilation_h,
                              const int dilation_w, const int out_h, const int out_w,
                              const index_t stride_m, const index_t stride_c,
                              const index_t stride_k, T* x) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const int w = (int)(idx % width);
    const int h = (int)((idx / width) % height);
    const index_t mc = idx / ((index_t)width * height);
    const index_t m = mc / channels;
    const int c = (int)(mc % channels);
    const T* src = col + m * stride_m + c * stride_c;
    T val = T(0);
    for (int i = 0; i < kernel_h; ++i) {
      const int hp = h + pad_h - i * dilation_h;
      if (hp < 0 || hp % stride_h != 0 || hp / stride_h >= out_h) continue;
      const int oh = hp / stride_h;
      for (int j = 0; j < kernel_w; ++j) {
        const int wp = w + pad_w - j * dilation_w;
        if (wp < 0 || wp % stride_w != 0 || wp / stride_w >= out_w) continue;
        val += src[(index_t)(i * kernel_w + j) * stride_k + (index_t)oh * out_w +
                   wp / stride_w];
      }
    }
    x[idx] = val;
  }
}

// dst (B, A, L) = src (A, B, L) with the two leading axes swapped: the
// images-first activations (m, C, L) to the GEMMs' channels-first (C, m, L)
// and back. One item per dst element, index (b A + a) L + l.
template <typename T>
__global__ void lowbit_swap_leading_axes(const index_t n, const T* src, const index_t a_size,
                                         const index_t b_size, const index_t inner, T* dst) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const index_t l = idx % inner;
    const index_t t = idx / inner;
    const index_t a = t % a_size;
    const index_t b = t / a_size;
    dst[idx] = src[(a * b_size + b) * inner + l];
  }
}

// y[m, c, l] += bias[c] in place, y (M, C, L): the bias of Convolution,
// Deconvolution (L = output positions) and InnerProduct (L = 1).
template <typename T>
__global__ void lowbit_add_channel_bias(const index_t n, T* y, const index_t channels,
                                        const index_t inner, const T* bias) {
  LOWBIT_KERNEL_LOOP(idx, n) { y[idx] += bias[(idx / inner) % channels]; }
}
