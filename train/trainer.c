// trainer.c — the training loop (see trainer.h).
#include "train/trainer.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autograd/device.h"
#include "autograd/optim.h"
#include "autograd/rng.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/safetensors.h"
#include "data/files.h"
#include "data/loader.h"
#include "data/shardspec.h"
#include "data/tokenizer.h"
#include "layers/model.h"
#include "train/evaluate.h"
#include "train/feed.h"
#include "train/metrics_log.h"
#include "train/schedule.h"
#include "train/vqa_eval.h"
#include "train/zero.h"

#define STATE_FORMAT 1
// Candidates per query that a matching model's head re-scores in evaluation (ALBEF's k_test is
// 256 for COCO and 128 for Flickr30k; the held-out sets here are a few hundred pairs).
#define VLT_TRAIN_RERANK_K 16

struct vlt_trainer {
    vlt_dist single;               // the one-process world when opts.dist is NULL
    const vlt_dist *dist;          // this run's ranks
    vlt_run_config cfg;
    vlt_model_cfg mcfg;
    vlt_trainer_opts opts;
    char *const *batch_json;       // the current batch's .json members, when the model builds its answers from them
    vlt_model model;               // any kind, through its table (layers/model.h)
    int n_loss_parts;              // the named parts of the model's loss (last micro-batch)
    const char *loss_part_names[VLT_LOSS_PARTS_MAX];
    int n_loss_metrics;            // the model's named metrics (ALBEF: itm_acc, mlm_acc), logged as train/<name>
    const char *loss_metric_names[VLT_LOSS_PARTS_MAX];
    vlt_params *params;            // the model's parameter table
    vlt_params opt_view;           // its tensors with a gradient (not owned): what the optimizer, the
                                   // reducer and clipping see; a kind's non-trainable state (ALBEF's
                                   // momentum copies, queues, buffers) is left out
    vlt_tensor *atts;              // a kind with its own tokenizer (ALBEF): the captions' attention mask (B, T)
    bool *decay;
    vlt_adamw *opt;                // with train.zero: over this rank's parameters only
    vlt_zero *zero;                // train.zero: ownership and transfers (NULL without)
    vlt_tokenizer *tok;
    vlt_loader *loader;
    vlt_schedule sched;
    vlt_tensor *images, *ids;      // persistent batch buffers (B, 3, S, S), (B, T), on the host
    // train.device cuda: the loader delivers uint8 pixels (images is NULL); they go to the GPU as
    // they are (4x fewer bytes) and vlt_normalize_u8 turns them into the float batch there.
    // (VLT_TRAIN_U8_FEED=1 takes the same uint8 route on the CPU: a test of it against the float feed.)
    bool u8_feed;
    vlt_tensor *images_u8;         // (B, 3, S, S) u8 on the host (without the feed)
    vlt_tensor *images_u8_dev;     // the same on the GPU (made at the first batch)
    float norm_mean[3], norm_std[3];
    // The feed (train/feed.h), with the uint8 route unless VLT_TRAIN_SYNC_FEED=1: batch k+1 is
    // fetched once step k's backward is queued, from pinned loader memory on the GPU, and its
    // pixels are copied on a side stream while step k computes.
    bool use_feed;
    vlt_feed feed;
    vlt_feed_host_ctx feed_host;   // the CPU test route's backend
    void *feed_cuda;               // the CUDA backend (NULL on the host)
    vlt_tensor *feed_slot[VLT_FEED_SLOTS];   // u8 (B, 3, S, S) on the training device
    int64_t fetched_epoch, fetched_index;    // of the batch fetched last (the next one trained)
    vlt_vqa_vocab vocab;           // VQA runs (model.vqa_head): the answer vocabulary (else n = 0)
    vlt_tensor *answer_scores;     // VQA runs: (B, N) soft-score targets of the batch
    bool on_gpu;                   // train.device cuda: model and optimizer state on the GPU
    bool owns_nccl;                // this trainer made the process's NCCL communicator
    vlt_dist_reducer *reducer;     // several ranks on the CPU: the all-reduce overlapped with backward
    struct param_slot { const vlt_tensor *t; int i; } *by_ptr;  // parameters sorted by address
    int64_t step, epoch;
    int64_t batch_index;           // the current batch's number within its epoch
    bool has_rerank;               // the last vlt_trainer_eval also re-ranked by the matching head (ALBEF)
    double match_acc;              // ... and the head's pair accuracy (vlt_eval_pairs_match_accuracy) over
    int match_n;                   //     match_n images
    double rerank_i2t[3], rerank_t2i[3];
    int64_t last_ck_step;          // the step of the newest checkpoint written or resumed from (-1: none)
    int stopped_by;                // the signal that stopped the run (0: none)
    int lock_fd;                   // RUN/.lock, flock'd while this trainer lives (rank 0; -1: none)
    bool dirty;                    // a good optimizer step was taken since that checkpoint
    int nonfinite_run;
    int64_t nonfinite_total;
    float *losses;                 // per step taken by this object
    int64_t n_losses, cap_losses;
    vlt_metrics_log *mlog;         // metrics.jsonl, TensorBoard events, the progress line
    int64_t nan_from, nan_to;      // fault injection (tests): steps whose batch is poisoned
    double t_start;                // seconds: training start
    double t_last_log, t_data;     // since the previous logged step: its time, data wait
    int64_t images_since_log;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The resolved config, written temp + rename so a reader never sees half of it.
static vlt_status write_config(const vlt_trainer *t) {
    char path[VLT_CFG_STR + 32], tmp[VLT_CFG_STR + 48];
    snprintf(path, sizeof path, "%s/config.yaml", t->cfg.output_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    vlt_run_config_write(&t->cfg, f);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    return VLT_OK;
}

// --- the run directory: one writer, and no new run over an old one ------------------------------

#define RUN_LOCK ".lock"
// What a run writes into its directory; a new run refuses a directory that holds any of them.
static const char *const RUN_ENTRIES[] = {"checkpoints", "metrics.jsonl", "tensorboard", "config.yaml", NULL};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

// RUN/.lock is held with flock for the trainer's life (the kernel drops it when the process ends,
// however it ends). It holds "pid host" while held and is emptied on a clean release, so a
// non-empty lock that can be taken was left by a process that died: that is said, then taken over.
static vlt_status lock_run_dir(vlt_trainer *t) {
    char path[VLT_CFG_STR + 16], host[256] = "?";
    snprintf(path, sizeof path, "%s/" RUN_LOCK, t->cfg.output_dir);
    gethostname(host, sizeof host - 1);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return vlt_error_set(VLT_ERR_IO, "cannot open the run directory lock %s: %s", path, strerror(errno));
    char held[300] = "";
    ssize_t n = pread(fd, held, sizeof held - 1, 0);
    held[n > 0 ? n : 0] = '\0';
    held[strcspn(held, "\n")] = '\0';
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            // Read again: the holder may have written its line after our first read.
            n = pread(fd, held, sizeof held - 1, 0);
            held[n > 0 ? n : 0] = '\0';
            held[strcspn(held, "\n")] = '\0';
            close(fd);
            return vlt_error_set(VLT_ERR_STATE, "output.dir %s is in use by another vlt train (pid and host: %s): two runs "
                                 "in one directory would mix their metrics and replace each other's checkpoints; wait "
                                 "for it to end or choose another output.dir", t->cfg.output_dir, held[0] ? held : "?");
        }
        // A file system without flock (some network mounts): go on, and say so.
        fprintf(stderr, "vlt train: warning: cannot lock %s (%s); nothing stops a second run in this directory\n", path,
                strerror(e));
        close(fd);
        return VLT_OK;
    }
    long old_pid = 0;
    char old_host[256] = "";
    if (held[0] && sscanf(held, "%ld %255s", &old_pid, old_host) >= 1 && !t->opts.quiet)
        fprintf(t->opts.log, "vlt train: %s: stale lock of pid %ld on %s (it ended without releasing it); taken over\n",
                t->cfg.output_dir, old_pid, old_host[0] ? old_host : "?");
    char line[320];
    int len = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        int e = errno;
        close(fd);
        return vlt_error_set(VLT_ERR_IO, "cannot write the run directory lock %s: %s", path, strerror(e));
    }
    t->lock_fd = fd;
    return VLT_OK;
}

static void unlock_run_dir(vlt_trainer *t) {
    if (t->lock_fd < 0) return;
    if (ftruncate(t->lock_fd, 0) != 0) { /* the flock is released anyway; a stale line is only a note */ }
    close(t->lock_fd);
    t->lock_fd = -1;
}

// A new run (no --resume) in a directory that holds a run would move its `latest`, append to its
// metrics and prune its checkpoints: refused, unless opts.overwrite, which deletes the old run's
// entries (only those vlt writes) first.
static vlt_status claim_run_dir(vlt_trainer *t) {
    VLT_TRY(lock_run_dir(t));
    if (t->opts.resume) return VLT_OK;
    char found[256] = "", path[VLT_CFG_STR + 32];
    for (int i = 0; RUN_ENTRIES[i]; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", t->cfg.output_dir, RUN_ENTRIES[i]);
        if (lstat(path, &st) != 0) continue;
        if (t->opts.overwrite) {
            if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
                return vlt_error_set(VLT_ERR_IO, "--overwrite: cannot remove %s: %s", path, strerror(errno));
        } else {
            size_t o = strlen(found);
            snprintf(found + o, sizeof found - o, "%s%s", o ? ", " : "", RUN_ENTRIES[i]);
        }
    }
    if (found[0])
        return vlt_error_set(VLT_ERR_STATE, "output.dir %s already holds a run (%s): continue it with --resume latest, "
                             "start over with --overwrite (deletes that run's checkpoints, metrics and events), or choose "
                             "another output.dir", t->cfg.output_dir, found);
    return VLT_OK;
}

// The training loader: this run's shards, seeded shard order and shuffle buffer, train transform.
static vlt_status create_loader(const vlt_trainer *t, vlt_loader **out) {
    vlt_loader_cfg lc;
    vlt_loader_cfg_default(&lc);
    lc.shards = t->cfg.train_shards;
    lc.rank = t->dist->rank;
    lc.world_size = t->dist->world;
    lc.readers = t->cfg.workers;
    lc.batch_size = t->cfg.batch_size;
    lc.image_size = t->mcfg.vision.image_size;
    lc.context_len = t->mcfg.text.context_length;
    lc.train = 1;
    vlt_transform_cfg_default(&lc.transform, lc.image_size);
    lc.transform.scale_min = (float)t->cfg.scale_min;
    lc.transform.scale_max = (float)t->cfg.scale_max;
    lc.transform.hflip = t->cfg.flip;
    lc.tokenizer = t->tok;
    lc.seed = (uint64_t)t->cfg.seed;
    lc.shuffle_shards = 1;
    lc.shuffle_buffer = t->cfg.shuffle_buffer;
    lc.shuffle_initial = t->cfg.shuffle_initial;
    lc.fast_decode = t->cfg.fast_decode;  // DCT-scaled JPEG decode only when asked (never in evaluation)
    lc.resampled = t->cfg.resampled;
    lc.samples_per_epoch = t->cfg.samples_per_epoch;
    lc.drop_last = 1;
    lc.answers = (const char *const *)t->vocab.answers;   // VQA: each question's soft scores (n_answers 0 otherwise)
    lc.n_answers = t->vocab.n;
    lc.keep_json = vlt_model_builds_answers(&t->model);   // ALBEF VQA: the answers and their weights
    lc.report = !t->opts.quiet && t->opts.verbose && t->dist->rank == 0;   // per-epoch data line: -v
    lc.images_u8 = t->u8_feed;   // normalised on the GPU (vlt_normalize_u8)
#ifdef VLT_HAVE_CUDA
    if (t->use_feed && !strcmp(t->cfg.device, "cuda")) {   // the feed copies from page-locked slots
        lc.pinned = 1;
        lc.host_alloc = vlt_feed_cuda_host_alloc;
        lc.host_free = vlt_feed_cuda_host_free;
    }
#endif
    // The step's memory joins the loader's in its check (loader.h), so that an impossible
    // data.batch_size is refused with a figure instead of ending in the OOM killer: weights,
    // gradients and two AdamW moments, and on the CPU a lower bound of each tower's activations
    // (per layer and token: 8 widths and one attention row per head).
    for (int i = 0; i < t->params->n; i++) lc.step_bytes_fixed += 16.0 * (double)t->params->t[i]->numel;
    const vlt_vision_cfg *v = &t->mcfg.vision;
    const vlt_text_cfg *x = &t->mcfg.text;
    double vt = (double)(v->image_size / v->patch_size) * (v->image_size / v->patch_size) + 1;
    double vh = v->head_width > 0 ? (double)v->width / v->head_width : 1;
    if (!strcmp(t->cfg.device, "cpu"))
        lc.step_bytes_per_sample = 4.0 * (v->layers * vt * (8.0 * v->width + vh * vt) +
                                          x->layers * (double)x->context_length * (8.0 * x->width + (double)x->heads * x->context_length));
    return vlt_loader_create(&lc, out);
}

// Builds the state JSON stored in each checkpoint; `positions` are the loader positions of all
// ranks, in rank order.
static char *state_json(vlt_trainer *t, char **positions) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "format", STATE_FORMAT);
    cJSON_AddNumberToObject(root, "step", (double)t->step);
    cJSON_AddNumberToObject(root, "epoch", (double)t->epoch);
    cJSON_AddNumberToObject(root, "world_size", t->dist->world);
    cJSON_AddNumberToObject(root, "seed", (double)t->cfg.seed);
    cJSON_AddNumberToObject(root, "nonfinite_total", (double)t->nonfinite_total);
    cJSON_AddNumberToObject(root, "nonfinite_run", t->nonfinite_run);
    cJSON_AddNumberToObject(root, "lr", vlt_schedule_lr(&t->sched, t->step));
    cJSON *ranks = cJSON_AddArrayToObject(root, "loader_ranks");
    for (int r = 0; r < t->dist->world; r++) cJSON_AddItemToArray(ranks, cJSON_Parse(positions[r]));
    char *cfg_text = NULL;
    size_t cfg_len = 0;
    FILE *mf = open_memstream(&cfg_text, &cfg_len);
    vlt_run_config_write(&t->cfg, mf);
    fclose(mf);
    cJSON_AddStringToObject(root, "config", cfg_text);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)vlt_rng_hash_str(cfg_text));
    cJSON_AddStringToObject(root, "config_hash", hash);
    free(cfg_text);
    // VQA: the answer vocabulary travels with every checkpoint (the model's classes are its indices)
    if (t->vocab.n) cJSON_AddItemToObject(root, "answer_vocab", cJSON_CreateStringArray((const char *const *)t->vocab.answers, t->vocab.n));
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

// train.device cuda: host copies of the parameters and of the AdamW moments for the checkpoint
// writer, which reads host memory (the copies live only while it writes).
static void host_snapshot_free(vlt_params *host, vlt_adamw *opt) {
    for (int i = 0; i < opt->n; i++) {
        free(opt->m ? opt->m[i] : NULL);
        free(opt->v ? opt->v[i] : NULL);
    }
    free(opt->m);
    free(opt->v);
    free(opt->params);
    vlt_params_free(host);
}

// src: t->opt (moments on the device), or flat ZeRO's gathered optimizer (host moments).
static vlt_status host_snapshot(const vlt_trainer *t, const vlt_adamw *src, vlt_params *host, vlt_adamw *opt) {
    vlt_params_init(host);
    bool src_host = src != t->opt;
    *opt = *src;
    opt->m = calloc((size_t)opt->n, sizeof *opt->m);
    opt->v = calloc((size_t)opt->n, sizeof *opt->v);
    opt->params = calloc((size_t)(opt->n ? opt->n : 1), sizeof *opt->params);
    vlt_status s = opt->m && opt->v && opt->params ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "checkpoint: out of host memory");
    for (int i = 0; s == VLT_OK && i < t->params->n; i++) {
        const vlt_tensor *p = t->params->t[i];
        // the table's own dtype (i32 buffers: BERT's position_ids, ALBEF's queue_ptr)
        vlt_tensor *h = vlt_tensor_new(p->dtype, VLT_CPU, p->ndim, p->shape, p->name);
        if (!h || (s = vlt_tensor_copy(h, p)) != VLT_OK || (s = vlt_params_add(host, h)) != VLT_OK) {
            vlt_tensor_free(h);
            s = s == VLT_OK ? vlt_error_code() : s;
            break;
        }
    }
    for (int i = 0; s == VLT_OK && i < opt->n; i++) {
        size_t bytes = (size_t)src->params[i]->numel * sizeof(float);
        opt->m[i] = malloc(bytes);
        opt->v[i] = malloc(bytes);
        if (!opt->m[i] || !opt->v[i]) { s = vlt_error_set(VLT_ERR_NOMEM, "checkpoint: out of host memory"); break; }
        if (src_host) {
            memcpy(opt->m[i], src->m[i], bytes);
            memcpy(opt->v[i], src->v[i], bytes);
        } else {
            vlt_device_to_host(opt->m[i], src->m[i], bytes);
            vlt_device_to_host(opt->v[i], src->v[i], bytes);
        }
    }
    // each moment's parameter by identity: the optimizer holds only the trainable tensors, which
    // are not the first opt->n of the table when frozen ones (momentum copies, tied aliases, a
    // locked tower) come before some of them
    for (int i = 0; s == VLT_OK && i < opt->n; i++) {
        for (int j = 0; j < t->params->n && !opt->params[i]; j++)
            if (t->params->t[j] == src->params[i]) opt->params[i] = host->t[j];
        if (!opt->params[i])
            s = vlt_error_set(VLT_ERR_STATE, "checkpoint: optimizer tensor '%s' is not in the model's table",
                              src->params[i]->name);
    }
    if (s != VLT_OK) host_snapshot_free(host, opt);
    return s;
}

// Every rank contributes its loader position (a collective); rank 0 writes the checkpoint. A
// write that fails on rank 0 alone ends the whole job (the other ranks could not know).
// With train.zero the owners first send every parameter's moments to rank 0 (a collective), so
// the file is the same as without it.
static vlt_status save_checkpoint(vlt_trainer *t) {
    char *pos = NULL, **all = NULL;
    vlt_adamw *full = NULL;
    if (t->zero) VLT_TRY(vlt_zero_gather_optimizer(t->zero, t->opt, t->decay, &full));
    // With the feed a batch fetched ahead is not trained yet: the position before it.
    vlt_status s = t->use_feed && vlt_feed_staged(&t->feed) ? vlt_loader_position_before_json(t->loader, &pos)
                                                            : vlt_loader_position_json(t->loader, &pos);
    if (s == VLT_OK) s = vlt_dist_allgather_text(t->dist, pos, &all);
    free(pos);
    if (s != VLT_OK || t->dist->rank != 0) {
        if (all) vlt_dist_free_text(all, t->dist->world);
        vlt_zero_free_gathered(full);
        return s;
    }
    char *state = state_json(t, all);
    vlt_dist_free_text(all, t->dist->world);
    vlt_params host;
    vlt_adamw host_opt;
    bool snap = t->on_gpu && state;
    if (snap) s = host_snapshot(t, full ? full : t->opt, &host, &host_opt);
    if (s == VLT_OK)
        s = state ? vlt_checkpoint_save(t->cfg.output_dir, t->step, snap ? &host : t->params,
                                        snap ? &host_opt : full ? full : t->opt, state, t->cfg.checkpoint_keep)
                  : vlt_error_set(VLT_ERR_NOMEM, "checkpoint: cannot build state.json");
    if (snap) host_snapshot_free(&host, &host_opt);
    vlt_zero_free_gathered(full);
    free(state);
    if (s == VLT_OK && !t->opts.quiet) {
        vlt_metrics_log_break(t->mlog);   // a line of its own, not glued to a live progress line
        fprintf(t->opts.log, "checkpoint: step %lld saved\n", (long long)t->step);
    }
    if (s != VLT_OK && t->dist->world > 1) vlt_dist_abort(t->dist, 1, vlt_error_message());
    return s;
}

// save_checkpoint on every rank, remembering what the newest checkpoint holds.
static vlt_status checkpoint_now(vlt_trainer *t) {
    VLT_TRY(save_checkpoint(t));
    t->last_ck_step = t->step;
    t->dirty = false;
    return VLT_OK;
}

// --- resume: state.json is checked field by field before anything is loaded -------------------

// An integer member of state.json (exact in a double) within [lo, hi]; errors name the field.
static vlt_status state_int(const cJSON *root, const char *dir, const char *name, int64_t lo, int64_t hi,
                            const char *why, int64_t *out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!x) return vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json has no '%s'", dir, name);
    double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    if (!(v >= -9007199254740992.0 && v <= 9007199254740992.0) || v != floor(v))
        return vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json '%s' is not an integer", dir, name);
    if (v < (double)lo || v > (double)hi)
        return vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json '%s' is %.0f, outside [%lld, %lld]%s%s", dir, name, v,
                             (long long)lo, (long long)hi, why ? ": " : "", why ? why : "");
    *out = (int64_t)v;
    return VLT_OK;
}

// The tar offsets of a loader position (each reader's next sample and its buffered samples) must
// lie inside a training shard: a position past the end of every shard was not written by this run
// over these shards. (Which shard an index names depends on the epoch's shuffled order, which the
// loader checks itself when it re-reads the buffered samples.)
static vlt_status check_position_offsets(const vlt_trainer *t, const char *dir, const cJSON *pos) {
    vlt_shard_list l;
    if (vlt_shardspec_expand(t->cfg.train_shards, &l) != VLT_OK) return VLT_OK;   // the loader reports it
    uint64_t largest = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct stat st;
        if (stat(l.paths[i], &st) == 0 && (uint64_t)st.st_size > largest) largest = (uint64_t)st.st_size;
    }
    vlt_shard_list_free(&l);
    if (!largest) return VLT_OK;
    const cJSON *readers = cJSON_GetObjectItemCaseSensitive(pos, "reader"), *r;
    int ri = 0;
    cJSON_ArrayForEach(r, readers) {
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(r, "offset");
        if (cJSON_IsNumber(off) && off->valuedouble >= (double)largest && off->valuedouble > 0)
            return vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json 'loader_ranks'[%d] reader %d: offset %.0f is past "
                                 "the end of every training shard (the largest has %llu bytes)", dir, t->dist->rank, ri,
                                 off->valuedouble, (unsigned long long)largest);
        const cJSON *e;
        int bi = 0;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "buffer")) {
            const cJSON *bo = cJSON_GetArrayItem(e, 1);
            if (cJSON_IsNumber(bo) && bo->valuedouble >= (double)largest)
                return vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json 'loader_ranks'[%d] reader %d: buffered sample "
                                     "%d at offset %.0f is past the end of every training shard (the largest has %llu "
                                     "bytes)", dir, t->dist->rank, ri, bi, bo->valuedouble, (unsigned long long)largest);
            bi++;
        }
        ri++;
    }
    return VLT_OK;
}

// What a resume takes from state.json, checked.
typedef struct {
    int64_t step, epoch, nonfinite_total, nonfinite_run;
    char *loader;   // this rank's loader position (JSON text, malloc'd)
} resume_state;

// Every field of state.json against the checkpoint's own step, this run's config and world: a
// hand-edited or corrupt state is refused by field name before a weight is touched, so it can
// neither start a run at a wrong step nor lead to a checkpoint over the original.
static vlt_status check_state(const vlt_trainer *t, const char *dir, const char *text, int64_t ck_step,
                              resume_state *rs) {
    memset(rs, 0, sizeof *rs);
    cJSON *root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json is not a JSON object", dir);
    }
    int64_t v;
    vlt_status s = state_int(root, dir, "format", STATE_FORMAT, STATE_FORMAT, "this vlt reads state format 1", &v);
    // The model-defining keys first: a run of another model is told so, not that a key mismatched.
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    if (s == VLT_OK && !cJSON_IsString(cfg))
        s = vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json 'config' is missing or not a string", dir);
    if (s == VLT_OK) {
        vlt_run_config old;
        vlt_run_config_default(&old);
        char diff[1024];
        s = vlt_run_config_parse(cfg->valuestring, strlen(cfg->valuestring), "state.json 'config'", &old);
        if (s == VLT_OK && vlt_run_config_model_diff(&old, &t->cfg, diff, sizeof diff) > 0)
            s = vlt_error_set(VLT_ERR_ARG, "resume %s: the model config differs from the checkpoint's: %s", dir, diff);
    }
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(root, "config_hash");
    char want[32];
    if (s == VLT_OK) snprintf(want, sizeof want, "%016llx", (unsigned long long)vlt_rng_hash_str(cfg->valuestring));
    if (s == VLT_OK && (!cJSON_IsString(hash) || strcmp(hash->valuestring, want)))
        s = vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json 'config_hash' does not match its 'config' (edited or "
                          "corrupt)", dir);
    const cJSON *world = cJSON_GetObjectItemCaseSensitive(root, "world_size");
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(root, "loader_ranks");
    if (s == VLT_OK) s = state_int(root, dir, "world_size", 1, 1 << 20, NULL, &v);
    if (s == VLT_OK && v != t->dist->world)
        s = vlt_error_set(VLT_ERR_ARG, "resume %s: saved by %d ranks, this run has %d; resuming with another world "
                          "size is refused (each rank's data position would not carry over)", dir, world->valueint,
                          t->dist->world);
    if (s == VLT_OK && (!cJSON_IsArray(ranks) || cJSON_GetArraySize(ranks) != t->dist->world ||
                        !cJSON_IsObject(cJSON_GetArrayItem(ranks, t->dist->rank))))
        s = vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json 'loader_ranks' must be a list of %d loader positions "
                          "(objects)", dir, t->dist->world);
    char why[160];
    snprintf(why, sizeof why, "the checkpoint's files are of step %lld", (long long)ck_step);
    if (s == VLT_OK) s = state_int(root, dir, "step", ck_step, ck_step, why, &rs->step);
    if (s == VLT_OK && rs->step >= t->cfg.steps)
        s = vlt_error_set(VLT_ERR_ARG, "resume %s: the checkpoint is at step %lld, the end of schedule.steps %lld: "
                          "nothing to train (raise schedule.steps to train further)", dir, (long long)rs->step,
                          (long long)t->cfg.steps);
    if (s == VLT_OK) s = state_int(root, dir, "epoch", 0, INT64_MAX / 2, NULL, &rs->epoch);
    if (s == VLT_OK) s = state_int(root, dir, "seed", INT64_MIN / 2, INT64_MAX / 2, NULL, &v);
    if (s == VLT_OK && v != t->cfg.seed)
        s = vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json 'seed' %lld differs from the config's model.seed %lld",
                          dir, (long long)v, (long long)t->cfg.seed);
    if (s == VLT_OK)
        s = state_int(root, dir, "nonfinite_total", 0, rs->step + 1, "skipped steps are steps (and the one that stopped "
                      "a run)", &rs->nonfinite_total);
    if (s == VLT_OK)
        s = state_int(root, dir, "nonfinite_run", 0, rs->nonfinite_total, "at most nonfinite_total", &rs->nonfinite_run);
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(root, "lr");
    if (s == VLT_OK && (!cJSON_IsNumber(lr) || !isfinite(lr->valuedouble) || lr->valuedouble < 0))
        s = vlt_error_set(VLT_ERR_FORMAT, "resume %s: state.json 'lr' is missing or not a finite number >= 0", dir);
    if (s == VLT_OK) s = check_position_offsets(t, dir, cJSON_GetArrayItem(ranks, t->dist->rank));
    if (s == VLT_OK) {
        rs->loader = cJSON_PrintUnformatted(cJSON_GetArrayItem(ranks, t->dist->rank));
        if (!rs->loader) s = vlt_error_set(VLT_ERR_NOMEM, "resume: out of memory");
    }
    cJSON_Delete(root);
    return s;
}

static vlt_status restore(vlt_trainer *t, const char *which) {
    char dir[VLT_CFG_STR + 64];
    VLT_TRY(vlt_checkpoint_resolve(t->cfg.output_dir, which, dir, sizeof dir));
    char *state = NULL;
    int64_t ck_step;
    VLT_TRY(vlt_checkpoint_read_state(dir, &state, &ck_step));
    resume_state rs;
    vlt_status s = check_state(t, dir, state, ck_step, &rs);
    free(state);
    // train.zero: every rank reads the whole file and keeps the moments of its own parameters
    // (the flat partition's pieces: through an optimizer over the whole table).
    if (s == VLT_OK && t->zero && vlt_zero_is_flat(t->zero)) {
        vlt_adamw *full = vlt_adamw_new(t->opt_view.t, t->decay, t->opt_view.n, t->opt->cfg);
        s = full ? vlt_checkpoint_load(dir, t->params, full, NULL) : vlt_error_code();
        if (s == VLT_OK) s = vlt_zero_scatter_optimizer(t->zero, t->opt, full);
        vlt_adamw_free(full);
    } else if (s == VLT_OK) {
        s = t->zero ? vlt_checkpoint_load_shard(dir, t->params, t->opt, NULL) : vlt_checkpoint_load(dir, t->params, t->opt, NULL);
    }
    // AdamW counts the steps it took: every step but the skipped ones (the skipped step that
    // stopped a run is counted in nonfinite_total without advancing the step, hence the + 1).
    int64_t taken = rs.step - rs.nonfinite_total;
    if (s == VLT_OK && t->opt->t != taken && t->opt->t != taken + 1)
        s = vlt_error_set(VLT_ERR_FORMAT, "resume %s: the optimizer has taken %lld steps, but state.json says step %lld "
                          "with %lld skipped ('step' or 'nonfinite_total' is wrong)", dir, (long long)t->opt->t,
                          (long long)rs.step, (long long)rs.nonfinite_total);
    if (s == VLT_OK && (s = vlt_loader_restore_json(t->loader, rs.loader)) != VLT_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vlt_error_message());
        s = vlt_error_set(s, "resume %s: state.json 'loader_ranks'[%d]: %s", dir, t->dist->rank, msg);
    }
    free(rs.loader);
    if (s != VLT_OK) return s;
    t->step = rs.step;
    t->last_ck_step = t->step;
    t->epoch = rs.epoch;
    t->nonfinite_total = rs.nonfinite_total;
    t->nonfinite_run = (int)(rs.nonfinite_run < INT32_MAX ? rs.nonfinite_run : INT32_MAX);
    if (!t->opts.quiet && t->dist->rank == 0)
        fprintf(t->opts.log, "resumed from %s at step %lld\n", dir, (long long)t->step);
    return VLT_OK;
}

// train.device cuda: the model and the optimizer state move to the GPU after any restore (the
// checkpoint reader writes host memory) and the parameter broadcast (MPI on host buffers).
// The refusals and the choice of the GPU (before the loader when its memory is page-locked:
// cudaHostAlloc needs the device context of this rank's GPU).
static vlt_status select_gpu(vlt_trainer *t) {
    const char *why = vlt_model_gpu_unsupported(&t->model);
    if (why)
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "train.device cuda: the %s model does not train on the GPU yet (%s); "
                             "use train.device cpu", vlt_model_title(&t->model), why);
    if (t->zero && !vlt_zero_is_flat(t->zero))
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "train.device cuda: train.zero with train.zero_partition tensors moves "
                             "optimizer state over MPI on host memory; use train.zero_partition: flat on the GPU");
    // Several ranks: each takes the GPU of its local rank (unless VLT_CUDA_DEVICE says), and the
    // gradients and features go through NCCL. VLT_DIST_NCCL=1 takes the NCCL path with one rank
    // too (the one-GPU check that it computes what the plain path does).
    if (t->dist->world > 1 && !getenv("VLT_CUDA_DEVICE")) {
        char dev[16];
        snprintf(dev, sizeof dev, "%d", t->dist->local_rank);
        setenv("VLT_CUDA_DEVICE", dev, 0);
    }
    return vlt_cuda_init();
}

static vlt_status to_device(vlt_trainer *t) {
    VLT_TRY(select_gpu(t));
    const char *force = getenv("VLT_DIST_NCCL");
    bool nccl = t->dist->world > 1 || (force && !strcmp(force, "1"));
    if (nccl) {
        VLT_TRY(vlt_dist_nccl_init(t->dist));
        t->owns_nccl = true;
    }
    VLT_TRY(vlt_set_matmul_precision(!strcmp(t->cfg.precision, "bf16")   ? VLT_MATMUL_BF16
                                     : !strcmp(t->cfg.precision, "tf32") ? VLT_MATMUL_TF32
                                                                         : VLT_MATMUL_FP32));
    VLT_TRY(vlt_params_move(t->params, VLT_CUDA));
    VLT_TRY(vlt_adamw_state_to(t->opt, VLT_CPU, VLT_CUDA));
    VLT_TRY(vlt_set_default_device(VLT_CUDA));
    t->on_gpu = true;
    return VLT_OK;
}

static int cmp_slot(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const struct param_slot *)a)->t, y = (uintptr_t)((const struct param_slot *)b)->t;
    return (x > y) - (x < y);
}

// Several ranks on the CPU: the gradient average starts bucket by bucket while backward runs. The
// tape reports each parameter whose gradient is final (vlt_tape_set_grad_ready); the reducer
// starts a bucket's all-reduce once all of its parameters are in.
// On the GPU with NCCL (several ranks, or one with VLT_DIST_NCCL=1) the same reducer packs each
// bucket on the compute stream and all-reduces it on NCCL's communication stream. VLT_DIST_OVERLAP=0
// takes the reference path instead (the average after backward; f32 only).
static vlt_status make_reducer(vlt_trainer *t) {
    bool bf16 = !strcmp(t->cfg.grad_reduce_dtype, "bf16"), nccl = t->on_gpu && vlt_dist_nccl_active();
    const char *ov = getenv("VLT_DIST_OVERLAP");
    if (ov && !strcmp(ov, "0")) {
        if (bf16 && (t->dist->world > 1 || nccl))
            return vlt_error_set(VLT_ERR_ARG, "train.grad_reduce_dtype bf16 needs the overlapped reducer (VLT_DIST_OVERLAP=0 "
                                 "is set)");
        return VLT_OK;
    }
    if (t->zero || (t->dist->world == 1 && !nccl)) return VLT_OK;
    int n = t->opt_view.n;
    t->reducer = vlt_dist_reducer_new_dtype(t->dist, t->opt_view.t, n, 0, bf16);
    if (!t->reducer) return vlt_error_code();
    t->by_ptr = malloc(sizeof *t->by_ptr * (size_t)n);
    if (!t->by_ptr) return vlt_error_set(VLT_ERR_NOMEM, "trainer: out of memory for the gradient reducer");
    for (int i = 0; i < n; i++) t->by_ptr[i] = (struct param_slot){t->opt_view.t[i], i};
    qsort(t->by_ptr, (size_t)n, sizeof *t->by_ptr, cmp_slot);
    return VLT_OK;
}

static void on_grad_ready(vlt_tensor *p, void *ctx) {
    vlt_trainer *t = ctx;
    struct param_slot key = {p, 0};
    const struct param_slot *s = bsearch(&key, t->by_ptr, (size_t)t->opt_view.n, sizeof key, cmp_slot);
    if (s) vlt_dist_reducer_ready(t->reducer, s->i);
}

static void lock_towers(vlt_trainer *t) {
    if (t->cfg.lock_image) vlt_params_set_trainable(t->params, "visual.", false);
    if (t->cfg.lock_text) {
        static const char *const text[] = {"token_embedding.", "positional_embedding", "transformer.", "ln_final.",
                                           "text_projection", "text.", NULL};
        for (int i = 0; text[i]; i++) vlt_params_set_trainable(t->params, text[i], false);
    }
}

// VQA runs (model.vqa_head): the answer vocabulary. A new run takes the model.vqa_answers most
// frequent answers of data.answer_vocab, else of the answer_vocab.json that `vlt shards
// --vqa-vocab` wrote beside the first training shard (both list answers by frequency); a resumed
// run takes its own copy (RUN/answer_vocab.json), so that a changed file beside the shards cannot
// change the classes under a trained head. When there are fewer answers than asked for, the
// resolved config holds the number taken (what the head is built with, and what resume compares).
static vlt_status resolve_vocab(vlt_trainer *t) {
    if (!t->cfg.vqa_head[0]) return VLT_OK;
    char path[2 * VLT_CFG_STR + 32];
    const char *from = "data.answer_vocab";
    if (t->opts.resume) {
        snprintf(path, sizeof path, "%s/answer_vocab.json", t->cfg.output_dir);
        from = "the run's answer vocabulary";
    } else if (t->cfg.answer_vocab[0]) {
        snprintf(path, sizeof path, "%s", t->cfg.answer_vocab);
    } else {
        vlt_shard_list l;
        VLT_TRY(vlt_shardspec_expand(t->cfg.train_shards, &l));
        const char *first = l.n ? l.paths[0] : "", *slash = strrchr(first, '/');
        snprintf(path, sizeof path, "%.*s%sanswer_vocab.json", slash ? (int)(slash - first) : 0, first, slash ? "/" : "");
        vlt_shard_list_free(&l);
        from = "data.answer_vocab is not set; the file beside the first training shard";
    }
    if (vlt_vqa_vocab_load(path, &t->vocab) != VLT_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vlt_error_message());
        return vlt_error_set(VLT_ERR_ARG, "model.vqa_head %s needs an answer vocabulary (%s: %s): write one with vlt "
                             "shards --vqa-vocab N, or name it in data.answer_vocab", t->cfg.vqa_head, from, msg);
    }
    if (t->vocab.n == 0) return vlt_error_set(VLT_ERR_ARG, "answer vocabulary %s: no answers", path);
    while (t->vocab.n > t->cfg.vqa_answers) free(t->vocab.answers[--t->vocab.n]);
    t->cfg.vqa_answers = t->vocab.n;
    return VLT_OK;
}

// model.init_from: strict, except that the parameters a kind adds to its base model (the VQA
// head on CLIP weights: vlt_model_fresh_prefix) may be missing from the file and keep their
// initialization. Anything else missing, unexpected or mis-shaped is refused, naming it.
static vlt_status load_init_weights(vlt_trainer *t) {
    if (vlt_model_has_init_loader(&t->model)) return vlt_model_load_init(&t->model, t->cfg.init_from);   // ALBEF VQA
    const char *fresh = vlt_model_fresh_prefix(&t->model);
    vlt_st_report rep;
    vlt_status s = vlt_safetensors_load_params(t->cfg.init_from, t->params, fresh != NULL, &rep);
    if (s == VLT_OK && fresh) {
        bool bad = rep.n_unexpected || rep.n_misshaped;
        for (int i = 0; i < rep.n_missing; i++) bad |= strncmp(rep.missing[i], fresh, strlen(fresh)) != 0;
        if (bad) {
            char buf[2048];
            s = vlt_error_set(VLT_ERR_FORMAT, "model.init_from %s: %s (only the %s parameters of the %s model may be missing)",
                              t->cfg.init_from, vlt_st_report_format(&rep, buf, sizeof buf), fresh,
                              vlt_model_title(&t->model));
        }
    }
    vlt_st_report_free(&rep);
    return s;
}

// The tensors of the model's table that have a gradient: what the optimizer and the gradient
// reduction walk (every tensor for CLIP and CoCa; ALBEF's momentum copies, queues and buffers
// are state, not parameters).
static vlt_status make_opt_view(vlt_trainer *t) {
    vlt_params_init(&t->opt_view);
    t->opt_view.t = malloc(sizeof *t->opt_view.t * (size_t)(t->params->n ? t->params->n : 1));
    if (!t->opt_view.t) return vlt_error_set(VLT_ERR_NOMEM, "trainer: out of memory");
    for (int i = 0; i < t->params->n; i++)
        if (t->params->t[i]->grad) t->opt_view.t[t->opt_view.n++] = t->params->t[i];
    t->opt_view.cap = t->opt_view.n;
    return VLT_OK;
}

static vlt_status feed_setup(vlt_trainer *t);

vlt_status vlt_trainer_create(const vlt_run_config *cfg, const vlt_trainer_opts *opts, vlt_trainer **out) {
    *out = NULL;
    VLT_TRY(vlt_run_config_validate(cfg));
    vlt_trainer *t = calloc(1, sizeof *t);
    if (!t) return vlt_error_set(VLT_ERR_NOMEM, "trainer: out of memory");
    t->cfg = *cfg;
    if (opts) t->opts = *opts;
    if (!t->opts.log) t->opts.log = stdout;
    vlt_dist_init_single(&t->single);
    t->dist = t->opts.dist ? t->opts.dist : &t->single;
    t->last_ck_step = -1;
    t->lock_fd = -1;
    if (t->opts.resume && t->opts.overwrite) {
        free(t);
        return vlt_error_set(VLT_ERR_ARG, "--resume and --overwrite exclude each other (continue the run, or start over)");
    }
    vlt_status s = resolve_vocab(t);
    if (s == VLT_OK) s = vlt_run_config_model_cfg(&t->cfg, &t->mcfg);
    if (s == VLT_OK && (s = vlt_model_create(&t->model, &t->mcfg, (uint64_t)cfg->seed)) == VLT_OK)
        t->params = t->model.params;
    // a kind that ranks a candidate list (ALBEF VQA) ranks the run's answer vocabulary
    if (s == VLT_OK && t->vocab.n) s = vlt_model_set_answers(&t->model, (const char *const *)t->vocab.answers, t->vocab.n);
    if (s == VLT_OK) s = make_opt_view(t);
    if (s == VLT_OK && cfg->init_from[0] && !(opts && opts->resume)) s = load_init_weights(t);
    if (s == VLT_OK) s = vlt_dist_broadcast_params(t->dist, t->params);  // every rank starts from rank 0's weights
    if (s == VLT_OK) {
        lock_towers(t);
        t->decay = malloc((size_t)t->opt_view.n);
        vlt_clip_decay_mask(&t->opt_view, t->decay);
        vlt_adamw_cfg ac = {(float)cfg->beta1, (float)cfg->beta2, (float)cfg->eps, (float)cfg->weight_decay};
        if (cfg->zero) {
            // ZeRO-1: this rank's AdamW holds the moments of the parameters it owns only.
            // (flat: one contiguous range of the flat trainable values per rank, split inside tensors)
            t->zero = !strcmp(cfg->zero_partition, "flat") ? vlt_zero_new_flat(t->dist, t->opt_view.t, t->opt_view.n)
                                                           : vlt_zero_new(t->dist, t->opt_view.t, t->opt_view.n, 0);
            t->opt = t->zero ? vlt_zero_adamw_new(t->zero, t->decay, ac) : NULL;
        } else {
            t->opt = vlt_adamw_new(t->opt_view.t, t->decay, t->opt_view.n, ac);
        }
        if (!t->opt) s = vlt_error_code();
    }
    if (s == VLT_OK) s = vlt_tokenizer_load(NULL, &t->tok);
    const char *u8 = getenv("VLT_TRAIN_U8_FEED"), *sync = getenv("VLT_TRAIN_SYNC_FEED");
    t->u8_feed = !strcmp(cfg->device, "cuda") || (u8 && !strcmp(u8, "1"));
    t->use_feed = t->u8_feed && !(sync && !strcmp(sync, "1"));
    if (s == VLT_OK && t->use_feed && !strcmp(cfg->device, "cuda")) s = select_gpu(t);
    if (s == VLT_OK) s = create_loader(t, &t->loader);
    if (s == VLT_OK) {
        int B = cfg->batch_size, S = t->mcfg.vision.image_size, T = t->mcfg.text.context_length;
        // (with the feed the pixels go straight from the loader's memory into its slots)
        if (t->u8_feed && !t->use_feed) t->images_u8 = vlt_tensor_new(VLT_U8, VLT_CPU, 4, VLT_SHAPE(B, 3, S, S), "images_u8");
        else if (!t->u8_feed) t->images = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(B, 3, S, S), "images");
        t->ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, T), "ids");
        if (vlt_model_has_tokenizer(&t->model) && !(t->atts = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, T), "text_atts"))) s = vlt_error_code();
        if (t->vocab.n) t->answer_scores = vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(B, t->vocab.n), "answer_scores");
        if (!(t->images || t->images_u8 || t->use_feed) || !t->ids || (t->vocab.n && !t->answer_scores)) s = vlt_error_code();
    }
    if (s == VLT_OK) {
        t->sched.kind = !strcmp(cfg->schedule, "const") ? VLT_SCHED_CONST
                        : !strcmp(cfg->schedule, "const-cooldown") ? VLT_SCHED_CONST_COOLDOWN : VLT_SCHED_COSINE;
        t->sched.lr = cfg->lr;
        t->sched.lr_min = cfg->lr_min;
        t->sched.steps = cfg->steps;
        t->sched.warmup = cfg->warmup;
        t->sched.cooldown = cfg->cooldown;
        s = vlt_make_dirs(cfg->output_dir, 0777);
    }
    // Rank 0 writes the run directory (other ranks only read a checkpoint); it claims it before
    // anything is read from or written to it.
    if (s == VLT_OK && t->dist->rank == 0) s = claim_run_dir(t);
    if (s == VLT_OK && t->dist->rank == 0 && t->vocab.n) {
        char vp[VLT_CFG_STR + 32];
        snprintf(vp, sizeof vp, "%s/answer_vocab.json", cfg->output_dir);
        s = vlt_vqa_vocab_save(&t->vocab, vp);   // the run's own copy (also in each checkpoint's state.json)
    }
    if (s == VLT_OK && opts && opts->resume) s = restore(t, opts->resume);
    if (s == VLT_OK && !strcmp(cfg->device, "cuda")) s = to_device(t);
    if (s == VLT_OK && t->use_feed) s = feed_setup(t);
    if (s == VLT_OK) s = make_reducer(t);
    if (s == VLT_OK && t->dist->rank == 0) s = write_config(t);
    if (s == VLT_OK && t->dist->rank == 0) {
        if (t->last_ck_step >= 0) {
            // Resumed: the stopped run's steps past the checkpoint are no longer history.
            int64_t dropped = 0;
            s = vlt_metrics_log_open_resumed(&t->mlog, cfg->output_dir, cfg->steps, cfg->tensorboard, t->step, &dropped);
            if (s == VLT_OK && dropped && !t->opts.quiet)
                fprintf(t->opts.log, "metrics.jsonl: dropped %lld line%s past step %lld (logged after that checkpoint)\n",
                        (long long)dropped, dropped > 1 ? "s" : "", (long long)t->step);
        } else {
            s = vlt_metrics_log_open(&t->mlog, cfg->output_dir, cfg->steps, cfg->tensorboard);
        }
    }
    if (s == VLT_OK && t->mlog)
        vlt_metrics_log_set_console(t->mlog, t->opts.log, t->opts.quiet ? VLT_CONSOLE_OFF : VLT_CONSOLE_AUTO,
                                    cfg->log_every);
    if (s != VLT_OK) {
        vlt_status keep = s;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vlt_error_message());
        vlt_trainer_free(t);
        return vlt_error_set(keep, "%s", msg);
    }
    // Fault injection for tests: VLT_TRAIN_NAN_STEPS=a-b puts a NaN into the batch of steps a..b.
    const char *nan = getenv("VLT_TRAIN_NAN_STEPS");
    long long a = -1, b = -1;
    if (nan && sscanf(nan, "%lld-%lld", &a, &b) == 2) { t->nan_from = a; t->nan_to = b; }
    else t->nan_from = t->nan_to = -1;
    t->t_start = t->t_last_log = now_s();
    *out = t;
    return VLT_OK;
}

// Next training batch into the persistent buffers; an epoch end moves to the next epoch.
static vlt_status next_batch(vlt_trainer *t) {
    const vlt_batch *b = NULL;
    for (int tries = 0; tries < 2; tries++) {
        VLT_TRY(vlt_loader_next(t->loader, &b));
        if (b) break;
        // (an epoch ended: the loader prints its data totals itself)
    }
    if (!b) return vlt_error_set(VLT_ERR_STATE, "trainer: the training shards gave no full batch in an epoch");
    t->fetched_epoch = b->epoch;
    t->fetched_index = b->index;
    size_t S = (size_t)b->image_size;
    if (b->images_u8) {
        if (t->use_feed) VLT_TRY(vlt_feed_upload(&t->feed, b->images_u8, (size_t)b->n * 3 * S * S));
        else memcpy(t->images_u8->data, b->images_u8, (size_t)b->n * 3 * S * S);
        memcpy(t->norm_mean, b->mean, sizeof t->norm_mean);
        memcpy(t->norm_std, b->std, sizeof t->norm_std);
    } else {
        memcpy(t->images->data, b->images, (size_t)b->n * 3 * S * S * sizeof(float));
    }
    memcpy(t->ids->data, b->tokens, (size_t)b->n * (size_t)b->context_len * sizeof(int32_t));
    for (int i = 0; t->atts && i < b->n; i++) {   // the kind's own tokenizer (ALBEF's BERT WordPiece)
        size_t T = (size_t)b->context_len;
        if (vlt_model_tokenize(&t->model, b->captions[i], vlt_i32(t->ids) + i * T, vlt_i32(t->atts) + i * T, (int)T) < 0)
            return vlt_error_code();
    }
    t->batch_json = b->json;
    if (t->answer_scores) memcpy(t->answer_scores->data, b->answer_scores, sizeof(float) * (size_t)b->n * t->vocab.n);
    return VLT_OK;
}

// The feed's next batch (train/feed.h): the last upload's host memory goes back to the loader
// (once its copy is done) and the next batch's copy is queued.
static vlt_status fetch_ahead(vlt_trainer *t) {
    vlt_feed_release(&t->feed);
    return next_batch(t);
}

// The feed's oldest batch for this step: the compute stream waits for its copy, normalises it,
// and the slot is handed back for the copy after next.
static vlt_status feed_images(vlt_trainer *t, vlt_tensor **images) {
    void *dev;
    int slot;
    VLT_TRY(vlt_feed_take(&t->feed, &dev, &slot));
    *images = vlt_normalize_u8(t->feed_slot[slot], t->norm_mean, t->norm_std);
    if (!*images) return vlt_error_code();
    return vlt_feed_consumed(&t->feed, slot);
}

static vlt_status feed_setup(vlt_trainer *t) {
    vlt_device dev = t->on_gpu ? VLT_CUDA : VLT_CPU;
    int B = t->cfg.batch_size, S = t->mcfg.vision.image_size;
    void *buf[VLT_FEED_SLOTS];
    for (int k = 0; k < VLT_FEED_SLOTS; k++) {
        t->feed_slot[k] = vlt_tensor_new(VLT_U8, dev, 4, VLT_SHAPE(B, 3, S, S), "images_u8");
        if (!t->feed_slot[k]) return vlt_error_code();
        buf[k] = t->feed_slot[k]->data;
    }
    // The slots were zeroed on the compute stream; the side stream's first copy must not race it.
    if (t->on_gpu) vlt_device_synchronize();
    vlt_feed_backend be;
#ifdef VLT_HAVE_CUDA
    if (t->on_gpu) {
        t->feed_cuda = vlt_feed_cuda_create(&be);
        if (!t->feed_cuda) return vlt_error_code();
    } else
#endif
        vlt_feed_host_backend(&be, &t->feed_host);
    vlt_feed_init(&t->feed, &be, buf, (size_t)t->feed_slot[0]->numel);
    return VLT_OK;
}

// The uint8 feed: on the GPU the batch's pixels go to the device and the float images are made
// there (an activation of this step, the float loader's values bit for bit); on the CPU (the
// test route) they are made from the host pixels.
static vlt_status u8_images(vlt_trainer *t, vlt_tensor **images) {
    if (!t->on_gpu) {
        *images = vlt_normalize_u8(t->images_u8, t->norm_mean, t->norm_std);
        return *images ? VLT_OK : vlt_error_code();
    }
    if (!t->images_u8_dev) {
        t->images_u8_dev = vlt_tensor_new(VLT_U8, VLT_CUDA, 4, t->images_u8->shape, "images_u8");
        if (!t->images_u8_dev) return vlt_error_code();
    }
    VLT_TRY(vlt_tensor_copy(t->images_u8_dev, t->images_u8));
    *images = vlt_normalize_u8(t->images_u8_dev, t->norm_mean, t->norm_std);
    return *images ? VLT_OK : vlt_error_code();
}

static void record_loss(vlt_trainer *t, float loss) {
    if (t->n_losses == t->cap_losses) {
        t->cap_losses = t->cap_losses ? 2 * t->cap_losses : 1024;
        t->losses = realloc(t->losses, (size_t)t->cap_losses * sizeof(float));
    }
    t->losses[t->n_losses++] = loss;
}

// Caption targets of this rank's batch that count (not pad): ids[:, 1:] != pad_id.
static vlt_tensor *dist_contrastive(void *ctx, vlt_tensor *img, vlt_tensor *txt, vlt_tensor *logit_scale,
                                    vlt_tensor *logit_bias) {
    return vlt_dist_clip_loss((const vlt_dist *)ctx, img, txt, logit_scale, logit_bias, NULL);
}

static vlt_tensor *dist_all_gather(void *ctx, vlt_tensor *x) { return vlt_dist_all_gather((const vlt_dist *)ctx, x); }

// One optimizer step. *stop is set when the run must end (too many non-finite steps).
static vlt_status train_step(vlt_trainer *t, bool *stop) {
    vlt_params *P = &t->opt_view;
    vlt_zero_grad(P->t, P->n);
    double loss_sum = 0, parts_sum[VLT_LOSS_PARTS_MAX] = {0}, metrics_sum[VLT_LOSS_PARTS_MAX] = {0};
    for (int a = 0; a < t->cfg.accum_steps; a++) {
        double t0 = now_s();
        if (!t->use_feed) VLT_TRY(next_batch(t));
        else if (!vlt_feed_staged(&t->feed)) VLT_TRY(fetch_ahead(t));   // the first step (or after a resume)
        t->epoch = t->fetched_epoch;
        t->batch_index = t->fetched_index;
        t->t_data += now_s() - t0;
        vlt_tensor *images = t->images;
        if (t->use_feed) VLT_TRY(feed_images(t, &images));
        else if (t->images_u8) VLT_TRY(u8_images(t, &images));
        if (t->step >= t->nan_from && t->step <= t->nan_to) {
            if (images->device == VLT_CPU) vlt_f32(images)[0] = NAN;
            else vlt_tensor_set_item(images, 0, NAN);
        }
        vlt_model_batch batch = {0};
        VLT_TRY(vlt_model_batch_set(&batch, VLT_FIELD_IMAGES, images));
        VLT_TRY(vlt_model_batch_set(&batch, VLT_FIELD_TEXT_IDS, t->ids));
        if (t->atts) VLT_TRY(vlt_model_batch_set(&batch, VLT_FIELD_TEXT_ATTS, t->atts));
        if (t->answer_scores) {   // VQA shards: the text is the question
            VLT_TRY(vlt_model_batch_set(&batch, VLT_FIELD_QUESTION_IDS, t->ids));
            VLT_TRY(vlt_model_batch_set(&batch, VLT_FIELD_ANSWER_SCORES, t->answer_scores));
        }
        VLT_TRY(vlt_model_answer_fields(&t->model, t->batch_json, images->shape[0], &batch));
        // the run config's loss section, by name: each model kind reads the weights it has
        vlt_loss_opts lo = vlt_loss_opts_default();
        VLT_TRY(vlt_loss_opts_set(&lo, "clip_weight", (float)t->cfg.clip_loss_weight));
        VLT_TRY(vlt_loss_opts_set(&lo, "caption_weight", (float)t->cfg.caption_loss_weight));
        VLT_TRY(vlt_loss_opts_set(&lo, "label_smoothing", (float)t->cfg.label_smoothing));
        // progress, for a kind's draws and ramps (ALBEF): the step, and the epochs done when the
        // epoch's length is known (data.samples_per_epoch; else a kind takes the whole epoch as done)
        VLT_TRY(vlt_loss_opts_set(&lo, "step", (float)(t->step * t->cfg.accum_steps + a)));
        if (t->cfg.samples_per_epoch > 0)
            VLT_TRY(vlt_loss_opts_set(&lo, "epoch_progress",
                                      (float)t->epoch + (float)((double)t->batch_index * t->cfg.batch_size /
                                                                (double)t->cfg.samples_per_epoch)));
        if (t->dist->world > 1 || (t->on_gpu && vlt_dist_nccl_active())) {
            // The global batch: the contrastive loss over all ranks' features (this rank's rows),
            // and token-mean losses (CoCa's captions) weighted by this rank's share of the counted
            // tokens, so that the average over ranks is the one-process mean.
            lo.contrastive = dist_contrastive;
            lo.contrastive_ctx = (void *)t->dist;
            lo.all_gather = dist_all_gather;
            lo.all_gather_ctx = (void *)t->dist;
        }
        lo.rank = t->dist->rank;
        if (t->dist->world > 1) {
            double counts[1] = {(double)vlt_model_loss_tokens(&t->model, &batch)};
            double local = counts[0];
            VLT_TRY(vlt_dist_sum(t->dist, counts, 1));
            lo.token_loss_scale = counts[0] > 0 ? (float)(local * t->dist->world / counts[0]) : 1.0f;
        }
        vlt_model_loss out;
        VLT_TRY(vlt_model_loss_forward(&t->model, &batch, &lo, &out));
        t->n_loss_parts = out.n_parts;
        for (int k = 0; k < out.n_parts; k++) t->loss_part_names[k] = out.part_names[k];
        vlt_tensor *total = out.loss;
        for (int k = 0; k < out.n_parts; k++) parts_sum[k] += vlt_tensor_item(out.parts[k], 0);
        t->n_loss_metrics = out.n_metrics;
        for (int k = 0; k < out.n_metrics; k++) {
            t->loss_metric_names[k] = out.metric_names[k];
            metrics_sum[k] += out.metrics[k];
        }
        vlt_tensor *loss = t->cfg.accum_steps > 1 ? vlt_scale(total, 1.0f / t->cfg.accum_steps) : total;
        loss_sum += vlt_tensor_item(total, 0);
        // The last micro-batch's backward finishes the gradients: report them as they are done.
        bool overlap = t->reducer && a == t->cfg.accum_steps - 1;
        if (overlap) vlt_tape_set_grad_ready(on_grad_ready, t);
        vlt_status bs = vlt_backward(loss);
        if (overlap) vlt_tape_set_grad_ready(NULL, NULL);
        VLT_TRY(bs);
        if (t->use_feed) {
            // The next batch while the device runs this backward: the host side of this batch
            // (ids, captions, json) is no longer read, and its pixels were normalised.
            double t1 = now_s();
            VLT_TRY(fetch_ahead(t));
            t->t_data += now_s() - t1;
        }
        vlt_step_reset();
        t->images_since_log += t->cfg.batch_size;
    }
    // Average the gradients over ranks; every rank then clips and steps identically. With
    // train.zero each gradient's average goes to its owner only, which clips it by the global
    // norm (the same on every rank) and steps it.
    float max_norm = t->cfg.grad_clip > 0 ? (float)t->cfg.grad_clip : 0.0f;
    if (t->zero) VLT_TRY(vlt_zero_reduce_grads(t->zero));
    else if (t->reducer) VLT_TRY(vlt_dist_reducer_finish(t->reducer));  // equals vlt_dist_allreduce_grads
    else VLT_TRY(vlt_dist_allreduce_grads(t->dist, P->t, P->n, 0));
    float loss = (float)vlt_dist_mean(t->dist, loss_sum / t->cfg.accum_steps);
    for (int k = 0; k < t->n_loss_parts; k++) parts_sum[k] = vlt_dist_mean(t->dist, parts_sum[k]);
    for (int k = 0; k < t->n_loss_metrics; k++) metrics_sum[k] = vlt_dist_mean(t->dist, metrics_sum[k]);
    float norm = t->zero ? vlt_zero_clip_grad_norm(t->zero, max_norm) : vlt_clip_grad_norm(P->t, P->n, max_norm);
    if (!isfinite(loss) || !isfinite(norm)) {
        t->nonfinite_run++;
        t->nonfinite_total++;
        record_loss(t, NAN);
        if (t->dist->rank == 0) {
            vlt_metrics_log_break(t->mlog);   // not glued onto a live progress line
            fprintf(stderr, "vlt train: step %lld: non-finite %s (loss %g, grad norm %g); step skipped (%d in a row)\n",
                (long long)t->step, isfinite(loss) ? "gradient" : "loss", loss, norm, t->nonfinite_run);
        }
        if (t->nonfinite_run >= t->cfg.max_nonfinite) {
            *stop = true;
            // The parameters are still the last good ones. When no good step was taken since the
            // newest checkpoint, that checkpoint is the last good state: it is left as it is.
            char where[1200];
            if (!t->dirty && t->last_ck_step >= 0) {
                snprintf(where, sizeof where, "the last good state is checkpoint step %lld ('latest')",
                         (long long)t->last_ck_step);
            } else if (checkpoint_now(t) == VLT_OK) {
                snprintf(where, sizeof where, "the last good state is checkpointed as step %lld", (long long)t->step);
            } else {
                snprintf(where, sizeof where, "the last good state could NOT be checkpointed (%s)", vlt_error_message());
            }
            vlt_error_set(VLT_ERR_STATE, "training stopped: %d non-finite steps in a row at step %lld; %s",
                          t->nonfinite_run, (long long)t->step, where);
            return VLT_ERR_STATE;
        }
        t->step++;
        return VLT_OK;
    }
    t->nonfinite_run = 0;
    double lr = vlt_schedule_lr(&t->sched, t->step);
    vlt_adamw_step(t->opt, (float)lr);
    t->dirty = true;
    if (t->zero) VLT_TRY(vlt_zero_gather_params(t->zero));   // owners' new values to every rank
    vlt_model_after_step(&t->model);
    record_loss(t, loss);
    t->step++;
    if (t->mlog && (t->step % t->cfg.log_every == 0 || t->step == t->cfg.steps)) {
        double now = now_s(), dt = now - t->t_last_log;
        vlt_step_metrics m = {
            .step = t->step,
            .epoch = (double)t->epoch,
            .loss = loss,
            .lr = lr,
            .logit_scale = expf(vlt_tensor_item(t->model.logit_scale, 0)),
            .images_per_s = dt > 0 ? t->images_since_log * t->dist->world / dt : 0,
            .data_wait = dt > 0 ? t->t_data / dt : 0,
            .time_s = now - t->t_start,
        };
        m.n_parts = t->n_loss_parts;  // the model's named loss parts (CoCa: contrastive, caption)
        for (int k = 0; k < t->n_loss_parts; k++)
            m.parts[k] = (vlt_named_scalar){t->loss_part_names[k], parts_sum[k] / t->cfg.accum_steps};
        static char metric_names[VLT_LOSS_PARTS_MAX][VLT_METRICS_MAX_NAME];
        for (int k = 0; k < t->n_loss_metrics && m.n_extra < VLT_METRICS_MAX_EXTRA; k++) {
            snprintf(metric_names[k], VLT_METRICS_MAX_NAME, "train/%s", t->loss_metric_names[k]);
            m.extra[m.n_extra++] = (vlt_named_scalar){metric_names[k], metrics_sum[k] / t->cfg.accum_steps};
        }
        vlt_status s = vlt_metrics_log_step(t->mlog, &m);
        t->t_last_log = now;
        t->t_data = 0;
        t->images_since_log = 0;
        if (s != VLT_OK) return s;
    }
    return VLT_OK;
}

vlt_status vlt_trainer_eval(vlt_trainer *t, double i2t[3], double t2i[3], int *n_pairs) {
    if (!t->cfg.val_shards[0]) return vlt_error_set(VLT_ERR_ARG, "eval: data.val (the held-out shards) is not set");
    vlt_embedded_pairs p;
    VLT_TRY(vlt_embed_pairs(&t->model, t->tok, t->cfg.val_shards, t->cfg.batch_size, t->cfg.val_samples, &p));
    vlt_eval_retrieval_result r;
    vlt_status s = vlt_eval_pairs_retrieval(&p, &r);
    if (s == VLT_OK) {
        for (int k = 0; k < 3; k++) { i2t[k] = r.i2t.recall[k]; t2i[k] = r.t2i.recall[k]; }
        *n_pairs = p.n;
    }
    t->has_rerank = false;
    if (s == VLT_OK && vlt_model_can(&t->model, VLT_CAP_MATCH)) {
        // ALBEF's protocol: the features' top k re-scored by the matching head
        // and the head's accuracy on true against other captions (chance 0.5)
        vlt_no_grad_enter();
        s = vlt_eval_pairs_rerank(&t->model, &p, VLT_TRAIN_RERANK_K, t->cfg.batch_size, &r);
        if (s == VLT_OK) s = vlt_eval_pairs_match_accuracy(&t->model, &p, t->cfg.batch_size, &t->match_acc, &t->match_n, NULL);
        vlt_no_grad_exit();
        for (int k = 0; s == VLT_OK && k < 3; k++) { t->rerank_i2t[k] = r.i2t.recall[k]; t->rerank_t2i[k] = r.t2i.recall[k]; }
        t->has_rerank = s == VLT_OK;
    }
    vlt_embedded_pairs_free(&p);
    return s;
}

bool vlt_trainer_eval_rerank(const vlt_trainer *t, double i2t[3], double t2i[3]) {
    for (int k = 0; t->has_rerank && k < 3; k++) { i2t[k] = t->rerank_i2t[k]; t2i[k] = t->rerank_t2i[k]; }
    return t->has_rerank;
}

bool vlt_trainer_eval_match_accuracy(const vlt_trainer *t, double *acc, int *n) {
    *acc = t->has_rerank ? t->match_acc : 0;
    *n = t->has_rerank ? t->match_n : 0;
    return t->has_rerank;
}

vlt_status vlt_trainer_eval_captions(vlt_trainer *t, int n_images, double *bleu4, double *cider, FILE *show,
                                     int n_show) {
    if (!t->cfg.val_shards[0]) return vlt_error_set(VLT_ERR_ARG, "caption eval: data.val is not set");
    vlt_caption_eval e;
    VLT_TRY(vlt_eval_captions_on_shards(&t->model, t->tok, t->cfg.val_shards, t->cfg.batch_size, n_images, &e));
    for (int i = 0; show && i < e.n && i < n_show; i++)
        fprintf(show, "  generated: %-60s true: %.*s\n", e.generated[i], (int)strcspn(e.reference[i], "\n"),
                e.reference[i]);   // the first reference
    *bleu4 = e.bleu[3];
    *cider = e.cider;
    vlt_caption_eval_free(&e);
    return VLT_OK;
}

vlt_status vlt_trainer_eval_vqa(vlt_trainer *t, vlt_eval_vqa_result *r) {
    memset(r, 0, sizeof *r);
    if (!t->cfg.val_shards[0]) return vlt_error_set(VLT_ERR_ARG, "VQA eval: data.val (the held-out shards) is not set");
    vlt_vqa_predictions p;
    VLT_TRY(vlt_vqa_predict(&t->model, t->tok, t->cfg.val_shards, t->cfg.batch_size, t->cfg.val_samples, &t->vocab, &p));
    vlt_status s = vlt_vqa_score(&p, VLT_EVAL_VQA_CURRENT, r);
    vlt_vqa_predictions_free(&p);
    return s;
}

// VQA: the official accuracy on data.val, overall and per answer type ("yes/no" -> val/vqa_yes_no).
static vlt_status eval_vqa_metrics(vlt_trainer *t, vlt_step_metrics *m) {
    vlt_eval_vqa_result r;
    VLT_TRY(vlt_trainer_eval_vqa(t, &r));
    static char names[VLT_METRICS_MAX_EXTRA][VLT_METRICS_MAX_NAME];
    m->extra[m->n_extra++] = (vlt_named_scalar){"val/vqa_accuracy", 100 * r.accuracy};
    for (int k = 0; k < r.n_types && m->n_extra < VLT_METRICS_MAX_EXTRA; k++) {
        char *n = names[m->n_extra];
        snprintf(n, VLT_METRICS_MAX_NAME, "val/vqa_%s", r.types[k].name);
        for (char *c = n + 4; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) *c = '_';
        m->extra[m->n_extra++] = (vlt_named_scalar){n, 100 * r.types[k].accuracy};
    }
    vlt_eval_vqa_result_free(&r);
    return VLT_OK;
}

static vlt_status maybe_eval(vlt_trainer *t) {
    // Rank 0 evaluates; the others wait at their next collective (within VLT_DIST_TIMEOUT).
    if (t->cfg.eval_every <= 0 || !t->cfg.val_shards[0] || t->step % t->cfg.eval_every || t->dist->rank) return VLT_OK;
    if (!vlt_model_can(&t->model, VLT_CAP_EMBED)) {
        vlt_step_metrics m = {.step = t->step, .epoch = (double)t->epoch, .time_s = now_s() - t->t_start, .extras_only = true};
        if (vlt_model_can(&t->model, VLT_CAP_ANSWER)) VLT_TRY(eval_vqa_metrics(t, &m));
        return m.n_extra ? vlt_metrics_log_step(t->mlog, &m) : VLT_OK;
    }
    double i2t[3], t2i[3];
    int n;
    VLT_TRY(vlt_trainer_eval(t, i2t, t2i, &n));
    const char *names[6] = {"val/i2t_R@1", "val/i2t_R@5", "val/i2t_R@10", "val/t2i_R@1", "val/t2i_R@5", "val/t2i_R@10"};
    vlt_step_metrics m = {.step = t->step, .epoch = (double)t->epoch, .time_s = now_s() - t->t_start,
                          .n_extra = 6, .extras_only = true};
    for (int k = 0; k < 6; k++) m.extra[k] = (vlt_named_scalar){names[k], 100 * (k < 3 ? i2t[k] : t2i[k - 3])};
    if (t->has_rerank) {
        static const char *const rn[6] = {"val/itm_i2t_R@1", "val/itm_i2t_R@5", "val/itm_i2t_R@10",
                                          "val/itm_t2i_R@1", "val/itm_t2i_R@5", "val/itm_t2i_R@10"};
        for (int k = 0; k < 3; k++) {
            m.extra[m.n_extra++] = (vlt_named_scalar){rn[k], 100 * t->rerank_i2t[k]};
            m.extra[m.n_extra++] = (vlt_named_scalar){rn[k + 3], 100 * t->rerank_t2i[k]};
        }
        m.extra[m.n_extra++] = (vlt_named_scalar){"val/itm_pair_acc", 100 * t->match_acc};
    }
    if (vlt_model_can(&t->model, VLT_CAP_CAPTION)) {
        double bleu4, cider;
        VLT_TRY(vlt_trainer_eval_captions(t, 100, &bleu4, &cider, NULL, 0));
        m.extra[m.n_extra++] = (vlt_named_scalar){"val/bleu4", 100 * bleu4};
        m.extra[m.n_extra++] = (vlt_named_scalar){"val/cider", 100 * cider};
    }
    return vlt_metrics_log_step(t->mlog, &m);
}

// --- stopping on a signal ----------------------------------------------------------------------
// The handler only records the signal; the loop looks at it between steps. A second signal takes
// the default action at once (the process ends by that signal, nothing more is written).

static volatile sig_atomic_t g_stop_signal;
static int g_extra_signal;   // train.stop_signal's number (0: none)

static void on_stop_signal(int sig) {
    if (g_stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_stop_signal = sig;
    static const char msg[] = "\nvlt train: stop requested: finishing this step and writing a checkpoint "
                              "(send the signal again to stop at once)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

vlt_status vlt_trainer_catch_signals(const char *extra) {
    int sigs[3] = {SIGINT, SIGTERM, 0};
    if (extra && *extra) {
        const char *name = strncmp(extra, "SIG", 3) ? extra : extra + 3;
        if (!strcmp(name, "USR1")) sigs[2] = SIGUSR1;
        else if (!strcmp(name, "USR2")) sigs[2] = SIGUSR2;
        else return vlt_error_set(VLT_ERR_ARG, "train.stop_signal '%s' is not USR1 or USR2", extra);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    // The stop signals are blocked while the handler runs: of two that arrive together, the
    // second always finds the first one's mark and ends the process.
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        if (sigs[i]) sigaddset(&sa.sa_mask, sigs[i]);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < 3; i++)
        if (sigs[i] && sigaction(sigs[i], &sa, NULL))
            return vlt_error_set(VLT_ERR_STATE, "cannot catch signal %d: %s", sigs[i], strerror(errno));
    g_stop_signal = 0;
    g_extra_signal = sigs[2];
    return VLT_OK;
}

void vlt_trainer_release_signals(void) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (g_extra_signal) signal(g_extra_signal, SIG_DFL);
}

int vlt_trainer_stopped_by(const vlt_trainer *t) { return t->stopped_by; }

// Whether any rank was asked to stop: one tiny all-reduce per step, so that all ranks stop after
// the same step (a signal reaches the ranks at different moments, or only some of them).
static vlt_status stop_requested(vlt_trainer *t, bool *stop) {
    double x[2] = {g_stop_signal != 0, (double)g_stop_signal};
    if (t->dist->world > 1) VLT_TRY(vlt_dist_sum(t->dist, x, 2));
    *stop = x[0] > 0;
    if (*stop) t->stopped_by = g_stop_signal ? (int)g_stop_signal : (int)(x[1] / x[0]);
    return VLT_OK;
}

static const char *signal_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : sig == SIGUSR2 ? "SIGUSR2"
                                                                                                               : "a signal";
}

// After a stop request: the finished step is checkpointed (unless the newest checkpoint holds it).
static vlt_status stop_now(vlt_trainer *t) {
    if (t->dirty || t->last_ck_step < 0) VLT_TRY(checkpoint_now(t));
    vlt_error_set(VLT_ERR_STATE, "stopped by %s after step %lld of %lld: checkpoint step %lld is 'latest'; continue "
                  "with --resume latest", signal_name(t->stopped_by), (long long)t->step, (long long)t->cfg.steps,
                  (long long)t->last_ck_step);
    return VLT_ERR_STATE;
}

vlt_status vlt_trainer_run_steps(vlt_trainer *t, int64_t n) {
    int64_t end = t->step + n < t->cfg.steps ? t->step + n : t->cfg.steps;
    while (t->step < end) {
        bool stop = false;
        VLT_TRY(train_step(t, &stop));
        VLT_TRY(stop_requested(t, &stop));
        if (stop && t->step < t->cfg.steps) return stop_now(t);
        if (t->cfg.checkpoint_every > 0 && t->step % t->cfg.checkpoint_every == 0 && t->step < t->cfg.steps)
            VLT_TRY(checkpoint_now(t));
        VLT_TRY(maybe_eval(t));
    }
    if (t->step == t->cfg.steps) VLT_TRY(checkpoint_now(t));
    return VLT_OK;
}

vlt_status vlt_trainer_run(vlt_trainer *t) { return vlt_trainer_run_steps(t, t->cfg.steps - t->step); }

int64_t vlt_trainer_step(const vlt_trainer *t) { return t->step; }
bool vlt_trainer_is_captioner(const vlt_trainer *t) { return vlt_model_can(&t->model, VLT_CAP_CAPTION); }
bool vlt_trainer_can_answer(const vlt_trainer *t) { return vlt_model_can(&t->model, VLT_CAP_ANSWER); }
const char *vlt_trainer_model_title(const vlt_trainer *t) { return vlt_model_title(&t->model); }

int64_t vlt_trainer_nonfinite(const vlt_trainer *t) { return t->nonfinite_total; }
const vlt_params *vlt_trainer_params(const vlt_trainer *t) { return t->params; }

const float *vlt_trainer_losses(const vlt_trainer *t, int64_t *n) {
    *n = t->n_losses;
    return t->losses;
}

void vlt_trainer_free(vlt_trainer *t) {
    if (!t) return;
    if (t->mlog) vlt_metrics_log_close(t->mlog);
    unlock_run_dir(t);
    if (t->feed.be.host_wait) vlt_feed_release(&t->feed);   // no copy reads the loader's memory any more
#ifdef VLT_HAVE_CUDA
    vlt_feed_cuda_destroy(t->feed_cuda);
#endif
    for (int k = 0; k < VLT_FEED_SLOTS; k++) vlt_tensor_free(t->feed_slot[k]);
    vlt_loader_free(t->loader);
    vlt_tokenizer_free(t->tok);
    vlt_tensor_free(t->atts);
    free(t->opt_view.t);
    vlt_adamw_free(t->opt);
    vlt_zero_free(t->zero);
    vlt_model_free(&t->model);
    if (t->owns_nccl) vlt_dist_nccl_shutdown();
    vlt_dist_reducer_free(t->reducer);
    free(t->by_ptr);
    vlt_tensor_free(t->images);
    vlt_tensor_free(t->images_u8);
    vlt_tensor_free(t->images_u8_dev);
    vlt_tensor_free(t->ids);
    vlt_tensor_free(t->answer_scores);
    vlt_vqa_vocab_free(&t->vocab);
    free(t->decay);
    free(t->losses);
    free(t);
}
