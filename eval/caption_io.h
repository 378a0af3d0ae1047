// caption_io.h — loading a captioning evaluation from the COCO files into a caption set.
//
//   predictions: the COCO results format, [{"image_id": 42, "caption": "a dog ..."}, ...]
//                (one caption per image; other keys are ignored);
//   references:  the COCO annotation format, {"annotations": [{"image_id": 42, "caption": ...}, ...],
//                "images": [...]} (only "annotations" is read).
// As COCOEvalCap, the evaluated set is the predicted images, each with all of its references.
// Unless the text is already tokenized, captions are tokenized as COCOEvalCap.evaluate does it:
// every reference of the evaluated images in one vlt_eval_ptb_tokenize_batch call (images in the
// annotation file's "images" order, then any it does not list in order of first annotation; each
// image's references in annotation order), then every candidate in one call in the same order.
// A caption holding a line break other than '\n' shifts the later captions' lines exactly as in
// pycocoevalcap (scored that way, with a warning on stderr).
// A prediction without references, a duplicate prediction, or (unless allow_subset) a referenced
// image without prediction is an error naming the file and the item.
#ifndef VLT_EVAL_CAPTION_IO_H
#define VLT_EVAL_CAPTION_IO_H

#include <cJSON.h>

#include "eval/caption_set.h"

typedef struct {
    int pretokenized;  // 1: captions are already tokenized (split on whitespace only)
    int allow_subset;  // 1: score only the predicted images, as COCOEvalCap does
} vlt_eval_caption_load_opts;

// *set gets one image per prediction, in file order; *image_ids (n) their ids (caller frees).
vlt_status vlt_eval_captions_load(const char *pred_path, const char *refs_path,
                                  const vlt_eval_caption_load_opts *opts,
                                  vlt_eval_caption_set **set, long long **image_ids, int *n);

// The same from already parsed JSON (pred_path / refs_path only name the sources in errors).
vlt_status vlt_eval_captions_from_json(const cJSON *pred, const char *pred_path, const cJSON *refs,
                                       const char *refs_path, const vlt_eval_caption_load_opts *opts,
                                       vlt_eval_caption_set **set, long long **image_ids, int *n);

#endif
