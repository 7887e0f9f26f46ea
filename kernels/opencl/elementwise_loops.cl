/* Loop skeletons shared by the elementwise programs (included, never built on its own).
 *
 * Work split: each work-item handles `chunk` consecutive output elements [s, e), and work-groups
 * are launched with a local size of 1. Why:
 *  - an `if (i < n)` guard around a one-element body stops PoCL's work-group loop from being
 *    vectorized (add ran at half speed); a per-item loop with a runtime bound vectorizes as
 *    a plain C loop and handles any n (odd sizes, tails) in a single launch;
 *  - PoCL compiles a kernel once per local size (~30 ms each); a fixed local size means one
 *    compile per kernel, whatever the array size.
 * The output is always contiguous; inputs are either contiguous (pointer + element offset) or
 * strided views (offset + long8 strides over the output's long8 shape, 0 for broadcast dims).
 */
#ifndef TENSORCORE_ELEMENTWISE_LOOPS
#define TENSORCORE_ELEMENTWISE_LOOPS
#include "common.h"

/* Type kinds of the -D<X>_KIND defines. */
#define KIND_BOOL 0
#define KIND_INT 1
#define KIND_UINT 2
#define KIND_FLOAT 3

/* Bool results are stored as `cond ? ew_true : 0`, with ew_true read once per work-item through a
 * volatile load so the compiler cannot fold it to the constant 1. With the constant, LLVM turns
 * `(uchar)cond` over 8 lanes into a masked load of splat(1) from the kernel's constant pool; when
 * every mask is 0 (equal on distinct values, a comparison false everywhere) that page is never
 * touched, and each masked load of a not-present page takes a ~150 ns fault-suppression assist:
 * equal ran 160x slower than less. A broadcast register is masked instead. */
__constant uchar EW_TRUE = 1;
#define EW_RANGE                                                                                    \
    const long s = (long)get_global_id(0) * chunk;                                                  \
    const long e = min(s + chunk, n);                                                               \
    const uchar ew_true = *(volatile __constant uchar*)&EW_TRUE;                                    \
    (void)ew_true;
#define EW_BOOL(x) ((x) ? ew_true : (uchar)0)

inline void ew_unpack(long8 v, long* out) {
    out[0] = v.s0; out[1] = v.s1; out[2] = v.s2; out[3] = v.s3;
    out[4] = v.s4; out[5] = v.s5; out[6] = v.s6; out[7] = v.s7;
}

/* Strided loop over output elements [s, e) of a row-major `shape` (ndim >= 1): keeps the
 * element offsets of up to three operands (strides S0..S2, base offsets O0..O2) in step with
 * an odometer, so the index math (a division per dimension) is paid once per work-item, not
 * per element. BODY runs per element of an innermost run, with `k` the position in the run,
 * o0..o2 the run's starting offsets and in0..in2 the innermost strides. */
#define EW_STRIDED(S0, S1, S2, O0, O1, O2, BODY)                                                    \
    EW_RANGE                                                                                        \
    long dims[8], st0[8], st1[8], st2[8], idx[8];                                                   \
    ew_unpack(shape, dims); ew_unpack(S0, st0); ew_unpack(S1, st1); ew_unpack(S2, st2);             \
    long p0 = (O0), p1 = (O1), p2 = (O2), rem = s;                                                  \
    for (int d = ndim - 1; d >= 0; --d) {                                                           \
        idx[d] = rem % dims[d];                                                                     \
        rem /= dims[d];                                                                             \
        p0 += idx[d] * st0[d]; p1 += idx[d] * st1[d]; p2 += idx[d] * st2[d];                        \
    }                                                                                               \
    const int last = ndim - 1;                                                                      \
    const long inner = dims[last], in0 = st0[last], in1 = st1[last], in2 = st2[last];               \
    for (long i = s; i < e;) {                                                                      \
        const long run = min(e - i, inner - idx[last]);                                             \
        const long o0 = p0, o1 = p1, o2 = p2;                                                       \
        for (long k = 0; k < run; ++k) { BODY }                                                     \
        i += run; idx[last] += run;                                                                 \
        p0 += run * in0; p1 += run * in1; p2 += run * in2;                                          \
        if (idx[last] == inner) { /* carry into the outer dimensions */                             \
            idx[last] = 0; p0 -= inner * in0; p1 -= inner * in1; p2 -= inner * in2;                 \
            for (int d = last - 1; d >= 0; --d) {                                                   \
                p0 += st0[d]; p1 += st1[d]; p2 += st2[d];                                           \
                if (++idx[d] < dims[d]) break;                                                      \
                idx[d] = 0;                                                                         \
                p0 -= dims[d] * st0[d]; p1 -= dims[d] * st1[d]; p2 -= dims[d] * st2[d];             \
            }                                                                                       \
        }                                                                                           \
    }

#define EW_NO_STRIDES ((long8)(0))

/* One input of type TI, output RT = F(x): contiguous (_t) and strided (_v) kernels. */
#define EW_UNARY(NAME, RT, TI, F)                                                                   \
    __kernel void NAME##_t(__global RT* restrict out, __global const TI* restrict a, long ao,       \
                           long n, long chunk) {                                                    \
        EW_RANGE                                                                                    \
        a += ao;                                                                                    \
        for (long i = s; i < e; ++i) out[i] = F(a[i]);                                              \
    }                                                                                               \
    __kernel void NAME##_v(__global RT* restrict out, __global const TI* restrict a, long ao,       \
                           long8 as, long8 shape, int ndim, long n, long chunk) {                   \
        EW_STRIDED(as, EW_NO_STRIDES, EW_NO_STRIDES, ao, 0, 0, out[i + k] = F(a[o0 + k * in0]);)    \
    }

/* Like EW_UNARY, but the contiguous kernel runs VW-wide vectors (vloadVW / vstoreVW) through FV,
 * then a scalar tail through F; kernels NAME_T and NAME_V (names pasted by the caller, so a builtin
 * defined as a macro is not expanded in them). For math builtins (log, sin, pow, ...):
 * PoCL's loop vectorizer does not vectorize a loop calling them (a scalar SLEEF or libclc call per
 * element, 35-170x slower than negative), while their vector overloads are SLEEF's vector code. */
#define EW_UNARY_VEC(NAME_T, NAME_V, RT, TI, F, FV, VW)                                             \
    __kernel void NAME_T(__global RT* restrict out, __global const TI* restrict a, long ao,         \
                         long n, long chunk) {                                                      \
        EW_RANGE                                                                                    \
        a += ao;                                                                                    \
        long i = s;                                                                                 \
        for (; i + VW <= e; i += VW) EW_VSTORE(VW, FV(EW_VLOAD(VW, a + i)), out + i);               \
        for (; i < e; ++i) out[i] = F(a[i]);                                                        \
    }                                                                                               \
    __kernel void NAME_V(__global RT* restrict out, __global const TI* restrict a, long ao,         \
                         long8 as, long8 shape, int ndim, long n, long chunk) {                     \
        EW_STRIDED(as, EW_NO_STRIDES, EW_NO_STRIDES, ao, 0, 0, out[i + k] = F(a[o0 + k * in0]);)    \
    }
#define EW_VLOAD(VW, p) EW_VLOAD_(VW, p)
#define EW_VLOAD_(VW, p) vload##VW(0, p)
#define EW_VSTORE(VW, v, p) EW_VSTORE_(VW, v, p)
#define EW_VSTORE_(VW, v, p) vstore##VW(v, 0, p)

#endif
