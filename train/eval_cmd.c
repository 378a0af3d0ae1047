// eval_cmd.c — `vlt eval <what>`: captioning metrics, retrieval and VQA accuracy from files
// (the scorers of eval/), and the routing to `vlt eval checkpoint` / `zeroshot` (embed_cmd.c).
// Each file subcommand prints a table and, with --out PATH, writes a JSON report (--out - writes
// it to stdout). To add one, write `static int eval_NAME(int argc, char **argv)` and add its line
// to SUBCOMMANDS.
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/bleu.h"
#include "eval/caption_io.h"
#include "eval/cider.h"
#include "eval/embeddings_h5.h"
#include "eval/json_file.h"
#include "eval/retrieval.h"
#include "eval/vqa_io.h"
#include "train/cli_args.h"
#include "train/commands.h"

typedef struct {
    const char *pred, *refs, *out, *embeddings;
    int pretokenized, allow_subset, per_image, normalize, block_rows;
} eval_args;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *CAPTIONS_USAGE =
    "usage: vlt eval captions --pred results.json --refs captions.json [--pretokenized] [--allow-subset]\n"
    "                         [--per-image] [--out report.json|-]\n"
    "BLEU-1..4 and CIDEr-D as pycocoevalcap computes them (PTB tokenization unless --pretokenized).\n"
    "  --pred [{image_id, caption}]   --refs {annotations: [{image_id, caption}]} (COCO captions format)\n"
    "  --allow-subset  score only the predicted images    --per-image  per-image scores in the report\n";
static const char *RETRIEVAL_USAGE =
    "usage: vlt eval retrieval --embeddings emb.h5 [--normalize] [--block-rows N] [--out report.json|-]\n"
    "Image<->text recall@1/5/10, mean and median rank of the embeddings `vlt embed` writes\n"
    "(image_embeds (N,D), text_embeds (M,D), image_ids, text_image_index).\n"
    "  --normalize  L2-normalize first    --block-rows N  queries per score block (default ~32 MB of scores)\n";
static const char *VQA_USAGE =
    "usage: vlt eval vqa --pred results.json --refs annotations.json [--allow-subset] [--out report.json|-]\n"
    "VQAv2 accuracy as the official evaluation computes it, overall, per answer type and per question type.\n"
    "  --pred [{question_id, answer}]   --refs {annotations: [{question_id, answers: [{answer}] | [str]}]}\n";

// Parses the shared options; returns -1 to go on, or the exit status (0 after --help, 2 after a
// usage error, message printed).
static int parse_args(int argc, char **argv, eval_args *a, const char *usage) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (vlt_cli_is_help(o)) { fputs(usage, stdout); return 0; }
        const char **slot = !strcmp(o, "--pred") ? &a->pred : !strcmp(o, "--refs") ? &a->refs
                          : !strcmp(o, "--out") ? &a->out : !strcmp(o, "--embeddings") ? &a->embeddings : NULL;
        if (slot || !strcmp(o, "--block-rows")) {
            if (i + 1 >= argc) { fprintf(stderr, "vlt eval %s: %s needs a value\n", argv[0], o); return 2; }
            if (slot) *slot = argv[++i];
            else if ((a->block_rows = atoi(argv[++i])) <= 0) {
                fprintf(stderr, "vlt eval %s: --block-rows needs a positive integer\n", argv[0]);
                return 2;
            }
        } else if (!strcmp(o, "--pretokenized")) a->pretokenized = 1;
        else if (!strcmp(o, "--allow-subset")) a->allow_subset = 1;
        else if (!strcmp(o, "--per-image")) a->per_image = 1;
        else if (!strcmp(o, "--normalize")) a->normalize = 1;
        else {
            char cmd[64];
            snprintf(cmd, sizeof cmd, "eval %s", argv[0]);
            return vlt_cli_unexpected(cmd, o);
        }
    }
    return -1;
}

// Writes the report to a->out (if any); consumes root. Returns the exit status.
static int finish_report(const eval_args *a, cJSON *root) {
    int rc = 0;
    if (a->out && !strcmp(a->out, "-")) {
        char *s = cJSON_Print(root);
        if (s) printf("%s\n", s);
        free(s);
    } else if (a->out) {
        if (vlt_eval_json_save(a->out, root) != VLT_OK) {
            fprintf(stderr, "vlt eval: %s\n", vlt_error_message());
            rc = 1;
        } else {
            fprintf(stderr, "report written to %s\n", a->out);
        }
    }
    cJSON_Delete(root);
    return rc;
}

static int fail(const char *what) {
    fprintf(stderr, "vlt eval %s: %s\n", what, vlt_error_message());
    return 1;
}

static cJSON *per_image_json(const long long *ids, int n, const double *bleu, const double *cider) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "image_id", (double)ids[i]);
        char key[16];
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof key, "Bleu_%d", k + 1);
            cJSON_AddNumberToObject(o, key, bleu[i * 4 + k]);
        }
        cJSON_AddNumberToObject(o, "CIDEr", cider[i]);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static int eval_captions(int argc, char **argv) {
    eval_args a;
    int prc = parse_args(argc, argv, &a, CAPTIONS_USAGE);
    if (prc >= 0) return prc;
    if (!a.pred || !a.refs) { fprintf(stderr, "vlt eval captions: needs --pred results.json and --refs captions.json\n"); return 2; }
    vlt_eval_caption_load_opts o = {a.pretokenized, a.allow_subset};
    vlt_eval_caption_set *set = NULL;
    long long *ids = NULL;
    int n = 0;
    cJSON *pj = NULL, *rj = NULL;
    double t0 = now_s();
    vlt_status ls = vlt_eval_json_load(a.pred, &pj);
    if (ls == VLT_OK) ls = vlt_eval_json_load(a.refs, &rj);
    double tp = now_s();
    if (ls == VLT_OK) ls = vlt_eval_captions_from_json(pj, a.pred, rj, a.refs, &o, &set, &ids, &n);
    cJSON_Delete(pj);
    cJSON_Delete(rj);
    if (ls != VLT_OK) return fail("captions");
    double t1 = now_s();
    double bleu[4], cider, *bimg = malloc((size_t)n * 4 * sizeof *bimg), *cimg = malloc((size_t)n * sizeof *cimg);
    vlt_status st = bimg && cimg ? vlt_eval_bleu(set, bleu, bimg) : vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    if (st == VLT_OK) st = vlt_eval_cider_d(set, &cider, cimg);
    double t2 = now_s();
    int rc = 0;
    if (st != VLT_OK) rc = fail("captions");
    else {
        printf("captions: %d images, %s, %s vs %s\n", n, a.pretokenized ? "pre-tokenized" : "PTB-tokenized", a.pred, a.refs);
        printf("  %-8s %s\n", "metric", "score");
        for (int k = 0; k < 4; k++) printf("  BLEU-%d   %.6f\n", k + 1, bleu[k]);
        printf("  CIDEr-D  %.6f\n", cider);
        printf("  (JSON parse %.3f s, %s + n-gram counting %.3f s, scoring %.3f s)\n", tp - t0,
               a.pretokenized ? "no tokenization" : "tokenization", t1 - tp, t2 - t1);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "pred", a.pred);
        cJSON_AddStringToObject(r, "refs", a.refs);
        cJSON_AddStringToObject(r, "tokenization", a.pretokenized ? "none (pre-tokenized)" : "ptb (pycocoevalcap)");
        cJSON_AddNumberToObject(r, "n_images", n);
        char key[16];
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof key, "Bleu_%d", k + 1);
            cJSON_AddNumberToObject(r, key, bleu[k]);
        }
        cJSON_AddNumberToObject(r, "CIDEr", cider);
        cJSON_AddNumberToObject(r, "parse_seconds", tp - t0);
        cJSON_AddNumberToObject(r, "prepare_seconds", t1 - tp);
        cJSON_AddNumberToObject(r, "scoring_seconds", t2 - t1);
        if (a.per_image) cJSON_AddItemToObject(r, "per_image", per_image_json(ids, n, bimg, cimg));
        rc = finish_report(&a, r);
    }
    free(bimg);
    free(cimg);
    free(ids);
    vlt_eval_caption_set_free(set);
    return rc;
}

static void normalize_rows(float *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        double ss = 0;
        for (int64_t k = 0; k < d; k++) ss += (double)x[i * d + k] * x[i * d + k];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int64_t k = 0; k < d; k++) x[i * d + k] *= inv;
    }
}

static cJSON *recall_json(const vlt_eval_recall *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "R@1", r->recall[0]);
    cJSON_AddNumberToObject(o, "R@5", r->recall[1]);
    cJSON_AddNumberToObject(o, "R@10", r->recall[2]);
    cJSON_AddNumberToObject(o, "mean_rank", r->mean_rank);
    cJSON_AddNumberToObject(o, "median_rank", r->median_rank);
    cJSON_AddNumberToObject(o, "n_queries", r->n_queries);
    return o;
}

static int eval_retrieval(int argc, char **argv) {
    eval_args a;
    int prc = parse_args(argc, argv, &a, RETRIEVAL_USAGE);
    if (prc >= 0) return prc;
    if (!a.embeddings) { fprintf(stderr, "vlt eval retrieval: needs --embeddings emb.h5\n"); return 2; }
    vlt_eval_embeddings e;
    if (vlt_eval_embeddings_read(a.embeddings, &e) != VLT_OK) return fail("retrieval");
    if (e.n_images > INT32_MAX || e.n_texts > INT32_MAX || e.dim > INT32_MAX) {
        vlt_eval_embeddings_free(&e);
        fprintf(stderr, "vlt eval retrieval: %s: too many rows\n", a.embeddings);
        return 1;
    }
    int64_t off_img = 0, off_txt = 0;
    if (a.normalize) {
        normalize_rows(e.image_embeds, e.n_images, e.dim);
        normalize_rows(e.text_embeds, e.n_texts, e.dim);
    } else {  // dot products rank as cosine similarity only for unit rows
        int64_t fi = 0, ft = 0;
        double ni = 0, nt = 0;
        off_img = vlt_eval_rows_not_unit(e.image_embeds, e.n_images, e.dim, 1e-3, &fi, &ni);
        off_txt = vlt_eval_rows_not_unit(e.text_embeds, e.n_texts, e.dim, 1e-3, &ft, &nt);
        if (off_img)
            fprintf(stderr, "vlt eval retrieval: warning: %s: %lld of %lld image rows are not unit length (row %lld has norm %.6g); "
                    "pass --normalize to rank by cosine similarity\n", a.embeddings, (long long)off_img, (long long)e.n_images,
                    (long long)fi, ni);
        if (off_txt)
            fprintf(stderr, "vlt eval retrieval: warning: %s: %lld of %lld text rows are not unit length (row %lld has norm %.6g); "
                    "pass --normalize to rank by cosine similarity\n", a.embeddings, (long long)off_txt, (long long)e.n_texts,
                    (long long)ft, nt);
    }
    vlt_eval_retrieval_result r;
    double t0 = now_s();
    vlt_status st = vlt_eval_retrieval(e.image_embeds, (int)e.n_images, e.text_embeds, (int)e.n_texts, (int)e.dim,
                                       e.text_image_index, a.block_rows, &r, NULL, NULL);
    double t1 = now_s();
    int rc;
    if (st != VLT_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s: %s", a.embeddings, vlt_error_message());
        fprintf(stderr, "vlt eval retrieval: %s\n", why);
        rc = 1;
    } else {
        printf("retrieval: %lld images, %lld captions, dim %lld, model '%s' (%s)\n", (long long)e.n_images,
               (long long)e.n_texts, (long long)e.dim, e.model, a.embeddings);
        printf("  %-12s %7s %7s %7s %10s %12s\n", "", "R@1", "R@5", "R@10", "mean rank", "median rank");
        const vlt_eval_recall *rr[2] = {&r.i2t, &r.t2i};
        const char *names[2] = {"image->text", "text->image"};
        for (int k = 0; k < 2; k++)
            printf("  %-12s %7.2f %7.2f %7.2f %10.2f %12.0f\n", names[k], 100 * rr[k]->recall[0], 100 * rr[k]->recall[1],
                   100 * rr[k]->recall[2], rr[k]->mean_rank, rr[k]->median_rank);
        printf("  (recall in %%, ties counted against the target; %.3f s)\n", t1 - t0);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "embeddings", a.embeddings);
        cJSON_AddStringToObject(o, "model", e.model);
        cJSON_AddStringToObject(o, "config", e.config);
        cJSON_AddNumberToObject(o, "n_images", (double)e.n_images);
        cJSON_AddNumberToObject(o, "n_texts", (double)e.n_texts);
        cJSON_AddBoolToObject(o, "normalized_by_eval", a.normalize);
        cJSON_AddNumberToObject(o, "image_rows_not_unit", (double)off_img);
        cJSON_AddNumberToObject(o, "text_rows_not_unit", (double)off_txt);
        cJSON_AddStringToObject(o, "ties", "pessimistic (a tie counts against the target)");
        cJSON_AddItemToObject(o, "image_to_text", recall_json(&r.i2t));
        cJSON_AddItemToObject(o, "text_to_image", recall_json(&r.t2i));
        rc = finish_report(&a, o);
    }
    vlt_eval_embeddings_free(&e);
    return rc;
}

static int eval_vqa(int argc, char **argv) {
    eval_args a;
    int prc = parse_args(argc, argv, &a, VQA_USAGE);
    if (prc >= 0) return prc;
    if (!a.pred || !a.refs) { fprintf(stderr, "vlt eval vqa: needs --pred results.json and --refs annotations.json\n"); return 2; }
    vlt_eval_vqa_result r;
    if (vlt_eval_vqa_files(a.pred, a.refs, a.allow_subset, &r) != VLT_OK) return fail("vqa");
    printf("vqa: %d questions, %s vs %s\n", r.n_questions, a.pred, a.refs);
    printf("  %-16s %9s %10s\n", "answer type", "questions", "accuracy");
    printf("  %-16s %9d %10.2f\n", "overall", r.n_questions, 100 * r.accuracy);
    for (int t = 0; t < r.n_types; t++) printf("  %-16s %9d %10.2f\n", r.type_name[t], r.type_count[t], 100 * r.type_accuracy[t]);
    if (r.n_qtypes) printf("  %-24s %9s %10s\n", "question type", "questions", "accuracy");
    for (int t = 0; t < r.n_qtypes; t++) printf("  %-24s %9d %10.2f\n", r.qtype_name[t], r.qtype_count[t], 100 * r.qtype_accuracy[t]);
    cJSON *o = cJSON_CreateObject(), *types = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "pred", a.pred);
    cJSON_AddStringToObject(o, "refs", a.refs);
    cJSON_AddNumberToObject(o, "n_questions", r.n_questions);
    cJSON_AddNumberToObject(o, "accuracy", r.accuracy);
    for (int t = 0; t < r.n_types; t++) cJSON_AddNumberToObject(types, r.type_name[t], r.type_accuracy[t]);
    cJSON_AddItemToObject(o, "per_answer_type", types);
    cJSON *qtypes = cJSON_CreateObject();
    for (int t = 0; t < r.n_qtypes; t++) cJSON_AddNumberToObject(qtypes, r.qtype_name[t], r.qtype_accuracy[t]);
    cJSON_AddItemToObject(o, "per_question_type", qtypes);
    return finish_report(&a, o);
}

static const vlt_command SUBCOMMANDS[] = {
    {"captions", eval_captions, "--pred results.json --refs captions.json: BLEU-1..4 and CIDEr-D (pycocoevalcap)"},
    {"retrieval", eval_retrieval, "--embeddings emb.h5: image<->text recall@1/5/10, mean/median rank"},
    {"vqa", eval_vqa, "--pred results.json --refs annotations.json: VQAv2 accuracy"},
    {"checkpoint", vlt_cmd_eval_checkpoint, "--checkpoint RUN --shards SPEC: recall@k (and CoCa's BLEU / CIDEr-D) of a trained model"},
    {"zeroshot", vlt_cmd_eval_zeroshot, "--checkpoint RUN --shards SPEC --classes F --templates F: zero-shot top-1/top-5"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: vlt eval <what> [options]   (vlt eval <what> --help for each)\n\n");
    for (size_t i = 0; i < sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]; i++)
        fprintf(f, "  %-10s %s\n", SUBCOMMANDS[i].name, SUBCOMMANDS[i].summary);
    fprintf(f, "\nExit status: 0 done, 1 failed (message names the file), 2 usage error.\n");
}

int vlt_cmd_eval(int argc, char **argv) {
    if (argc < 2 || vlt_cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]; i++)
        if (!strcmp(argv[1], SUBCOMMANDS[i].name)) return SUBCOMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vlt eval: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
