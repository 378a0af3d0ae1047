// params.h — a model's parameter table: the list of its persistent tensors, each named with
// its open_clip state_dict key. Load/save (checkpoints/), weight-decay masks, freezing and the
// optimizer all work off this table.
#ifndef VLT_PARAMS_H
#define VLT_PARAMS_H

#include "autograd/tensor.h"

typedef struct {
    vlt_tensor **t;   // owned: vlt_params_free releases the tensors too
    int n, cap;
} vlt_params;

void vlt_params_init(vlt_params *p);
// Appends a tensor (takes ownership). A NULL tensor (failed creation) or a duplicate name is an
// error; the table then owns nothing new.
vlt_status vlt_params_add(vlt_params *p, vlt_tensor *t);
// Creates a zeroed f32 parameter named `name`, adds it and returns it (NULL on error).
vlt_tensor *vlt_params_new(vlt_params *p, const char *name, int ndim, const int *shape);
vlt_tensor *vlt_params_find(const vlt_params *p, const char *name);
int64_t vlt_params_numel(const vlt_params *p);
// The values of the tensors that require grad: what PyTorch's named_parameters() counts when the
// frozen entries are momentum copies, queues and buffers (every model kind's count).
int64_t vlt_params_trainable_numel(const vlt_params *p);
// requires_grad on or off for every parameter whose name starts with `prefix` ("" for all);
// returns how many matched. (LiT-style locking: vlt_params_set_trainable(p, "visual.", false).)
int vlt_params_set_trainable(vlt_params *p, const char *prefix, bool trainable);
void vlt_params_free(vlt_params *p);

#endif
