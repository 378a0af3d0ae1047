// ops_cuda.h — the C interface of the CUDA backend (compiled with -DVLT_HAVE_CUDA only): device memory,
// the device half of the step arena, copies, and one launcher per CPU kernel of autograd/ops_*.c.
//
// Everything here is internal to autograd/: the public entry points stay in ops.h and device.h.
// Pointers are device pointers. All work is ordered on the context's one stream (cuda_device.cu);
// every launcher checks its launches (CUDA errors abort with file:line and the CUDA message,
// like llm.c's cudaCheck: they are driver or programming errors, not bad user input).
// Shapes follow the CPU kernels they mirror; the comment at each CPU kernel says what it computes.
#ifndef VLT_OPS_CUDA_H
#define VLT_OPS_CUDA_H

// Op kinds shared by the CPU kernels (ops_elementwise.c) and the CUDA ones (built with or without CUDA).
enum { VLT_BIN_ADD, VLT_BIN_SUB, VLT_BIN_MUL };
enum { VLT_UN_SCALE, VLT_UN_EXP, VLT_UN_LOG, VLT_UN_CLAMP, VLT_UN_GELU, VLT_UN_GELU_TANH, VLT_UN_QUICK_GELU,
       VLT_UN_LOG_SIGMOID };

#ifdef VLT_HAVE_CUDA

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- context and memory (cuda_device.cu) ----
int vlt_cuda_device_count(void);          // 0 when no driver / no device (never aborts)
int vlt_cuda_ensure_init(void);           // 0 ok, else -1 with vlt_error_set (VLT_ERR_DEVICE)
void vlt_cuda_release(void);              // frees the arena, handles, stream (end of program)
void *vlt_cuda_malloc(size_t bytes);      // persistent buffer; NULL (message set) when out of memory
void vlt_cuda_free(void *p);
// Reusable device buffer `which` (0 or 1) of at least `bytes`, for the bf16 copies of matmul
// operands; grows (a cudaMalloc) only while the largest product is being learned.
void *vlt_cuda_cast_buffer(int which, size_t bytes);
// Device half of the step arena: bump allocation, 256-byte aligned; NULL (message set) when the
// device is out of memory. Grows by whole chunks while a step learns its size; the reset after
// growth coalesces into one block of the high-water size (the only cudaFree/cudaMalloc after
// warm-up; none in the steady state).
void *vlt_cuda_arena_alloc(size_t bytes);
void vlt_cuda_arena_reset(void);
// Hands a block of this step back (its last reader is already on the stream, which orders the
// reuse); a later vlt_cuda_arena_alloc of the same rounded size takes it instead of bumping.
void vlt_cuda_arena_release(void *p, size_t bytes);
size_t vlt_cuda_arena_reused(void);  // bytes served from released blocks since the last reset
size_t vlt_cuda_arena_high_water(void);
uint64_t vlt_cuda_arena_system_allocs(void);
// Copies (stream-ordered; the ones that touch host memory wait for completion).
void vlt_cuda_copy_h2d(void *dst, const void *src, size_t bytes);
void vlt_cuda_copy_d2h(void *dst, const void *src, size_t bytes);
void vlt_cuda_copy_d2d(void *dst, const void *src, size_t bytes);
void vlt_cuda_memset0(void *dst, size_t bytes);
void vlt_cuda_synchronize(void);
void vlt_cuda_mem_info(size_t *free_bytes, size_t *total_bytes);  // cudaMemGetInfo (0, 0 before init)
void *vlt_cuda_stream_ptr(void);  // the context's cudaStream_t

// Per-op device time profile (cuda_profile.cu): between start and stop, vlt_cuda_prof_mark
// records an event; stop charges each interval to the later mark and prints the top rows.
// The tape marks ("fwd", op) after each recorded forward and ("bwd", op) after each backward.
bool vlt_cuda_prof_on(void);
void vlt_cuda_prof_start(void);
void vlt_cuda_prof_mark(const char *phase, const char *op);
void vlt_cuda_prof_stop(FILE *f, int top);

// Matmul precision (cuBLAS compute type): fp32 storage always; the products run as
//   0 = fp32 (CUBLAS_COMPUTE_32F), 1 = tf32 tensor cores, 2 = bf16 tensor cores, fp32 accumulate.
void vlt_cuda_set_matmul_precision(int mode);
int vlt_cuda_matmul_precision(void);

// ---- matrix products (ops_cuda_matmul.cu), row-major, f32 ----
// C_i (M, N) = alpha · op(A_i) · op(B_i) + beta · C_i for i < batch; strides in elements
// (stride 0: the same matrix for every i). lda/ldb as the CPU's: ta ? M : K, tb ? K : N.
void vlt_cuda_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int64_t sA,
                   const float *B, int64_t sB, float beta, float *C, int64_t sC, int batch);
// Mixed precision (VLT_MATMUL_BF16) pieces of the linear layer: dst = bf16(src), RNE;
// C (M, N) f32 = op(A)·op(B) + beta·C with bf16 A, B (row-major, lda/ldb as vlt_cuda_gemm);
// y (R, OUT) f32 = xb (R, IN)·wb (OUT, IN)ᵀ + bias (+ residual) through cuBLASLt, the bias in the
// epilogue and the residual as C with beta 1 (bias and residual may be NULL); returns 0, having
// done nothing, when cuBLASLt offers no algorithm.
void vlt_cuda_to_bf16(uint16_t *dst, const float *src, int64_t n);
// dst (R, C) = bf16(src), and colsum[c] += Σ_r src[r, c] in the same pass (the linear layer's
// dY and its bias gradient); deterministic (fixed two-stage order).
void vlt_cuda_to_bf16_colsum(uint16_t *dst, const float *src, int64_t R, int64_t C, float *colsum);
void vlt_cuda_gemm_bf16(bool ta, bool tb, int M, int N, int K, const uint16_t *A, const uint16_t *B, float beta,
                        float *C);
int vlt_cuda_linear_bf16(const uint16_t *xb, const uint16_t *wb, const float *bias, const float *residual, float *y,
                         int R, int IN, int OUT);
// The same product with a bf16 y (R, OUT) (no residual): rounded once from the fp32 accumulator
// plus bias. 0, having done nothing, when cuBLASLt offers no algorithm.
int vlt_cuda_linear_bf16_out(const uint16_t *xb, const uint16_t *wb, const float *bias, uint16_t *yb, int R, int IN,
                             int OUT);
int vlt_cuda_linear_bf16_out_bias_kind(void);  // 1: fp32 bias in the epilogue, 2: a bf16 copy, 0: not run
// dst[c] += Σ_y partial[y, c] (C columns, ny rows of partial sums), in y order.
void vlt_cuda_colsum_partials(float *dst, const float *partial, int64_t C, int ny);
// out (R, C) rows = bias (C)
void vlt_cuda_fill_rows(float *out, const float *bias, int64_t R, int C);
// dst[c] += k · Σ_r src[r·C + c] (r < R), or with src2: Σ_r src[r·C+c]·src2[r·C+c]; deterministic.
void vlt_cuda_colsum_acc(float *dst, const float *src, const float *src2, int64_t R, int64_t C, float k);

// ---- elementwise (ops_cuda_elementwise.cu); kinds are the CPU's BIN_* / UN_* enums ----
void vlt_cuda_binary_fwd(int kind, const float *a, const float *b, float *out, int64_t N, int64_t inner);
// ga += g (add/sub) or g·b (mul); null ga skips.
void vlt_cuda_binary_bwd_a(int kind, const float *g, const float *b, float *ga, int64_t N, int64_t inner);
void vlt_cuda_unary_fwd(int kind, const float *x, float *y, int64_t N, float f0, float f1);
void vlt_cuda_unary_bwd(int kind, const float *g, const float *x, const float *y, float *gx, int64_t N, float f0,
                        float f1, bool overwrite);  // gx = (overwrite) or += g·f'(x)
void vlt_cuda_acc(float *dst, const float *src, int64_t n);          // dst += src
void vlt_cuda_fill(float *dst, int64_t n, float v);
void vlt_cuda_add_scalar(float *dst, float v);                        // dst[0] += v
void vlt_cuda_arange_i32(int32_t *dst, int n);
void vlt_cuda_cast_f32_bf16(uint16_t *dst, const float *src, int64_t n);
// The MLP activation on bf16 activations (kind VLT_UN_GELU, _GELU_TANH or _QUICK_GELU):
// a = act(h) elementwise, h and a bf16, fp32 arithmetic;
void vlt_cuda_act_bf16_fwd(int kind, const uint16_t *h, uint16_t *a, int64_t n);
// backward into the product's operand: dh (R, C) = bf16(g · act'(h)), and colsum[c] += Σ_r g·act'(h)
// (the bias gradient, fp32, deterministic) when colsum is not NULL.
void vlt_cuda_act_bf16_bwd_colsum(int kind, const float *g, const uint16_t *h, uint16_t *dh, int64_t R, int64_t C,
                                  float *colsum);
void vlt_cuda_cast_bf16_f32(float *dst, const uint16_t *src, int64_t n);

// ---- reductions and row ops (ops_cuda_nn.cu) ----
void vlt_cuda_row_sum(const float *x, float *out, int64_t R, int64_t C, float k);   // out[r] = k·Σ_c x
void vlt_cuda_row_bcast_acc(float *gx, const float *g, int64_t R, int64_t C, float k);  // gx[r,c] += k·g[r]
// layernorm: stats (R, 2) = (mean, rstd); w, b may be NULL.
void vlt_cuda_layernorm_fwd(const float *x, const float *w, const float *b, float *y, float *stats, int64_t R,
                            int C, float eps);
// The same with a bf16 y (an input of the next product): 0, having done nothing, for C > 1024.
int vlt_cuda_layernorm_fwd_bf16(const float *x, const float *w, const float *b, uint16_t *y, float *stats, int64_t R,
                                int C, float eps);
// gx (when not NULL) is written when gx_overwrite (a fresh buffer), else added to; gw, gb added to.
void vlt_cuda_layernorm_bwd(const float *g, const float *x, const float *w, const float *stats, float *gx,
                            float *gw, float *gb, int64_t R, int C, bool gx_overwrite);
void vlt_cuda_softmax_fwd(const float *x, float *y, int64_t R, int C, bool log_out);
void vlt_cuda_softmax_bwd(const float *g, const float *y, float *gx, int64_t R, int C, bool log_out);
void vlt_cuda_l2norm_fwd(const float *x, float *y, int64_t R, int C, float eps);
void vlt_cuda_l2norm_bwd(const float *g, const float *x, const float *y, float *gx, int64_t R, int C, float eps);
// cross-entropy: logp (N, C) from log_softmax; out[0] = Σ_counted row loss / count (0 when none).
void vlt_cuda_cross_entropy_fwd(const float *logits, const int32_t *t, float *logp, float *out, int N, int C,
                                int ignore, float smooth, int count);
// gl += (g[0] / count) · (p - (1-ε)·onehot - ε/C) for counted rows; g is a device scalar.
void vlt_cuda_cross_entropy_bwd(const float *g, const float *logp, const int32_t *t, float *gl, int N, int C,
                                int ignore, float smooth, int count);
void vlt_cuda_argmax_last(const void *x, bool is_i32, int32_t *out, int64_t R, int C);

// ---- attention (ops_cuda_attention.cu): per (b, h) gemms + masked softmax, P saved ----
void vlt_cuda_attention_fwd(const float *q, const float *k, const float *v, const int32_t *pad, float *P, float *out,
                            int B, int H, int Tq, int Tk, int D, float scale, bool causal);
// dq/dk/dv may be NULL; dS is a (B·H·Tq·Tk) scratch buffer.
void vlt_cuda_attention_bwd(const float *P, const float *dO, const float *q, const float *k, const float *v,
                            float *dq, float *dk, float *dv, float *dS, int B, int H, int Tq, int Tk, int D,
                            float scale);

// ---- indexing and shape (ops_cuda_index.cu) ----
void vlt_cuda_embedding_fwd(const float *w, const int32_t *ids, float *out, int64_t n, int D);
// Deterministic backward: rows[u] is a used vocab row, its positions are pos[start[u] .. start[u+1])
// in order of appearance (built on the host); one block per used row, no atomics.
void vlt_cuda_embedding_bwd(const float *g, float *gw, const int32_t *rows, const int32_t *start,
                            const int32_t *pos, int n_rows, int D);
void vlt_cuda_gather_rows_fwd(const float *x, const int32_t *idx, float *out, int B, int T, int D);
void vlt_cuda_gather_rows_bwd(const float *g, const int32_t *idx, float *gx, int B, int T, int D);
// ---- fused self-attention on packed qkv (ops_cuda_flash.cu) ----
// qkv (B, T, 3·H·D), pad (B, T) or NULL, out (B, T, H·D), lse (B, H, T) saved for backward.
// Supported: D in {32, 64} and T small enough for shared memory; else the caller falls back.
int vlt_cuda_flash_supported(int T, int D);
void vlt_cuda_flash_fwd(const float *qkv, const int32_t *pad, float *out, float *lse, int B, int H, int T, int D,
                        float scale, bool causal);
// dqkv += the gradient; delta (B, H, T) is scratch.
void vlt_cuda_flash_bwd(const float *qkv, const int32_t *pad, const float *out, const float *dout, const float *lse,
                        float *delta, float *dqkv, int B, int H, int T, int D, float scale, bool causal);

// Forward and backward on tensor cores (bf16 products, fp32 accumulation and softmax), for
// VLT_MATMUL_BF16: P rounded to bf16 before P·V; backward dq, dk, dv in one kernel; overwrite:
// dqkv is written (a fresh buffer), else added to.
int vlt_cuda_flash_tc_supported(int T, int D);
// io_bf16: qkv and out are bf16 (the linear before writes bf16, the out-projection reads it),
// else both f32; dout, lse and dqkv are f32 either way.
void vlt_cuda_flash_fwd_tc(const void *qkv, const int32_t *pad, void *out, float *lse, int B, int H, int T, int D,
                           float scale, bool causal, bool io_bf16);
void vlt_cuda_flash_bwd_tc(const void *qkv, const int32_t *pad, const void *out, const float *dout, const float *lse,
                           float *dqkv, int B, int H, int T, int D, float scale, bool causal, bool overwrite,
                           bool io_bf16);

// ---- multi-tensor launches (ops_cuda_multi.cu): one launch over a list of tensors ----
typedef struct {
    float *p[4];  // per op: adamw (w, g, m, v); sumsq / scale: (t)
    int64_t n;    // elements
    float f;      // adamw: this tensor's weight decay (0 when excluded)
    float pad_;
} vlt_mt_entry;
void vlt_cuda_adamw_mt(const vlt_mt_entry *e, int n, float lr, float b1, float b2, float eps, float step,
                       float bc2_sqrt);
void vlt_cuda_sumsq_mt(double *acc, const vlt_mt_entry *e, int n);  // *acc += Σ t², deterministic
void vlt_cuda_scale_mt(const vlt_mt_entry *e, int n, float k);        // t *= k (k = 0 writes zeros)
void vlt_cuda_mt_release(void);

// ---- sync-free steps and CUDA graphs (cuda_graph.cu; issue 17, never run on a GPU yet) ----
// Sync-free mode (off by default): the ops below check indices on the device and keep every
// step-dependent scalar on the device, so a step can be captured as a graph. -1 when no device.
int vlt_cuda_set_sync_free(int on);
int vlt_cuda_sync_free(void);
void vlt_cuda_graph_release(void);
// While a capture runs: records `what` as the reason to drop the graph and returns 1 (the caller
// then skips its synchronising call); 0 otherwise.
int vlt_cuda_capture_refuse(const char *what);
// safe[0..n) = ids with values outside [lo, hi) (other than `ignore` when has_ignore) made lo; the
// first bad position and its value go to check slot `slot` (read after the step).
void vlt_cuda_check_range(const int32_t *ids, int32_t *safe, int64_t n, int lo, int hi, bool has_ignore, int ignore,
                          int slot);
int vlt_cuda_check_slots(void);
void vlt_cuda_checks_clear(void);
// Waits for the device; out[k] = slot k's record ((n - position) << 32 | (uint32)value, 0 = fine).
void vlt_cuda_checks_read(unsigned long long *out, int n, int *bad);
const int *vlt_cuda_bad_flag(void);  // nonzero on the device once a check of this step failed
void vlt_cuda_count_not(const int32_t *t, int n, int ignore, int *out);  // device *out = #{t != ignore}
const float *vlt_cuda_hyper_upload(const void *owner, const float v[4]);
void vlt_cuda_hyper_set(const void *owner, const float v[4]);
const float *vlt_cuda_clip_coef(const double *ss, float max_norm);  // device [norm, coefficient]
float vlt_cuda_last_grad_norm(void);
int vlt_cuda_graph_begin(void);
int vlt_cuda_graph_end(void **exec);
int vlt_cuda_graph_capturing(void);
size_t vlt_cuda_graph_nodes(void);  // nodes of the last captured graph
void vlt_cuda_graph_launch(void *exec);
void vlt_cuda_graph_free(void *exec);
// Sync-free variants of the multi-tensor launches: the scalars read from device memory, and no
// update at all when *bad is nonzero (a failed index check in this step).
void vlt_cuda_adamw_mt_dev(const vlt_mt_entry *e, int n, float b1, float b2, float eps, const float *hyper,
                           const int *bad);
void vlt_cuda_scale_mt_dev(const vlt_mt_entry *e, int n, const float *k);  // k[0]: t *= k unless k == 1
// Embedding backward with the owner lists built on the device (a stable radix sort of the ids):
// the same sums in the same order as vlt_cuda_embedding_bwd.
void vlt_cuda_embedding_bwd_sorted(const float *g, float *gw, const int32_t *ids, int64_t n, int V, int D);
void vlt_cuda_cross_entropy_fwd_dev(const float *logits, const int32_t *t, float *logp, float *out, int N, int C,
                                    int ignore, float smooth, const int *count);
void vlt_cuda_cross_entropy_bwd_dev(const float *g, const float *logp, const int32_t *t, float *gl, int N, int C,
                                    int ignore, float smooth, const int *count);
// Momentum EMA over pairs, p[0] momentum, p[1] online: m = m·mu + o·one_minus, each product
// rounded, then the sum (__fmul_rn / __fadd_rn: no FMA contraction, the host loop's bits).
void vlt_cuda_ema_mt(const vlt_mt_entry *e, int n, float mu, float one_minus);
// Feature queues (E, Q) row-major: for k < nq, rows[k] (n, E) row i -> column (ptr + i) mod Q of
// queues[k] (only the last Q rows when n > Q: what writing in order leaves), then *ptr = (ptr +
// n) mod Q; ptr is a device i32 (read as 0 outside [0, Q)). Two launches, no host sync.
#define VLT_CUDA_QUEUE_MAX 4
void vlt_cuda_queue_enqueue(float *const *queues, const float *const *rows, int nq, int E, int Q, int n,
                            int32_t *ptr);

// images (B, 3, S, S) -> patches (B, (S/P)², 3·P·P), (c, y, x) within a patch.
void vlt_cuda_patchify(const float *images, float *out, int B, int S, int P);
// 4-D strided copy: dst contiguous of shape[4]; src read at src_stride (elements). add_to_src:
// src[...] += dst[...] instead (the permutation backward; the map is one-to-one).
void vlt_cuda_strided_copy(float *dst, const float *src, const int *shape, const int64_t *src_stride, bool add_to_src);
// Block copy: for o < outer, dst[o·dst_row + dst_off + j] (+)= src[o·src_row + src_off + j], j < len.
void vlt_cuda_block_copy(float *dst, int64_t dst_row, int64_t dst_off, const float *src, int64_t src_row,
                         int64_t src_off, int64_t outer, int64_t len, bool accumulate);
// y (n) f32 = lut[c][x], c = (i / plane) % 3: uint8 (B, 3, H, W) images through the table of
// vlt_normalize_u8_table (768 floats, host memory, passed by value) (ops_cuda_normalize.cu).
void vlt_cuda_normalize_u8(const uint8_t *x, float *y, int64_t n, int64_t plane, const float *lut768);

// ---- optimizers (ops_cuda_optim.cu; AdamW and the gradient norm are multi-tensor, below) ----
void vlt_cuda_sgd(float *w, const float *g, float *buf, int64_t n, float lr, float wd, float mu, bool nesterov,
                  bool started);

#ifdef __cplusplus
}
#endif

#endif  // VLT_HAVE_CUDA
#endif
