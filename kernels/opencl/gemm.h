/* The vector names of the GEMM and its packers (matmul.cl, conv.cl), built with -DT and
 * -DVW (one SIMD register of T): VT is that vector type, a packed panel NR = 2 * VW columns.
 */
#ifndef TENSORCORE_GEMM_H
#define TENSORCORE_GEMM_H

#include "common.h"

#define VT CAT(T, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)
#define NR (2 * VW)

#endif
