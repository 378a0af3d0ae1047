// train_cmd.c — `vlt train --config RUN.yaml [--set key=value …] [--resume latest|PATH | --overwrite]`.
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "data/shardspec.h"
#include "train/cli_args.h"
#include "train/commands.h"
#include "train/trainer.h"

// data.val is read only at the first evaluation, possibly hours in: a spec that does not expand, or
// a shard that is not a readable file, is refused before the first step instead.
static vlt_status check_val_shards(const vlt_run_config *cfg) {
    if (!cfg->val_shards[0]) return VLT_OK;
    vlt_shard_list l;
    if (vlt_shardspec_expand(cfg->val_shards, &l) != VLT_OK)
        return vlt_error_set(VLT_ERR_IO, "data.val '%s': %s", cfg->val_shards, vlt_error_message());
    vlt_status s = VLT_OK;
    for (size_t i = 0; i < l.n && s == VLT_OK; i++) {
        struct stat st;
        FILE *f = NULL;
        const char *why = stat(l.paths[i], &st) != 0 ? strerror(errno)
                          : !S_ISREG(st.st_mode)     ? "not a regular file"
                          : !(f = fopen(l.paths[i], "rb")) ? strerror(errno)
                                                           : NULL;
        if (why) s = vlt_error_set(VLT_ERR_IO, "data.val: shard %s: %s (data.val is '%s')", l.paths[i], why, cfg->val_shards);
        if (f) fclose(f);
    }
    vlt_shard_list_free(&l);
    return s;
}

static size_t count_shards(const char *spec) {
    vlt_shard_list l;
    if (!spec[0] || vlt_shardspec_expand(spec, &l) != VLT_OK) return 0;
    size_t n = l.n;
    vlt_shard_list_free(&l);
    return n;
}

// Thousands separators for the parameter count.
static const char *grouped(long long v, char *buf, size_t cap) {
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%lld", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

// Parameters: the table's tensors with a gradient (ALBEF's momentum copies, queues and buffers
// are state, not parameters; every tensor for the other kinds).
static long long n_parameters(const vlt_params *p) {
    long long n = 0;
    for (int i = 0; i < p->n; i++)
        if (p->t[i]->grad) n += p->t[i]->numel;
    return n;
}

// The start-up summary line (rank 0): what this run is, before its first step.
static void print_summary(const vlt_run_config *cfg, const vlt_dist *dist, vlt_trainer *t) {
    char params[48];
    long long global = (long long)cfg->batch_size * dist->world * cfg->accum_steps;
    printf("vlt train: model %s (%s, %s parameters); %d rank(s) x batch %d%s = global batch %lld; device %s, "
           "precision %s; %zu training shard(s), %zu held-out; run directory %s\n",
           cfg->model_name, vlt_trainer_model_title(t),
           grouped(n_parameters(vlt_trainer_params(t)), params, sizeof params), dist->world,
           cfg->batch_size, cfg->accum_steps > 1 ? " x accumulated micro-batches" : "", global, cfg->device,
           cfg->precision, count_shards(cfg->train_shards), count_shards(cfg->val_shards), cfg->output_dir);
    fflush(stdout);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlt train --config RUN.yaml [--set section.key=value ...] [--resume latest|PATH | --overwrite] [-v]\n"
            "\n"
            "Trains the model of the run config on its shards; writes RUN/config.yaml, checkpoints under\n"
            "RUN/checkpoints/, and progress lines. --resume latest continues the run in output.dir exactly\n"
            "where its last checkpoint left it (PATH: a checkpoint directory). --set overrides config keys,\n"
            "e.g. --set optim.lr=1e-4 --set schedule.steps=2000. --print-config shows the resolved config.\n"
            "A new run refuses an output.dir that already holds a run; --overwrite deletes that run's\n"
            "checkpoints, metrics and events first. Ctrl-C (SIGINT) or SIGTERM finishes the step, writes a\n"
            "checkpoint and exits (a second one stops at once); train.stop_signal adds USR1 or USR2.\n"
            "-v, --verbose also prints the data loader's totals (samples, skipped by reason) at each epoch end.\n"
            "On a terminal the progress line is redrawn in place; otherwise (a file, a pipe, mpirun) it is one\n"
            "plain line per log.every steps, and events always get lines of their own.\n"
            "Model names (model.name) are the configs under configs/model/ of VLT_HOME (vlt model list).\n"
            "Several processes: mpirun -np N vlt train ... (as root mpirun also needs --allow-run-as-root).\n");
}

int vlt_cmd_train(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'}, {"set", required_argument, 0, 's'},
                                         {"resume", required_argument, 0, 'r'}, {"print-config", no_argument, 0, 'p'},
                                         {"overwrite", no_argument, 0, 'o'}, {"help", no_argument, 0, 'h'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *resume = NULL;
    const char *sets[64];
    int n_sets = 0, print = 0, overwrite = 0, c;
    bool verbose = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:r:hv", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's':
            if (n_sets == 64) { fprintf(stderr, "vlt train: too many --set\n"); return 2; }
            sets[n_sets++] = optarg;
            break;
        case 'r': resume = optarg; break;
        case 'p': print = 1; break;
        case 'o': overwrite = 1; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;   // getopt has named the option
        }
    }
    if (optind < argc) return vlt_cli_unexpected("train", argv[optind]);
    if (!config) return vlt_cli_usage_error("train", "--config RUN.yaml is required");
    vlt_run_config cfg;
    vlt_run_config_default(&cfg);
    if (vlt_run_config_load(config, &cfg) != VLT_OK) {
        fprintf(stderr, "vlt train: %s\n", vlt_error_message());
        return 2;
    }
    for (int i = 0; i < n_sets; i++)
        if (vlt_run_config_set(&cfg, sets[i]) != VLT_OK) {
            fprintf(stderr, "vlt train: %s\n", vlt_error_message());
            return 2;
        }
    if (print) { vlt_run_config_write(&cfg, stdout); return 0; }
    if (check_val_shards(&cfg) != VLT_OK) {
        fprintf(stderr, "vlt train: %s\n", vlt_error_message());
        return 1;
    }
    // Under mpirun every rank runs this; without it, a world of one.
    vlt_dist dist;
    if (vlt_dist_init(&dist, &argc, &argv) != VLT_OK) {
        fprintf(stderr, "vlt train: %s\n", vlt_error_message());
        return 1;
    }
    // Ctrl-C, Slurm's SIGTERM (and train.stop_signal): finish the step, checkpoint, exit.
    if (vlt_trainer_catch_signals(cfg.stop_signal) != VLT_OK) {
        fprintf(stderr, "vlt train: %s\n", vlt_error_message());
        vlt_dist_finalize(&dist);
        return 2;
    }
    vlt_trainer_opts o = {.resume = resume, .dist = &dist, .overwrite = overwrite, .verbose = verbose};
    vlt_trainer *t;
    if (vlt_trainer_create(&cfg, &o, &t) != VLT_OK) {
        fprintf(stderr, "vlt train [rank %d]: %s\n", dist.rank, vlt_error_message());
        if (dist.world > 1) vlt_dist_abort(&dist, 1, "could not start the trainer");
        vlt_dist_finalize(&dist);
        return 1;
    }
    if (dist.rank == 0) print_summary(&cfg, &dist, t);
    vlt_status s = vlt_trainer_run(t);
    vlt_trainer_release_signals();   // trained and checkpointed: Ctrl-C in the final eval ends it
    // A stop on a signal is reported once (rank 0) and exits 128 + the signal, as the shell
    // reports a process ended by it: the run is not finished.
    int sig = vlt_trainer_stopped_by(t);
    if (s != VLT_OK && (!sig || dist.rank == 0))
        fprintf(stderr, "vlt train [rank %d]: %s\n", dist.rank, vlt_error_message());
    int rc = s == VLT_OK ? 0 : sig ? 128 + sig : 1;
    if (s == VLT_OK && cfg.val_shards[0] && dist.rank == 0) {
        double i2t[3], t2i[3];
        int n;
        vlt_eval_vqa_result vr;
        if (vlt_trainer_can_answer(t)) {   // VQA: the official accuracy of the answers on data.val
            if (vlt_trainer_eval_vqa(t, &vr) == VLT_OK) {
                printf("final eval (%d held-out questions): VQA accuracy %.2f", vr.n_questions, 100 * vr.accuracy);
                for (int k = 0; k < vr.n_types; k++) printf("  %s %.2f", vr.types[k].name, 100 * vr.types[k].accuracy);
                printf("  (%s)\n", vlt_eval_vqa_version_name(vr.version));
                vlt_eval_vqa_result_free(&vr);
            } else {
                fprintf(stderr, "vlt train: final eval: %s\n", vlt_error_message());
            }
        } else if (vlt_trainer_eval(t, i2t, t2i, &n) == VLT_OK) {
            printf("final eval (%d held-out pairs): image->text R@1/5/10 %.1f/%.1f/%.1f  text->image R@1/5/10 %.1f/%.1f/%.1f"
                   "  (chance R@1 %.2f)\n", n, 100 * i2t[0], 100 * i2t[1], 100 * i2t[2], 100 * t2i[0], 100 * t2i[1],
                   100 * t2i[2], 100.0 / n);
            if (vlt_trainer_eval_rerank(t, i2t, t2i))   // ALBEF: the top 16 re-scored by its matching head
                printf("final eval, top 16 re-ranked by image-text matching: image->text R@1/5/10 %.1f/%.1f/%.1f  "
                       "text->image R@1/5/10 %.1f/%.1f/%.1f\n", 100 * i2t[0], 100 * i2t[1], 100 * i2t[2],
                       100 * t2i[0], 100 * t2i[1], 100 * t2i[2]);
            double acc;
            if (vlt_trainer_eval_match_accuracy(t, &acc, &n))
                printf("final eval, image-text matching head: the true caption scored above another image's for %.1f%% "
                       "of %d held-out images (chance 50%%)\n", 100 * acc, n);
        } else {
            fprintf(stderr, "vlt train: final eval: %s\n", vlt_error_message());
        }
        double bleu4, cider;
        if (vlt_trainer_is_captioner(t)) {
            printf("generated captions (greedy) for held-out images:\n");
            if (vlt_trainer_eval_captions(t, 500, &bleu4, &cider, stdout, 8) == VLT_OK)
                printf("final caption eval (500 held-out images, 1 reference each): BLEU-4 %.1f  CIDEr-D %.1f\n",
                       100 * bleu4, 100 * cider);
            else fprintf(stderr, "vlt train: caption eval: %s\n", vlt_error_message());
        }
    }
    vlt_trainer_free(t);
    vlt_dist_finalize(&dist);
    return rc;
}
