/* Register-blocked matrix product for CPU-like OpenCL devices (PoCL), and its packing kernels.
 *
 * Build with -DT=<float|double> -DT_BITS=<32|64> -DVW=<16|8|4> (one SIMD register of T: 512 or
 * 256 bits), -DMR=<rows per tile: 8 with 512-bit registers, 6 with 256-bit ones>,
 * -DKBLOCK=<0, or products per register sum when K is long> and -DACT=<0; 1: relu applied
 * as the tile is stored, after the bias; 2: relu_backward's mask, each value times
 * (mask > 0), the mask read like C through its own strides, one matrix only; 3: gelu (erf);
 * 4: gelu's tanh form; 5: sigmoid; 6: tanh, each applied like relu; 7: a plain SGD step into
 * C, which then holds the parameter: C - rate * (A @ B) with rate = (T)lr[lr_off] (the host sets
 * accumulate), nothing written while the launching thread's error record `guard` is set>
 * (gemm only), and -DLRT=<the learning rate's type> with ACT 7.
 *
 * C (M x N) = A (M x K) @ B (K x N), batched over up to 8 broadcast batch dimensions.
 * - B, the "vector side", is packed beforehand into column panels of NR = 2 * VW columns:
 *   packed[panel][k][0..NR), zero-padded past N, so the inner loop reads it linearly (no
 *   power-of-two strides to thrash the cache) and needs no edge checks.
 * - A, the "broadcast side", is read in place through its strides: each element is
 *   broadcast to a vector, so any layout (transposed, sliced) costs the same.
 * - Each work-item accumulates an MR x NR tile in 2 * MR vector registers over all of K:
 *   no local memory and no barriers (PoCL splits a kernel at every barrier into separate
 *   work-item loops, which ruins a tiled kernel). A work-group is a column of row tiles
 *   sharing one B panel, so the panel stays in cache while the group runs.
 * - k runs as k1 * K2 + k2 with separate A strides, so A may be indexed by two dimensions
 *   (conv2d_backward_weight reduces over images and output pixels at once).
 */
#include "gemm.h"

#ifndef ACT
#define ACT 0
#endif
#ifndef LRT
#define LRT T /* the learning rate's type (ACT 7; the others take a dummy buffer) */
#endif
/* Literals of T (T_BITS: 32 for float, 64 for double). */
#if T_BITS == 64
#define K(x) x
#else
#define K(x) x##f
#endif
/* The epilogue, on a vector V of type VTYPE, with the formula of the activation's own kernel
 * (kernels/opencl/elementwise.cl), so that fused and separate kernels agree to rounding:
 * relu as f_relu (x <= 0 ? 0 : x: NaN passes, -0 is +0) and bit for bit; gelu as f_gelu;
 * its tanh form as f_gelu_tanh (x / (1 + exp(-2u)): exact where tanh saturates); sigmoid as
 * f_sigmoid (from exp(-|x|), which never overflows); tanh as the tanh builtin. */
#if ACT == 1
#define ACTIVATE(V, VTYPE) V = select(V, (VTYPE)0, V <= (VTYPE)0)
#elif ACT == 3
#define ACTIVATE(V, VTYPE) V = K(0.5) * (V) * (K(1.0) + erf((V) * K(0.70710678118654752440)))
#elif ACT == 4
#define ACTIVATE(V, VTYPE)                                                                  \
    {                                                                                       \
        VTYPE u_ = K(0.79788456080286535588) * (V) * (K(1.0) + K(0.044715) * (V) * (V));     \
        V = (V) / (K(1.0) + exp(K(-2.0) * u_));                                              \
    }
#elif ACT == 5
#define ACTIVATE(V, VTYPE)                                                                  \
    {                                                                                       \
        VTYPE z_ = exp(-fabs(V));                                                           \
        V = select(z_, (VTYPE)K(1.0), (V) >= (VTYPE)0) / (K(1.0) + z_);                     \
    }
#elif ACT == 6
#define ACTIVATE(V, VTYPE) V = tanh(V)
#else
#define ACTIVATE(V, VTYPE)
#endif
/* relu_backward's factor, as its kernel computes it: (y > 0 ? 1 : 0) * v, so 0 * inf is NaN. */
#define MASKED(y, v) (((y) > (T)0 ? (T)1 : (T)0) * (v))

#if MR == 4
#define ROWS(X) X(0) X(1) X(2) X(3)
#elif MR == 6
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#elif MR == 8
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else
#error "MR must be 4, 6 or 8"
#endif

/* Pack B (K x N, element strides sk, sn; batch offsets from bshape/bstrides) into panels:
 * out[batch][panel][k][NR]. One work-item per (k, panel, batch). */
__kernel void pack_panels(__global T* out, __global const T* b, long b_off, long sk, long sn,
                          int K, int N, long8 bshape, long8 bstrides, int bnd) {
    int k = get_global_id(0), p = get_global_id(1);
    long batch = get_global_id(2);
    if (k >= K) return;
    int panels = (N + NR - 1) / NR;
    __global T* o = out + ((batch * panels + p) * K + k) * NR;
    const __global T* src = b + b_off + strided_offset(batch, bshape, bstrides, bnd) + k * sk;
    int col0 = p * NR;
    if (sn == 1 && col0 + NR <= N) {  /* rows of B are contiguous: two vector copies */
        VSTORE(VLOAD(0, src + col0), 0, o);
        VSTORE(VLOAD(0, src + col0 + VW), 0, o + VW);
    } else {
        for (int j = 0; j < NR; ++j) {
            o[j] = col0 + j < N ? src[(col0 + j) * sn] : (T)0;
        }
    }
}

/* Pack B whose columns are contiguous (sk == 1: a transposed weight, x.T) into the same
 * panels: one work-item per VW rows k of one panel, a vector load down each column scattered
 * across the panel's rows. (Reading a row of such a B would touch NR cache lines a
 * power-of-two stride apart, which thrash.) */
#if VW == 16
#define SCATTER(v, o, j)                                                                      \
    o[0 * NR + j] = v.s0; o[1 * NR + j] = v.s1; o[2 * NR + j] = v.s2; o[3 * NR + j] = v.s3;     \
    o[4 * NR + j] = v.s4; o[5 * NR + j] = v.s5; o[6 * NR + j] = v.s6; o[7 * NR + j] = v.s7;     \
    o[8 * NR + j] = v.s8; o[9 * NR + j] = v.s9; o[10 * NR + j] = v.sa; o[11 * NR + j] = v.sb;   \
    o[12 * NR + j] = v.sc; o[13 * NR + j] = v.sd; o[14 * NR + j] = v.se; o[15 * NR + j] = v.sf;
#elif VW == 8
#define SCATTER(v, o, j)                                                                      \
    o[0 * NR + j] = v.s0; o[1 * NR + j] = v.s1; o[2 * NR + j] = v.s2; o[3 * NR + j] = v.s3;     \
    o[4 * NR + j] = v.s4; o[5 * NR + j] = v.s5; o[6 * NR + j] = v.s6; o[7 * NR + j] = v.s7;
#else
#define SCATTER(v, o, j)                                                                      \
    o[0 * NR + j] = v.s0; o[1 * NR + j] = v.s1; o[2 * NR + j] = v.s2; o[3 * NR + j] = v.s3;
#endif

__kernel void pack_panels_t(__global T* out, __global const T* b, long b_off, long sn,
                            int K, int N, long8 bshape, long8 bstrides, int bnd) {
    int k0 = get_global_id(0) * VW, p = get_global_id(1);
    long batch = get_global_id(2);
    if (k0 >= K) return;
    int panels = (N + NR - 1) / NR;
    __global T* o = out + ((batch * panels + p) * K + k0) * NR;
    const __global T* src = b + b_off + strided_offset(batch, bshape, bstrides, bnd) + k0;
    int col0 = p * NR, rows = min(VW, K - k0);
    for (int j = 0; j < NR; ++j) {
        if (col0 + j < N && rows == VW) {
            VT v = VLOAD(0, src + (col0 + j) * sn);
            SCATTER(v, o, j)
        } else {
            for (int t = 0; t < rows; ++t) {
                o[t * NR + j] = col0 + j < N ? src[(col0 + j) * sn + t] : (T)0;
            }
        }
    }
}

#define DECL(r)                                                                  \
    VT c##r##_0 = (VT)0, c##r##_1 = (VT)0;                                      \
    const __global T* a##r = A + min(row0 + r, M - 1) * a_sm;
#define FMA(r)                                                                   \
    {                                                                            \
        VT av = (VT)(a##r[k2 * a_sk2]);                                          \
        c##r##_0 = fma(av, b0, c##r##_0);                                        \
        c##r##_1 = fma(av, b1, c##r##_1);                                        \
    }
#define NEXT_K1(r) a##r += a_sk1;
#define FOLD(r)                                                                  \
    VSTORE(VLOAD(0, part + r * NR) + c##r##_0, 0, part + r * NR);                \
    VSTORE(VLOAD(0, part + r * NR + VW) + c##r##_1, 0, part + r * NR + VW);      \
    c##r##_0 = (VT)0;                                                            \
    c##r##_1 = (VT)0;
#define UNFOLD(r)                                                                \
    c##r##_0 = VLOAD(0, part + r * NR);                                          \
    c##r##_1 = VLOAD(0, part + r * NR + VW);
#define SPILL(r)                                                                 \
    VSTORE(c##r##_0, 0, t + r * NR);                                             \
    VSTORE(c##r##_1, 0, t + r * NR + VW);
#define T8 CAT(T, 8)
#define STORE(r)                                                                 \
    if (row0 + r < M) {                                                          \
        store_row(c##r##_0, c##r##_1, C + (row0 + r) * c_sm, c_sn, c_so, split,  \
                  col0, N,                                                       \
                  bias, (row0 + r) * bias_sm, bias_sn, has_bias, accumulate,     \
                  mask + (row0 + r) * mask_sm, mask_sn);                         \
    }

/* Write one tile row (NR values from column col0), adding the bias if there is one, and
 * adding to what C holds if accumulating (a reduction split into several launches).
 * Column col of C is at (col / split) * c_so + (col % split) * c_sn: conv2d runs the
 * pixels of several images as one row of columns, each image's block c_so apart. */
inline void store_row(VT v0, VT v1, __global T* c, long c_sn, long c_so, int split, int col0, int N,
                      __global const T* bias, long b_row, long bias_sn, int has_bias, int accumulate,
                      __global const T* mrow, long mask_sn) {
    int full = col0 + NR <= N;
    if (has_bias && bias_sn == 0) {  /* one bias per row (conv2d, transposed linear) */
        VT b = (VT)(bias[b_row]);
        v0 += b;
        v1 += b;
    } else if (has_bias && bias_sn == 1 && full) {  /* a row vector of biases (linear) */
        v0 += VLOAD(0, bias + b_row + col0);
        v1 += VLOAD(0, bias + b_row + col0 + VW);
    } else if (has_bias) {
        T t[NR];
        VSTORE(v0, 0, t);
        VSTORE(v1, 0, t + VW);
        for (int j = 0; j < NR && col0 + j < N; ++j) {
            t[j] += bias[b_row + (col0 + j) * bias_sn];
        }
        v0 = VLOAD(0, t);
        v1 = VLOAD(0, t + VW);
    }
    ACTIVATE(v0, VT);  /* never with accumulate (matmul.py): it applies to the finished sum */
    ACTIVATE(v1, VT);
#if ACT == 2
    {
        T t[NR];
        VSTORE(v0, 0, t);
        VSTORE(v1, 0, t + VW);
        for (int j = 0; j < NR && col0 + j < N; ++j) t[j] = MASKED(mrow[(col0 + j) * mask_sn], t[j]);
        v0 = VLOAD(0, t);
        v1 = VLOAD(0, t + VW);
    }
#endif
    int block = col0 / split, first = col0 - block * split;
    if (c_sn == 1 && full && first + NR <= split) {
        __global T* d = c + block * c_so + first;
        if (accumulate) {
            v0 += VLOAD(0, d);
            v1 += VLOAD(0, d + VW);
        }
        VSTORE(v0, 0, d);
        VSTORE(v1, 0, d + VW);
    } else {
        T t[NR];
        VSTORE(v0, 0, t);
        VSTORE(v1, 0, t + VW);
        __global T* d = c + block * c_so + first * c_sn;
        for (int j = 0; j < NR && col0 + j < N; ++j) {  /* no division per element: it showed */
            *d = accumulate ? *d + t[j] : t[j];
            if (++first == split) {
                first = 0;
                d = c + ++block * c_so;
            } else {
                d += c_sn;
            }
        }
    }
}

/* C[batch] = A[batch] @ unpack(Bp[batch]) (+ bias). Global size: (row tiles rounded up to the
 * work-group size, panels, batch). K = K1 * K2; A's element (m, k1 * K2 + k2) is at
 * a_off + m * a_sm + k1 * a_sk1 + k2 * a_sk2 (plus its batch offset). Packed panels are b_ps
 * elements apart: K * NR, or more where the batch splits a longer K into slices of each
 * panel (conv2d's weight gradient). With accumulate set, the product is added to C. */
__kernel void gemm(__global const T* A, long a_off, long a_sm, long a_sk1, long a_sk2,
                   __global const T* Bp, long b_ps, __global T* C, long c_off, long c_sm, long c_sn, long c_so, int split,
                   __global const T* bias, long bias_off, long bias_sm, long bias_sn, int has_bias,
                   int accumulate, int M, int N, int K1, int K2,
                   long8 bshape, int bnd, long8 a_bs, long8 b_bs, long8 c_bs, long8 bias_bs,
                   __global const T* mask, long mask_off, long mask_sm, long mask_sn,
                   __global const LRT* lr, long lr_off, __global const int* guard) {
    int row0 = get_global_id(0) * MR;
    int col0 = get_global_id(1) * NR;
    long batch = get_global_id(2);
    if (row0 >= M) return;
#if ACT == 7
    if (GUARDED(guard)) return;  /* an earlier kernel of this thread found bad input: no update */
    const T rate = (T)lr[lr_off];  /* rounded to T, as sgd_step rounds it */
#endif
    if (bnd) {
        A += strided_offset(batch, bshape, a_bs, bnd);
        Bp += strided_offset(batch, bshape, b_bs, bnd);
        C += strided_offset(batch, bshape, c_bs, bnd);
        bias += has_bias ? strided_offset(batch, bshape, bias_bs, bnd) : 0;
    }
    A += a_off;
    C += c_off;
    bias += bias_off;
    mask += mask_off;
    const __global T* bp = Bp + (long)get_global_id(1) * b_ps;
    ROWS(DECL)
#if KBLOCK
    /* Built with KBLOCK for a long K (see matmul.py): the registers sum at most KBLOCK
     * products, and each block's sum is then added to `part`. One running float32 sum over
     * all of K loses accuracy as K grows (conv2d's weight gradient sums a million products);
     * blocked, the error grows with KBLOCK + K / KBLOCK instead of K, as in BLAS. */
    T part[MR * NR];
    for (int j = 0; j < MR * NR; ++j) part[j] = (T)0;
    int kc = 0;
    for (int k1 = 0; k1 < K1; ++k1) {
        for (int k0 = 0; k0 < K2; k0 += KBLOCK) {  /* the inner loop stays branch-free */
            int end = min(K2, k0 + KBLOCK);
            for (int k2 = k0; k2 < end; ++k2) {
                VT b0 = VLOAD(0, bp);
                VT b1 = VLOAD(0, bp + VW);
                bp += NR;
                ROWS(FMA)
            }
            kc += end - k0;
            if (kc >= KBLOCK) {
                kc = 0;
                ROWS(FOLD)
            }
        }
        ROWS(NEXT_K1)
    }
    ROWS(FOLD)
    ROWS(UNFOLD)
#else
    for (int k1 = 0; k1 < K1; ++k1) {
        for (int k2 = 0; k2 < K2; ++k2) {
            VT b0 = VLOAD(0, bp);
            VT b1 = VLOAD(0, bp + VW);
            bp += NR;
            ROWS(FMA)
        }
        ROWS(NEXT_K1)
    }
#endif
#if ACT == 7
    /* -rate * acc, added to C by the store (accumulate): C - rate * acc rounded as sgd_step
     * rounds param - rate * grad (a product, then a sum: separate statements, not contracted) */
#define SCALE(r) c##r##_0 *= -rate; c##r##_1 *= -rate;
    ROWS(SCALE)
#endif
#if MR == 8
    /* C written through transposed strides (the GEMM ran as C.T = B.T @ A.T): a column of the
     * tile is 8 consecutive elements of C, stored as one vector. Element by element, the
     * stores hit NR lines a row stride apart (often a power of two, aliasing in L1): 15% of
     * the MLP's first layer. (The 6-row tile of 256-bit CPUs has no such path: written column
     * by column it was no faster, measured on an AVX2 CPU.) */
    if (c_sm == 1 && c_sn != 1 && row0 + MR <= M && col0 + NR <= N && split >= N && (!has_bias || bias_sn == 0)) {
        T t[MR * NR];
        ROWS(SPILL)
        T8 b = has_bias ? (T8)(bias[row0 * bias_sm], bias[(row0 + 1) * bias_sm], bias[(row0 + 2) * bias_sm],
                               bias[(row0 + 3) * bias_sm], bias[(row0 + 4) * bias_sm], bias[(row0 + 5) * bias_sm],
                               bias[(row0 + 6) * bias_sm], bias[(row0 + 7) * bias_sm]) : (T8)0;
        __global T* d = C + col0 * c_sn + row0;
        for (int j = 0; j < NR; ++j, d += c_sn) {
            T8 v = (T8)(t[j], t[NR + j], t[2 * NR + j], t[3 * NR + j], t[4 * NR + j], t[5 * NR + j],
                        t[6 * NR + j], t[7 * NR + j]);
            if (has_bias) v += b;  /* not + 0 without one: that turns -0.0 into +0.0 */
            ACTIVATE(v, T8);
#if ACT == 2
            {
                __global const T* y = mask + row0 * mask_sm + (col0 + j) * mask_sn;
                v = (T8)(MASKED(y[0], v.s0), MASKED(y[mask_sm], v.s1), MASKED(y[2 * mask_sm], v.s2),
                         MASKED(y[3 * mask_sm], v.s3), MASKED(y[4 * mask_sm], v.s4), MASKED(y[5 * mask_sm], v.s5),
                         MASKED(y[6 * mask_sm], v.s6), MASKED(y[7 * mask_sm], v.s7));
            }
#endif
            vstore8(accumulate ? v + vload8(0, d) : v, 0, d);
        }
        return;
    }
#endif
    ROWS(STORE)
}
