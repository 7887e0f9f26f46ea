/* norm_partial: one launch over every tensor of a device (clip_grad_norm's global norm).
 *
 *   partials[w] = COMB over block w's chunk of MAP(x)
 *
 * with MAP(x) = x*x (MODE 0), |x| (MODE 1, COMB max, NaN propagating) or |x|^p (MODE 2), COMB
 * a sum otherwise. The tensors come as a table of int64 in `meta` (uploaded once per distinct
 * table and cached by the launcher, backends/cuda_ops/global_norm.py):
 *   meta[0 .. count)            each tensor's data pointer (contiguous, element type T)
 *   meta[count .. 2 count)      each tensor's number of elements
 *   meta[2 count .. 3 count)    the running count of chunks: tensor i owns blocks ends[i-1] .. ends[i]-1
 * Every chunk of `chunk` elements lies inside one tensor (its last one may be shorter). Each
 * block reduces its chunk (threads stride through it, then warp shuffles and shared memory);
 * the launcher combines the partials with reduce.cu, so k tensors cost two launches, not k.
 *
 * Build defines: DTYPE (float or double), MODE (0, 1 or 2).
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float or -DDTYPE=double"
#endif
typedef DTYPE T;

#if MODE == 0
__device__ __forceinline__ T map_value(T v, T) { return v * v; }
__device__ __forceinline__ T comb(T a, T b) { return a + b; }
#elif MODE == 1
__device__ __forceinline__ T map_value(T v, T) { return fabs(v); }
__device__ __forceinline__ T comb(T a, T b) { return tc_max_nan(a, b); }
#elif MODE == 2
__device__ __forceinline__ T map_value(T v, T p) { return pow(fabs(v), p); }
__device__ __forceinline__ T comb(T a, T b) { return a + b; }
#else
#error "build with -DMODE=0 (sum of squares), 1 (max |x|) or 2 (sum |x|^p)"
#endif

/* 0 is the identity of both: a sum, and the max of magnitudes. */
__device__ __forceinline__ T warp_reduce(T v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v = comb(v, __shfl_down_sync(0xffffffffu, v, offset));
    return v;
}

/* blockDim.x a multiple of 32; the result is in thread 0. */
__device__ __forceinline__ T block_reduce(T v) {
    __shared__ T partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_reduce(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? partial[lane] : (T)0;
        v = warp_reduce(v);
    }
    return v;
}

extern "C" __global__ void norm_partial_chunks(T* __restrict__ partials, const i64* __restrict__ meta, int count,
                                               i64 chunk, T p) {
    const i64 w = blockIdx.x;
    const i64* sizes = meta + count;
    const i64* ends = meta + 2 * count;
    int lo = 0, hi = count - 1;  /* the first tensor whose chunks end after w */
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (ends[mid] > w) hi = mid; else lo = mid + 1;
    }
    const T* __restrict__ x = reinterpret_cast<const T*>(meta[lo]);
    const i64 start = (w - (lo ? ends[lo - 1] : 0)) * chunk;
    const i64 left = sizes[lo] - start;
    const i64 n = left < chunk ? left : chunk;
    T acc = (T)0;
    for (i64 k = threadIdx.x; k < n; k += blockDim.x) acc = comb(acc, map_value(x[start + k], p));
    acc = block_reduce(acc);
    if (threadIdx.x == 0) partials[w] = acc;
}
