/* Template of a fused elementwise chain that ends in a sum (graph mode): the chain's values
 * are added up as they are made, never written out. backends/opencl_ops/fused.py fills in the
 * dollar-sign placeholders as for fused.cl (inputs, scalars, one statement per op).
 *
 * The chain's domain is read as `rows` rows of `n` elements (the reduced axes are the trailing
 * ones). Work-item (p, a) sums elements [p * chunk, (p + 1) * chunk) of row a into
 * part[a * parts + p]; reduce_core then adds the parts of each row (and divides, for a mean).
 * Sums run in LANES lanes, each adding blocks of BLOCK terms to a running total, so that no
 * float adds more than a few hundred terms serially, as in reduce.cl.
 */
#include "common.h"
#define FN inline
#include "fused_ops.h"

#define LANES 16
#define BLOCK 64

__kernel void fused_reduce(__global FT* part, long n, long rows, long chunk, long parts, long8 shape,
                           int ndim$PARAMS) {
    const long p = get_global_id(0), a = get_global_id(1);
    if (p >= parts || a >= rows) return;
    const long e = a * n + min((p + 1) * chunk, n);
    long i = a * n + p * chunk;
    /* LANES independent sums (one dependent add chain would bound the speed by the add's
     * latency, and these vectorize), each adding blocks of BLOCK terms. */
    FT total[LANES];
    for (int l = 0; l < LANES; ++l) total[l] = (FT)0;
    while (i + LANES * BLOCK <= e) {
        FT block[LANES];
        for (int l = 0; l < LANES; ++l) block[l] = (FT)0;
        for (int r = 0; r < BLOCK; ++r) {
            for (int l = 0; l < LANES; ++l, ++i) {
$LOADS
$BODY
                block[l] += $RESULT;
            }
        }
        for (int l = 0; l < LANES; ++l) total[l] += block[l];
    }
    FT rest = (FT)0;
    for (; i < e; ++i) {
$LOADS
$BODY
        rest += $RESULT;
    }
    for (int w = LANES / 2; w > 0; w /= 2) {  /* pairwise across the lanes */
        for (int l = 0; l < w; ++l) total[l] += total[l + w];
    }
    part[a * parts + p] = total[0] + rest;
}
