// Copies of the shape layers: Concat / Slice (and SPP's concatenation), Crop,
// Tile (layers/concat_slice.py, crop_tile.py, spp.py; kernels/copy.py).
// Every kernel is one item per element of the array it writes (a gather).

// Concat / Slice: a part x (outer, x_axis, inner) is the block
// [start, start + x_axis) along the axis of the whole y (outer, y_axis, inner).
// In elements: x_block = x_axis inner, y_block = y_axis inner,
// offset = start inner.

// y[o, offset + j] = x[o, j] (x into its block of y): item index o x_block + j.
template <typename T>
__global__ void lowbit_block_put(const index_t n, const T* x, const index_t x_block,
                                 const index_t y_block, const index_t offset, T* y) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    y[idx / x_block * y_block + offset + idx % x_block] = x[idx];
  }
}

// x[o, j] = y[o, offset + j] (the block of y out into x): item index o x_block + j.
template <typename T>
__global__ void lowbit_block_take(const index_t n, const T* y, const index_t x_block,
                                  const index_t y_block, const index_t offset, T* x) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    x[idx] = y[idx / x_block * y_block + offset + idx % x_block];
  }
}

// Crop of an ndim-axis x: y[c_0, ..., c_{d-1}] = x[c_0 + o_0, ..., c_{d-1} + o_{d-1}].
// geometry = [x shape (ndim), offsets o (ndim), y shape (ndim)] (int64).
template <typename T>
__global__ void lowbit_crop_fwd(const index_t n, const T* x, const int ndim,
                                const index_t* geometry, T* y) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    index_t rest = idx, src = 0, stride = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      const index_t size = geometry[2 * ndim + d];
      src += (rest % size + geometry[ndim + d]) * stride;
      rest /= size;
      stride *= geometry[d];
    }
    y[idx] = x[src];
  }
}

// Crop backward: dx = dy inside the cropped block, 0 elsewhere; one item per
// dx element (no zero fill first, no scatter).
template <typename T>
__global__ void lowbit_crop_bwd(const index_t n, const T* dy, const int ndim,
                                const index_t* geometry, T* dx) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    index_t rest = idx, src = 0, stride = 1;
    bool inside = true;
    for (int d = ndim - 1; d >= 0; --d) {
      const index_t coord = rest % geometry[d] - geometry[ndim + d];
      const index_t size = geometry[2 * ndim + d];
      rest /= geometry[d];
      inside = inside && coord >= 0 && coord < size;
      src += coord * stride;
      stride *= size;
    }
    dx[idx] = inside ? dy[src] : T(0);
  }
}

// Tile: y (outer, tiles, inner)[o, t, i] = x (outer, inner)[o, i].
template <typename T>
__global__ void lowbit_tile_fwd(const index_t n, const T* x, const index_t tiles,
                                const index_t inner, T* y) {
  LOWBIT_KERNEL_LOOP(idx, n) { y[idx] = x[idx / (tiles * inner) * inner + idx % inner]; }
}

// Tile backward: dx[o, i] = sum over t (ascending) of dy[o, t, i].
template <typename T>
__global__ void lowbit_tile_bwd(const index_t n, const T* dy, const index_t tiles,
                                const index_t inner, T* dx) {
  LOWBIT_KERNEL_LOOP(idx, n) {
    const T* src = dy + idx / inner * tiles * inner + idx % inner;
    T sum = T(0);
    for (index_t t = 0; t < tiles; ++t) sum += src[t * inner];
    dx[idx] = sum;
  }
}
