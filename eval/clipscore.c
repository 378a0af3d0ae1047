// clipscore.c — CLIPScore and RefCLIPScore from features (see clipscore.h).
#include "eval/clipscore.h"

#include <math.h>

static double cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

vlt_status vlt_clipscore(const float *cand, const float *img, int n, int dim, const float *refs, const int *ref_start,
                         vlt_clipscore_result *out, double *per_clip_s, double *per_ref_clip_s) {
    *out = (vlt_clipscore_result){0};
    if (n < 1 || dim < 1) return vlt_error_set(VLT_ERR_ARG, "clipscore: no candidates");
    double sum = 0, sum_ref = 0;
    for (int i = 0; i < n; i++) {
        double c = cosine(cand + (size_t)i * dim, img + (size_t)i * dim, dim);
        double s = VLT_CLIPSCORE_W * (c > 0 ? c : 0);
        sum += s;
        if (per_clip_s) per_clip_s[i] = s;
        if (!refs) continue;
        if (ref_start[i + 1] <= ref_start[i])
            return vlt_error_set(VLT_ERR_ARG, "clipscore: candidate %d has no reference", i);
        double best = -INFINITY;
        for (int r = ref_start[i]; r < ref_start[i + 1]; r++) {
            double t = cosine(cand + (size_t)i * dim, refs + (size_t)r * dim, dim);
            if (t > best) best = t;
        }
        if (best < 0) best = 0;
        double h = s + best > 0 ? 2 * s * best / (s + best) : 0;
        sum_ref += h;
        if (per_ref_clip_s) per_ref_clip_s[i] = h;
    }
    out->n = n;
    out->clip_s = sum / n;
    out->ref_clip_s = refs ? sum_ref / n : 0;
    return VLT_OK;
}
