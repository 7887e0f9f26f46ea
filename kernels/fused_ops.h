/* Scalar helpers of the fused elementwise kernels, shared by the OpenCL template
 * (kernels/opencl/fused.cl) and the CUDA one (kernels/cuda/fused.cu), so both compute the
 * same thing; every CI run exercises this text on PoCL. The expressions that call them are
 * listed per op in tensorcore/ops/fusable.py.
 *
 * Needs FT (float or double) and FN (the function qualifiers: `inline` in OpenCL C,
 * `__device__ inline` in CUDA) defined first. Each helper computes what the op's NumPy
 * reference computes, NaN included.
 */
#ifndef TENSORCORE_FUSED_OPS_H
#define TENSORCORE_FUSED_OPS_H

#define FK(x) ((FT)(x))

/* max(x, 0) with NaN passing through and -0.0 giving +0.0, as np.maximum. Branch-free
 * comparison (NaN <= 0 is false) so PoCL vectorizes the loop. */
FN FT f_relu(FT x) { return x <= FK(0) ? FK(0) : x; }

/* (y > 0) * g: 0 * g, not 0, where the unit was off, so a NaN or inf in g stays NaN. */
FN FT f_relu_backward(FT g, FT y) { return (y > FK(0) ? FK(1) : FK(0)) * g; }

/* The logistic function from exp(-|x|), which never overflows. */
FN FT f_sigmoid(FT x) {
    FT z = exp(-fabs(x));
    return (x >= FK(0) ? FK(1) : z) / (FK(1) + z);
}

FN FT f_sigmoid_backward(FT g, FT y) { return (FK(1) - y) * y * g; }

/* NumPy's maximum/minimum propagate NaN from either side; `|`, not `||`, keeps the loop
 * vectorizable on PoCL. */
FN FT f_maximum(FT x, FT y) { return ((x > y) | (x != x)) ? x : y; }
FN FT f_minimum(FT x, FT y) { return ((x < y) | (x != x)) ? x : y; }

#endif
