/* norm_partial: one pass over up to NB = 16 tensors per launch (clip_grad_norm's global norm).
 *
 *   partials[base + w] = COMB over work-item w's chunk of MAP(x)
 *
 * with MAP(x) = x*x (MODE 0), |x| (MODE 1, COMB max) or |x|^p (MODE 2), COMB a sum otherwise.
 * Every chunk lies inside one tensor: tensor i owns work-items ends[i-1] .. ends[i]-1 (ends is
 * the running count of chunks), each of `chunk` elements (its last one may be shorter). The
 * launcher (backends/opencl_ops/global_norm.py) combines the partials of every launch with the
 * reduction engine, so one device's gradients cost ceil(k / 16) launches plus one, never one
 * per tensor.
 *
 * Like reduce.cl: sums run in 16 vector lanes, a lane adds at most BLOCK terms before adding
 * the block into its total (accurate in float32); no barriers and no local memory (PoCL splits
 * a kernel at every barrier). Max propagates NaN, as NumPy's does.
 *
 * Build defines: T (float or double), MODE (0, 1 or 2).
 */
#include "common.h"

#define NB 16
#define BLOCK 64
#define TV CAT(T, 16)
#define T8 CAT(T, 8)
#define T4 CAT(T, 4)
#define T2 CAT(T, 2)

/* Unaligned vector loads through a type aligned like its elements (see reduce.cl). */
typedef TV __attribute__((aligned(sizeof(T)))) TVU;
#define LOADV(k, p) (*((__global const TVU*)(p) + (k)))

#if MODE == 0
#define MAPV(v) ((v) * (v))
#define MAPS(v) ((v) * (v))
#elif MODE == 1
#define MAPV(v) fabs(v)
#define MAPS(v) fabs(v)
#elif MODE == 2
#define MAPV(v) pow(fabs(v), (TV)(p))
#define MAPS(v) pow(fabs(v), (p))
#else
#error "build with -DMODE=0 (sum of squares), 1 (max |x|) or 2 (sum |x|^p)"
#endif

#if MODE == 1
#define COMBV(a, b) select((b), (a), ((a) > (b)) | isnan(a))
#define COMBS(a, b) (((a) > (b) || isnan(a)) ? (a) : (b))
#else
#define COMBV(a, b) ((a) + (b))
#define COMBS(a, b) ((a) + (b))
#endif

/* The COMB of a vector's 16 lanes, pairwise. */
inline T lanes(TV v) {
    T8 h = COMBV(v.lo, v.hi);
    T4 q = COMBV(h.lo, h.hi);
    T2 d = COMBV(q.lo, q.hi);
    return COMBS(d.x, d.y);
}

#define PICK(k) case k: x = x##k; break;

__kernel void norm_partial(__global T* partials, long base,
                           __global const T* x0, __global const T* x1, __global const T* x2, __global const T* x3,
                           __global const T* x4, __global const T* x5, __global const T* x6, __global const T* x7,
                           __global const T* x8, __global const T* x9, __global const T* x10, __global const T* x11,
                           __global const T* x12, __global const T* x13, __global const T* x14, __global const T* x15,
                           long16 offsets, long16 sizes, long16 ends, int count, long chunk, T p) {
    const long w = get_global_id(0);
    long end[NB], off[NB], size[NB];
    vstore16(ends, 0, end);
    if (w >= end[count - 1]) return;  /* the launch is rounded up to whole work-groups */
    vstore16(offsets, 0, off);
    vstore16(sizes, 0, size);
    int i = 0;
    while (end[i] <= w) ++i;
    __global const T* x = x0;
    switch (i) {
        PICK(0) PICK(1) PICK(2) PICK(3) PICK(4) PICK(5) PICK(6) PICK(7)
        PICK(8) PICK(9) PICK(10) PICK(11) PICK(12) PICK(13) PICK(14) PICK(15)
    }
    const long start = (w - (i ? end[i - 1] : 0)) * chunk;
    const long n = min(chunk, size[i] - start);
    __global const T* q = x + off[i] + start;

    const long nv = n / 16;
    TV total = (TV)(0);
    for (long b = 0; b < nv; b += BLOCK) {
        const long stop = min(nv, b + BLOCK);
        TV acc = (TV)(0);
        for (long k = b; k < stop; ++k) {
            const TV v = LOADV(k, q);
            acc = COMBV(MAPV(v), acc);
        }
        total = COMBV(acc, total);
    }
    T r = lanes(total);
    for (long k = nv * 16; k < n; ++k) {
        const T v = q[k];
        r = COMBS(MAPS(v), r);
    }
    partials[base + w] = r;
}
