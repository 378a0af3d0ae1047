// params.c — the parameter table (see params.h). Linear search: tables hold a few hundred
// entries and are searched at load time only.
#include "autograd/params.h"

#include <stdlib.h>
#include <string.h>

void vlt_params_init(vlt_params *p) { memset(p, 0, sizeof *p); }

vlt_status vlt_params_add(vlt_params *p, vlt_tensor *t) {
    if (!t) return vlt_error_code() ? vlt_error_code() : vlt_error_set(VLT_ERR_ARG, "params: NULL tensor");
    if (vlt_params_find(p, t->name)) {
        vlt_status s = vlt_error_set(VLT_ERR_ARG, "params: duplicate parameter name '%s'", t->name);
        vlt_tensor_free(t);
        return s;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        vlt_tensor **nt = realloc(p->t, (size_t)cap * sizeof *nt);
        if (!nt) { vlt_tensor_free(t); return vlt_error_set(VLT_ERR_NOMEM, "params: out of memory"); }
        p->t = nt;
        p->cap = cap;
    }
    p->t[p->n++] = t;
    return VLT_OK;
}

vlt_tensor *vlt_params_new(vlt_params *p, const char *name, int ndim, const int *shape) {
    vlt_tensor *t = vlt_tensor_new_param(ndim, shape, name);
    return vlt_params_add(p, t) == VLT_OK ? t : NULL;
}

vlt_tensor *vlt_params_find(const vlt_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->t[i]->name, name)) return p->t[i];
    return NULL;
}

int64_t vlt_params_numel(const vlt_params *p) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++) n += p->t[i]->numel;
    return n;
}

int64_t vlt_params_trainable_numel(const vlt_params *p) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++)
        if (p->t[i]->requires_grad) n += p->t[i]->numel;
    return n;
}

int vlt_params_set_trainable(vlt_params *p, const char *prefix, bool trainable) {
    int matched = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < p->n; i++)
        if (!strncmp(p->t[i]->name, prefix, len)) {
            p->t[i]->requires_grad = trainable;
            matched++;
        }
    return matched;
}

void vlt_params_free(vlt_params *p) {
    for (int i = 0; i < p->n; i++) vlt_tensor_free(p->t[i]);
    free(p->t);
    memset(p, 0, sizeof *p);
}
