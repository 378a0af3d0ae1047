// ops.h — every differentiable op: one public entry point each.
//
// An op checks its inputs (live, dtype, device, shapes), takes its output from the step arena,
// runs the kernel for the inputs' device, and records a tape node when grad is on and an input
// requires grad. On misuse it returns NULL and leaves a message naming the op and the shapes
// (vlt_error_message()). A NULL input is passed through as NULL without touching the message,
// so a chain of ops can be checked once at its end:
//     h = vlt_gelu(vlt_linear(x, w1, b1));  if (!h) return vlt_error_code();
//
// Shapes: (B, T, C) style; "last dim" is the innermost. The CPU backend computes in f32; bf16
// tensors are storage (vlt_cast converts). Kernels take contiguous inputs.
#ifndef VLT_OPS_H
#define VLT_OPS_H

#include "autograd/tape.h"
#include "autograd/tensor.h"

// Shape literal helpers: vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(3, 4), "x").
#define VLT_SHAPE(...) ((const int[]){__VA_ARGS__})

// ---- matrix products ----
// a (..., M, K) [or (..., K, M) with trans_a], b (K, N) [or (N, K) with trans_b], or b batched
// with the same leading dims as a. out (..., M, N). sgemm per batch.
vlt_tensor *vlt_matmul(vlt_tensor *a, vlt_tensor *b, bool trans_a, bool trans_b);
// x (..., in) · w (out, in)ᵀ + bias (out) [bias may be NULL] -> (..., out) f32. x may be a bf16
// activation (from vlt_layernorm_operand / vlt_linear_act) on the GPU in mixed precision.
vlt_tensor *vlt_linear(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias);
// residual + vlt_linear(x, w, bias) (the transformer block's out-projections). On the GPU in mixed
// precision one cuBLASLt call with the residual as C; elsewhere exactly vlt_add(residual, linear).
vlt_tensor *vlt_linear_residual(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias, vlt_tensor *residual);
// vlt_linear whose output only feeds an op that takes bf16 operands (vlt_linear, vlt_attention_qkv):
// bf16 on the GPU in mixed precision (rounded once from the fp32 accumulator plus bias), else f32.
vlt_tensor *vlt_linear_operand(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias);
// act(vlt_linear(x, w, bias)) for the transformer MLP's c_fc (act: GELU erf, GELU tanh or QuickGELU).
// On the GPU in mixed precision: one cuBLASLt product writing the pre-activation h in bf16 (bias
// in the epilogue), one kernel writing act(h) in bf16, and a backward that rounds g·act'(h) once
// for both products with the bias gradient summed in the same pass; the output is then a bf16
// activation that only a product (vlt_linear) may take. Elsewhere exactly the composition.
typedef enum { VLT_ACT_FN_GELU, VLT_ACT_FN_GELU_TANH, VLT_ACT_FN_QUICK_GELU } vlt_act_fn;
vlt_tensor *vlt_linear_act(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias, vlt_act_fn act);

// ---- elementwise (b broadcasts when it has one element or equals a's trailing dims) ----
vlt_tensor *vlt_add(vlt_tensor *a, vlt_tensor *b);
vlt_tensor *vlt_sub(vlt_tensor *a, vlt_tensor *b);
vlt_tensor *vlt_mul(vlt_tensor *a, vlt_tensor *b);
vlt_tensor *vlt_scale(vlt_tensor *a, float s);
vlt_tensor *vlt_exp(vlt_tensor *a);
vlt_tensor *vlt_log(vlt_tensor *a);
// Values outside [lo, hi] are clamped; the gradient there is 0 (as torch.clamp).
vlt_tensor *vlt_clamp(vlt_tensor *a, float lo, float hi);
vlt_tensor *vlt_gelu(vlt_tensor *a);        // x·Φ(x), erf form
vlt_tensor *vlt_gelu_tanh(vlt_tensor *a);   // tanh approximation
vlt_tensor *vlt_quick_gelu(vlt_tensor *a);  // x·σ(1.702x)
vlt_tensor *vlt_log_sigmoid(vlt_tensor *a); // log σ(x) (SigLIP)

// ---- reductions ----
vlt_tensor *vlt_sum_last(vlt_tensor *a);    // (..., C) -> (...)  [a 1-D input gives shape (1)]
vlt_tensor *vlt_mean_last(vlt_tensor *a);
vlt_tensor *vlt_sum_all(vlt_tensor *a);     // -> (1)
vlt_tensor *vlt_mean_all(vlt_tensor *a);

// ---- normalization, activations over the last dim ----
// x (..., C), w (C), b (C) [either may be NULL]; statistics over C; biased variance as torch.
vlt_tensor *vlt_layernorm(vlt_tensor *x, vlt_tensor *w, vlt_tensor *b, float eps);
// vlt_layernorm whose output only feeds a product (vlt_linear, vlt_linear_act): on the GPU in mixed
// precision the output is written once, in bf16 (C <= 1024); elsewhere exactly vlt_layernorm.
vlt_tensor *vlt_layernorm_operand(vlt_tensor *x, vlt_tensor *w, vlt_tensor *b, float eps);
vlt_tensor *vlt_softmax(vlt_tensor *x);
vlt_tensor *vlt_log_softmax(vlt_tensor *x);
// x / max(||x||_2, eps) over the last dim (torch.nn.functional.normalize, eps 1e-12).
vlt_tensor *vlt_l2_normalize(vlt_tensor *x, float eps);

// ---- losses ----
// logits (N, C) f32, targets (N) i32. Rows whose target == ignore_index do not count; the mean is
// over the counted rows (0 when none). label_smoothing ε as torch: (1-ε)·nll + ε·mean_c(-log p_c).
vlt_tensor *vlt_cross_entropy(vlt_tensor *logits, vlt_tensor *targets, int ignore_index, float label_smoothing);

// ---- attention ----
// q (B, H, Tq, D), k and v (B, H, Tk, D) -> (B, H, Tq, D). softmax(q·kᵀ·scale + mask)·v.
// causal: query i sees keys j <= i + (Tk - Tq). key_pad: (B, Tk) i32, nonzero = padding (masked),
// or NULL. A row with every key masked outputs zeros.
vlt_tensor *vlt_attention(vlt_tensor *q, vlt_tensor *k, vlt_tensor *v, float scale, bool causal, vlt_tensor *key_pad);
// Self-attention on the packed output of an in-projection: qkv (B, T, 3·W), W = heads·D, q, k, v
// the three W-wide thirds, each head D columns of them -> (B, T, W) with the heads merged (what
// the out-projection reads); scale 1/√D, masks as vlt_attention. On the GPU one fused kernel
// (no (B, H, T, T) tensor, no head split copies) for D = 32 or 64; elsewhere the same result
// through slices, permutes and vlt_attention.
// On the GPU in mixed precision with the tensor-core kernels (head width 32 or 64), qkv is taken
// (or rounded to) bf16 and the output is bf16, for the out-projection to read; elsewhere f32.
vlt_tensor *vlt_attention_qkv(vlt_tensor *qkv, int heads, bool causal, vlt_tensor *key_pad);

// ---- indexing ----
// weight (V, D), ids (...) i32 -> (..., D). An id outside [0, V) is an error naming it.
vlt_tensor *vlt_embedding(vlt_tensor *weight, vlt_tensor *ids);
// x (B, T, D), idx (B) i32 -> (B, D): row idx[b] of batch b (pooling at a token).
vlt_tensor *vlt_gather_rows(vlt_tensor *x, vlt_tensor *idx);

// ---- shape ----
vlt_tensor *vlt_reshape(vlt_tensor *x, int ndim, const int *shape);   // shares storage
// Copies x with its dims reordered: out.shape[i] = x.shape[perm[i]].
vlt_tensor *vlt_permute(vlt_tensor *x, const int *perm);
vlt_tensor *vlt_transpose(vlt_tensor *x, int d0, int d1);             // permute of two dims
vlt_tensor *vlt_contiguous(vlt_tensor *x);                            // copy of a strided view
// Images (B, 3, S, S) -> (B, (S/P)², 3·P·P), each patch flattened as (c, y, x): conv1's layout.
// No gradient (the images are inputs).
vlt_tensor *vlt_patchify(vlt_tensor *images, int patch);
// uint8 images (B, 3, H, W) -> f32 (B, 3, H, W) on the same device: (v / 255 - mean[c]) / std[c]
// in float32, the loader's ToTensor + Normalize (data/transform.h) bit for bit, so batches sent
// to the GPU as 8-bit pixels (4x fewer bytes) are normalised there to the float loader's values.
// No gradient (data). Built in autograd/ops_normalize.c (CPU) and ops_cuda_normalize.cu.
vlt_tensor *vlt_normalize_u8(const vlt_tensor *x, const float mean[3], const float std[3]);
// The table vlt_normalize_u8 applies: lut[c][v] = (v / 255 - mean[c]) / std[c] in float32.
void vlt_normalize_u8_table(const float mean[3], const float std[3], float lut[3][256]);
vlt_tensor *vlt_concat(vlt_tensor **xs, int n, int dim);
vlt_tensor *vlt_slice(vlt_tensor *x, int dim, int start, int len);
// f32 <-> bf16 (the gradient flows as f32).
vlt_tensor *vlt_cast(vlt_tensor *x, vlt_dtype dt);

// ---- non-differentiable helpers ----
// out = value everywhere (a fresh activation).
vlt_tensor *vlt_full(int ndim, const int *shape, float value);
// out[i] = i for i in [0, n), i32.
vlt_tensor *vlt_arange(int n);
// The argmax over the last dim, i32 (..., C) -> (...); for EOT pooling.
vlt_tensor *vlt_argmax_last(vlt_tensor *x);

#endif
