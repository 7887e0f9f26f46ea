/* New tensors made on the device (tc.arange, tc.eye; tc.full and tc.zeros are a fill of the
 * buffer and need no kernel): the values are computed where they are stored, with no upload.
 * Build with -DT=<element type>: float or double for arange_float; for arange_int and
 * strided_set, the unsigned type of the element's width (uchar, ushort, uint, ulong), so one
 * build serves every dtype of that width. */
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* NumPy computes arange as start + i * delta with a rounding after the product; contracting
 * the two into one fused multiply-add would differ from it in the last bit. */
#pragma OPENCL FP_CONTRACT OFF

/* NumPy's arange for floats: elements 0 and 1 are start and start + step as NumPy cast them;
 * element i >= 2 is start + (T)i * delta in T, with delta = second - first. */
__kernel void arange_float(__global T* out, long n, T first, T second, T delta) {
    long i = get_global_id(0);
    if (i < n) {
        out[i] = i == 0 ? first : i == 1 ? second : first + (T)i * delta;
    }
}

/* NumPy's arange for integers, whose arithmetic wraps: the same formula computed modulo 2^64
 * on the values' bits and cut to the element's width, which is what wrapping in the element's
 * own width gives. */
__kernel void arange_int(__global T* out, long n, ulong first, ulong second, ulong delta) {
    long i = get_global_id(0);
    if (i < n) {
        out[i] = (T)(i == 0 ? first : i == 1 ? second : first + (ulong)i * delta);
    }
}

/* out[offset + j * stride] = value for j < n (the diagonal of tc.eye); `value` carries the
 * element's bits. */
__kernel void strided_set(__global T* out, long offset, long stride, long n, T value) {
    long j = get_global_id(0);
    if (j < n) {
        out[offset + j * stride] = value;
    }
}
