// Bit packing and the popcount GEMM of the packed runtime (deploy/bitops.py).
// Rows of k bits live in W = ceil(k / 64) 64-bit words: element j of a row is
// bit j % 64 (bit 0 least significant) of word j / 64; the bits past k in the
// last word are 0. No float type: these kernels are not templates.

// pack: one item per word i = (row, word) = (i / W, i % W) of the output;
// bits (rows, k) row-major, 0 or not 0 (bool or uint8).
__global__ void lowbit_pack_bits(const index_t n, const index_t k, const index_t words_per_row,
                                 const unsigned char* bits, unsigned long long* words) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t row = i / words_per_row;
    const index_t first = (i % words_per_row) * 64;
    const unsigned char* src = bits + row * k + first;
    const index_t count = k - first < 64 ? k - first : 64;
    unsigned long long word = 0;
    for (index_t b = 0; b < count; ++b) {
      if (src[b]) word |= 1ull << b;
    }
    words[i] = word;
  }
}

// unpack: one item per bit i = (row, j) = (i / k, i % k): bits[i] = bit j of the row
__global__ void lowbit_unpack_bits(const index_t n, const index_t k, const index_t words_per_row,
                                   const unsigned long long* words, unsigned char* bits) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const index_t row = i / k, j = i % k;
    bits[i] = (unsigned char)((words[row * words_per_row + j / 64] >> (j % 64)) & 1ull);
  }
}

// popcount: out[i] = the bits set in words[i]
__global__ void lowbit_popcount(const index_t n, const unsigned long long* words,
                                unsigned char* out) {
  LOWBIT_KERNEL_LOOP(i, n) { out[i] = (unsigned char)__popcll(words[i]); }
}

// popcount GEMM, one item per output i = (r, c) = (i / cols, i % cols) of
// out (rows, cols): out[r, c] = sum_w popcount(a[r, w] op b[c, w]), op = xor
// (use_xor) or and; a (rows, W), b (cols, W) words, row-major.
__global__ void lowbit_popcount_gemm(const index_t n, const index_t cols, const index_t w,
                                     const unsigned long long* a, const unsigned long long* b,
                                     const int use_xor, int* out) {
  LOWBIT_KERNEL_LOOP(i, n) {
    const unsigned long long* ra = a + (i / cols) * w;
    const unsigned long long* rb = b + (i % cols) * w;
    int s = 0;
    if (use_xor) {
      for (index_t k = 0; k < w; ++k) s += __popcll(ra[k] ^ rb[k]);
    } else {
      for (index_t k = 0; k < w; ++k) s += __popcll(ra[k] & rb[k]);
    }
    out[i] = s;
  }
}
