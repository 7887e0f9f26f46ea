/* Indexing with index tensors: x[idx] gathers (getitem, take), their scatter-add gradients
 * (scatter_add), and the embedding lookup with its gradient. The CUDA counterpart of
 * kernels/opencl/movement.cl. Index values are checked here, on the device, not by a read on
 * the host first. A kernel that meets an index out of range reports its position and value
 * into the launching thread's error record `err` with `code` (tc_report_error; the host
 * raises DeviceError at the thread's next read or synchronize, as CUDA reports device
 * asserts: late) and uses a safe value instead: gathers write all bits set (NaN for floats)
 * and scatter-adds skip the element, so no kernel ever touches memory outside its arrays.
 *
 * An advanced key is reduced on the host (backends/cuda_ops/movement_index.py) to a base
 * offset, strides of x for the result's basic dimensions, and one `adv` array of int64
 * element offsets over the broadcast shape of the index tensors, built by adv_offsets from
 * each index tensor in turn. The gather and the scatter-add then walk the result's shape.
 *
 * No build defines: each kernel is instantiated per index type (suffix _i8 .. _u32, _i32,
 * _i64), per element width (_1 .. _8: gathers only move bytes) or per element type with an
 * atomic add (_f32, _f64, _i32, _i64), all in one module that NVRTC compiles once.
 */
#include "common.cuh"

/* --------------------------------------------------------------------------- adv offsets */

/* adv[i] (+)= wrap(idx[i]) * xstride over the broadcast index shape (adv contiguous; meta:
 * shape[ndim], idx strides[ndim], 0 where idx broadcasts). wrap: negative indices count from
 * the end, as in NumPy; anything still outside [0, axis_len) makes adv[i] TC_BAD_OFFSET (it
 * stays so as later index tensors accumulate), and each thread reports its first such index
 * (position i, value) once its loop is done. `accumulate` is 0 for the first index tensor of
 * a key, 1 after. */
template <typename IT>
__device__ __forceinline__ void adv_offsets(i64* __restrict__ adv, int accumulate, const IT* __restrict__ idx,
                                            const i64* __restrict__ meta, int ndim, i64 n, i64 axis_len,
                                            i64 xstride, int* __restrict__ err, int code) {
    i64 bad_at = -1, bad_value = 0;
    TC_GRID_LOOP(i, n) {
        const i64 raw = (i64)idx[tc_strided_offset(i, meta, meta + ndim, ndim)];
        const i64 v = raw < 0 ? raw + axis_len : raw;
        const bool bad = v < 0 || v >= axis_len;
        if (bad && bad_at < 0) {
            bad_at = i;
            bad_value = raw;
        }
        const i64 prev = accumulate ? adv[i] : 0;
        adv[i] = (bad || prev == TC_BAD_OFFSET) ? TC_BAD_OFFSET : prev + v * xstride;
    }
    if (bad_at >= 0) tc_report_error(err, code, bad_at, bad_value);
}

#define ADV_KERNEL(SUFFIX, IT)                                                                         \
    extern "C" __global__ void adv_offsets_##SUFFIX(i64* __restrict__ adv, int accumulate,             \
                                                    const IT* __restrict__ idx,                        \
                                                    const i64* __restrict__ meta, int ndim, i64 n,     \
                                                    i64 axis_len, i64 xstride, int* __restrict__ err,  \
                                                    int code) {                                        \
        adv_offsets<IT>(adv, accumulate, idx, meta, ndim, n, axis_len, xstride, err, code);            \
    }

/* uint64 is left out: its values above 2^63 would wrap to negative indices (the launcher
 * declines it and the op runs on the cpu). */
ADV_KERNEL(i8, signed char)
ADV_KERNEL(i16, short)
ADV_KERNEL(i32, int)
ADV_KERNEL(i64, i64)
ADV_KERNEL(u8, u8)
ADV_KERNEL(u16, u16)
ADV_KERNEL(u32, u32)

/* ---------------------------------------------------------------- gather and scatter-add */

/* out[i] = x[base + xoff(i) + adv[aoff(i)]] for the row-major elements i of the result
 * (out contiguous; meta: shape[ndim], x strides[ndim], adv strides[ndim], the adv strides 0
 * along the basic dimensions and the x strides 0 along the advanced ones). A bad offset (an
 * index out of range) gives all bits set: a NaN for floats, never a plausible value. */
template <typename W>
__device__ __forceinline__ void index_gather(W* __restrict__ out, const W* __restrict__ x, i64 base,
                                             const i64* __restrict__ adv, const i64* __restrict__ meta, int ndim,
                                             i64 n) {
    TC_GRID_LOOP(i, n) {
        i64 xo, ao;
        tc_strided_offset2(i, meta, meta + ndim, meta + 2 * ndim, ndim, &xo, &ao);
        const i64 a = adv[ao];
        out[i] = a == TC_BAD_OFFSET ? (W)~(W)0 : x[base + xo + a];
    }
}

#define GATHER_KERNEL(BYTES, W)                                                                        \
    extern "C" __global__ void index_gather_##BYTES(W* __restrict__ out, const W* __restrict__ x,      \
                                                    i64 base, const i64* __restrict__ adv,             \
                                                    const i64* __restrict__ meta, int ndim, i64 n) {   \
        index_gather<W>(out, x, base, adv, meta, ndim, n);                                             \
    }

GATHER_KERNEL(1, u8)
GATHER_KERNEL(2, u16)
GATHER_KERNEL(4, u32)
GATHER_KERNEL(8, u64)

/* Atomic adds, so that repeated indices accumulate (np.add.at). float and double have
 * hardware atomics (double from sm_60); int64 adds through the unsigned 64-bit atomic, which
 * gives the same bits in two's complement. The order of the adds is not fixed, so float
 * sums may differ from the cpu's sequential ones in the last bits. */
__device__ __forceinline__ void tc_atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void tc_atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void tc_atomic_add(int* p, int v) { atomicAdd(p, v); }
__device__ __forceinline__ void tc_atomic_add(i64* p, i64 v) { atomicAdd((u64*)p, (u64)v); }

/* x[base + xoff(i) + adv[aoff(i)]] += v[voff(i)] (meta: shape, x strides, adv strides,
 * v strides, each [ndim]; v strides 0 where the value broadcasts); bad offsets are skipped. */
template <typename T>
__device__ __forceinline__ void index_add(T* __restrict__ x, i64 base, const i64* __restrict__ adv,
                                          const T* __restrict__ v, const i64* __restrict__ meta, int ndim, i64 n) {
    TC_GRID_LOOP(i, n) {
        i64 xo = 0, ao = 0, vo = 0, rest = i;
        for (int d = ndim - 1; d >= 0; --d) { /* three offsets: one division per dimension */
            const i64 size = meta[d], c = rest % size;
            xo += c * meta[ndim + d];
            ao += c * meta[2 * ndim + d];
            vo += c * meta[3 * ndim + d];
            rest /= size;
        }
        const i64 a = adv[ao];
        if (a != TC_BAD_OFFSET) tc_atomic_add(x + base + xo + a, v[vo]);
    }
}

#define ADD_KERNEL(SUFFIX, T)                                                                          \
    extern "C" __global__ void index_add_##SUFFIX(T* __restrict__ x, i64 base, const i64* __restrict__ adv, \
                                                  const T* __restrict__ v, const i64* __restrict__ meta, \
                                                  int ndim, i64 n) {                                   \
        index_add<T>(x, base, adv, v, meta, ndim, n);                                                  \
    }

ADD_KERNEL(f32, float)
ADD_KERNEL(f64, double)
ADD_KERNEL(i32, int)
ADD_KERNEL(i64, i64)

/* ---------------------------------------------------------------------------- embedding */

/* out[r, d] = weight[idx[r], d] (out contiguous (R, D), idx contiguous (R,), weight read
 * through its strides). One thread per output element, so a warp reads 32 consecutive
 * elements of one weight row (rows are usually contiguous); the index is read once per
 * element, from L1 after the first. An index outside [0, rows) is reported (its position r in
 * the flattened indices, its value) and writes all bits set (NaN for floats). */
template <typename IT, typename W>
__device__ __forceinline__ void embedding_gather(W* __restrict__ out, const W* __restrict__ weight,
                                                 const IT* __restrict__ idx, i64 ws0, i64 ws1, i64 rows, i64 dim,
                                                 i64 n, int* __restrict__ err, int code) {
    TC_GRID_LOOP(i, n) {
        const i64 r = i / dim, d = i - r * dim;
        const i64 k = (i64)idx[r];
        if (k < 0 || k >= rows) {
            if (d == 0) tc_report_error(err, code, r, k);
            out[i] = (W)~(W)0;
        } else {
            out[i] = weight[k * ws0 + d * ws1];
        }
    }
}

/* grad[idx[r], d] += g[r, d] (grad contiguous (rows, D), zeroed by the launcher; g and idx
 * contiguous). Out-of-range indices are reported and skipped. */
template <typename IT, typename T>
__device__ __forceinline__ void embedding_add(T* __restrict__ grad, const T* __restrict__ g,
                                              const IT* __restrict__ idx, i64 rows, i64 dim, i64 n,
                                              int* __restrict__ err, int code) {
    TC_GRID_LOOP(i, n) {
        const i64 r = i / dim, d = i - r * dim;
        const i64 k = (i64)idx[r];
        if (k < 0 || k >= rows) {
            if (d == 0) tc_report_error(err, code, r, k);
        } else {
            tc_atomic_add(grad + k * dim + d, g[i]);
        }
    }
}

#define EMBEDDING_GATHER(ISUFFIX, IT, BYTES, W)                                                        \
    extern "C" __global__ void embedding_gather_##ISUFFIX##_##BYTES(                                   \
        W* __restrict__ out, const W* __restrict__ weight, const IT* __restrict__ idx, i64 ws0, i64 ws1, \
        i64 rows, i64 dim, i64 n, int* __restrict__ err, int code) {                                   \
        embedding_gather<IT, W>(out, weight, idx, ws0, ws1, rows, dim, n, err, code);                  \
    }

EMBEDDING_GATHER(i32, int, 1, u8)
EMBEDDING_GATHER(i32, int, 2, u16)
EMBEDDING_GATHER(i32, int, 4, u32)
EMBEDDING_GATHER(i32, int, 8, u64)
EMBEDDING_GATHER(i64, i64, 1, u8)
EMBEDDING_GATHER(i64, i64, 2, u16)
EMBEDDING_GATHER(i64, i64, 4, u32)
EMBEDDING_GATHER(i64, i64, 8, u64)

#define EMBEDDING_ADD(ISUFFIX, IT, TSUFFIX, T)                                                         \
    extern "C" __global__ void embedding_add_##ISUFFIX##_##TSUFFIX(                                    \
        T* __restrict__ grad, const T* __restrict__ g, const IT* __restrict__ idx, i64 rows, i64 dim,  \
        i64 n, int* __restrict__ err, int code) {                                                      \
        embedding_add<IT, T>(grad, g, idx, rows, dim, n, err, code);                                   \
    }

EMBEDDING_ADD(i32, int, f32, float)
EMBEDDING_ADD(i32, int, f64, double)
EMBEDDING_ADD(i64, i64, f32, float)
EMBEDDING_ADD(i64, i64, f64, double)
