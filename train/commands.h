// commands.h — the `vlt` subcommands: int vlt_cmd_NAME(int argc, char **argv), with argv[0] the
// subcommand's name, returning the process exit status (0 ok, 1 failure, 2 usage error). They all
// live in train/, one file per command (argument parsing and printing); the library folders
// (data/, eval/, layers/, checkpoints/) only expose functions and never include this header.
#ifndef VLT_COMMANDS_H
#define VLT_COMMANDS_H

#define VLT_VERSION "0.1.0"  // `vlt version`, and every evaluation report

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} vlt_command;

int vlt_cmd_train(int argc, char **argv);   // train/train_cmd.c
int vlt_cmd_embed(int argc, char **argv);   // train/embed_cmd.c
int vlt_cmd_eval_checkpoint(int argc, char **argv);  // train/embed_cmd.c (`vlt eval checkpoint`)
int vlt_cmd_eval_zeroshot(int argc, char **argv);    // train/embed_cmd.c (`vlt eval zeroshot`)
int vlt_cmd_eval_clipscore(int argc, char **argv);   // train/embed_cmd.c (`vlt eval clipscore`)
int vlt_cmd_bench(int argc, char **argv);   // train/bench_cmd.c
int vlt_cmd_bench_clip(int argc, char **argv);  // train/bench_clip.c: `vlt bench clip-step` (GPU)
int vlt_cmd_eval(int argc, char **argv);    // train/eval_cmd.c (routes checkpoint and zeroshot too)
int vlt_cmd_synth(int argc, char **argv);   // train/synth_cmd.c
int vlt_cmd_shards(int argc, char **argv);  // train/shards_cmd.c
int vlt_cmd_model(int argc, char **argv);   // train/model_cmd.c
int vlt_cmd_tokenize(int argc, char **argv);  // train/tokenize_cmd.c
int vlt_cmd_report(int argc, char **argv);    // train/report_cmd.c
int vlt_cmd_explain(int argc, char **argv);   // train/embed_cmd.c
int vlt_cmd_caption(int argc, char **argv);   // train/caption_cmd.c
int vlt_cmd_vqa(int argc, char **argv);       // train/vqa_cmd.c
// `vlt eval checkpoint` on a model that answers (VQA): a run (checkpoint), or weights + model with
// answer_vocab (the answers are not in a weights file); train/vqa_cmd.c
int vlt_vqa_eval_checkpoint(const char *checkpoint, const char *weights, const char *model, const char *answer_vocab,
                            const char *shards, int batch, int limit, const char *report_out, const char *results_out,
                            const char *html, int argc, char **argv);

#endif
