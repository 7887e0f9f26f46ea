/* 2-D max and average pooling (NCHW, floor mode) and their gradients; the CUDA counterpart of
 * kernels/opencl/pool.cl, computing what tensorcore/ops/pooling.py's references compute.
 *
 * Build define: DTYPE (float, double, int or i64; the launchers use the integer builds for
 * max pooling only). Inputs are read through four element strides (n, c, h, w); outputs are
 * contiguous. Window (oh, ow) covers input rows oh * sh - ph .. + kh and columns
 * ow * sw - pw .. + kw. Every kernel runs one thread per output element, grid-stride: a GPU
 * has threads enough for that, where the OpenCL kernels give a CPU core a whole plane.
 * avg_pool_backward gathers (one thread per input element sums the windows covering it), so
 * it needs no atomics and sums in the reference's order; max_pool_backward scatters (its op
 * carries no window geometry to gather with).
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float, double, int or i64"
#endif
typedef DTYPE T;

/* NaN test per type: integers have none (an `x != x` on them would draw a warning). */
__device__ __forceinline__ bool tc_isnan(float v) { return v != v; }
__device__ __forceinline__ bool tc_isnan(double v) { return v != v; }
__device__ __forceinline__ bool tc_isnan(int) { return false; }
__device__ __forceinline__ bool tc_isnan(i64) { return false; }

/* Max pooling: out[n, c, oh, ow] and index = y * W + x of the chosen tap. The reference's
 * rule: padding never wins (only the taps inside the image count; every window has one), the
 * first tap holding the maximum wins, and the first NaN wins over everything (np.maximum
 * propagates it). So: the first real tap starts, a later one replaces it only if it is
 * strictly greater or a NaN, and nothing replaces a NaN. */
extern "C" __global__ void max_pool(T* __restrict__ out, i64* __restrict__ index, const T* __restrict__ x,
                                    i64 xs0, i64 xs1, i64 xs2, i64 xs3, int C, int H, int W, int Ho, int Wo,
                                    int kh, int kw, int sh, int sw, int ph, int pw, i64 total) {
    TC_GRID_LOOP(e, total) {
        const int ow = (int)(e % Wo), oh = (int)((e / Wo) % Ho);
        const i64 nc = e / ((i64)Wo * Ho);
        const T* src = x + (nc / C) * xs0 + (nc % C) * xs1;
        const int y0 = oh * sh - ph, x0 = ow * sw - pw;
        const int i0 = max(0, -y0), i1 = min(kh, H - y0), j0 = max(0, -x0), j1 = min(kw, W - x0);
        T best = src[(y0 + i0) * xs2 + (x0 + j0) * xs3];
        i64 at = (i64)(y0 + i0) * W + x0 + j0;
        for (int i = i0; i < i1; ++i) {
            for (int j = j0; j < j1; ++j) {
                const T v = src[(y0 + i) * xs2 + (x0 + j) * xs3];
                if (!tc_isnan(best) && (v > best || tc_isnan(v))) {
                    best = v;
                    at = (i64)(y0 + i) * W + x0 + j;
                }
            }
        }
        out[e] = best;
        index[e] = at;
    }
}

/* Atomic adds for the overlapping case of max_pool_backward (float from sm_20, double from
 * sm_60; the integer builds only need these to compile: the launcher takes float gradients). */
__device__ __forceinline__ void tc_atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void tc_atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void tc_atomic_add(int* p, int v) { atomicAdd(p, v); }
__device__ __forceinline__ void tc_atomic_add(i64* p, i64 v) { atomicAdd((u64*)p, (u64)v); }

/* max_pool2d_backward as a scatter: gx (contiguous, zeroed by the launcher) gets g[n, c, oh, ow]
 * at its recorded index in plane (n, c). The op does not carry the window geometry, so the
 * kernel cannot gather per input element; it runs one thread per element of g instead. When
 * the windows do not overlap (stride >= kernel), no two of them choose the same element and a
 * plain store is exact; when they overlap, the adds are atomic, so their order (and the last
 * bits of a float sum; the reference sums in float64 with np.bincount) is not fixed. An index
 * outside the plane (max_pool2d never records one) is skipped rather than written. */
extern "C" __global__ void max_pool_backward(T* __restrict__ gx, const T* __restrict__ g, i64 gs0, i64 gs1,
                                             i64 gs2, i64 gs3, const i64* __restrict__ index, i64 is0, i64 is1,
                                             i64 is2, i64 is3, int C, int Ho, int Wo, i64 plane, int overlapping,
                                             i64 total) {
    TC_GRID_LOOP(e, total) {
        const int ow = (int)(e % Wo), oh = (int)((e / Wo) % Ho);
        const i64 nc = e / ((i64)Wo * Ho), n = nc / C, c = nc % C;
        const i64 at = index[n * is0 + c * is1 + oh * is2 + ow * is3];
        if (at < 0 || at >= plane) continue;
        const T v = g[n * gs0 + c * gs1 + oh * gs2 + ow * gs3];
        if (overlapping) tc_atomic_add(gx + nc * plane + at, v);
        else gx[nc * plane + at] = v;
    }
}

/* Average pooling: the sum of each window's taps inside the image, in tap order (the
 * padding's zeros change no sum), times `scale` = 1 / (kh * kw) rounded to T on the host, as
 * the reference multiplies by a Python float. */
extern "C" __global__ void avg_pool(T* __restrict__ out, const T* __restrict__ x, i64 xs0, i64 xs1, i64 xs2,
                                    i64 xs3, int C, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw,
                                    int ph, int pw, T scale, i64 total) {
    TC_GRID_LOOP(e, total) {
        const int ow = (int)(e % Wo), oh = (int)((e / Wo) % Ho);
        const i64 nc = e / ((i64)Wo * Ho);
        const T* src = x + (nc / C) * xs0 + (nc % C) * xs1;
        const int y0 = oh * sh - ph, x0 = ow * sw - pw;
        const int i0 = max(0, -y0), i1 = min(kh, H - y0), j0 = max(0, -x0), j1 = min(kw, W - x0);
        T acc = (T)0;
        for (int i = i0; i < i1; ++i) {
            for (int j = j0; j < j1; ++j) acc += src[(y0 + i) * xs2 + (x0 + j) * xs3];
        }
        out[e] = acc * scale;
    }
}

/* avg_pool2d_backward as a gather: gx[n, c, y, x] = sum of g * scale over the windows that
 * cover (y, x). The reference adds the shares tap by tap (tap row i ascending, then tap
 * column j), which visits the windows of one element with oh descending, then ow
 * descending; the loops below keep that order, so the float sums agree to the last bit. */
extern "C" __global__ void avg_pool_backward(T* __restrict__ gx, const T* __restrict__ g, i64 gs0, i64 gs1,
                                             i64 gs2, i64 gs3, int C, int H, int W, int Ho, int Wo, int kh,
                                             int kw, int sh, int sw, int ph, int pw, T scale, i64 total) {
    TC_GRID_LOOP(e, total) {
        const int xx = (int)(e % W), y = (int)((e / W) % H);
        const i64 nc = e / ((i64)W * H);
        const T* gp = g + (nc / C) * gs0 + (nc % C) * gs1;
        const int oh_lo = max(0, (y + ph - kh + sh) / sh), oh_hi = min(Ho - 1, (y + ph) / sh);
        const int ow_lo = max(0, (xx + pw - kw + sw) / sw), ow_hi = min(Wo - 1, (xx + pw) / sw);
        T acc = (T)0;
        for (int oh = oh_hi; oh >= oh_lo; --oh) {
            for (int ow = ow_hi; ow >= ow_lo; --ow) acc += gp[oh * gs2 + ow * gs3] * scale;
        }
        gx[e] = acc;
    }
}
