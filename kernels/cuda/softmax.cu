/* softmax / log_softmax along the last axis, their backward ops, and fused softmax
 * cross-entropy (forward and backward). Mirrors kernels/opencl/softmax.cl's row kernels.
 *
 * Build define: DTYPE (float or double). Rows are contiguous, R rows of length N; one block
 * per row (blockDim.x a multiple of 32, at most 1024), 1-D grid of R blocks. Row maxima and
 * sums are block all-reductions: __shfl_xor_sync within each warp, then across warps through
 * shared memory. The max propagates NaN (as x.max() in the cpu reference): a row with a NaN
 * becomes NaN. Cross-entropy reads labels of type int (_i32) or long long (_i64) through a
 * stride; a label outside [0, C) stores `code` in *err (the host raises at its next read, as
 * the OpenCL backend does) and gives a NaN loss.
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float or -DDTYPE=double"
#endif
typedef DTYPE T;

struct MaxOp {
    __device__ __forceinline__ static T ident() { return -tc_inf<T>(); }
    __device__ __forceinline__ static T apply(T a, T b) { return tc_max_nan(a, b); }
};
struct SumOp {
    __device__ __forceinline__ static T ident() { return (T)0; }
    __device__ __forceinline__ static T apply(T a, T b) { return a + b; }
};

template <typename Op> __device__ __forceinline__ T warp_allreduce(T v) {
#pragma unroll
    for (int mask = 16; mask > 0; mask >>= 1) v = Op::apply(v, __shfl_xor_sync(0xffffffffu, v, mask));
    return v;
}

/* Op over the whole block, returned to every thread. Safe to call repeatedly: `result` is
 * rewritten only after every thread has passed the first barrier of the next call. */
template <typename Op> __device__ __forceinline__ T block_allreduce(T v) {
    __shared__ T partial[32];
    __shared__ T result;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_allreduce<Op>(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? partial[lane] : Op::ident();
        v = warp_allreduce<Op>(v);
        if (lane == 0) result = v;
    }
    __syncthreads();
    return result;
}

__device__ __forceinline__ T row_max(const T* __restrict__ p, i64 N) {
    T m = MaxOp::ident();
    for (i64 n = threadIdx.x; n < N; n += blockDim.x) m = MaxOp::apply(m, p[n]);
    return block_allreduce<MaxOp>(m);
}

__device__ __forceinline__ T row_sum_exp(const T* __restrict__ p, i64 N, T m) {
    T s = (T)0;
    for (i64 n = threadIdx.x; n < N; n += blockDim.x) s += exp(p[n] - m);
    return block_allreduce<SumOp>(s);
}

/* out = exp(x - max) / sum(exp(x - max)), row by row. */
extern "C" __global__ void softmax_rows(T* __restrict__ out, const T* __restrict__ x, i64 N) {
    const T* p = x + (i64)blockIdx.x * N;
    T* o = out + (i64)blockIdx.x * N;
    const T m = row_max(p, N);
    const T s = row_sum_exp(p, N, m);
    for (i64 n = threadIdx.x; n < N; n += blockDim.x) o[n] = exp(p[n] - m) / s;
}

/* out = (x - max) - log(sum(exp(x - max))), row by row. */
extern "C" __global__ void log_softmax_rows(T* __restrict__ out, const T* __restrict__ x, i64 N) {
    const T* p = x + (i64)blockIdx.x * N;
    T* o = out + (i64)blockIdx.x * N;
    const T m = row_max(p, N);
    const T ls = log(row_sum_exp(p, N, m));
    for (i64 n = threadIdx.x; n < N; n += blockDim.x) o[n] = (p[n] - m) - ls;
}

/* softmax_backward: out = g*y - y*sum(g*y), from softmax's output y. */
extern "C" __global__ void softmax_backward_rows(T* __restrict__ out, const T* __restrict__ g,
                                                 const T* __restrict__ y, i64 N) {
    const i64 base = (i64)blockIdx.x * N;
    T s = (T)0;
    for (i64 n = threadIdx.x; n < N; n += blockDim.x) s += g[base + n] * y[base + n];
    s = block_allreduce<SumOp>(s);
    for (i64 n = threadIdx.x; n < N; n += blockDim.x) {
        const T gy = g[base + n] * y[base + n];
        out[base + n] = gy - y[base + n] * s;
    }
}

/* log_softmax_backward: out = g - exp(y)*sum(g), from log_softmax's output y. */
extern "C" __global__ void log_softmax_backward_rows(T* __restrict__ out, const T* __restrict__ g,
                                                     const T* __restrict__ y, i64 N) {
    const i64 base = (i64)blockIdx.x * N;
    T s = (T)0;
    for (i64 n = threadIdx.x; n < N; n += blockDim.x) s += g[base + n];
    s = block_allreduce<SumOp>(s);
    for (i64 n = threadIdx.x; n < N; n += blockDim.x) out[base + n] = g[base + n] - exp(y[base + n]) * s;
}

/* Cross-entropy of row r of x (R, C): probs = softmax(x), losses[r] = log(sum exp(x - max)) -
 * (x[label] - max), as the cpu reference computes them. */
template <typename LT>
__device__ __forceinline__ void cross_entropy_row(T* __restrict__ probs, T* __restrict__ losses,
                                                  const T* __restrict__ x, const LT* __restrict__ labels,
                                                  i64 lstride, i64 C, int* __restrict__ err, int code) {
    const i64 r = blockIdx.x;
    const T* p = x + r * C;
    T* o = probs + r * C;
    const T m = row_max(p, C);
    const T s = row_sum_exp(p, C, m);
    for (i64 n = threadIdx.x; n < C; n += blockDim.x) o[n] = exp(p[n] - m) / s;
    if (threadIdx.x == 0) {
        const i64 label = (i64)labels[r * lstride];
        if (label < 0 || label >= C) {
            tc_report_error(err, code, r, label); /* the host names the label and its row */
            losses[r] = (T)0 / (T)0; /* NaN */
        } else {
            losses[r] = log(s) - (p[label] - m);
        }
    }
}

extern "C" __global__ void cross_entropy_rows_i32(T* __restrict__ probs, T* __restrict__ losses,
                                                  const T* __restrict__ x, const int* __restrict__ labels,
                                                  i64 lstride, i64 C, int* __restrict__ err, int code) {
    cross_entropy_row<int>(probs, losses, x, labels, lstride, C, err, code);
}

extern "C" __global__ void cross_entropy_rows_i64(T* __restrict__ probs, T* __restrict__ losses,
                                                  const T* __restrict__ x, const i64* __restrict__ labels,
                                                  i64 lstride, i64 C, int* __restrict__ err, int code) {
    cross_entropy_row<i64>(probs, losses, x, labels, lstride, C, err, code);
}

/* cross_entropy_backward: out[r, c] = (probs[r, c] - (c == label[r])) * (g[r * gstride] / div),
 * one thread per element (gstride 0 for the scalar gradient of "sum" and "mean"). */
template <typename LT>
__device__ __forceinline__ void cross_entropy_backward_elems(T* __restrict__ out, const T* __restrict__ probs,
                                                             const LT* __restrict__ labels, i64 lstride,
                                                             const T* __restrict__ g, i64 gstride, T div,
                                                             i64 C, i64 total) {
    TC_GRID_LOOP(i, total) {
        const i64 r = i / C, c = i % C;
        const T scale = g[r * gstride] / div;
        const T p = probs[i];
        out[i] = ((i64)labels[r * lstride] == c ? p - (T)1 : p) * scale;
    }
}

extern "C" __global__ void cross_entropy_backward_i32(T* __restrict__ out, const T* __restrict__ probs,
                                                      const int* __restrict__ labels, i64 lstride,
                                                      const T* __restrict__ g, i64 gstride, T div, i64 C,
                                                      i64 total) {
    cross_entropy_backward_elems<int>(out, probs, labels, lstride, g, gstride, div, C, total);
}

extern "C" __global__ void cross_entropy_backward_i64(T* __restrict__ out, const T* __restrict__ probs,
                                                      const i64* __restrict__ labels, i64 lstride,
                                                      const T* __restrict__ g, i64 gstride, T div, i64 C,
                                                      i64 total) {
    cross_entropy_backward_elems<i64>(out, probs, labels, lstride, g, gstride, div, C, total);
}
