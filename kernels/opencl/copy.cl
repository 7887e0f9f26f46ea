/* Copies that only move bytes: gathers of strided views, view-to-view copies, zero fills,
 * triangles and rolls. Build with -DT=<element type>; the launchers pick an unsigned type of
 * the element's width (uchar, ushort, uint, ulong, ulong2), so one build serves every dtype
 * of that size: float32 and int32 share a program.
 *
 * Shapes and strides (in elements, possibly negative or zero) come as long8 padded with 1
 * and 0; indices are long, so arrays of 2^31 elements and more are addressed correctly.
 *
 * copy_contiguous, copy_view, copy_tiled and fill_view also write in place (assign, setitem):
 * they take `guard`, the launching thread's error record, and write nothing while it holds
 * an error; a copy into a fresh output passes a record that is never set (common.h, GUARDED). */
#include "common.h"

/* The offsets of the i-th element (row-major over `shape`) in two strided arrays at once:
 * one division per dimension instead of two. */
inline void strided_offset2(long i, long8 shape, long8 sa, long8 sb, int ndim, long* oa, long* ob) {
    LONG8_ARRAY(dims, shape);
    LONG8_ARRAY(as, sa);
    LONG8_ARRAY(bs, sb);
    long a = 0, b = 0;
    for (int d = ndim - 1; d >= 0; --d) {
        long n = dims[d];
        long c = i % n;
        i /= n;
        a += c * as[d];
        b += c * bs[d];
    }
    *oa = a;
    *ob = b;
}

/* Gather of a strided view into a contiguous array, one division chain per element. The
 * launchers use copy_view (an odometer per work item, several times faster on PoCL); this
 * simple form stays for kernels written against the original copy.cl. */
__kernel void copy_strided(__global T* out, __global const T* in, long in_offset,
                           long8 shape, long8 strides, int ndim, long n) {
    long i = get_global_id(0);
    if (i < n) {
        out[i] = in[in_offset + strided_offset(i, shape, strides, ndim)];
    }
}

/* Contiguous copy of n elements (with offsets), e.g. for concatenation. */
__kernel void copy_contiguous(__global T* out, long out_offset, __global const T* in, long in_offset, long n,
                              __global const int* guard) {
    long i = get_global_id(0);
    if ((i < n) & !GUARDED(guard)) {
        out[out_offset + i] = in[in_offset + i];
    }
}

/* Strided view to strided view of the same shape: contiguous(), setitem with a basic key,
 * concat into a slice of the output, assign. A broadcast source has zero strides.
 *
 * Each work item copies `chunk` consecutive elements (row-major): it divides once to find
 * its first element's coordinates, then walks runs along the last dimension, carrying into
 * the outer ones like an odometer. A division per element (64-bit on a CPU: tens of cycles)
 * made strided copies 20x slower than memory bandwidth on PoCL. */
__kernel void copy_view(__global T* out, long out_offset, __global const T* in, long in_offset,
                        long8 shape, long8 out_strides, long8 in_strides, int ndim, long n, long chunk,
                        __global const int* guard) {
    long start = get_global_id(0) * chunk;
    if ((start >= n) | GUARDED(guard)) return;
    long stop = min(n, start + chunk);
    LONG8_ARRAY(dims, shape);
    LONG8_ARRAY(os, out_strides);
    LONG8_ARRAY(is, in_strides);
    long c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (ndim == 0) ndim = 1;  /* one element: the padding (size 1, stride 0) describes it */
    long o = out_offset, s = in_offset, rest = start;
    for (int d = ndim - 1; d >= 0; --d) {
        c[d] = rest % dims[d];
        rest /= dims[d];
        o += c[d] * os[d];
        s += c[d] * is[d];
    }
    int last = ndim - 1;
    long inner = dims[last], ostep = os[last], istep = is[last];
    long i = start;
    while (i < stop) {
        long run = min(stop - i, inner - c[last]);
        for (long k = 0; k < run; ++k) {
            out[o + k * ostep] = in[s + k * istep];
        }
        i += run;
        o += run * ostep;
        s += run * istep;
        c[last] += run;
        /* carry: the last dimension wrapped; move one step in the next outer one */
        for (int d = last; d > 0 && c[d] == dims[d]; --d) {
            o += os[d - 1] - dims[d] * os[d];
            s += is[d - 1] - dims[d] * is[d];
            c[d] = 0;
            c[d - 1] += 1;
        }
    }
}

/* A copy whose source runs along another dimension than the output (a transpose): the
 * odometer walk would read the source with a large stride and use one element per cache
 * line. Here work item g copies one TILE x TILE block of dimensions (p, l), l being the
 * output's last: the block's source and output lines stay in L1 while it is copied.
 * g enumerates (tile along l, tile along p, index of the remaining dimensions `rshape`). */
#define TILE 32
__kernel void copy_tiled(__global T* out, long out_offset, __global const T* in, long in_offset,
                         long8 rshape, long8 rost, long8 rist, int rdim,
                         long np, long osp, long isp, long nl, long osl, long isl, long count,
                         __global const int* guard) {
    long g = get_global_id(0);
    if ((g >= count) | GUARDED(guard)) return;
    long tiles_l = (nl + TILE - 1) / TILE, tiles_p = (np + TILE - 1) / TILE;
    long l0 = (g % tiles_l) * TILE, p0 = ((g / tiles_l) % tiles_p) * TILE, r = g / tiles_l / tiles_p;
    long o, s;
    strided_offset2(r, rshape, rost, rist, rdim, &o, &s);
    o += out_offset;
    s += in_offset;
    long p1 = min(np, p0 + TILE), l1 = min(nl, l0 + TILE);
    for (long p = p0; p < p1; ++p) {
        for (long l = l0; l < l1; ++l) {
            out[o + p * osp + l * osl] = in[s + p * isp + l * isl];
        }
    }
}

/* out[view] = value, one value for the whole (strided) view: x[1:, ::2] = 0.5 without an
 * upload. `value` carries the element's bits (the launcher reinterprets them). */
__kernel void fill_view(__global T* out, long out_offset, long8 shape, long8 out_strides, int ndim, long n,
                        long chunk, T value, __global const int* guard) {
    long start = get_global_id(0) * chunk;
    if ((start >= n) | GUARDED(guard)) return;
    long stop = min(n, start + chunk);
    LONG8_ARRAY(dims, shape);
    LONG8_ARRAY(os, out_strides);
    long c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (ndim == 0) ndim = 1;
    long o = out_offset, rest = start;
    for (int d = ndim - 1; d >= 0; --d) {
        c[d] = rest % dims[d];
        rest /= dims[d];
        o += c[d] * os[d];
    }
    int last = ndim - 1;
    long i = start;
    while (i < stop) {
        long run = min(stop - i, dims[last] - c[last]);
        for (long k = 0; k < run; ++k) {
            out[o + k * os[last]] = value;
        }
        i += run;
        o += run * os[last];
        c[last] += run;
        for (int d = last; d > 0 && c[d] == dims[d]; --d) {
            o += os[d - 1] - dims[d] * os[d];
            c[d] = 0;
            c[d - 1] += 1;
        }
    }
}

/* n zero elements (all-zero bytes: 0, 0.0 and False alike). */
__kernel void fill_zero(__global T* out, long out_offset, long n) {
    long i = get_global_id(0);
    if (i < n) {
        out[out_offset + i] = (T)(0);
    }
}

/* tril (upper = 0: keep col - row <= k) or triu (upper = 1: keep col - row >= k) of a stack
 * of matrices, the last two of the `ndim` >= 2 dimensions; contiguous output. */
__kernel void triangle(__global T* out, __global const T* in, long in_offset,
                       long8 shape, long8 strides, int ndim, long n, long k, int upper) {
    long i = get_global_id(0);
    if (i < n) {
        LONG8_ARRAY(dims, shape);
        long cols = dims[ndim - 1], rows = dims[ndim - 2];
        long col = i % cols, row = (i / cols) % rows;
        int keep = upper ? (col - row >= k) : (col - row <= k);
        out[i] = keep ? in[in_offset + strided_offset(i, shape, strides, ndim)] : (T)(0);
    }
}

/* np.roll: output coordinate c reads input coordinate (c - shift) mod n in each dimension
 * (shifts already reduced to 0 <= shift < n); contiguous output. */
__kernel void roll(__global T* out, __global const T* in, long in_offset,
                   long8 shape, long8 strides, long8 shifts, int ndim, long n) {
    long i = get_global_id(0);
    if (i < n) {
        LONG8_ARRAY(dims, shape);
        LONG8_ARRAY(steps, strides);
        LONG8_ARRAY(by, shifts);
        long rest = i, src = 0;
        for (int d = ndim - 1; d >= 0; --d) {
            long c = rest % dims[d];
            rest /= dims[d];
            c -= by[d];
            if (c < 0) c += dims[d];
            src += c * steps[d];
        }
        out[i] = in[in_offset + src];
    }
}
