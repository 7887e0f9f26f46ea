/* conv2d on OpenCL: im2col packers that write straight into the GEMM's panel layout
 * (kernels/opencl/matmul.cl), and col2im for the input gradient.
 *
 * Build with the defines of matmul.cl (NR = 2 * VW columns per panel).
 * Images are NCHW with arbitrary element strides; a (kernel row i, kernel column j) tap of
 * output pixel (ho, wo) reads input pixel (ho * sh + i * dh - ph, wo * sw + j * dw - pw),
 * zero outside the image. Groups split the channels: group g owns channels g*Cg .. (g+1)*Cg.
 */
#include "gemm.h"

/* The output columns wo whose tap reads input column wo * sw + dx inside 0 .. W - 1:
 * wo in [*lo, *hi), clamped to [0, Wo). */
inline void valid_columns(int dx, int sw, int W, int Wo, int* lo, int* hi) {
    int a = dx >= 0 ? 0 : (-dx + sw - 1) / sw;
    int b = W - 1 - dx >= 0 ? (W - 1 - dx) / sw + 1 : 0;
    *lo = min(a, Wo);
    *hi = max(*lo, min(b, Wo));
}

/* Copy the columns of one (kernel tap, input channel) pair into a packed panel row: output
 * pixel p = (ho, wo) goes to o[at(base + p)], where at(col) = (col / NR) * step + col % NR,
 * or to o[(base + p) * NR] when step == 0 (im2col_panels_t). Reads channel plane src with
 * tap offset (dy, dx); the bounds are worked out per row, so the copy loop has no tests. */
inline void tap_columns(__global T* o, long step, int base, const __global T* src, long4 xs,
                        int H, int W, int Ho, int Wo, int sh, int sw, int dy, int dx) {
    int lo, hi;
    valid_columns(dx, sw, W, Wo, &lo, &hi);
    int p = base;
    for (int ho = 0; ho < Ho; ++ho) {
        int y = ho * sh + dy;
        int a = lo, b = hi;
        if (y < 0 || y >= H) a = b = Wo;
        const __global T* row = src + y * xs.s2 + dx * xs.s3;
        if (step) {
            for (int wo = 0; wo < a; ++wo, ++p) o[(p / NR) * step + p % NR] = 0;
            for (int wo = a; wo < b; ++wo, ++p) o[(p / NR) * step + p % NR] = row[wo * sw * xs.s3];
            for (int wo = b; wo < Wo; ++wo, ++p) o[(p / NR) * step + p % NR] = 0;
        } else {
            for (int wo = 0; wo < a; ++wo, ++p) o[(long)p * NR] = 0;
            for (int wo = a; wo < b; ++wo, ++p) o[(long)p * NR] = row[wo * sw * xs.s3];
            for (int wo = b; wo < Wo; ++wo, ++p) o[(long)p * NR] = 0;
        }
    }
}

/* conv2d forward, the GEMM's B per group: rows k = (c, i, j) of the group's Cg * kH * kW
 * taps, columns (n, ho, wo) over the N images of the launch, so that small images still
 * fill whole panels; zero past N * Ho * Wo. Output: packed[g][col / NR][k][col % NR].
 * One work-item per (g, n, c): all taps of one input channel of one image (few integer
 * divisions per work-item: they cost as much as the copy for small images). */
__kernel void im2col_panels(__global T* out, __global const T* x, long x_off, long4 xs,
                            int N, int G, int Cg, int H, int W, int kh, int kw, int sh, int sw,
                            int ph, int pw, int dh, int dw, int Ho, int Wo, int items) {
    int e = get_global_id(0);
    if (e >= items) return;
    int c = e % Cg, gn = e / Cg;
    int n = gn % N, g = gn / N;
    int K = Cg * kh * kw, P = Ho * Wo, panels = (N * P + NR - 1) / NR;
    long step = (long)K * NR;  /* from one panel to the next */
    const __global T* src = x + x_off + n * xs.s0 + (g * Cg + c) * xs.s1;
    for (int i = 0; i < kh; ++i) {
        for (int j = 0; j < kw; ++j) {
            int k = (c * kh + i) * kw + j;
            __global T* o = out + (long)g * panels * step + (long)k * NR;
            tap_columns(o, step, n * P, src, xs, H, W, Ho, Wo, sh, sw, i * dh - ph, j * dw - pw);
            if (n == N - 1) {
                for (int p = N * P; p < panels * NR; ++p) o[(p / NR) * step + p % NR] = 0;
            }
        }
    }
}

/* im2col_panels where each half panel (VW columns) lies in one output row of one image and
 * the input rows are contiguous (stride 1 along W, unit element stride, Wo a multiple of VW):
 * one work-item per (group, panel) writes the panel's K rows in order, a contiguous block,
 * each half one vector load of an input row (element by element where the taps cross the
 * image's left or right edge), zero past N * Ho * Wo. Same output as im2col_panels. */
__kernel void im2col_panels_rows(__global T* out, __global const T* x, long x_off, long4 xs,
                                 int N, int Cg, int H, int W, int kh, int kw, int sh, int ph, int pw,
                                 int dh, int dw, int Ho, int Wo, int panels, int items) {
    int e = get_global_id(0);
    if (e >= items) return;
    int p = e % panels, g = e / panels;
    int P = Ho * Wo;
    __global T* o = out + (long)e * Cg * kh * kw * NR;
    const __global T* src[2];
    int y0[2], x0[2], live[2];
    for (int t = 0; t < 2; ++t) {  /* each half's image, first output row and column */
        int col = p * NR + t * VW, pix = col % P;
        live[t] = col < N * P;
        src[t] = x + x_off + (long)(col / P) * xs.s0 + (long)g * Cg * xs.s1;
        y0[t] = (pix / Wo) * sh - ph;
        x0[t] = pix % Wo - pw;
    }
    for (int c = 0; c < Cg; ++c) {
        for (int i = 0; i < kh; ++i) {
            for (int j = 0; j < kw; ++j, o += NR) {
                for (int t = 0; t < 2; ++t) {
                    __global T* d = o + t * VW;
                    int y = y0[t] + i * dh, xx = x0[t] + j * dw;
                    if (!live[t] || y < 0 || y >= H) {
                        VSTORE((VT)0, 0, d);
                        continue;
                    }
                    const __global T* row = src[t] + c * xs.s1 + y * xs.s2;
                    if (xx >= 0 && xx + VW <= W) {
                        VSTORE(VLOAD(0, row + xx), 0, d);
                    } else {
                        for (int v = 0; v < VW; ++v) d[v] = xx + v >= 0 && xx + v < W ? row[xx + v] : (T)0;
                    }
                }
            }
        }
    }
}

/* conv2d_backward_weight, the GEMM's B per group: rows k = (n, ho, wo) over all images,
 * columns q = (c, i, j), zero past Cg * kH * kW. Output: packed[g][q / NR][k][q % NR].
 * One work-item per (g, n, c) writes all taps of one channel of one image (the last channel
 * also the zero columns). */
__kernel void im2col_panels_t(__global T* out, __global const T* x, long x_off, long4 xs,
                              int N, int Cg, int H, int W, int kh, int kw, int sh, int sw,
                              int ph, int pw, int dh, int dw, int Ho, int Wo, int items) {
    int e = get_global_id(0);
    if (e >= items) return;
    int c = e % Cg, gn = e / Cg;
    int n = gn % N, g = gn / N;
    int Q = Cg * kh * kw, panels = (Q + NR - 1) / NR;
    int P = Ho * Wo;
    long K = (long)N * P;
    const __global T* src = x + x_off + n * xs.s0 + (g * Cg + c) * xs.s1;
    __global T* base = out + (long)g * panels * K * NR + (long)n * P * NR;
    for (int i = 0; i < kh; ++i) {
        for (int j = 0; j < kw; ++j) {
            int q = (c * kh + i) * kw + j;
            __global T* o = base + (q / NR) * K * NR + q % NR;
            tap_columns(o, 0, 0, src, xs, H, W, Ho, Wo, sh, sw, i * dh - ph, j * dw - pw);
        }
    }
    if (c == Cg - 1) {
        for (int q = Q; q < panels * NR; ++q) {
            __global T* o = base + (q / NR) * K * NR + q % NR;
            for (int p = 0; p < P; ++p) o[(long)p * NR] = 0;
        }
    }
}

/* im2col_panels_t by rows of the panel: one work-item per (group, panel, image, output row)
 * writes that row's Wo panel rows, NR taps each, a contiguous block no other work-item touches
 * (im2col_panels_t writes each channel's taps down the panels, so up to NR / (kH * kW)
 * work-items share every cache line it writes). Same output. */
__kernel void im2col_panels_t_rows(__global T* out, __global const T* x, long x_off, long4 xs,
                                   int N, int Cg, int H, int W, int kh, int kw, int sh, int sw,
                                   int ph, int pw, int dh, int dw, int Ho, int Wo, int panels, int items) {
    int e = get_global_id(0);
    if (e >= items) return;
    int ho = e % Ho, t = e / Ho;
    int n = t % N;
    t /= N;
    int panel = t % panels, g = t / panels;
    int taps = kh * kw, Q = Cg * taps;
    long K = (long)N * Ho * Wo;
    __global T* o = out + ((long)(g * panels + panel) * K + ((long)n * Ho + ho) * Wo) * NR;
    const __global T* src = x + x_off + n * xs.s0 + (long)g * Cg * xs.s1;
    for (int j = 0; j < NR; ++j) {
        int q = panel * NR + j;
        int c = q / taps, r = q % taps;
        int y = ho * sh + (r / kw) * dh - ph, dx = (r % kw) * dw - pw;
        int lo, hi;
        valid_columns(dx, sw, W, Wo, &lo, &hi);
        if (q >= Q || y < 0 || y >= H) lo = hi = Wo;
        const __global T* row = src + c * xs.s1 + y * xs.s2 + dx * xs.s3;
        __global T* d = o + j;
        for (int wo = 0; wo < lo; ++wo) d[wo * NR] = 0;
        for (int wo = lo; wo < hi; ++wo) d[wo * NR] = row[wo * sw * xs.s3];
        for (int wo = hi; wo < Wo; ++wo) d[wo * NR] = 0;
    }
}

/* col2im for conv2d_backward_input: gx[n0 + n, c, y, x] = sum over the taps (i, j) that read
 * (y, x) of cols[n][g][(c % Cg, i, j)][(ho, wo)], cols contiguous (images, G, Cg*kH*kW, Ho*Wo).
 * One work-item per plane (n, c) of gx: it zeroes each row, then adds each tap's columns in
 * (i, j) order, as the reference does. */
__kernel void col2im(__global T* gx, __global const T* cols, int n0, int planes,
                     int C, int Cg, int H, int W, int kh, int kw, int sh, int sw,
                     int ph, int pw, int dh, int dw, int Ho, int Wo) {
    int e = get_global_id(0);
    if (e >= planes) return;
    int ch = e % C, n = e / C;
    int g = ch / Cg, c = ch % Cg, G = C / Cg;
    int K = Cg * kh * kw, P = Ho * Wo;
    const __global T* src = cols + (((long)n * G + g) * K + (long)c * kh * kw) * P;
    __global T* plane = gx + ((long)(n0 + n) * C + ch) * H * W;
    for (int y = 0; y < H; ++y) {
        __global T* row = plane + (long)y * W;
        for (int xx = 0; xx < W; ++xx) row[xx] = 0;
        for (int i = 0; i < kh; ++i) {
            int yy = y + ph - i * dh;
            if (yy < 0 || yy % sh) continue;
            int ho = yy / sh;
            if (ho >= Ho) continue;
            for (int j = 0; j < kw; ++j) {
                int dx = j * dw - pw, lo, hi;
                valid_columns(dx, sw, W, Wo, &lo, &hi);
                const __global T* s = src + (i * kw + j) * P + ho * Wo;
                int wo = lo;
                if (sw == 1) {  /* contiguous runs: whole vectors, the same sums in the same order */
                    for (; wo + VW <= hi; wo += VW) VSTORE(VLOAD(0, row + wo + dx) + VLOAD(0, s + wo), 0, row + wo + dx);
                }
                for (; wo < hi; ++wo) row[wo * sw + dx] += s[wo];
            }
        }
    }
}
