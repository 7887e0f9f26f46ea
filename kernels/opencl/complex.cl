/* Complex kernels: elementwise arithmetic, parts, abs, and a batched matmul.
 *
 * One program per precision, built with -DR=float (complex64) or -DR=double (complex128).
 * A complex number is the pair CT = R2 (cfloat = float2, cdouble = double2): .x the real
 * part, .y the imaginary part, the memory layout of NumPy's complex64/complex128.
 *
 * The elementwise kernels follow the launch conventions of elementwise_binary.cl (layouts
 * t/k/v, `run` in backends/opencl_ops/elementwise_launch.py), so they share its launcher.
 */
#include "elementwise_loops.cl"

/* No fused multiply-adds but the explicit ones of cx_mul: the compiler's own contractions
 * would round differently from NumPy and, with infinities, give NaN where NumPy gives inf. */
#pragma OPENCL FP_CONTRACT OFF

#define CX_CAT(a, b) CX_CAT_(a, b)
#define CX_CAT_(a, b) a##b
#define CT CX_CAT(R, 2) /* float2 or double2: a macro, so kernels report the vector type's name */

inline CT cx_add(CT a, CT b) { return a + b; }
inline CT cx_sub(CT a, CT b) { return a - b; }
inline CT cx_neg(CT a) { return -a; }
inline CT cx_pos(CT a) { return a; }
inline CT cx_conj(CT a) { return (CT)(a.x, -a.y); }
inline R cx_real(CT a) { return a.x; }
inline R cx_imag(CT a) { return a.y; }

/* |a| through hypot: no overflow for parts beyond sqrt(max), and inf whenever a part is inf
 * (even when the other is NaN), as C99 and NumPy say. */
inline R cx_abs(CT a) { return hypot(a.x, a.y); }

/* The textbook product with one fused multiply-add per part, as NumPy's vector loops compute
 * it (so cancellations round as there); no special handling of inf * 0, as in NumPy. */
inline CT cx_mul(CT a, CT b) { return (CT)(fma(a.x, b.x, -(a.y * b.y)), fma(a.x, b.y, a.y * b.x)); }

/* Smith's division: divide by the larger part of b first, so no intermediate squares b's
 * parts (|b|^2 overflows past sqrt(max) and underflows below sqrt(min) where the quotient
 * itself is representable). Division by 0 gives inf/NaN parts from a / 0 per part, as NumPy. */
inline CT cx_div(CT a, CT b) {
    const R br = fabs(b.x), bi = fabs(b.y);
    if (br >= bi) {
        if (br == 0 && bi == 0) return (CT)(a.x / br, a.y / br);
        const R ratio = b.y / b.x;
        const R scale = (R)1 / (b.x + b.y * ratio);
        return (CT)((a.x + a.y * ratio) * scale, (a.y - a.x * ratio) * scale);
    }
    const R ratio = b.x / b.y; /* also taken when a part of b is NaN: NaN results, as NumPy */
    const R scale = (R)1 / (b.y + b.x * ratio);
    return (CT)((a.x * ratio + a.y) * scale, (a.y * ratio - a.x) * scale);
}

/* Binary ops: NAME_tt, NAME_tk, NAME_kt (contiguous or a scalar argument) and NAME_vv,
 * NAME_vk, NAME_kv (strided views, broadcasting through zero strides). Both operands are CT. */
#define CX_BINARY(NAME, F)                                                                          \
    __kernel void NAME##_tt(__global CT* restrict out, __global const CT* restrict a, long ao,      \
                            __global const CT* restrict b, long bo, long n, long chunk) {           \
        EW_RANGE                                                                                    \
        a += ao; b += bo;                                                                           \
        for (long i = s; i < e; ++i) out[i] = F(a[i], b[i]);                                        \
    }                                                                                               \
    __kernel void NAME##_tk(__global CT* restrict out, __global const CT* restrict a, long ao,      \
                            CT y, long n, long chunk) {                                             \
        EW_RANGE                                                                                    \
        a += ao;                                                                                    \
        for (long i = s; i < e; ++i) out[i] = F(a[i], y);                                           \
    }                                                                                               \
    __kernel void NAME##_kt(__global CT* restrict out, CT x, __global const CT* restrict b,         \
                            long bo, long n, long chunk) {                                          \
        EW_RANGE                                                                                    \
        b += bo;                                                                                    \
        for (long i = s; i < e; ++i) out[i] = F(x, b[i]);                                           \
    }                                                                                               \
    __kernel void NAME##_vv(__global CT* restrict out, __global const CT* restrict a, long ao,      \
                            long8 as, __global const CT* restrict b, long bo, long8 bs,             \
                            long8 shape, int ndim, long n, long chunk) {                            \
        EW_STRIDED(as, bs, EW_NO_STRIDES, ao, bo, 0,                                                \
                   out[i + k] = F(a[o0 + k * in0], b[o1 + k * in1]);)                               \
    }                                                                                               \
    __kernel void NAME##_vk(__global CT* restrict out, __global const CT* restrict a, long ao,      \
                            long8 as, CT y, long8 shape, int ndim, long n, long chunk) {            \
        EW_STRIDED(as, EW_NO_STRIDES, EW_NO_STRIDES, ao, 0, 0, out[i + k] = F(a[o0 + k * in0], y);) \
    }                                                                                               \
    __kernel void NAME##_kv(__global CT* restrict out, CT x, __global const CT* restrict b,         \
                            long bo, long8 bs, long8 shape, int ndim, long n, long chunk) {         \
        EW_STRIDED(EW_NO_STRIDES, bs, EW_NO_STRIDES, 0, bo, 0, out[i + k] = F(x, b[o1 + k * in1]);) \
    }

CX_BINARY(cx_add, cx_add)
CX_BINARY(cx_subtract, cx_sub)
CX_BINARY(cx_multiply, cx_mul)
CX_BINARY(cx_divide, cx_div)

/* Unary ops (EW_UNARY: NAME_t contiguous, NAME_v strided). */
EW_UNARY(cx_negative, CT, CT, cx_neg)
EW_UNARY(cx_positive, CT, CT, cx_pos)
EW_UNARY(cx_conj, CT, CT, cx_conj)
EW_UNARY(cx_real, R, CT, cx_real)
EW_UNARY(cx_imag, R, CT, cx_imag)
EW_UNARY(cx_abs, R, CT, cx_abs)

/* Batched matmul: out[t, i, j] = sum over p of a[t, i, p] * b[t, p, j], out contiguous
 * (batch, m, n). a and b are read through strides (s0 rows, s1 columns, in elements) plus a
 * per-batch offset from the batch index over `bshape` (zero strides where broadcast).
 * Each work-item computes a CX_TILE x CX_TILE block of out in registers; no local memory
 * (PoCL runs barriers as separate loops). Work-items past the edges return at once. */
#define CX_TILE 4
__kernel void cx_matmul(__global CT* restrict out, __global const CT* restrict a, long ao, long as0,
                        long as1, long8 abst, __global const CT* restrict b, long bo, long bs0,
                        long bs1, long8 bbst, long8 bshape, int bdims, long m, long n, long k) {
    const long j0 = (long)get_global_id(0) * CX_TILE, i0 = (long)get_global_id(1) * CX_TILE;
    const long t = get_global_id(2);
    if (i0 >= m || j0 >= n) return;
    long dims[8], sa[8], sb[8];
    ew_unpack(bshape, dims); ew_unpack(abst, sa); ew_unpack(bbst, sb);
    long rem = t, pa = ao, pb = bo;
    for (int d = bdims - 1; d >= 0; --d) {
        const long idx = rem % dims[d];
        rem /= dims[d];
        pa += idx * sa[d];
        pb += idx * sb[d];
    }
    /* rows and columns past the edge repeat the last one: reads stay in bounds, writes skip them */
    long ra[CX_TILE], cb[CX_TILE];
    for (int r = 0; r < CX_TILE; ++r) ra[r] = pa + min(i0 + r, m - 1) * as0;
    for (int c = 0; c < CX_TILE; ++c) cb[c] = pb + min(j0 + c, n - 1) * bs1;
    CT acc[CX_TILE][CX_TILE];
    for (int r = 0; r < CX_TILE; ++r)
        for (int c = 0; c < CX_TILE; ++c) acc[r][c] = (CT)(0, 0);
    for (long p = 0; p < k; ++p) {
        CT av[CX_TILE], bv[CX_TILE];
        for (int r = 0; r < CX_TILE; ++r) av[r] = a[ra[r] + p * as1];
        for (int c = 0; c < CX_TILE; ++c) bv[c] = b[cb[c] + p * bs0];
        for (int r = 0; r < CX_TILE; ++r)
            for (int c = 0; c < CX_TILE; ++c) acc[r][c] += cx_mul(av[r], bv[c]);
    }
    __global CT* o = out + t * m * n;
    for (int r = 0; r < CX_TILE; ++r)
        for (int c = 0; c < CX_TILE; ++c)
            if (i0 + r < m && j0 + c < n) o[(i0 + r) * n + j0 + c] = acc[r][c];
}
