// resample.h — PIL's bicubic resampling of 8-bit RGB (Image.crop(box).resize(size, BICUBIC)) in
// PIL's own fixed-point arithmetic, with a scalar kernel and an AVX2 kernel that compute the same
// integers (the AVX2 one is picked at run time when the CPU has it).
//
// Arithmetic (Pillow's ImagingResample*_8bpc): per axis, each output position gets the bicubic
// (a = -0.5) weights of its input window, support widened by the scale factor when downscaling,
// normalized to sum 1 and rounded to 22-bit fixed point; a pass sums pixel * weight in int32 from
// 1 << 21 (rounding) and clips (sum >> 22) to 0..255. Two passes through an 8-bit intermediate,
// in Pillow 13's order (vertical first when the height shrinks by more than twice what the width
// does). The AVX2 kernels do the same int32 multiplies and adds in a different order; integer
// addition is exact, so the results are identical bit for bit (tests/test_data_transform.c
// compares the two on random images).
#ifndef VLT_DATA_RESAMPLE_H
#define VLT_DATA_RESAMPLE_H

#include <stdint.h>

#include "autograd/error.h"
#include "data/image.h"
#include "data/transform.h"

typedef enum {
    VLT_RESAMPLE_AUTO = 0,   // AVX2 when the CPU has it, scalar otherwise
    VLT_RESAMPLE_SCALAR,     // plain C: the reference the SIMD kernels are tested against
} vlt_resample_kernel;

// The window [ox, ox+ow) x [oy, oy+oh) of PIL's img.crop(box).resize((full_w, full_h), BICUBIC):
// out is uint8 HWC (oh, ow, 3). The caller checks that the box lies inside the image and that
// the window lies inside (full_w, full_h).
vlt_status vlt_resample_window(const vlt_image *img, vlt_crop_box box, int full_w, int full_h,
                               int ox, int oy, int ow, int oh, vlt_resample_kernel kernel, uint8_t *out);

// The same window delivered a row at a time, in order: fn(ctx, y, px) for y = 0 .. oh-1, where px
// holds the ow * 3 bytes of output row y (valid during the call only). No (oh, ow, 3) buffer is
// needed: the passes keep only a few rows.
typedef void (*vlt_resample_row_fn)(void *ctx, int y, const uint8_t *px);
vlt_status vlt_resample_window_rows(const vlt_image *img, vlt_crop_box box, int full_w, int full_h,
                                    int ox, int oy, int ow, int oh, vlt_resample_kernel kernel,
                                    vlt_resample_row_fn fn, void *ctx);

// What `kernel` runs on this CPU: "avx2" or "scalar".
const char *vlt_resample_kernel_name(vlt_resample_kernel kernel);

#endif
