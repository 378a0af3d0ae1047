// caption_cmd.c — `vlt caption`: a captioning model's captions of a shard set's images, written in
// the COCO results format ([{"image_id", "caption"}], what `vlt eval captions --pred` and the
// COCO caption evaluation server read). The model comes from a checkpoint or a weights file
// (train/model_source.h); generation is layers/generate.h (greedy or beam search, min/max length,
// repetition penalty) through the model interface's caption capability.
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/report.h"
#include "eval/sha256.h"

#include "train/cli_args.h"
#include "train/commands.h"
#include "train/evaluate.h"
#include "train/model_source.h"

static const char *USAGE =
    "usage: vlt caption (--checkpoint RUN | --weights FILE --model NAME) --shards SPEC --out results.json\n"
    "                   [--beam N] [--min-len N] [--max-len N] [--repetition-penalty F] [--length-penalty F]\n"
    "                   [--batch 16] [--limit N] [--report report.json]\n"
    "Captions every image of the shards (in shard order) and writes the COCO results format,\n"
    "[{\"image_id\": ..., \"caption\": \"...\"}], for `vlt eval captions --pred results.json --refs ...`.\n"
    "image_id is the dataset's own id as the shards hold it (the .json member's image_id, as `vlt shards\n"
    "--coco/--karpathy` packs it), else the sample's index in the shards; an image packed several times\n"
    "(--each-caption shards) is captioned once. The file is written whole or not at all.\n"
    "\n" VLT_MODEL_SOURCE_USAGE
    "generation (defaults: open_clip's generate, greedy, max length 30 clipped to the model's context):\n"
    "  --beam N                beam search with N beams (1: greedy)\n"
    "  --min-len N             no end of text before N tokens (start token included; default 5)\n"
    "  --max-len N             at most N tokens, start and end included (default 30, at most context + 1)\n"
    "  --repetition-penalty F  a token already in the caption has its logit divided by F (> 0; 1: off)\n"
    "  --length-penalty F      beam search: finished captions ranked by score / length^F (default 1)\n"
    "--report F: an evaluation report (sha256 of the weights, shards and vocabulary, the settings, and a\n"
    "digest of the captions) that `vlt eval --reproduce F` runs again, saying whether every caption is the same.\n"
    "Exit status: 0 written, 1 failed (the message names the file or the model), 2 usage error.\n";

// A 52-bit number from the sha256 of the captions in order ("<image_id>\t<caption>\n" each): a
// report's numbers are compared bit for bit, so this one tells whether every caption is the same.
static double captions_digest(const vlt_caption_eval *c) {
    vlt_sha256 h;
    vlt_sha256_init(&h);
    for (int i = 0; i < c->n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%lld\t", (long long)c->image_ids[i]);
        vlt_sha256_update(&h, id, strlen(id));
        vlt_sha256_update(&h, c->generated[i], strlen(c->generated[i]));
        vlt_sha256_update(&h, "\n", 1);
    }
    char hex[65];
    vlt_sha256_hex(&h, hex);
    hex[13] = '\0';
    return (double)strtoull(hex, NULL, 16);
}

// The report of a caption run (--report): what `vlt eval --reproduce` needs to run it again.
static vlt_status write_report(const char *path, int argc, char **argv, const vlt_model_source *src, const char *shards,
                               int batch, int limit, const vlt_generate_cfg *g, const char *out, const vlt_caption_eval *c,
                               int dropped) {
    vlt_eval_report rep;
    VLT_TRY(vlt_eval_report_init(&rep, VLT_VERSION, argc, argv));
    vlt_status s = vlt_model_source_report_shards(src, &rep, shards, batch, limit);
    if (s == VLT_OK) {
        // the option naming the report, which --reproduce replaces (--out names the results here)
        cJSON_AddStringToObject(rep.root, "report_option", "--report");
        vlt_eval_report_setting(&rep, "results", out);
        vlt_eval_report_setting(&rep, "generation", g->beam_size > 1 ? "beam search (layers/generate.h)"
                                                                      : "greedy (open_clip's generate, top_k 1)");
        vlt_eval_report_setting_num(&rep, "beam", g->beam_size);
        vlt_eval_report_setting_num(&rep, "max_len", g->max_len);
        vlt_eval_report_setting_num(&rep, "min_len", g->min_len);
        vlt_eval_report_setting_num(&rep, "repetition_penalty", g->repetition_penalty);
        vlt_eval_report_setting_num(&rep, "length_penalty", g->length_penalty);
        vlt_eval_report_scorer(&rep, "captions_digest", "the first 52 bits of the sha256 of every \"<image_id>\\t<caption>\\n\" "
                                                        "in the results' order: equal exactly when every caption is");
        vlt_eval_report_number(&rep, "n_images", c->n);
        vlt_eval_report_number(&rep, "repeated_samples", dropped);
        vlt_eval_report_number(&rep, "captions_digest", captions_digest(c));
        s = vlt_eval_report_save(&rep, path);
    }
    vlt_eval_report_free(&rep);
    return s;
}

static double parse_float(const char *opt, const char *v, double lo, bool *ok) {
    char *end;
    double x = strtod(v, &end);
    if (*v == 0 || *end != 0 || !(x > lo) || x > 1e6) {
        fprintf(stderr, "vlt caption: %s must be a number above %g, got '%s'\n", opt, lo, v);
        *ok = false;
    }
    return x;
}

// Keeps the first caption of each image id (a shard set packed one sample per caption holds an
// image several times); returns how many were dropped.
static int drop_repeated_images(vlt_caption_eval *c) {
    int k = 0, dropped = 0;
    for (int i = 0; i < c->n; i++) {
        bool seen = false;
        for (int j = 0; j < k && !seen; j++) seen = c->image_ids[j] == c->image_ids[i];
        if (seen) {
            free(c->keys[i]);
            free(c->generated[i]);
            free(c->reference[i]);
            dropped++;
            continue;
        }
        c->keys[k] = c->keys[i];
        c->generated[k] = c->generated[i];
        c->reference[k] = c->reference[i];
        c->image_ids[k++] = c->image_ids[i];
    }
    c->n = k;
    return dropped;
}

int vlt_cmd_caption(int argc, char **argv) {
    const char *checkpoint = NULL, *weights = NULL, *model = NULL, *shards = NULL, *out = NULL;
    const char *beam = NULL, *min_len = NULL, *max_len = NULL, *rep = NULL, *lp = NULL, *report = NULL;
    int batch = 16, limit = 0;
    bool ok = true;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (vlt_cli_is_help(argv[i])) { fputs(USAGE, stdout); return 0; }
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--checkpoint"))) checkpoint = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--weights"))) weights = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--model"))) model = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--shards"))) shards = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--out"))) out = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--beam"))) beam = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--min-len"))) min_len = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--max-len"))) max_len = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--repetition-penalty"))) rep = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--length-penalty"))) lp = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--report"))) report = v;
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--batch"))) batch = (int)vlt_cli_int("caption", "--batch", v, 1, 1 << 16);
        else if ((v = vlt_cli_opt("caption", argc, argv, &i, "--limit"))) limit = (int)vlt_cli_int("caption", "--limit", v, 0, 1 << 30);
        else return vlt_cli_unexpected("caption", argv[i]);
    }
    const char *why = vlt_model_source_check(checkpoint, weights, model);
    if (why) return vlt_cli_usage_error("caption", why);
    if (!shards || !out) return vlt_cli_usage_error("caption", "--shards SPEC and --out results.json are required");
    double rp = rep ? parse_float("--repetition-penalty", rep, 0, &ok) : 1.0;
    double lpen = lp ? parse_float("--length-penalty", lp, -1e6, &ok) : 1.0;
    if (!ok) return 2;
    int nbeam = beam ? (int)vlt_cli_int("caption", "--beam", beam, 1, 64) : 1;
    int nmin = min_len ? (int)vlt_cli_int("caption", "--min-len", min_len, 0, 4096) : -1;
    int nmax = max_len ? (int)vlt_cli_int("caption", "--max-len", max_len, 2, 4096) : -1;

    vlt_model_source src;
    vlt_tokenizer *tok = NULL;
    vlt_caption_eval c = {0};
    vlt_status s = vlt_model_source_open(checkpoint, weights, model, &src);
    if (s == VLT_OK && !vlt_model_can(&src.m, VLT_CAP_CAPTION))
        s = vlt_error_set(VLT_ERR_UNSUPPORTED, "%s: the %s model (kind '%s') has no caption decoder; vlt caption needs a "
                          "captioning model (CoCa)", src.label, vlt_model_title(&src.m), vlt_model_kind(&src.m));
    vlt_generate_cfg g = {0};
    if (s == VLT_OK) {
        g = vlt_caption_defaults(&src.m);
        g.beam_size = nbeam;
        g.repetition_penalty = (float)rp;
        g.length_penalty = (float)lpen;
        if (nmax > 0) g.max_len = nmax;
        if (nmin >= 0) g.min_len = nmin;
        else if (g.min_len >= g.max_len) g.min_len = g.max_len - 1;
        int ctx = src.m.cfg.text.context_length < src.m.cfg.multimodal.context_length ? src.m.cfg.text.context_length
                                                                                       : src.m.cfg.multimodal.context_length;
        if (g.max_len - 1 > ctx)
            s = vlt_error_set(VLT_ERR_ARG, "--max-len %d: the model's context holds %d tokens (at most --max-len %d)",
                              g.max_len, ctx, ctx + 1);
        else if (g.min_len >= g.max_len)
            s = vlt_error_set(VLT_ERR_ARG, "--min-len %d must be below --max-len %d", g.min_len, g.max_len);
    }
    if (s == VLT_OK) s = vlt_tokenizer_load(NULL, &tok);
    if (s == VLT_OK) s = vlt_caption_shards(&src.m, tok, shards, batch, limit, &g, &c);
    int dropped = s == VLT_OK ? drop_repeated_images(&c) : 0;
    if (s == VLT_OK) s = vlt_captions_save_coco(&c, out);
    if (s == VLT_OK && report) s = write_report(report, argc, argv, &src, shards, batch, limit, &g, out, &c, dropped);
    if (s == VLT_OK) {
        printf("vlt caption: %d images of %s captioned by %s (%s, %s, max length %d, min length %d, repetition penalty %g) "
               "-> %s\n", c.n, shards, src.label, vlt_model_title(&src.m), g.beam_size > 1 ? "beam search" : "greedy",
               g.max_len, g.min_len, (double)g.repetition_penalty, out);
        if (report && strcmp(report, "-") != 0)
            fprintf(stderr, "report written to %s (vlt eval --reproduce %s runs it again)\n", report, report);
        if (dropped)
            printf("  %d sample(s) repeat an earlier image id (shards with one sample per caption): each image captioned once\n",
                   dropped);
    } else {
        fprintf(stderr, "vlt caption: %s\n", vlt_error_message());
    }
    vlt_caption_eval_free(&c);
    vlt_tokenizer_free(tok);
    vlt_model_source_close(&src);
    return s == VLT_OK ? 0 : 1;
}
