// main.c — the `vlt` command: dispatches to subcommands, like git.
#include <stdio.h>
#include <string.h>

#include "train/commands.h"

#define VLT_VERSION "0.1.0"

static const vlt_command COMMANDS[] = {
    {"train", vlt_cmd_train, "train a model from a run config (YAML); --resume latest continues a run"},
    {"embed", vlt_cmd_embed, "image and text embeddings of a shard set from a checkpoint, to HDF5"},
    {"bench", vlt_cmd_bench, "benchmarks (CPU: sgemm, a transformer block step; GPU: bench clip-step)"},
    {"eval", vlt_cmd_eval, "evaluate: captions (BLEU, CIDEr-D), retrieval (recall@k), vqa (accuracy), checkpoint, zeroshot"},
    {"synth", vlt_cmd_synth, "write a synthetic captioned-shapes dataset as webdataset shards"},
    {"shards", vlt_cmd_shards, "pack COCO / TSV / folder image-caption pairs into webdataset shards"},
    {"model", vlt_cmd_model, "model configs and weights: parameter count, init to safetensors, strict load check"},
};
static const int N_COMMANDS = (int)(sizeof COMMANDS / sizeof COMMANDS[0]);

static void usage(FILE *f) {
    fprintf(f, "usage: vlt <command> [options]   (vlt <command> --help for each)\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("vlt %s\n", VLT_VERSION);
        return 0;
    }
    // `vlt eval checkpoint` needs the models, which the eval module does not link: routed here.
    if (!strcmp(argv[1], "eval") && argc > 2 && !strcmp(argv[2], "checkpoint"))
        return vlt_cmd_eval_checkpoint(argc - 2, argv + 2);
    if (!strcmp(argv[1], "eval") && argc > 2 && !strcmp(argv[2], "zeroshot"))
        return vlt_cmd_eval_zeroshot(argc - 2, argv + 2);
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vlt: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
