// bench_cmd.c — `vlt bench`: CPU benchmarks (`vlt bench clip-step` is the GPU one, bench_clip.c). sgemm GFLOP/s, and one pre-LN transformer block
// (width 256, 4 heads, 64 tokens, batch 32 by default) forward + backward + AdamW step time.
// scripts/bench/torch_block_cpu.py runs the same block in PyTorch for the side-by-side ratio.
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/optim.h"
#include "autograd/rng.h"
#include "layers/transformer.h"
#include "train/bench_util.h"
#include "train/commands.h"


static double bench_sgemm(int n, int reps) {
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    vlt_rng_fill_uniform(a, (size_t)n * n, -1, 1, 1, 1, 0);
    vlt_rng_fill_uniform(b, (size_t)n * n, -1, 1, 1, 2, 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);  // warm-up
    double t0 = vlt_bench_now_s();
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double dt = (vlt_bench_now_s() - t0) / reps;
    free(a); free(b); free(c);
    return 2.0 * n * n * n / dt / 1e9;
}

// Median step time in ms of forward + backward + AdamW for one block.
static double bench_block(int B, int T, int W, int H, int steps) {
    vlt_resblock blk;
    vlt_params table;
    vlt_params_init(&table);
    if (vlt_resblock_init(&blk, &table, "resblocks.0", W, H, 4 * W, VLT_ACT_GELU, 1, VLT_INIT_SCALED_NORMAL, 1) != VLT_OK) return -1;
    vlt_tensor *params[VLT_RESBLOCK_NPARAMS];
    vlt_resblock_params(&blk, params);
    vlt_adamw *opt = vlt_adamw_new(params, NULL, VLT_RESBLOCK_NPARAMS, vlt_adamw_defaults());
    vlt_tensor *x = vlt_tensor_new(VLT_F32, VLT_CPU, 3, VLT_SHAPE(B, T, W), "x");
    vlt_rng_fill_normal(vlt_f32(x), (size_t)x->numel, 0, 1, 2, 3, 0);
    double *times = malloc(sizeof(double) * steps);
    for (int s = -3; s < steps; s++) {  // 3 warm-up steps
        double t0 = vlt_bench_now_s();
        vlt_zero_grad(params, VLT_RESBLOCK_NPARAMS);
        vlt_tensor *loss = vlt_mean_all(vlt_resblock_forward(&blk, x, false, NULL));
        if (!loss || vlt_backward(loss) != VLT_OK) {
            fprintf(stderr, "vlt bench: block step failed: %s\n", vlt_error_message());
            return -1;
        }
        vlt_adamw_step(opt, 1e-4f);
        vlt_step_reset();
        if (s >= 0) times[s] = vlt_bench_now_s() - t0;
    }
    qsort(times, (size_t)steps, sizeof(double), vlt_bench_cmp_double);
    double med = times[steps / 2] * 1e3;
    free(times);
    vlt_adamw_free(opt);
    vlt_tensor_free(x);
    vlt_params_free(&table);
    return med;
}

int vlt_cmd_bench(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "clip-step")) return vlt_cmd_bench_clip(argc - 1, argv + 1);
    int B = 32, T = 64, W = 256, H = 4, steps = 20, n = 1024;
    static const struct option opts[] = {
        {"batch", required_argument, 0, 'b'}, {"tokens", required_argument, 0, 't'},
        {"width", required_argument, 0, 'w'}, {"heads", required_argument, 0, 'H'},
        {"steps", required_argument, 0, 's'}, {"gemm", required_argument, 0, 'g'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': B = atoi(optarg); break;
        case 't': T = atoi(optarg); break;
        case 'w': W = atoi(optarg); break;
        case 'H': H = atoi(optarg); break;
        case 's': steps = atoi(optarg); break;
        case 'g': n = atoi(optarg); break;
        case 'h':
            printf("usage: vlt bench [--batch 32] [--tokens 64] [--width 256] [--heads 4] [--steps 20] [--gemm 1024]\n"
                   "CPU: sgemm GFLOP/s (n x n x n) and the median step time of one pre-LN transformer block\n"
                   "(forward + backward + AdamW). Threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS.\n"
                   "       vlt bench clip-step --help    the GPU benchmark: a CLIP ViT-B/32 training step\n");
            return 0;
        default: return 2;
        }
    }
    if (optind < argc) {   // `vlt bench nosuch` is a mistake, not the CPU benchmarks
        fprintf(stderr, "vlt bench: unknown subcommand or argument '%s' (subcommands: clip-step; vlt bench --help)\n",
                argv[optind]);
        return 2;
    }
    if (B < 1 || T < 1 || W < 1 || H < 1 || W % H || steps < 1 || n < 1) {
        fprintf(stderr, "vlt bench: sizes must be positive and width a multiple of heads\n");
        return 2;
    }
    printf("sgemm %dx%dx%d: %.1f GFLOP/s\n", n, n, n, bench_sgemm(n, 5));
    double ms = bench_block(B, T, W, H, steps);
    if (ms < 0) return 1;
    printf("block B=%d T=%d W=%d H=%d fwd+bwd+adamw: %.2f ms/step (median of %d)\n", B, T, W, H, ms, steps);
    return 0;
}
