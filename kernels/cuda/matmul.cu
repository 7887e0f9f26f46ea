/* GEMM: C[z] = A[z] @ B[z] (+ bias), shared-memory tiled and register-blocked, batched over
 * blockIdx.z. The CUDA counterpart of kernels/opencl/matmul.cl (which packs B instead: a
 * CPU has no shared memory worth the barriers).
 *
 * Build define: DTYPE (float: SGEMM; double). A is M x K, B is K x N, C is M x N, each read or
 * written through element strides (any layout: transposed views need no copy), batch z at
 * A + z * batch_a, B + z * batch_b, C + z * batch_c (0 broadcasts an operand). Column n of C
 * is at (n / csplit) * scsplit + (n % csplit) * scn: conv2d's columns are (image, pixel)
 * pairs that land in different images of its output (csplit = pixels per image); a plain
 * matrix passes csplit = N, so n / csplit is 0. `flags`: bit 0 (HAS_BIAS) adds
 * bias[m * sbias_m + n * sbias_n] (batch z at bias + z * batch_bias) as C is stored: a row
 * broadcast for linear's bias, a column broadcast for conv2d's; bit 1 (ACCUMULATE) adds what
 * C holds (C += A @ B: conv2d's weight gradient summed over chunks of images); bit 2 (RELU)
 * applies relu to the finished value (x <= 0 ? 0 : x, as the relu kernel: NaN passes, -0 is
 * +0): linear's epilogue, never with ACCUMULATE; bit 3 (RELU_MASK) multiplies the finished value
 * by (mask[m * smask_m + n * smask_n] > 0), as relu_backward does (0 * inf is NaN): the
 * backward's epilogue, for one matrix (no batch, no split); bits 4-7 (GELU, GELU_TANH, SIGMOID,
 * TANH) apply that activation to the finished value, like RELU, with the formula of its own
 * kernel in elementwise.cu (so fused and separate kernels agree to rounding). At most one of
 * bits 2-7 is set.
 *
 * Tiling: a block of 256 threads computes a 128 x 128 tile of C, stepping through K by 8.
 * Each step stages an 8 x 128 slice of A (transposed: As[k][m]) and of B (Bs[k][n]) in
 * shared memory, then each thread accumulates an 8 x 8 register block: rows tr + 16 i and
 * columns tc + 16 j (tr = tid / 16, tc = tid % 16), so a warp's shared reads of Bs are 16
 * consecutive words (no bank conflict) and of As two broadcast words, and its stores to C are
 * 16 consecutive elements per row. Loads pick the mapping whose global reads are coalesced
 * (along k when the operand is contiguous along k, else along m / n); rows of As and Bs are
 * padded by 4 so that either mapping stores to shared memory without bank conflicts.
 * Edges: out-of-range loads read 0 and out-of-range stores are skipped, so any M, N, K work.
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float or -DDTYPE=double"
#endif
typedef DTYPE T;

#define BM 128
#define BN 128
#define BK 8
#define TM 8
#define TN 8
#define THREADS 256 /* (BM / TM) * (BN / TN) */
#define PAD 4
#define HAS_BIAS 1
#define ACCUMULATE 2
#define RELU 4
#define RELU_MASK 8
#define GELU 16
#define GELU_TANH 32
#define SIGMOID 64
#define TANH 128
#define ACTIVATIONS (RELU | GELU | GELU_TANH | SIGMOID | TANH)
#define K(x) ((T)(x))

/* linear's and conv2d's epilogue: the activation `flags` names, as elementwise.cu computes it. */
__device__ __forceinline__ T activate(T v, int flags) {
    if (flags & RELU) return v <= K(0) ? K(0) : v; /* NaN passes, -0 is +0 */
    if (flags & GELU) return K(0.5) * v * (K(1) + erf(v * K(0.70710678118654752440)));
    if (flags & GELU_TANH) /* x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3) */
        return v / (K(1) + exp(K(-2) * K(0.79788456080286535588) * v * (K(1) + K(0.044715) * v * v)));
    if (flags & SIGMOID) { /* from exp(-|x|), which never overflows */
        const T z = exp(-fabs(v));
        return (v >= K(0) ? K(1) : z) / (K(1) + z);
    }
    return tanh(v);
}

extern "C" __global__ void __launch_bounds__(THREADS)
gemm(T* __restrict__ C, const T* __restrict__ A, const T* __restrict__ B, const T* __restrict__ bias,
     int M, int N, int K, i64 sam, i64 sak, i64 sbk, i64 sbn, i64 scm, i64 scn, int csplit, i64 scsplit,
     i64 sbias_m, i64 sbias_n, i64 batch_a, i64 batch_b, i64 batch_c, i64 batch_bias, int flags,
     const T* __restrict__ mask, i64 smask_m, i64 smask_n) {
    __shared__ T As[BK][BM + PAD];
    __shared__ T Bs[BK][BN + PAD];
    const int tid = threadIdx.x;
    const int tr = tid / (BN / TN), tc = tid % (BN / TN);
    const i64 z = blockIdx.z;
    A += z * batch_a;
    B += z * batch_b;
    C += z * batch_c;
    if (flags & HAS_BIAS) bias += z * batch_bias; /* without a bias, `bias` may be any pointer */
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) {
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = (T)0;
    }

    for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
        for (int l = 0; l < (BM * BK) / THREADS; ++l) {
            const int e = tid + l * THREADS;
            int mm, kk;
            if (sak == 1) { kk = e % BK; mm = e / BK; } /* rows of A contiguous: read along k */
            else { mm = e % BM; kk = e / BM; }          /* else along m (e.g. a transposed A) */
            const int gm = m0 + mm, gk = k0 + kk;
            As[kk][mm] = (gm < M && gk < K) ? A[gm * sam + gk * sak] : (T)0;
        }
#pragma unroll
        for (int l = 0; l < (BN * BK) / THREADS; ++l) {
            const int e = tid + l * THREADS;
            int nn, kk;
            if (sbn == 1) { nn = e % BN; kk = e / BN; } /* rows of B contiguous: read along n */
            else { kk = e % BK; nn = e / BK; }          /* else along k (e.g. B = W.T in linear) */
            const int gn = n0 + nn, gk = k0 + kk;
            Bs[kk][nn] = (gn < N && gk < K) ? B[gk * sbk + gn * sbn] : (T)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T ra[TM], rb[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) ra[i] = As[kk][tr + (BM / TM) * i];
#pragma unroll
            for (int j = 0; j < TN; ++j) rb[j] = Bs[kk][tc + (BN / TN) * j];
#pragma unroll
            for (int i = 0; i < TM; ++i) {
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += ra[i] * rb[j];
            }
        }
        __syncthreads();
    }

    /* Each thread's 8 columns, with their offsets in C worked out once (a division each). */
    i64 coff[TN];
#pragma unroll
    for (int j = 0; j < TN; ++j) {
        const int n = n0 + tc + (BN / TN) * j;
        coff[j] = (i64)(n / csplit) * scsplit + (i64)(n % csplit) * scn;
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + tr + (BM / TM) * i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int n = n0 + tc + (BN / TN) * j;
            if (n >= N) continue;
            T v = acc[i][j];
            if (flags & HAS_BIAS) v += bias[m * sbias_m + n * sbias_n];
            T* at = C + m * scm + coff[j];
            if (flags & ACCUMULATE) v += *at;
            if (flags & ACTIVATIONS) v = activate(v, flags);
            if (flags & RELU_MASK) v = (mask[m * smask_m + n * smask_n] > (T)0 ? (T)1 : (T)0) * v;
            *at = v;
        }
    }
}
