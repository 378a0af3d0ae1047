// synth_cmd.c — `vlt synth`: writes the synthetic captioned dataset (data/synth.h) as webdataset
// shards. Pictures are rendered and JPEG-encoded on all OpenMP threads, in batches, and appended
// in index order, so the output is the same whatever the thread count.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "data/shardwriter.h"
#include "data/synth.h"
#include "data/synth_vqa.h"
#include "train/cli_args.h"
#include "train/commands.h"

#define BATCH 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlt synth --out DIR --samples N [options]\n"
            "\n"
            "Writes N synthetic image-caption samples (coloured shapes on textured backgrounds, captions\n"
            "like \"a small red circle to the left of a large blue square\") as webdataset shards\n"
            "DIR/00000.tar, DIR/00001.tar, ... with members KEY.jpg / KEY.txt / KEY.json, and DIR/sizes.json.\n"
            "\n"
            "options:\n"
            "  --out DIR          output directory (created if missing)\n"
            "  --samples N        number of samples (> 0)\n"
            "  --shard-size K     samples per shard (default 1000)\n"
            "  --image-size S     square image side in pixels, 24..4096 (default 64)\n"
            "  --seed X           dataset seed (default 0); sample i depends only on (X, i, S)\n"
            "  --first-index I    index of the first sample, e.g. to write a disjoint validation set (default 0)\n"
            "  --prefix P         shard name prefix (default none)\n"
            "  --quality Q        JPEG quality 1..100 (default 95)\n"
            "  --vqa              instead: a VQA set, N images with questions about colour, shape, size, count\n"
            "                     and position and ten annotators' answers each: DIR/images/, DIR/questions.json +\n"
            "                     DIR/annotations.json (official VQAv2 format) and DIR/vqa.jsonl; pack with\n"
            "                     vlt shards --vqa-questions DIR/questions.json --vqa-annotations DIR/annotations.json\n"
            "                     --images DIR/images (or --vqa-jsonl DIR/vqa.jsonl)\n"
            "  --questions-per-image K   with --vqa: 1..6 (default 3)\n"
            "  -h, --help         this help\n");
}


static char *sample_json(const vlt_synth_scene *s, unsigned long long seed, long long index) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    cJSON_AddNumberToObject(o, "index", (double)index);
    cJSON_AddStringToObject(o, "texture", vlt_synth_texture_name(s->texture));
    if (s->n_objects == 2) cJSON_AddStringToObject(o, "relation", vlt_synth_relation_name(s->relation));
    cJSON *objs = cJSON_AddArrayToObject(o, "objects");
    for (int k = 0; k < s->n_objects; k++) {
        const vlt_synth_object *b = &s->obj[k];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "shape", vlt_synth_shape_name(b->shape));
        cJSON_AddStringToObject(j, "color", vlt_synth_color_name(b->color));
        cJSON_AddStringToObject(j, "size", b->large ? "large" : "small");
        cJSON_AddNumberToObject(j, "x", (int)(b->cx * 100 + 0.5) / 100.0);
        cJSON_AddNumberToObject(j, "y", (int)(b->cy * 100 + 0.5) / 100.0);
        cJSON_AddNumberToObject(j, "r", (int)(b->r * 100 + 0.5) / 100.0);
        cJSON_AddItemToArray(objs, j);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

typedef struct {
    uint8_t *jpg;
    size_t len;
    char caption[160];
    char *json;
    vlt_status st;
    char err[256];
} prepared;

int vlt_cmd_synth(int argc, char **argv) {
    const char *out = NULL, *prefix = "";
    long long samples = -1, shard_size = 1000, size = 64, quality = 95, first = 0;
    unsigned long long seed = 0;
    int vqa = 0;
    long long per_image = 3;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (vlt_cli_is_help(argv[i])) { usage(stdout); return 0; }
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--out"))) out = v;
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--samples"))) samples = vlt_cli_int("synth", "--samples", v, 1, 1ll << 40);
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--shard-size"))) shard_size = vlt_cli_int("synth", "--shard-size", v, 1, 1 << 30);
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--image-size"))) size = vlt_cli_int("synth", "--image-size", v, 24, 4096);
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--seed"))) seed = (unsigned long long)vlt_cli_int("synth", "--seed", v, 0, 1ll << 62);
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--first-index"))) first = vlt_cli_int("synth", "--first-index", v, 0, 1ll << 50);
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--prefix"))) prefix = v;
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--quality"))) quality = vlt_cli_int("synth", "--quality", v, 1, 100);
        else if (!strcmp(argv[i], "--vqa")) vqa = 1;
        else if ((v = vlt_cli_opt("synth", argc, argv, &i, "--questions-per-image")))
            per_image = vlt_cli_int("synth", "--questions-per-image", v, 1, VLT_SYNTH_VQA_MAX_PER_IMAGE);
        else return vlt_cli_unexpected("synth", argv[i]);
    }
    if (!out || samples < 0) return vlt_cli_usage_error("synth", "--out DIR and --samples N are required");
    if (vqa) {
        vlt_synth_vqa_cfg vc = {out, seed, first, samples, (int)size, (int)per_image, (int)quality};
        long long nq = 0;
        if (vlt_synth_vqa_write(&vc, &nq) != VLT_OK) {
            fprintf(stderr, "vlt synth: %s\n", vlt_error_message());
            return 1;
        }
        printf("vlt synth: wrote %lld images and %lld questions (seed %llu) to %s (questions.json, annotations.json, "
               "vqa.jsonl, images/)\n", samples, nq, seed, out);
        return 0;
    }
    vlt_shardwriter_cfg cfg;
    vlt_shardwriter_cfg_default(&cfg, out);
    cfg.shard_size = (int)shard_size;
    cfg.quality = (int)quality;
    cfg.prefix = prefix;
    cfg.first_index = first;
    vlt_shardwriter *w;
    if (vlt_shardwriter_open(&cfg, &w) != VLT_OK) {
        fprintf(stderr, "vlt synth: %s\n", vlt_error_message());
        return 1;
    }
    prepared *batch = calloc(BATCH, sizeof *batch);
    int rc = batch ? 0 : 1;
    for (long long b0 = 0; rc == 0 && b0 < samples; b0 += BATCH) {
        int n = (int)(samples - b0 < BATCH ? samples - b0 : BATCH);
#pragma omp parallel for schedule(dynamic, 4)
        for (int k = 0; k < n; k++) {
            prepared *p = &batch[k];
            long long index = first + b0 + k;
            vlt_image img;
            vlt_synth_scene scene;
            p->st = vlt_synth_sample(seed, (uint64_t)index, (int)size, &img, p->caption, sizeof p->caption, &scene);
            if (p->st == VLT_OK) {
                p->st = vlt_shardwriter_prepare_rgb(&cfg, &img, &p->jpg, &p->len, NULL, NULL);
                vlt_image_free(&img);
                p->json = sample_json(&scene, seed, index);
            }
            if (p->st != VLT_OK) snprintf(p->err, sizeof p->err, "%s", vlt_error_message());
        }
        for (int k = 0; k < n; k++) {
            prepared *p = &batch[k];
            if (rc == 0 && p->st != VLT_OK) {
                fprintf(stderr, "vlt synth: sample %lld: %s\n", first + b0 + k, p->err);
                rc = 1;
            }
            if (rc == 0 && vlt_shardwriter_add(w, p->jpg, p->len, p->caption, p->json, NULL) != VLT_OK) {
                fprintf(stderr, "vlt synth: %s\n", vlt_error_message());
                rc = 1;
            }
            free(p->jpg);
            cJSON_free(p->json);
            memset(p, 0, sizeof *p);
        }
    }
    free(batch);
    if (rc != 0) {
        vlt_shardwriter_abort(w);
        return rc;
    }
    int shards = vlt_shardwriter_shards(w);
    if (vlt_shardwriter_close(w) != VLT_OK) {
        fprintf(stderr, "vlt synth: %s\n", vlt_error_message());
        return 1;
    }
    printf("vlt synth: wrote %lld samples (%lldx%lld, seed %llu) in %d shard%s to %s (sizes.json)\n", samples, size,
           size, seed, shards, shards == 1 ? "" : "s", out);
    return 0;
}
