// bench_clip.c — `vlt bench clip-step`: the GPU benchmark of issue 7. One CLIP training step
// (forward, backward, clip at 1.0, AdamW) at batch 256 on synthetic inputs on the CUDA backend,
// ViT-B/32 by default. Prints a line per step and a JSON line last with the fields of
// ../shared/bench/torch_clip_baseline.py, which scripts/gpu_check.sh runs in the same call.
//
// The images and token ids live on the device, as in the PyTorch script (two input sets,
// alternating). --profile N prints a per-op device time profile of step N (CUDA events between
// ops, see vlt_device_profile_start); that step is left out of the timing.
//
// Memory: the JSON line reports the device step arena's high-water mark (activations, their
// gradients, scratch) and the card's memory in use at the end (cudaMemGetInfo: arena, parameters,
// gradients, AdamW state, workspaces, the CUDA context). --max-batch then estimates the largest
// batch that fits (the arena grows linearly with the batch: free memory plus this arena, over
// the arena per image, less a 1 GiB margin and 8%, rounded down to 64) and checks it by running one
// step at that batch in a fresh process (this one frees the card first), stepping down 5% at a
// time until a step succeeds.
//
// Model FLOPs per step: every matrix product of the forward (the linear layers, the patch
// embedding as a product, q·kᵀ and P·v of every head, the projections and the logits), times 3
// for forward + backward. The PyTorch script counts the same products with FlopCounterMode (its
// count, 11,320 GFLOP at batch 256, is within 0.3% of this one).
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "autograd/device.h"
#include "autograd/optim.h"
#include "autograd/rng.h"
#include "layers/clip.h"
#include "train/bench_util.h"
#include "train/commands.h"


// Forward matmul FLOPs of one tower's transformer: rows R = B·T, width W, mlp M.
static double tower_flops(double B, double T, double W, double M, double layers) {
    double R = B * T;
    double linear = 2 * R * (3 * W * W + W * W + 2 * W * M);
    double attn = 2 * 2 * B * T * T * W;  // q·kᵀ and P·v over all heads
    return layers * (linear + attn);
}

extern char **environ;

// One step of the benchmark's work (forward, loss, zero_grad, backward, clip at 1.0, AdamW) on
// given device inputs; *loss_dev: the loss's device address (valid until the arena is reused).
static int bench_step(vlt_clip *m, vlt_adamw *opt, vlt_tensor *img_in, vlt_tensor *ids_in, float **loss_dev) {
    vlt_tensor *img = vlt_clip_encode_image(m, img_in, true);
    vlt_tensor *txt = vlt_clip_encode_text(m, ids_in, true);
    vlt_tensor *loss = vlt_clip_loss(img, txt, m->logit_scale, m->logit_bias, NULL);
    if (!loss) return -1;
    vlt_zero_grad(m->params.t, m->params.n);
    if (vlt_backward(loss) != VLT_OK) return -1;
    vlt_clip_grad_norm(m->params.t, m->params.n, 1.0f);
    vlt_adamw_step(opt, 5e-4f);
    *loss_dev = vlt_f32(loss);
    return 0;
}

// --cuda-graph (issue 17; NEVER RUN ON A GPU yet): after the eager timing, the same step in
// sync-free mode (index checks on the device, no read-back inside the step): 2 eager warm-up steps
// (the arena learns the extra scratch), `steps` timed eager sync-free steps, then one step
// captured as a CUDA graph on fixed input buffers (refilled by a device copy before each replay)
// and `steps` timed replays. Fills the medians (0 when that part did not run) and a note: what
// ran, or why the capture fell back to eager. Both sync-free figures include the two device copies
// of the inputs into the fixed buffers (~154 MB at batch 256, about 0.1 ms on an H200); the eager
// figure has none.
static void bench_graph(vlt_clip *m, vlt_adamw *opt, vlt_tensor *images[2], vlt_tensor *ids[2], int steps,
                        double *sf_med, double *graph_med, char *note, size_t note_cap) {
    *sf_med = *graph_med = 0;
    snprintf(note, note_cap, "not run");
    vlt_tensor *img_g = vlt_tensor_new(VLT_F32, VLT_CUDA, images[0]->ndim, images[0]->shape, "images_graph");
    vlt_tensor *ids_g = vlt_tensor_new(VLT_I32, VLT_CUDA, ids[0]->ndim, ids[0]->shape, "ids_graph");
    double *times = malloc(sizeof(double) * (size_t)steps);
    if (!img_g || !ids_g || !times || vlt_set_sync_free(true) != VLT_OK) {
        snprintf(note, note_cap, "setup failed: %s", vlt_error_message());
        goto out;
    }
    float *loss_dev = NULL, loss_v = 0;
    for (int s = 0; s < 2 + steps; s++) {  // eager, sync-free
        vlt_device_synchronize();
        double t0 = vlt_bench_now_s();
        if (vlt_tensor_copy(img_g, images[s % 2]) != VLT_OK || vlt_tensor_copy(ids_g, ids[s % 2]) != VLT_OK) goto fail;
        vlt_step_checks_begin();
        if (bench_step(m, opt, img_g, ids_g, &loss_dev) != 0 || vlt_step_checks_report() != VLT_OK) goto fail;
        vlt_device_to_host(&loss_v, loss_dev, sizeof loss_v);
        vlt_step_reset();
        vlt_device_synchronize();
        double dt = vlt_bench_now_s() - t0;
        printf("sync-free step %d: %.1f ms, loss %.4f%s\n", s, dt * 1e3, loss_v, s < 2 ? " (warm-up)" : "");
        if (s >= 2) times[s - 2] = dt;
    }
    qsort(times, (size_t)steps, sizeof *times, vlt_bench_cmp_double);
    *sf_med = times[steps / 2];
    void *graph = NULL;
    for (int attempt = 0; attempt < 2 && !graph; attempt++) {
        uint64_t allocs = vlt_cuda_arena_allocs();
        if (vlt_tensor_copy(img_g, images[0]) != VLT_OK || vlt_tensor_copy(ids_g, ids[0]) != VLT_OK) goto fail;
        if (vlt_graph_begin() != VLT_OK) {
            snprintf(note, note_cap, "no capture: %s", vlt_error_message());
            break;
        }
        vlt_step_checks_begin();
        int rc = bench_step(m, opt, img_g, ids_g, &loss_dev);
        vlt_status st = vlt_graph_end(&graph);
        opt->t--;  // the captured optimizer step has not run: each replay counts its own
        if (rc != 0 || st != VLT_OK || vlt_cuda_arena_allocs() != allocs) {
            snprintf(note, note_cap, "capture %d fell back to eager: %s", attempt + 1,
                     st != VLT_OK ? vlt_error_message() : rc != 0 ? "the step failed while capturing"
                                                                : "the step arena grew while capturing");
            printf("cuda graph: %s\n", note);
            vlt_graph_free(graph);
            graph = NULL;
        }
        vlt_step_reset();  // the host tape; the device arena keeps its one block (no growth above)
    }
    if (!graph) goto out;
    for (int s = 0; s < steps + 1; s++) {  // the first replay is left out (the graph's upload)
        vlt_device_synchronize();
        double t0 = vlt_bench_now_s();
        if (vlt_tensor_copy(img_g, images[s % 2]) != VLT_OK || vlt_tensor_copy(ids_g, ids[s % 2]) != VLT_OK) goto fail;
        vlt_adamw_advance(opt, 5e-4f);
        if (vlt_graph_launch(graph) != VLT_OK || vlt_step_checks_report() != VLT_OK) goto fail;
        vlt_device_to_host(&loss_v, loss_dev, sizeof loss_v);
        double dt = vlt_bench_now_s() - t0;
        printf("graph step %d: %.1f ms, loss %.4f%s\n", s, dt * 1e3, loss_v, s == 0 ? " (warm-up)" : "");
        if (s > 0) times[s - 1] = dt;
    }
    vlt_graph_free(graph);
    qsort(times, (size_t)steps, sizeof *times, vlt_bench_cmp_double);
    *graph_med = times[steps / 2];
    snprintf(note, note_cap, "captured: %zu nodes", vlt_graph_nodes());
    goto out;
fail:
    snprintf(note, note_cap, "failed: %s", vlt_error_message());
    printf("cuda graph: %s\n", note);
    vlt_step_reset();
out:
    vlt_set_sync_free(false);
    free(times);
    vlt_tensor_free(img_g);
    vlt_tensor_free(ids_g);
}

// One step at `batch` in a child process (`vlt bench clip-step --batch N --steps 1 --warmup 0`);
// true when it exits 0. Its output goes to log (appended) when given.
static bool probe_batch(int batch, const char *model, const char *matmul, const char *log) {
    char b[32];
    snprintf(b, sizeof b, "%d", batch);
    char *args[] = {"vlt", "bench", "clip-step", "--batch", b, "--steps", "1", "--warmup", "0", "--model", (char *)model,
                    "--matmul", (char *)matmul, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return false;
    int st = 0;
    if (waitpid(pid, &st, 0) < 0) return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int vlt_cmd_bench_clip(int argc, char **argv) {
    int B = 256, steps = 10, warmup = 3, profile_step = -1;
    const char *matmul = "bf16", *model = "ViT-B-32", *probe_log = NULL;
    bool max_batch = false, cuda_graph = false;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--max-batch") || !strcmp(argv[i], "--cuda-graph")) {  // the flags without a value
            if (argv[i][2] == 'm') max_batch = true;
            else cuda_graph = true;
            i--;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: vlt bench clip-step [--batch 256] [--steps 10] [--warmup 3] [--matmul bf16|tf32|fp32]\n"
                   "                           [--model ViT-B-32] [--profile STEP] [--max-batch [--probe-log F]]\n"
                   "                           [--cuda-graph]\n"
                   "One CLIP training step on the GPU (forward, backward, clip at 1.0, AdamW) on synthetic\n"
                   "device-resident inputs; prints each step, then a JSON line (images/s, TFLOP/s, MFU).\n"
                   "--profile N prints a per-op device time profile of step N (left out of the timing).\n"
                   "--max-batch then finds the largest batch that fits on the card (estimated from the\n"
                   "arena, checked by one step in a fresh process; --probe-log keeps those steps' output).\n"
                   "--cuda-graph then times the same step without host synchronisation (index checks on the\n"
                   "device), eagerly and captured once as a CUDA graph and replayed (not yet run on a GPU).\n");
            return 0;
        }
        if (i + 1 >= argc) { fprintf(stderr, "vlt bench clip-step: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--matmul")) matmul = argv[i + 1];
        else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--profile")) profile_step = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--probe-log")) probe_log = argv[i + 1];
        else { fprintf(stderr, "vlt bench clip-step: unknown option %s (see --help)\n", argv[i]); return 2; }
    }
    if (B < 2 || steps < 1 || warmup < 0 || steps > 1000) {
        fprintf(stderr, "vlt bench clip-step: --batch must be >= 2, --steps 1..1000, --warmup >= 0\n");
        return 2;
    }
    if (strcmp(matmul, "bf16") && strcmp(matmul, "tf32") && strcmp(matmul, "fp32")) {
        fprintf(stderr, "vlt bench clip-step: --matmul must be bf16, tf32 or fp32, not '%s'\n", matmul);
        return 2;
    }
    if (!vlt_cuda_available()) {
        printf("vlt bench clip-step: no GPU: %s\n", vlt_cuda_init() == VLT_OK ? "?" : vlt_error_message());
        return 3;
    }
    if (vlt_cuda_init() != VLT_OK || vlt_set_default_device(VLT_CUDA) != VLT_OK) {
        fprintf(stderr, "vlt bench clip-step: cuda init: %s\n", vlt_error_message());
        return 1;
    }
    vlt_set_matmul_precision(!strcmp(matmul, "fp32") ? VLT_MATMUL_FP32 : !strcmp(matmul, "tf32") ? VLT_MATMUL_TF32
                                                                                                 : VLT_MATMUL_BF16);
    vlt_model_cfg cfg;
    vlt_clip m;
    if (vlt_model_cfg_load(model, &cfg) != VLT_OK || vlt_clip_init(&m, &cfg, 0) != VLT_OK ||
        vlt_params_move(&m.params, VLT_CUDA) != VLT_OK) {
        fprintf(stderr, "model: %s\n", vlt_error_message());
        return 1;
    }
    int S = cfg.vision.image_size, T = cfg.text.context_length, V = cfg.text.vocab_size;
    vlt_tensor *images[2], *ids[2];
    for (int k = 0; k < 2; k++) {
        vlt_tensor *im_h = vlt_tensor_new(VLT_F32, VLT_CPU, 4, (const int[]){B, 3, S, S}, "images");
        vlt_tensor *ids_h = vlt_tensor_new(VLT_I32, VLT_CPU, 2, (const int[]){B, T}, "ids");
        if (!im_h || !ids_h) { fprintf(stderr, "%s\n", vlt_error_message()); return 1; }
        vlt_rng_fill_normal(vlt_f32(im_h), (size_t)im_h->numel, 0, 1, 1, 1, (uint64_t)k);
        for (int64_t i = 0; i < ids_h->numel; i++)
            vlt_i32(ids_h)[i] = (int32_t)vlt_rng_below(2, 2 + (uint64_t)k, (uint64_t)i, (uint64_t)(V - 2));
        for (int b = 0; b < B; b++) vlt_i32(ids_h)[(size_t)b * T + T - 1] = V - 1;  // EOT last (the argmax)
        images[k] = vlt_tensor_to(im_h, VLT_CUDA);
        ids[k] = vlt_tensor_to(ids_h, VLT_CUDA);
        if (!images[k] || !ids[k]) { fprintf(stderr, "%s\n", vlt_error_message()); return 1; }
        vlt_tensor_free(im_h);
        vlt_tensor_free(ids_h);
    }
    bool *decay = malloc((size_t)m.params.n);
    vlt_clip_decay_mask(&m.params, decay);
    vlt_adamw *opt = vlt_adamw_new(m.params.t, decay, m.params.n, (vlt_adamw_cfg){0.9f, 0.98f, 1e-6f, 0.2f});
    if (!opt) { fprintf(stderr, "%s\n", vlt_error_message()); return 1; }

    double Wv = cfg.vision.width, Wt = cfg.text.width, G = S / cfg.vision.patch_size, Tv = G * G + 1, E = cfg.embed_dim;
    double fwd = tower_flops(B, Tv, Wv, Wv * cfg.vision.mlp_ratio, cfg.vision.layers) +
                 tower_flops(B, T, Wt, Wt * cfg.text.mlp_ratio, cfg.text.layers) +
                 2.0 * B * G * G * 3 * cfg.vision.patch_size * cfg.vision.patch_size * Wv +  // patch embedding
                 2.0 * B * Wv * E + 2.0 * B * Wt * E + 2.0 * B * B * E;                       // projections, logits
    double flops = 3 * fwd;

    double *times = malloc(sizeof(double) * (size_t)steps);
    float loss_v = 0;
    int timed = 0;
    for (int s = 0; s < warmup + steps + (profile_step >= 0); s++) {
        bool prof = s == profile_step;
        vlt_device_synchronize();
        if (prof) vlt_device_profile_start();
        double t0 = vlt_bench_now_s();
        vlt_tensor *img = vlt_clip_encode_image(&m, images[s % 2], true);
        vlt_tensor *txt = vlt_clip_encode_text(&m, ids[s % 2], true);
        vlt_tensor *loss = vlt_clip_loss(img, txt, m.logit_scale, m.logit_bias, NULL);
        if (!loss) { fprintf(stderr, "step %d forward: %s\n", s, vlt_error_message()); return 1; }
        vlt_zero_grad(m.params.t, m.params.n);
        if (prof) vlt_device_profile_mark("zero_grad");
        if (vlt_backward(loss) != VLT_OK) { fprintf(stderr, "backward: %s\n", vlt_error_message()); return 1; }
        vlt_clip_grad_norm(m.params.t, m.params.n, 1.0f);  // reads the norm back: a sync per step, as torch's clip
        if (prof) vlt_device_profile_mark("clip_grad_norm");
        vlt_adamw_step(opt, 5e-4f);
        if (prof) vlt_device_profile_mark("adamw");
        vlt_tensor *lh = vlt_tensor_to(loss, VLT_CPU);
        loss_v = vlt_f32(lh)[0];
        vlt_tensor_free(lh);
        vlt_step_reset();
        vlt_device_synchronize();
        double dt = vlt_bench_now_s() - t0;
        if (prof) vlt_device_profile_stop(stdout, 40);
        printf("step %d: %.1f ms, loss %.4f%s\n", s, dt * 1e3, loss_v,
               prof ? " (profiled)" : s < warmup ? " (warm-up)" : "");
        if (!prof && s >= warmup && timed < steps) times[timed++] = dt;
    }
    steps = timed;
    qsort(times, (size_t)steps, sizeof *times, vlt_bench_cmp_double);
    double med = times[steps / 2];
    size_t mem_free = 0, mem_total = 0, arena = vlt_cuda_arena_bytes();
    vlt_cuda_memory(&mem_free, &mem_total);
    const double GiB = (double)(1u << 30);
    double sf_med = 0, graph_med = 0;
    char graph_note[320] = "";
    if (cuda_graph) {
        bench_graph(&m, opt, images, ids, steps, &sf_med, &graph_med, graph_note, sizeof graph_note);
        printf("cuda-graph: eager %.2f ms/step, eager sync-free %.2f ms/step, graph %.2f ms/step (%s)\n", med * 1e3,
               sf_med * 1e3, graph_med * 1e3, graph_note);
    }
    printf("{\"impl\": \"vlt-cuda-%s\", \"batch\": %d, \"step_s_median\": %.5f, \"step_s_min\": %.5f, "
           "\"step_s_max\": %.5f, \"images_per_s\": %.1f, \"gflop_per_step\": %.1f, \"achieved_tflops\": %.1f, "
           "\"mfu\": %.4f, \"loss\": %.5f, \"arena_gib\": %.2f, \"device_used_gib\": %.2f, \"params_m\": %.2f, "
           "\"bf16_out_bias\": %d",
           matmul, B, med, times[0], times[steps - 1], B / med, flops / 1e9, flops / med / 1e12,
           flops / med / 1e12 / 989.0, loss_v, arena / GiB, (mem_total - mem_free) / GiB,
           vlt_params_numel(&m.params) / 1e6, vlt_cuda_bf16_out_bias_kind());
    if (cuda_graph) {
        for (char *c = graph_note; *c; c++)
            if (*c == '"' || *c == '\\') *c = '\'';
        printf(", \"syncfree_step_s_median\": %.5f, \"graph_step_s_median\": %.5f, \"graph_images_per_s\": %.1f, "
               "\"graph\": \"%s\"", sf_med, graph_med, graph_med > 0 ? B / graph_med : 0.0, graph_note);
    }
    printf("}\n");
    fflush(stdout);
    free(times);
    free(decay);
    vlt_adamw_free(opt);
    for (int k = 0; k < 2; k++) { vlt_tensor_free(images[k]); vlt_tensor_free(ids[k]); }
    vlt_clip_free(&m);
    if (max_batch) {
        // what the arena may take at another batch: the free memory and this run's arena, less a
        // margin for what grows besides it (the operand cast buffers, allocator rounding)
        double avail = (double)mem_free + (double)arena - 1.0 * GiB, per_image = (double)arena / B;
        // the first step of a run grows the arena chunk by chunk (some tail of each chunk unused),
        // so the steady-state figure is an upper bound: start 8% under it
        int est = (int)(avail / per_image * 0.92) / 64 * 64;
        vlt_step_reset();
        vlt_tape_shutdown();  // gives the card back: the probe runs in a fresh process
        int fit = 0, tried = 0;
        for (int b = est; b >= 64 && tried < 6; b = (int)(b * 0.95) / 64 * 64, tried++) {
            double t0 = vlt_bench_now_s();
            bool ok = probe_batch(b, model, matmul, probe_log);
            printf("max-batch probe: batch %d %s (%.1f s)\n", b, ok ? "fits" : "does not fit", vlt_bench_now_s() - t0);
            fflush(stdout);
            if (ok) { fit = b; break; }
        }
        printf("{\"impl\": \"vlt-cuda-%s\", \"max_batch\": %d, \"max_batch_estimate\": %d, \"arena_gib_per_1k_images\": %.2f, "
               "\"card_gib\": %.1f}\n", matmul, fit, est, per_image * 1000 / GiB, mem_total / GiB);
    }
    return 0;
}
