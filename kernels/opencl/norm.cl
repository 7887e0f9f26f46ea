/* batch_norm's normalisation (training mode), after the batch statistics are reduced:
 *   y = (x - mean[c]) * scale[c] + bias[c],   scale[c] = 1 / sqrt(var[c] + eps) * weight[c]
 * for a contiguous x read as (N, C, S) (S: the product of the spatial sizes, 1 for (N, C)).
 * The operations and their order are those of tensorcore.ops.normalization._bn_ref.
 *
 * Build with -DT=<float|double>, -DHAS_WEIGHT=<0|1>, -DHAS_BIAS=<0|1>.
 * Launch: dimension 0 over chunks of `chunk` elements of a plane, dimension 1 over the N*C
 * planes; padding work-items return at once.
 */
#include "common.h"

/* NumPy rounds each step; keep the compiler from fusing a multiply and an add into one fma. */
#pragma OPENCL FP_CONTRACT OFF

/* This work-item's share of a launch over (N*C planes, S): elements [*begin, *end) of plane
 * *plane (channel *c); false for a padding work-item. */
inline bool plane_chunk(long C, long S, long chunk, long planes, long* plane, long* c, long* begin, long* end) {
    *plane = get_global_id(1);
    *begin = get_global_id(0) * chunk;
    if (*plane >= planes || *begin >= S) {
        return false;
    }
    *c = *plane % C;
    *end = min(*begin + chunk, S);
    return true;
}

__kernel void batch_norm_apply(__global T* y, __global const T* x, long x_off, __global const T* mean,
                               __global const T* var, __global const T* weight, long w_off,
                               __global const T* bias, long b_off, T eps, long C, long S, long chunk, long planes) {
    long plane, c, begin, end;
    if (!plane_chunk(C, S, chunk, planes, &plane, &c, &begin, &end)) {
        return;
    }
    T m = mean[c];
    T scale = (T)1 / sqrt(var[c] + eps);
#if HAS_WEIGHT
    scale = scale * weight[w_off + c];
#endif
#if HAS_BIAS
    T shift = bias[b_off + c];
#endif
    __global const T* src = x + x_off + plane * S;
    __global T* dst = y + plane * S;
    for (long i = begin; i < end; ++i) {
        T v = (src[i] - m) * scale;
#if HAS_BIAS
        v = v + shift;
#endif
        dst[i] = v;
    }
}

/* batch_norm_backward, first pass: with xhat = (x - mean[c]) / sqrt(var[c] + eps), write g
 * and g * xhat channel-first, as (C, N, S), so each channel's sums read one contiguous row.
 * Same launch as batch_norm_apply; g and x contiguous (N, C, S). */
__kernel void batch_norm_grad_terms(__global T* g_cf, __global T* gxhat_cf, __global const T* g, long g_off,
                                    __global const T* x, long x_off, __global const T* mean, long m_off,
                                    __global const T* var, long v_off, T eps, long C, long S, long chunk,
                                    long planes) {
    long plane, c, begin, end;
    if (!plane_chunk(C, S, chunk, planes, &plane, &c, &begin, &end)) {
        return;
    }
    long n = plane / C, N = planes / C;
    T m = mean[m_off + c];
    T invstd = (T)1 / sqrt(var[v_off + c] + eps);
    __global const T* gs = g + g_off + plane * S;
    __global const T* xs = x + x_off + plane * S;
    long to = (c * N + n) * S;
    for (long i = begin; i < end; ++i) {
        T gv = gs[i];
        g_cf[to + i] = gv;
        gxhat_cf[to + i] = gv * ((xs[i] - m) * invstd);
    }
}

/* batch_norm_backward, last pass, as tensorcore.ops.normalization._bn_backward_ref orders it:
 *   gx = ((xhat * (gw[c] / -count) + g) - gb[c] / count) * (invstd * weight[c]).
 * Build with HAS_WEIGHT; same launch as batch_norm_apply. */
__kernel void batch_norm_grad_input(__global T* gx, __global const T* g, long g_off, __global const T* x, long x_off,
                                    __global const T* mean, long m_off, __global const T* var, long v_off,
                                    __global const T* weight, long w_off, __global const T* gw, __global const T* gb, T eps, T count,
                                    long C, long S, long chunk, long planes) {
    long plane, c, begin, end;
    if (!plane_chunk(C, S, chunk, planes, &plane, &c, &begin, &end)) {
        return;
    }
    T m = mean[m_off + c];
    T invstd = (T)1 / sqrt(var[v_off + c] + eps);
    T a = gw[c] / -count;
    T b = gb[c] / count;
#if HAS_WEIGHT
    T scale = invstd * weight[w_off + c];
#else
    T scale = invstd;
#endif
    __global const T* gs = g + g_off + plane * S;
    __global const T* xs = x + x_off + plane * S;
    __global T* out = gx + plane * S;
    for (long i = begin; i < end; ++i) {
        T xhat = (xs[i] - m) * invstd;
        out[i] = ((xhat * a + gs[i]) - b) * scale;
    }
}
