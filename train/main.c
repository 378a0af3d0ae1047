// main.c — the `vlt` command: dispatches to subcommands, like git, after finding vlt's data folder.
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/commands.h"


#if defined(VLT_MPI) && defined(__SANITIZE_ADDRESS__)
// The sanitizer build (make SAN=1) of vlt train: Open MPI keeps allocations made in MPI_Init until
// exit, some inside components it has dlclose'd, which LeakSanitizer would report as vlt's leaks
// and turn into a failing exit status. Leaks whose stack passes through Open MPI are suppressed
// (as tests/mpi_launch.h does for the test binaries); full unwinding reaches those frames.
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);
const char *__lsan_default_options(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\nleak:libevent\nleak:mca_\n";
}
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
#endif

static const vlt_command COMMANDS[] = {
    {"train", vlt_cmd_train, "train a model from a run config (YAML); --resume latest continues a run"},
    {"embed", vlt_cmd_embed, "image and text embeddings of a shard set from a checkpoint, to HDF5"},
    {"vqa", vlt_cmd_vqa, "a VQA model's answers to the questions of a shard set, in the official results format"},
    {"caption", vlt_cmd_caption, "a captioning model's captions of a shard set, in the COCO results format"},
    {"eval", vlt_cmd_eval, "evaluate: captions (BLEU, CIDEr-D), retrieval (recall@k), vqa (accuracy), checkpoint, zeroshot"},
    {"synth", vlt_cmd_synth, "write a synthetic captioned-shapes dataset as webdataset shards"},
    {"shards", vlt_cmd_shards, "pack COCO / TSV / folder image-caption pairs into webdataset shards"},
    {"model", vlt_cmd_model, "model configs and weights: list, parameter count, init to safetensors, strict load check"},
    {"tokenize", vlt_cmd_tokenize, "text to CLIP BPE ids (or --ptb: the PTB tokens BLEU / CIDEr-D score; --decode: ids to text)"},
    {"explain", vlt_cmd_explain, "where in an image a checkpoint's image-text similarity comes from (relevance maps)"},
    {"report", vlt_cmd_report, "a training run as one static HTML page: curves, last values, checkpoints, config"},
    {"bench", vlt_cmd_bench, "benchmarks (CPU: sgemm, a transformer block step; GPU: bench clip-step)"},
};
static const int N_COMMANDS = (int)(sizeof COMMANDS / sizeof COMMANDS[0]);

static char g_home[PATH_MAX];
static const char *g_home_from = "not found";

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// A folder holding vlt's data: configs/model and assets.
static bool is_vlt_home(const char *dir) {
    char a[PATH_MAX + 32], b[PATH_MAX + 32];
    snprintf(a, sizeof a, "%s/configs/model", dir);
    snprintf(b, sizeof b, "%s/assets", dir);
    return is_dir(a) && is_dir(b);
}

// Finds vlt's data folder (configs/model, configs/run, assets): $VLT_HOME when set; else from the
// executable's own path (/proc/self/exe, so a symlink such as the tree's ./vlt does not matter):
// an installed PREFIX/bin/vlt uses PREFIX/share/vlt (make install), a vlt built in a source tree
// (build/vlt, build/nompi/vlt, ...) the tree itself: the nearest folder above the executable that
// holds D/share/vlt or D itself as a data folder. Exports VLT_HOME, and VLT_ASSETS for the
// tokenizer unless set, so the library finds everything whatever the working directory.
static void find_home(void) {
    const char *env = getenv("VLT_HOME");
    if (env && *env) {
        snprintf(g_home, sizeof g_home, "%s", env);
        g_home_from = "$VLT_HOME";
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            char cand[PATH_MAX + 16];
            for (int up = 0; up < 5; up++) {
                char *slash = strrchr(exe, '/');
                if (!slash) break;
                *slash = '\0';
                const char *d = exe[0] ? exe : "/";
                snprintf(cand, sizeof cand, "%s/share/vlt", exe);
                if (is_vlt_home(cand)) { snprintf(g_home, sizeof g_home, "%.*s", PATH_MAX - 1, cand); break; }
                if (is_vlt_home(d)) { snprintf(g_home, sizeof g_home, "%s", d); break; }
            }
            if (g_home[0]) g_home_from = "next to the executable";
        }
        if (g_home[0]) setenv("VLT_HOME", g_home, 1);
    }
    if (g_home[0] && !getenv("VLT_ASSETS")) {
        char assets[PATH_MAX + 16];
        snprintf(assets, sizeof assets, "%s/assets", g_home);
        setenv("VLT_ASSETS", assets, 1);
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: vlt <command> [options]   (vlt <command> --help for each)\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
    fprintf(f,
            "\n"
            "vlt's data folder (model configs configs/model/*.json, example run configs, the tokenizer's\n"
            "vocabulary in assets/) is found from the vlt executable itself: an installed PREFIX/bin/vlt\n"
            "uses PREFIX/share/vlt (make install PREFIX=...), a vlt built in a source tree uses the tree.\n"
            "Environment:\n"
            "  VLT_HOME         the data folder instead (here: %s, %s)\n"
            "  VLT_ASSETS       the tokenizer vocabulary's folder (default VLT_HOME/assets)\n"
            "  OMP_NUM_THREADS  compute threads;  VLT_DIST_TIMEOUT  seconds before a silent rank ends a job\n"
            "Exit status: 0 done, 1 failed (the message names the file, key or sample), 2 usage error.\n",
            g_home[0] ? g_home : "none found", g_home_from);
}

int main(int argc, char **argv) {
    find_home();
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        if (argc > 2 && strcmp(argv[2], "--help") && strcmp(argv[2], "-h")) {
            fprintf(stderr, "vlt version: unexpected argument '%s'\n", argv[2]);
            return 2;
        }
        printf("vlt %s\n", VLT_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vlt: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
