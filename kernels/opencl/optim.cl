/* In-place updates: assign_add / assign_sub, the fused SGD and Adam/AdamW steps, and batch
 * norm's running statistics. One work item per element; each reads its element of every
 * array before writing it, so an update never reads a value another work item wrote.
 *
 * Every kernel takes `guard`, the launching thread's error record (common.h), and writes
 * nothing (no parameter, state, schedule or step counter) while it holds an error: a step
 * after an op whose input was invalid (a label out of range) leaves the training state as it
 * was. One int read per work item; the host does not wait.
 *
 * Build with -DT=<element type>, -DACC=<type Adam's final expression is computed in>,
 * -DSTRIDED=0|1 (and -DCOUNT=0|1 for sgd_step). With STRIDED=0 every array is contiguous from its offset and the stride
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
__kernel void update_add(ARR(dst), ARR(src), int subtract, long8 shape, int ndim, long n, __global const int* guard) {
    long i = get_global_id(0);
    if ((i < n) & !GUARDED(guard)) {
        long d = AT(dst, i);
        T s = src[AT(src, i)];
        dst[d] = subtract ? dst[d] - s : dst[d] + s;
    }
}

/* The learning rate is read from the device scalar lr[lr_off] (ACC), so a new value written
 * there takes effect in every later launch, traced graphs included. The build with COUNT=1
 * also advances the optimizer's step counter step[step_off] (ACC) by one in work item 0: the
 * first update of each device in an optimizer step counts that step, without a launch of its
 * own. A define, not an argument: PoCL vectorizes the work items of a kernel without that
 * branch better (about 10% on a 4M-element step), and only one launch per step counts. */
#ifndef COUNT
#define COUNT 0
#endif
#ifndef INTEGER
#define INTEGER 0 /* 1 when T is an integer type (update_add of ints): the float-only kernels are left out */
#endif

/* tensorcore.ops.optim_updates._sgd_step, step for step. */
__kernel void sgd_step(ARR(p), ARR(g), ARR(v), int has_velocity, __global const ACC* lr, long lr_off,
                       __global ACC* step, long step_off, T momentum, int nesterov,
                       T weight_decay, long8 shape, int ndim, long n, __global const int* guard) {
    long i = get_global_id(0);
    const int ok = !GUARDED(guard);
#if COUNT
    if ((i == 0) & ok) step[step_off] += (ACC)1;
#endif
    if ((i < n) & ok) {
        const T rate = (T)lr[lr_off];  /* rounded to T, as NumPy rounds a Python float */
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
        p[pi] = param - rate * grad;
    }
}

/* Advance the optimizer's step counter step[step_off] (ACC) by one: the count of a fused update
 * whose kernel does not take the counter (linear_weight_sgd_step's GEMM). */
__kernel void count_step(__global ACC* step, long step_off, __global const int* guard) {
    if ((get_global_id(0) == 0) & !GUARDED(guard)) step[step_off] += (ACC)1;
}

/* tensorcore.ops.optim_updates._adam_schedule: s = [beta1^t, beta2^t, step_size, eps_hat]
 * advanced by one step, in ACC (the schedule's own type), operation for operation as NumPy
 * does it. One work item. */
__kernel void adam_schedule(__global ACC* s, long s_off, __global const ACC* lr, long lr_off,
                            __global ACC* step, long step_off, int has_step, ACC beta1, ACC beta2, ACC eps,
                            __global const int* guard) {
    if ((get_global_id(0) == 0) & !GUARDED(guard)) {
        s += s_off;
        ACC b1 = s[0] * beta1;
        ACC b2 = s[1] * beta2;
        ACC correction = sqrt((ACC)1 - b2);
        s[0] = b1;
        s[1] = b2;
        s[2] = lr[lr_off] * correction / ((ACC)1 - b1);
        s[3] = eps * correction;
        if (has_step) step[step_off] += (ACC)1;
    }
}

#if !INTEGER /* sqrt of an integer T is ambiguous in OpenCL C */
/* tensorcore.ops.optim_updates._adam_step. The host computes one_b1 = 1 - beta1 and
 * one_b2 = 1 - beta2; AdamW's decay = 1 - lr * wd is computed here in ACC from the device
 * scalar lr (as Python computes it in double, then rounded to T); the step size and eps_hat
 * are read from the schedule (ACC, its type: double wherever the device has it). NumPy
 * evaluates the last line in the schedule's type even for float32 parameters, and so does
 * this kernel. */
__kernel void adam_step(ARR(p), ARR(g), ARR(m), ARR(v), __global const ACC* s, long s_off,
                        __global const ACC* lr, long lr_off, int mode, T weight_decay, ACC wd_acc,
                        T beta1, T one_b1, T beta2, T one_b2, long8 shape, int ndim, long n,
                        __global const int* guard) {
    long i = get_global_id(0);
    if ((i < n) & !GUARDED(guard)) {
        const T decay = (T)((ACC)1 - lr[lr_off] * wd_acc);
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
#endif

/* batch_norm_update_running: dst = dst * keep + scale * src (keep = 1 - momentum,
 * scale = momentum * correction), rounded in NumPy's order. */
__kernel void running_update(ARR(dst), ARR(src), T keep, T scale, long8 shape, int ndim, long n,
                             __global const int* guard) {
    long i = get_global_id(0);
    if ((i < n) & !GUARDED(guard)) {
        long d = AT(dst, i);
        T kept = dst[d] * keep;
        dst[d] = kept + scale * src[AT(src, i)];
    }
}
