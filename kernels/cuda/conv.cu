/* conv2d on CUDA as im2col + the tiled GEMM of matmul.cu: im2col lays out the input's taps as
 * columns, the GEMM multiplies them by the weight (or the gradient), and col2im sums the
 * columns of the input gradient back into images. The CUDA counterpart of
 * kernels/opencl/conv.cl, with a plain column layout instead of the OpenCL GEMM's packed
 * panels (the CUDA GEMM stages its tiles in shared memory itself).
 *
 * Build define: DTYPE (float or double). Images are NCHW, read through four element strides;
 * a tap (i, j) of output pixel (ho, wo) reads input pixel (ho * sh + i * dh - ph,
 * wo * sw + j * dw - pw), zero outside the image. Groups split the channels: group g owns
 * input channels g * Cg .. (g + 1) * Cg. The launchers process images in chunks of N.
 *
 * Column layout `cols` (G, K, N * P), contiguous: row k = (c, i, j) of the group's
 * K = Cg * kH * kW taps, column n * P + p for image n of the chunk and output pixel p of
 * P = Ho * Wo. The images of a chunk sit side by side, so one GEMM per group covers them all
 * (small images still fill whole 128-wide tiles).
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float or -DDTYPE=double"
#endif
typedef DTYPE T;

/* im2col: cols[g][k][n * P + p] for the N images at x (x already points at the chunk's
 * first image). One thread per element of cols, grid-stride over G * K * N * P: consecutive
 * threads write consecutive columns (coalesced) and read along an input row with stride
 * sw * xs3. The integer divisions that split the index cost about what the copy does; the
 * GEMM that follows does K times more work per element. */
extern "C" __global__ void im2col(T* __restrict__ cols, const T* __restrict__ x, i64 xs0, i64 xs1, i64 xs2, i64 xs3,
                                  int N, int Cg, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                                  int dh, int dw, int Ho, int Wo, i64 total) {
    const int K = Cg * kh * kw;
    const i64 NP = (i64)N * Ho * Wo;
    TC_GRID_LOOP(e, total) {
        const i64 col = e % NP, row = e / NP;
        const int k = (int)(row % K), g = (int)(row / K);
        const int p = (int)(col % (Ho * Wo)), n = (int)(col / (Ho * Wo));
        const int c = g * Cg + k / (kh * kw), tap = k % (kh * kw);
        const int y = (p / Wo) * sh + (tap / kw) * dh - ph;
        const int xx = (p % Wo) * sw + (tap % kw) * dw - pw;
        cols[e] = (y >= 0 && y < H && xx >= 0 && xx < W) ? x[n * xs0 + c * xs1 + y * xs2 + xx * xs3] : (T)0;
    }
}

/* col2im for conv2d_backward_input: gx[n, ch, y, x] = the sum over the taps (i, j) that read
 * (y, x) of cols[g][(c, i, j)][n * P + (ho, wo)], gx contiguous (x's chunk: N images of C
 * channels). One thread per element of gx, so the sum needs no atomics; the taps are added
 * in (i, j) order, starting from zero, as the reference's col2im loop adds them. */
extern "C" __global__ void col2im(T* __restrict__ gx, const T* __restrict__ cols, int N, int C, int Cg, int H,
                                  int W, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int Ho,
                                  int Wo, i64 total) {
    const int K = Cg * kh * kw;
    const i64 NP = (i64)N * Ho * Wo;
    TC_GRID_LOOP(e, total) {
        const int xx = (int)(e % W), y = (int)((e / W) % H);
        const i64 nch = e / ((i64)W * H);
        const int ch = (int)(nch % C), n = (int)(nch / C);
        const int g = ch / Cg, c = ch % Cg;
        const T* src = cols + ((i64)g * K + (i64)c * kh * kw) * NP + (i64)n * Ho * Wo;
        T acc = (T)0;
        for (int i = 0; i < kh; ++i) {
            const int yy = y + ph - i * dh; /* = ho * sh for the window that reads (y, x) */
            if (yy < 0 || yy % sh) continue;
            const int ho = yy / sh;
            if (ho >= Ho) continue;
            for (int j = 0; j < kw; ++j) {
                const int xw = xx + pw - j * dw;
                if (xw < 0 || xw % sw) continue;
                const int wo = xw / sw;
                if (wo >= Wo) continue;
                acc += src[(i64)(i * kw + j) * NP + ho * Wo + wo];
            }
        }
        gx[e] = acc;
    }
}
