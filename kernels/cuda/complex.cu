/* Complex elementwise kernels: add, subtract, multiply, divide, negative, positive, conj,
 * real, imag, abs, on (re, im) pairs.
 *
 * One module per precision: build with -DDTYPE=float (complex64) or -DDTYPE=double
 * (complex128). A complex number is `cx`, a pair aligned as NumPy's complex64/complex128
 * (and as the complex NumPy scalars CuPy passes by value). The same arithmetic as
 * kernels/opencl/complex.cl; layout variants as in elementwise.cu (t, k, v; see there).
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float or -DDTYPE=double"
#endif
typedef DTYPE T;
struct __align__(2 * sizeof(DTYPE)) cx {
    T x, y;
};

__device__ __forceinline__ cx cx_make(T x, T y) { cx r; r.x = x; r.y = y; return r; }
__device__ __forceinline__ cx cx_add(cx a, cx b) { return cx_make(a.x + b.x, a.y + b.y); }
__device__ __forceinline__ cx cx_sub(cx a, cx b) { return cx_make(a.x - b.x, a.y - b.y); }
__device__ __forceinline__ cx cx_neg(cx a) { return cx_make(-a.x, -a.y); }
__device__ __forceinline__ cx cx_pos(cx a) { return a; }
__device__ __forceinline__ cx cx_conj(cx a) { return cx_make(a.x, -a.y); }
__device__ __forceinline__ T cx_real(cx a) { return a.x; }
__device__ __forceinline__ T cx_imag(cx a) { return a.y; }
/* hypot: no overflow past sqrt(max); inf when a part is inf, even with a NaN beside it. */
__device__ __forceinline__ T cx_abs(cx a) { return hypot(a.x, a.y); }
/* One fused multiply-add per part, as NumPy's vector loops (and the OpenCL kernel). */
__device__ __forceinline__ cx cx_mul(cx a, cx b) {
    return cx_make(fma(a.x, b.x, -(a.y * b.y)), fma(a.x, b.y, a.y * b.x));
}
/* Products the compiler must not fuse into an add (nvcc contracts by default): the division
 * then rounds as NumPy's does. */
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
/* Smith's division: no |b|^2, so no needless overflow or underflow; by zero as NumPy. */
__device__ __forceinline__ cx cx_div(cx a, cx b) {
    const T br = fabs(b.x), bi = fabs(b.y);
    if (br >= bi) {
        if (br == (T)0 && bi == (T)0) return cx_make(a.x / br, a.y / br);
        const T ratio = b.y / b.x;
        const T scale = (T)1 / (b.x + mul_rn(b.y, ratio));
        return cx_make(mul_rn(a.x + mul_rn(a.y, ratio), scale), mul_rn(a.y - mul_rn(a.x, ratio), scale));
    }
    const T ratio = b.x / b.y; /* also where a part of b is NaN: NaN results, as NumPy */
    const T scale = (T)1 / (b.y + mul_rn(b.x, ratio));
    return cx_make(mul_rn(mul_rn(a.x, ratio) + a.y, scale), mul_rn(mul_rn(a.y, ratio) - a.x, scale));
}

#define CX_UNARY(NAME, RT, F)                                                                       \
    extern "C" __global__ void NAME##_t(RT* __restrict__ out, const cx* __restrict__ a, i64 n) {    \
        TC_GRID_LOOP(i, n) out[i] = F(a[i]);                                                        \
    }                                                                                               \
    extern "C" __global__ void NAME##_v(RT* __restrict__ out, const cx* __restrict__ a,             \
                                        const i64* __restrict__ meta, int ndim, i64 n) {            \
        TC_GRID_LOOP(i, n) out[i] = F(a[tc_strided_offset(i, meta, meta + ndim, ndim)]);            \
    }

#define CX_BINARY(NAME, F)                                                                          \
    extern "C" __global__ void NAME##_tt(cx* __restrict__ out, const cx* __restrict__ a,            \
                                         const cx* __restrict__ b, i64 n) {                         \
        TC_GRID_LOOP(i, n) out[i] = F(a[i], b[i]);                                                  \
    }                                                                                               \
    extern "C" __global__ void NAME##_tk(cx* __restrict__ out, const cx* __restrict__ a, cx y, i64 n) { \
        TC_GRID_LOOP(i, n) out[i] = F(a[i], y);                                                     \
    }                                                                                               \
    extern "C" __global__ void NAME##_kt(cx* __restrict__ out, cx x, const cx* __restrict__ b, i64 n) { \
        TC_GRID_LOOP(i, n) out[i] = F(x, b[i]);                                                     \
    }                                                                                               \
    extern "C" __global__ void NAME##_vv(cx* __restrict__ out, const cx* __restrict__ a,            \
                                         const cx* __restrict__ b, const i64* __restrict__ meta,    \
                                         int ndim, i64 n) {                                         \
        TC_GRID_LOOP(i, n) out[i] = F(a[tc_strided_offset(i, meta, meta + ndim, ndim)],             \
                                      b[tc_strided_offset(i, meta, meta + 2 * ndim, ndim)]);        \
    }                                                                                               \
    extern "C" __global__ void NAME##_vk(cx* __restrict__ out, const cx* __restrict__ a, cx y,      \
                                         const i64* __restrict__ meta, int ndim, i64 n) {           \
        TC_GRID_LOOP(i, n) out[i] = F(a[tc_strided_offset(i, meta, meta + ndim, ndim)], y);         \
    }                                                                                               \
    extern "C" __global__ void NAME##_kv(cx* __restrict__ out, cx x, const cx* __restrict__ b,      \
                                         const i64* __restrict__ meta, int ndim, i64 n) {           \
        TC_GRID_LOOP(i, n) out[i] = F(x, b[tc_strided_offset(i, meta, meta + ndim, ndim)]);         \
    }

CX_BINARY(cx_add, cx_add)
CX_BINARY(cx_subtract, cx_sub)
CX_BINARY(cx_multiply, cx_mul)
CX_BINARY(cx_divide, cx_div)
CX_UNARY(cx_negative, cx, cx_neg)
CX_UNARY(cx_positive, cx, cx_pos)
CX_UNARY(cx_conj, cx, cx_conj)
CX_UNARY(cx_real, T, cx_real)
CX_UNARY(cx_imag, T, cx_imag)
CX_UNARY(cx_abs, T, cx_abs)
