/* Template of a fused elementwise chain that ends in a sum (graph mode): the chain's values
 * are added up as they are made, never written out. backends/opencl_ops/fused.py fills in the
 * dollar-sign placeholders as for fused.cl (inputs, scalars, one statement per op).
 *
 * The chain's domain is read as `rows` rows of `n` elements (the reduced axes are the trailing
 * ones). Work-item (p, a) sums elements [p * chunk, (p + 1) * chunk) of row a into
 * part[a * parts + p]; reduce_core then adds the parts of each row (and divides, for a mean).
 * Sums run in blocks of 64 terms added to a running total, so that no float adds more than a
 * few hundred terms serially, as in reduce.cl.
 */
#include "common.h"
#define FN inline
#include "fused_ops.h"

__kernel void fused_reduce(__global FT* part, long n, long rows, long chunk, long parts, long8 shape,
                           int ndim$PARAMS) {
    const long p = get_global_id(0), a = get_global_id(1);
    if (p >= parts || a >= rows) return;
    const long s = a * n + p * chunk;
    const long e = a * n + min((p + 1) * chunk, n);
    FT total = (FT)0, block = (FT)0;
    int terms = 0;
    for (long i = s; i < e; ++i) {
$LOADS
$BODY
        block += $RESULT;
        if (++terms == 64) {
            total += block;
            block = (FT)0;
            terms = 0;
        }
    }
    part[a * parts + p] = total + block;
}
