// shards_cmd.c — `vlt shards`: the command line of data/pack.h (COCO / Karpathy / TSV / folder
// image-caption pairs into webdataset shards).
#include <stdio.h>
#include <string.h>

#include "data/pack.h"
#include "data/vqa_pack.h"
#include "eval/vqa.h"
#include "train/cli_args.h"
#include "train/commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlt shards --out DIR SOURCE [options]\n"
            "\n"
            "Packs image-caption pairs into webdataset shards DIR/00000.tar, DIR/00001.tar, ... (members\n"
            "KEY.jpg, KEY.txt, KEY.json; keys 000000000, 000000001, ... as img2dataset) and DIR/sizes.json.\n"
            "Train on them with data.train: \"DIR/{00000..00041}.tar\" (or \"DIR/*.tar\"), quoted.\n"
            "\n"
            "SOURCE, one of:\n"
            "  --coco FILE.json --images DIR      COCO caption annotations (captions_train2017.json, ...):\n"
            "                                     one sample per image, .txt the first caption, .json all of\n"
            "                                     them (\"captions\"), the image id and file name\n"
            "  --karpathy dataset_coco.json --images DIR --split train|val|test\n"
            "                                     the Karpathy split (train includes restval); images are\n"
            "                                     DIR/<filepath>/<filename> or DIR/<filename>. With --coco\n"
            "                                     too, captions come from the COCO file for the split's images\n"
            "  --tsv FILE                         lines of image-path<TAB>caption (relative paths are taken\n"
            "                                     from --images DIR, else from the TSV's folder); a first line\n"
            "                                     naming columns (path/filepath/image/file/filename/url) is skipped\n"
            "  --folder DIR                       image files (.jpg .jpeg .png .webp, searched recursively,\n"
            "                                     sorted) each with a caption in the .txt of the same name\n"
            "  --classes DIR                      an image-folder classification dataset, DIR/<class>/<image> as\n"
            "                                     torchvision's ImageFolder reads it: class index = the sub-folder's\n"
            "                                     place in sorted name order; each sample gets .cls (the index),\n"
            "                                     .json (class name, index, source path) and .txt when a caption\n"
            "                                     file of the same name exists; OUT/classes.txt lists the classes\n"
            "                                     (for vlt eval zeroshot --classes OUT/classes.txt)\n"
            "  --vqa-questions Q.json [--vqa-annotations A.json] --images DIR\n"
            "                                     official VQAv2 / VQA-CP questions (and answers): one sample per\n"
            "                                     question, .txt the question, .json its ids, the raw answers,\n"
            "                                     their processed forms (as the official evaluation) and soft\n"
            "                                     scores; images COCO_<split>_<id>.jpg (also under <split>/)\n"
            "  --vqa-jsonl FILE                   lines of {\"image\": path, \"question\": ..., \"answers\": [..]}\n"
            "                                     (answers optional); paths as --tsv\n"
            "  --vqa-vocab N                      VQA: also write DIR/answer_vocab.json, the N most frequent\n"
            "                                     processed answers (3129 for VQAv2 by convention)\n"
            "\n"
            "options:\n"
            "  --out DIR            output directory (created if missing)\n"
            "  --shard-size K       samples per shard (default 1000)\n"
            "  --resize N           downscale images whose shorter side exceeds N to N (bicubic); JPEGs\n"
            "                       that need no resize are stored unchanged (default 0: never resize)\n"
            "  --each-caption       COCO/Karpathy: one sample per caption instead of per image\n"
            "  --quality Q          JPEG quality of re-encoded images (default 95)\n"
            "  --prefix P           shard name prefix: DIR/P00000.tar, ... (default none)\n"
            "  --limit N            stop after N input items (for trials)\n"
            "  -h, --help           this help\n"
            "\n"
            "Samples that cannot be packed are skipped and counted by reason: missing caption, empty\n"
            "caption, missing image, bad image, path leaves --images (an annotation's absolute or '..'\n"
            "path), no tab (a TSV line). Exit status: 0 written, 1 failed, 2 usage error.\n");
}

// `vlt shards --vqa-*`: data/vqa_pack.h with eval/vqa.h's answer processing.
static int vlt_vqa_pack_cmd(vlt_vqa_pack_source *vqa, const vlt_pack_source *src, const vlt_shardwriter_cfg *cfg) {
    vqa->images = src->images;
    vqa->limit = src->limit;
    if (vlt_vqa_pack_source_check(vqa) != VLT_OK) return vlt_cli_usage_error("shards", vlt_error_message());
    vlt_vqa_pack_stats st;
    if (vlt_vqa_pack_shards(vqa, cfg, stderr, &st) != VLT_OK) {
        fprintf(stderr, "vlt shards: %s\n", vlt_error_message());
        return 1;
    }
    if (st.duplicate_annotations)
        fprintf(stderr, "vlt shards: warning: %lld annotations repeat an earlier question_id; the last one is used\n",
                st.duplicate_annotations);
    long long total = 0;
    for (int r = 0; r < VLT_VQA_N_SKIP; r++) total += st.skipped[r];
    printf("vlt shards: wrote %lld questions in %d shards to %s; skipped %lld", st.written, st.shards, cfg->out_dir, total);
    const char *sep = " (";
    for (int r = 0; r < VLT_VQA_N_SKIP; r++)
        if (st.skipped[r]) {
            printf("%s%lld %s", sep, st.skipped[r], vlt_vqa_skip_name((vlt_vqa_skip)r));
            sep = ", ";
        }
    printf("%s\n", total ? ")" : "");
    if (st.vocab_written) printf("vlt shards: answer vocabulary of %d answers in %s/answer_vocab.json\n", st.vocab_written, cfg->out_dir);
    return 0;
}

int vlt_cmd_shards(int argc, char **argv) {
    vlt_pack_source src = {0};
    vlt_vqa_pack_source vqa = {.fns = {vlt_eval_vqa_normalize, vlt_eval_vqa_soft_scores}};
    const char *out = NULL, *prefix = "";
    long long shard_size = 1000, resize = 0, quality = 95;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (vlt_cli_is_help(argv[i])) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--each-caption")) src.each_caption = true;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--out"))) out = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--coco"))) src.coco = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--karpathy"))) src.karpathy = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--split"))) src.split = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--images"))) src.images = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--tsv"))) src.tsv = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--folder"))) src.folder = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--classes"))) src.classes = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--vqa-questions"))) vqa.questions = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--vqa-annotations"))) vqa.annotations = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--vqa-jsonl"))) vqa.jsonl = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--vqa-vocab"))) vqa.vocab_size = (int)vlt_cli_int("shards", "--vqa-vocab", v, 1, 1 << 24);
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--shard-size"))) shard_size = vlt_cli_int("shards", "--shard-size", v, 1, 1 << 30);
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--resize"))) resize = vlt_cli_int("shards", "--resize", v, 0, 1 << 16);
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--quality"))) quality = vlt_cli_int("shards", "--quality", v, 1, 100);
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--prefix"))) prefix = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--limit"))) src.limit = vlt_cli_int("shards", "--limit", v, 1, 1ll << 50);
        else return vlt_cli_unexpected("shards", argv[i]);
    }
    if (!out) return vlt_cli_usage_error("shards", "--out DIR is required");
    int is_vqa = vqa.questions || vqa.annotations || vqa.jsonl || vqa.vocab_size;
    if (is_vqa && (src.coco || src.karpathy || src.tsv || src.folder || src.classes))
        return vlt_cli_usage_error("shards", "give exactly one source: --vqa-* or --coco/--karpathy, --tsv, --folder, --classes");
    if (!is_vqa && vlt_pack_source_check(&src) != VLT_OK) return vlt_cli_usage_error("shards", vlt_error_message());
    vlt_shardwriter_cfg cfg;
    vlt_shardwriter_cfg_default(&cfg, out);
    cfg.shard_size = (int)shard_size;
    cfg.resize = (int)resize;
    cfg.quality = (int)quality;
    cfg.prefix = prefix;
    if (is_vqa) return vlt_vqa_pack_cmd(&vqa, &src, &cfg);
    vlt_pack_stats st;
    if (vlt_pack_shards(&src, &cfg, stderr, &st) != VLT_OK) {
        fprintf(stderr, "vlt shards: %s\n", vlt_error_message());
        return 1;
    }
    long long total = 0;
    for (int r = 0; r < VLT_PACK_N_SKIP; r++) total += st.skipped[r];
    printf("vlt shards: wrote %lld samples in %d shards to %s; skipped %lld", st.written, st.shards, out, total);
    const char *sep = " (";
    for (int r = 0; r < VLT_PACK_N_SKIP; r++)
        if (st.skipped[r]) {
            printf("%s%lld %s", sep, st.skipped[r], vlt_pack_skip_name((vlt_pack_skip)r));
            sep = ", ";
        }
    printf("%s\n", total ? ")" : "");
    if (src.classes) printf("vlt shards: %d classes (labels 0..%d in .cls) listed in %s/classes.txt\n", st.classes, st.classes - 1, out);
    return 0;
}
