/* Strided copy: gathers any view (transpose, broadcast, slice) into a contiguous array.
 * Build with -DT=<element type>. */
#include "common.h"

__kernel void copy_strided(__global T* out, __global const T* in, long in_offset,
                           long8 shape, long8 strides, int ndim, long n) {
    long i = get_global_id(0);
    if (i < n) {
        out[i] = in[in_offset + strided_offset(i, shape, strides, ndim)];
    }
}

/* Contiguous copy of n elements (with offsets), e.g. for concatenation. */
__kernel void copy_contiguous(__global T* out, long out_offset, __global const T* in, long in_offset, long n) {
    long i = get_global_id(0);
    if (i < n) {
        out[out_offset + i] = in[in_offset + i];
    }
}
