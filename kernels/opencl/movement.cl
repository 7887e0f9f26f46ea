/* Indexing with index tensors: gathers (x[idx], take_along_axis, embedding), scatters
 * (x[idx] = v) and scatter-adds (their gradients), boolean-mask compaction, index ranges.
 *
 * An advanced key is reduced on the host to: a base offset, per-dimension strides of x for
 * the result's basic dimensions, and one `adv` array of long element offsets (one per
 * element of the broadcast index shape), built by `adv_offsets` from each index tensor.
 *
 * Every kernel gives each work item `chunk` consecutive elements (row-major) and walks them
 * with an odometer: one division per dimension to find the first element's coordinates,
 * then increments with carries. A 64-bit division per element (tens of cycles on a CPU)
 * made these kernels several times slower than memory on PoCL.
 *
 * Index values are validated here, not on the host (a host check would read them back and
 * drain the queue): `adv_offsets` reports an index out of range (its position and value)
 * into the launching thread's error record (common.h) and marks its offset BAD_OFFSET; the
 * gathers write POISON there and the scatters skip it, so no kernel touches memory outside
 * x, and the host raises at the thread's next read. `index_set` (setitem, in place) writes
 * nothing while the thread's record holds an error.
 *
 * Builds (each with only the defines it needs):
 *   -DIT=<index type>            index_minmax, adv_offsets
 *   -DMASK=1                     mask_count, mask_offsets
 *   -DT=<type of the width>      index_gather, index_set (bytes are moved, never read as numbers)
 *   -DT=<type> -DATOMIC=<kind>   index_add (kind 1: float, 2: double, 3: int/uint, 4: long/ulong)
 */
#include "common.h"

#if ATOMIC == 2 || ATOMIC == 4
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
#endif

/* A row-major odometer over up to 8 dimensions, moving up to three offsets along their
 * strides. A 0-d shape is walked as one element (the long8 padding: size 1, stride 0). */
typedef struct {
    long dims[8], c[8], sa[8], sb[8], sc[8];
    long a, b, cc;
    int last;
} Odometer;

inline void odo_start(Odometer* o, long i, long8 shape, long8 sa, long8 sb, long8 sc, int ndim) {
    LONG8_ARRAY(d8, shape);
    LONG8_ARRAY(a8, sa);
    LONG8_ARRAY(b8, sb);
    LONG8_ARRAY(c8, sc);
    o->last = (ndim > 0 ? ndim : 1) - 1;
    o->a = o->b = o->cc = 0;
    for (int d = 7; d >= 0; --d) {
        o->dims[d] = d8[d];
        o->sa[d] = a8[d];
        o->sb[d] = b8[d];
        o->sc[d] = c8[d];
        o->c[d] = 0;
        if (d <= o->last) {
            o->c[d] = i % d8[d];
            i /= d8[d];
            o->a += o->c[d] * a8[d];
            o->b += o->c[d] * b8[d];
            o->cc += o->c[d] * c8[d];
        }
    }
}

/* Advance by `run` elements along the last dimension (run <= what is left of the row),
 * then carry into the outer dimensions where the row ended. */
inline void odo_advance(Odometer* o, long run) {
    int d = o->last;
    o->c[d] += run;
    o->a += run * o->sa[d];
    o->b += run * o->sb[d];
    o->cc += run * o->sc[d];
    for (; d > 0 && o->c[d] == o->dims[d]; --d) {
        o->a += o->sa[d - 1] - o->dims[d] * o->sa[d];
        o->b += o->sb[d - 1] - o->dims[d] * o->sb[d];
        o->cc += o->sc[d - 1] - o->dims[d] * o->sc[d];
        o->c[d] = 0;
        o->c[d - 1] += 1;
    }
}

/* Elements left in the current row, capped by `left`. */
inline long odo_run(const Odometer* o, long left) {
    return min(left, o->dims[o->last] - o->c[o->last]);
}

#define ZERO8 ((long8)(0))

#ifdef IT
/* Min and max of an index tensor, chunk by chunk: work item g writes its chunk's (min, max)
 * to out[out_pos + 2g], out[out_pos + 2g + 1]; the host reduces the few chunks. Several
 * tensors share one result buffer, so one read validates them all. Only setitem uses it: an
 * in-place write must raise before it writes anything, at the call. */
__kernel void index_minmax(__global const IT* idx, long offset, long8 shape, long8 strides, int ndim,
                           long n, long chunk, __global long* out, long out_pos) {
    long g = get_global_id(0), i = g * chunk;
    if (i >= n) return;
    long stop = min(n, i + chunk), lo = LONG_MAX, hi = LONG_MIN;
    Odometer o;
    odo_start(&o, i, shape, strides, ZERO8, ZERO8, ndim);
    while (i < stop) {
        long run = odo_run(&o, stop - i), step = o.sa[o.last];
        for (long k = 0; k < run; ++k) {
            long v = (long)idx[offset + o.a + k * step];
            lo = min(lo, v);
            hi = max(hi, v);
        }
        i += run;
        odo_advance(&o, run);
    }
    out[out_pos + 2 * g] = lo;
    out[out_pos + 2 * g + 1] = hi;
}

/* adv[i] (+)= wrap(idx[i]) * xstride over the broadcast index shape (adv contiguous, idx
 * strided with zero strides where it broadcasts). With `wrap`, -axis_len <= v < 0 counts from
 * the end (NumPy); without (embedding), negatives are out of range. An index still outside
 * [0, axis_len) makes adv[i] BAD_OFFSET (and it stays so as later index tensors of the key
 * accumulate), and the work item's first such index (position i, its value) is reported into
 * the error record `err` with `code` once its chunk is done (report_error, common.h). Code 0
 * means offsets that are final and valid by construction (a mask's: negative where x has
 * negative strides), taken as they are, unchecked; `err` may be NULL then. */
__kernel void adv_offsets(__global long* adv, int accumulate, __global const IT* idx, long offset,
                          long8 shape, long8 strides, int ndim, long n, long chunk, long axis_len, long xstride,
                          int wrap, __global int* err, int code) {
    long i = get_global_id(0) * chunk;
    if (i >= n) return;
    long stop = min(n, i + chunk), bad_at = -1, bad_value = 0;
    Odometer o;
    odo_start(&o, i, shape, strides, ZERO8, ZERO8, ndim);
    while (i < stop) {
        long run = odo_run(&o, stop - i), step = o.sa[o.last];
        for (long k = 0; k < run; ++k) {
            long raw = (long)idx[offset + o.a + k * step];
            long v = raw + (((raw < 0) & wrap) ? axis_len : 0);
            /* `|` and `&`, not `||` and `&&`: all tests, no short-circuit branches in the hot loop. */
            int bad = ((v < 0) | (v >= axis_len)) & (code != 0);
            if (bad & (bad_at < 0)) {
                bad_at = i + k;
                bad_value = raw;
            }
            long prev = accumulate ? adv[i + k] : 0;
            adv[i + k] = (bad | (prev == BAD_OFFSET)) ? BAD_OFFSET : prev + v * xstride;
        }
        i += run;
        odo_advance(&o, run);
    }
    if (bad_at >= 0) report_error(err, code, bad_at, bad_value);
}
#endif

#ifdef MASK
/* Number of true elements in each chunk of a (strided) boolean mask. */
__kernel void mask_count(__global const uchar* mask, long offset, long8 shape, long8 strides, int ndim,
                         long n, long chunk, __global long* counts) {
    long g = get_global_id(0), i = g * chunk;
    if (i >= n) return;
    long stop = min(n, i + chunk), count = 0;
    Odometer o;
    odo_start(&o, i, shape, strides, ZERO8, ZERO8, ndim);
    while (i < stop) {
        long run = odo_run(&o, stop - i), step = o.sa[o.last];
        for (long k = 0; k < run; ++k) {
            count += mask[offset + o.a + k * step] != 0;
        }
        i += run;
        odo_advance(&o, run);
    }
    counts[g] = count;
}

/* The x offsets of the true elements, in row-major order: chunk g writes from starts[g]
 * (the exclusive prefix sum of mask_count's counts). `xstrides` are x's strides over the
 * dimensions the mask covers. */
__kernel void mask_offsets(__global const uchar* mask, long offset, long8 shape, long8 strides, int ndim,
                           long n, long chunk, __global const long* starts, long8 xstrides,
                           __global long* out) {
    long g = get_global_id(0), i = g * chunk;
    if (i >= n) return;
    long stop = min(n, i + chunk), pos = starts[g];
    Odometer o;
    odo_start(&o, i, shape, strides, xstrides, ZERO8, ndim);
    while (i < stop) {
        long run = odo_run(&o, stop - i), step = o.sa[o.last], xstep = o.sb[o.last];
        for (long k = 0; k < run; ++k) {
            if (mask[offset + o.a + k * step]) out[pos++] = o.b + k * xstep;
        }
        i += run;
        odo_advance(&o, run);
    }
}
#endif

#ifdef ATOMIC
/* Atomic add, so repeated indices accumulate. OpenCL 1.2 has no float atomics: floats go
 * through a compare-and-swap loop on their bits (64-bit ones need cl_khr_int64_base_atomics). */
inline void atomic_add_T(volatile __global T* p, T value) {
#if ATOMIC == 1
    union { uint u; float f; } old, upd;
    do {
        old.f = *p;
        upd.f = old.f + value;
    } while (atomic_cmpxchg((volatile __global uint*)p, old.u, upd.u) != old.u);
#elif ATOMIC == 2
    union { ulong u; double f; } old, upd;
    do {
        old.f = *p;
        upd.f = old.f + value;
    } while (atom_cmpxchg((volatile __global ulong*)p, old.u, upd.u) != old.u);
#elif ATOMIC == 3
    atomic_add(p, value);
#else
    atom_add(p, value);
#endif
}
#endif

#ifdef T
/* All bits set: a NaN in every float type (and -1 in the signed integers): what a gather
 * writes where its index was out of range, so a result built from a bad index is never a
 * plausible value, even read after the error was raised. */
#ifdef ATOMIC
#define POISON ((T)(0)) /* index_add builds (T a float type, where ~ does not apply) never gather */
#else
#define POISON (~(T)(0))
#endif

/* The walk shared by gather (mode 0: v[...] = x[...]), set (mode 1: x[...] = v[...]) and add
 * (mode 2: x[...] += v[...], atomically) over `shape`: element i is x[base + i.xst +
 * adv[i.ast]] and v[voff + i.vst]. `mode` is a constant in each kernel. Where the last
 * dimension is a basic one (ast = 0 there: embedding rows, x[idx, :]), adv is read once
 * per row and the row is a plain strided copy. An adv offset of BAD_OFFSET (an index out of
 * range) gathers POISON and is skipped by set and add; x is then read at the basic part of
 * the element alone, which lies inside x (every indexed axis has a length, or the launcher
 * raised). */
inline void index_walk(int mode, __global T* x, long base, __global const long* adv, __global T* v, long voff,
                       long8 shape, long8 xst, long8 ast, long8 vst, int ndim, long n, long chunk) {
    long i = get_global_id(0) * chunk;
    if (i >= n) return;
    long stop = min(n, i + chunk);
    Odometer o;
    odo_start(&o, i, shape, xst, ast, vst, ndim);
    long xs = o.sa[o.last], as = o.sb[o.last], vs = o.sc[o.last];
    while (i < stop) {
        long run = odo_run(&o, stop - i);
        long xo = base + o.a, vo = voff + o.cc, row = as == 0 ? adv[o.b] : 0;
        for (long k = 0; k < run; ++k) {
            long a = as == 0 ? row : adv[o.b + k * as];
            int bad = a == BAD_OFFSET;
            long xi = xo + k * xs + (bad ? 0 : a);
            long vi = vo + k * vs;
            if (mode == 0) {
                v[vi] = bad ? POISON : x[xi];
            } else if (bad) {
                continue;
            } else if (mode == 1) {
                x[xi] = v[vi];
            } else {
#ifdef ATOMIC
                atomic_add_T(x + xi, v[vi]);
#endif
            }
        }
        i += run;
        odo_advance(&o, run);
    }
}
#endif

#if defined(T) && !defined(ATOMIC)
/* out (shape R, strides ostrides: contiguous) = x[base + basic part + adv[index part]]. */
__kernel void index_gather(__global T* out, __global const T* x, long base, __global const long* adv,
                           long8 shape, long8 xstrides, long8 astrides, long8 ostrides, int ndim, long n, long chunk) {
    index_walk(0, (__global T*)x, base, adv, out, 0, shape, xstrides, astrides, ostrides, ndim, n, chunk);
}

/* x[base + basic part + adv[index part]] = v (zero strides where it broadcasts). With
 * repeated indices one of the values wins, as in NumPy where the last one does. In place:
 * nothing is written while the launching thread's error record `guard` holds an error. */
__kernel void index_set(__global T* x, long base, __global const long* adv, __global const T* v, long voff,
                        long8 shape, long8 xstrides, long8 astrides, long8 vstrides, int ndim, long n, long chunk,
                        __global const int* guard) {
    if (GUARDED(guard)) return;  /* the same value in every work item */
    index_walk(1, x, base, adv, (__global T*)v, voff, shape, xstrides, astrides, vstrides, ndim, n, chunk);
}
#endif

#ifdef ATOMIC
/* x[base + basic part + adv[index part]] += v: np.add.at. */
__kernel void index_add(__global T* x, long base, __global const long* adv, __global const T* v, long voff,
                        long8 shape, long8 xstrides, long8 astrides, long8 vstrides, int ndim, long n, long chunk) {
    index_walk(2, x, base, adv, (__global T*)v, voff, shape, xstrides, astrides, vstrides, ndim, n, chunk);
}
#endif
