/* Shared definitions of tensorcore's CUDA kernels (included by every kernels/cuda/*.cu).
 *
 * Element types come as -DDTYPE=float|double (a macro named T would clash with template
 * parameters in the CUDA runtime headers nvcc includes implicitly); sources say
 * `typedef DTYPE T;`.
 *
 * Sources are compiled by NVRTC through cupy.RawModule (the backend inlines this header into
 * the source text first, so CuPy's compile cache keys on everything that was compiled), and
 * by nvcc in CI (tests/test_cuda_compile.py, with -I kernels/cuda). So: no host or standard
 * headers, fixed-width types spelled out here, extern "C" kernels only.
 *
 * Strided kernels take a `meta` array of int64 on the device, laid out as
 *   meta[0 .. ndim)                       the output's shape (row-major, output contiguous)
 *   meta[ndim * (1 + k) .. ndim * (2 + k))  the element strides of input k (0 where it broadcasts)
 * which the launcher uploads once per distinct layout and caches.
 */
#ifndef TENSORCORE_COMMON_CUH
#define TENSORCORE_COMMON_CUH

typedef long long i64;
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define TC_MAX_DIMS 8

/* Element offset of output element i in an input whose strides are `strides`, for the
 * row-major output shape `shape` of `ndim` dimensions. */
__device__ __forceinline__ i64 tc_strided_offset(i64 i, const i64* __restrict__ shape,
                                                 const i64* __restrict__ strides, int ndim) {
    i64 offset = 0;
    for (int d = ndim - 1; d >= 0; --d) {
        const i64 n = shape[d];
        offset += (i % n) * strides[d];
        i /= n;
    }
    return offset;
}

/* The offsets of element i (row-major over `shape`) in two strided layouts at once: the
 * copy and gather kernels need both, and one division per dimension instead of two halves
 * the integer work (64-bit divisions are the costliest instructions these kernels run). */
__device__ __forceinline__ void tc_strided_offset2(i64 i, const i64* __restrict__ shape,
                                                   const i64* __restrict__ sa, const i64* __restrict__ sb,
                                                   int ndim, i64* oa, i64* ob) {
    i64 a = 0, b = 0;
    for (int d = ndim - 1; d >= 0; --d) {
        const i64 n = shape[d];
        const i64 c = i % n;
        a += c * sa[d];
        b += c * sb[d];
        i /= n;
    }
    *oa = a;
    *ob = b;
}

/* Grid-stride loop over [0, n). */
#define TC_GRID_LOOP(i, n)                                                                     \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

/* NaN-propagating max / min, as NumPy's maximum / minimum and max / min reductions. */
template <typename T> __device__ __forceinline__ T tc_max_nan(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T> __device__ __forceinline__ T tc_min_nan(T a, T b) { return (a < b || a != a) ? a : b; }

/* +infinity without math headers (NVRTC has none). */
template <typename U> __device__ __forceinline__ U tc_inf();
template <> __device__ __forceinline__ float tc_inf<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double tc_inf<double>() { return __longlong_as_double(0x7ff0000000000000LL); }

/* Device errors (backends/cuda.py, CUDADevice.error_flag). A validating kernel that meets a
 * bad index claims the launching thread's error record, an int array: the code at [0] (0:
 * none), then the int64 position (bytes 8..16) and value (bytes 16..24) of the index. The
 * first claim wins (atomicCAS), so the record names the earliest failing launch of the thread
 * and one consistent (position, value) of it; the host raises at the thread's next read. */
__device__ __forceinline__ void tc_report_error(int* err, int code, i64 position, i64 value) {
    if (atomicCAS(err, 0, code) == 0) {
        i64* rec = (i64*)err;
        rec[1] = position;
        rec[2] = value;
    }
}

/* In-place kernels take the launching thread's record as `guard` and write nothing while it
 * holds a code: an update never follows an op whose input was invalid. Copies into fresh
 * outputs pass a record that is never set (CUDADevice.unguarded). One int read per thread. */
#define TC_GUARDED(guard) (*(const volatile int*)(guard) != 0)

/* The offset that marks an index found out of range in an `adv` array (index.cu): gathers
 * write all bits set there (a NaN in every float type) and scatter-adds skip it. */
#define TC_BAD_OFFSET (-9223372036854775807LL - 1)

#endif
