/* Unary elementwise ops, clip, the forward activations, and casts.
 *
 * One program per element type, holding every op that type supports (PoCL takes ~0.5 s to
 * build a program, so ops share one). Build with
 *   -DT=<type> -DT_KIND=<KIND_*> -DT_BITS=<bits> -DUT=<unsigned type of the same width>
 * and, for the cast program instead, -DT=<from> -DTO=<to> -DTO_KIND=<KIND_*> -DTO_BITS=<bits>.
 * Every op's result follows NumPy's loop for that dtype (see the notes at each op).
 */
#include "elementwise_loops.cl"

#ifndef TO /* ------------------------------------------------------------- unary program */

/* Bool results go through EW_BOOL (elementwise_loops.cl), which needs the kernel's ew_true:
 * the predicates are macros, expanded inside the kernels. */
#define BOOL_OUT(x) EW_BOOL(x)

/* Predicates: bool output for every type. */
#if T_KIND == KIND_FLOAT
#define f_isnan(x) BOOL_OUT(isnan(x))
#define f_isinf(x) BOOL_OUT(isinf(x))
#define f_isfinite(x) BOOL_OUT(isfinite(x))
#define f_signbit(x) BOOL_OUT(signbit(x))
#else
#define f_isnan(x) ((uchar)0)
#define f_isinf(x) ((uchar)0)
#define f_isfinite(x) ew_true
#if T_KIND == KIND_INT
#define f_signbit(x) BOOL_OUT((x) < 0)
#else
#define f_signbit(x) ((uchar)0)
#endif
#endif
#define f_logical_not(x) BOOL_OUT((x) == 0)
EW_UNARY(isnan, uchar, T, f_isnan)
EW_UNARY(isinf, uchar, T, f_isinf)
EW_UNARY(isfinite, uchar, T, f_isfinite)
EW_UNARY(signbit, uchar, T, f_signbit)
EW_UNARY(logical_not, uchar, T, f_logical_not)

/* Rounding is the identity on integers and bools (NumPy keeps their dtype). */
inline T f_identity(T x) { return x; }
#if T_KIND == KIND_FLOAT
EW_UNARY(floor, T, T, floor)
EW_UNARY(ceil, T, T, ceil)
EW_UNARY(trunc, T, T, trunc)
EW_UNARY(round, T, T, rint) /* rint: to nearest, ties to even, like np.round */
#else
EW_UNARY(floor, T, T, f_identity)
EW_UNARY(ceil, T, T, f_identity)
EW_UNARY(trunc, T, T, f_identity)
#if T_KIND != KIND_BOOL
EW_UNARY(round, T, T, f_identity) /* np.round on bool gives float16: not here */
#endif
#endif

#if T_KIND == KIND_BOOL
EW_UNARY(abs, T, T, f_identity)
inline T f_not(T x) { return (T)(x == 0); } /* np.invert on bool is logical not */
EW_UNARY(bitwise_invert, T, T, f_not)
#endif

#if T_KIND == KIND_INT || T_KIND == KIND_UINT
/* Integer arithmetic through the unsigned type: wraps like NumPy, without C's signed overflow. */
inline T f_abs(T x) { return (T)abs(x); } /* abs(INT_MIN) stays INT_MIN, as in NumPy */
inline T f_negative(T x) { return (T)(-(UT)x); }
inline T f_square(T x) { return (T)((UT)x * (UT)x); }
inline T f_invert(T x) { return (T)(~x); }
#if T_KIND == KIND_INT
inline T f_sign(T x) { return (T)((x > 0) - (x < 0)); }
inline T f_relu(T x) { return x > 0 ? x : (T)0; }
#else
inline T f_sign(T x) { return (T)(x > 0); }
#define f_relu f_identity
#endif
EW_UNARY(abs, T, T, f_abs)
EW_UNARY(negative, T, T, f_negative)
EW_UNARY(positive, T, T, f_identity)
EW_UNARY(sign, T, T, f_sign)
EW_UNARY(square, T, T, f_square)
EW_UNARY(bitwise_invert, T, T, f_invert)
EW_UNARY(relu, T, T, f_relu)
#endif

#if T_KIND == KIND_FLOAT
#if T_BITS == 64
#define K(x) x
#else
#define K(x) x##f
#endif
inline T f_negative(T x) { return -x; }
inline T f_square(T x) { return x * x; }
inline T f_reciprocal(T x) { return K(1.0) / x; }
/* NumPy's sign: 0 for both zeros, NaN for NaN. */
inline T f_sign(T x) { return x > 0 ? K(1.0) : (x < 0 ? K(-1.0) : (x == 0 ? K(0.0) : x)); }
/* np.maximum(x, 0): NaN propagates and -0.0 gives +0.0 (`<=`, not `<`: the sign of zero counts).
 * Branch-free on purpose: a short-circuit `||` with isnan() kept PoCL from vectorizing the
 * loop (relu ran 35-90x slower than negative). NaN <= 0 is false, so NaN passes through. */
inline T f_relu(T x) { return x <= K(0.0) ? K(0.0) : x; }
/* Logistic function from exp(-|x|), which never overflows (as the cpu reference). */
inline T f_sigmoid(T x) {
    T z = exp(-fabs(x));
    return (x >= 0 ? K(1.0) : z) / (K(1.0) + z);
}
/* A macro: the same text serves T and its vector type (see EW_MATH). */
#define f_gelu(x) (K(0.5) * (x) * (K(1.0) + erf((x) * K(0.70710678118654752440))))
/* tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as
 * x / (1 + exp(-2u)): PoCL's tanh saturates at -0.99999994, so 1 + tanh(u) would leave
 * ~1e-6 where the result is 0 for large negative x. */
inline T f_gelu_tanh(T x) {
    T u = K(0.79788456080286535588) * x * (K(1.0) + K(0.044715) * x * x);
    return x / (K(1.0) + exp(K(-2.0) * u));
}
/* Math builtins run as vectors on contiguous inputs (EW_UNARY_VEC): 16 floats or 8 doubles. */
#if T_BITS == 64
#define EW_VW 8
#else
#define EW_VW 16
#endif
#define EW_MATH(F) EW_UNARY_VEC(F##_t, F##_v, T, T, F, F, EW_VW)
EW_UNARY(abs, T, T, fabs)
EW_UNARY(negative, T, T, f_negative)
EW_UNARY(positive, T, T, f_identity)
EW_UNARY(sign, T, T, f_sign)
EW_UNARY(square, T, T, f_square)
EW_UNARY(reciprocal, T, T, f_reciprocal)
EW_MATH(exp)
EW_MATH(expm1)
EW_MATH(log)
EW_MATH(log1p)
EW_MATH(log2)
EW_MATH(log10)
EW_MATH(sqrt)
#if T_BITS == 64
EW_MATH(sin)
EW_MATH(cos)
EW_MATH(tan)
#else
/* Scalar on purpose: PoCL's float vector sin/cos/tan get the small lanes of a vector wrong
 * when another lane is huge (|x| >= ~1e10 or inf): sin(1e-8) came out 0.0105. */
EW_UNARY(sin, T, T, sin)
EW_UNARY(cos, T, T, cos)
EW_UNARY(tan, T, T, tan)
#endif
EW_MATH(asin)
EW_MATH(acos)
EW_MATH(atan)
EW_MATH(sinh)
EW_MATH(cosh)
EW_MATH(tanh)
EW_MATH(asinh)
EW_MATH(acosh)
EW_MATH(atanh)
EW_UNARY(relu, T, T, f_relu)
EW_UNARY(sigmoid, T, T, f_sigmoid)
EW_UNARY_VEC(gelu_t, gelu_v, T, T, f_gelu, f_gelu, EW_VW)
EW_UNARY(gelu_tanh, T, T, f_gelu_tanh)
#endif

/* clip = minimum(maximum(x, lo), hi) with NumPy's NaN propagation; a missing bound is passed
 * as the type's extreme (-inf / +inf for floats), which leaves every value unchanged. */
#if T_KIND != KIND_BOOL
#if T_KIND == KIND_FLOAT
#define CLIP(x) fmin_nan(fmax_nan(x, lo), hi)
/* NaN-propagating max/min with `|`, not `||`: no branch, so PoCL vectorizes the loop. */
inline T fmax_nan(T x, T y) { return ((x > y) | (x != x)) ? x : y; }
inline T fmin_nan(T x, T y) { return ((x < y) | (x != x)) ? x : y; }
#else
#define CLIP(x) min(max(x, lo), hi)
#endif
__kernel void clip_t(__global T* restrict out, __global const T* restrict a, long ao, T lo, T hi,
                     long n, long chunk) {
    EW_RANGE
    a += ao;
    for (long i = s; i < e; ++i) out[i] = CLIP(a[i]);
}
__kernel void clip_v(__global T* restrict out, __global const T* restrict a, long ao, long8 as, T lo,
                     T hi, long8 shape, int ndim, long n, long chunk) {
    EW_STRIDED(as, EW_NO_STRIDES, EW_NO_STRIDES, ao, 0, 0, out[i + k] = CLIP(a[o0 + k * in0]);)
}
#endif

#else /* ---------------------------------------------------------------------- cast program */

/* NumPy's casts as x86 builds of NumPy do them: to bool is `!= 0`; float to a narrow integer
 * goes through a 32-bit (8/16-bit targets) or 64-bit (uint32, negative to uint64) signed
 * conversion, so -1.0 gives 255 for uint8 as in NumPy rather than an undefined value. */
#if TO_KIND == KIND_BOOL
#define CAST(x) EW_BOOL((x) != 0) /* see EW_BOOL */
#elif TO_KIND != KIND_FLOAT && TO_BITS < 32 && T_KIND == KIND_FLOAT
#define CAST(x) ((TO)(int)(x))
#elif TO_KIND == KIND_UINT && TO_BITS == 32 && T_KIND == KIND_FLOAT
#define CAST(x) ((TO)(long)(x))
#elif TO_KIND == KIND_UINT && T_KIND == KIND_FLOAT
#define CAST(x) ((x) < 0 ? (TO)(long)(x) : (TO)(x))
#else
#define CAST(x) ((TO)(x))
#endif
#define f_cast(x) CAST(x)
EW_UNARY(cast, TO, T, f_cast)

#endif
