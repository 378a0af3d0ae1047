// run_config.c — YAML run configs (see run_config.h). One table describes every key: its
// type, where it lives in the struct, its default and whether it fixes the model (resume check).
#include "train/run_config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "layers/model_config.h"

typedef enum { F_STR, F_INT, F_I64, F_F64, F_BOOL } field_type;

typedef struct {
    const char *key;        // "section.key"
    field_type type;
    size_t offset;
    size_t size;            // for strings
    const char *dflt;
    bool model;             // part of the model identity (resume refuses a change)
} field;

#define S(k, m, d, model) {k, F_STR, offsetof(vlt_run_config, m), sizeof(((vlt_run_config *)0)->m), d, model}
#define I(k, m, d, model) {k, F_INT, offsetof(vlt_run_config, m), 0, d, model}
#define L(k, m, d, model) {k, F_I64, offsetof(vlt_run_config, m), 0, d, model}
#define D(k, m, d, model) {k, F_F64, offsetof(vlt_run_config, m), 0, d, model}
#define B(k, m, d, model) {k, F_BOOL, offsetof(vlt_run_config, m), 0, d, model}

static const field FIELDS[] = {
    S("model.name", model_name, "tiny-clip", true),
    S("model.init_from", init_from, "", false),
    B("model.lock_image", lock_image, "false", false),
    B("model.lock_text", lock_text, "false", false),
    L("model.seed", seed, "0", true),
    S("model.vqa_head", vqa_head, "", true),
    I("model.vqa_answers", vqa_answers, "3129", true),
    I("model.vqa_hidden", vqa_hidden, "0", true),
    S("model.vqa_fusion", vqa_fusion, "concat", true),
    I("model.vqa_fusion_layers", vqa_fusion_layers, "2", true),
    S("data.train", train_shards, "", false),
    S("data.val", val_shards, "", false),
    I("data.batch_size", batch_size, "64", true),
    I("data.workers", workers, "2", false),
    I("data.shuffle_buffer", shuffle_buffer, "1000", false),
    I("data.shuffle_initial", shuffle_initial, "100", false),
    B("data.resampled", resampled, "false", false),
    B("data.flip", flip, "false", false),
    B("data.fast_decode", fast_decode, "false", false),
    L("data.samples_per_epoch", samples_per_epoch, "0", false),
    D("data.scale_min", scale_min, "0.9", false),
    D("data.scale_max", scale_max, "1.0", false),
    I("data.val_samples", val_samples, "0", false),
    S("data.answer_vocab", answer_vocab, "", false),
    D("optim.lr", lr, "5e-4", false),
    D("optim.weight_decay", weight_decay, "0.2", false),
    D("optim.beta1", beta1, "0.9", false),
    D("optim.beta2", beta2, "0.98", false),
    D("optim.eps", eps, "1e-6", false),
    D("optim.grad_clip", grad_clip, "1.0", false),
    I("optim.accum_steps", accum_steps, "1", false),
    S("schedule.type", schedule, "cosine", false),
    L("schedule.steps", steps, "1000", false),
    L("schedule.warmup", warmup, "100", false),
    L("schedule.cooldown", cooldown, "0", false),
    D("schedule.lr_min", lr_min, "0", false),
    D("loss.clip_weight", clip_loss_weight, "1.0", false),
    D("loss.caption_weight", caption_loss_weight, "2.0", false),
    D("loss.label_smoothing", label_smoothing, "0", false),
    S("train.device", device, "cpu", false),
    S("train.precision", precision, "fp32", false),
    I("train.max_nonfinite", max_nonfinite, "5", false),
    B("train.zero", zero, "false", false),
    S("train.zero_partition", zero_partition, "tensors", false),
    S("train.grad_reduce_dtype", grad_reduce_dtype, "f32", false),
    S("train.stop_signal", stop_signal, "", false),
    L("checkpoint.every", checkpoint_every, "500", false),
    I("checkpoint.keep", checkpoint_keep, "3", false),
    L("eval.every", eval_every, "0", false),
    L("log.every", log_every, "10", false),
    B("log.tensorboard", tensorboard, "true", false),
    S("output.dir", output_dir, "runs/run", false),
};
#define N_FIELDS ((int)(sizeof FIELDS / sizeof FIELDS[0]))

static const field *find_field(const char *key) {
    for (int i = 0; i < N_FIELDS; i++)
        if (!strcmp(FIELDS[i].key, key)) return &FIELDS[i];
    return NULL;
}

// Keys that name one file or directory: a leading "~/" is the home directory, as in a shell (a
// YAML file or a quoted --set value is not expanded by one). A bare "~" for output.dir would put
// a run's files straight into the home directory (and in YAML a bare ~ is null): refused.
static bool is_path_key(const field *f) {
    return !strcmp(f->key, "output.dir") || !strcmp(f->key, "model.init_from") || !strcmp(f->key, "data.answer_vocab");
}

static vlt_status set_path(char *p, size_t size, const field *f, const char *v, const char *what) {
    if (!strcmp(f->key, "output.dir") && (!strcmp(v, "~") || !*v))
        return vlt_error_set(VLT_ERR_ARG, "%s: output.dir '%s' is not a run directory (in YAML a bare ~ means no value); "
                             "write a path such as ~/runs/clip", what, v);
    if (strncmp(v, "~/", 2)) {
        if (v[0] == '~')
            return vlt_error_set(VLT_ERR_ARG, "%s: %s '%s': only ~/ (your home directory) is expanded, not ~user", what,
                                 f->key, v);
        snprintf(p, size, "%s", v);
        return VLT_OK;
    }
    const char *home = getenv("HOME");
    if (!home || !*home)
        return vlt_error_set(VLT_ERR_ARG, "%s: %s '%s' starts with ~/ but HOME is not set", what, f->key, v);
    if ((size_t)snprintf(p, size, "%s/%s", home, v + 2) >= size)
        return vlt_error_set(VLT_ERR_ARG, "%s: %s is longer than %zu bytes once ~ is expanded", what, f->key, size - 1);
    return VLT_OK;
}

static vlt_status set_field(vlt_run_config *c, const field *f, const char *v, const char *what) {
    char *p = (char *)c + f->offset;
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case F_STR:
        if (strlen(v) >= f->size) return vlt_error_set(VLT_ERR_ARG, "%s: %s is longer than %zu bytes", what, f->key, f->size - 1);
        if (is_path_key(f) && strcmp(what, "defaults")) return set_path(p, f->size, f, v, what);
        strcpy(p, v);
        return VLT_OK;
    case F_INT:
    case F_I64: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno || (f->type == F_INT && (x < -2147483647LL || x > 2147483647LL)))
            return vlt_error_set(VLT_ERR_ARG, "%s: %s must be an integer, got '%s'", what, f->key, v);
        if (f->type == F_INT) *(int *)p = (int)x;
        else *(int64_t *)p = x;
        return VLT_OK;
    }
    case F_F64: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x))
            return vlt_error_set(VLT_ERR_ARG, "%s: %s must be a number, got '%s'", what, f->key, v);
        *(double *)p = x;
        return VLT_OK;
    }
    case F_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1")) *(bool *)p = true;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0")) *(bool *)p = false;
        else return vlt_error_set(VLT_ERR_ARG, "%s: %s must be true or false, got '%s'", what, f->key, v);
        return VLT_OK;
    }
    return VLT_OK;
}

static vlt_status unknown_key(const char *key, const char *what) {
    const char *names[N_FIELDS + 1];
    for (int i = 0; i < N_FIELDS; i++) names[i] = FIELDS[i].key;
    names[N_FIELDS] = NULL;
    return vlt_error_set(VLT_ERR_ARG, "%s: unknown key '%s' (did you mean '%s'?)", what, key, vlt_closest(key, names));
}

void vlt_run_config_default(vlt_run_config *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_FIELDS; i++) set_field(c, &FIELDS[i], FIELDS[i].dflt, "defaults");
}

vlt_status vlt_run_config_set(vlt_run_config *c, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq) return vlt_error_set(VLT_ERR_ARG, "--set %s: expected section.key=value", assignment);
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(eq - assignment), assignment);
    const field *f = find_field(key);
    if (!f) return unknown_key(key, "--set");
    return set_field(c, f, eq + 1, "--set");
}

// Walks the YAML events: a mapping of sections, each a mapping of scalar keys to scalars.
vlt_status vlt_run_config_parse(const char *text, size_t len, const char *what, vlt_run_config *c) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return vlt_error_set(VLT_ERR_NOMEM, "%s: cannot start the YAML parser", what);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    vlt_status st = VLT_OK;
    int depth = 0;                 // mapping depth
    char section[64] = "", key[64] = "";
    bool have_key = false, done = false;
    // Every section and section.key met so far, with its line: YAML forbids a key twice in one
    // mapping, and "last one wins" would silently drop a setting.
    struct { char name[160]; size_t line; } seen[256];
    int n_seen = 0;
    while (!done && st == VLT_OK) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            st = vlt_error_set(VLT_ERR_FORMAT, "%s:%zu: YAML error: %s", what, parser.problem_mark.line + 1,
                               parser.problem ? parser.problem : "?");
            break;
        }
        size_t line = ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
            depth++;
            if (depth > 2) st = vlt_error_set(VLT_ERR_FORMAT, "%s:%zu: %s.%s: nesting deeper than section.key", what, line, section, key);
            else if (depth == 2 && !have_key) st = vlt_error_set(VLT_ERR_FORMAT, "%s:%zu: a mapping without a section name", what, line);
            have_key = false;
            break;
        case YAML_MAPPING_END_EVENT:
            depth--;
            have_key = false;
            if (depth == 1) section[0] = '\0';
            break;
        case YAML_SEQUENCE_START_EVENT:
            st = vlt_error_set(VLT_ERR_FORMAT, "%s:%zu: lists are not used in run configs (%s%s%s)", what, line, section,
                               *section ? "." : "", have_key ? key : "");
            break;
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            if (!have_key) {
                snprintf(depth == 1 ? section : key, 64, "%s", v);
                have_key = true;  // at depth 1 a section name: its mapping follows
                char name[160];
                snprintf(name, sizeof name, depth == 1 ? "%s" : "%s.%s", section, key);
                for (int i = 0; i < n_seen && st == VLT_OK; i++)
                    if (!strcmp(seen[i].name, name))
                        st = vlt_error_set(VLT_ERR_FORMAT, "%s:%zu: %s '%s' is given twice (first at line %zu)", what, line,
                                           depth == 1 ? "section" : "key", name, seen[i].line);
                if (st == VLT_OK && n_seen < (int)(sizeof seen / sizeof seen[0])) {
                    snprintf(seen[n_seen].name, sizeof seen[n_seen].name, "%s", name);
                    seen[n_seen++].line = line;
                }
            } else {
                if (depth == 1) {
                    st = vlt_error_set(VLT_ERR_FORMAT, "%s:%zu: '%s' must be a section (a mapping of keys)", what, line, section);
                } else {
                    char full[160];
                    snprintf(full, sizeof full, "%s.%s", section, key);
                    const field *f = find_field(full);
                    char where[600];
                    snprintf(where, sizeof where, "%s:%zu", what, line);
                    // A plain ~ / null is YAML's "no value": an empty string (output.dir refuses it).
                    bool null = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                                (!strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"));
                    if (f && null && f->type == F_STR) v = !strcmp(f->key, "output.dir") ? "~" : "";
                    st = f ? set_field(c, f, v, where) : unknown_key(full, where);
                }
                have_key = false;
            }
            break;
        }
        case YAML_STREAM_END_EVENT: done = true; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return st;
}

vlt_status vlt_run_config_load(const char *path, vlt_run_config *c) {
    FILE *f = fopen(path, "rb");
    if (!f) return vlt_error_set(VLT_ERR_IO, "run config %s: cannot open (%s)", path, strerror(errno));
    // A directory opens, then reads as nothing: it would be an empty config. (Pipes are fine:
    // --config <(envsubst < run.yaml.in).)
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return vlt_error_set(VLT_ERR_IO, "run config %s: is a directory, not a YAML file", path);
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return vlt_error_set(VLT_ERR_NOMEM, "run config %s: out of memory", path); }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        free(buf);
        return vlt_error_set(VLT_ERR_IO, "run config %s: cannot read (%s)", path, strerror(e));
    }
    fclose(f);
    vlt_status s = vlt_run_config_parse(buf ? buf : "", len, path, c);
    free(buf);
    return s;
}

vlt_status vlt_run_config_validate(const vlt_run_config *c) {
    if (!c->train_shards[0]) return vlt_error_set(VLT_ERR_ARG, "run config: data.train (the training shards) is not set");
    if (c->batch_size < 1) return vlt_error_set(VLT_ERR_ARG, "run config: data.batch_size must be >= 1, got %d", c->batch_size);
    if (c->workers < 1) return vlt_error_set(VLT_ERR_ARG, "run config: data.workers must be >= 1, got %d", c->workers);
    if (c->steps < 1) return vlt_error_set(VLT_ERR_ARG, "run config: schedule.steps must be >= 1");
    if (c->warmup < 0 || c->warmup > c->steps)
        return vlt_error_set(VLT_ERR_ARG, "run config: schedule.warmup %lld is outside [0, steps %lld]", (long long)c->warmup, (long long)c->steps);
    if (strcmp(c->schedule, "cosine") && strcmp(c->schedule, "const") && strcmp(c->schedule, "const-cooldown"))
        return vlt_error_set(VLT_ERR_ARG, "run config: schedule.type '%s' is not one of cosine, const, const-cooldown", c->schedule);
    if (!strcmp(c->schedule, "const-cooldown") && (c->cooldown < 1 || c->cooldown + c->warmup > c->steps))
        return vlt_error_set(VLT_ERR_ARG, "run config: schedule.cooldown must be in [1, steps - warmup] for const-cooldown");
    if (!(c->lr > 0) || c->lr_min < 0 || c->lr_min > c->lr)
        return vlt_error_set(VLT_ERR_ARG, "run config: optim.lr must be > 0 and schedule.lr_min in [0, lr]");
    if (c->accum_steps < 1) return vlt_error_set(VLT_ERR_ARG, "run config: optim.accum_steps must be >= 1");
    if (c->grad_clip < 0)
        return vlt_error_set(VLT_ERR_ARG, "run config: optim.grad_clip must be >= 0 (the global norm to clip to; 0 = off), "
                             "got %g", c->grad_clip);
    if (c->val_samples < 0)
        return vlt_error_set(VLT_ERR_ARG, "run config: data.val_samples must be >= 0 (0 = all of data.val), got %d",
                             c->val_samples);
    if (c->weight_decay < 0) return vlt_error_set(VLT_ERR_ARG, "run config: optim.weight_decay must be >= 0, got %g", c->weight_decay);
    if (c->beta1 < 0 || c->beta1 >= 1 || c->beta2 < 0 || c->beta2 >= 1)
        return vlt_error_set(VLT_ERR_ARG, "run config: optim.beta1 and optim.beta2 must be in [0, 1), got %g and %g", c->beta1,
                             c->beta2);
    if (!(c->eps > 0)) return vlt_error_set(VLT_ERR_ARG, "run config: optim.eps must be > 0, got %g", c->eps);
    if (c->shuffle_buffer < 0 || c->shuffle_initial < 0)
        return vlt_error_set(VLT_ERR_ARG, "run config: data.shuffle_buffer and data.shuffle_initial must be >= 0");
    if (c->samples_per_epoch < 0) return vlt_error_set(VLT_ERR_ARG, "run config: data.samples_per_epoch must be >= 0");
    if (c->label_smoothing < 0 || c->label_smoothing >= 1)
        return vlt_error_set(VLT_ERR_ARG, "run config: loss.label_smoothing must be in [0, 1), got %g", c->label_smoothing);
    if (c->clip_loss_weight < 0 || c->caption_loss_weight < 0)
        return vlt_error_set(VLT_ERR_ARG, "run config: loss.clip_weight and loss.caption_weight must be >= 0");
    if (c->cooldown < 0 || c->checkpoint_every < 0 || c->eval_every < 0)
        return vlt_error_set(VLT_ERR_ARG, "run config: schedule.cooldown, checkpoint.every and eval.every must be >= 0");
    if (!c->output_dir[0]) return vlt_error_set(VLT_ERR_ARG, "run config: output.dir (the run directory) is empty");
    if (c->scale_min <= 0 || c->scale_min > c->scale_max || c->scale_max > 1)
        return vlt_error_set(VLT_ERR_ARG, "run config: data.scale_min/scale_max must satisfy 0 < min <= max <= 1");
    if (strcmp(c->device, "cpu") && strcmp(c->device, "cuda"))
        return vlt_error_set(VLT_ERR_ARG, "run config: train.device '%s' is not cpu or cuda", c->device);
    if (strcmp(c->precision, "fp32") && strcmp(c->precision, "tf32") && strcmp(c->precision, "bf16"))
        return vlt_error_set(VLT_ERR_ARG, "run config: train.precision '%s' is not fp32, tf32 or bf16", c->precision);
    if (strcmp(c->zero_partition, "tensors") && strcmp(c->zero_partition, "flat"))
        return vlt_error_set(VLT_ERR_ARG, "run config: train.zero_partition '%s' is not tensors or flat", c->zero_partition);
    if (strcmp(c->grad_reduce_dtype, "f32") && strcmp(c->grad_reduce_dtype, "bf16"))
        return vlt_error_set(VLT_ERR_ARG, "run config: train.grad_reduce_dtype '%s' is not f32 or bf16",
                             c->grad_reduce_dtype);
    if (!strcmp(c->grad_reduce_dtype, "bf16") && c->zero)
        return vlt_error_set(VLT_ERR_ARG, "run config: train.grad_reduce_dtype bf16 applies to the gradient all-reduce; "
                             "with train.zero the gradients are reduce-scattered in f32 (use f32)");
    if (strcmp(c->precision, "fp32") && strcmp(c->device, "cuda"))
        return vlt_error_set(VLT_ERR_ARG, "run config: train.precision %s needs train.device cuda (the CPU computes in fp32)",
                             c->precision);
#ifndef VLT_HAVE_CUDA
    if (!strcmp(c->device, "cuda"))
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "run config: train.device cuda needs the CUDA backend (build with make CUDA=1)");
#endif
    if (c->stop_signal[0] && strcmp(c->stop_signal, "USR1") && strcmp(c->stop_signal, "USR2") &&
        strcmp(c->stop_signal, "SIGUSR1") && strcmp(c->stop_signal, "SIGUSR2"))
        return vlt_error_set(VLT_ERR_ARG, "run config: train.stop_signal '%s' is not USR1 or USR2 (empty: only SIGINT and "
                             "SIGTERM stop a run)", c->stop_signal);
    if (c->vqa_head[0] && strcmp(c->vqa_head, "classifier") && strcmp(c->vqa_head, "albef"))
        return vlt_error_set(VLT_ERR_ARG, "run config: model.vqa_head '%s' is not classifier or albef (ALBEF VQA's answer "
                             "decoder; or empty: no VQA head)", c->vqa_head);
    if (strcmp(c->vqa_fusion, "concat") && strcmp(c->vqa_fusion, "tokens"))
        return vlt_error_set(VLT_ERR_ARG, "run config: model.vqa_fusion '%s' is not concat (the pooled features) or tokens "
                             "(the token sequences through a small transformer)", c->vqa_fusion);
    if (!strcmp(c->vqa_fusion, "tokens") && (c->vqa_fusion_layers < 1 || c->vqa_fusion_layers > 48))
        return vlt_error_set(VLT_ERR_ARG, "run config: model.vqa_fusion_layers must be in 1..48, got %d", c->vqa_fusion_layers);
    if (c->vqa_answers < 1 || c->vqa_hidden < 0)
        return vlt_error_set(VLT_ERR_ARG, "run config: model.vqa_answers must be >= 1 and model.vqa_hidden >= 0, got %d "
                             "and %d", c->vqa_answers, c->vqa_hidden);
    if (c->checkpoint_keep < 1) return vlt_error_set(VLT_ERR_ARG, "run config: checkpoint.keep must be >= 1");
    if (c->log_every < 1) return vlt_error_set(VLT_ERR_ARG, "run config: log.every must be >= 1");
    if (c->max_nonfinite < 1) return vlt_error_set(VLT_ERR_ARG, "run config: train.max_nonfinite must be >= 1");
    return VLT_OK;
}

vlt_status vlt_run_config_model_cfg(const vlt_run_config *c, vlt_model_cfg *mc) {
    VLT_TRY(vlt_model_cfg_load(c->model_name, mc));
    if (!strcmp(c->vqa_head, "albef") != (mc->is_albef && mc->albef.vqa.on))
        return vlt_error_set(VLT_ERR_ARG, "run config: model.vqa_head albef goes with an ALBEF VQA model config (an "
                             "\"albef_vqa\" section; vlt model list: kind ALBEF VQA), and such a model with it; have "
                             "model.name %s, model.vqa_head '%s'", c->model_name, c->vqa_head);
    if (!strcmp(c->vqa_head, "classifier")) {
        mc->vqa.n_answers = c->vqa_answers;
        mc->vqa.hidden = c->vqa_hidden;
        mc->vqa.fusion_layers = !strcmp(c->vqa_fusion, "tokens") ? c->vqa_fusion_layers : 0;
    }
    return VLT_OK;
}

// The shortest decimal that reads back as the same double (0.9, not 0.90000000000000002): the
// config is read by people, and strtod gets the exact value back either way. An exponent form
// keeps a '.' in its mantissa (1.0e-30), which YAML 1.1 readers (PyYAML) need to see a float.
static void format_double(double v, char *out, size_t n) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    char *e = strchr(out, 'e');
    if (e && !memchr(out, '.', (size_t)(e - out)) && strlen(out) + 3 < n) {
        memmove(e + 2, e, strlen(e) + 1);
        e[0] = '.';
        e[1] = '0';
    }
}

static void format_value(const vlt_run_config *c, const field *f, char *out, size_t n) {
    const char *p = (const char *)c + f->offset;
    switch (f->type) {
    case F_STR: snprintf(out, n, "\"%s\"", p); break;
    case F_INT: snprintf(out, n, "%d", *(const int *)p); break;
    case F_I64: snprintf(out, n, "%lld", (long long)*(const int64_t *)p); break;
    case F_F64: format_double(*(const double *)p, out, n); break;
    case F_BOOL: snprintf(out, n, "%s", *(const bool *)p ? "true" : "false"); break;
    }
}

void vlt_run_config_write(const vlt_run_config *c, FILE *f) {
    char section[64] = "";
    for (int i = 0; i < N_FIELDS; i++) {
        const char *dot = strchr(FIELDS[i].key, '.');
        int slen = (int)(dot - FIELDS[i].key);
        if (strncmp(section, FIELDS[i].key, (size_t)slen) || section[slen]) {
            snprintf(section, sizeof section, "%.*s", slen, FIELDS[i].key);
            fprintf(f, "%s:\n", section);
        }
        char v[VLT_CFG_STR + 8];
        format_value(c, &FIELDS[i], v, sizeof v);
        fprintf(f, "  %s: %s\n", dot + 1, v);
    }
}

int vlt_run_config_model_diff(const vlt_run_config *a, const vlt_run_config *b, char *buf, size_t n) {
    int count = 0;
    size_t off = 0;
    if (n) buf[0] = '\0';
    for (int i = 0; i < N_FIELDS; i++) {
        if (!FIELDS[i].model) continue;
        char va[VLT_CFG_STR + 8], vb[VLT_CFG_STR + 8];
        format_value(a, &FIELDS[i], va, sizeof va);
        format_value(b, &FIELDS[i], vb, sizeof vb);
        if (!strcmp(va, vb)) continue;
        count++;
        if (off < n) off += (size_t)snprintf(buf + off, n - off, "%s%s: %s -> %s", count > 1 ? "; " : "", FIELDS[i].key, va, vb);
    }
    return count;
}
