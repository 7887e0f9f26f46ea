/* Unary and binary elementwise ops, the activations and their backward ops (floating point).
 *
 * One module per element type: build with -DDTYPE=float or -DDTYPE=double. Mirrors
 * kernels/opencl/elementwise.cl and elementwise_binary.cl, one thread per element with a
 * grid-stride loop. The output is always contiguous; each op comes in layout variants:
 *   unary   NAME_t (contiguous input)        NAME_v (strided view: meta = shape, strides)
 *   binary  NAME_tt NAME_tk NAME_kt           t = contiguous tensor of the output's shape,
 *           NAME_vv NAME_vk NAME_kv           k = scalar argument (already of type T),
 *                                             v = strided or broadcast view (see common.cuh)
 * Comparisons and predicates write bool as one byte (u8), as NumPy stores it.
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float or -DDTYPE=double"
#endif
typedef DTYPE T; /* a macro named T would break nvcc's implicit CUDA runtime headers */

#define K(x) ((T)(x))

/* ------------------------------------------------------------------------------- unary */
#define UNARY(NAME, RT, EXPR)                                                                   \
    __device__ __forceinline__ RT f_##NAME(T x) { return EXPR; }                                \
    extern "C" __global__ void NAME##_t(RT* __restrict__ out, const T* __restrict__ a, i64 n) { \
        TC_GRID_LOOP(i, n) out[i] = f_##NAME(a[i]);                                             \
    }                                                                                           \
    extern "C" __global__ void NAME##_v(RT* __restrict__ out, const T* __restrict__ a,          \
                                        const i64* __restrict__ meta, int ndim, i64 n) {        \
        TC_GRID_LOOP(i, n) out[i] = f_##NAME(a[tc_strided_offset(i, meta, meta + ndim, ndim)]); \
    }

UNARY(negative, T, -x)
UNARY(positive, T, x)
UNARY(abs, T, fabs(x))
UNARY(square, T, x * x)
UNARY(reciprocal, T, K(1) / x)
UNARY(sqrt, T, sqrt(x))
UNARY(exp, T, exp(x))
UNARY(expm1, T, expm1(x))
UNARY(log, T, log(x))
UNARY(log1p, T, log1p(x))
UNARY(log2, T, log2(x))
UNARY(log10, T, log10(x))
UNARY(sin, T, sin(x))
UNARY(cos, T, cos(x))
UNARY(tan, T, tan(x))
UNARY(asin, T, asin(x))
UNARY(acos, T, acos(x))
UNARY(atan, T, atan(x))
UNARY(sinh, T, sinh(x))
UNARY(cosh, T, cosh(x))
UNARY(tanh, T, tanh(x))
UNARY(asinh, T, asinh(x))
UNARY(acosh, T, acosh(x))
UNARY(atanh, T, atanh(x))
UNARY(floor, T, floor(x))
UNARY(ceil, T, ceil(x))
UNARY(trunc, T, trunc(x))
UNARY(round, T, rint(x)) /* to nearest, ties to even, like np.round */
/* NumPy's sign: 0 for both zeros, NaN for NaN. */
UNARY(sign, T, x > K(0) ? K(1) : (x < K(0) ? K(-1) : (x == K(0) ? K(0) : x)))
/* np.maximum(x, 0): NaN <= 0 is false, so NaN passes through; -0.0 gives +0.0. */
UNARY(relu, T, x <= K(0) ? K(0) : x)
/* The logistic function from exp(-|x|), which never overflows (as the cpu reference). */
__device__ __forceinline__ T tc_sigmoid(T x) {
    const T z = exp(-fabs(x));
    return (x >= K(0) ? K(1) : z) / (K(1) + z);
}
UNARY(sigmoid, T, tc_sigmoid(x))
UNARY(gelu, T, K(0.5) * x * (K(1) + erf(x * K(0.70710678118654752440))))
/* tanh form as x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): exact where tanh saturates. */
UNARY(gelu_tanh, T, x / (K(1) + exp(K(-2) * K(0.79788456080286535588) * x * (K(1) + K(0.044715) * x * x))))
UNARY(isnan, u8, (u8)(x != x))
UNARY(isinf, u8, (u8)(fabs(x) == tc_inf<T>()))
UNARY(isfinite, u8, (u8)(x - x == K(0))) /* inf - inf and NaN - NaN are NaN */

/* ------------------------------------------------------------------------------ binary */
#define BINARY(NAME, RT, EXPR)                                                                    \
    __device__ __forceinline__ RT f_##NAME(T x, T y) { return EXPR; }                             \
    extern "C" __global__ void NAME##_tt(RT* __restrict__ out, const T* __restrict__ a,           \
                                         const T* __restrict__ b, i64 n) {                        \
        TC_GRID_LOOP(i, n) out[i] = f_##NAME(a[i], b[i]);                                         \
    }                                                                                             \
    extern "C" __global__ void NAME##_tk(RT* __restrict__ out, const T* __restrict__ a, T y, i64 n) { \
        TC_GRID_LOOP(i, n) out[i] = f_##NAME(a[i], y);                                            \
    }                                                                                             \
    extern "C" __global__ void NAME##_kt(RT* __restrict__ out, T x, const T* __restrict__ b, i64 n) { \
        TC_GRID_LOOP(i, n) out[i] = f_##NAME(x, b[i]);                                            \
    }                                                                                             \
    extern "C" __global__ void NAME##_vv(RT* __restrict__ out, const T* __restrict__ a,           \
                                         const T* __restrict__ b, const i64* __restrict__ meta,   \
                                         int ndim, i64 n) {                                       \
        TC_GRID_LOOP(i, n) out[i] = f_##NAME(a[tc_strided_offset(i, meta, meta + ndim, ndim)],    \
                                             b[tc_strided_offset(i, meta, meta + 2 * ndim, ndim)]); \
    }                                                                                             \
    extern "C" __global__ void NAME##_vk(RT* __restrict__ out, const T* __restrict__ a, T y,      \
                                         const i64* __restrict__ meta, int ndim, i64 n) {         \
        TC_GRID_LOOP(i, n) out[i] = f_##NAME(a[tc_strided_offset(i, meta, meta + ndim, ndim)], y); \
    }                                                                                             \
    extern "C" __global__ void NAME##_kv(RT* __restrict__ out, T x, const T* __restrict__ b,      \
                                         const i64* __restrict__ meta, int ndim, i64 n) {         \
        TC_GRID_LOOP(i, n) out[i] = f_##NAME(x, b[tc_strided_offset(i, meta, meta + ndim, ndim)]); \
    }

/* NumPy's npy_logaddexp: equal inputs (infinities included) give x + log 2. */
__device__ __forceinline__ T tc_logaddexp(T x, T y) {
    if (x == y) return x + K(0.69314718055994530942);
    const T d = x - y;
    if (d > K(0)) return x + log1p(exp(-d));
    if (d <= K(0)) return y + log1p(exp(d));
    return d; /* NaN */
}

BINARY(add, T, x + y)
BINARY(subtract, T, x - y)
BINARY(multiply, T, x * y)
BINARY(divide, T, x / y)
/* NaN propagates; on ties the second operand wins, as NumPy's loops do with signed zeros. */
BINARY(maximum, T, tc_max_nan(x, y))
BINARY(minimum, T, tc_min_nan(x, y))
BINARY(pow, T, pow(x, y))
BINARY(atan2, T, atan2(x, y))
BINARY(hypot, T, hypot(x, y))
BINARY(copysign, T, copysign(x, y))
BINARY(logaddexp, T, tc_logaddexp(x, y))
BINARY(equal, u8, (u8)(x == y))
BINARY(not_equal, u8, (u8)(x != y))
BINARY(less, u8, (u8)(x < y))
BINARY(less_equal, u8, (u8)(x <= y))
BINARY(greater, u8, (u8)(x > y))
BINARY(greater_equal, u8, (u8)(x >= y))

/* The activations' gradients (g, saved tensor), in the cpu reference's order of operations. */
BINARY(relu_backward, T, (y > K(0) ? K(1) : K(0)) * x) /* (y > 0) * g: 0 * inf gives NaN */
BINARY(sigmoid_backward, T, (K(1) - y) * y * x)
__device__ __forceinline__ T tc_gelu_backward(T g, T x) {
    const T cdf = K(0.5) * (K(1) + erf(x * K(0.70710678118654752440)));
    return (cdf + x * exp(K(-0.5) * x * x) * K(0.39894228040143267794)) * g;
}
/* With t = tanh(u): 0.5 (1 + t) + 0.5 x (1 - t^2) u', written with p = (1 + t) / 2 and
 * q = (1 - t) / 2 as logistic functions of 2u (accurate where tanh saturates). */
__device__ __forceinline__ T tc_gelu_tanh_backward(T g, T x) {
    const T x2 = x * x;
    const T u = K(0.79788456080286535588) * x * (K(1) + K(0.044715) * x2);
    const T du = K(0.79788456080286535588) * (K(1) + K(3) * K(0.044715) * x2);
    const T p = K(1) / (K(1) + exp(K(-2) * u)), q = K(1) / (K(1) + exp(K(2) * u));
    return (p + K(2) * x * p * q * du) * g;
}
BINARY(gelu_backward, T, tc_gelu_backward(x, y))
BINARY(gelu_tanh_backward, T, tc_gelu_tanh_backward(x, y))
