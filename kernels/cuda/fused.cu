/* Template of a fused elementwise kernel, the CUDA twin of kernels/opencl/fused.cl: the graph's
 * fusion pass (tensorcore/graph/fusion.py) turns a chain of elementwise ops into a FusedProgram,
 * and backends/cuda_ops/fused.py fills in the dollar-sign placeholders (the helpers of
 * kernels/fused_ops.h; the parameters, loads, statements and result of one chain) and builds
 * the text once per program through cupy.RawModule. Not built as it is:
 * tests/test_cuda_compile.py compiles generated programs.
 *
 * FT is the element type. Every input is contiguous with the output's shape (the launcher
 * makes broadcast and strided inputs so first), so element i of each is read at [i].
 */
#define FN __device__ inline
$HELPERS

/* A grid-stride loop: any n with a bounded grid. No __restrict__: memory planning may give the
 * output the buffer of an input that dies here, which is safe because element i is read
 * before it is written, by the same thread. */
extern "C" __global__ void fused(FT* out, long long n$PARAMS) {
    const long long step = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
$LOADS
$BODY
        out[i] = $RESULT;
    }
}
