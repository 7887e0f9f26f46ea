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

/* Token pasting after expansion: CAT(T, 8) is float8 when T is float. */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

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

/* Device errors (backends/opencl.py, CLDevice.error_flag). A validating kernel that meets a
 * bad index claims the launching thread's error record: int code at byte 0 (0: none), then
 * the long position (byte 8) and value (byte 16) of the index. The first claim wins (an
 * atomic compare-and-swap), so the record names the earliest failing launch of the thread and
 * one consistent (position, value) of it; the host raises at the thread's next read. */
inline void report_error(__global int* err, int code, long position, long value) {
    if (atomic_cmpxchg((volatile __global int*)err, 0, code) == 0) {
        __global long* rec = (__global long*)err;
        rec[1] = position;
        rec[2] = value;
    }
}

/* In-place kernels take the launching thread's record as `guard` and write nothing while it
 * holds a code: an update never follows an op whose input was invalid. A copy into a fresh
 * output gets a record that is never set (CLDevice.unguarded). One int read per work item and
 * no host wait; combine it with `|` and `&`, not `||` and `&&` (PoCL vectorizes work items
 * around plain conditions better than around short-circuit branches). */
#define GUARDED(guard) (*(guard) != 0)

/* The offset that marks an index found out of range in an `adv` array (movement.cl): gathers
 * write POISON there (all bits set: NaN in every float type) and scatters skip it. */
#define BAD_OFFSET LONG_MIN

#endif
