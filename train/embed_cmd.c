// embed_cmd.c — `vlt embed` (image and text embeddings of a shard set, to HDF5),
// `vlt eval checkpoint` (retrieval recall@k, and BLEU/CIDEr-D of greedy captions for CoCa, of a
// trained checkpoint on a shard set) and `vlt eval zeroshot` (classification with class names
// and prompt templates from files).
#include <cJSON.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>

#include "autograd/device.h"
#include "checkpoints/checkpoint.h"
#include "data/files.h"
#include "data/shardspec.h"
#include "data/thumbs.h"
#include "data/transform.h"
#include "eval/html.h"
#include "eval/clipscore.h"
#include "eval/embeddings_h5.h"
#include "eval/json_file.h"
#include "eval/report.h"
#include "eval/zeroshot.h"
#include "train/cli_args.h"
#include "train/commands.h"
#include "train/eval_html.h"
#include "train/evaluate.h"
#include "train/model_source.h"
#include "train/run_config.h"

// What every command here works with: the model (train/model_source.h: a checkpoint, or a weights
// file and its model config) and the tokenizer.
typedef struct {
    vlt_model_source src;
    vlt_tokenizer *tok;
} session;

static vlt_status session_open(const char *checkpoint, const char *weights, const char *model, session *se) {
    memset(se, 0, sizeof *se);
    VLT_TRY(vlt_model_source_open(checkpoint, weights, model, &se->src));
    return vlt_tokenizer_load(NULL, &se->tok);
}

static void session_close(session *se) {
    vlt_tokenizer_free(se->tok);
    vlt_model_source_close(&se->src);
}

#define VLT_EVAL_RERANK_K 256   // ALBEF's k_test (configs/Retrieval_coco.yaml, Retrieval_flickr.yaml)

typedef struct {
    const char *checkpoint, *weights, *model, *shards, *out;
    const char *captions_out;                      // eval checkpoint: the greedy captions as COCO results
    const char *classes, *templates, *label_ext;   // zeroshot
    const char *html;                              // eval checkpoint: the HTML page's folder
    const char *results;                           // eval clipscore: the captions to score
    bool no_refs;                                  // eval clipscore: CLIP-S only
    int batch, limit;
    int rerank_k;                                  // eval checkpoint, a matching model: candidates re-scored (0: off)
    bool rerank_given;
    const char *answer_vocab;                      // eval checkpoint: a VQA model's answers (with --weights)
} eval_args;

// Returns -1 to go on, or the exit status (0 after --help, 2 after a usage error, message printed).
static int parse_args(const char *cmd, int argc, char **argv, eval_args *a, const char *usage) {
    static const struct option opts[] = {{"checkpoint", required_argument, 0, 'c'}, {"shards", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},        {"batch", required_argument, 0, 'b'},
                                         {"limit", required_argument, 0, 'l'},      {"help", no_argument, 0, 'h'},
                                         {"classes", required_argument, 0, 'C'},    {"templates", required_argument, 0, 'T'},
                                         {"label-ext", required_argument, 0, 'L'},  {"html", required_argument, 0, 'H'},
                                         {"results", required_argument, 0, 'R'},    {"no-refs", no_argument, 0, 'N'},
                                         {"weights", required_argument, 0, 'W'},    {"model", required_argument, 0, 'M'},
                                         {"captions-out", required_argument, 0, 'P'}, {"rerank-k", required_argument, 0, 'K'},
                                         {"answer-vocab", required_argument, 0, 'A'}, {0, 0, 0, 0}};
    *a = (eval_args){.batch = 64, .rerank_k = VLT_EVAL_RERANK_K};
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
        case 'H': a->html = optarg; break;
        case 'R': a->results = optarg; break;
        case 'N': a->no_refs = true; break;
        case 'W': a->weights = optarg; break;
        case 'M': a->model = optarg; break;
        case 'P': a->captions_out = optarg; break;
        case 'A': a->answer_vocab = optarg; break;
        case 'K': a->rerank_k = (int)vlt_cli_int(cmd, "--rerank-k", optarg, 0, 1 << 30), a->rerank_given = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;   // getopt has named the option
        }
    }
    if (optind < argc) return vlt_cli_unexpected(cmd, argv[optind]);
    if (a->html && strcmp(cmd, "eval checkpoint") != 0) return vlt_cli_usage_error(cmd, "--html is an option of vlt eval checkpoint");
    if ((a->results || a->no_refs) && strcmp(cmd, "eval clipscore") != 0)
        return vlt_cli_usage_error(cmd, "--results and --no-refs are options of vlt eval clipscore");
    if (a->rerank_given && strcmp(cmd, "eval checkpoint") != 0)
        return vlt_cli_usage_error(cmd, "--rerank-k is an option of vlt eval checkpoint");
    if (a->captions_out && strcmp(cmd, "eval checkpoint") != 0)
        return vlt_cli_usage_error(cmd, "--captions-out is an option of vlt eval checkpoint");
    if (a->answer_vocab && strcmp(cmd, "eval checkpoint") != 0)
        return vlt_cli_usage_error(cmd, "--answer-vocab is an option of vlt eval checkpoint (and vlt vqa)");
    const char *why = vlt_model_source_check(a->checkpoint, a->weights, a->model);
    if (why) return vlt_cli_usage_error(cmd, why);
    if (!a->shards) return vlt_cli_usage_error(cmd, "--shards SPEC is required");
    return -1;
}

// The report of `vlt eval checkpoint` / `zeroshot` / `clipscore`: the weights, the checkpoint's
// state or the model config (model_source.h), every shard, the tokenizer vocabulary as inputs; the resolved model, transform, tokenizer and run
// settings. Errors name the file that could not be hashed.
static vlt_status report_open(vlt_eval_report *rep, int argc, char **argv, const session *se, const eval_args *a) {
    VLT_TRY(vlt_eval_report_init(rep, VLT_VERSION, argc, argv));
    vlt_status s = vlt_model_source_report_shards(&se->src, rep, a->shards, a->batch, a->limit);
    if (s != VLT_OK) vlt_eval_report_free(rep);
    return s;
}

static const char *EMBED_USAGE =
    "usage: vlt embed (--checkpoint RUN | --weights FILE --model NAME) --shards SPEC --out emb.h5 [--batch 64]\n"
    "                 [--limit N]\n"
    "Writes the L2-normalized image and text embeddings of the shards' image-caption pairs (eval\n"
    "transform, shard order) to HDF5 for `vlt eval retrieval --embeddings emb.h5` or h5py.\n"
    "\n" VLT_MODEL_SOURCE_USAGE;

int vlt_cmd_embed(int argc, char **argv) {
    eval_args a;
    int rc = parse_args("embed", argc, argv, &a, EMBED_USAGE);
    if (rc >= 0) return rc;
    if (!a.out) return vlt_cli_usage_error("embed", "--out emb.h5 is required");
    session se;
    vlt_embedded_pairs p = {0};
    vlt_status s = session_open(a.checkpoint, a.weights, a.model, &se);
    if (s == VLT_OK) s = vlt_embed_pairs(&se.src.m, se.tok, a.shards, a.batch, a.limit, &p);
    if (s == VLT_OK) {
        vlt_eval_embeddings e = {.n_images = p.n, .n_texts = p.n_txt, .dim = p.dim, .image_embeds = p.img,
                                 .text_embeds = p.txt, .image_ids = p.image_ids, .text_image_index = p.txt_img,
                                 .model = se.src.model_name, .config = se.src.label};
        s = vlt_eval_embeddings_write(a.out, &e);
        if (s == VLT_OK)
            printf("vlt embed: %d images, %d captions (dim %d) from %s -> %s\n", p.n, p.n_txt, p.dim, se.src.label, a.out);
    }
    if (s != VLT_OK) fprintf(stderr, "vlt embed: %s\n", vlt_error_message());
    vlt_embedded_pairs_free(&p);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}

static const char *EVAL_CKPT_USAGE =
    "usage: vlt eval checkpoint (--checkpoint RUN | --weights FILE --model NAME) --shards SPEC [--limit N] [--batch 64]\n"
    "                           [--out report.json] [--html DIR] [--captions-out results.json] [--rerank-k 256]\n"
    "Image<->text retrieval recall@1/5/10 of the checkpoint on the shards' pairs; for CoCa also greedy\n"
    "captions scored with BLEU-1..4 and CIDEr-D against the shards' captions.\n"
    "A model with an image-text matching head (ALBEF) is also scored as ALBEF's retrieval evaluation\n"
    "does: each query's top K candidates by feature similarity re-ranked by the ITM score (the positive\n"
    "logit of itm_head), K = --rerank-k (ALBEF's k_test 256; min(K, candidates); 0: off); both sets of\n"
    "recall@k are printed, in the report and on the page; and the head's pair accuracy: for each image,\n"
    "its caption against another image's (a different text, drawn from a fixed seed), the fraction where\n"
    "the true caption scores higher (chance 50%).\n"
    "--html DIR also writes DIR/index.html: sampled and worst-ranked queries with their top-5 results as\n"
    "thumbnails (DIR/img/), and for a captioner the best and worst captions by CIDEr-D; readable offline.\n"
    "--captions-out F: a captioner's greedy captions in the COCO results format (as vlt caption writes\n"
    "them), for vlt eval captions --pred F.\n"
    "A VQA run (an answer head) is scored by the official VQA accuracy instead, overall, per answer type\n"
    "and per question type; a VQA model's weights (--weights --model) need --answer-vocab FILE (the\n"
    "run's answer_vocab.json, or ALBEF's answer_list.json), as vlt vqa does.\n"
    "\n" VLT_MODEL_SOURCE_USAGE;

int vlt_cmd_eval_checkpoint(int argc, char **argv) {
    eval_args a;
    int rc = parse_args("eval checkpoint", argc, argv, &a, EVAL_CKPT_USAGE);
    if (rc >= 0) return rc;
    session se;
    vlt_embedded_pairs p = {0};
    vlt_caption_eval ce = {0};
    vlt_eval_retrieval_result r;
    // VQA (train/vqa_cmd.c): a VQA run, or a VQA model's weights with the answers they were trained on
    if (a.answer_vocab)
        return vlt_vqa_eval_checkpoint(a.checkpoint, a.weights, a.model, a.answer_vocab, a.shards, a.batch, a.limit,
                                       a.out, NULL, a.html, argc, argv);
    vlt_status s = session_open(a.checkpoint, a.weights, a.model, &se);
    if (s == VLT_OK && vlt_model_can(&se.src.m, VLT_CAP_ANSWER)) {
        session_close(&se);
        return vlt_vqa_eval_checkpoint(a.checkpoint, NULL, NULL, NULL, a.shards, a.batch, a.limit, a.out, NULL, a.html,
                                       argc, argv);
    }
    bool coca = s == VLT_OK && vlt_model_can(&se.src.m, VLT_CAP_CAPTION);
    if (s == VLT_OK) s = vlt_embed_pairs(&se.src.m, se.tok, a.shards, a.batch, a.limit, &p);
    if (s == VLT_OK) s = vlt_eval_pairs_retrieval(&p, &r);
    // a matching model (ALBEF): the features' top k re-ranked by its matching head (rr)
    vlt_eval_retrieval_result rr;
    double match_acc = 0;   // and its pair accuracy (vlt_eval_pairs_match_accuracy) over match_n images
    int match_n = 0;
    bool rerank = s == VLT_OK && vlt_model_can(&se.src.m, VLT_CAP_MATCH) && a.rerank_k > 0;
    int k_i2t = rerank ? (a.rerank_k < p.n_txt ? a.rerank_k : p.n_txt) : 0, k_t2i = rerank ? (a.rerank_k < p.n ? a.rerank_k : p.n) : 0;
    if (rerank) {
        vlt_no_grad_enter();
        s = vlt_eval_pairs_rerank(&se.src.m, &p, a.rerank_k, a.batch, &rr);
        if (s == VLT_OK) s = vlt_eval_pairs_match_accuracy(&se.src.m, &p, a.batch, &match_acc, &match_n, NULL);
        vlt_no_grad_exit();
    }
    if (s == VLT_OK && a.captions_out && !coca)
        s = vlt_error_set(VLT_ERR_UNSUPPORTED, "--captions-out: the %s model (kind '%s') has no caption decoder",
                          vlt_model_title(&se.src.m), vlt_model_kind(&se.src.m));
    if (s == VLT_OK && coca) s = vlt_eval_captions_on_shards(&se.src.m, se.tok, a.shards, a.batch, a.limit, &ce);
    if (s == VLT_OK && a.captions_out) {
        s = vlt_captions_save_coco(&ce, a.captions_out);
        if (s == VLT_OK) fprintf(stderr, "captions of %d images written to %s (COCO results format)\n", ce.n, a.captions_out);
    }
    if (s == VLT_OK) {
        printf("%s %s (%s), %d images with %d captions from %s\n", se.src.checkpoint[0] ? "checkpoint" : "weights",
               se.src.checkpoint[0] ? se.src.checkpoint : se.src.weights, se.src.model_name, p.n, p.n_txt, a.shards);
        printf("  image->text  R@1 %5.1f  R@5 %5.1f  R@10 %5.1f  mean rank %.1f\n", 100 * r.i2t.recall[0],
               100 * r.i2t.recall[1], 100 * r.i2t.recall[2], r.i2t.mean_rank);
        printf("  text->image  R@1 %5.1f  R@5 %5.1f  R@10 %5.1f  mean rank %.1f\n", 100 * r.t2i.recall[0],
               100 * r.t2i.recall[1], 100 * r.t2i.recall[2], r.t2i.mean_rank);
        if (rerank) {
            printf("  ITM re-ranked (top %d texts / %d images by features, re-scored by the matching head):\n", k_i2t, k_t2i);
            printf("  image->text  R@1 %5.1f  R@5 %5.1f  R@10 %5.1f  mean rank %.1f\n", 100 * rr.i2t.recall[0],
                   100 * rr.i2t.recall[1], 100 * rr.i2t.recall[2], rr.i2t.mean_rank);
            printf("  text->image  R@1 %5.1f  R@5 %5.1f  R@10 %5.1f  mean rank %.1f\n", 100 * rr.t2i.recall[0],
                   100 * rr.t2i.recall[1], 100 * rr.t2i.recall[2], rr.t2i.mean_rank);
            printf("  matching head: the true caption scored above another image's for %.1f%% of %d images (chance 50%%)\n",
                   100 * match_acc, match_n);
        }
        if (coca) printf("  captions (%d, greedy)  BLEU-4 %.1f  CIDEr-D %.1f\n", ce.n, 100 * ce.bleu[3], 100 * ce.cider);
        vlt_eval_report rep;
        if (a.out && (s = report_open(&rep, argc, argv, &se, &a)) == VLT_OK) {
            vlt_eval_report_scorer(&rep, "recall", "recall@k over every caption of each image (the .json captions list, as "
                                                   "COCO / Flickr 5k): fraction of queries whose target ranks within the top "
                                                   "k by cosine similarity of the L2-normalized embeddings; image->text ranks "
                                                   "the best of the image's captions; a tie counts against the target");
            vlt_eval_report_number(&rep, "pairs", p.n);  // images
            vlt_eval_report_number(&rep, "captions", p.n_txt);
            const char *names[3] = {"R@1", "R@5", "R@10"};
            char key[64];
            for (int k = 0; k < 3; k++) {
                snprintf(key, sizeof key, "image_to_text.%s", names[k]);
                vlt_eval_report_number(&rep, key, r.i2t.recall[k]);
                snprintf(key, sizeof key, "text_to_image.%s", names[k]);
                vlt_eval_report_number(&rep, key, r.t2i.recall[k]);
            }
            vlt_eval_report_number(&rep, "image_to_text.mean_rank", r.i2t.mean_rank);
            vlt_eval_report_number(&rep, "text_to_image.mean_rank", r.t2i.mean_rank);
            if (rerank) {
                char kv[32];
                snprintf(kv, sizeof kv, "%d", a.rerank_k);
                vlt_eval_report_setting(&rep, "rerank_k", kv);
                vlt_eval_report_scorer(&rep, "itm_rerank", "recall@k as 'recall' after ALBEF's retrieval evaluation (Retrieval.py "
                                                           "evaluation()): each query's top rerank_k candidates by feature "
                                                           "similarity (min(rerank_k, candidates)) re-scored by the positive logit of "
                                                           "the ITM head on the fused [CLS]; a target outside them ranks after them");
                vlt_eval_report_number(&rep, "itm_rerank.k_image_to_text", k_i2t);
                vlt_eval_report_number(&rep, "itm_rerank.k_text_to_image", k_t2i);
                for (int k = 0; k < 3; k++) {
                    snprintf(key, sizeof key, "itm_rerank.image_to_text.%s", names[k]);
                    vlt_eval_report_number(&rep, key, rr.i2t.recall[k]);
                    snprintf(key, sizeof key, "itm_rerank.text_to_image.%s", names[k]);
                    vlt_eval_report_number(&rep, key, rr.t2i.recall[k]);
                }
                vlt_eval_report_number(&rep, "itm_rerank.image_to_text.mean_rank", rr.i2t.mean_rank);
                vlt_eval_report_number(&rep, "itm_rerank.text_to_image.mean_rank", rr.t2i.mean_rank);
                vlt_eval_report_scorer(&rep, "itm_pair_accuracy", "for each image, its first caption against one caption "
                                       "of another image whose text differs from all of its own (drawn from a fixed "
                                       "seed); the fraction where the true caption's positive ITM logit is higher "
                                       "(a tie counts as wrong); chance 0.5");
                vlt_eval_report_number(&rep, "itm_pair_accuracy", match_acc);
                vlt_eval_report_number(&rep, "itm_pair_accuracy.images", match_n);
            }
            if (coca) {
                vlt_eval_report_setting(&rep, "generation", "greedy");
                vlt_eval_report_scorer(&rep, "captions", "BLEU-1..4 and CIDEr-D as pycocoevalcap (Bleu(4), Cider) of the greedy "
                                                         "captions against the shards' captions, PTB-tokenized as pycocoevalcap");
                vlt_eval_report_number(&rep, "captions.n", ce.n);
                for (int k = 0; k < 4; k++) {
                    snprintf(key, sizeof key, "captions.BLEU-%d", k + 1);
                    vlt_eval_report_number(&rep, key, ce.bleu[k]);
                }
                vlt_eval_report_number(&rep, "captions.CIDEr-D", ce.cider);
            }
            s = vlt_eval_report_save(&rep, a.out);
            vlt_eval_report_free(&rep);
            if (s == VLT_OK && strcmp(a.out, "-") != 0)
                fprintf(stderr, "report written to %s (vlt eval --reproduce %s runs it again)\n", a.out, a.out);
        }
        if (s == VLT_OK && a.html) {
            s = vlt_eval_html_checkpoint(a.html, se.src.label, a.shards, &p, &r, rerank ? &rr : NULL, a.rerank_k,
                                         coca ? &ce : NULL, &se.src.m, se.tok);
            if (s == VLT_OK) fprintf(stderr, "HTML page written to %s/index.html\n", a.html);
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
    char *line = NULL;  // any length: a long line is one class or template, never several
    size_t lcap = 0;
    int cap = 0;
    *out = NULL;
    *n = 0;
    while (getline(&line, &lcap, f) > 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        if (*n == cap) {
            char **g = realloc(*out, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 64));
            if (!g) break;
            *out = g;
        }
        (*out)[(*n)++] = strdup(line);
    }
    free(line);
    fclose(f);
    return *n ? VLT_OK : vlt_error_set(VLT_ERR_FORMAT, "%s has no lines", path);
}

static void free_lines(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static const char *ZEROSHOT_USAGE =
    "usage: vlt eval zeroshot (--checkpoint RUN | --weights FILE --model NAME) --shards SPEC --classes NAME|classes.txt\n"
    "                         [--templates NAME|templates.txt] [--label-ext cls] [--limit N] [--batch 64]\n"
    "                         [--out report.json]\n"
    "Zero-shot classification: one class name per line of classes.txt (label i = line i), one\n"
    "prompt template per line of templates.txt with {} where the class name goes (\"a photo of a {}.\");\n"
    "the images' labels are their integer .cls members (webdataset classification shards, as\n"
    "`vlt shards --classes DIR` packs an image folder).\n"
    "Shipped lists (vlt's assets/zeroshot/): --classes imagenet1k (open_clip's 1,000 ImageNet class\n"
    "names), cifar10, cifar100; --templates imagenet1k (open_clip's 80 OpenAI templates),\n"
    "imagenet1k_simple (its 7), cifar10, cifar100 (OpenAI CLIP's 18). --templates defaults to the\n"
    "templates of a shipped --classes name.\n"
    "\n" VLT_MODEL_SOURCE_USAGE;

int vlt_cmd_eval_zeroshot(int argc, char **argv) {
    eval_args a;
    int rc = parse_args("eval zeroshot", argc, argv, &a, ZEROSHOT_USAGE);
    if (rc >= 0) return rc;
    if (!a.classes) return vlt_cli_usage_error("eval zeroshot", "--classes NAME|classes.txt is required");
    char classes_path[4096], templates_path[4096];
    int shipped = 0;
    vlt_status s = vlt_eval_zeroshot_list_path(a.classes, "classnames", classes_path, sizeof classes_path, &shipped);
    if (s == VLT_OK && !a.templates && !shipped)
        return vlt_cli_usage_error("eval zeroshot", "--templates templates.txt is required with a class list of your own");
    if (s == VLT_OK)
        s = vlt_eval_zeroshot_list_path(a.templates ? a.templates : a.classes, "templates", templates_path,
                                        sizeof templates_path, NULL);
    char **classes = NULL, **templates = NULL;
    int nc = 0, nt = 0;
    if (s == VLT_OK) s = read_lines(classes_path, &classes, &nc);
    if (s == VLT_OK) s = read_lines(templates_path, &templates, &nt);
    session se = {0};
    if (s == VLT_OK) s = session_open(a.checkpoint, a.weights, a.model, &se);
    double top1 = 0, top5 = 0;
    int n = 0;
    if (s == VLT_OK)
        s = vlt_eval_zeroshot_on_shards(&se.src.m, se.tok, a.shards, a.batch, a.limit, a.label_ext, classes, nc, templates, nt,
                                        &top1, &top5, &n);
    if (s == VLT_OK)
        printf("zero-shot: %d images, %d classes, %d templates: top-1 %.2f%%  top-5 %.2f%%  (chance top-1 %.2f%%)\n", n,
               nc, nt, 100 * top1, 100 * top5, 100.0 / nc);
    vlt_eval_report rep;
    if (s == VLT_OK && a.out && (s = report_open(&rep, argc, argv, &se, &a)) == VLT_OK) {
        s = vlt_eval_report_input(&rep, "class names", classes_path);
        if (s == VLT_OK) s = vlt_eval_report_input(&rep, "templates", templates_path);
        vlt_eval_report_setting(&rep, "label_member", a.label_ext ? a.label_ext : "cls");
        vlt_eval_report_scorer(&rep, "top-k", "open_clip zero-shot: each class vector is the mean of its L2-normalized prompt "
                                              "embeddings (one per template), L2-normalized; an image is right at k when its "
                                              "label is among the k classes of highest cosine similarity");
        vlt_eval_report_number(&rep, "n_images", n);
        vlt_eval_report_number(&rep, "n_classes", nc);
        vlt_eval_report_number(&rep, "n_templates", nt);
        vlt_eval_report_number(&rep, "top1", top1);
        vlt_eval_report_number(&rep, "top5", top5);
        if (s == VLT_OK) s = vlt_eval_report_save(&rep, a.out);
        vlt_eval_report_free(&rep);
        if (s == VLT_OK && strcmp(a.out, "-") != 0)
            fprintf(stderr, "report written to %s (vlt eval --reproduce %s runs it again)\n", a.out, a.out);
    }
    if (s != VLT_OK) fprintf(stderr, "vlt eval zeroshot: %s\n", vlt_error_message());
    free_lines(classes, nc);
    free_lines(templates, nt);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}

// ---- vlt eval clipscore ----
static const char *CLIPSCORE_USAGE =
    "usage: vlt eval clipscore (--checkpoint RUN | --weights FILE --model NAME) --results results.json --shards SPEC\n"
    "                          [--no-refs]\n"
    "                          [--limit N] [--batch 64] [--out report.json]\n"
    "CLIPScore and RefCLIPScore (Hessel et al. 2021) of candidate captions, with the checkpoint's CLIP towers:\n"
    "CLIP-S = 2.5 * max(cos(caption, image), 0); RefCLIP-S = harmonic mean of CLIP-S and the best\n"
    "max(cos(caption, reference), 0) over the image's captions in the shards. Captions and references are\n"
    "encoded as \"A photo depicts <caption>\" (the authors' prefix). results.json: the COCO results format\n"
    "[{\"image_id\": ..., \"caption\": ...}]; an image id is the sample's .json image_id, else its index in\n"
    "the shards. --no-refs: CLIP-S only.\n"
    "\n" VLT_MODEL_SOURCE_USAGE;

// Encodes "A photo depicts " + text for each of n texts into out (n, E).
static vlt_status encode_prefixed(session *se, char *const *texts, int n, int batch, float *out) {
    int T = se->src.m.cfg.text.context_length;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n ? n : 1) * T);
    vlt_status s = ids ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "clipscore: out of memory");
    for (int i = 0; s == VLT_OK && i < n; i++) {
        size_t len = strlen(texts[i]) + sizeof VLT_CLIPSCORE_PREFIX;
        char *t = malloc(len);
        if (!t) {
            s = vlt_error_set(VLT_ERR_NOMEM, "clipscore: out of memory");
            break;
        }
        snprintf(t, len, "%s%s", VLT_CLIPSCORE_PREFIX, texts[i]);
        if (vlt_tokenizer_encode(se->tok, t, ids + (size_t)i * T, T) < 0) s = vlt_error_code();
        free(t);
    }
    vlt_no_grad_enter();
    if (s == VLT_OK) s = vlt_encode_texts(&se->src.m, ids, n, T, batch, out);
    vlt_no_grad_exit();
    free(ids);
    return s;
}

int vlt_cmd_eval_clipscore(int argc, char **argv) {
    eval_args a;
    int rc = parse_args("eval clipscore", argc, argv, &a, CLIPSCORE_USAGE);
    if (rc >= 0) return rc;
    if (!a.results) return vlt_cli_usage_error("eval clipscore", "--results results.json is required");
    cJSON *res = NULL;
    session se = {0};
    vlt_embedded_pairs p = {0};
    vlt_status s = vlt_eval_json_load(a.results, &res);
    if (s == VLT_OK && !cJSON_IsArray(res))
        s = vlt_error_set(VLT_ERR_FORMAT, "%s: expected a list of {\"image_id\", \"caption\"}", a.results);
    if (s == VLT_OK) s = session_open(a.checkpoint, a.weights, a.model, &se);
    if (s == VLT_OK && !vlt_model_can(&se.src.m, VLT_CAP_EMBED))
        s = vlt_error_set(VLT_ERR_UNSUPPORTED, "clipscore: the %s model has no image and text encoders", vlt_model_title(&se.src.m));
    if (s == VLT_OK) s = vlt_embed_pairs(&se.src.m, se.tok, a.shards, a.batch, a.limit, &p);
    int n = s == VLT_OK ? cJSON_GetArraySize(res) : 0, E = p.dim;
    char **cand = calloc((size_t)(n ? n : 1), sizeof *cand);
    int *img_of = calloc((size_t)(n ? n : 1), sizeof *img_of), *ref_start = calloc((size_t)n + 1, sizeof *ref_start);
    bool *used = calloc((size_t)(p.n ? p.n : 1), sizeof *used);
    if (s == VLT_OK && (!cand || !img_of || !ref_start || !used)) s = vlt_error_set(VLT_ERR_NOMEM, "clipscore: out of memory");
    if (s == VLT_OK && n == 0) s = vlt_error_set(VLT_ERR_FORMAT, "%s: no results", a.results);
    // each result's image (by id) and its references (the image's captions in the shards)
    int n_refs = 0;
    for (int i = 0; s == VLT_OK && i < n; i++) {
        cJSON *o = cJSON_GetArrayItem(res, i), *c = cJSON_GetObjectItemCaseSensitive(o, "caption");
        long long id;
        if (!vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(o, "image_id"), &id) || !cJSON_IsString(c)) {
            s = vlt_error_set(VLT_ERR_FORMAT, "%s: result %d lacks an integer image_id or a string caption", a.results, i);
            break;
        }
        int k = 0;
        while (k < p.n && p.image_ids[k] != id) k++;
        if (k == p.n) s = vlt_error_set(VLT_ERR_ARG, "%s: image_id %lld (result %d) is not among the %d images of %s",
                                        a.results, id, i, p.n, a.shards);
        else if (used[k]) s = vlt_error_set(VLT_ERR_FORMAT, "%s: image_id %lld has two results", a.results, id);
        else {
            used[k] = true;
            img_of[i] = k;
            cand[i] = c->valuestring;
            ref_start[i] = n_refs;
            for (int j = 0; j < p.n_txt; j++) n_refs += p.txt_img[j] == k;
        }
    }
    if (s == VLT_OK) ref_start[n] = n_refs;
    char **refs = calloc((size_t)(n_refs ? n_refs : 1), sizeof *refs);
    float *fc = malloc(sizeof(float) * (size_t)(n ? n : 1) * (E ? E : 1)), *fi = malloc(sizeof(float) * (size_t)(n ? n : 1) * (E ? E : 1));
    float *fr = malloc(sizeof(float) * (size_t)(n_refs ? n_refs : 1) * (E ? E : 1));
    if (s == VLT_OK && (!refs || !fc || !fi || !fr)) s = vlt_error_set(VLT_ERR_NOMEM, "clipscore: out of memory");
    for (int i = 0, r = 0; s == VLT_OK && i < n; i++) {
        memcpy(fi + (size_t)i * E, p.img + (size_t)img_of[i] * E, sizeof(float) * (size_t)E);
        for (int j = 0; j < p.n_txt; j++)
            if (p.txt_img[j] == img_of[i]) refs[r++] = p.txt_str[j];
    }
    if (s == VLT_OK) s = encode_prefixed(&se, cand, n, a.batch, fc);
    if (s == VLT_OK && !a.no_refs) s = encode_prefixed(&se, refs, n_refs, a.batch, fr);
    vlt_clipscore_result cs;
    if (s == VLT_OK) s = vlt_clipscore(fc, fi, n, E, a.no_refs ? NULL : fr, ref_start, &cs, NULL, NULL);
    if (s == VLT_OK) {
        printf("clipscore: %d captions of %s, model %s\n", n, a.results, se.src.label);
        printf("  CLIP-S %.4f", cs.clip_s);
        if (!a.no_refs) printf("  RefCLIP-S %.4f  (%d references)", cs.ref_clip_s, n_refs);
        printf("\n");
        vlt_eval_report rep;
        if (a.out && (s = report_open(&rep, argc, argv, &se, &a)) == VLT_OK) {
            if ((s = vlt_eval_report_input(&rep, "results", a.results)) == VLT_OK) {
                vlt_eval_report_scorer(&rep, "clipscore", "CLIP-S = 2.5 * max(cos, 0) of 'A photo depicts <caption>' and the "
                                                          "image; RefCLIP-S = harmonic mean of CLIP-S and max(max cos with "
                                                          "the image's references, 0) (Hessel et al. 2021)");
                vlt_eval_report_number(&rep, "captions", n);
                vlt_eval_report_number(&rep, "CLIP-S", cs.clip_s);
                if (!a.no_refs) vlt_eval_report_number(&rep, "RefCLIP-S", cs.ref_clip_s);
                s = vlt_eval_report_save(&rep, a.out);
            }
            vlt_eval_report_free(&rep);
        }
    }
    if (s != VLT_OK) fprintf(stderr, "vlt eval clipscore: %s\n", vlt_error_message());
    free(cand); free(img_of); free(ref_start); free(used); free(refs); free(fc); free(fi); free(fr);
    cJSON_Delete(res);
    vlt_embedded_pairs_free(&p);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}

// ---- vlt explain ----
static const char *EXPLAIN_USAGE =
    "usage: vlt explain (--checkpoint RUN | --weights FILE --model NAME) --image FILE --text \"...\" [--text ...]\n"
    "                   --out DIR\n"
    "Where in the image the image-text similarity comes from: for each text a relevance map over the\n"
    "image patches (CLIP, SigLIP: |gradient . input| of the cosine similarity on the normalized tokens\n"
    "entering the last vision block; ALBEF: Grad-CAM of the ITM score on the cross-attention of its\n"
    "third fusion layer, as the ALBEF paper's visualisation), overlaid on the picture the model sees:\n"
    "DIR/explain-K.png, the maps and scores in DIR/explain.json, and DIR/index.html with all of them.\n"
    "ALBEF also maps each word of the text: DIR/explain-K-wJ.png, the words named in the JSON.\n"
    "\n" VLT_MODEL_SOURCE_USAGE;

#define EXPLAIN_MAX_TEXTS 16

typedef struct {
    int text;         // which --text
    char word[64];    // its tokens' text joined
    int n_tokens;
    float *map;       // (grid²), the tokens' maps averaged
} explain_word;

int vlt_cmd_explain(int argc, char **argv) {
    const char *checkpoint = NULL, *weights = NULL, *model = NULL, *image = NULL, *out = NULL, *texts[EXPLAIN_MAX_TEXTS];
    int n_texts = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(EXPLAIN_USAGE, stdout);
            return 0;
        }
        bool known = !strcmp(a, "--checkpoint") || !strcmp(a, "--image") || !strcmp(a, "--text") || !strcmp(a, "--out") ||
                     !strcmp(a, "--weights") || !strcmp(a, "--model");
        if (!known) return vlt_cli_unexpected("explain", a);
        if (i + 1 >= argc) return vlt_cli_usage_error("explain", "an option needs a value");
        const char *v = argv[++i];
        if (!strcmp(a, "--checkpoint")) checkpoint = v;
        else if (!strcmp(a, "--weights")) weights = v;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--image")) image = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (n_texts == EXPLAIN_MAX_TEXTS) return vlt_cli_usage_error("explain", "at most 16 --text");
        else texts[n_texts++] = v;
    }
    const char *why = vlt_model_source_check(checkpoint, weights, model);
    if (why) return vlt_cli_usage_error("explain", why);
    if (!image || !out || !n_texts) return vlt_cli_usage_error("explain", "--image, --out and at least one --text are required");
    session se = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    vlt_image img = {0}, view = {0};
    vlt_tensor *im = NULL, *ids = NULL;
    float *maps = NULL, scores[EXPLAIN_MAX_TEXTS];
    vlt_status s = (buf = (uint8_t *)vlt_read_file(image, &len))
                       ? VLT_OK
                       : vlt_error_set(VLT_ERR_IO, "cannot read %s: %s", image, strerror(errno));
    if (s == VLT_OK) s = session_open(checkpoint, weights, model, &se);
    if (s == VLT_OK && !vlt_model_can(&se.src.m, VLT_CAP_EXPLAIN))
        s = vlt_error_set(VLT_ERR_UNSUPPORTED, "explain: the %s model has no relevance maps yet", vlt_model_title(&se.src.m));
    // (the sizes only when a model was loaded: a failed load leaves no patch size to divide by)
    int S = s == VLT_OK ? se.src.m.cfg.vision.image_size : 0, T = s == VLT_OK ? se.src.m.cfg.text.context_length : 0;
    int G = s == VLT_OK ? vlt_model_patch_grid(&se.src.m) : 0;
    if (s == VLT_OK) s = vlt_image_decode(buf, len, 0, image, &img);
    if (s == VLT_OK && (!(im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(1, 3, S, S), "image")) ||
                        !(ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(1, T), "ids")) ||
                        !(maps = malloc(sizeof(float) * (size_t)n_texts * G * G))))
        s = vlt_error_set(VLT_ERR_NOMEM, "explain: out of memory");
    vlt_transform_cfg tc;
    vlt_transform_cfg_default(&tc, S);
    if (s == VLT_OK) s = vlt_transform_eval(&img, &tc, vlt_f32(im));
    // per-word maps (a kind with per-token relevance, ALBEF): word J of text K is the mean of its
    // tokens' maps (WordPiece '##' continuations joined to their word); [CLS], [SEP], padding left out
    bool per_word = s == VLT_OK && vlt_model_explains_tokens(&se.src.m);
    int n_words = 0;
    explain_word *words = per_word ? calloc((size_t)n_texts * T, sizeof *words) : NULL;
    float *tok_maps = per_word ? malloc(sizeof(float) * (size_t)T * G * G) : NULL;
    float *word_maps = per_word ? calloc((size_t)n_texts * T * G * G, sizeof(float)) : NULL;
    if (per_word && (!words || !tok_maps || !word_maps)) s = vlt_error_set(VLT_ERR_NOMEM, "explain: out of memory");
    for (int k = 0; s == VLT_OK && k < n_texts; k++) {
        if ((vlt_model_has_tokenizer(&se.src.m) ? vlt_model_tokenize(&se.src.m, texts[k], vlt_i32(ids), NULL, T)
                                                : vlt_tokenizer_encode(se.tok, texts[k], vlt_i32(ids), T)) < 0)
            s = vlt_error_code();
        if (s == VLT_OK) s = vlt_model_explain(&se.src.m, im, ids, maps + (size_t)k * G * G, &scores[k]);
        vlt_step_reset();
        if (s != VLT_OK || !per_word) continue;
        float tscore;
        s = vlt_model_explain_tokens(&se.src.m, im, ids, tok_maps, &tscore);
        vlt_step_reset();
        int len = 0, first = n_words;
        for (int t = 0; t < T; t++) len += vlt_i32(ids)[t] != se.src.m.cfg.bert.pad_token_id;
        for (int t = 1; s == VLT_OK && t < len - 1; t++) {
            const char *piece = vlt_model_token_text(&se.src.m, vlt_i32(ids)[t]);
            bool cont = !strncmp(piece, "##", 2) && n_words > first;
            if (!cont) {
                words[n_words].text = k;
                words[n_words].map = word_maps + (size_t)n_words * G * G;
                n_words++;
            }
            explain_word *w = &words[n_words - 1];
            size_t have = strlen(w->word);
            snprintf(w->word + have, sizeof w->word - have, "%s", cont ? piece + 2 : piece);
            for (int p = 0; p < G * G; p++) w->map[p] += tok_maps[(size_t)t * G * G + p];
            w->n_tokens++;
        }
        for (int j = first; j < n_words; j++)
            for (int p = 0; p < G * G; p++) words[j].map[p] /= words[j].n_tokens;
    }
    if (s == VLT_OK && mkdir(out, 0755) != 0 && errno != EEXIST)
        s = vlt_error_set(VLT_ERR_IO, "explain: cannot create %s: %s", out, strerror(errno));
    if (s == VLT_OK) s = vlt_view_of_image(buf, len, image, S > 224 ? S : 224, &view);
    char path[4096];
    for (int k = 0; s == VLT_OK && k < n_texts; k++) {
        vlt_image ov = {0};
        s = vlt_overlay_map(&view, maps + (size_t)k * G * G, G, &ov);
        snprintf(path, sizeof path, "%s/explain-%d.png", out, k);
        if (s == VLT_OK) s = vlt_image_write_png(&ov, path);
        vlt_image_free(&ov);
    }
    for (int j = 0, k = -1, wj = 0; s == VLT_OK && j < n_words; j++, wj++) {
        if (words[j].text != k) k = words[j].text, wj = 0;
        vlt_image ov = {0};
        s = vlt_overlay_map(&view, words[j].map, G, &ov);
        snprintf(path, sizeof path, "%s/explain-%d-w%d.png", out, k, wj);
        if (s == VLT_OK) s = vlt_image_write_png(&ov, path);
        vlt_image_free(&ov);
    }
    snprintf(path, sizeof path, "%s/view.png", out);
    if (s == VLT_OK) s = vlt_image_write_png(&view, path);
    cJSON *root = s == VLT_OK ? cJSON_CreateObject() : NULL, *arr = root ? cJSON_AddArrayToObject(root, "texts") : NULL;
    if (s == VLT_OK && (!root || !arr)) s = vlt_error_set(VLT_ERR_NOMEM, "explain: out of memory");
    if (s == VLT_OK) {
        cJSON_AddStringToObject(root, "image", image);
        cJSON_AddStringToObject(root, "checkpoint", se.src.label);
        cJSON_AddStringToObject(root, "method", vlt_model_explain_method(&se.src.m));
        cJSON_AddNumberToObject(root, "grid", G);
        for (int k = 0; k < n_texts; k++) {
            cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateFloatArray(maps + (size_t)k * G * G, G * G);
            cJSON_AddStringToObject(o, "text", texts[k]);
            // the score the map explains: the cosine of the features, or ALBEF's ITM logit
            cJSON_AddNumberToObject(o, per_word ? "itm_logit" : "cosine", scores[k]);
            cJSON_AddItemToObject(o, "map", m);
            cJSON *wa = per_word ? cJSON_AddArrayToObject(o, "words") : NULL;
            for (int j = 0, wj = 0; wa && j < n_words; j++) {
                if (words[j].text != k) continue;
                cJSON *w = cJSON_CreateObject();
                char png[64];
                snprintf(png, sizeof png, "explain-%d-w%d.png", k, wj++);
                cJSON_AddStringToObject(w, "word", words[j].word);
                cJSON_AddNumberToObject(w, "tokens", words[j].n_tokens);
                cJSON_AddStringToObject(w, "png", png);
                cJSON_AddItemToObject(w, "map", cJSON_CreateFloatArray(words[j].map, G * G));
                cJSON_AddItemToArray(wa, w);
            }
            cJSON_AddItemToArray(arr, o);
        }
        snprintf(path, sizeof path, "%s/explain.json", out);
        s = vlt_eval_json_save(path, root);
    }
    cJSON_Delete(root);
    if (s == VLT_OK) {  // a page with the picture and each text's map
        snprintf(path, sizeof path, "%s/index.html", out);
        vlt_html *h = vlt_html_open(path, "vlt explain");
        if (!h) s = vlt_error_code();
        else {
            vlt_html_raw(h, "<p>");
            vlt_html_text(h, image);
            vlt_html_raw(h, " with the model of ");
            vlt_html_text(h, se.src.label);
            vlt_html_raw(h, ". Relevance: ");
            vlt_html_text(h, vlt_model_explain_method(&se.src.m));
            vlt_html_raw(h, ".</p>\n<div class=\"thumbs\">"
                            "<div class=\"thumb\" style=\"width:224px\"><img style=\"width:224px;height:224px\" "
                            "src=\"view.png\" alt=\"the model's view\"><br>the model's view</div>");
            for (int k = 0; k < n_texts; k++) {
                vlt_html_rawf(h, "<div class=\"thumb\" style=\"width:224px\"><img style=\"width:224px;height:224px\" "
                                 "src=\"explain-%d.png\" alt=\"relevance\"><br>", k);
                vlt_html_text(h, texts[k]);
                vlt_html_rawf(h, " <span class=\"muted\">%s %.3f</span></div>", per_word ? "ITM" : "cos", scores[k]);
                for (int j = 0, wj = 0; j < n_words; j++) {
                    if (words[j].text != k) continue;
                    vlt_html_rawf(h, "<div class=\"thumb\" style=\"width:160px\"><img style=\"width:160px;"
                                     "height:160px\" src=\"explain-%d-w%d.png\" alt=\"relevance\"><br>", k, wj++);
                    vlt_html_text(h, words[j].word);
                    vlt_html_raw(h, "</div>");
                }
            }
            vlt_html_raw(h, "</div>\n");
            s = vlt_html_close(h);
        }
    }
    if (s == VLT_OK) {
        for (int k = 0; k < n_texts; k++) {
            printf("%s/explain-%d.png  %s %.4f  %s\n", out, k, per_word ? "itm" : "cos", scores[k], texts[k]);
            for (int j = 0, wj = 0; j < n_words; j++)
                if (words[j].text == k) printf("  %s/explain-%d-w%d.png  %s\n", out, k, wj++, words[j].word);
        }
    } else {
        fprintf(stderr, "vlt explain: %s\n", vlt_error_message());
    }
    free(maps);
    free(words);
    free(tok_maps);
    free(word_maps);
    free(buf);
    vlt_image_free(&img);
    vlt_image_free(&view);
    vlt_tensor_free(im);
    vlt_tensor_free(ids);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}
