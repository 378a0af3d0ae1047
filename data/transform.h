// transform.h — image transforms for training and evaluation: RandomResizedCrop, resize of the
// shortest side + center crop, horizontal flip, normalization to float32 CHW.
//
// The pixels match open_clip's PIL + torchvision pipeline: resampling is PIL's BICUBIC (a = -0.5,
// support widened by the scale factor when downscaling, i.e. antialiased), computed with PIL's
// fixed-point arithmetic (22-bit coefficients), two passes through an 8-bit intermediate in the
// order Pillow 13 picks (vertical first when the height shrinks by more than twice what the width
// does; older Pillow always went horizontal first, which can differ by a few levels in those
// cases); the result is 8-bit like PIL's, then ToTensor (/255) and Normalize in float32.
// The crop box follows torchvision's RandomResizedCrop.get_params (10 attempts of area scale and
// log-uniform ratio, then the central fallback) with Python's round-half-even; its random draws
// come from autograd/rng.h keyed by (seed, VLT_RNG_AUGMENT, epoch, hash of the sample key), so a
// sample gets the same crop whatever thread decodes it.
#ifndef VLT_DATA_TRANSFORM_H
#define VLT_DATA_TRANSFORM_H

#include <stdint.h>

#include "autograd/error.h"
#include "data/image.h"

typedef struct {
    int size;                       // output side (224)
    float scale_min, scale_max;     // RandomResizedCrop area scale (0.9, 1.0)
    float ratio_min, ratio_max;     // aspect ratio w/h (3/4, 4/3)
    int hflip;                      // random horizontal flip (probability 1/2) when nonzero
    float mean[3], std[3];          // OpenAI CLIP mean/std by default
} vlt_transform_cfg;

// size, scale (0.9, 1.0), ratio (3/4, 4/3), no flip, OpenAI CLIP mean/std.
void vlt_transform_cfg_default(vlt_transform_cfg *cfg, int size);

// A pixel rectangle of a source image: columns [x, x+w), rows [y, y+h).
typedef struct { int x, y, w, h; } vlt_crop_box;

// out: float32 CHW (3, size, size), normalized. Random choices keyed by (seed, epoch, key).
vlt_status vlt_transform_train(const vlt_image *img, const vlt_transform_cfg *cfg,
                               uint64_t seed, uint64_t epoch, const char *key, float *out);
// out: float32 CHW (3, size, size): shortest side resized to size (bicubic), center crop, normalized.
vlt_status vlt_transform_eval(const vlt_image *img, const vlt_transform_cfg *cfg, float *out);

// The same two pipelines stopped before ToTensor + Normalize: out is uint8 CHW (3, size, size), the
// 8-bit pixels after crop / resize / flip, for batches normalised later on the device
// (vlt_normalize_u8 in autograd/ops.h computes the float values of vlt_transform_train/eval from
// them bit for bit). Same random draws, same errors.
vlt_status vlt_transform_train_u8(const vlt_image *img, const vlt_transform_cfg *cfg, uint64_t seed, uint64_t epoch,
                                  const char *key, uint8_t *out);
vlt_status vlt_transform_eval_u8(const vlt_image *img, const vlt_transform_cfg *cfg, uint8_t *out);

// --- the pieces, exposed for tests and benchmarks ------------------------------------------------

// torchvision RandomResizedCrop.get_params for a width x height image, drawing from
// (seed, stream). Sets *flip (0/1) when flip is non-NULL: the flip draw (always 0 when !cfg->hflip).
vlt_crop_box vlt_transform_rrc_box(int width, int height, const vlt_transform_cfg *cfg,
                                   uint64_t seed, uint64_t stream, int *flip);
// The stream the train transform draws from: vlt_rng_stream(VLT_RNG_AUGMENT, epoch, hash(key)).
uint64_t vlt_transform_stream(uint64_t epoch, const char *key);
// torchvision's Resize(size) output size for the shortest side: (out_w, out_h).
void vlt_transform_shortest_size(int width, int height, int size, int *out_w, int *out_h);
// torchvision's CenterCrop box of size x size inside a width x height image (both >= size).
vlt_crop_box vlt_transform_center_box(int width, int height, int size);

// PIL Image.crop(box).resize((out_w, out_h), BICUBIC): out is uint8 HWC (out_h, out_w, 3).
// The box must lie inside the image. A box already of the output size is copied.
vlt_status vlt_transform_resize(const vlt_image *img, vlt_crop_box box, int out_w, int out_h, uint8_t *out);
// uint8 HWC (h, w, 3) -> float32 CHW (3, h, w): (v / 255 - mean[c]) / std[c], mirrored if flip.
void vlt_transform_normalize(const uint8_t *hwc, int w, int h, const float mean[3], const float std[3],
                             int flip, float *out);

#endif
