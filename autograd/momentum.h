// momentum.h — the state updates of momentum-distillation models (ALBEF, ALBEF VQA): the EMA of
// momentum copies and the feature queues. Not tape ops: they run between steps, without gradient.
//
// Both work on host or device tensors. On the host they are the plain loops (the reference the
// parity tests check); on the GPU the EMA is ONE multi-tensor launch over every pair
// (vlt_cuda_ema_mt in ops_cuda_multi.cu, the same chunked list as AdamW's) and the queue update
// two launches (the columns, then the pointer), with no host synchronisation: the queue pointer
// stays on the device.
#ifndef VLT_MOMENTUM_H
#define VLT_MOMENTUM_H

#include "autograd/tensor.h"

// momentum[i] = online[i] for i < n (f32, equal shapes, any devices).
vlt_status vlt_ema_copy(vlt_tensor *const *online, vlt_tensor *const *momentum, int n);
// momentum[i] = momentum[i]·mu + online[i]·(1 − mu), in f32 with (1 − mu) rounded once from
// double, each product rounded and then the sum (no fused multiply-add): the host and the GPU
// give the same bits. Each pair on one device.
vlt_status vlt_ema_update(vlt_tensor *const *online, vlt_tensor *const *momentum, int n, float mu);
// Feature queues (E, Q) (ALBEF's image_queue / text_queue): the first n rows of rows[k] (each an
// f32 (≥ n, E) tensor) become columns ptr, ptr + 1, ... (mod Q) of queues[k], for k < nq, and the
// shared pointer ptr (an i32 (1) tensor; a value outside [0, Q) is read as 0) advances by n mod
// Q. When n > Q the last Q rows win (as writing them in order would leave). Every tensor on one
// device.
#define VLT_QUEUE_MAX 4   // queues sharing one pointer in one call
vlt_status vlt_queue_enqueue(vlt_tensor *const *queues, vlt_tensor *const *rows, int nq, int n, vlt_tensor *ptr);

#endif
