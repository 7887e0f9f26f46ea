/* 2-D max and average pooling (NCHW, floor mode) and their gradients.
 *
 * Build with -DT=<element type>; max pooling also with -DFLOAT=<1|0>. Inputs are read through
 * element strides (long4: n, c, h, w); outputs are contiguous. Window (oh, ow) covers input rows
 * oh * sh - ph .. + kh and columns ow * sw - pw .. + kw.
 */
#include "common.h"

/* The maximum of a window and its flat plane index, by the NumPy reference's rule: padding
 * never wins (only the taps inside the image count), the first maximum wins, and so does the
 * first NaN. The loop compares with `>` only and sums the taps: a NaN makes the sum NaN
 * (so can inf + -inf), which sends the window to a scan for its first NaN. (Tests inside the
 * loop, isnan() or bounds, made it up to three times slower.) */
inline T window_max(const __global T* src, long4 xs, int H, int W, int y0, int x0, int kh, int kw, long* at_out) {
    int i0 = max(0, -y0), i1 = min(kh, H - y0), j0 = max(0, -x0), j1 = min(kw, W - x0);
    T best = src[(y0 + i0) * xs.s2 + (x0 + j0) * xs.s3];
    long at = (long)(y0 + i0) * W + x0 + j0;
#if FLOAT
    T check = 0;
#endif
    for (int i = i0; i < i1; ++i) {
        const __global T* row = src + (y0 + i) * xs.s2;
        for (int j = j0; j < j1; ++j) {
            T v = row[(x0 + j) * xs.s3];
            if (v > best) {
                best = v;
                at = (long)(y0 + i) * W + x0 + j;
            }
#if FLOAT
            check += v;
#endif
        }
    }
#if FLOAT
    if (check != check) {
        for (int i = i0; i < i1; ++i) {
            for (int j = j0; j < j1; ++j) {
                T v = src[(y0 + i) * xs.s2 + (x0 + j) * xs.s3];
                if (isnan(v)) {
                    *at_out = (long)(y0 + i) * W + x0 + j;
                    return v;
                }
            }
        }
    }
#endif
    *at_out = at;
    return best;
}

/* Work-item e of a pooling kernel covers rows [*r0, *r1) of plane (n, c) = (*nc / C, *nc % C):
 * planes are split into `blocks` blocks of `per` rows each (whole planes when there are
 * enough of them; integer divisions cost as much as small windows). */
inline int rows_of(int e, int blocks, int per, int rows, int* nc, int* r0, int* r1) {
    *nc = e / blocks;
    *r0 = (e % blocks) * per;
    *r1 = min(*r0 + per, rows);
    return *r0 < *r1;
}

#define V8 CAT(T, 8)
/* Tap t (row-major in the window) replaces the best so far where it is greater. */
#define TAKE_IF_GREATER(t, k)                                                                 \
    {                                                                                         \
        long8 m_ = convert_long8(t > best);                                                   \
        best = select(best, t, t > best);                                                     \
        tap = select(tap, (long8)(k), m_);                                                    \
    }

/* One output row of a 2x2, stride 2, unpadded max pool over contiguous input rows r0 and r1,
 * eight outputs per step from two 16-wide loads: the same maxima and indices as window_max
 * (the first maximum wins, then the first NaN), tap by tap in the window's order. */
inline void max_pool_2x2_row(__global T* out, __global long* index, const __global T* r0, const __global T* r1,
                             const __global T* src, long4 xs, int H, int W, int y0, int Wo) {
    int ow = 0;
    for (; ow + 8 <= Wo; ow += 8) {
        CAT(T, 16) a = vload16(0, r0 + 2 * ow), b = vload16(0, r1 + 2 * ow);
        V8 t0 = a.even, t1 = a.odd, t2 = b.even, t3 = b.odd;
        V8 best = t0;
        long8 tap = (long8)0;
        TAKE_IF_GREATER(t1, 1)
        TAKE_IF_GREATER(t2, 2)
        TAKE_IF_GREATER(t3, 3)
#if FLOAT
        long8 n0 = convert_long8(isnan(t0)), n1 = convert_long8(isnan(t1)), n2 = convert_long8(isnan(t2));
        long8 nan = n0 | n1 | n2 | convert_long8(isnan(t3));
        tap = select(tap, select(select(select((long8)3, (long8)2, n2), (long8)1, n1), (long8)0, n0), nan);
        best = select(best, select(select(select(t3, t2, isnan(t2)), t1, isnan(t1)), t0, isnan(t0)),
                      isnan(t0) | isnan(t1) | isnan(t2) | isnan(t3));
#endif
        long8 at = ((long)y0 + (tap >> 1)) * W + 2 * ow + (long8)(0, 2, 4, 6, 8, 10, 12, 14) + (tap & 1);
        vstore8(best, 0, out + ow);
        vstore8(at, 0, index + ow);
    }
    for (; ow < Wo; ++ow) {
        long at;
        out[ow] = window_max(src, xs, H, W, y0, 2 * ow, 2, 2, &at);
        index[ow] = at;
    }
}

/* Max pooling: the maxima and their flat indices y * W + x in the input plane. */
__kernel void max_pool(__global T* out, __global long* index, __global const T* x, long x_off, long4 xs,
                       int C, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw,
                       int blocks, int per, int items) {
    int e = get_global_id(0), nc, r0, r1;
    if (e >= items || !rows_of(e, blocks, per, Ho, &nc, &r0, &r1)) return;
    const __global T* src = x + x_off + (nc / C) * xs.s0 + (nc % C) * xs.s1;
    int tiles = kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && xs.s3 == 1;
    for (int oh = r0; oh < r1; ++oh) {
        long o = ((long)nc * Ho + oh) * Wo;
        if (tiles) {  /* the usual 2x2 pool: vectors (2.6-2.9x faster, AVX2) */
            const __global T* row = src + 2 * oh * xs.s2;
            max_pool_2x2_row(out + o, index + o, row, row + xs.s2, src, xs, H, W, 2 * oh, Wo);
            continue;
        }
        for (int ow = 0; ow < Wo; ++ow) {
            long at;
            out[o + ow] = window_max(src, xs, H, W, oh * sh - ph, ow * sw - pw, kh, kw, &at);
            index[o + ow] = at;
        }
    }
}

/* max_pool2d_backward: one work-item per (n, c) plane zeroes its plane of gx, then adds
 * each output's gradient at its index, in output order; sequential per plane, so
 * overlapping windows accumulate without atomics. */
__kernel void max_pool_backward(__global T* gx, __global const T* g, long g_off, long4 gs,
                                __global const long* index, long i_off, long4 is,
                                int C, int plane, int Ho, int Wo, long planes) {
    long nc = get_global_id(0);
    if (nc >= planes) return;
    long n = nc / C, c = nc % C;
    __global T* dst = gx + nc * plane;
    for (int e = 0; e < plane; ++e) dst[e] = 0;
    const __global T* gp = g + g_off + n * gs.s0 + c * gs.s1;
    const __global long* ip = index + i_off + n * is.s0 + c * is.s1;
    for (int oh = 0; oh < Ho; ++oh) {
        for (int ow = 0; ow < Wo; ++ow) {
            long at = ip[oh * is.s2 + ow * is.s3];
            if (at >= 0 && at < plane) dst[at] += gp[oh * gs.s2 + ow * gs.s3];
        }
    }
}

/* Average pooling: each window's sum (zero padding included) times 1 / (kh * kw), as the
 * reference computes it. */
__kernel void avg_pool(__global T* out, __global const T* x, long x_off, long4 xs,
                       int C, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw,
                       int blocks, int per, int items) {
    int e = get_global_id(0), nc, r0, r1;
    if (e >= items || !rows_of(e, blocks, per, Ho, &nc, &r0, &r1)) return;
    const __global T* src = x + x_off + (nc / C) * xs.s0 + (nc % C) * xs.s1;
    T scale = (T)1 / (T)(kh * kw);
    for (int oh = r0; oh < r1; ++oh) {
        int y0 = oh * sh - ph;
        int i0 = max(0, -y0), i1 = min(kh, H - y0);
        long o = ((long)nc * Ho + oh) * Wo;
        for (int ow = 0; ow < Wo; ++ow) {
            int x0 = ow * sw - pw;
            int j0 = max(0, -x0), j1 = min(kw, W - x0);
            T acc = 0;
            for (int i = i0; i < i1; ++i) {
                for (int j = j0; j < j1; ++j) {
                    acc += src[(y0 + i) * xs.s2 + (x0 + j) * xs.s3];
                }
            }
            out[o + ow] = acc * scale;
        }
    }
}

/* avg_pool2d_backward as a gather over input rows: each element sums g * 1/(kh*kw) over the
 * windows that cover it (no atomics). */
__kernel void avg_pool_backward(__global T* gx, __global const T* g, long g_off, long4 gs,
                                int C, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw,
                                int ph, int pw, int blocks, int per, int items) {
    int e = get_global_id(0), nc, r0, r1;
    if (e >= items || !rows_of(e, blocks, per, H, &nc, &r0, &r1)) return;
    const __global T* gp = g + g_off + (nc / C) * gs.s0 + (nc % C) * gs.s1;
    T share = (T)1 / (T)(kh * kw);
    for (int y = r0; y < r1; ++y) {
        /* windows oh with oh * sh - ph <= y < oh * sh - ph + kh, in the reference's tap order
         * (tap row i ascending, so oh descending), likewise for ow */
        int oh_hi = min((y + ph) / sh, Ho - 1);
        long o = ((long)nc * H + y) * W;
        for (int xx = 0; xx < W; ++xx) {
            int ow_hi = min((xx + pw) / sw, Wo - 1);
            T acc = 0;
            for (int oh = oh_hi; oh >= 0 && oh * sh - ph + kh > y; --oh) {
                for (int ow = ow_hi; ow >= 0 && ow * sw - pw + kw > xx; --ow) {
                    acc += gp[oh * gs.s2 + ow * gs.s3] * share;
                }
            }
            gx[o + xx] = acc;
        }
    }
}
