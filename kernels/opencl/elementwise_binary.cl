/* Binary elementwise ops, where, and the activations' backward ops.
 *
 * One program per (TA, TB, C): the two input types and the computation type C (NumPy's
 * result_type of the operands; a Python scalar operand arrives already converted to C).
 * Build with -DTA=<type> -DTB=<type> -DC=<type> -DC_KIND=<KIND_*> -DC_BITS=<bits> -DUC=<unsigned C>.
 * Inputs are converted to C, then each op produces C (arithmetic) or bool (comparisons, logic).
 *
 * Every op has six kernels, by operand layout: t = contiguous tensor with the output's shape,
 * v = strided view, k = scalar argument: NAME_tt, NAME_tk, NAME_kt (no index math) and
 * NAME_vv, NAME_vk, NAME_kv.
 */
#include "elementwise_loops.cl"

#if C_BITS == 64
#define K(x) x
#else
#define K(x) x##f
#endif
/* Bool results go through EW_BOOL (elementwise_loops.cl: a constant 1 made equal 160x slower
 * than less), which needs the kernel's ew_true: the bool ops are macros, expanded in the kernels. */
#define BOOL_OUT(x) EW_BOOL(x)

/* Kernel names are pasted before being passed on: a bare `atan2` or `pow` argument would be
 * macro-expanded on the way if the compiler's headers define the builtin as a macro. */
#define BIN_CONTIGUOUS(NAME, RT, F) BIN_TT_VV(NAME##_tt, NAME##_vv, RT, F)
#define BIN_TT_VV(NAME_TT, NAME_VV, RT, F)                                                          \
    __kernel void NAME_TT(__global RT* restrict out, __global const TA* restrict a, long ao,        \
                          __global const TB* restrict b, long bo, long n, long chunk) {             \
        EW_RANGE                                                                                    \
        a += ao; b += bo;                                                                           \
        for (long i = s; i < e; ++i) out[i] = F((C)a[i], (C)b[i]);                                  \
    }                                                                                               \
    __kernel void NAME_VV(__global RT* restrict out, __global const TA* restrict a, long ao,        \
                          long8 as, __global const TB* restrict b, long bo, long8 bs,               \
                          long8 shape, int ndim, long n, long chunk) {                              \
        EW_STRIDED(as, bs, EW_NO_STRIDES, ao, bo, 0,                                                \
                   out[i + k] = F((C)a[o0 + k * in0], (C)b[o1 + k * in1]);)                         \
    }

#define BIN(NAME, RT, F)                                                                            \
    BIN_TT_VV(NAME##_tt, NAME##_vv, RT, F)                                                          \
    BIN_SCALAR(NAME##_tk, NAME##_kt, NAME##_vk, NAME##_kv, RT, F)
#define BIN_SCALAR(NAME_TK, NAME_KT, NAME_VK, NAME_KV, RT, F)                                       \
    BIN_TK_KT(NAME_TK, NAME_KT, RT, F) BIN_VK_KV(NAME_VK, NAME_KV, RT, F)
#define BIN_TK_KT(NAME_TK, NAME_KT, RT, F)                                                          \
    __kernel void NAME_TK(__global RT* restrict out, __global const TA* restrict a, long ao,        \
                          C y, long n, long chunk) {                                                \
        EW_RANGE                                                                                    \
        a += ao;                                                                                    \
        for (long i = s; i < e; ++i) out[i] = F((C)a[i], y);                                        \
    }                                                                                               \
    __kernel void NAME_KT(__global RT* restrict out, C x, __global const TB* restrict b,            \
                          long bo, long n, long chunk) {                                            \
        EW_RANGE                                                                                    \
        b += bo;                                                                                    \
        for (long i = s; i < e; ++i) out[i] = F(x, (C)b[i]);                                        \
    }
#define BIN_VK_KV(NAME_VK, NAME_KV, RT, F)                                                          \
    __kernel void NAME_VK(__global RT* restrict out, __global const TA* restrict a, long ao,        \
                          long8 as, C y, long8 shape, int ndim, long n, long chunk) {               \
        EW_STRIDED(as, EW_NO_STRIDES, EW_NO_STRIDES, ao, 0, 0,                                      \
                   out[i + k] = F((C)a[o0 + k * in0], y);)                                          \
    }                                                                                               \
    __kernel void NAME_KV(__global RT* restrict out, C x, __global const TB* restrict b,            \
                          long bo, long8 bs, long8 shape, int ndim, long n, long chunk) {           \
        EW_STRIDED(EW_NO_STRIDES, bs, EW_NO_STRIDES, 0, bo, 0,                                      \
                   out[i + k] = F(x, (C)b[o1 + k * in1]);)                                          \
    }

/* Math builtins of two arguments: like BIN, but the contiguous kernels (tt, tk, kt) run
 * BIN_VW-wide vectors through the builtin's vector overload, then a scalar tail (see
 * EW_UNARY_VEC in elementwise_loops.cl: PoCL does not vectorize a loop calling them). */
#if C_BITS == 64
#define BIN_VW 8
#else
#define BIN_VW 16
#endif
#define BIN_CAT3(a, b, c) BIN_CAT3_(a, b, c)
#define BIN_CAT3_(a, b, c) a##b##c
#define BIN_CV BIN_CAT3(C, BIN_VW, ) /* float16, double8 */
#define BIN_VLOADC(p) BIN_CAT3(convert_, BIN_CV, )(EW_VLOAD(BIN_VW, p))
#define BIN_VSPLAT(x) ((BIN_CV)(x))
#define BIN_VSTORE(v, p) EW_VSTORE(BIN_VW, v, p)
#define BIN_VEC(NAME, F)                                                                            \
    __kernel void NAME##_tt(__global C* restrict out, __global const TA* restrict a, long ao,       \
                            __global const TB* restrict b, long bo, long n, long chunk) {           \
        EW_RANGE                                                                                    \
        a += ao; b += bo;                                                                           \
        long i = s;                                                                                 \
        for (; i + BIN_VW <= e; i += BIN_VW)                                                        \
            BIN_VSTORE(F(BIN_VLOADC(a + i), BIN_VLOADC(b + i)), out + i);                           \
        for (; i < e; ++i) out[i] = F((C)a[i], (C)b[i]);                                            \
    }                                                                                               \
    __kernel void NAME##_tk(__global C* restrict out, __global const TA* restrict a, long ao,       \
                            C y, long n, long chunk) {                                              \
        EW_RANGE                                                                                    \
        a += ao;                                                                                    \
        long i = s;                                                                                 \
        for (; i + BIN_VW <= e; i += BIN_VW)                                                        \
            BIN_VSTORE(F(BIN_VLOADC(a + i), BIN_VSPLAT(y)), out + i);                               \
        for (; i < e; ++i) out[i] = F((C)a[i], y);                                                  \
    }                                                                                               \
    __kernel void NAME##_kt(__global C* restrict out, C x, __global const TB* restrict b,           \
                            long bo, long n, long chunk) {                                          \
        EW_RANGE                                                                                    \
        b += bo;                                                                                    \
        long i = s;                                                                                 \
        for (; i + BIN_VW <= e; i += BIN_VW)                                                        \
            BIN_VSTORE(F(BIN_VSPLAT(x), BIN_VLOADC(b + i)), out + i);                               \
        for (; i < e; ++i) out[i] = F(x, (C)b[i]);                                                  \
    }                                                                                               \
    __kernel void NAME##_vv(__global C* restrict out, __global const TA* restrict a, long ao,       \
                            long8 as, __global const TB* restrict b, long bo, long8 bs,             \
                            long8 shape, int ndim, long n, long chunk) {                            \
        EW_STRIDED(as, bs, EW_NO_STRIDES, ao, bo, 0,                                                \
                   out[i + k] = F((C)a[o0 + k * in0], (C)b[o1 + k * in1]);)                         \
    }                                                                                               \
    BIN_VK_KV(NAME##_vk, NAME##_kv, C, F)

/* ---------------------------------------------------------------- ops on every type */
#if C_KIND == KIND_BOOL /* NumPy's bool loops: + is or, * is and */
inline C f_add(C x, C y) { return x | y; }
inline C f_multiply(C x, C y) { return x & y; }
inline C f_maximum(C x, C y) { return x | y; }
inline C f_minimum(C x, C y) { return x & y; }
#elif C_KIND == KIND_FLOAT
inline C f_add(C x, C y) { return x + y; }
inline C f_multiply(C x, C y) { return x * y; }
/* NaN propagates; on ties the second operand wins, as NumPy's SIMD loops do with signed zeros. */
/* `|`, not `||`: a short-circuit keeps PoCL from vectorizing (see f_relu in elementwise.cl). */
inline C f_maximum(C x, C y) { return ((x > y) | (x != x)) ? x : y; }
inline C f_minimum(C x, C y) { return ((x < y) | (x != x)) ? x : y; }
#else /* integers wrap through the unsigned type (no signed-overflow undefined behaviour) */
inline C f_add(C x, C y) { return (C)((UC)x + (UC)y); }
inline C f_multiply(C x, C y) { return (C)((UC)x * (UC)y); }
inline C f_maximum(C x, C y) { return max(x, y); }
inline C f_minimum(C x, C y) { return min(x, y); }
#endif
#define f_equal(x, y) BOOL_OUT((x) == (y))
#define f_not_equal(x, y) BOOL_OUT((x) != (y))
#define f_less(x, y) BOOL_OUT((x) < (y))
#define f_less_equal(x, y) BOOL_OUT((x) <= (y))
#define f_greater(x, y) BOOL_OUT((x) > (y))
#define f_greater_equal(x, y) BOOL_OUT((x) >= (y))
#define f_logical_and(x, y) BOOL_OUT(((x) != 0) & ((y) != 0))
#define f_logical_or(x, y) BOOL_OUT(((x) != 0) | ((y) != 0))
#define f_logical_xor(x, y) BOOL_OUT(((x) != 0) != ((y) != 0))
/* relu's gradient as the cpu reference computes it: (y > 0) * g, so 0 * inf gives NaN. */
inline C f_relu_backward(C g, C y) { return f_multiply((C)(y > 0), g); }
BIN(add, C, f_add)
BIN(multiply, C, f_multiply)
BIN(maximum, C, f_maximum)
BIN(minimum, C, f_minimum)
BIN(equal, uchar, f_equal)
BIN(not_equal, uchar, f_not_equal)
BIN(less, uchar, f_less)
BIN(less_equal, uchar, f_less_equal)
BIN(greater, uchar, f_greater)
BIN(greater_equal, uchar, f_greater_equal)
BIN(logical_and, uchar, f_logical_and)
BIN(logical_or, uchar, f_logical_or)
BIN(logical_xor, uchar, f_logical_xor)
BIN_CONTIGUOUS(relu_backward, C, f_relu_backward)

/* ---------------------------------------------------------------- integers */
#if C_KIND == KIND_INT || C_KIND == KIND_UINT
inline C f_subtract(C x, C y) { return (C)((UC)x - (UC)y); }
/* Integer power by squaring, wrapping like NumPy. Negative exponents (NumPy raises) give what
 * 1 / x**-y truncates to; the launcher sends signed exponent tensors to cpu anyway. */
inline C f_pow(C x, C y) {
#if C_KIND == KIND_INT
    if (y < 0) return x == 1 ? (C)1 : (x == -1 ? ((y & 1) ? (C)-1 : (C)1) : (C)0);
#endif
    UC r = 1, base = (UC)x, k = (UC)y;
    while (k) {
        if (k & 1) r = (UC)(r * base);
        base = (UC)(base * base);
        k >>= 1;
    }
    return (C)r;
}
/* NumPy's integer // and %: division by 0 gives 0; x // -1 is a wrapping negation (a real
 * division would trap on INT_MIN / -1); rounding is toward -inf, % takes the divisor's sign. */
#if C_KIND == KIND_INT
inline C f_floor_divide(C x, C y) {
    if (y == 0) return 0;
    if (y == -1) return (C)(-(UC)x);
    C q = x / y;
    return (x % y != 0 && ((x < 0) != (y < 0))) ? (C)(q - 1) : q;
}
inline C f_remainder(C x, C y) {
    if (y == 0 || y == -1) return 0;
    C r = x % y;
    return (r != 0 && ((r < 0) != (y < 0))) ? (C)(r + y) : r;
}
/* Shifts past the width give 0 (or -1 for a negative x shifted right), as in NumPy. */
inline C f_left_shift(C x, C y) { return (y >= 0 && y < C_BITS) ? (C)((UC)x << y) : (C)0; }
inline C f_right_shift(C x, C y) { return (y >= 0 && y < C_BITS) ? (C)(x >> y) : (C)(x < 0 ? -1 : 0); }
#else
inline C f_floor_divide(C x, C y) { return y == 0 ? (C)0 : (C)(x / y); }
inline C f_remainder(C x, C y) { return y == 0 ? (C)0 : (C)(x % y); }
inline C f_left_shift(C x, C y) { return y < C_BITS ? (C)(x << y) : (C)0; }
inline C f_right_shift(C x, C y) { return y < C_BITS ? (C)(x >> y) : (C)0; }
#endif
BIN(subtract, C, f_subtract)
BIN(pow, C, f_pow)
BIN(floor_divide, C, f_floor_divide)
BIN(remainder, C, f_remainder)
BIN(bitwise_left_shift, C, f_left_shift)
BIN(bitwise_right_shift, C, f_right_shift)
#endif

#if C_KIND != KIND_FLOAT /* bitwise ops: integers and bools */
inline C f_bitwise_and(C x, C y) { return x & y; }
inline C f_bitwise_or(C x, C y) { return x | y; }
inline C f_bitwise_xor(C x, C y) { return x ^ y; }
BIN(bitwise_and, C, f_bitwise_and)
BIN(bitwise_or, C, f_bitwise_or)
BIN(bitwise_xor, C, f_bitwise_xor)
#endif

/* ---------------------------------------------------------------- floating point */
#if C_KIND == KIND_FLOAT
inline C f_subtract(C x, C y) { return x - y; }
inline C f_divide(C x, C y) { return x / y; }
inline C f_copysign(C x, C y) { return copysign(x, y); }
inline C f_nextafter(C x, C y) { return nextafter(x, y); }
/* NumPy's npy_logaddexp: equal inputs (infinities included) give x + log 2. */
inline C f_logaddexp(C x, C y) {
    if (x == y) return x + K(0.69314718055994530942);
    C d = x - y;
    if (d > 0) return x + log1p(exp(-d));
    if (d <= 0) return y + log1p(exp(d));
    return d; /* NaN */
}
/* NumPy's npy_divmod: fmod, then the quotient snapped to an integer and the remainder given
 * the divisor's sign. Returns the floored quotient and stores the remainder. */
inline C divmod(C x, C y, C* rem) {
    C mod = fmod(x, y);
    if (y == 0) {
        *rem = mod;
        return x / y;
    }
    C div = (x - mod) / y;
    if (mod != 0) {
        if ((y < 0) != (mod < 0)) {
            mod += y;
            div -= K(1.0);
        }
    } else {
        mod = copysign(K(0.0), y);
    }
    C floordiv;
    if (div != 0) {
        floordiv = floor(div);
        if (div - floordiv > K(0.5)) floordiv += K(1.0);
    } else {
        floordiv = copysign(K(0.0), x / y);
    }
    *rem = mod;
    return floordiv;
}
inline C f_floor_divide(C x, C y) { C r; return divmod(x, y, &r); }
inline C f_remainder(C x, C y) { C r; divmod(x, y, &r); return r; }
/* The activations' gradients, in the cpu reference's order of operations. */
inline C f_sigmoid_backward(C g, C y) { return (K(1.0) - y) * y * g; }
inline C f_gelu_backward(C g, C x) {
    C cdf = K(0.5) * (K(1.0) + erf(x * K(0.70710678118654752440)));
    return (cdf + x * exp(K(-0.5) * x * x) * K(0.39894228040143267794)) * g;
}
/* 0.5 (1 + t) + 0.5 x (1 - t^2) u' with t = tanh(u), written with p = (1 + t) / 2 and
 * q = (1 - t) / 2 as logistic functions of 2u: accurate where tanh saturates (see gelu). */
inline C f_gelu_tanh_backward(C g, C x) {
    C x2 = x * x;
    C u = K(0.79788456080286535588) * x * (K(1.0) + K(0.044715) * x2);
    C du = K(0.79788456080286535588) * (K(1.0) + K(3.0) * K(0.044715) * x2);
    C p = K(1.0) / (K(1.0) + exp(K(-2.0) * u)), q = K(1.0) / (K(1.0) + exp(K(2.0) * u));
    return (p + K(2.0) * x * p * q * du) * g;
}
BIN(subtract, C, f_subtract)
BIN(divide, C, f_divide)
BIN_VEC(pow, pow)
BIN_VEC(atan2, atan2)
BIN_VEC(hypot, hypot)
BIN(copysign, C, f_copysign)
BIN(nextafter, C, f_nextafter)
BIN(logaddexp, C, f_logaddexp)
BIN(floor_divide, C, f_floor_divide)
BIN(remainder, C, f_remainder)
BIN_CONTIGUOUS(sigmoid_backward, C, f_sigmoid_backward)
BIN_CONTIGUOUS(gelu_backward, C, f_gelu_backward)
BIN_CONTIGUOUS(gelu_tanh_backward, C, f_gelu_tanh_backward)
#endif

/* ---------------------------------------------------------------- where(cond, x, y) */
/* cond is a bool tensor; x and y are tensors (TA, TB) or scalars (C). Kernels are named by the
 * layouts of (cond, x, y): where_ttt, where_ttk, where_tkt, where_tkk and where_v.. likewise. */
#define WSEL(c, x, y) ((c) ? (x) : (y))
#define WHERE_T(SUFFIX, XDECL, YDECL, XLOAD, YLOAD)                                                 \
    __kernel void where_t##SUFFIX(__global C* restrict out, __global const uchar* restrict c,       \
                                long co, XDECL, YDECL, long n, long chunk) {                        \
        EW_RANGE                                                                                    \
        c += co;                                                                                    \
        for (long i = s; i < e; ++i) out[i] = WSEL(c[i], XLOAD, YLOAD);                             \
    }
#define WHERE_V(SUFFIX, XDECL, YDECL, XS, YS, XO, YO, XLOAD, YLOAD)                                 \
    __kernel void where_v##SUFFIX(__global C* restrict out, __global const uchar* restrict c,       \
                                long co, long8 cs, XDECL, YDECL, long8 shape, int ndim, long n,     \
                                long chunk) {                                                       \
        EW_STRIDED(cs, XS, YS, co, XO, YO, out[i + k] = WSEL(c[o0 + k * in0], XLOAD, YLOAD);)       \
    }
#define XT __global const TA* restrict a, long ao
#define YT __global const TB* restrict b, long bo
#define XV __global const TA* restrict a, long ao, long8 as
#define YV __global const TB* restrict b, long bo, long8 bs
WHERE_T(tt, XT, YT, (C)a[ao + i], (C)b[bo + i])
WHERE_T(tk, XT, C y, (C)a[ao + i], y)
WHERE_T(kt, C x, YT, x, (C)b[bo + i])
WHERE_T(kk, C x, C y, x, y)
WHERE_V(vv, XV, YV, as, bs, ao, bo, (C)a[o1 + k * in1], (C)b[o2 + k * in2])
WHERE_V(vk, XV, C y, as, EW_NO_STRIDES, ao, 0, (C)a[o1 + k * in1], y)
WHERE_V(kv, C x, YV, EW_NO_STRIDES, bs, 0, bo, x, (C)b[o2 + k * in2])
WHERE_V(kk, C x, C y, EW_NO_STRIDES, EW_NO_STRIDES, 0, 0, x, y)
