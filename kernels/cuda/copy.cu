/* Copies that only move bytes: strided gathers (a view made contiguous), view-to-view copies
 * (concat writes each input into a slice of its output), transposes through shared memory,
 * and fills of a view with one value. The CUDA counterpart of kernels/opencl/copy.cl.
 *
 * No build defines: moving bytes does not depend on what they mean, so each kernel is
 * instantiated once per element width and named with it (copy_view_4 moves float32, int32
 * and uint32 alike; _1, _2, _4, _8 cover every dtype tensorcore has). One module then serves
 * every dtype, and NVRTC compiles it once per device.
 *
 * Shapes and strides count elements (strides may be negative: flipped views, or zero:
 * broadcast sources). Pointers point at each view's first element (CuPy's data pointer
 * already includes a view's offset), so offsets are relative to it. `meta` is an int64 array
 * on the device laid out as  shape[ndim], out strides[ndim], in strides[ndim]  (the launcher
 * drops size-1 dimensions and merges dimensions both sides step through alike first).
 *
 * copy_view, copy_tiled and fill_view also write in place (assign): they take `guard`, the
 * launching thread's error record, and write nothing while it holds an error; a copy into a
 * fresh output passes a record that is never set (common.cuh, TC_GUARDED). The guard has the
 * same value in every thread, so copy_tiled's early return leaves no thread at its barrier.
 */
#include "common.cuh"

/* out[view] = in[view], one thread per element in a grid-stride loop. */
template <typename W>
__device__ __forceinline__ void copy_view(W* __restrict__ out, const W* __restrict__ in,
                                          const i64* __restrict__ meta, int ndim, i64 n, const int* guard) {
    if (TC_GUARDED(guard)) return;
    TC_GRID_LOOP(i, n) {
        i64 o, s;
        tc_strided_offset2(i, meta, meta + ndim, meta + 2 * ndim, ndim, &o, &s);
        out[o] = in[s];
    }
}

/* A copy whose source runs along another dimension p than the output's fastest one, l (a
 * transpose). Element by element, either the reads or the writes of a warp would be 32
 * separate memory transactions. Here a block of 32 x 8 threads moves one 32 x 32 tile of
 * (p, l): it reads the tile with consecutive threads along p (coalesced when the source is
 * contiguous along p), stores it in shared memory, and writes it with consecutive threads
 * along l (coalesced when the output is contiguous along l). The tile's row is padded by one
 * element so that reading a shared-memory column hits 32 different banks.
 *
 * blockIdx.x enumerates (tile along l, tile along p, index r of the remaining dimensions);
 * `meta` holds those remaining dimensions as  shape[rdim], out strides[rdim], in strides[rdim]. */
#define TILE 32
#define TILE_ROWS 8 /* blockDim.y: each thread moves TILE / TILE_ROWS elements per tile */

template <typename W>
__device__ __forceinline__ void copy_tiled(W* __restrict__ out, const W* __restrict__ in,
                                           const i64* __restrict__ meta, int rdim, i64 np_, i64 osp, i64 isp,
                                           i64 nl, i64 osl, i64 isl, i64 tiles_l, i64 tiles_p, const int* guard) {
    __shared__ W tile[TILE][TILE + 1];
    if (TC_GUARDED(guard)) return; /* every thread of the block returns: no barrier is left waiting */
    const i64 b = blockIdx.x;
    const i64 l0 = (b % tiles_l) * TILE;
    const i64 p0 = ((b / tiles_l) % tiles_p) * TILE;
    const i64 r = b / tiles_l / tiles_p;
    i64 o = 0, s = 0;
    if (rdim > 0) tc_strided_offset2(r, meta, meta + rdim, meta + 2 * rdim, rdim, &o, &s);
    /* read: threadIdx.x walks p, the source's fast dimension */
    for (int k = threadIdx.y; k < TILE; k += TILE_ROWS) {
        const i64 p = p0 + threadIdx.x, l = l0 + k;
        if (p < np_ && l < nl) tile[k][threadIdx.x] = in[s + p * isp + l * isl];
    }
    __syncthreads();
    /* write: threadIdx.x walks l, the output's fast dimension */
    for (int k = threadIdx.y; k < TILE; k += TILE_ROWS) {
        const i64 l = l0 + threadIdx.x, p = p0 + k;
        if (p < np_ && l < nl) out[o + p * osp + l * osl] = tile[threadIdx.x][k];
    }
}

/* out[view] = value for every element of a view (meta: shape[ndim], out strides[ndim]);
 * `value` carries the element's bits (the launcher reinterprets the scalar), so no upload. */
template <typename W>
__device__ __forceinline__ void fill_view(W* __restrict__ out, const i64* __restrict__ meta, int ndim, i64 n,
                                          W value, const int* guard) {
    if (TC_GUARDED(guard)) return;
    TC_GRID_LOOP(i, n) out[tc_strided_offset(i, meta, meta + ndim, ndim)] = value;
}

/* The extern "C" entry points of one element width (NVRTC would mangle template names). */
#define COPY_KERNELS(BYTES, W)                                                                          \
    extern "C" __global__ void copy_view_##BYTES(W* __restrict__ out, const W* __restrict__ in,         \
                                                 const i64* __restrict__ meta, int ndim, i64 n,         \
                                                 const int* guard) {                                    \
        copy_view<W>(out, in, meta, ndim, n, guard);                                                    \
    }                                                                                                   \
    extern "C" __global__ void __launch_bounds__(TILE * TILE_ROWS)                                      \
    copy_tiled_##BYTES(W* __restrict__ out, const W* __restrict__ in, const i64* __restrict__ meta,     \
                       int rdim, i64 np_, i64 osp, i64 isp, i64 nl, i64 osl, i64 isl, i64 tiles_l,      \
                       i64 tiles_p, const int* guard) {                                                 \
        copy_tiled<W>(out, in, meta, rdim, np_, osp, isp, nl, osl, isl, tiles_l, tiles_p, guard);       \
    }                                                                                                   \
    extern "C" __global__ void fill_view_##BYTES(W* __restrict__ out, const i64* __restrict__ meta,     \
                                                 int ndim, i64 n, W value, const int* guard) {          \
        fill_view<W>(out, meta, ndim, n, value, guard);                                                 \
    }

COPY_KERNELS(1, u8)
COPY_KERNELS(2, u16)
COPY_KERNELS(4, u32)
COPY_KERNELS(8, u64)
