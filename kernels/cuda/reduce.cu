/* Reductions of a contiguous (A, N, B) array over its middle axis:
 *   out[a, b] = COMB over n of x[(a * N + n) * B + b]
 * with warp shuffles (__shfl_down_sync) inside each warp. Mirrors kernels/opencl/reduce.cl:
 * each block (rows) or thread (columns) reduces one chunk of N into a partial, and the
 * launcher (backends/cuda_ops/reduce.py) runs the same kernels again over the partials until
 * one per output is left; the last pass may divide by `div` (mean).
 *
 * Build defines: DTYPE (float or double; it is also the accumulator, as NumPy accumulates a
 * float sum in its own type), COMB (0 sum, 2 max, 3 min: NaN propagates, as in NumPy).
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float or -DDTYPE=double"
#endif
typedef DTYPE T;

#if COMB == 0
#define IDENT ((T)0)
__device__ __forceinline__ T comb(T a, T b) { return a + b; }
#elif COMB == 2
#define IDENT (-tc_inf<T>())
__device__ __forceinline__ T comb(T a, T b) { return tc_max_nan(a, b); }
#elif COMB == 3
#define IDENT (tc_inf<T>())
__device__ __forceinline__ T comb(T a, T b) { return tc_min_nan(a, b); }
#else
#error "build with -DCOMB=0 (sum), 2 (max) or 3 (min)"
#endif

/* The COMB of v over the 32 lanes of a warp, in lane 0 (a tree: pairwise for sums). */
__device__ __forceinline__ T warp_reduce(T v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = comb(v, __shfl_down_sync(0xffffffffu, v, offset));
    }
    return v;
}

/* The COMB of v over the block (blockDim.x a multiple of 32), in thread 0. */
__device__ __forceinline__ T block_reduce(T v) {
    __shared__ T partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_reduce(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? partial[lane] : IDENT;
        v = warp_reduce(v);
    }
    return v;
}

__device__ __forceinline__ T finish_value(T v, int finish, T div) { return finish ? v / div : v; }

/* B == 1, long rows: one block per (row a, chunk part), 1-D grid of A * parts blocks;
 * out[a * parts + part] = COMB of x[a * N + n] over n in [part * chunk, (part + 1) * chunk). */
extern "C" __global__ void reduce_rows(T* __restrict__ out, const T* __restrict__ x, i64 N, i64 chunk,
                                       i64 parts, int finish, T div) {
    const i64 block = blockIdx.x;
    const i64 a = block / parts, part = block % parts;
    const T* row = x + a * N;
    const i64 end = min(part * chunk + chunk, N);
    T acc = IDENT;
    for (i64 n = part * chunk + threadIdx.x; n < end; n += blockDim.x) acc = comb(acc, row[n]);
    acc = block_reduce(acc);
    if (threadIdx.x == 0) out[block] = finish_value(acc, finish, div);
}

/* B == 1, short rows (N <= 1024): one warp per row, rows in a grid-stride loop over A. */
extern "C" __global__ void reduce_rows_warp(T* __restrict__ out, const T* __restrict__ x, i64 N, i64 A,
                                            int finish, T div) {
    const int lane = threadIdx.x & 31;
    const i64 warps = ((i64)blockDim.x * gridDim.x) >> 5;
    for (i64 a = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5; a < A; a += warps) {
        const T* row = x + a * N;
        T acc = IDENT;
        for (i64 n = lane; n < N; n += 32) acc = comb(acc, row[n]);
        acc = warp_reduce(acc);
        if (lane == 0) out[a] = finish_value(acc, finish, div);
    }
}

/* B > 1: one thread per column b (consecutive threads read consecutive addresses), 1-D grid
 * of A * parts * ceil(B / blockDim.x) blocks; thread (a, part, b) reduces rows n of its chunk:
 * out[(a * parts + part) * B + b]. */
extern "C" __global__ void reduce_cols(T* __restrict__ out, const T* __restrict__ x, i64 N, i64 B, i64 chunk,
                                       i64 parts, int finish, T div) {
    const i64 col_blocks = (B + blockDim.x - 1) / blockDim.x;
    const i64 ap = blockIdx.x / col_blocks;
    const i64 b = (blockIdx.x % col_blocks) * blockDim.x + threadIdx.x;
    if (b >= B) return;
    const i64 a = ap / parts, part = ap % parts;
    const i64 end = min(part * chunk + chunk, N);
    const T* p = x + a * N * B + b;
    T acc = IDENT;
    for (i64 n = part * chunk; n < end; ++n) acc = comb(acc, p[n * B]);
    out[ap * B + b] = finish_value(acc, finish, div);
}
