// eval_cmd.c — `vlt eval <what>`: captioning metrics, retrieval and VQA accuracy from files
// (the scorers of eval/), and the routing to `vlt eval checkpoint` / `zeroshot` (embed_cmd.c).
// Each file subcommand prints a table and, with --out PATH, writes a JSON report (--out - writes
// it to stdout). To add one, write `static int eval_NAME(int argc, char **argv)` and add its line
// to SUBCOMMANDS.
#include <cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval/bleu.h"
#include "eval/caption_io.h"
#include "eval/cider.h"
#include "eval/embeddings_h5.h"
#include "eval/json_file.h"
#include "eval/report.h"
#include "eval/retrieval.h"
#include "eval/vqa_io.h"
#include "train/cli_args.h"
#include "train/commands.h"

typedef struct {
    const char *pred, *refs, *out, *embeddings;
    int pretokenized, allow_subset, per_image, normalize, block_rows;
    const char *scorer;  // vlt eval vqa --scorer
    int per_question;    // vlt eval vqa --per-question
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
    "usage: vlt eval vqa --pred results.json --refs annotations.json [--allow-subset] [--scorer V] [--per-question]\n"
    "                    [--out report.json|-]\n"
    "VQAv2 accuracy as the official evaluation computes it, overall, per answer type and per question type.\n"
    "  --pred [{question_id, answer}]   --refs {annotations: [{question_id, answers: [{answer}] | [str]}]}\n"
    "  --scorer vqaeval-2021 (default: the official vqaEval.py since March 2021) | vqaeval-2016 (the official\n"
    "           code of 2016 to March 2021, which results published before 2021 used)\n"
    "  --per-question  each question's accuracy in the report (per_question.<id>: the official evalQA / 100)\n";

// Parses the shared options; returns -1 to go on, or the exit status (0 after --help, 2 after a
// usage error, message printed).
static int parse_args(int argc, char **argv, eval_args *a, const char *usage) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (vlt_cli_is_help(o)) { fputs(usage, stdout); return 0; }
        const char **slot = !strcmp(o, "--pred") ? &a->pred : !strcmp(o, "--refs") ? &a->refs
                          : !strcmp(o, "--out") ? &a->out : !strcmp(o, "--embeddings") ? &a->embeddings
                          : !strcmp(o, "--scorer") ? &a->scorer : NULL;
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
        else if (!strcmp(o, "--per-question")) a->per_question = 1;
        else if (!strcmp(o, "--normalize")) a->normalize = 1;
        else {
            char cmd[64];
            snprintf(cmd, sizeof cmd, "eval %s", argv[0]);
            return vlt_cli_unexpected(cmd, o);
        }
    }
    return -1;
}

// Writes the report to a->out (if any) and frees it. Returns the exit status.
static int finish_report(const eval_args *a, vlt_eval_report *rep) {
    int rc = 0;
    if (a->out) {
        if (vlt_eval_report_save(rep, a->out) != VLT_OK) {
            fprintf(stderr, "vlt eval: %s\n", vlt_error_message());
            rc = 1;
        } else if (strcmp(a->out, "-") != 0) {
            fprintf(stderr, "report written to %s (vlt eval --reproduce %s runs it again)\n", a->out, a->out);
        }
    }
    vlt_eval_report_free(rep);
    return rc;
}

// Scorer definitions, as the reports state them.
static const char *DEF_PTB = "pycocoevalcap's PTBTokenizer: Stanford CoreNLP 3.4.1 PTBTokenizer -preserveLines -lowerCase "
                             "on each call's captions as one stream (references of all images, then candidates, images in the "
                             "annotation file's order), punctuation tokens removed (vlt port: eval/ptb_lexer.c)";
static const char *DEF_BLEU = "pycocoevalcap Bleu(4): corpus BLEU-n with clipped n-gram counts, the reference length closest "
                              "to the candidate's, brevity penalty, tiny=1e-9 and small=1e-15 smoothing; per image the same "
                              "on one image";
static const char *DEF_CIDER = "pycocoevalcap Cider (CIDEr-D): n = 1..4, tf-idf with document frequencies from the "
                               "references of the evaluated images, clipped candidate counts, Gaussian length penalty "
                               "sigma = 6, x10, mean over the references and over n";
static const char *DEF_RECALL = "recall@k: fraction of queries whose target ranks within the top k by dot product (cosine "
                                "similarity on unit rows); a tie counts against the target; image->text: the best-ranked "
                                "of the image's captions; mean / median of the 1-based rank";
static const char *DEF_VQA = "official VQA (vqaEval.py) accuracy: min(#matching human answers / 3, 1) averaged over the 10 "
                             "leave-one-out subsets, mean over questions, per answer type and per question type (unrounded)";

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
        vlt_eval_report rep;
        if (vlt_eval_report_init(&rep, VLT_VERSION, argc, argv) != VLT_OK || vlt_eval_report_input(&rep, "predictions", a.pred) != VLT_OK ||
            vlt_eval_report_input(&rep, "references", a.refs) != VLT_OK) {
            free(bimg);
            free(cimg);
            free(ids);
            vlt_eval_caption_set_free(set);
            return fail("captions");
        }
        vlt_eval_report_setting(&rep, "tokenization", a.pretokenized ? "none (pre-tokenized, split on whitespace)" : "ptb (pycocoevalcap)");
        vlt_eval_report_setting(&rep, "images", a.allow_subset ? "the predicted ones (--allow-subset)" : "every referenced image");
        if (!a.pretokenized) vlt_eval_report_scorer(&rep, "tokenization", DEF_PTB);
        vlt_eval_report_scorer(&rep, "Bleu_1..4", DEF_BLEU);
        vlt_eval_report_scorer(&rep, "CIDEr", DEF_CIDER);
        vlt_eval_report_number(&rep, "n_images", n);
        char key[64];
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof key, "Bleu_%d", k + 1);
            vlt_eval_report_number(&rep, key, bleu[k]);
        }
        vlt_eval_report_number(&rep, "CIDEr", cider);
        for (int i = 0; a.per_image && i < n; i++) {
            for (int k = 0; k < 4; k++) {
                snprintf(key, sizeof key, "per_image.%lld.Bleu_%d", ids[i], k + 1);
                vlt_eval_report_number(&rep, key, bimg[4 * i + k]);
            }
            snprintf(key, sizeof key, "per_image.%lld.CIDEr", ids[i]);
            vlt_eval_report_number(&rep, key, cimg[i]);
        }
        cJSON_AddNumberToObject(rep.details, "parse_seconds", tp - t0);
        cJSON_AddNumberToObject(rep.details, "prepare_seconds", t1 - tp);
        cJSON_AddNumberToObject(rep.details, "scoring_seconds", t2 - t1);
        if (a.per_image) cJSON_AddItemToObject(rep.details, "per_image", per_image_json(ids, n, bimg, cimg));
        rc = finish_report(&a, &rep);
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
        vlt_eval_report rep;
        if (vlt_eval_report_init(&rep, VLT_VERSION, argc, argv) != VLT_OK || vlt_eval_report_input(&rep, "embeddings", a.embeddings) != VLT_OK) {
            vlt_eval_embeddings_free(&e);
            return fail("retrieval");
        }
        vlt_eval_report_setting(&rep, "model", e.model);
        vlt_eval_report_setting(&rep, "model_config", e.config);
        vlt_eval_report_setting(&rep, "normalize", a.normalize ? "rows L2-normalized by vlt eval" : "rows as stored");
        vlt_eval_report_setting(&rep, "ties", "pessimistic (a tie counts against the target)");
        vlt_eval_report_scorer(&rep, "recall", DEF_RECALL);
        vlt_eval_report_number(&rep, "n_images", (double)e.n_images);
        vlt_eval_report_number(&rep, "n_texts", (double)e.n_texts);
        vlt_eval_report_number(&rep, "image_rows_not_unit", (double)off_img);
        vlt_eval_report_number(&rep, "text_rows_not_unit", (double)off_txt);
        const char *dir[2] = {"image_to_text", "text_to_image"}, *rk[3] = {"R@1", "R@5", "R@10"};
        for (int k = 0; k < 2; k++) {
            char key[64];
            for (int j = 0; j < 3; j++) {
                snprintf(key, sizeof key, "%s.%s", dir[k], rk[j]);
                vlt_eval_report_number(&rep, key, rr[k]->recall[j]);
            }
            snprintf(key, sizeof key, "%s.mean_rank", dir[k]);
            vlt_eval_report_number(&rep, key, rr[k]->mean_rank);
            snprintf(key, sizeof key, "%s.median_rank", dir[k]);
            vlt_eval_report_number(&rep, key, rr[k]->median_rank);
        }
        rc = finish_report(&a, &rep);
    }
    vlt_eval_embeddings_free(&e);
    return rc;
}

static int eval_vqa(int argc, char **argv) {
    eval_args a;
    int prc = parse_args(argc, argv, &a, VQA_USAGE);
    if (prc >= 0) return prc;
    if (!a.pred || !a.refs) { fprintf(stderr, "vlt eval vqa: needs --pred results.json and --refs annotations.json\n"); return 2; }
    vlt_eval_vqa_version ver = VLT_EVAL_VQA_CURRENT;
    if (a.scorer && !vlt_eval_vqa_version_parse(a.scorer, &ver)) {
        fprintf(stderr, "vlt eval vqa: --scorer %s: expected vqaeval-2021 or vqaeval-2016\n", a.scorer);
        return 2;
    }
    vlt_eval_vqa_result r;
    if (vlt_eval_vqa_files(a.pred, a.refs, ver, a.allow_subset, &r) != VLT_OK) return fail("vqa");
    if (r.n_dup_annotations)
        fprintf(stderr, "vlt eval vqa: warning: %s: %d annotation(s) repeat an earlier question_id (first: %lld); as the official "
                "code, each is scored with the last annotation of its id, once per appearance\n", a.refs, r.n_dup_annotations,
                r.first_dup_annotation);
    if (r.n_dup_predictions)
        fprintf(stderr, "vlt eval vqa: warning: %s: %d prediction(s) repeat an earlier question_id (first: %lld); the last one "
                "is used, as the official code\n", a.pred, r.n_dup_predictions, r.first_dup_prediction);
    printf("vqa: %d questions, %s vs %s, scorer %s\n", r.n_questions, a.pred, a.refs, vlt_eval_vqa_version_name(ver));
    printf("  %-16s %9s %10s\n", "answer type", "questions", "accuracy");
    printf("  %-16s %9d %10.2f\n", "overall", r.n_questions, 100 * r.accuracy);
    for (int t = 0; t < r.n_types; t++) printf("  %-16s %9d %10.2f\n", r.types[t].name, r.types[t].count, 100 * r.types[t].accuracy);
    if (r.n_qtypes) printf("  %-24s %9s %10s\n", "question type", "questions", "accuracy");
    for (int t = 0; t < r.n_qtypes; t++)
        printf("  %-24s %9d %10.2f\n", r.qtypes[t].name, r.qtypes[t].count, 100 * r.qtypes[t].accuracy);
    vlt_eval_report rep;
    if (vlt_eval_report_init(&rep, VLT_VERSION, argc, argv) != VLT_OK || vlt_eval_report_input(&rep, "predictions", a.pred) != VLT_OK ||
        vlt_eval_report_input(&rep, "annotations", a.refs) != VLT_OK) {
        vlt_eval_vqa_result_free(&r);
        return fail("vqa");
    }
    vlt_eval_report_setting(&rep, "questions", a.allow_subset ? "the predicted ones (--allow-subset)" : "every annotated question");
    vlt_eval_report_setting(&rep, "scorer", vlt_eval_vqa_version_name(ver));
    char def[1024];
    snprintf(def, sizeof def, "%s; %s", DEF_VQA, vlt_eval_vqa_version_description(ver));
    vlt_eval_report_scorer(&rep, "accuracy", def);
    vlt_eval_report_number(&rep, "n_questions", r.n_questions);
    vlt_eval_report_number(&rep, "accuracy", r.accuracy);
    vlt_eval_report_number(&rep, "duplicate_annotations", r.n_dup_annotations);
    vlt_eval_report_number(&rep, "duplicate_predictions", r.n_dup_predictions);
    char key[256];
    for (int t = 0; t < r.n_types; t++) {
        snprintf(key, sizeof key, "per_answer_type.%s", r.types[t].name);
        vlt_eval_report_number(&rep, key, r.types[t].accuracy);
    }
    for (int t = 0; t < r.n_qtypes; t++) {
        snprintf(key, sizeof key, "per_question_type.%s", r.qtypes[t].name);
        vlt_eval_report_number(&rep, key, r.qtypes[t].accuracy);
    }
    for (int i = 0; a.per_question && i < r.n_ids; i++) {
        snprintf(key, sizeof key, "per_question.%lld", r.qid[i]);
        vlt_eval_report_number(&rep, key, r.q_accuracy[i]);
    }
    vlt_eval_vqa_result_free(&r);
    return finish_report(&a, &rep);
}

static const vlt_command SUBCOMMANDS[] = {
    {"captions", eval_captions, "--pred results.json --refs captions.json: BLEU-1..4 and CIDEr-D (pycocoevalcap)"},
    {"retrieval", eval_retrieval, "--embeddings emb.h5: image<->text recall@1/5/10, mean/median rank"},
    {"vqa", eval_vqa, "--pred results.json --refs annotations.json: VQAv2 accuracy"},
    {"checkpoint", vlt_cmd_eval_checkpoint, "--checkpoint RUN --shards SPEC: recall@k (and CoCa's BLEU / CIDEr-D) of a trained model"},
    {"zeroshot", vlt_cmd_eval_zeroshot, "--checkpoint RUN --shards SPEC --classes F --templates F: zero-shot top-1/top-5"},
    {"clipscore", vlt_cmd_eval_clipscore, "--checkpoint RUN --results results.json --shards SPEC: CLIPScore, RefCLIPScore"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: vlt eval <what> [options]   (vlt eval <what> --help for each)\n\n");
    for (size_t i = 0; i < sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]; i++)
        fprintf(f, "  %-10s %s\n", SUBCOMMANDS[i].name, SUBCOMMANDS[i].summary);
    fprintf(f, "  --reproduce REPORT  run a report's evaluation (or vlt caption run) again: inputs re-hashed, every\n"
               "                      number compared\n");
    fprintf(f, "\nEvery subcommand's --out PATH report holds the numbers, the sha256 of every file read, the\n"
               "settings, the scorer definitions and the vlt build.\n");
    fprintf(f, "\nExit status: 0 done, 1 failed (message names the file), 2 usage error.\n");
}

// `vlt eval --reproduce REPORT [--out NEW]`: the report's inputs re-hashed, its command run again
// in its directory (its report to NEW, or a temporary file), and its numbers compared one by one.
// Exit 0 when every input is the same and every number identical, 1 otherwise, 2 on usage errors.
static int reproduce(int argc, char **argv) {
    const char *path = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {  // (--help anywhere, also where a path is expected)
        if (vlt_cli_is_help(argv[i])) {
            printf("usage: vlt eval --reproduce REPORT [--out NEW_REPORT]\n"
                   "Checks the sha256 of every input the report lists, runs its command again in its directory\n"
                   "and says for every number whether it is identical (bit for bit). Exit 0: all identical.\n"
                   "Reports of every vlt eval subcommand and of vlt caption --report.\n");
            return 0;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reproduce") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else return vlt_cli_unexpected("eval --reproduce", argv[i]);
    }
    if (!path) { fprintf(stderr, "vlt eval --reproduce: needs a report path\n"); return 2; }
    cJSON *old = NULL;
    if (vlt_eval_json_load(path, &old) != VLT_OK) { fprintf(stderr, "vlt eval --reproduce: %s\n", vlt_error_message()); return 1; }
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(old, "command"), *cwd = cJSON_GetObjectItemCaseSensitive(old, "cwd");
    int n = cJSON_GetArraySize(cmd);
    if (!cJSON_IsArray(cmd) || n < 1 || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(old, "vlt_report"))) {
        fprintf(stderr, "vlt eval --reproduce: %s is not a vlt evaluation report (no \"vlt_report\" and \"command\")\n", path);
        cJSON_Delete(old);
        return 1;
    }
    char abs_path[4096], tmp[4200] = "";
    if (!realpath(path, abs_path)) snprintf(abs_path, sizeof abs_path, "%s", path);
    char abs_out[4096] = "";
    if (out) {  // relative to where --reproduce runs, not to the report's directory
        if (out[0] == '/') snprintf(abs_out, sizeof abs_out, "%s", out);
        else {
            char here[2048];
            snprintf(abs_out, sizeof abs_out, "%s/%s", getcwd(here, sizeof here) ? here : ".", out);
        }
    } else {
        snprintf(tmp, sizeof tmp, "%s.reproduce.XXXXXX", abs_path);
        int fd = mkstemp(tmp);
        if (fd < 0) snprintf(tmp, sizeof tmp, "/tmp/vlt-reproduce-%ld.json", (long)getpid());
        else close(fd);
        snprintf(abs_out, sizeof abs_out, "%s", tmp);
    }
    const cJSON *c0 = cJSON_GetArrayItem(cmd, 0);
    bool top = cJSON_IsString(c0) && !strcmp(c0->valuestring, "caption");  // a command of its own, not vlt eval's
    printf("reproducing %s: vlt%s", path, top ? "" : " eval");
    const cJSON *c;
    cJSON_ArrayForEach(c, cmd) printf(" %s", cJSON_IsString(c) ? c->valuestring : "?");
    printf("\n  in %s\ninputs:\n", cJSON_IsString(cwd) ? cwd->valuestring : "?");
    int changed = vlt_eval_report_check_inputs(old, stdout);
    // the same arguments, with the report option (--out, or what the report names: vlt caption's
    // --out is its results file, its report --report) pointing at the new report
    const cJSON *ro = cJSON_GetObjectItemCaseSensitive(old, "report_option");
    const char *ropt = cJSON_IsString(ro) ? ro->valuestring : "--out";
    char **args = calloc((size_t)n + 3, sizeof *args);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(cmd, i);
        const char *v = cJSON_IsString(x) ? x->valuestring : "";
        size_t rl = strlen(ropt);
        if (!strcmp(v, ropt) && i + 1 < n) { i++; continue; }
        if (!strncmp(v, ropt, rl) && v[rl] == '=') continue;
        args[k++] = strdup(v);
    }
    args[k++] = strdup(ropt);
    args[k++] = strdup(abs_out);
    const char *first = cJSON_IsString(cJSON_GetArrayItem(cmd, 0)) ? cJSON_GetArrayItem(cmd, 0)->valuestring : "";
    char here[4096];
    int moved = cJSON_IsString(cwd) && getcwd(here, sizeof here) && chdir(cwd->valuestring) == 0;
    if (cJSON_IsString(cwd) && !moved) printf("  (cannot enter %s: running here)\n", cwd->valuestring);
    printf("running:\n");
    fflush(stdout);
    char **full = calloc((size_t)k + 2, sizeof *full);  // "eval" + the subcommand's arguments
    int rc = 1;
    if (full && !strcmp(first, "caption")) {
        for (int i = 0; i < k; i++) full[i] = args[i];
        rc = vlt_cmd_caption(k, full);
        free(full);
    } else if (full) {
        full[0] = "eval";
        for (int i = 0; i < k; i++) full[i + 1] = args[i];
        rc = vlt_cmd_eval(k + 1, full);
        free(full);
    }
    if (moved && chdir(here) != 0) fprintf(stderr, "vlt eval --reproduce: cannot return to %s\n", here);
    for (int i = 0; i < k; i++) free(args[i]);
    free(args);
    int status = 1;
    cJSON *now = NULL;
    if (rc != 0) fprintf(stderr, "vlt eval --reproduce: the evaluation failed (exit %d)\n", rc);
    else if (vlt_eval_json_load(abs_out, &now) != VLT_OK) fprintf(stderr, "vlt eval --reproduce: %s\n", vlt_error_message());
    else {
        int same = 0, diff = 0;
        printf("numbers (old -> new):\n");
        vlt_eval_report_compare(cJSON_GetObjectItemCaseSensitive(old, "numbers"), cJSON_GetObjectItemCaseSensitive(now, "numbers"),
                                12, stdout, &same, &diff);
        printf("%d of %d numbers identical, %d differ; %d input(s) changed or missing: %s\n", same, same + diff, diff, changed,
               diff == 0 && changed == 0 ? "REPRODUCED" : "NOT REPRODUCED");
        status = diff == 0 && changed == 0 ? 0 : 1;
    }
    cJSON_Delete(now);
    cJSON_Delete(old);
    if (!out && tmp[0]) unlink(tmp);
    else if (out) fprintf(stderr, "new report written to %s\n", abs_out);
    return status;
}

int vlt_cmd_eval(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--reproduce")) return reproduce(argc, argv);
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
