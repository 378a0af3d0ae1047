// model.c — the CLIP-or-CoCa handle (see model.h).
#include "layers/model.h"

#include <string.h>

#include "autograd/device.h"

vlt_status vlt_model_create(vlt_model *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->is_coca = cfg->is_coca;
    if (m->is_coca) {
        VLT_TRY(vlt_coca_init(&m->coca, cfg, seed));
        m->params = &m->coca.params;
        m->logit_scale = m->coca.logit_scale;
    } else {
        VLT_TRY(vlt_clip_init(&m->clip, cfg, seed));
        m->params = &m->clip.params;
        m->logit_scale = m->clip.logit_scale;
    }
    return VLT_OK;
}

void vlt_model_free(vlt_model *m) {
    if (!m->params) return;
    if (m->is_coca) vlt_coca_free(&m->coca);
    else vlt_clip_free(&m->clip);
    m->params = NULL;
}

// Inputs follow the parameters: a host batch for a model on the GPU is copied there (an
// activation of this step; images and ids never require grad).
static vlt_tensor *on_model_device(const vlt_model *m, vlt_tensor *x) {
    vlt_device dev = m->params->t[0]->device;
    return x && x->device != dev ? vlt_to_device(x, dev) : x;
}

vlt_status vlt_model_loss_forward(vlt_model *m, vlt_tensor *images, vlt_tensor *ids, vlt_coca_loss_cfg lc,
                                  vlt_model_loss *out) {
    memset(out, 0, sizeof *out);
    images = on_model_device(m, images);
    ids = on_model_device(m, ids);
    if (!images || !ids) return vlt_error_code();
    if (!m->is_coca && lc.contrastive) {
        vlt_clip *c = &m->clip;
        out->loss = lc.contrastive(lc.contrastive_ctx, vlt_clip_encode_image(c, images, true),
                                   vlt_clip_encode_text(c, ids, true), c->logit_scale, c->logit_bias);
        return out->loss ? VLT_OK : vlt_error_code();
    }
    if (!m->is_coca) {
        vlt_clip_output o;
        VLT_TRY(vlt_clip_forward(&m->clip, images, ids, &o));
        out->loss = o.loss;
        return VLT_OK;
    }
    vlt_coca_output o;
    VLT_TRY(vlt_coca_forward(&m->coca, images, ids, lc, &o));
    out->loss = o.loss;
    out->n_parts = 2;
    out->part_names[0] = "contrastive";
    out->part_names[1] = "caption";
    out->parts[0] = o.contrastive_loss;
    out->parts[1] = o.caption_loss;
    return VLT_OK;
}

vlt_tensor *vlt_model_encode_image(vlt_model *m, vlt_tensor *images) {
    images = on_model_device(m, images);
    return m->is_coca ? vlt_coca_encode_image(&m->coca, images, true, NULL) : vlt_clip_encode_image(&m->clip, images, true);
}

vlt_tensor *vlt_model_encode_text(vlt_model *m, vlt_tensor *ids) {
    ids = on_model_device(m, ids);
    return m->is_coca ? vlt_coca_encode_text(&m->coca, ids, true, NULL) : vlt_clip_encode_text(&m->clip, ids, true);
}

void vlt_model_after_step(vlt_model *m) {
    if (m->is_coca) vlt_coca_clamp_logit_scale(&m->coca);
    else vlt_clip_clamp_logit_scale(&m->clip);
}
