// pack.h — packing image-caption pairs into webdataset shards (data/shardwriter.h) from COCO
// caption annotations (optionally restricted by the Karpathy split file), a TSV of
// path<TAB>caption, a folder of image + .txt pairs, or an image-folder classification dataset.
//
// Classes (`classes`, as torchvision's ImageFolder): every sub-folder of DIR is a class, indexed in
// sorted name order (code point order, hidden folders included, as find_classes); its samples are
// the image files under it, recursively, sorted by path (torchvision's extensions: .jpg .jpeg .png
// .webp, and .bmp .pgm .ppm .tif .tiff, which vlt cannot decode and counts as bad images). Each
// sample gets KEY.cls (the index), KEY.json {"class", "label", "source_path"} and, when a .txt of
// the same name exists, KEY.txt (the caption is optional). DIR_OUT/classes.txt lists the class
// names in index order. `vlt shards` (train/shards_cmd.c) is the
// command line over this.
//
// Images are read and (re-)encoded on all OpenMP threads in batches and appended in input
// order. A sample that cannot be packed (no caption, an empty one, a missing or undecodable image,
// an annotation path that leaves the images folder, a TSV line without a tab) is skipped and
// counted by reason; a malformed annotation file, or a write that fails, stops the pack with an
// error and no half-written output (the shard writer's abort).
#ifndef VLT_PACK_H
#define VLT_PACK_H

#include <stdbool.h>
#include <stdio.h>

#include "data/shardwriter.h"

typedef struct {
    const char *coco;       // COCO captions JSON ({images: [{id, file_name}], annotations: [{image_id, caption}]})
    const char *karpathy;   // Karpathy dataset_coco.json (with split)
    const char *split;      // train (includes restval) | val | test
    const char *images;     // the images folder of coco/karpathy; optional base of relative TSV paths
    const char *tsv;        // lines of path<TAB>caption
    const char *folder;     // image files with a .txt caption of the same name
    const char *classes;    // an image-folder classification dataset: DIR/<class>/<image> (see below)
    bool each_caption;      // coco/karpathy: one sample per caption instead of per image
    long long limit;        // > 0: stop after this many input items
} vlt_pack_source;

typedef enum {
    VLT_PACK_MISSING_CAPTION,   // an image without any caption (no annotation, no .txt)
    VLT_PACK_EMPTY_CAPTION,     // a caption that is empty or only white space
    VLT_PACK_MISSING_IMAGE,     // an image file that cannot be read
    VLT_PACK_BAD_IMAGE,         // an image that does not decode
    VLT_PACK_OUTSIDE_IMAGES,    // an annotation's path that is absolute or climbs out of `images` (..)
    VLT_PACK_BAD_LINE,          // a TSV line without a tab between path and caption
    VLT_PACK_N_SKIP
} vlt_pack_skip;

// "missing caption", "empty caption", ... for messages and summaries.
const char *vlt_pack_skip_name(vlt_pack_skip reason);

typedef struct {
    long long written;                   // samples written
    int shards;                          // shards written
    long long skipped[VLT_PACK_N_SKIP];  // skipped samples by reason
    int classes;                         // --classes: class folders found (labels 0 .. classes-1)
} vlt_pack_stats;

// Checks that exactly one source is given with what it needs; the message names the option.
vlt_status vlt_pack_source_check(const vlt_pack_source *src);

// Packs the source's pairs with the shard writer configuration `cfg`. Each skipped sample is
// reported on `warn` (NULL: silently; the first 20 by name, then a count). On success `stats`
// holds what was written and skipped; no sample written at all is an error.
vlt_status vlt_pack_shards(const vlt_pack_source *src, const vlt_shardwriter_cfg *cfg, FILE *warn,
                           vlt_pack_stats *stats);

#endif
