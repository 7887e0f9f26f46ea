/* Reductions over the middle axis of a strided (A, N, B) view: out[a, b] = COMB over n of
 * MAP(x[off + a*sA + n*sN + b*sB]); and cumulative sums (SCAN) along the middle axis.
 *
 * The launcher (backends/opencl_ops/reduce_core.py) reads any view with any set of reduced
 * axes as such a view (coalescing dimensions in memory order, or copying when they
 * interleave). Each work-item reduces one chunk of n into one partial; further launches of the
 * same kernels combine the partials until one per output is left. No barriers and no local
 * memory: PoCL splits a kernel at every barrier into loops, which is slow on a CPU.
 *
 * Accuracy: along a row, sums run in 16 vector lanes, and each lane adds a block of at most
 * BLOCK terms before adding the block's sum to its running total; column chunks are a few
 * thousand elements at most. So no float adds more than a few hundred terms serially, close
 * to NumPy's pairwise sum (and far better than NumPy's own serial sums down columns).
 *
 * Build defines:
 *   T      element type read          ACC   accumulator type         OUTT  type written
 *   COMB   0 sum, 1 prod, 2 max, 3 min, 4 and, 5 or       IDENT  identity of COMB (literal)
 *   MAP    0 x, 1 x != 0, 2 (x - c)^2, 3 exp(x - c)  (c: center[a, b], an ACC array)
 *   FIN    0 write the accumulator, 1 write it divided by `div`
 *   IS_FLOAT  1 when ACC is floating point (max/min propagate NaN as NumPy does)
 * Arg kernels (argmax/argmin) use T, IS_FLOAT, ARG (1 argmax, 2 argmin), PASS2, FINAL and IT
 * (int, or long for 8-byte T: the lane index type).
 */
#include "common.h"

#define VW 16
#define BLOCK 64

#ifdef COMB

#define TV CAT(T, 16)
#define ACCV CAT(ACC, 16)
#define ACC8 CAT(ACC, 8)
#define ACC4 CAT(ACC, 4)
#define ACC2 CAT(ACC, 2)
#define OUTV CAT(OUTT, 16)
#define TO_ACCV CAT(convert_, ACCV)
#define TO_OUTV CAT(convert_, OUTV)

/* Unaligned vector access through a type aligned like its elements: LLVM then emits plain
 * vector loads and stores, where PoCL's vload16/vstore16 assemble 8-byte pieces (measured
 * 1.6x slower on a streaming loop). */
typedef TV __attribute__((aligned(sizeof(T)))) TVU;
typedef ACCV __attribute__((aligned(sizeof(ACC)))) ACCVU;
#define LOADT(k, p) (*((__global const TVU*)(p) + (k)))
#define LOADA(k, p) (*((__global const ACCVU*)(p) + (k)))
#define STOREA(v, k, p) (*((__global ACCVU*)(p) + (k)) = (v))

/* COMBV works on vectors of any width, COMBS on scalars (select needs a vector mask). */
#if COMB == 0
#define COMBV(a, b) ((a) + (b))
#define COMBS(a, b) ((a) + (b))
#elif COMB == 1
#define COMBV(a, b) ((a) * (b))
#define COMBS(a, b) ((a) * (b))
#elif COMB == 2 && IS_FLOAT
#define COMBV(a, b) select((b), (a), ((a) > (b)) | isnan(a))
#define COMBS(a, b) (((a) > (b) || isnan(a)) ? (a) : (b))
#elif COMB == 3 && IS_FLOAT
#define COMBV(a, b) select((b), (a), ((a) < (b)) | isnan(a))
#define COMBS(a, b) (((a) < (b) || isnan(a)) ? (a) : (b))
#elif COMB == 2
#define COMBV(a, b) max((a), (b))
#define COMBS(a, b) max((a), (b))
#elif COMB == 3
#define COMBV(a, b) min((a), (b))
#define COMBS(a, b) min((a), (b))
#elif COMB == 4
#define COMBV(a, b) ((a) & (b))
#define COMBS(a, b) ((a) & (b))
#elif COMB == 5
#define COMBV(a, b) ((a) | (b))
#define COMBS(a, b) ((a) | (b))
#endif

inline ACCV sq_v(ACCV d) { return d * d; }
inline ACC sq_s(ACC d) { return d * d; }

#if MAP == 0
#define MAPV(v, c) TO_ACCV(v)
#define MAPS(v, c) ((ACC)(v))
#elif MAP == 1
/* A vector comparison gives -1 for true, a scalar one gives 1. */
#define MAPV(v, c) TO_ACCV(-((v) != (TV)0))
#define MAPS(v, c) ((ACC)((v) != (T)0))
#elif MAP == 2
#define MAPV(v, c) sq_v(TO_ACCV(v) - (c))
#define MAPS(v, c) sq_s((ACC)(v) - (c))
#elif MAP == 3
#define MAPV(v, c) exp(TO_ACCV(v) - (c))
#define MAPS(v, c) exp((ACC)(v) - (c))
#endif

#if FIN == 0
#define FINV(v) TO_OUTV(v)
#define FINS(v) ((OUTT)(v))
#else
#define FINV(v) TO_OUTV((v) / (ACCV)(div))
#define FINS(v) ((OUTT)((v) / (div)))
#endif

/* Combine the 16 lanes of a vector accumulator as a tree. */
inline ACC lanes(ACCV v) {
    ACC8 lo8 = v.lo, hi8 = v.hi;
    ACC8 v8 = COMBV(lo8, hi8);
    ACC4 lo4 = v8.lo, hi4 = v8.hi;
    ACC4 v4 = COMBV(lo4, hi4);
    ACC2 lo2 = v4.lo, hi2 = v4.hi;
    ACC2 v2 = COMBV(lo2, hi2);
    ACC a = v2.s0, b = v2.s1;
    return COMBS(a, b);
}

/* B == 1: global (S, A) (or more: whole work-groups); work-item (s, a) reduces n in
 * [s*chunk, (s+1)*chunk) of row a into out[a*S + s]. Contiguous rows (sN == 1) are read 16
 * elements at a time. */
__kernel void reduce_rows(__global OUTT* out, __global const T* x, long off, long N, long sA, long sN,
                          long chunk, long S, long A, __global const ACC* center, ACC div) {
    long s = get_global_id(0), a = get_global_id(1);
    if (s >= S || a >= A) {
        return;
    }
    long n = s * chunk, end = min(n + chunk, N);
    __global const T* p = x + off + a * sA;
#if MAP >= 2
    ACC c = center[a];
#else
    ACC c = 0;
#endif
    ACC total = IDENT;
    if (sN == 1) {
        ACCV acc = (ACCV)(IDENT), cv = (ACCV)(c);
        while (n + VW <= end) {
            long stop = min(end - VW, n + (BLOCK - 1) * VW);
            ACCV blk = (ACCV)(IDENT);
            for (; n <= stop; n += VW) {
                TV v = LOADT(0, p + n);
                ACCV m = MAPV(v, cv);
                blk = COMBV(blk, m);
            }
            acc = COMBV(acc, blk);
        }
        total = lanes(acc);
        for (; n < end; ++n) {
            ACC m = MAPS(p[n], c);
            total = COMBS(total, m);
        }
    } else {
        while (n < end) {
            long stop = min(end, n + BLOCK);
            ACC blk = IDENT;
            for (; n < stop; ++n) {
                ACC m = MAPS(p[n * sN], c);
                blk = COMBS(blk, m);
            }
            total = COMBS(total, blk);
        }
    }
    out[a * S + s] = FINS(total);
}

/* B > 1: global (ceil(B/span), S, A) (or more); work-item (t, s, a) reduces the strip of columns
 * b = span*t .. span*t + span-1 over the rows n of chunk s into out[(a*S + s)*B + b]. It walks
 * the chunk row by row, so each row's strip is one contiguous read and the reads stream
 * through memory (as NumPy's out += x[n]); the strip's accumulators are the output row itself,
 * which stays in cache (OUTT is ACC for every reduction). Chunks are short (the launcher keeps
 * them to a few thousand elements), so no column adds many terms serially; more passes
 * combine the partial rows. Contiguous columns (sB == 1) are read 16 at a time. */
__kernel void reduce_cols(__global OUTT* out, __global const T* x, long off, long N, long B, long sA, long sN,
                          long sB, long chunk, long S, long span, long A, __global const ACC* center, ACC div) {
    long b = get_global_id(0) * span, s = get_global_id(1), a = get_global_id(2);
    if (b >= B || s >= S || a >= A) {
        return;
    }
    long n = s * chunk, end = min(n + chunk, N);
    long w = min(span, B - b);
    long nv = sB == 1 ? w / VW : 0; /* whole vectors; columns nv*16 .. w-1 one at a time */
    __global const T* p = x + off + a * sA + b * sB;
    __global OUTT* o = out + (a * S + s) * B + b;
#if MAP >= 2
    __global const ACC* c = center + a * B + b;
#define CV(k) LOADA((k), c)
#define CS(j) c[j]
#else
#define CV(k) ((ACCV)(0))
#define CS(j) ((ACC)(0))
#endif
    if (n < end) {  /* the first row starts the accumulators */
        __global const T* row = p + n * sN;
        for (long k = 0; k < nv; ++k) {
            TV v = LOADT(k, row);
            STOREA(MAPV(v, CV(k)), k, o);
        }
        for (long j = nv * VW; j < w; ++j) {
            o[j] = MAPS(row[j * sB], CS(j));
        }
        ++n;
    } else {
        for (long j = 0; j < w; ++j) {
            o[j] = IDENT;
        }
    }
    /* Four rows at a time: a quarter of the accumulator traffic, and a pairwise sum of the four. */
    for (; n + 4 <= end; n += 4) {
        __global const T* r0 = p + n * sN;
        __global const T* r1 = r0 + sN;
        __global const T* r2 = r1 + sN;
        __global const T* r3 = r2 + sN;
        for (long k = 0; k < nv; ++k) {
            TV v0 = LOADT(k, r0), v1 = LOADT(k, r1), v2 = LOADT(k, r2), v3 = LOADT(k, r3);
            ACCV m0 = MAPV(v0, CV(k)), m1 = MAPV(v1, CV(k)), m2 = MAPV(v2, CV(k)), m3 = MAPV(v3, CV(k));
            ACCV m01 = COMBV(m0, m1), m23 = COMBV(m2, m3);
            ACCV m = COMBV(m01, m23), acc = LOADA(k, o);
            STOREA(COMBV(acc, m), k, o);
        }
        for (long j = nv * VW; j < w; ++j) {
            ACC m0 = MAPS(r0[j * sB], CS(j)), m1 = MAPS(r1[j * sB], CS(j));
            ACC m2 = MAPS(r2[j * sB], CS(j)), m3 = MAPS(r3[j * sB], CS(j));
            ACC m01 = COMBS(m0, m1), m23 = COMBS(m2, m3);
            ACC m = COMBS(m01, m23), acc = o[j];
            o[j] = COMBS(acc, m);
        }
    }
    for (; n < end; ++n) {
        __global const T* row = p + n * sN;
        for (long k = 0; k < nv; ++k) {
            TV v = LOADT(k, row);
            ACCV m = MAPV(v, CV(k)), acc = LOADA(k, o);
            STOREA(COMBV(acc, m), k, o);
        }
        for (long j = nv * VW; j < w; ++j) {
            ACC m = MAPS(row[j * sB], CS(j)), acc = o[j];
            o[j] = COMBS(acc, m);
        }
    }
#if FIN
    for (long k = 0; k < nv; ++k) {
        ACCV acc = LOADA(k, o);
        STOREA(FINV(acc), k, o);
    }
    for (long j = nv * VW; j < w; ++j) {
        ACC acc = o[j];
        o[j] = FINS(acc);
    }
#endif
}

#endif /* COMB */

#ifdef ARG

/* argmax / argmin: the first best element; NaN counts as the best (as in NumPy). */
#if IS_FLOAT
#define ISNAN(v) isnan(v)
#else
#define ISNAN(v) 0
#endif
#if ARG == 1
#define BETTER(v, b) ((v) > (b) || (ISNAN(v) && !ISNAN(b)))
#else
#define BETTER(v, b) ((v) < (b) || (ISNAN(v) && !ISNAN(b)))
#endif
#define SAME(v, b) ((v) == (b) || (ISNAN(v) && ISNAN(b)))

#if IS_FLOAT && ARG == 1
#define HITV(v, b) (((v) > (b)) | (isnan(v) & ~isnan(b)))
#elif IS_FLOAT
#define HITV(v, b) (((v) < (b)) | (isnan(v) & ~isnan(b)))
#elif ARG == 1
#define HITV(v, b) ((v) > (b))
#else
#define HITV(v, b) ((v) < (b))
#endif

#define TV CAT(T, 16)
#define IV CAT(IT, 16)
typedef TV __attribute__((aligned(sizeof(T)))) TVU;
#define LOADT(k, p) (*((__global const TVU*)(p) + (k)))
#define IDX(n) (PASS2 ? xidx[off + a * sA + (n) * sN + b * sB] : (n))

/* out[(a*S + s)*B + b] = (value, index) of the best x[a, n, b] over n in chunk s; in pass 2
 * x holds pass 1's values and xidx their indices. FINAL writes the index only. */
__kernel void arg_reduce(__global T* pval, __global long* pidx, __global const T* x, __global const long* xidx,
                         long off, long N, long B, long sA, long sN, long sB, long chunk, long S, long A) {
    long b = get_global_id(0), s = get_global_id(1), a = get_global_id(2);
    if (b >= B || s >= S || a >= A) {
        return;
    }
    long n = s * chunk, end = min(n + chunk, N);
    __global const T* p = x + off + a * sA + b * sB;
    T best = p[n * sN];
    long at = IDX(n);
    ++n;
#if !PASS2
    if (sN == 1 && n + VW <= end) {
        /* 16 lanes, each keeping its first best; then the best lane, ties to the lowest index.
         * Lane indices count from n0 in IT (int for 4-byte T: the compare mask's width, so no
         * conversion; chunks stay below 2^31). */
        long n0 = n;
        TV bv = LOADT(0, p + n);
        IV bi = (IV)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        IV iv = bi;
        for (n += VW; n + VW <= end; n += VW) {
            TV v = LOADT(0, p + n);
            iv += (IT)VW;
            IV hit = CAT(convert_, IV)(HITV(v, bv));
            bv = select(bv, v, HITV(v, bv));
            bi = select(bi, iv, hit);
        }
        T vals[VW];
        IT idxs[VW];
        vstore16(bv, 0, vals);
        vstore16(bi, 0, idxs);
        for (int l = 0; l < VW; ++l) {
            if (BETTER(vals[l], best) || (SAME(vals[l], best) && n0 + idxs[l] < at)) {
                best = vals[l];
                at = n0 + idxs[l];
            }
        }
    }
#endif
    for (; n < end; ++n) {
        T v = p[n * sN];
        if (BETTER(v, best)) {
            best = v;
            at = IDX(n);
        }
    }
    long o = (a * S + s) * B + b;
#if !FINAL
    pval[o] = best;
#endif
    pidx[o] = at;
}

#endif /* ARG */

#ifdef SCAN

/* cumulative_sum of a contiguous (A, N, B) x along N into out (A, INIT + N, B), whose first row
 * is 0 when INIT is 1. Build defines: T (read), ACC (accumulated and written).
 *
 * scan_chunks: global (strips, C, A); work-item (t, c, a) scans rows c*chunk .. of columns
 * t*span .. row by row, each row from the previous output row (contiguous reads and writes).
 * With C > 1 chunks, scan_offsets then sums the chunks' totals and scan_add adds them. */
__kernel void scan_chunks(__global ACC* out, __global const T* x, long xoff, long N, long B, long span,
                          long chunk, long C, long A) {
    long b = get_global_id(0) * span, c = get_global_id(1), a = get_global_id(2);
    if (b >= B || c >= C || a >= A) {
        return;
    }
    long w = min(span, B - b);
    long n = c * chunk, end = min(n + chunk, N);
    __global const T* p = x + xoff + a * N * B + b;
    __global ACC* o = out + a * (N + INIT) * B + INIT * B + b; /* o[n*B + j]: sum up to x[n, j] */
    if (INIT && c == 0) {
        for (long j = 0; j < w; ++j) {
            o[j - B] = 0;
        }
    }
    if (n < end) {
        for (long j = 0; j < w; ++j) {
            o[n * B + j] = (ACC)p[n * B + j];
        }
    }
    for (++n; n < end; ++n) {
        __global ACC* row = o + n * B;
        __global const ACC* prev = row - B;
        __global const T* in = p + n * B;
        for (long j = 0; j < w; ++j) {
            row[j] = prev[j] + (ACC)in[j];
        }
    }
}

/* offs[a, c, j] = the sum of the totals of chunks 0 .. c-1; global (B, A). */
__kernel void scan_offsets(__global ACC* offs, __global const ACC* out, long N, long B, long chunk, long C, long A) {
    long j = get_global_id(0), a = get_global_id(1);
    if (j >= B || a >= A) {
        return;
    }
    __global const ACC* o = out + a * (N + INIT) * B + INIT * B + j;
    ACC run = 0;
    for (long c = 0; c < C; ++c) {
        offs[(a * C + c) * B + j] = run;
        run += o[(min((c + 1) * chunk, N) - 1) * B];
    }
}

/* Adds offs[a, c] to the rows of chunk c >= 1; global (strips, C - 1, A). */
__kernel void scan_add(__global ACC* out, __global const ACC* offs, long N, long B, long span, long chunk, long C,
                       long A) {
    long b = get_global_id(0) * span, c = get_global_id(1) + 1, a = get_global_id(2);
    if (b >= B || c >= C || a >= A) {
        return;
    }
    long w = min(span, B - b);
    __global ACC* o = out + a * (N + INIT) * B + INIT * B + b;
    __global const ACC* add = offs + (a * C + c) * B + b;
    for (long n = c * chunk, end = min(n + chunk, N); n < end; ++n) {
        __global ACC* row = o + n * B;
        for (long j = 0; j < w; ++j) {
            row[j] += add[j];
        }
    }
}

#endif /* SCAN */
