// cuda_profile.cu — a per-op time profile of device work, from CUDA events (there is no nsys on
// the lent machines). While a profile is open, the tape records an event after each op's forward
// launches (vlt_tape_record runs after them) and after each node's backward; the time between
// two consecutive marks is charged to the later mark's (phase, op). Ops that record no node
// (no_grad, constants) are charged to the next op that does. Events cost about a microsecond of
// host time each, so a profiled step runs a little slower than an unprofiled one.
#include <string.h>

#include "autograd/ops_cuda_common.h"

namespace {
constexpr int kMaxMarks = 1 << 16;
struct mark {
    const char *phase, *op;
};
struct {
    bool on;
    int n;
    cudaEvent_t ev[kMaxMarks];
    mark m[kMaxMarks];
    int created;
} g_prof;
}  // namespace

extern "C" bool vlt_cuda_prof_on(void) { return g_prof.on; }

extern "C" void vlt_cuda_prof_start(void) {
    g_prof.on = true;
    g_prof.n = 0;
    vlt_cuda_prof_mark("start", "start");
}

extern "C" void vlt_cuda_prof_mark(const char *phase, const char *op) {
    if (!g_prof.on || g_prof.n >= kMaxMarks) return;
    int i = g_prof.n++;
    if (i >= g_prof.created) {
        cudaCheck(cudaEventCreate(&g_prof.ev[i]));
        g_prof.created = i + 1;
    }
    g_prof.m[i] = mark{phase, op};
    cudaCheck(cudaEventRecord(g_prof.ev[i], vlt_cuda_stream()));
}

// Prints the top rows by total time: phase, op, count, ms, share; then the total.
extern "C" void vlt_cuda_prof_stop(FILE *f, int top) {
    if (!g_prof.on) return;
    vlt_cuda_prof_mark("end", "end");
    g_prof.on = false;
    cudaCheck(cudaEventSynchronize(g_prof.ev[g_prof.n - 1]));
    struct row {
        const char *phase, *op;
        int count;
        double ms;
    };
    static row rows[512];
    int nr = 0;
    double total = 0;
    for (int i = 1; i < g_prof.n; i++) {
        float ms = 0;
        cudaCheck(cudaEventElapsedTime(&ms, g_prof.ev[i - 1], g_prof.ev[i]));
        total += ms;
        int r = 0;
        while (r < nr && !(strcmp(rows[r].phase, g_prof.m[i].phase) == 0 && strcmp(rows[r].op, g_prof.m[i].op) == 0)) r++;
        if (r == nr) {
            if (nr == 512) continue;
            rows[nr++] = row{g_prof.m[i].phase, g_prof.m[i].op, 0, 0};
        }
        rows[r].count++;
        rows[r].ms += ms;
    }
    for (int a = 1; a < nr; a++)  // insertion sort, largest first
        for (int b = a; b > 0 && rows[b].ms > rows[b - 1].ms; b--) {
            row t = rows[b]; rows[b] = rows[b - 1]; rows[b - 1] = t;
        }
    fprintf(f, "device profile: %d marks, %.2f ms between the first and the last\n", g_prof.n, total);
    fprintf(f, "  %-6s %-22s %7s %10s %7s\n", "phase", "op", "count", "ms", "share");
    for (int r = 0; r < nr && r < top; r++)
        fprintf(f, "  %-6s %-22s %7d %10.3f %6.1f%%\n", rows[r].phase, rows[r].op, rows[r].count, rows[r].ms,
                100.0 * rows[r].ms / (total > 0 ? total : 1));
}
