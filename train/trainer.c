// trainer.c — the training loop (see trainer.h).
#include "train/trainer.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autograd/optim.h"
#include "autograd/rng.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/safetensors.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "eval/retrieval.h"
#include "layers/clip.h"
#include "layers/coca.h"
#include "layers/generate.h"
#include "eval/bleu.h"
#include "eval/caption_set.h"
#include "eval/cider.h"
#include "eval/ptb_tokenize.h"
#include "train/metrics_log.h"
#include "train/schedule.h"

#define STATE_FORMAT 1

struct vlt_trainer {
    vlt_run_config cfg;
    vlt_model_cfg mcfg;
    vlt_trainer_opts opts;
    bool is_coca;                  // the model config has a multimodal_cfg
    vlt_clip model;                // CLIP (when !is_coca)
    vlt_coca coca;                 // CoCa (when is_coca)
    vlt_params *params;            // the model's parameter table, either way
    vlt_tensor *logit_scale;
    bool model_ready;
    bool *decay;
    vlt_adamw *opt;
    vlt_tokenizer *tok;
    vlt_loader *loader;
    vlt_schedule sched;
    vlt_tensor *images, *ids;      // persistent batch buffers (B, 3, S, S), (B, T)
    int64_t step, epoch;
    int nonfinite_run;
    int64_t nonfinite_total;
    float *losses;                 // per step taken by this object
    int64_t n_losses, cap_losses;
    vlt_metrics_log *mlog;         // metrics.jsonl, TensorBoard events, the progress line
    double t_start;                // seconds: training start
    double t_last_log, t_data;     // since the previous logged step: its time, data wait
    int64_t images_since_log;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static vlt_status mkdir_p(const char *path) {
    char buf[VLT_CFG_STR];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) return vlt_error_set(VLT_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) return vlt_error_set(VLT_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
    return VLT_OK;
}

// The resolved config, written temp + rename so a reader never sees half of it.
static vlt_status write_config(const vlt_trainer *t) {
    char path[VLT_CFG_STR + 32], tmp[VLT_CFG_STR + 48];
    snprintf(path, sizeof path, "%s/config.yaml", t->cfg.output_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    vlt_run_config_write(&t->cfg, f);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    return VLT_OK;
}

static vlt_status create_loader(const vlt_trainer *t, const char *shards, bool train, vlt_loader **out) {
    vlt_loader_cfg lc;
    vlt_loader_cfg_default(&lc);
    lc.shards = shards;
    lc.readers = t->cfg.workers;
    lc.batch_size = t->cfg.batch_size;
    lc.image_size = t->mcfg.vision.image_size;
    lc.context_len = t->mcfg.text.context_length;
    lc.train = train;
    vlt_transform_cfg_default(&lc.transform, lc.image_size);
    lc.transform.scale_min = (float)t->cfg.scale_min;
    lc.transform.scale_max = (float)t->cfg.scale_max;
    lc.transform.hflip = train && t->cfg.flip;
    lc.tokenizer = t->tok;
    lc.seed = (uint64_t)t->cfg.seed;
    lc.shuffle_shards = train;
    lc.shuffle_buffer = train ? t->cfg.shuffle_buffer : 0;
    lc.shuffle_initial = t->cfg.shuffle_initial;
    lc.resampled = train && t->cfg.resampled;
    lc.samples_per_epoch = train ? t->cfg.samples_per_epoch : 0;
    lc.drop_last = train;
    // The reader count cannot exceed the shard count; a small val set gets one reader.
    if (!train) lc.readers = 1;
    lc.report = !t->opts.quiet;
    return vlt_loader_create(&lc, out);
}

// Builds the state JSON stored in each checkpoint.
static char *state_json(vlt_trainer *t) {
    char *pos = NULL;
    if (vlt_loader_position_json(t->loader, &pos) != VLT_OK) return NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "format", STATE_FORMAT);
    cJSON_AddNumberToObject(root, "step", (double)t->step);
    cJSON_AddNumberToObject(root, "epoch", (double)t->epoch);
    cJSON_AddNumberToObject(root, "world_size", 1);
    cJSON_AddNumberToObject(root, "seed", (double)t->cfg.seed);
    cJSON_AddNumberToObject(root, "nonfinite_total", (double)t->nonfinite_total);
    cJSON_AddNumberToObject(root, "nonfinite_run", t->nonfinite_run);
    cJSON_AddNumberToObject(root, "lr", vlt_schedule_lr(&t->sched, t->step));
    cJSON_AddItemToObject(root, "loader", cJSON_Parse(pos));
    char *cfg_text = NULL;
    size_t cfg_len = 0;
    FILE *mf = open_memstream(&cfg_text, &cfg_len);
    vlt_run_config_write(&t->cfg, mf);
    fclose(mf);
    cJSON_AddStringToObject(root, "config", cfg_text);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)vlt_rng_hash_str(cfg_text));
    cJSON_AddStringToObject(root, "config_hash", hash);
    free(cfg_text);
    free(pos);
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

static vlt_status save_checkpoint(vlt_trainer *t) {
    char *state = state_json(t);
    if (!state) return vlt_error_code() ? vlt_error_code() : vlt_error_set(VLT_ERR_NOMEM, "checkpoint: state");
    vlt_status s = vlt_checkpoint_save(t->cfg.output_dir, t->step, t->params, t->opt, state, t->cfg.checkpoint_keep);
    free(state);
    if (s == VLT_OK && !t->opts.quiet) fprintf(t->opts.log, "checkpoint: step %lld saved\n", (long long)t->step);
    return s;
}

static vlt_status restore(vlt_trainer *t, const char *which) {
    char dir[VLT_CFG_STR + 64];
    VLT_TRY(vlt_checkpoint_resolve(t->cfg.output_dir, which, dir, sizeof dir));
    char *state = NULL;
    // Check the config before touching the model: a different model is refused by key.
    vlt_status s = vlt_checkpoint_load(dir, t->params, t->opt, &state);
    if (s != VLT_OK) return s;
    cJSON *root = cJSON_Parse(state);
    free(state);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *loader = cJSON_GetObjectItemCaseSensitive(root, "loader");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(root, "step");
    const cJSON *world = cJSON_GetObjectItemCaseSensitive(root, "world_size");
    if (!cJSON_IsString(cfg) || !cJSON_IsObject(loader) || !cJSON_IsNumber(step)) {
        cJSON_Delete(root);
        return vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json lacks config, loader or step", dir);
    }
    if (cJSON_IsNumber(world) && world->valueint != 1) {
        int w = world->valueint;
        cJSON_Delete(root);
        return vlt_error_set(VLT_ERR_ARG, "resume %s: saved by %d ranks, this run has 1 (re-sharding is not supported)", dir, w);
    }
    vlt_run_config old;
    vlt_run_config_default(&old);
    s = vlt_run_config_parse(cfg->valuestring, strlen(cfg->valuestring), "checkpoint config", &old);
    char diff[1024];
    if (s == VLT_OK && vlt_run_config_model_diff(&old, &t->cfg, diff, sizeof diff) > 0)
        s = vlt_error_set(VLT_ERR_ARG, "resume %s: the model config differs from the checkpoint's: %s", dir, diff);
    if (s == VLT_OK) {
        char *pos = cJSON_PrintUnformatted(loader);
        s = vlt_loader_restore_json(t->loader, pos);
        free(pos);
    }
    if (s == VLT_OK) {
        t->step = (int64_t)step->valuedouble;
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "epoch");
        const cJSON *nt = cJSON_GetObjectItemCaseSensitive(root, "nonfinite_total");
        const cJSON *nr = cJSON_GetObjectItemCaseSensitive(root, "nonfinite_run");
        t->epoch = cJSON_IsNumber(e) ? (int64_t)e->valuedouble : 0;
        t->nonfinite_total = cJSON_IsNumber(nt) ? (int64_t)nt->valuedouble : 0;
        t->nonfinite_run = cJSON_IsNumber(nr) ? nr->valueint : 0;
        if (!t->opts.quiet) fprintf(t->opts.log, "resumed from %s at step %lld\n", dir, (long long)t->step);
    }
    cJSON_Delete(root);
    return s;
}

static void lock_towers(vlt_trainer *t) {
    if (t->cfg.lock_image) vlt_params_set_trainable(t->params, "visual.", false);
    if (t->cfg.lock_text) {
        static const char *const text[] = {"token_embedding.", "positional_embedding", "transformer.", "ln_final.",
                                           "text_projection", "text.", NULL};
        for (int i = 0; text[i]; i++) vlt_params_set_trainable(t->params, text[i], false);
    }
}

vlt_status vlt_trainer_create(const vlt_run_config *cfg, const vlt_trainer_opts *opts, vlt_trainer **out) {
    *out = NULL;
    VLT_TRY(vlt_run_config_validate(cfg));
    vlt_trainer *t = calloc(1, sizeof *t);
    if (!t) return vlt_error_set(VLT_ERR_NOMEM, "trainer: out of memory");
    t->cfg = *cfg;
    if (opts) t->opts = *opts;
    if (!t->opts.log) t->opts.log = stdout;
    vlt_status s = vlt_model_cfg_load(cfg->model_name, &t->mcfg);
    if (s == VLT_OK) {
        t->is_coca = t->mcfg.is_coca;
        s = t->is_coca ? vlt_coca_init(&t->coca, &t->mcfg, (uint64_t)cfg->seed)
                       : vlt_clip_init(&t->model, &t->mcfg, (uint64_t)cfg->seed);
    }
    if (s == VLT_OK) {
        t->model_ready = true;
        t->params = t->is_coca ? &t->coca.params : &t->model.params;
        t->logit_scale = t->is_coca ? t->coca.logit_scale : t->model.logit_scale;
    }
    if (s == VLT_OK && cfg->init_from[0] && !(opts && opts->resume)) {
        vlt_st_report rep;
        s = vlt_safetensors_load_params(cfg->init_from, t->params, false, &rep);
        vlt_st_report_free(&rep);
    }
    if (s == VLT_OK) {
        lock_towers(t);
        t->decay = malloc((size_t)t->params->n);
        vlt_clip_decay_mask(t->params, t->decay);
        vlt_adamw_cfg ac = {(float)cfg->beta1, (float)cfg->beta2, (float)cfg->eps, (float)cfg->weight_decay};
        t->opt = vlt_adamw_new(t->params->t, t->decay, t->params->n, ac);
        if (!t->opt) s = vlt_error_code();
    }
    if (s == VLT_OK) s = vlt_tokenizer_load(NULL, &t->tok);
    if (s == VLT_OK) s = create_loader(t, cfg->train_shards, true, &t->loader);
    if (s == VLT_OK) {
        int B = cfg->batch_size, S = t->mcfg.vision.image_size, T = t->mcfg.text.context_length;
        t->images = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(B, 3, S, S), "images");
        t->ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, T), "ids");
        if (!t->images || !t->ids) s = vlt_error_code();
    }
    if (s == VLT_OK) {
        t->sched.kind = !strcmp(cfg->schedule, "const") ? VLT_SCHED_CONST
                        : !strcmp(cfg->schedule, "const-cooldown") ? VLT_SCHED_CONST_COOLDOWN : VLT_SCHED_COSINE;
        t->sched.lr = cfg->lr;
        t->sched.lr_min = cfg->lr_min;
        t->sched.steps = cfg->steps;
        t->sched.warmup = cfg->warmup;
        t->sched.cooldown = cfg->cooldown;
        s = mkdir_p(cfg->output_dir);
    }
    if (s == VLT_OK && opts && opts->resume) s = restore(t, opts->resume);
    if (s == VLT_OK) s = write_config(t);
    if (s == VLT_OK) s = vlt_metrics_log_open(&t->mlog, cfg->output_dir, cfg->steps, cfg->tensorboard);
    if (s == VLT_OK)
        vlt_metrics_log_set_console(t->mlog, t->opts.log, t->opts.quiet ? VLT_CONSOLE_OFF : VLT_CONSOLE_AUTO,
                                    cfg->log_every);
    if (s != VLT_OK) {
        vlt_status keep = s;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vlt_error_message());
        vlt_trainer_free(t);
        return vlt_error_set(keep, "%s", msg);
    }
    t->t_start = t->t_last_log = now_s();
    *out = t;
    return VLT_OK;
}

// Next training batch into the persistent buffers; an epoch end moves to the next epoch.
static vlt_status next_batch(vlt_trainer *t) {
    const vlt_batch *b = NULL;
    for (int tries = 0; tries < 2; tries++) {
        VLT_TRY(vlt_loader_next(t->loader, &b));
        if (b) break;
        t->epoch++;  // the loader prints the epoch's data totals itself
    }
    if (!b) return vlt_error_set(VLT_ERR_STATE, "trainer: the training shards gave no full batch in an epoch");
    t->epoch = b->epoch;
    size_t S = (size_t)b->image_size;
    memcpy(t->images->data, b->images, (size_t)b->n * 3 * S * S * sizeof(float));
    memcpy(t->ids->data, b->tokens, (size_t)b->n * (size_t)b->context_len * sizeof(int32_t));
    return VLT_OK;
}

static void record_loss(vlt_trainer *t, float loss) {
    if (t->n_losses == t->cap_losses) {
        t->cap_losses = t->cap_losses ? 2 * t->cap_losses : 1024;
        t->losses = realloc(t->losses, (size_t)t->cap_losses * sizeof(float));
    }
    t->losses[t->n_losses++] = loss;
}

// One optimizer step. *stop is set when the run must end (too many non-finite steps).
static vlt_status train_step(vlt_trainer *t, bool *stop) {
    vlt_params *P = t->params;
    vlt_zero_grad(P->t, P->n);
    double loss_sum = 0, parts_sum[2] = {0, 0};
    for (int a = 0; a < t->cfg.accum_steps; a++) {
        double t0 = now_s();
        VLT_TRY(next_batch(t));
        t->t_data += now_s() - t0;
        vlt_tensor *total;
        if (t->is_coca) {
            vlt_coca_output out;
            vlt_coca_loss_cfg lc = {(float)t->cfg.caption_loss_weight, (float)t->cfg.clip_loss_weight,
                                    (float)t->cfg.label_smoothing};
            VLT_TRY(vlt_coca_forward(&t->coca, t->images, t->ids, lc, &out));
            total = out.loss;
            parts_sum[0] += vlt_f32(out.contrastive_loss)[0];
            parts_sum[1] += vlt_f32(out.caption_loss)[0];
        } else {
            vlt_clip_output out;
            VLT_TRY(vlt_clip_forward(&t->model, t->images, t->ids, &out));
            total = out.loss;
        }
        vlt_tensor *loss = t->cfg.accum_steps > 1 ? vlt_scale(total, 1.0f / t->cfg.accum_steps) : total;
        loss_sum += vlt_f32(total)[0];
        VLT_TRY(vlt_backward(loss));
        vlt_step_reset();
        t->images_since_log += t->cfg.batch_size;
    }
    float loss = (float)(loss_sum / t->cfg.accum_steps);
    float norm = vlt_clip_grad_norm(P->t, P->n, t->cfg.grad_clip > 0 ? (float)t->cfg.grad_clip : 0.0f);
    if (!isfinite(loss) || !isfinite(norm)) {
        t->nonfinite_run++;
        t->nonfinite_total++;
        record_loss(t, NAN);
        fprintf(stderr, "vlt train: step %lld: non-finite %s (loss %g, grad norm %g); step skipped (%d in a row)\n",
                (long long)t->step, isfinite(loss) ? "gradient" : "loss", loss, norm, t->nonfinite_run);
        if (t->nonfinite_run >= t->cfg.max_nonfinite) {
            *stop = true;
            vlt_status s = save_checkpoint(t);  // the parameters are still the last good ones
            vlt_error_set(VLT_ERR_STATE, "training stopped: %d non-finite steps in a row at step %lld; the last good "
                          "state is checkpointed%s", t->nonfinite_run, (long long)t->step, s == VLT_OK ? "" : " (FAILED)");
            return VLT_ERR_STATE;
        }
        t->step++;
        return VLT_OK;
    }
    t->nonfinite_run = 0;
    double lr = vlt_schedule_lr(&t->sched, t->step);
    vlt_adamw_step(t->opt, (float)lr);
    if (t->is_coca) vlt_coca_clamp_logit_scale(&t->coca);
    else vlt_clip_clamp_logit_scale(&t->model);
    record_loss(t, loss);
    t->step++;
    if (t->step % t->cfg.log_every == 0 || t->step == t->cfg.steps) {
        double now = now_s(), dt = now - t->t_last_log;
        vlt_step_metrics m = {
            .step = t->step,
            .epoch = (double)t->epoch,
            .loss = loss,
            .lr = lr,
            .logit_scale = expf(vlt_f32(t->logit_scale)[0]),
            .images_per_s = dt > 0 ? t->images_since_log / dt : 0,
            .data_wait = dt > 0 ? t->t_data / dt : 0,
            .time_s = now - t->t_start,
        };
        if (t->is_coca) {
            m.n_parts = 2;
            m.parts[0] = (vlt_named_scalar){"contrastive", parts_sum[0] / t->cfg.accum_steps};
            m.parts[1] = (vlt_named_scalar){"caption", parts_sum[1] / t->cfg.accum_steps};
        }
        vlt_status s = vlt_metrics_log_step(t->mlog, &m);
        t->t_last_log = now;
        t->t_data = 0;
        t->images_since_log = 0;
        if (s != VLT_OK) return s;
    }
    return VLT_OK;
}

vlt_status vlt_trainer_eval(vlt_trainer *t, double i2t[3], double t2i[3], int *n_pairs) {
    if (!t->cfg.val_shards[0]) return vlt_error_set(VLT_ERR_ARG, "eval: data.val (the held-out shards) is not set");
    vlt_loader *L = NULL;
    VLT_TRY(create_loader(t, t->cfg.val_shards, false, &L));
    int E = t->mcfg.embed_dim, cap = t->cfg.val_samples > 0 ? t->cfg.val_samples : 1 << 20, n = 0;
    float *img = NULL, *txt = NULL;
    int alloc = 0;
    vlt_status s = VLT_OK;
    vlt_no_grad_enter();
    while (n < cap) {
        const vlt_batch *b = NULL;
        if ((s = vlt_loader_next(L, &b)) != VLT_OK || !b) break;
        int take = b->n < cap - n ? b->n : cap - n, S = b->image_size, T = b->context_len;
        vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(take, 3, S, S), "val_images");
        vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(take, T), "val_ids");
        memcpy(im->data, b->images, (size_t)take * 3 * S * S * sizeof(float));
        memcpy(ids->data, b->tokens, (size_t)take * T * sizeof(int32_t));
        vlt_tensor *fi = t->is_coca ? vlt_coca_encode_image(&t->coca, im, true, NULL) : vlt_clip_encode_image(&t->model, im, true);
        vlt_tensor *ft = t->is_coca ? vlt_coca_encode_text(&t->coca, ids, true, NULL) : vlt_clip_encode_text(&t->model, ids, true);
        if (!fi || !ft) s = vlt_error_code();
        if (s == VLT_OK && n + take > alloc) {
            alloc = (n + take) * 2;
            img = realloc(img, (size_t)alloc * E * sizeof(float));
            txt = realloc(txt, (size_t)alloc * E * sizeof(float));
        }
        if (s == VLT_OK) {
            memcpy(img + (size_t)n * E, fi->data, (size_t)take * E * sizeof(float));
            memcpy(txt + (size_t)n * E, ft->data, (size_t)take * E * sizeof(float));
            n += take;
        }
        vlt_step_reset();
        vlt_tensor_free(im);
        vlt_tensor_free(ids);
        if (s != VLT_OK) break;
    }
    vlt_no_grad_exit();
    vlt_loader_free(L);
    if (s == VLT_OK && n == 0) s = vlt_error_set(VLT_ERR_ARG, "eval: the val shards %s gave no samples", t->cfg.val_shards);
    if (s == VLT_OK) {
        int32_t *owner = malloc(sizeof(int32_t) * (size_t)n);
        for (int i = 0; i < n; i++) owner[i] = i;
        vlt_eval_retrieval_result r;
        s = vlt_eval_retrieval(img, n, txt, n, E, owner, 0, &r, NULL, NULL);
        free(owner);
        if (s == VLT_OK) {
            for (int k = 0; k < 3; k++) { i2t[k] = r.i2t.recall[k]; t2i[k] = r.t2i.recall[k]; }
            *n_pairs = n;
        }
    }
    free(img);
    free(txt);
    return s;
}

// `text` as pycocoevalcap tokenizes it (malloc'd), or NULL with the error set.
static char *ptb(const char *text) {
    char *out = NULL;
    return vlt_eval_ptb_tokenize(text, &out) == VLT_OK ? out : NULL;
}

vlt_status vlt_trainer_eval_captions(vlt_trainer *t, int n_images, double *bleu4, double *cider, FILE *show,
                                     int n_show) {
    if (!t->is_coca) return vlt_error_set(VLT_ERR_ARG, "caption eval: the model is not a captioner (CoCa)");
    if (!t->cfg.val_shards[0]) return vlt_error_set(VLT_ERR_ARG, "caption eval: data.val is not set");
    vlt_loader *L = NULL;
    VLT_TRY(create_loader(t, t->cfg.val_shards, false, &L));
    vlt_generate_cfg g = vlt_generate_defaults();
    int ctx = t->mcfg.text.context_length < t->mcfg.multimodal.context_length ? t->mcfg.text.context_length
                                                                               : t->mcfg.multimodal.context_length;
    if (g.max_len > ctx) g.max_len = ctx;
    if (g.min_len >= g.max_len) g.min_len = g.max_len - 1;
    vlt_eval_caption_set *set = vlt_eval_caption_set_new();
    int done = 0;
    vlt_status s = VLT_OK;
    while (s == VLT_OK && done < n_images) {
        const vlt_batch *b = NULL;
        if ((s = vlt_loader_next(L, &b)) != VLT_OK || !b) break;
        int take = b->n < n_images - done ? b->n : n_images - done, S = b->image_size;
        vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(take, 3, S, S), "val_images");
        int32_t *out = malloc(sizeof(int32_t) * (size_t)take * g.max_len);
        memcpy(im->data, b->images, (size_t)take * 3 * S * S * sizeof(float));
        vlt_no_grad_enter();
        s = vlt_coca_generate(&t->coca, im, &g, out, NULL);
        vlt_no_grad_exit();
        vlt_step_reset();
        for (int i = 0; s == VLT_OK && i < take; i++) {
            char text[1024];
            s = vlt_tokenizer_decode(t->tok, out + (size_t)i * g.max_len, g.max_len, text, sizeof text);
            if (s != VLT_OK) break;
            char *cand = ptb(text), *ref = ptb(b->captions[i]);
            if (!cand || !ref) s = vlt_error_code();
            else s = vlt_eval_caption_set_add(set, cand, (const char *const *)&ref, 1);
            if (show && done + i < n_show) fprintf(show, "  generated: %-60s true: %s\n", text, b->captions[i]);
            free(cand);
            free(ref);
        }
        done += take;
        free(out);
        vlt_tensor_free(im);
    }
    vlt_loader_free(L);
    if (s == VLT_OK && done == 0) s = vlt_error_set(VLT_ERR_ARG, "caption eval: the val shards gave no images");
    double bleu[4];
    if (s == VLT_OK) s = vlt_eval_bleu(set, bleu, NULL);
    if (s == VLT_OK) s = vlt_eval_cider_d(set, cider, NULL);
    if (s == VLT_OK) *bleu4 = bleu[3];
    vlt_eval_caption_set_free(set);
    return s;
}

static vlt_status maybe_eval(vlt_trainer *t) {
    if (t->cfg.eval_every <= 0 || !t->cfg.val_shards[0] || t->step % t->cfg.eval_every) return VLT_OK;
    double i2t[3], t2i[3];
    int n;
    VLT_TRY(vlt_trainer_eval(t, i2t, t2i, &n));
    const char *names[6] = {"val/i2t_R@1", "val/i2t_R@5", "val/i2t_R@10", "val/t2i_R@1", "val/t2i_R@5", "val/t2i_R@10"};
    vlt_step_metrics m = {.step = t->step, .epoch = (double)t->epoch, .time_s = now_s() - t->t_start,
                          .n_extra = 6, .extras_only = true};
    for (int k = 0; k < 6; k++) m.extra[k] = (vlt_named_scalar){names[k], 100 * (k < 3 ? i2t[k] : t2i[k - 3])};
    if (t->is_coca) {
        double bleu4, cider;
        VLT_TRY(vlt_trainer_eval_captions(t, 100, &bleu4, &cider, NULL, 0));
        m.extra[m.n_extra++] = (vlt_named_scalar){"val/bleu4", 100 * bleu4};
        m.extra[m.n_extra++] = (vlt_named_scalar){"val/cider", 100 * cider};
    }
    return vlt_metrics_log_step(t->mlog, &m);
}

vlt_status vlt_trainer_run_steps(vlt_trainer *t, int64_t n) {
    int64_t end = t->step + n < t->cfg.steps ? t->step + n : t->cfg.steps;
    while (t->step < end) {
        bool stop = false;
        VLT_TRY(train_step(t, &stop));
        if (t->cfg.checkpoint_every > 0 && t->step % t->cfg.checkpoint_every == 0 && t->step < t->cfg.steps)
            VLT_TRY(save_checkpoint(t));
        VLT_TRY(maybe_eval(t));
    }
    if (t->step == t->cfg.steps) VLT_TRY(save_checkpoint(t));
    return VLT_OK;
}

vlt_status vlt_trainer_run(vlt_trainer *t) { return vlt_trainer_run_steps(t, t->cfg.steps - t->step); }

int64_t vlt_trainer_step(const vlt_trainer *t) { return t->step; }
bool vlt_trainer_is_captioner(const vlt_trainer *t) { return t->is_coca; }

const float *vlt_trainer_losses(const vlt_trainer *t, int64_t *n) {
    *n = t->n_losses;
    return t->losses;
}

void vlt_trainer_free(vlt_trainer *t) {
    if (!t) return;
    if (t->mlog) vlt_metrics_log_close(t->mlog);
    vlt_loader_free(t->loader);
    vlt_tokenizer_free(t->tok);
    vlt_adamw_free(t->opt);
    if (t->model_ready) {
        if (t->is_coca) vlt_coca_free(&t->coca);
        else vlt_clip_free(&t->model);
    }
    vlt_tensor_free(t->images);
    vlt_tensor_free(t->ids);
    free(t->decay);
    free(t->losses);
    free(t);
}
