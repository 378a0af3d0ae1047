// json_file.h — reading a whole JSON file with cJSON, with errors that name the file and the
// position of a parse error. Shared by the eval loaders (captions, VQA).
#ifndef VLT_EVAL_JSON_FILE_H
#define VLT_EVAL_JSON_FILE_H

#include <cJSON.h>

#include "autograd/error.h"

// Parses the file at path; *out is the root (free with cJSON_Delete).
vlt_status vlt_eval_json_load(const char *path, cJSON **out);
// Writes root to path (pretty-printed, with a final newline).
vlt_status vlt_eval_json_save(const char *path, const cJSON *root);
// The integer value of item as int64 (a JSON number that is integral, or a string of digits
// as some exporters write ids); returns 0 when it is neither.
int vlt_eval_json_id(const cJSON *item, long long *id);

#endif
