/* The softmax family: softmax, log_softmax, their backward ops, and cross-entropy.
 *
 * Fused row kernels: one work-item per contiguous row, three passes over the row (max, sum of
 * exponentials, write), 16 lanes at a time and without barriers (PoCL turns barriers into
 * loops). Sums use per-lane blocks of at most BLOCK terms, as in reduce.cl. Rows that are
 * too long or not the last axis go through reduce.cl instead, and the *_apply kernels here
 * then finish elementwise from the per-row max and sum.
 *
 * Build defines: T (float or double), LOG (1 for the log_softmax forms); LT (labels' type)
 * and TG (the gradient's type) for cross-entropy.
 */
#include "common.h"

#define VW 16
#define BLOCK 64
#define TV CAT(T, 16)

/* Unaligned vector access through a type aligned like its elements (see reduce.cl: PoCL's
 * vload16/vstore16 assemble 8-byte pieces). */
typedef TV __attribute__((aligned(sizeof(T)))) TVU;
#define LOAD(p) (*(__global const TVU*)(p))
#define STORE(v, p) (*(__global TVU*)(p) = (v))

inline T lanes_sum(TV v) {
    CAT(T, 8) v8 = v.lo + v.hi;
    CAT(T, 4) v4 = v8.lo + v8.hi;
    CAT(T, 2) v2 = v4.lo + v4.hi;
    return v2.s0 + v2.s1;
}

inline T lanes_max(TV v) {
    CAT(T, 8) v8 = fmax(v.lo, v.hi);
    CAT(T, 4) v4 = fmax(v8.lo, v8.hi);
    CAT(T, 2) v2 = fmax(v4.lo, v4.hi);
    return fmax(v2.s0, v2.s1);
}

/* The largest element of p[0..N). A NaN is skipped here, but it turns the row's sum, and
 * with it the whole row, into NaN, as NumPy's max-first formula does. */
inline T row_max(__global const T* p, long N) {
    long n = 0;
    T m = -INFINITY;
    if (N >= VW) {
        TV mv = (TV)(-INFINITY);
        for (; n + VW <= N; n += VW) {
            mv = fmax(mv, LOAD(p + n));
        }
        m = lanes_max(mv);
    }
    for (; n < N; ++n) {
        m = fmax(m, p[n]);
    }
    return m;
}

/* sum of exp(p[n] - m); when `e` is not NULL, exp(p[n] - m) is also written to e[n]. */
inline T row_sum_exp(__global const T* p, __global T* e, long N, T m) {
    long n = 0;
    TV acc = (TV)(0), mv = (TV)(m);
    while (n + VW <= N) {
        long stop = min(N - VW, n + (BLOCK - 1) * VW);
        TV blk = (TV)(0);
        for (; n <= stop; n += VW) {
            TV v = exp(LOAD(p + n) - mv);
            if (e) {
                STORE(v, e + n);
            }
            blk += v;
        }
        acc += blk;
    }
    T total = lanes_sum(acc);
    for (; n < N; ++n) {
        T v = exp(p[n] - m);
        if (e) {
            e[n] = v;
        }
        total += v;
    }
    return total;
}

/* softmax (LOG 0) or log_softmax (LOG 1) of each of the R rows of length N; global (R). */
__kernel void softmax_rows(__global T* out, __global const T* x, long xoff, long N, long R) {
    long r = get_global_id(0);
    if (r >= R) {
        return;
    }
    __global const T* p = x + xoff + r * N;
    __global T* o = out + r * N;
    T m = row_max(p, N);
#if LOG
    T ls = log(row_sum_exp(p, 0, N, m));
    TV mv = (TV)(m), lv = (TV)(ls);
    long n = 0;
    for (; n + VW <= N; n += VW) {
        STORE((LOAD(p + n) - mv) - lv, o + n);
    }
    for (; n < N; ++n) {
        o[n] = (p[n] - m) - ls;
    }
#else
    T s = row_sum_exp(p, o, N, m);
    TV sv = (TV)(s);
    long n = 0;
    for (; n + VW <= N; n += VW) {
        STORE(LOAD(o + n) / sv, o + n);
    }
    for (; n < N; ++n) {
        o[n] = o[n] / s;
    }
#endif
}

/* softmax_backward: out = g*y - y*sum(g*y) (LOG 0); log_softmax_backward: out = g - exp(y)*sum(g)
 * (LOG 1); over each of the R rows of length N; global (R). */
__kernel void softmax_backward_rows(__global T* out, __global const T* g, long goff, __global const T* y, long yoff,
                                    long N, long R) {
    long r = get_global_id(0);
    if (r >= R) {
        return;
    }
    g += goff + r * N;
    y += yoff + r * N;
    out += r * N;
    long n = 0;
    TV acc = (TV)(0);
    while (n + VW <= N) {
        long stop = min(N - VW, n + (BLOCK - 1) * VW);
        TV blk = (TV)(0);
        for (; n <= stop; n += VW) {
#if LOG
            blk += LOAD(g + n);
#else
            blk += LOAD(g + n) * LOAD(y + n);
#endif
        }
        acc += blk;
    }
    T s = lanes_sum(acc);
    for (; n < N; ++n) {
#if LOG
        s += g[n];
#else
        s += g[n] * y[n];
#endif
    }
    TV sv = (TV)(s);
    for (n = 0; n + VW <= N; n += VW) {
        TV gv = LOAD(g + n), yv = LOAD(y + n);
#if LOG
        STORE(gv - exp(yv) * sv, out + n);
#else
        STORE(gv * yv - yv * sv, out + n);
#endif
    }
    for (; n < N; ++n) {
#if LOG
        out[n] = g[n] - exp(y[n]) * s;
#else
        out[n] = g[n] * y[n] - y[n] * s;
#endif
    }
}

/* The general forms work on the middle axis of contiguous (A, N, B) arrays, from per-(a, b)
 * values made by reduce.cl; global (strips, chunks, A): work-item (t, c, a) takes rows
 * c*chunk .. and columns t*span .., 16 at a time along the row when B == 1, else along b. */
#define GENERAL_HEAD                                                \
    long b = get_global_id(0) * span, c = get_global_id(1), a = get_global_id(2); \
    if (b >= B || c >= C || a >= A) {                               \
        return;                                                     \
    }                                                               \
    long w = min(span, B - b), n0 = c * chunk, n1 = min(n0 + chunk, N); \
    long base = a * N * B + b;

/* softmax: exp(x - m) / s; log_softmax: (x - m) - ls, where s (ls) is the sum of exp(x - m)
 * (its log: see log_inplace). */
#if LOG
#define APPLY(xv, mv, sv) (((xv) - (mv)) - (sv))
#else
#define APPLY(xv, mv, sv) (exp((xv) - (mv)) / (sv))
#endif
__kernel void softmax_apply(__global T* out, __global const T* x, long xoff, __global const T* m,
                            __global const T* s, long N, long B, long span, long chunk, long C, long A) {
    GENERAL_HEAD
    x += xoff + base;
    out += base;
    m += a * B + b;
    s += a * B + b;
    if (B == 1) {
        T mm = m[0], ss = s[0];
        TV mv = (TV)(mm), sv = (TV)(ss);
        long n = n0;
        for (; n + VW <= n1; n += VW) {
            STORE(APPLY(LOAD(x + n), mv, sv), out + n);
        }
        for (; n < n1; ++n) {
            out[n] = APPLY(x[n], mm, ss);
        }
        return;
    }
    for (long n = n0; n < n1; ++n) {
        long j = 0, r = n * B;
        for (; j + VW <= w; j += VW) {
            STORE(APPLY(LOAD(x + r + j), LOAD(m + j), LOAD(s + j)), out + r + j);
        }
        for (; j < w; ++j) {
            out[r + j] = APPLY(x[r + j], m[j], s[j]);
        }
    }
}

/* s = log(s) for log_softmax's general form; global (count). */
__kernel void log_inplace(__global T* s, long count) {
    long i = get_global_id(0);
    if (i < count) {
        s[i] = log(s[i]);
    }
}

/* softmax_backward: g*y - y*s with s = sum(g*y); log_softmax_backward: g - exp(y)*s with
 * s = sum(g); over the middle axis of (A, N, B), as softmax_apply. */
#if LOG
#define BACK(gv, yv, sv) ((gv) - exp(yv) * (sv))
#else
#define BACK(gv, yv, sv) ((gv) * (yv) - (yv) * (sv))
#endif
__kernel void softmax_backward_apply(__global T* out, __global const T* g, long goff, __global const T* y, long yoff,
                                     __global const T* s, long N, long B, long span, long chunk, long C, long A) {
    GENERAL_HEAD
    g += goff + base;
    y += yoff + base;
    out += base;
    s += a * B + b;
    if (B == 1) {
        T ss = s[0];
        TV sv = (TV)(ss);
        long n = n0;
        for (; n + VW <= n1; n += VW) {
            STORE(BACK(LOAD(g + n), LOAD(y + n), sv), out + n);
        }
        for (; n < n1; ++n) {
            out[n] = BACK(g[n], y[n], ss);
        }
        return;
    }
    for (long n = n0; n < n1; ++n) {
        long j = 0, r = n * B;
        for (; j + VW <= w; j += VW) {
            STORE(BACK(LOAD(g + r + j), LOAD(y + r + j), LOAD(s + j)), out + r + j);
        }
        for (; j < w; ++j) {
            out[r + j] = BACK(g[r + j], y[r + j], s[j]);
        }
    }
}

/* out = a * b elementwise (the g*y the general softmax_backward sums); global (total). */
__kernel void multiply(__global T* out, __global const T* a, long aoff, __global const T* b, long boff, long total) {
    long i = get_global_id(0);
    if (i < total) {
        out[i] = a[aoff + i] * b[boff + i];
    }
}

#ifdef LT
/* Cross-entropy of each of the R rows of x (R, C): probs = softmax(x), and
 * losses[r] = log(sum exp(x - max)) - (x[label] - max); global (R). A label outside [0, C)
 * is reported with its row and value into the launching thread's error record `err` (the
 * host raises at the thread's next read; report_error, common.h) and gives a NaN loss. */
__kernel void cross_entropy_rows(__global T* probs, __global T* losses, __global const T* x, long xoff,
                                 __global const LT* labels, long loff, long lstride, long C, long R,
                                 __global int* err, int code) {
    long r = get_global_id(0);
    if (r >= R) {
        return;
    }
    __global const T* p = x + xoff + r * C;
    __global T* o = probs + r * C;
    T m = row_max(p, C);
    T s = row_sum_exp(p, o, C, m);
    TV sv = (TV)(s);
    long n = 0;
    for (; n + VW <= C; n += VW) {
        STORE(LOAD(o + n) / sv, o + n);
    }
    for (; n < C; ++n) {
        o[n] = o[n] / s;
    }
    long label = (long)labels[loff + r * lstride];
    if (label < 0 || label >= C) {
        report_error(err, code, r, label);
        losses[r] = (T)NAN;
        return;
    }
    losses[r] = log(s) - (p[label] - m);
}

/* cross_entropy_backward: out[r, c] = (probs[r, c] - (c == label[r])) * g[r] / div, where g is
 * read at goff + r * gstride (gstride 0 for a scalar gradient); one row per work-item; global (R). */
__kernel void cross_entropy_backward(__global T* out, __global const T* probs, long poff, __global const LT* labels,
                                     long loff, long lstride, __global const TG* g, long goff, long gstride,
                                     T div, long C, long R) {
    long r = get_global_id(0);
    if (r >= R) {
        return;
    }
    T scale = (T)g[goff + r * gstride] / div;
    __global const T* p = probs + poff + r * C;
    __global T* o = out + r * C;
    TV sv = (TV)(scale);
    long c = 0;
    for (; c + VW <= C; c += VW) {
        STORE(LOAD(p + c) * sv, o + c);
    }
    for (; c < C; ++c) {
        o[c] = p[c] * scale;
    }
    long label = (long)labels[loff + r * lstride];
    if (label >= 0 && label < C) {
        o[label] = (p[label] - (T)1) * scale;
    }
}
#endif
