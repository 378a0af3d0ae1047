// embeddings_h5.h — image and text embeddings in one HDF5 file, for `vlt eval retrieval` and
// for Python (h5py) alike.
//
// Layout (all at the root group):
//   image_embeds      float32 (N, D)
//   text_embeds       float32 (M, D)
//   image_ids         int64   (N)     dataset ids of the images (e.g. COCO image ids)
//   text_image_index  int32   (M)     row of image_embeds that each caption describes
//   attributes        model, config (variable-length UTF-8 strings; "" when unknown)
// h5py: f["image_embeds"][:], f.attrs["model"].
#ifndef VLT_EVAL_EMBEDDINGS_H5_H
#define VLT_EVAL_EMBEDDINGS_H5_H

#include <stdint.h>

#include "autograd/error.h"

typedef struct {
    int64_t n_images, n_texts, dim;
    float *image_embeds;        // (n_images, dim)
    float *text_embeds;         // (n_texts, dim)
    int64_t *image_ids;         // (n_images)
    int32_t *text_image_index;  // (n_texts), each in [0, n_images)
    char *model;                // may be NULL when writing
    char *config;               // may be NULL when writing
} vlt_eval_embeddings;

vlt_status vlt_eval_embeddings_write(const char *path, const vlt_eval_embeddings *e);
// Reads and checks a file (shapes agree, indices in range); *e owns its arrays afterwards.
vlt_status vlt_eval_embeddings_read(const char *path, vlt_eval_embeddings *e);
void vlt_eval_embeddings_free(vlt_eval_embeddings *e);

#endif
