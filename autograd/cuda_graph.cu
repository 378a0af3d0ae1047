// cuda_graph.cu — a training step without host synchronisation (sync-free mode), and that step
// captured once as a CUDA graph and replayed (issue 17).
//
// Why: the eager step enqueues ~440 tape ops from the host, and a few ops wait for the device
// inside the step (the embedding's id check and its backward's owner lists, the cross-entropy's
// target check and count, the gradient norm read back for the clip). A graph replays the whole
// step with one launch, which needs a step in which no op waits for the device, allocates device
// memory, or decides anything from device values on the host.
//
// Sync-free mode (vlt_cuda_set_sync_free; off by default, so the measured eager path is
// unchanged) makes those ops stay on the device:
//   - index checks: a kernel compares the ids with their range and records the first bad one in a
//     check slot (packed (n - position) << 32 | value, atomicMax: the smallest position wins), sets
//     a "bad step" flag that the optimizer kernels obey (no update), and writes a sanitised copy
//     (bad ids replaced by a valid one) for the op to read, so no kernel reads out of bounds. The
//     host reads the slots once after the step (vlt_cuda_checks_read) and reports the op's usual
//     message, naming the id and its position (device.c keeps the host-side descriptions).
//   - the optimizer's changing scalars (AdamW's lr, lr / bias correction, sqrt of the second bias
//     correction) come from a small pinned host block copied to the device inside the step: the
//     captured graph holds that copy, so a replay picks up the values the host wrote before it.
//   - the clip coefficient is computed on the device from the device sum of squares.
//
// Capture (vlt_cuda_graph_begin / _end): relaxed capture mode on the context's stream. While
// capturing, the copies and waits of cuda_device.cu that would synchronise record why (the first
// reason is kept) instead of running, and _end then refuses the graph with that reason: the
// caller falls back to the eager step. The graph's device addresses are the step arena's, fixed
// once the arena stopped growing (the caller checks vlt_cuda_arena_system_allocs around capture).
//
// NEVER RUN ON A GPU so far (written in a session without one): compiles with make CUDA=1.
#include <string.h>

#include "autograd/ops_cuda_common.h"

extern "C" {
#include "autograd/error.h"
}

#define CHECK_SLOTS 64
#define HYPER_SLOTS 16

static struct {
    int sync_free;
    int capturing;
    char fail[256];
    int ready;
    unsigned long long *slots;       // device: CHECK_SLOTS packed first-bad records; then the bad flag
    unsigned long long *slots_host;  // pinned read-back
    float *hyper_dev, *hyper_host;   // HYPER_SLOTS x 4 floats each; pinned host staging
    const void *hyper_owner[HYPER_SLOTS];
    float *clip_dev;                 // [0] the last global norm, [1] the clip coefficient
    size_t last_nodes;               // nodes of the last captured graph (a report figure)
} g;

static int buffers_ready(void) {
    if (g.ready) return 1;
    if (vlt_cuda_ensure_init() != 0) return 0;
    cudaCheck(cudaMalloc(&g.slots, sizeof(unsigned long long) * (CHECK_SLOTS + 1)));
    cudaCheck(cudaMemset(g.slots, 0, sizeof(unsigned long long) * (CHECK_SLOTS + 1)));
    cudaCheck(cudaHostAlloc(&g.slots_host, sizeof(unsigned long long) * (CHECK_SLOTS + 1), cudaHostAllocDefault));
    cudaCheck(cudaMalloc(&g.hyper_dev, sizeof(float) * 4 * HYPER_SLOTS));
    cudaCheck(cudaHostAlloc(&g.hyper_host, sizeof(float) * 4 * HYPER_SLOTS, cudaHostAllocDefault));
    memset(g.hyper_host, 0, sizeof(float) * 4 * HYPER_SLOTS);
    cudaCheck(cudaMalloc(&g.clip_dev, sizeof(float) * 2));
    g.ready = 1;
    return 1;
}

extern "C" int vlt_cuda_set_sync_free(int on) {
    if (on && !buffers_ready()) return -1;
    g.sync_free = on != 0;
    return 0;
}
extern "C" int vlt_cuda_sync_free(void) { return g.sync_free; }

extern "C" void vlt_cuda_graph_release(void) {
    if (!g.ready) return;
    cudaCheck(cudaFree(g.slots));
    cudaCheck(cudaFreeHost(g.slots_host));
    cudaCheck(cudaFree(g.hyper_dev));
    cudaCheck(cudaFreeHost(g.hyper_host));
    cudaCheck(cudaFree(g.clip_dev));
    memset(&g, 0, sizeof g);
}

// ---- capture guards (called by cuda_device.cu before anything that would synchronise) ----
extern "C" int vlt_cuda_capture_refuse(const char *what) {
    if (!g.capturing) return 0;
    if (!g.fail[0]) snprintf(g.fail, sizeof g.fail, "%s inside the captured step", what);
    return 1;
}

// ---- index checks ----
// Slot k: the first bad position's record; slots[CHECK_SLOTS]: nonzero once any check failed.
__global__ void check_range_kernel(const int32_t *ids, int32_t *safe, int64_t n, int lo, int hi, bool has_ignore,
                                   int ignore, int32_t fill, unsigned long long *slot, unsigned long long *bad) {
    VLT_CUDA_LOOP(i, n) {
        int32_t v = ids[i];
        bool ok = (has_ignore && v == ignore) || (v >= lo && v < hi);
        safe[i] = ok ? v : fill;
        if (!ok) {
            unsigned long long rec = ((unsigned long long)(n - i) << 32) | (unsigned long long)(uint32_t)v;
            atomicMax(slot, rec);
            atomicMax(bad, 1ull);
        }
    }
}

extern "C" void vlt_cuda_check_range(const int32_t *ids, int32_t *safe, int64_t n, int lo, int hi, bool has_ignore,
                                     int ignore, int slot) {
    if (n <= 0 || !buffers_ready()) return;
    if (slot < 0 || slot >= CHECK_SLOTS) slot = CHECK_SLOTS - 1;  // shares the last slot (still reported)
    check_range_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(
        ids, safe, n, lo, hi, has_ignore, ignore, (int32_t)lo, g.slots + slot, g.slots + CHECK_SLOTS);
    cudaCheckLaunch();
}

extern "C" int vlt_cuda_check_slots(void) { return CHECK_SLOTS; }

// Clears every slot (stream-ordered: at the start of a step, or before a graph launch).
extern "C" void vlt_cuda_checks_clear(void) {
    if (!buffers_ready()) return;
    cudaCheck(cudaMemsetAsync(g.slots, 0, sizeof(unsigned long long) * (CHECK_SLOTS + 1), vlt_cuda_stream()));
}

// Waits for the step and copies the first n slots to out (and the bad flag to *bad): the one
// synchronisation after a sync-free step.
extern "C" void vlt_cuda_checks_read(unsigned long long *out, int n, int *bad) {
    *bad = 0;
    if (!g.ready || vlt_cuda_capture_refuse("the checks read back")) return;
    if (n > CHECK_SLOTS) n = CHECK_SLOTS;
    cudaCheck(cudaMemcpyAsync(g.slots_host, g.slots, sizeof(unsigned long long) * (CHECK_SLOTS + 1),
                              cudaMemcpyDeviceToHost, vlt_cuda_stream()));
    cudaCheck(cudaStreamSynchronize(vlt_cuda_stream()));
    for (int i = 0; i < n; i++) out[i] = g.slots_host[i];
    *bad = g.slots_host[CHECK_SLOTS] != 0;
}

extern "C" const int *vlt_cuda_bad_flag(void) { return g.ready ? (const int *)(g.slots + CHECK_SLOTS) : nullptr; }

// ---- count of targets that are not ignore_index (the cross-entropy's divisor), on the device ----
__global__ void count_kernel(const int32_t *t, int n, int ignore, int *out) {
    __shared__ int sh[VLT_CUDA_THREADS];
    int s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += t[i] != ignore;
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) sh[threadIdx.x] += sh[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[0] = sh[0];
}

extern "C" void vlt_cuda_count_not(const int32_t *t, int n, int ignore, int *c) {
    count_kernel<<<1, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(t, n, ignore, c);
    cudaCheckLaunch();
}

// ---- optimizer scalars: a pinned block per optimizer, copied inside the step ----
// Returns the device address of owner's 4 floats after writing v[0..3] to its pinned block and
// enqueuing the copy. The caller must not write the block again before the step that copies it
// has run (a sync-free step ends with vlt_cuda_checks_read, which waits).
extern "C" const float *vlt_cuda_hyper_upload(const void *owner, const float v[4]) {
    if (!buffers_ready()) return nullptr;
    int k = -1;
    for (int i = 0; i < HYPER_SLOTS && k < 0; i++)
        if (g.hyper_owner[i] == owner) k = i;
    for (int i = 0; i < HYPER_SLOTS && k < 0; i++)
        if (!g.hyper_owner[i]) { g.hyper_owner[i] = owner; k = i; }
    if (k < 0) k = HYPER_SLOTS - 1;
    memcpy(g.hyper_host + 4 * k, v, 4 * sizeof(float));
    cudaCheck(cudaMemcpyAsync(g.hyper_dev + 4 * k, g.hyper_host + 4 * k, 4 * sizeof(float), cudaMemcpyHostToDevice,
                              vlt_cuda_stream()));
    return g.hyper_dev + 4 * k;
}

// For a graph replay: writes owner's pinned block only (the graph holds the copy).
extern "C" void vlt_cuda_hyper_set(const void *owner, const float v[4]) {
    if (!g.ready) return;
    for (int i = 0; i < HYPER_SLOTS; i++)
        if (g.hyper_owner[i] == owner) { memcpy(g.hyper_host + 4 * i, v, 4 * sizeof(float)); return; }
}

// ---- the clip coefficient from the device sum of squares ----
// The host path's arithmetic: norm = (float)sqrt(ss); k = max / (norm + 1e-6f) when finite and
// above max, else 1 (the scale kernel then leaves the gradients alone).
__global__ void clip_coef_kernel(const double *ss, float max_norm, float *out) {
    float norm = (float)sqrt(ss[0]);
    out[0] = norm;
    out[1] = (max_norm > 0.0f && isfinite(norm) && norm > max_norm) ? __fdiv_rn(max_norm, __fadd_rn(norm, 1e-6f))
                                                                      : 1.0f;
}

extern "C" const float *vlt_cuda_clip_coef(const double *ss, float max_norm) {
    if (!buffers_ready()) return nullptr;
    clip_coef_kernel<<<1, 1, 0, vlt_cuda_stream()>>>(ss, max_norm, g.clip_dev);
    cudaCheckLaunch();
    return g.clip_dev;
}

extern "C" float vlt_cuda_last_grad_norm(void) {
    if (!g.ready || vlt_cuda_capture_refuse("the gradient norm read back")) return 0.0f;
    float v = 0;
    cudaCheck(cudaMemcpyAsync(g.slots_host, g.clip_dev, sizeof(float), cudaMemcpyDeviceToHost, vlt_cuda_stream()));
    cudaCheck(cudaStreamSynchronize(vlt_cuda_stream()));
    memcpy(&v, g.slots_host, sizeof v);
    return v;
}

// ---- graph capture and replay ----
extern "C" int vlt_cuda_graph_begin(void) {
    if (!buffers_ready()) return -1;
    g.fail[0] = 0;
    cudaError_t e = cudaStreamBeginCapture(vlt_cuda_stream(), cudaStreamCaptureModeRelaxed);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        vlt_error_set(VLT_ERR_DEVICE, "cuda graph: cannot begin capture: %s", cudaGetErrorString(e));
        return -1;
    }
    g.capturing = 1;
    return 0;
}

// Ends the capture; on success *exec is the instantiated graph. -1 with the reason (the first
// synchronising call met, or CUDA's error) otherwise; nothing of the captured step has run.
extern "C" int vlt_cuda_graph_end(void **exec) {
    *exec = nullptr;
    cudaGraph_t graph = nullptr;
    cudaError_t e = cudaStreamEndCapture(vlt_cuda_stream(), &graph);
    g.capturing = 0;
    if (e != cudaSuccess || g.fail[0]) {
        (void)cudaGetLastError();
        if (graph) cudaGraphDestroy(graph);
        vlt_error_set(VLT_ERR_STATE, "cuda graph: capture failed: %s", g.fail[0] ? g.fail : cudaGetErrorString(e));
        return -1;
    }
    size_t nodes = 0;
    if (cudaGraphGetNodes(graph, nullptr, &nodes) == cudaSuccess) g.last_nodes = nodes;
    cudaGraphExec_t ge = nullptr;
    e = cudaGraphInstantiate(&ge, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        vlt_error_set(VLT_ERR_STATE, "cuda graph: cannot instantiate the captured step: %s", cudaGetErrorString(e));
        return -1;
    }
    *exec = (void *)ge;
    return 0;
}

extern "C" int vlt_cuda_graph_capturing(void) { return g.capturing; }
extern "C" size_t vlt_cuda_graph_nodes(void) { return g.last_nodes; }

// Clears the check slots, then replays the step (both on the stream; returns at once).
extern "C" void vlt_cuda_graph_launch(void *exec) {
    vlt_cuda_checks_clear();
    cudaCheck(cudaGraphLaunch((cudaGraphExec_t)exec, vlt_cuda_stream()));
}

extern "C" void vlt_cuda_graph_free(void *exec) {
    if (exec) cudaCheck(cudaGraphExecDestroy((cudaGraphExec_t)exec));
}
