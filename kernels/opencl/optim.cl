/* In-place updates: assign_add / assign_sub, the fused SGD and Adam/AdamW steps, and batch
 * norm's running statistics. One work item per element; each reads its element of every
 * array before writing it, so an update never reads a value another work item wrote.
 *
 * Build with -DT=<element type>, -DACC=<type Adam's final expression is computed in> and
 * -DSTRIDED=0|1. With STRIDED=0 every array is contiguous from its offset and the stride
 * arguments are ignored (the common case: no division per element).
 *
 * FP_CONTRACT is off so `a * b + c` is rounded twice, as NumPy does: the cpu reference and
 * this device then agree to the last bit in float64. */
#include "common.h"

#pragma OPENCL FP_CONTRACT OFF

#if STRIDED
#define AT(name, i) (name##_off + strided_offset(i, shape, name##_st, ndim))
#else
#define AT(name, i) (name##_off + (i))
#endif

#define ARR(name) __global T* name, long name##_off, long8 name##_st

/* dst (+|-)= src, src broadcast by zero strides; subtract = 1 for assign_sub. */
__kernel void update_add(ARR(dst), ARR(src), int subtract, long8 shape, int ndim, long n) {
    long i = get_global_id(0);
    if (i < n) {
        long d = AT(dst, i);
        T s = src[AT(src, i)];
        dst[d] = subtract ? dst[d] - s : dst[d] + s;
    }
}

/* tensorcore.ops.optim_updates._sgd_step, step for step. */
__kernel void sgd_step(ARR(p), ARR(g), ARR(v), int has_velocity, T lr, T momentum, int nesterov,
                       T weight_decay, long8 shape, int ndim, long n) {
    long i = get_global_id(0);
    if (i < n) {
        long pi = AT(p, i);
        T param = p[pi];
        T grad = g[AT(g, i)];
        if (weight_decay != (T)0) grad = grad + weight_decay * param;
        if (has_velocity) {
            long vi = AT(v, i);
            T vel = v[vi] * momentum;
            vel = vel + grad;
            v[vi] = vel;
            grad = nesterov ? grad + momentum * vel : vel;
        }
        p[pi] = param - lr * grad;
    }
}

/* tensorcore.ops.optim_updates._adam_schedule: s = [beta1^t, beta2^t, step_size, eps_hat]
 * advanced by one step, in ACC (the schedule's own type), operation for operation as NumPy
 * does it. One work item. */
__kernel void adam_schedule(__global ACC* s, long s_off, ACC lr, ACC beta1, ACC beta2, ACC eps) {
    if (get_global_id(0) == 0) {
        s += s_off;
        ACC b1 = s[0] * beta1;
        ACC b2 = s[1] * beta2;
        ACC correction = sqrt((ACC)1 - b2);
        s[0] = b1;
        s[1] = b2;
        s[2] = lr * correction / ((ACC)1 - b1);
        s[3] = eps * correction;
    }
}

/* tensorcore.ops.optim_updates._adam_step. The host computes decay = 1 - lr * wd (AdamW),
 * one_b1 = 1 - beta1 and one_b2 = 1 - beta2; the step size and eps_hat are read from the
 * schedule (ACC, its type: double wherever the device has it). NumPy evaluates the last line
 * in the schedule's type even for float32 parameters, and so does this kernel. */
__kernel void adam_step(ARR(p), ARR(g), ARR(m), ARR(v), __global const ACC* s, long s_off, int mode,
                        T weight_decay, T decay, T beta1, T one_b1, T beta2, T one_b2,
                        long8 shape, int ndim, long n) {
    long i = get_global_id(0);
    if (i < n) {
        long pi = AT(p, i), mi = AT(m, i), vi = AT(v, i);
        T param = p[pi];
        T grad = g[AT(g, i)];
        if (mode == 1) param = param * decay;                      /* AdamW: decoupled decay */
        else if (mode == 2) grad = grad + weight_decay * param;    /* Adam: L2 in the gradient */
        T mom = m[mi] * beta1;
        mom = mom + one_b1 * grad;
        T sq = grad * grad;
        T var = v[vi] * beta2;
        var = var + one_b2 * sq;
        m[mi] = mom;
        v[vi] = var;
        ACC update = s[s_off + 2] * (ACC)mom / ((ACC)sqrt(var) + s[s_off + 3]);
        p[pi] = (T)((ACC)param - update);
    }
}

/* batch_norm_update_running: dst = dst * keep + scale * src (keep = 1 - momentum,
 * scale = momentum * correction), rounded in NumPy's order. */
__kernel void running_update(ARR(dst), ARR(src), T keep, T scale, long8 shape, int ndim, long n) {
    long i = get_global_id(0);
    if (i < n) {
        long d = AT(dst, i);
        T kept = dst[d] * keep;
        dst[d] = kept + scale * src[AT(src, i)];
    }
}
