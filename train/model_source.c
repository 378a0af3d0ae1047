// model_source.c — the one model loader of the evaluation commands (see model_source.h).
#include "train/model_source.h"

#include <cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/checkpoint.h"
#include "checkpoints/safetensors.h"
#include "data/shardspec.h"
#include "layers/albef.h"
#include "layers/vqa_head.h"
#include "train/run_config.h"

const char *vlt_model_source_check(const char *checkpoint, const char *weights, const char *model) {
    if (checkpoint && weights) return "give either --checkpoint or --weights with --model, not both";
    if (!checkpoint && !weights) return "a model is required: --checkpoint RUN|CHECKPOINT_DIR, or --weights FILE --model NAME";
    if (weights && !model) return "--weights needs --model NAME|CONFIG.json (the model config the weights belong to)";
    if (model && !weights) return "--model goes with --weights (a checkpoint names its own model)";
    return NULL;
}

// The file vlt_model_cfg_load reads for `name` (the same lookup: a bare name in the model config
// folder, then in the working directory's configs/model/; anything else is a path), or "".
static void config_file(const char *name, char *out, size_t cap) {
    bool bare = !strchr(name, '/') && !strstr(name, ".json");
    char dir[1024];
    out[0] = '\0';
    if (!bare) {
        snprintf(out, cap, "%s", name);
        return;
    }
    snprintf(out, cap, "%s/%s.json", vlt_model_cfg_dir(dir, sizeof dir), name);
    if (access(out, R_OK) == 0) return;
    snprintf(out, cap, "configs/model/%s.json", name);
    if (access(out, R_OK) != 0) out[0] = '\0';
}

// The model config name and seed a checkpoint was trained with (its state.json's run config), and
// its VQA head settings (model.vqa_*) into vqa.
static vlt_status checkpoint_model_name(const char *dir, char *name, size_t cap, int64_t *seed, vlt_model_cfg *vqa) {
    char *text = NULL;
    VLT_TRY(vlt_checkpoint_read_state(dir, &text, NULL));
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    char what[1100];
    snprintf(what, sizeof what, "%s/state.json", dir);
    vlt_status s = cJSON_IsString(cfg) ? VLT_OK : vlt_error_set(VLT_ERR_FORMAT, "checkpoint %s: state.json has no run config", dir);
    vlt_run_config rc;
    vlt_run_config_default(&rc);
    if (s == VLT_OK) s = vlt_run_config_parse(cfg->valuestring, strlen(cfg->valuestring), what, &rc);
    cJSON_Delete(root);
    if (s == VLT_OK) {
        snprintf(name, cap, "%s", rc.model_name);
        *seed = rc.seed;
        vqa->vqa.n_answers = vqa->vqa.hidden = 0;
        if (rc.vqa_head[0]) s = vlt_run_config_model_cfg(&rc, vqa);
    }
    return s;
}

// The VQA classifier head's shape as a weights file holds it (vlt_model_source_open_vqa): the
// answers and the hidden width from vqa_head.fc2.weight (answers, hidden), the fusion layers from
// the highest vqa_head.fusion.resblocks.<i>. index (none: the pooled features concatenated).
static vlt_status classifier_head_of_file(const char *weights, const char *model, vlt_model_cfg *mc) {
    vlt_safetensors *f;
    VLT_TRY(vlt_safetensors_open(weights, &f));
    const char *key = VLT_VQA_HEAD_PREFIX "fc2.weight", *fusion = VLT_VQA_HEAD_PREFIX "fusion.resblocks.";
    const vlt_st_tensor *fc2 = vlt_safetensors_get(f, key);
    vlt_status s = fc2 && fc2->ndim == 2 && fc2->shape[0] > 0 && fc2->shape[0] < (1 << 24) && fc2->shape[1] > 0 &&
                           fc2->shape[1] < (1 << 24)
                       ? VLT_OK
                       : vlt_error_set(VLT_ERR_FORMAT, "weights %s: %s %s for model %s: not the weights of a VQA "
                                       "classifier (model.vqa_head: classifier) or of a model config with an answer head "
                                       "(ALBEF VQA: an \"albef_vqa\" section)", weights, fc2 ? "has a non-matrix" : "has no",
                                       key, model);
    if (s == VLT_OK) {
        mc->vqa.n_answers = (int)fc2->shape[0];
        mc->vqa.hidden = (int)fc2->shape[1];
        mc->vqa.fusion_layers = 0;
        for (int i = 0; i < vlt_safetensors_count(f); i++) {
            const char *name = vlt_safetensors_at(f, i)->name;
            if (strncmp(name, fusion, strlen(fusion))) continue;
            int l = atoi(name + strlen(fusion));
            if (l >= 0 && l < VLT_MAX_LAYERS && l + 1 > mc->vqa.fusion_layers) mc->vqa.fusion_layers = l + 1;
        }
    }
    vlt_safetensors_close(f);
    return s;
}

static vlt_status source_open(const char *checkpoint, const char *weights, const char *model, bool vqa_head,
                              vlt_model_source *out) {
    memset(out, 0, sizeof *out);
    const char *why = vlt_model_source_check(checkpoint, weights, model);
    if (why) return vlt_error_set(VLT_ERR_ARG, "%s", why);
    int64_t seed = 0;
    vlt_model_cfg vqa = {0};
    if (checkpoint) {
        VLT_TRY(vlt_checkpoint_resolve(checkpoint, checkpoint, out->checkpoint, sizeof out->checkpoint));
        VLT_TRY(checkpoint_model_name(out->checkpoint, out->model_name, sizeof out->model_name, &seed, &vqa));
        snprintf(out->weights, sizeof out->weights, "%s/model.safetensors", out->checkpoint);
        snprintf(out->label, sizeof out->label, "%s", out->checkpoint);
    } else {
        snprintf(out->model_name, sizeof out->model_name, "%s", model);
        snprintf(out->weights, sizeof out->weights, "%s", weights);
        snprintf(out->label, sizeof out->label, "%s (model %s)", weights, model);
        if (access(weights, R_OK) != 0) return vlt_error_set(VLT_ERR_IO, "weights %s: cannot read it", weights);
    }
    config_file(out->model_name, out->config_path, sizeof out->config_path);
    vlt_model_cfg mc;
    VLT_TRY(vlt_model_cfg_load(out->model_name, &mc));
    mc.vqa = vqa.vqa;   // a VQA run's answer head (vlt_run_config_model_cfg)
    // a weights file for vlt vqa: the classifier head the file holds, unless the config has its own
    if (weights && vqa_head && !(mc.is_albef && mc.albef.vqa.on)) VLT_TRY(classifier_head_of_file(weights, model, &mc));
    VLT_TRY(vlt_model_create(&out->m, &mc, (uint64_t)seed));
    vlt_status s;
    if (checkpoint) {
        s = vlt_checkpoint_load(out->checkpoint, out->m.params, NULL, NULL);
    } else {
        // strict: every key of the model from the file, nothing else in the file
        s = vlt_safetensors_load_params(weights, out->m.params, false, NULL);
        if (s != VLT_OK) {
            char msg[1200];
            snprintf(msg, sizeof msg, "%s", vlt_error_message());
            s = vlt_error_set(s, "%s for model %s (%s): %s", weights, model, vlt_model_title(&out->m), msg);
        }
    }
    if (s != VLT_OK) {
        vlt_model_free(&out->m);
        memset(&out->m, 0, sizeof out->m);
    }
    return s;
}

vlt_status vlt_model_source_open(const char *checkpoint, const char *weights, const char *model, vlt_model_source *out) {
    return source_open(checkpoint, weights, model, false, out);
}

vlt_status vlt_model_source_open_vqa(const char *checkpoint, const char *weights, const char *model,
                                     vlt_model_source *out) {
    return source_open(checkpoint, weights, model, true, out);
}

void vlt_model_source_close(vlt_model_source *src) {
    if (src->m.ops) vlt_model_free(&src->m);
    memset(&src->m, 0, sizeof src->m);
}

vlt_status vlt_model_source_report(const vlt_model_source *src, vlt_eval_report *rep) {
    VLT_TRY(vlt_eval_report_input(rep, "weights", src->weights));
    if (src->checkpoint[0]) {
        char path[1100];
        snprintf(path, sizeof path, "%s/state.json", src->checkpoint);
        VLT_TRY(vlt_eval_report_input(rep, "checkpoint state", path));
        vlt_eval_report_setting(rep, "checkpoint", src->checkpoint);
    } else {
        vlt_eval_report_setting(rep, "weights", src->weights);
    }
    if (src->config_path[0]) VLT_TRY(vlt_eval_report_input(rep, "model config", src->config_path));
    vlt_eval_report_setting(rep, "model", src->model_name);
    vlt_eval_report_setting(rep, "model_kind", vlt_model_title(&src->m));
    return VLT_OK;
}

vlt_status vlt_model_source_report_shards(const vlt_model_source *src, vlt_eval_report *rep, const char *shards_spec,
                                          int batch, int limit) {
    VLT_TRY(vlt_model_source_report(src, rep));
    vlt_shard_list shards = {0};
    vlt_status s = vlt_shardspec_expand(shards_spec, &shards);
    for (size_t i = 0; s == VLT_OK && i < shards.n; i++) s = vlt_eval_report_input(rep, "shard", shards.paths[i]);
    vlt_shard_list_free(&shards);
    const char *assets = getenv("VLT_ASSETS");
    char path[4200];
    // A kind with its own tokenizer (ALBEF: BERT WordPiece of its config's vocabulary) names that file.
    bool own = vlt_model_has_tokenizer(&src->m) && vlt_albef_vocab_path(&src->m.cfg, path, sizeof path);
    if (!own) snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt.gz", assets && assets[0] ? assets : "assets");
    if (s == VLT_OK) s = vlt_eval_report_input(rep, "tokenizer vocabulary", path);
    if (s != VLT_OK) return s;
    const vlt_model_cfg *mc = &src->m.cfg;
    vlt_eval_report_setting(rep, "shards", shards_spec);
    vlt_eval_report_setting_num(rep, "image_size", mc->vision.image_size);
    vlt_eval_report_setting(rep, "image_decode", "full size, as PIL (no DCT-scaled JPEG decoding)");
    vlt_eval_report_setting(rep, "transform", "open_clip eval preprocess: RGB, resize the shorter side to image_size "
                                              "(bicubic, PIL's antialiasing), center crop, CLIP mean/std");
    vlt_eval_report_setting(rep, "tokenizer", own ? (mc->albef.do_lower_case ? "BERT WordPiece as Hugging Face's BertTokenizer "
                                                          "(uncased: lower case, accents stripped; [CLS] ... [SEP], [PAD])"
                                                        : "BERT WordPiece as Hugging Face's BertTokenizer (cased; [CLS] ... "
                                                          "[SEP], [PAD])")
                                                 : "CLIP BPE as open_clip's tokenizer (ftfy.fix_text, HTML unescape, "
                                                   "lower case, SOT/EOT, zero padding)");
    vlt_eval_report_setting_num(rep, "context_length", mc->text.context_length);
    vlt_eval_report_setting_num(rep, "batch", batch);
    vlt_eval_report_setting_num(rep, "limit", limit);
    vlt_eval_report_setting(rep, "device", "cpu");
    vlt_eval_report_setting(rep, "precision", "fp32");
    vlt_eval_report_setting_num(rep, "threads", omp_get_max_threads());
    vlt_eval_report_setting(rep, "order", "shards in spec order, one reader, every sample");
    return VLT_OK;
}
