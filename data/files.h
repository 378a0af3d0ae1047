// files.h — whole-file reads for the parsers of data/ (COCO / Karpathy / VQA JSON, BERT
// vocabularies, captions, images to pack) and the commands that read one file (vlt explain);
// making a folder with its parents (output folders of the writers and commands).
#ifndef VLT_DATA_FILES_H
#define VLT_DATA_FILES_H

#include <stddef.h>

#include <cJSON.h>

#include "autograd/error.h"

// The whole file, with a NUL after it (binary data may hold NULs of its own); *len (may be NULL)
// gets its size. NULL with errno set on failure (EIO for a read error or no memory).
char *vlt_read_file(const char *path, size_t *len);
// The file parsed as JSON into *out; VLT_ERR_IO "cannot read PATH: reason" or VLT_ERR_FORMAT
// "PATH is not valid JSON (near byte N)".
vlt_status vlt_read_json_file(const char *path, cJSON **out);
// mkdir -p: path and every missing parent, with mode; VLT_ERR_IO "cannot create DIR: reason"
// naming the component that failed, also when path is an existing file (VLT_ERR_ARG when the
// path is too long).
vlt_status vlt_make_dirs(const char *path, unsigned mode);

#endif
