/* Fused optimizer updates, in place: SGD with momentum / Nesterov / weight decay, and
 * Adam / AdamW with bias correction, each exactly as tensorcore/ops/optim_updates.py computes
 * them with NumPy (and as kernels/opencl/optim.cl). One thread per element (grid-stride);
 * every array is contiguous with n elements (the launcher declines other layouts).
 *
 * Build define: DTYPE (float or double). Products and sums go through the _rn intrinsics so
 * the compiler cannot contract `a * b + c` into one FMA: NumPy rounds twice, and so do these,
 * so the device agrees with the cpu reference to the last bit. Adam's last line is computed
 * in double, as NumPy does (its step size is a float64 scalar), then rounded to T.
 *
 * Every kernel takes `guard`, the launching thread's error record (common.cuh), and writes
 * nothing (no parameter, state, schedule or step counter) while it holds an error: a step
 * after an op whose input was invalid (a label out of range) leaves the training state as it
 * was. One int read per thread; the host does not wait.
 */
#include "common.cuh"

#ifndef DTYPE
#error "build with -DDTYPE=float or -DDTYPE=double"
#endif
typedef DTYPE T;

__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }

/* The learning rate is read from the device scalar *lr (double), so a new value written there
 * takes effect in every later launch, traced graphs included. With has_step, one thread also
 * advances the optimizer's step counter *step (double) by one: the first update of each device
 * in an optimizer step counts that step, without a launch of its own. */

/* _sgd_step: grad += wd * param; v = v * momentum + grad; grad = nesterov ? grad + momentum * v
 * : v; param -= lr * grad. `v` is unused when has_velocity is 0, `step` when has_step is 0. */
extern "C" __global__ void sgd_step(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ v,
                                    int has_velocity, const double* lr, double* step,
                                    int has_step, T momentum, int nesterov, T weight_decay, i64 n,
                                    const int* guard) {
    if (TC_GUARDED(guard)) return; /* the same in every thread */
    const T rate = (T)lr[0];  /* rounded to T, as NumPy rounds a Python float */
    if (has_step && blockIdx.x == 0 && threadIdx.x == 0) step[0] = __dadd_rn(step[0], 1.0);
    TC_GRID_LOOP(i, n) {
        const T param = p[i];
        T grad = g[i];
        if (weight_decay != (T)0) grad = add(grad, mul(weight_decay, param));
        if (has_velocity) {
            const T vel = add(mul(v[i], momentum), grad);
            v[i] = vel;
            grad = nesterov ? add(grad, mul(momentum, vel)) : vel;
        }
        p[i] = sub(param, mul(rate, grad));
    }
}

/* _adam_schedule: s = [beta1^t, beta2^t, step_size, eps_hat] (double) advanced by one step,
 * operation for operation as NumPy does it. One thread. */
extern "C" __global__ void adam_schedule(double* s, const double* lr, double* step, int has_step, double beta1,
                                         double beta2, double eps, const int* guard) {
    if (blockIdx.x == 0 && threadIdx.x == 0 && !TC_GUARDED(guard)) {
        const double b1 = __dmul_rn(s[0], beta1);
        const double b2 = __dmul_rn(s[1], beta2);
        const double correction = __dsqrt_rn(__dsub_rn(1.0, b2));
        s[0] = b1;
        s[1] = b2;
        s[2] = __ddiv_rn(__dmul_rn(lr[0], correction), __dsub_rn(1.0, b1));
        s[3] = __dmul_rn(eps, correction);
        if (has_step) step[0] = __dadd_rn(step[0], 1.0);
    }
}

/* _adam_step. mode 0: no weight decay, 1: AdamW (param *= decay, decay = 1 - lr * wd computed
 * in double from the device scalar lr, then rounded to T, as Python computes it), 2: Adam
 * (grad += wd * param). The host computes one_b1 = 1 - beta1, one_b2 = 1 - beta2 (rounded to
 * T, as NumPy's weak Python floats are); step_size = s[2] and eps_hat = s[3] come from the
 * schedule that adam_schedule advanced. */
extern "C" __global__ void adam_step(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                                     T* __restrict__ v, const double* __restrict__ s, const double* __restrict__ lr,
                                     int mode, T weight_decay, double wd64, T beta1, T one_b1, T beta2, T one_b2,
                                     i64 n, const int* guard) {
    if (TC_GUARDED(guard)) return; /* the same in every thread */
    const double step_size = s[2], eps_hat = s[3];
    const T decay = (T)__dsub_rn(1.0, __dmul_rn(lr[0], wd64));
    TC_GRID_LOOP(i, n) {
        T param = p[i];
        T grad = g[i];
        if (mode == 1) param = mul(param, decay);
        else if (mode == 2) grad = add(grad, mul(weight_decay, param));
        const T mom = add(mul(m[i], beta1), mul(one_b1, grad));
        const T var = add(mul(v[i], beta2), mul(one_b2, mul(grad, grad)));
        m[i] = mom;
        v[i] = var;
        const double update = __ddiv_rn(__dmul_rn(step_size, (double)mom), __dadd_rn((double)sqrt(var), eps_hat));
        p[i] = (T)__dsub_rn((double)param, update);
    }
}
