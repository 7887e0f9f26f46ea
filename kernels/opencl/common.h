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

/* `long name[8]` holding the lanes of a long8 (shapes and strides index by dimension). */
#define LONG8_ARRAY(name, v) long name[8] = {(v).s0, (v).s1, (v).s2, (v).s3, (v).s4, (v).s5, (v).s6, (v).s7}

/* Element offset of the i-th element (row-major over `shape`) of a strided array. */
inline long strided_offset(long i, long8 shape, long8 strides, int ndim) {
    LONG8_ARRAY(dims, shape);
    LONG8_ARRAY(steps, strides);
    long offset = 0;
    for (int d = ndim - 1; d >= 0; --d) {
        long n = dims[d];
        offset += (i % n) * steps[d];
        i /= n;
    }
    return offset;
}

#endif
