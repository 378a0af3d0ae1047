// model_cmd.c — `vlt model`: inspect a model config and move its weights in and out as
// safetensors with open_clip's state_dict names (CLIP or CoCa, chosen by the config).
//
//   vlt model list                                    every model config with its parameter count
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
#include "layers/model.h"
#include "train/cli_args.h"
#include "train/commands.h"

// A model of the named config through the model interface (its kind's title and parameters).
// shapes_only: its table's names and shapes without drawing the initial values (list, info).
static vlt_status model_build(vlt_model *m, const char *name, uint64_t seed, bool shapes_only) {
    vlt_model_cfg cfg;
    memset(m, 0, sizeof *m);
    VLT_TRY(vlt_model_cfg_load(name, &cfg));
    return shapes_only ? vlt_model_create_shapes(m, &cfg) : vlt_model_create(m, &cfg, seed);
}

static const char *VERB_USAGE[][2] = {
    {"list", "vlt model list\n"
             "    every model config under $VLT_HOME/configs/model/ with its kind and parameter count\n"},
    {"info", "vlt model info --model NAME\n"
             "    the model's kind, tensor count and parameter count\n"},
    {"init", "vlt model init --model NAME --out FILE.safetensors [--seed N] [--dtype f32|bf16|f16]\n"
             "    a freshly initialized model saved with open_clip's state_dict names\n"},
    {"load", "vlt model load --model NAME --weights FILE.safetensors [--lenient]\n"
             "    loads FILE strictly (every key, every shape) and reports; exit 1 on a mismatch\n"},
};
#define N_VERBS ((int)(sizeof VERB_USAGE / sizeof VERB_USAGE[0]))

static void usage(FILE *f) {
    fprintf(f, "usage:\n");
    for (int i = 0; i < N_VERBS; i++) fprintf(f, "  %s", VERB_USAGE[i][1]);
    fprintf(f, "NAME is a model config name (vlt model list) or a path to an open_clip model config JSON.\n");
}

// Every model config with its kind and parameter count (each table is built without its values
// and freed, one at a time), in columns as wide as the longest title listed.
static int model_list(void) {
    char **names, dir[1024];
    int n = vlt_model_cfg_names(&names), rc = 0, width = 6;
    if (n == 0) {
        fprintf(stderr, "vlt model list: no model configs in %s (set VLT_HOME to vlt's folder)\n",
                vlt_model_cfg_dir(dir, sizeof dir));
        return 1;
    }
    const char **title = calloc((size_t)n, sizeof *title);   // static strings of the kinds' tables
    char **error = calloc((size_t)n, sizeof *error);
    long long *count = calloc((size_t)n, sizeof *count);
    bool nomem = !title || !error || !count;
    for (int i = 0; !nomem && i < n; i++) {
        vlt_model m;
        if (model_build(&m, names[i], 0, true) != VLT_OK) {
            nomem = !(error[i] = strdup(vlt_error_message()));
        } else {
            title[i] = vlt_model_title(&m);
            count[i] = (long long)vlt_model_trainable_numel(&m);
            if ((int)strlen(title[i]) > width) width = (int)strlen(title[i]);
            vlt_model_free(&m);
        }
    }
    if (nomem) {
        fprintf(stderr, "vlt model list: out of memory\n");
        rc = 1;
    } else {
        printf("model configs in %s:\n", vlt_model_cfg_dir(dir, sizeof dir));
        printf("  %-28s %-*s %14s\n", "name", width, "kind", "parameters");
        for (int i = 0; i < n; i++) {
            if (error[i]) {
                printf("  %-28s (%s)\n", names[i], error[i]);
                rc = 1;
            } else {
                printf("  %-28s %-*s %14lld\n", names[i], width, title[i], count[i]);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (error) free(error[i]);
        free(names[i]);
    }
    free(names);
    free(title);
    free(error);
    free(count);
    return rc;
}

int vlt_cmd_model(int argc, char **argv) {
    if (argc < 2 || vlt_cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1], *name = NULL, *out = NULL, *weights = NULL, *dtype = "f32";
    int v = -1;
    for (int i = 0; i < N_VERBS; i++)
        if (!strcmp(verb, VERB_USAGE[i][0])) v = i;
    if (v < 0) {
        fprintf(stderr, "vlt model: unknown subcommand '%s'\n", verb);
        usage(stderr);
        return 2;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "model %s", verb);
    unsigned long long seed = 0;
    bool lenient = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val;
        if (vlt_cli_is_help(a)) { printf("usage: %s", VERB_USAGE[v][1]); return 0; }
        else if ((val = vlt_cli_opt(cmd, argc, argv, &i, "--model"))) name = val;
        else if ((val = vlt_cli_opt(cmd, argc, argv, &i, "--out"))) out = val;
        else if ((val = vlt_cli_opt(cmd, argc, argv, &i, "--weights"))) weights = val;
        else if ((val = vlt_cli_opt(cmd, argc, argv, &i, "--dtype"))) dtype = val;
        else if ((val = vlt_cli_opt(cmd, argc, argv, &i, "--seed"))) seed = (unsigned long long)vlt_cli_int(cmd, "--seed", val, 0, 1ll << 62);
        else if (!strcmp(a, "--lenient")) lenient = true;
        else return vlt_cli_unexpected(cmd, a);
    }
    bool is_info = v == 1, is_init = v == 2, is_load = v == 3;
    if (v == 0) {
        if (name || out || weights || lenient) return vlt_cli_usage_error(cmd, "takes no options");
        return model_list();
    }
    if (!name) return vlt_cli_usage_error(cmd, "--model NAME is required");
    if (is_init && !out) return vlt_cli_usage_error(cmd, "--out FILE.safetensors is required");
    if (is_load && !weights) return vlt_cli_usage_error(cmd, "--weights FILE.safetensors is required");
    vlt_st_dtype dt = !strcmp(dtype, "bf16") ? VLT_ST_BF16 : !strcmp(dtype, "f16") ? VLT_ST_F16 : VLT_ST_F32;
    if (dt == VLT_ST_F32 && strcmp(dtype, "f32")) {
        fprintf(stderr, "vlt model: --dtype '%s' is not one of f32, bf16, f16\n", dtype);
        return 2;
    }
    vlt_model m;
    if (model_build(&m, name, seed, is_info) != VLT_OK) {
        fprintf(stderr, "vlt model: %s\n", vlt_error_message());
        return 1;
    }
    vlt_params *p = m.params;
    int rc = 0;
    if (is_info) {
        int64_t all = vlt_params_numel(p), trainable = vlt_model_trainable_numel(&m);
        printf("%s: %s, %d tensors, %lld parameters", name, vlt_model_title(&m), p->n, (long long)trainable);
        if (all != trainable) printf(" (%lld values in all, with momentum copies, queues and buffers)", (long long)all);
        printf("\n");
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
    vlt_model_free(&m);
    return rc;
}
