/* Shared definitions for tensorcore's OpenCL kernels.
 *
 * Kernels are compiled once per element type with -DT=<type> (and friends); strided kernels
 * receive shapes and strides (in elements) as long8, padded with 1 and 0, and the rank.
 */
#ifndef TENSORCORE_COMMON_H
#define TENSORCORE_COMMON_H

#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* Element offset of the i-th element (row-major over `shape`) of a strided array. */
inline long strided_offset(long i, long8 shape, long8 strides, int ndim) {
    long dims[8] = {shape.s0, shape.s1, shape.s2, shape.s3, shape.s4, shape.s5, shape.s6, shape.s7};
    long steps[8] = {strides.s0, strides.s1, strides.s2, strides.s3, strides.s4, strides.s5, strides.s6, strides.s7};
    long offset = 0;
    for (int d = ndim - 1; d >= 0; --d) {
        long n = dims[d];
        offset += (i % n) * steps[d];
        i /= n;
    }
    return offset;
}

#endif
