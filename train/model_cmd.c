// model_cmd.c — `vlt model`: inspect a model config and move its weights in and out as
// safetensors with open_clip's state_dict names (CLIP or CoCa, chosen by the config).
//
//   vlt model info --model NAME                       parameter count and tensor count
//   vlt model init --model NAME --out F [--seed N] [--dtype f32|bf16|f16]
//                                                      a freshly initialized model saved to F
//   vlt model load --model NAME --weights F [--lenient]
//                                                      loads F strictly (every key, every shape)
//                                                      and reports; exit 1 on a mismatch
// NAME is a config under configs/model/ (ViT-B-32, coca_ViT-B-32, …) or a path to one.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "layers/clip.h"
#include "layers/coca.h"
#include "train/commands.h"

typedef struct {
    bool coca;
    vlt_clip clip;
    vlt_coca cc;
} any_model;

static vlt_params *model_params(any_model *m) { return m->coca ? &m->cc.params : &m->clip.params; }

static vlt_status model_build(any_model *m, const char *name, uint64_t seed) {
    vlt_model_cfg cfg;
    memset(m, 0, sizeof *m);
    VLT_TRY(vlt_model_cfg_load(name, &cfg));
    m->coca = cfg.is_coca;
    return m->coca ? vlt_coca_init(&m->cc, &cfg, seed) : vlt_clip_init(&m->clip, &cfg, seed);
}

static void model_free(any_model *m) {
    if (m->coca) vlt_coca_free(&m->cc);
    else vlt_clip_free(&m->clip);
}

static void usage(FILE *f) {
    fprintf(f, "usage: vlt model info --model NAME\n"
               "       vlt model init --model NAME --out FILE.safetensors [--seed N] [--dtype f32|bf16|f16]\n"
               "       vlt model load --model NAME --weights FILE.safetensors [--lenient]\n");
}

int vlt_cmd_model(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1], *name = NULL, *out = NULL, *weights = NULL, *dtype = "f32";
    unsigned long long seed = 0;
    bool lenient = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--model") && has) name = argv[++i];
        else if (!strcmp(a, "--out") && has) out = argv[++i];
        else if (!strcmp(a, "--weights") && has) weights = argv[++i];
        else if (!strcmp(a, "--dtype") && has) dtype = argv[++i];
        else if (!strcmp(a, "--seed") && has) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--lenient")) lenient = true;
        else {
            fprintf(stderr, "vlt model: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    bool is_info = !strcmp(verb, "info"), is_init = !strcmp(verb, "init"), is_load = !strcmp(verb, "load");
    if (!(is_info || is_init || is_load) || !name || (is_init && !out) || (is_load && !weights)) {
        usage(stderr);
        return 2;
    }
    vlt_st_dtype dt = !strcmp(dtype, "bf16") ? VLT_ST_BF16 : !strcmp(dtype, "f16") ? VLT_ST_F16 : VLT_ST_F32;
    if (dt == VLT_ST_F32 && strcmp(dtype, "f32")) {
        fprintf(stderr, "vlt model: --dtype '%s' is not one of f32, bf16, f16\n", dtype);
        return 2;
    }
    any_model m;
    if (model_build(&m, name, seed) != VLT_OK) {
        fprintf(stderr, "vlt model: %s\n", vlt_error_message());
        return 1;
    }
    vlt_params *p = model_params(&m);
    int rc = 0;
    if (is_info) {
        printf("%s: %s, %d tensors, %lld parameters\n", name, m.coca ? "CoCa" : "CLIP", p->n,
               (long long)vlt_params_numel(p));
    } else if (is_init) {
        vlt_st_meta meta[] = {{"format", "pt"}, {"vlt_model", name}};
        if (vlt_safetensors_save_params(out, p, dt, meta, 2) != VLT_OK) {
            fprintf(stderr, "vlt model: %s\n", vlt_error_message());
            rc = 1;
        } else {
            printf("wrote %s: %d tensors, %lld parameters (%s, seed %llu)\n", out, p->n, (long long)vlt_params_numel(p),
                   dtype, seed);
        }
    } else {
        vlt_st_report rep;
        vlt_status s = vlt_safetensors_load_params(weights, p, lenient, &rep);
        char line[4096];
        if (s != VLT_OK) {
            fprintf(stderr, "vlt model: %s\n", vlt_error_message());
            rc = 1;
        } else {
            printf("loaded %s into %s: %d of %d tensors; %s\n", weights, name, rep.n_loaded, p->n,
                   vlt_st_report_format(&rep, line, sizeof line));
            rc = rep.n_missing || rep.n_unexpected || rep.n_misshaped ? 1 : 0;
        }
        vlt_st_report_free(&rep);
    }
    model_free(&m);
    return rc;
}
