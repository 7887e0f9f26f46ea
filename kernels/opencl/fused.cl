/* Template of a fused elementwise kernel. The graph's fusion pass (tensorcore/graph/fusion.py)
 * turns a chain of elementwise ops into a FusedProgram; backends/opencl_ops/fused.py fills in
 * the dollar-sign placeholders below with its inputs, scalars and one statement per op, and
 * builds the text once per program. A chain of N ops then reads its
 * inputs and writes its result once, in one launch, instead of N times.
 *
 * FT is the element type (float or double). Inputs come as `xN_p` plus an element offset
 * `xN_o`: contiguous ones are read at [offset + i]; broadcast or strided ones also get their
 * strides `xN_s` over the output's shape (long8, 0 on broadcast dimensions).
 */
#include "common.h"
#define FN inline
#include "fused_ops.h"

/* Each work-item takes `chunk` consecutive elements, as the elementwise kernels do (see
 * elementwise_loops.cl for why). No `restrict`: memory planning may give the output the
 * buffer of an input that dies here. That is safe because element i is read before it is
 * written, by the same work-item, and nothing else reads it. */
__kernel void fused(__global FT* out, long n, long chunk, long8 shape, int ndim$PARAMS) {
    const long s = (long)get_global_id(0) * chunk;
    const long e = min(s + chunk, n);
    for (long i = s; i < e; ++i) {
$LOADS
$BODY
        out[i] = $RESULT;
    }
}
