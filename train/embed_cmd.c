// embed_cmd.c — `vlt embed` (image and text embeddings of a shard set, to HDF5),
// `vlt eval checkpoint` (retrieval recall@k, and BLEU/CIDEr-D of greedy captions for CoCa, of a
// trained checkpoint on a shard set) and `vlt eval zeroshot` (classification with class names
// and prompt templates from files).
#include <cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/checkpoint.h"
#include "eval/embeddings_h5.h"
#include "train/cli_args.h"
#include "train/commands.h"
#include "train/evaluate.h"
#include "train/run_config.h"

// Builds the model a checkpoint was trained with (its state.json holds the run config) and loads
// its weights. `path`: a run directory (its latest checkpoint) or a checkpoint directory.
static vlt_status load_checkpoint_model(const char *path, vlt_model *m, vlt_run_config *rc, char *dir, size_t cap) {
    VLT_TRY(vlt_checkpoint_resolve(path, path, dir, cap));
    char state_path[1100];
    snprintf(state_path, sizeof state_path, "%s/state.json", dir);
    FILE *f = fopen(state_path, "rb");
    if (!f) return vlt_error_set(VLT_ERR_IO, "checkpoint %s: cannot open state.json", dir);
    char *text = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&text, &len);
    char buf[4096];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, r, mf);
    fclose(f);
    fclose(mf);
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    vlt_status s = cJSON_IsString(cfg) ? VLT_OK
                                       : vlt_error_set(VLT_ERR_FORMAT, "checkpoint %s: state.json has no run config", dir);
    vlt_run_config_default(rc);
    if (s == VLT_OK) s = vlt_run_config_parse(cfg->valuestring, strlen(cfg->valuestring), state_path, rc);
    cJSON_Delete(root);
    vlt_model_cfg mc;
    if (s == VLT_OK) s = vlt_model_cfg_load(rc->model_name, &mc);
    if (s == VLT_OK) s = vlt_model_create(m, &mc, (uint64_t)rc->seed);
    if (s == VLT_OK && (s = vlt_checkpoint_load(dir, m->params, NULL, NULL)) != VLT_OK) vlt_model_free(m);
    return s;
}

// What every command here works with: the checkpoint's model (and its run config) and the
// tokenizer.
typedef struct {
    vlt_model m;
    vlt_run_config cfg;
    char dir[1024];            // the checkpoint directory
    vlt_tokenizer *tok;
} session;

static vlt_status session_open(const char *checkpoint, session *se) {
    memset(se, 0, sizeof *se);
    VLT_TRY(load_checkpoint_model(checkpoint, &se->m, &se->cfg, se->dir, sizeof se->dir));
    return vlt_tokenizer_load(NULL, &se->tok);
}

static void session_close(session *se) {
    vlt_tokenizer_free(se->tok);
    vlt_model_free(&se->m);
}

typedef struct {
    const char *checkpoint, *shards, *out;
    const char *classes, *templates, *label_ext;   // zeroshot
    int batch, limit;
} eval_args;

// Returns -1 to go on, or the exit status (0 after --help, 2 after a usage error, message printed).
static int parse_args(const char *cmd, int argc, char **argv, eval_args *a, const char *usage) {
    static const struct option opts[] = {{"checkpoint", required_argument, 0, 'c'}, {"shards", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},        {"batch", required_argument, 0, 'b'},
                                         {"limit", required_argument, 0, 'l'},      {"help", no_argument, 0, 'h'},
                                         {"classes", required_argument, 0, 'C'},    {"templates", required_argument, 0, 'T'},
                                         {"label-ext", required_argument, 0, 'L'},  {0, 0, 0, 0}};
    *a = (eval_args){.batch = 64};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->checkpoint = optarg; break;
        case 's': a->shards = optarg; break;
        case 'o': a->out = optarg; break;
        case 'b': a->batch = (int)vlt_cli_int(cmd, "--batch", optarg, 1, 1 << 20); break;
        case 'l': a->limit = (int)vlt_cli_int(cmd, "--limit", optarg, 0, 1 << 30); break;
        case 'C': a->classes = optarg; break;
        case 'T': a->templates = optarg; break;
        case 'L': a->label_ext = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;   // getopt has named the option
        }
    }
    if (optind < argc) return vlt_cli_unexpected(cmd, argv[optind]);
    if (!a->checkpoint || !a->shards) return vlt_cli_usage_error(cmd, "--checkpoint and --shards are required");
    return -1;
}

static const char *EMBED_USAGE =
    "usage: vlt embed --checkpoint RUN|CHECKPOINT_DIR --shards SPEC --out emb.h5 [--batch 64] [--limit N]\n"
    "Writes the L2-normalized image and text embeddings of the shards' image-caption pairs (eval\n"
    "transform, shard order) to HDF5 for `vlt eval retrieval --embeddings emb.h5` or h5py.\n";

int vlt_cmd_embed(int argc, char **argv) {
    eval_args a;
    int rc = parse_args("embed", argc, argv, &a, EMBED_USAGE);
    if (rc >= 0) return rc;
    if (!a.out) return vlt_cli_usage_error("embed", "--out emb.h5 is required");
    session se;
    vlt_embedded_pairs p = {0};
    vlt_status s = session_open(a.checkpoint, &se);
    if (s == VLT_OK) s = vlt_embed_pairs(&se.m, se.tok, a.shards, a.batch, a.limit, &p);
    if (s == VLT_OK) {
        vlt_eval_embeddings e = {.n_images = p.n, .n_texts = p.n, .dim = p.dim, .image_embeds = p.img,
                                 .text_embeds = p.txt, .model = se.cfg.model_name, .config = se.dir};
        e.image_ids = malloc(sizeof(int64_t) * (size_t)p.n);
        e.text_image_index = malloc(sizeof(int32_t) * (size_t)p.n);
        for (int i = 0; i < p.n; i++) {
            e.image_ids[i] = i;
            e.text_image_index[i] = i;
        }
        s = vlt_eval_embeddings_write(a.out, &e);
        free(e.image_ids);
        free(e.text_image_index);
        if (s == VLT_OK) printf("vlt embed: %d image-caption pairs (dim %d) from %s -> %s\n", p.n, p.dim, se.dir, a.out);
    }
    if (s != VLT_OK) fprintf(stderr, "vlt embed: %s\n", vlt_error_message());
    vlt_embedded_pairs_free(&p);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}

static const char *EVAL_CKPT_USAGE =
    "usage: vlt eval checkpoint --checkpoint RUN|CHECKPOINT_DIR --shards SPEC [--limit N] [--batch 64] [--out report.json]\n"
    "Image<->text retrieval recall@1/5/10 of the checkpoint on the shards' pairs; for CoCa also greedy\n"
    "captions scored with BLEU-1..4 and CIDEr-D against the shards' captions.\n";

int vlt_cmd_eval_checkpoint(int argc, char **argv) {
    eval_args a;
    int rc = parse_args("eval checkpoint", argc, argv, &a, EVAL_CKPT_USAGE);
    if (rc >= 0) return rc;
    session se;
    vlt_embedded_pairs p = {0};
    vlt_caption_eval ce = {0};
    vlt_eval_retrieval_result r;
    vlt_status s = session_open(a.checkpoint, &se);
    bool coca = s == VLT_OK && se.m.is_coca;
    if (s == VLT_OK) s = vlt_embed_pairs(&se.m, se.tok, a.shards, a.batch, a.limit, &p);
    if (s == VLT_OK) s = vlt_eval_pairs_retrieval(&p, &r);
    if (s == VLT_OK && coca) s = vlt_eval_captions_on_shards(&se.m, se.tok, a.shards, a.batch, a.limit, &ce);
    if (s == VLT_OK) {
        printf("checkpoint %s (%s), %d pairs from %s\n", se.dir, se.cfg.model_name, p.n, a.shards);
        printf("  image->text  R@1 %5.1f  R@5 %5.1f  R@10 %5.1f  mean rank %.1f\n", 100 * r.i2t.recall[0],
               100 * r.i2t.recall[1], 100 * r.i2t.recall[2], r.i2t.mean_rank);
        printf("  text->image  R@1 %5.1f  R@5 %5.1f  R@10 %5.1f  mean rank %.1f\n", 100 * r.t2i.recall[0],
               100 * r.t2i.recall[1], 100 * r.t2i.recall[2], r.t2i.mean_rank);
        if (coca) printf("  captions (%d, greedy)  BLEU-4 %.1f  CIDEr-D %.1f\n", ce.n, 100 * ce.bleu[3], 100 * ce.cider);
        if (a.out) {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "checkpoint", se.dir);
            cJSON_AddStringToObject(root, "model", se.cfg.model_name);
            cJSON_AddStringToObject(root, "shards", a.shards);
            cJSON_AddNumberToObject(root, "pairs", p.n);
            const char *names[3] = {"R@1", "R@5", "R@10"};
            cJSON *i2t = cJSON_AddObjectToObject(root, "image_to_text"), *t2i = cJSON_AddObjectToObject(root, "text_to_image");
            for (int k = 0; k < 3; k++) {
                cJSON_AddNumberToObject(i2t, names[k], r.i2t.recall[k]);
                cJSON_AddNumberToObject(t2i, names[k], r.t2i.recall[k]);
            }
            if (coca) {
                cJSON *c = cJSON_AddObjectToObject(root, "captions");
                for (int k = 0; k < 4; k++) {
                    char key[8];
                    snprintf(key, sizeof key, "BLEU-%d", k + 1);
                    cJSON_AddNumberToObject(c, key, ce.bleu[k]);
                }
                cJSON_AddNumberToObject(c, "CIDEr-D", ce.cider);
            }
            char *json = cJSON_Print(root);
            FILE *f = fopen(a.out, "w");
            if (!f || fputs(json, f) < 0 || fclose(f) != 0)
                s = vlt_error_set(VLT_ERR_IO, "cannot write %s", a.out);
            free(json);
            cJSON_Delete(root);
        }
    }
    if (s != VLT_OK) fprintf(stderr, "vlt eval checkpoint: %s\n", vlt_error_message());
    vlt_caption_eval_free(&ce);
    vlt_embedded_pairs_free(&p);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}

// The non-empty lines of a text file (malloc'd array of malloc'd strings).
static vlt_status read_lines(const char *path, char ***out, int *n) {
    FILE *f = fopen(path, "r");
    if (!f) return vlt_error_set(VLT_ERR_IO, "cannot open %s", path);
    char line[1024];
    int cap = 0;
    *out = NULL;
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        if (*n == cap) *out = realloc(*out, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 64));
        (*out)[(*n)++] = strdup(line);
    }
    fclose(f);
    return *n ? VLT_OK : vlt_error_set(VLT_ERR_FORMAT, "%s has no lines", path);
}

static void free_lines(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static const char *ZEROSHOT_USAGE =
    "usage: vlt eval zeroshot --checkpoint RUN|CHECKPOINT_DIR --shards SPEC --classes classes.txt\n"
    "                         --templates templates.txt [--label-ext cls] [--limit N] [--batch 64]\n"
    "Zero-shot classification: one class name per line of classes.txt (label i = line i), one\n"
    "prompt template per line of templates.txt with {} where the class name goes (\"a photo of a {}.\");\n"
    "the images' labels are their integer .cls members (webdataset classification shards).\n";

int vlt_cmd_eval_zeroshot(int argc, char **argv) {
    eval_args a;
    int rc = parse_args("eval zeroshot", argc, argv, &a, ZEROSHOT_USAGE);
    if (rc >= 0) return rc;
    if (!a.classes || !a.templates)
        return vlt_cli_usage_error("eval zeroshot", "--classes classes.txt and --templates templates.txt are required");
    char **classes = NULL, **templates = NULL;
    int nc = 0, nt = 0;
    vlt_status s = read_lines(a.classes, &classes, &nc);
    if (s == VLT_OK) s = read_lines(a.templates, &templates, &nt);
    session se = {0};
    if (s == VLT_OK) s = session_open(a.checkpoint, &se);
    double top1 = 0, top5 = 0;
    int n = 0;
    if (s == VLT_OK)
        s = vlt_eval_zeroshot_on_shards(&se.m, se.tok, a.shards, a.batch, a.limit, a.label_ext, classes, nc, templates, nt,
                                        &top1, &top5, &n);
    if (s == VLT_OK)
        printf("zero-shot: %d images, %d classes, %d templates: top-1 %.2f%%  top-5 %.2f%%  (chance top-1 %.2f%%)\n", n,
               nc, nt, 100 * top1, 100 * top5, 100.0 / nc);
    else fprintf(stderr, "vlt eval zeroshot: %s\n", vlt_error_message());
    free_lines(classes, nc);
    free_lines(templates, nt);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}
