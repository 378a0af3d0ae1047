// clipscore.h — CLIPScore and RefCLIPScore (Hessel et al., EMNLP 2021) from features.
//
//   CLIP-S(c, v)       = w · max(cos(c, v), 0), w = 2.5
//   RefCLIP-S(c, R, v) = H-Mean(CLIP-S(c, v), max(max_{r in R} cos(c, r), 0))
// with H-Mean(a, b) = 2ab / (a + b) (0 when both are 0). The text of a candidate and of every
// reference is "A photo depicts " + the caption (the authors' prefix), encoded by the model's
// text tower; the image by its image tower with the evaluation transform (as open_clip's
// preprocess). Features need not be normalized here: cosines are computed in double.
#ifndef VLT_EVAL_CLIPSCORE_H
#define VLT_EVAL_CLIPSCORE_H

#include <stdint.h>

#include "autograd/error.h"

#define VLT_CLIPSCORE_W 2.5
#define VLT_CLIPSCORE_PREFIX "A photo depicts "

typedef struct {
    double clip_s;      // mean over candidates
    double ref_clip_s;  // mean over candidates (0 when no references were given)
    int n;
} vlt_clipscore_result;

// cand (n, dim) and img (n, dim): candidate i describes image row i. refs (n_refs, dim) with
// ref_start[i] .. ref_start[i + 1] the references of candidate i (ref_start of n + 1 entries; NULL
// refs: CLIP-S only). per_clip_s, per_ref_clip_s (n each) may be NULL.
vlt_status vlt_clipscore(const float *cand, const float *img, int n, int dim, const float *refs, const int *ref_start,
                         vlt_clipscore_result *out, double *per_clip_s, double *per_ref_clip_s);

#endif
