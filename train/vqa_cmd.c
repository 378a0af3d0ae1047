// vqa_cmd.c — `vlt vqa` (a VQA checkpoint's or weights file's answers to the questions of a shard set, in the
// official results format) and the VQA part of `vlt eval checkpoint` (those answers scored with
// the official accuracy, overall, per answer type and per question type).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "layers/vqa_head.h"
#include "eval/report.h"
#include "train/cli_args.h"
#include "train/commands.h"
#include "train/eval_html.h"
#include "train/model_source.h"
#include "train/vqa_eval.h"

static const char *VQA_USAGE =
    "usage: vlt vqa --checkpoint RUN|CHECKPOINT_DIR --shards SPEC --out results.json [options]\n"
    "       vlt vqa --weights FILE.safetensors --model NAME|CONFIG.json --answer-vocab FILE --shards SPEC --out results.json\n"
    "Answers the questions of VQA shards (vlt shards --vqa-questions / --vqa-jsonl) with a VQA model\n"
    "(model.vqa_head) and writes them in the official results format, [{\"question_id\": …, \"answer\": …}],\n"
    "through a temporary file and a rename. Score them with vlt eval vqa --pred results.json --refs\n"
    "annotations.json, or do both at once with vlt eval checkpoint.\n"
    "\n"
    "model, one of:\n"
    "  --checkpoint RUN|DIR     a VQA training run (its latest checkpoint) or a checkpoint directory; its\n"
    "                           state.json holds the answer vocabulary\n"
    "  --weights FILE --model NAME|CONFIG.json\n"
    "                           a weights file (a VQA checkpoint's model.safetensors) and its model config: a\n"
    "                           CLIP config (vlt model list, or a path) for the classifier head, whose shape\n"
    "                           is read from the file's vqa_head.* tensors, or an ALBEF VQA config (an\n"
    "                           \"albef_vqa\" section); loaded strictly: a missing, unexpected or mis-shaped\n"
    "                           key is refused, naming the key\n"
    "  --majority-of TRAIN_SPEC instead of a model: the majority baseline, each question answered with the\n"
    "                           most frequent answer of its question type in the training shards TRAIN_SPEC\n"
    "\n"
    "options:\n"
    "  --answer-vocab FILE      the answers (required with --weights): answer_vocab.json as a run or vlt\n"
    "                           shards --vqa-vocab writes it, or ALBEF's answer_list.json (a JSON list); the\n"
    "                           classifier's must be the one it was trained with (as many answers as its head\n"
    "                           has rows); ALBEF VQA ranks any list. With --checkpoint: instead of its own\n"
    "  --shards SPEC            the shards (quoted: \"DIR/{00000..00009}.tar\")\n"
    "  --out FILE               the results file\n"
    "  --annotations-out FILE   also the shards' ground truth as an official annotation file (for vlt eval\n"
    "                           vqa when the questions came from --vqa-jsonl)\n"
    "  --batch B                questions per forward pass (64)\n"
    "  --limit N                only the first N questions (0: all)\n"
    "  -h, --help               this help\n";

// The model (a checkpoint, or a weights file with its model config), its answer vocabulary (the
// checkpoint's, or answer_vocab when given) and the tokenizer.
typedef struct {
    vlt_model_source src;
    vlt_vqa_vocab vocab;
    vlt_tokenizer *tok;
} vqa_session;

static vlt_status session_open(const char *checkpoint, const char *weights, const char *model, const char *answer_vocab,
                               vqa_session *se) {
    memset(se, 0, sizeof *se);
    if (!checkpoint && !answer_vocab)
        return vlt_error_set(VLT_ERR_ARG, "--weights needs --answer-vocab FILE: a weights file holds no answer vocabulary "
                             "(answer_vocab.json as the run or vlt shards --vqa-vocab wrote it, or ALBEF's answer_list.json)");
    VLT_TRY(vlt_model_source_open_vqa(checkpoint, weights, model, &se->src));
    vlt_status s = vlt_model_can(&se->src.m, VLT_CAP_ANSWER)
                       ? VLT_OK
                       : vlt_error_set(VLT_ERR_UNSUPPORTED, "%s: the %s model (kind %s) has no answer head; "
                                       "train one with model.vqa_head: classifier", se->src.label,
                                       vlt_model_title(&se->src.m), vlt_model_kind(&se->src.m));
    if (s == VLT_OK)
        s = answer_vocab ? vlt_vqa_vocab_load(answer_vocab, &se->vocab) : vlt_vqa_vocab_of_checkpoint(se->src.checkpoint, &se->vocab);
    // a ranking kind (ALBEF VQA) takes any list; the classifier's rows are its vocabulary's answers
    if (s == VLT_OK) s = vlt_model_set_answers(&se->src.m, (const char *const *)se->vocab.answers, se->vocab.n);
    if (s == VLT_OK && se->vocab.n != vlt_model_answers(&se->src.m))
        s = vlt_error_set(VLT_ERR_ARG, "answer vocabulary %s has %d answers, but the answer head of %s has %d (%sfc2.weight "
                          "rows): not the vocabulary it was trained with", answer_vocab ? answer_vocab : "of the checkpoint",
                          se->vocab.n, se->src.label, vlt_model_answers(&se->src.m), VLT_VQA_HEAD_PREFIX);
    if (s == VLT_OK) s = vlt_tokenizer_load(NULL, &se->tok);
    return s;
}

static void session_close(vqa_session *se) {
    vlt_tokenizer_free(se->tok);
    vlt_vqa_vocab_free(&se->vocab);
    vlt_model_source_close(&se->src);
}

int vlt_cmd_vqa(int argc, char **argv) {
    static const struct option opts[] = {{"checkpoint", required_argument, 0, 'c'}, {"shards", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},        {"batch", required_argument, 0, 'b'},
                                         {"limit", required_argument, 0, 'l'},      {"annotations-out", required_argument, 0, 'a'},
                                         {"majority-of", required_argument, 0, 'm'}, {"weights", required_argument, 0, 'w'},
                                         {"model", required_argument, 0, 'M'},      {"answer-vocab", required_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    const char *checkpoint = NULL, *shards = NULL, *out = NULL, *ann_out = NULL, *majority = NULL, *weights = NULL,
               *model = NULL, *answer_vocab = NULL;
    int batch = 64, limit = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': checkpoint = optarg; break;
        case 's': shards = optarg; break;
        case 'o': out = optarg; break;
        case 'a': ann_out = optarg; break;
        case 'm': majority = optarg; break;
        case 'w': weights = optarg; break;
        case 'M': model = optarg; break;
        case 'v': answer_vocab = optarg; break;
        case 'b': batch = (int)vlt_cli_int("vqa", "--batch", optarg, 1, 1 << 20); break;
        case 'l': limit = (int)vlt_cli_int("vqa", "--limit", optarg, 0, 1 << 30); break;
        case 'h': fputs(VQA_USAGE, stdout); return 0;
        default: fputs(VQA_USAGE, stderr); return 2;
        }
    }
    if (optind < argc) return vlt_cli_unexpected("vqa", argv[optind]);
    if (!!(checkpoint || weights || model) == !!majority)
        return vlt_cli_usage_error("vqa", "one model is required: --checkpoint RUN, --weights FILE --model NAME, or "
                                   "--majority-of TRAIN_SHARDS");
    const char *why = majority ? NULL : vlt_model_source_check(checkpoint, weights, model);
    if (why) return vlt_cli_usage_error("vqa", why);
    if (weights && !answer_vocab)
        return vlt_cli_usage_error("vqa", "--weights needs --answer-vocab FILE (answer_vocab.json as the run or vlt shards "
                                   "--vqa-vocab wrote it, or ALBEF's answer_list.json): a weights file holds no answer "
                                   "vocabulary");
    if (majority && answer_vocab) return vlt_cli_usage_error("vqa", "--answer-vocab goes with a model, not --majority-of");
    if (!shards || !out) return vlt_cli_usage_error("vqa", "--shards and --out are required");
    vqa_session se = {0};
    vlt_vqa_predictions p = {0};
    char overall[256] = "";
    vlt_status s = majority ? vlt_vqa_majority(majority, shards, limit, &p, overall, sizeof overall)
                            : session_open(checkpoint, weights, model, answer_vocab, &se);
    if (s == VLT_OK && !majority) s = vlt_vqa_predict(&se.src.m, se.tok, shards, batch, limit, &se.vocab, &p);
    if (s == VLT_OK) s = vlt_vqa_write_results(&p, out);
    if (s == VLT_OK && ann_out) s = vlt_vqa_write_annotations(&p, ann_out);
    if (s == VLT_OK && majority) {
        printf("vqa: %d majority-baseline answers of %s (the most frequent answer of each question type in %s; "
               "overall '%s') written to %s\n", p.n, shards, majority, overall, out);
    } else if (s == VLT_OK) {
        printf("vqa: %d answers of %s (%s %s, %d-answer vocabulary%s%s) written to %s\n", p.n, shards,
               checkpoint ? "checkpoint" : "weights", se.src.label, se.vocab.n, answer_vocab ? " " : "",
               answer_vocab ? answer_vocab : "", out);
    } else {
        fprintf(stderr, "vlt vqa: %s\n", vlt_error_message());
    }
    if (s == VLT_OK && ann_out) printf("vqa: ground truth of %d questions written to %s\n", p.n_annotated, ann_out);
    vlt_vqa_predictions_free(&p);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}

static void print_groups(const char *title, const vlt_eval_vqa_group *g, int n) {
    printf("  %-24s %9s %10s\n", title, "questions", "accuracy");
    for (int t = 0; t < n; t++) printf("  %-24s %9d %10.2f\n", g[t].name, g[t].count, 100 * g[t].accuracy);
}

int vlt_vqa_eval_checkpoint(const char *checkpoint, const char *weights, const char *model, const char *answer_vocab,
                            const char *shards, int batch, int limit, const char *report_out, const char *results_out,
                            const char *html, int argc, char **argv) {
    vqa_session se;
    vlt_vqa_predictions p = {0};
    vlt_eval_vqa_result r = {0};
    vlt_status s = session_open(checkpoint, weights, model, answer_vocab, &se);
    if (s == VLT_OK) s = vlt_vqa_predict(&se.src.m, se.tok, shards, batch, limit, &se.vocab, &p);
    if (s == VLT_OK) s = vlt_vqa_score(&p, VLT_EVAL_VQA_CURRENT, &r);
    if (s == VLT_OK && results_out) {
        s = vlt_vqa_write_results(&p, results_out);
        if (s == VLT_OK) fprintf(stderr, "answers to %d questions written to %s (official results format)\n", p.n, results_out);
    }
    if (s == VLT_OK) {
        printf("%s %s (%s, %s), %d questions from %s, scorer %s\n", se.src.checkpoint[0] ? "checkpoint" : "weights",
               se.src.checkpoint[0] ? se.src.checkpoint : se.src.weights, se.src.model_name,
               vlt_model_title(&se.src.m), r.n_questions, shards, vlt_eval_vqa_version_name(r.version));
        printf("  %-24s %9d %10.2f\n", "VQA accuracy (overall)", r.n_questions, 100 * r.accuracy);
        print_groups("answer type", r.types, r.n_types);
        print_groups("question type", r.qtypes, r.n_qtypes);
    }
    vlt_eval_report rep;
    if (s == VLT_OK && report_out && (s = vlt_eval_report_init(&rep, VLT_VERSION, argc, argv)) == VLT_OK) {
        s = vlt_model_source_report(&se.src, &rep);
        if (s == VLT_OK) {
            vlt_eval_report_setting(&rep, "shards", shards);
            vlt_eval_report_setting(&rep, "scorer", vlt_eval_vqa_version_name(r.version));
            vlt_eval_report_scorer(&rep, "accuracy", vlt_eval_vqa_version_description(r.version));
            vlt_eval_report_number(&rep, "n_questions", r.n_questions);
            vlt_eval_report_number(&rep, "accuracy", r.accuracy);
            char key[300];
            for (int t = 0; t < r.n_types; t++) {
                snprintf(key, sizeof key, "per_answer_type.%s", r.types[t].name);
                vlt_eval_report_number(&rep, key, r.types[t].accuracy);
            }
            for (int t = 0; t < r.n_qtypes; t++) {
                snprintf(key, sizeof key, "per_question_type.%s", r.qtypes[t].name);
                vlt_eval_report_number(&rep, key, r.qtypes[t].accuracy);
            }
            s = vlt_eval_report_save(&rep, report_out);
            if (s == VLT_OK && strcmp(report_out, "-") != 0)
                fprintf(stderr, "report written to %s (vlt eval --reproduce %s runs it again)\n", report_out, report_out);
        }
        vlt_eval_report_free(&rep);
    }
    if (s == VLT_OK && html) {
        s = vlt_eval_html_vqa(html, se.src.label, shards, &p, &r);
        if (s == VLT_OK) fprintf(stderr, "HTML page written to %s/index.html\n", html);
    }
    if (s != VLT_OK) fprintf(stderr, "vlt eval checkpoint: %s\n", vlt_error_message());
    vlt_eval_vqa_result_free(&r);
    vlt_vqa_predictions_free(&p);
    session_close(&se);
    return s == VLT_OK ? 0 : 1;
}
