// safetensors.h — the safetensors weight format: reading a file memory-mapped, writing named
// arrays atomically, and loading/saving a model's parameter table (open_clip state_dict names)
// with F32/BF16/F16 conversion. Also f16 <-> f32 conversion (bf16 lives in autograd/tensor.h).
//
// File layout (huggingface/safetensors):
//   u64 little-endian N | N bytes of JSON header | data area
//   header: {"__metadata__": {"k": "v", ...},
//            "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// Offsets are bytes relative to the data area; each tensor is row-major little-endian; the
// tensors tile the data area exactly (no gaps, no overlap). Writers pad the header with spaces so
// that the data area starts 8-byte aligned. A 0-d tensor has "shape": [] and one element.
//
// Every error names the file and, where there is one, the tensor key.
#ifndef VLT_CHECKPOINTS_SAFETENSORS_H
#define VLT_CHECKPOINTS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"
#include "autograd/params.h"

#define VLT_ST_MAX_DIMS 8

// The dtypes of the format that vlt knows (their names in the file are "F32", "BF16", ...).
// Reading: any of them can be opened and its bytes reached; F32/BF16/F16/F64 convert to f32,
// I32/I64 (and the other integers) to i64. Writing: see vlt_st_array.
typedef enum {
    VLT_ST_F32 = 0,
    VLT_ST_BF16,
    VLT_ST_F16,
    VLT_ST_F64,
    VLT_ST_I64,
    VLT_ST_I32,
    VLT_ST_I16,
    VLT_ST_I8,
    VLT_ST_U64,
    VLT_ST_U32,
    VLT_ST_U16,
    VLT_ST_U8,
    VLT_ST_BOOL,
    VLT_ST_F8_E4M3,
    VLT_ST_F8_E5M2,
    VLT_ST_C64,
    VLT_ST_N_DTYPES
} vlt_st_dtype;

const char *vlt_st_dtype_name(vlt_st_dtype dt);   // "F32", ...; "?" when out of range
size_t vlt_st_dtype_size(vlt_st_dtype dt);        // bytes per element; 0 when out of range
// Parses a header dtype name; returns false for a name the format does not define (or vlt lacks).
bool vlt_st_dtype_parse(const char *name, vlt_st_dtype *out);

// IEEE half precision <-> f32: round to nearest, ties to even; subnormals exact; overflow to
// inf; NaN stays NaN (quiet).
uint16_t vlt_f32_to_f16(float x);
float vlt_f16_to_f32(uint16_t h);
void vlt_f32_to_f16_array(uint16_t *dst, const float *src, size_t n);
void vlt_f16_to_f32_array(float *dst, const uint16_t *src, size_t n);

// --- reading ----------------------------------------------------------------------------------

typedef struct vlt_safetensors vlt_safetensors;   // an open file (opaque)

// One tensor of an open file. Valid until vlt_safetensors_close.
typedef struct {
    const char *name;
    vlt_st_dtype dtype;
    int ndim;                          // 0 (a scalar) .. VLT_ST_MAX_DIMS
    int64_t shape[VLT_ST_MAX_DIMS];
    int64_t numel;                     // product of shape (1 for a 0-d tensor)
    size_t nbytes;                     // numel * dtype size
    uint64_t offset;                   // in the data area
    const void *data;                  // in the mapping, read-only; aligned only as the file
                                       // made it: read through memcpy or vlt_safetensors_read_*
} vlt_st_tensor;

// Maps `path` read-only and validates the whole header (dtypes, shapes, offsets inside the data
// area, tensors tiling it exactly, sizes = numel * dtype size, metadata values strings).
vlt_status vlt_safetensors_open(const char *path, vlt_safetensors **out);
// The same over a buffer the caller keeps alive until close (`name` is used in messages).
vlt_status vlt_safetensors_open_memory(const void *buf, size_t len, const char *name,
                                       vlt_safetensors **out);
void vlt_safetensors_close(vlt_safetensors *f);   // NULL is fine

const char *vlt_safetensors_path(const vlt_safetensors *f);
int vlt_safetensors_count(const vlt_safetensors *f);
// The i-th tensor in name order (strcmp), 0 <= i < count.
const vlt_st_tensor *vlt_safetensors_at(const vlt_safetensors *f, int i);
// The tensor called `name`, or NULL (no error set: absence is a normal answer).
const vlt_st_tensor *vlt_safetensors_get(const vlt_safetensors *f, const char *name);

// `__metadata__`: the value for `key`, or NULL. Entries are in key order.
const char *vlt_safetensors_metadata(const vlt_safetensors *f, const char *key);
int vlt_safetensors_metadata_count(const vlt_safetensors *f);
void vlt_safetensors_metadata_at(const vlt_safetensors *f, int i, const char **key, const char **value);

// Copies tensor `name` into dst[0..n) as f32 (from F32, BF16, F16 or F64); n must equal its
// numel. Errors name the file and the key (absent, wrong size, dtype not convertible).
vlt_status vlt_safetensors_read_f32(const vlt_safetensors *f, const char *name, float *dst, int64_t n);
// The same as i64 from any integer dtype or BOOL.
vlt_status vlt_safetensors_read_i64(const vlt_safetensors *f, const char *name, int64_t *dst, int64_t n);

// --- writing ----------------------------------------------------------------------------------

typedef struct {
    const char *key, *value;
} vlt_st_meta;

// One named array to write. `src` is the dtype of `data` in memory: equal to `dtype` for a plain
// copy, or a float type (F32, BF16, F16, F64) converted through f32 to another float `dtype`.
// Zero-initialised `src` means F32, so {.dtype = VLT_ST_BF16, .data = floats} converts.
typedef struct {
    const char *name;                 // unique, non-empty, not "__metadata__"
    vlt_st_dtype dtype;               // stored in the file
    vlt_st_dtype src;                 // of `data`
    int ndim;                         // 0 .. VLT_ST_MAX_DIMS
    int64_t shape[VLT_ST_MAX_DIMS];
    const void *data;                 // numel elements of `src`, row-major (NULL if numel is 0)
} vlt_st_array;

// Writes the arrays and metadata to `path` as the python package does: tensors ordered by dtype
// (widest first, the package's order) then name, header compact JSON padded with spaces to a
// multiple of 8, metadata in key order. Atomic: the bytes go to `path.tmp-XXXXXXXX` in the same
// directory, are fsync'd and renamed over `path`, then the directory is fsync'd; on any failure
// the temporary file is removed and `path` is left as it was.
vlt_status vlt_safetensors_write(const char *path, const vlt_st_array *arrays, int n,
                                 const vlt_st_meta *meta, int n_meta);

// --- parameter tables -------------------------------------------------------------------------

// What a load found. The lists hold every name (owned; free with vlt_st_report_free).
typedef struct {
    int n_loaded;       // tensors copied into the table
    int n_missing;      // in the table, not in the file
    int n_unexpected;   // in the file, not in the table
    int n_misshaped;    // in both, with shapes (or dtypes) that do not fit
    char **missing;     // table names, in table order
    char **unexpected;  // file names, in name order
    char **misshaped;   // "name: file (3, 2) F32, model (2, 3) f32", in table order
} vlt_st_report;

void vlt_st_report_free(vlt_st_report *r);
// Writes the report as one line, kinds with no key left out:
//   "2 missing keys (in the model, not in the file): a, b; 1 unexpected key (in the file, not in
//    the model): c; 1 mis-shaped key (file vs model): [d: file (3, 2) F32, model (2, 3) f32]"
// listing up to 20 names per kind (fewer when `n` is short; the room goes where it is needed),
// then "and N more". "all keys match" when there is nothing to report. Returns buf.
const char *vlt_st_report_format(const vlt_st_report *r, char *buf, size_t n);

// The elements of a float tensor (F32, BF16, F16, F64) that are NaN or infinite; 0 for other dtypes.
int64_t vlt_st_count_nonfinite(const vlt_st_tensor *t);

// Copies every tensor of the file into the table tensor with the same name, converting:
// f32 parameters from F32/BF16/F16/F64, bf16 ones from those too, i32 ones from I32/I64 (in
// range). A file shape [] fits a table shape (1). Any missing, unexpected or mis-shaped key is an
// error (VLT_ERR_FORMAT, the message listing the names) and the table is left untouched, unless
// `lenient`: then what fits is loaded, the rest reported, and VLT_OK returned. A float tensor
// holding a NaN or an infinity is always an error (VLT_ERR_FORMAT naming the tensor and the
// count), lenient or not, and the table is left untouched. `report` may be
// NULL; when given it is filled in either case (free it with vlt_st_report_free).
vlt_status vlt_safetensors_load_params(const char *path, vlt_params *p, bool lenient, vlt_st_report *report);
// The same from an open file.
vlt_status vlt_safetensors_load_params_from(const vlt_safetensors *f, vlt_params *p, bool lenient,
                                            vlt_st_report *report);

// The parameter names PyTorch keeps as 0-d tensors (open_clip's logit_scale, logit_bias). vlt's
// models hold them as 0-d tensors too (saved as "shape": []); a table tensor of shape (1) whose
// name, or whose last dotted part, is one of these is also saved with "shape": [] so that
// open_clip loads it with strict=True. On load a 0-d file tensor fits a 0-d or (1) table tensor.
extern const char *const vlt_safetensors_scalar_keys[];   // NULL-terminated

// Writes the table: f32 and bf16 tensors as `dtype` (F32, BF16 or F16), i32 ones as I32, with the
// metadata. CPU tensors only (contiguous); atomic as vlt_safetensors_write.
vlt_status vlt_safetensors_save_params(const char *path, const vlt_params *p, vlt_st_dtype dtype,
                                       const vlt_st_meta *meta, int n_meta);

#endif
