// optim.h — optimizers over a list of parameters: AdamW (decoupled weight decay, per-parameter
// decay mask), SGD with momentum, global-norm gradient clipping, zeroing gradients.
//
// State (moments, momentum) is allocated once at creation, one f32 buffer per parameter.
// The learning rate is passed to each step, so schedules live with the trainer. Parameters
// whose requires_grad is off (frozen, e.g. a locked tower) are skipped by the steps.
#ifndef VLT_OPTIM_H
#define VLT_OPTIM_H

#include "autograd/tensor.h"

typedef struct {
    float beta1, beta2, eps, weight_decay;
} vlt_adamw_cfg;

typedef struct {
    int n;                  // parameters
    vlt_tensor **params;    // borrowed
    bool *decay;            // per parameter: apply weight decay
    float **m, **v;         // first and second moments, numel floats each
    vlt_adamw_cfg cfg;
    int64_t t;              // steps taken (bias correction)
} vlt_adamw;

// After vlt_params_move of the optimizer's parameters to `dev`: moves the moments there too (the
// optimizer was made, or restored from a checkpoint, while the parameters were on the host).
vlt_status vlt_adamw_state_to(vlt_adamw *o, vlt_device from, vlt_device dev);

// open_clip's defaults: betas (0.9, 0.98), eps 1e-6, weight decay 0.2.
vlt_adamw_cfg vlt_adamw_defaults(void);
// decay may be NULL (every parameter decays). Returns NULL with a message on bad input.
vlt_adamw *vlt_adamw_new(vlt_tensor **params, const bool *decay, int n, vlt_adamw_cfg cfg);
void vlt_adamw_free(vlt_adamw *opt);
// p -= lr * (m̂ / (sqrt(v̂) + eps) + wd * p)  [decoupled decay, as torch.optim.AdamW]
vlt_status vlt_adamw_step(vlt_adamw *opt, float lr);
// For a replayed CUDA graph of a sync-free step (issue 17): counts the step and writes its scalars
// (lr, lr / bias correction) where the captured step's copy reads them; launches nothing.
void vlt_adamw_advance(vlt_adamw *opt, float lr);

typedef struct {
    int n;
    vlt_tensor **params;
    float **buf;            // momentum buffers
    float momentum, weight_decay;
    bool nesterov, started;
} vlt_sgd;

vlt_sgd *vlt_sgd_new(vlt_tensor **params, int n, float momentum, float weight_decay, bool nesterov);
void vlt_sgd_free(vlt_sgd *opt);
// torch.optim.SGD semantics: g += wd·p; b = μ·b + g (b = g at the first step); p -= lr·(g + μ·b or b).
vlt_status vlt_sgd_step(vlt_sgd *opt, float lr);

// The global L2 norm of all gradients; when it exceeds max_norm (> 0), scales them by
// max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_. Returns the norm before clipping
// (non-finite when a gradient is). In sync-free mode (device.h) with every parameter on the GPU
// the norm stays on the device and NaN is returned: vlt_last_grad_norm() reads it after the step.
float vlt_clip_grad_norm(vlt_tensor **params, int n, float max_norm);
void vlt_zero_grad(vlt_tensor **params, int n);

#endif
