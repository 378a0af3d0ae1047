// commands.h — the `vlt` subcommands. Each module that owns a subcommand implements its entry
// point here: int vlt_cmd_NAME(int argc, char **argv), with argv[0] the subcommand's name.
// It returns the process exit status (0 ok, 1 failure, 2 usage error).
#ifndef VLT_COMMANDS_H
#define VLT_COMMANDS_H

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} vlt_command;

int vlt_cmd_train(int argc, char **argv);   // train/train_cmd.c
int vlt_cmd_embed(int argc, char **argv);   // train/embed_cmd.c
int vlt_cmd_eval_checkpoint(int argc, char **argv);  // train/embed_cmd.c (`vlt eval checkpoint`)
int vlt_cmd_eval_zeroshot(int argc, char **argv);    // train/embed_cmd.c (`vlt eval zeroshot`)
int vlt_cmd_bench(int argc, char **argv);   // train/bench_cmd.c
int vlt_cmd_bench_clip(int argc, char **argv);  // train/bench_clip.c: `vlt bench clip-step` (GPU)
int vlt_cmd_eval(int argc, char **argv);    // eval/eval_cmd.c
int vlt_cmd_synth(int argc, char **argv);   // data/synth_cmd.c
int vlt_cmd_shards(int argc, char **argv);  // data/shards_cmd.c
int vlt_cmd_model(int argc, char **argv);   // train/model_cmd.c

#endif
