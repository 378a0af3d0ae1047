// safetensors.c — safetensors read (mmap + validated header), atomic write, parameter-table
// load/save, f16 conversion (see safetensors.h).
#include "checkpoints/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

// The python package refuses headers above 100 MB; so do we.
#define ST_MAX_HEADER 100000000ull

// --- dtypes -----------------------------------------------------------------------------------

typedef struct {
    const char *name;
    size_t size;
    int rank;   // the package's Dtype enum order: its writer puts higher ranks first
} st_dtype_info;

static const st_dtype_info st_dtypes[VLT_ST_N_DTYPES] = {
    [VLT_ST_F32] = {"F32", 4, 11},      [VLT_ST_BF16] = {"BF16", 2, 8},
    [VLT_ST_F16] = {"F16", 2, 7},       [VLT_ST_F64] = {"F64", 8, 13},
    [VLT_ST_I64] = {"I64", 8, 14},      [VLT_ST_I32] = {"I32", 4, 9},
    [VLT_ST_I16] = {"I16", 2, 5},       [VLT_ST_I8] = {"I8", 1, 2},
    [VLT_ST_U64] = {"U64", 8, 15},      [VLT_ST_U32] = {"U32", 4, 10},
    [VLT_ST_U16] = {"U16", 2, 6},       [VLT_ST_U8] = {"U8", 1, 1},
    [VLT_ST_BOOL] = {"BOOL", 1, 0},     [VLT_ST_F8_E4M3] = {"F8_E4M3", 1, 4},
    [VLT_ST_F8_E5M2] = {"F8_E5M2", 1, 3}, [VLT_ST_C64] = {"C64", 8, 12},
};

const char *vlt_st_dtype_name(vlt_st_dtype dt) {
    return (unsigned)dt < VLT_ST_N_DTYPES ? st_dtypes[dt].name : "?";
}

size_t vlt_st_dtype_size(vlt_st_dtype dt) {
    return (unsigned)dt < VLT_ST_N_DTYPES ? st_dtypes[dt].size : 0;
}

bool vlt_st_dtype_parse(const char *name, vlt_st_dtype *out) {
    for (int i = 0; i < VLT_ST_N_DTYPES; i++)
        if (!strcmp(st_dtypes[i].name, name)) {
            *out = (vlt_st_dtype)i;
            return true;
        }
    return false;
}

static bool st_is_float(vlt_st_dtype dt) {
    return dt == VLT_ST_F32 || dt == VLT_ST_BF16 || dt == VLT_ST_F16 || dt == VLT_ST_F64;
}

static bool st_is_int(vlt_st_dtype dt) {
    return dt == VLT_ST_I64 || dt == VLT_ST_I32 || dt == VLT_ST_I16 || dt == VLT_ST_I8 ||
           dt == VLT_ST_U64 || dt == VLT_ST_U32 || dt == VLT_ST_U16 || dt == VLT_ST_U8 ||
           dt == VLT_ST_BOOL;
}

// --- f16 --------------------------------------------------------------------------------------

float vlt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, u;
    float f;
    if (exp == 0) {                      // zero or subnormal: mant * 2^-24, exact in f32
        f = (float)mant * 0x1p-24f;
        memcpy(&u, &f, 4);
        u |= sign;
    } else if (exp == 31) {              // inf, NaN (payload kept)
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    memcpy(&f, &u, 4);
    return f;
}

// Rounds the integer v >> shift to nearest, ties to even (1 <= shift <= 31).
static uint32_t st_round_shift(uint32_t v, int shift) {
    uint32_t q = v >> shift, rem = v & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return q;
}

uint16_t vlt_f32_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((a >> 13) & 0x3ffu);   // quiet NaN
    if (a >= 0x477ff000u) return sign | 0x7c00u;       // >= 65520 rounds to inf (and inf)
    if (a >= 0x38800000u)                              // normal f16: rebias, round 13 bits
        return sign | (uint16_t)st_round_shift(a - 0x38000000u, 13);
    if (a <= 0x33000000u) return sign;                 // <= 2^-25 rounds to zero (tie to even)
    // subnormal f16: the value in units of 2^-24 is mant * 2^(e - 126), e the f32 biased exponent
    uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
    return sign | (uint16_t)st_round_shift(mant, (int)(126u - e));
}

void vlt_f32_to_f16_array(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vlt_f32_to_f16(src[i]);
}

void vlt_f16_to_f32_array(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vlt_f16_to_f32(src[i]);
}

// Element i of `src` (dtype dt, possibly unaligned) as f32; dt is a float type.
static float st_load_f32(const uint8_t *src, vlt_st_dtype dt, size_t i) {
    switch (dt) {
    case VLT_ST_F32: { float v; memcpy(&v, src + 4 * i, 4); return v; }
    case VLT_ST_F64: { double v; memcpy(&v, src + 8 * i, 8); return (float)v; }
    case VLT_ST_BF16: { uint16_t v; memcpy(&v, src + 2 * i, 2); return vlt_bf16_to_f32(v); }
    case VLT_ST_F16: { uint16_t v; memcpy(&v, src + 2 * i, 2); return vlt_f16_to_f32(v); }
    default: return NAN;
    }
}

// Element i of `src` (an integer dtype, possibly unaligned) as i64 (U64 above INT64_MAX wraps).
static int64_t st_load_i64(const uint8_t *src, vlt_st_dtype dt, size_t i) {
    switch (dt) {
    case VLT_ST_I64: { int64_t v; memcpy(&v, src + 8 * i, 8); return v; }
    case VLT_ST_U64: { uint64_t v; memcpy(&v, src + 8 * i, 8); return (int64_t)v; }
    case VLT_ST_I32: { int32_t v; memcpy(&v, src + 4 * i, 4); return v; }
    case VLT_ST_U32: { uint32_t v; memcpy(&v, src + 4 * i, 4); return v; }
    case VLT_ST_I16: { int16_t v; memcpy(&v, src + 2 * i, 2); return v; }
    case VLT_ST_U16: { uint16_t v; memcpy(&v, src + 2 * i, 2); return v; }
    case VLT_ST_I8: return (int8_t)src[i];
    case VLT_ST_U8: case VLT_ST_BOOL: return src[i];
    default: return 0;
    }
}

// Stores f32 v as element i of dst in float dtype dt.
static void st_store_f32(uint8_t *dst, vlt_st_dtype dt, size_t i, float v) {
    switch (dt) {
    case VLT_ST_F32: memcpy(dst + 4 * i, &v, 4); break;
    case VLT_ST_F64: { double d = v; memcpy(dst + 8 * i, &d, 8); break; }
    case VLT_ST_BF16: { uint16_t h = vlt_f32_to_bf16(v); memcpy(dst + 2 * i, &h, 2); break; }
    case VLT_ST_F16: { uint16_t h = vlt_f32_to_f16(v); memcpy(dst + 2 * i, &h, 2); break; }
    default: break;
    }
}

// --- reading ----------------------------------------------------------------------------------

struct vlt_safetensors {
    char *path;
    void *map;                // the mmap (NULL for open_memory)
    size_t map_len;
    const uint8_t *data;      // data area
    uint64_t data_len;
    int n;
    vlt_st_tensor *t;         // sorted by name
    char **names;             // owned strings behind t[i].name
    int n_meta;
    char **meta_key, **meta_val;   // sorted by key
};

void vlt_safetensors_close(vlt_safetensors *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    for (int i = 0; i < f->n; i++) free(f->names[i]);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_key[i]);
        free(f->meta_val[i]);
    }
    free(f->names);
    free(f->t);
    free(f->meta_key);
    free(f->meta_val);
    free(f->path);
    free(f);
}

// A JSON number that is an integer in [0, 2^53]; false otherwise.
static bool st_json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

static int st_cmp_meta(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static vlt_status st_parse_metadata(vlt_safetensors *f, const cJSON *m) {
    if (!cJSON_IsObject(m))
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': __metadata__ is not an object", f->path);
    int n = cJSON_GetArraySize(m);
    char **pairs = calloc((size_t)n * 2 + 1, sizeof *pairs);   // key, value interleaved
    if (!pairs) return vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory", f->path);
    f->meta_key = calloc((size_t)n + 1, sizeof(char *));
    f->meta_val = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_key || !f->meta_val) {
        free(pairs);
        return vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory", f->path);
    }
    int i = 0;
    for (const cJSON *e = m->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
            free(pairs);
            return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': __metadata__ key '%s': value is not a string",
                                 f->path, e->string);
        }
        pairs[2 * i] = e->string;
        pairs[2 * i + 1] = e->valuestring;
    }
    qsort(pairs, (size_t)n, 2 * sizeof *pairs, st_cmp_meta);
    for (i = 0; i < n; i++) {
        if (i && !strcmp(pairs[2 * i], pairs[2 * i - 2])) {
            vlt_status s = vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': __metadata__ key '%s' appears twice",
                                         f->path, pairs[2 * i]);
            free(pairs);
            return s;
        }
        f->meta_key[i] = strdup(pairs[2 * i]);
        f->meta_val[i] = strdup(pairs[2 * i + 1]);
        f->n_meta = i + 1;
        if (!f->meta_key[i] || !f->meta_val[i]) {
            free(pairs);
            return vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory", f->path);
        }
    }
    free(pairs);
    return VLT_OK;
}

// Parses one tensor entry {"dtype", "shape", "data_offsets"} into *t (name not yet set).
static vlt_status st_parse_tensor(const vlt_safetensors *f, const cJSON *e, vlt_st_tensor *t) {
    const char *key = e->string;
    if (!cJSON_IsObject(e))
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': entry is not an object", f->path, key);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off))
        return vlt_error_set(VLT_ERR_FORMAT,
                             "safetensors '%s': tensor '%s': needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)",
                             f->path, key);
    if (!vlt_st_dtype_parse(dt->valuestring, &t->dtype))
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': unknown dtype '%s'", f->path, key,
                             dt->valuestring);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > VLT_ST_MAX_DIMS)
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': %d dimensions (at most %d)", f->path,
                             key, ndim, VLT_ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *v = sh->child; v; v = v->next, d++) {
        uint64_t dim;
        if (!st_json_u64(v, &dim))
            return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': shape[%d] is not a non-negative integer",
                                 f->path, key, d);
        t->shape[d] = (int64_t)dim;
        if (dim && numel > (UINT64_C(1) << 53) / dim)
            return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': shape too large", f->path, key);
        numel *= dim;
    }
    uint64_t b, end;
    if (cJSON_GetArraySize(off) != 2 || !st_json_u64(off->child, &b) || !st_json_u64(off->child->next, &end))
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': data_offsets must be two non-negative integers",
                             f->path, key);
    if (end < b)
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': data_offsets [%llu, %llu] end before begin",
                             f->path, key, (unsigned long long)b, (unsigned long long)end);
    if (end > f->data_len)
        return vlt_error_set(VLT_ERR_FORMAT,
                             "safetensors '%s': tensor '%s': data_offsets [%llu, %llu] out of range (data area is %llu bytes)",
                             f->path, key, (unsigned long long)b, (unsigned long long)end,
                             (unsigned long long)f->data_len);
    uint64_t nbytes = numel * vlt_st_dtype_size(t->dtype);
    if (end - b != nbytes)
        return vlt_error_set(VLT_ERR_FORMAT,
                             "safetensors '%s': tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %llu elements of %s need %llu",
                             f->path, key, (unsigned long long)b, (unsigned long long)end,
                             (unsigned long long)(end - b), (unsigned long long)numel, dt->valuestring,
                             (unsigned long long)nbytes);
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)nbytes;
    t->offset = b;
    t->data = f->data + b;
    return VLT_OK;
}

static int st_cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const vlt_st_tensor *)a)->name, ((const vlt_st_tensor *)b)->name);
}

static int st_cmp_tensor_offset(const void *a, const void *b) {
    const vlt_st_tensor *x = *(const vlt_st_tensor *const *)a, *y = *(const vlt_st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

// The tensors must tile [0, data_len) exactly: sorted by offset, each begins where the last ended.
static vlt_status st_check_tiling(const vlt_safetensors *f) {
    const vlt_st_tensor **by = malloc(((size_t)f->n + 1) * sizeof *by);
    if (!by) return vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory", f->path);
    for (int i = 0; i < f->n; i++) by[i] = &f->t[i];
    qsort(by, (size_t)f->n, sizeof *by, st_cmp_tensor_offset);
    uint64_t pos = 0;
    vlt_status s = VLT_OK;
    for (int i = 0; i < f->n && s == VLT_OK; i++) {
        const vlt_st_tensor *t = by[i];
        if (t->offset < pos)
            s = vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'",
                              f->path, t->name, (unsigned long long)t->offset,
                              (unsigned long long)(t->offset + t->nbytes), by[i - 1]->name);
        else if (t->offset > pos)
            s = vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s': data_offsets begin at %llu, leaving a gap after byte %llu",
                              f->path, t->name, (unsigned long long)t->offset, (unsigned long long)pos);
        pos = t->offset + t->nbytes;
    }
    if (s == VLT_OK && pos != f->data_len)
        s = vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': the tensors cover %llu bytes of a %llu-byte data area",
                          f->path, (unsigned long long)pos, (unsigned long long)f->data_len);
    free(by);
    return s;
}

static vlt_status st_parse_header(vlt_safetensors *f, const char *hdr, size_t hlen) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, false);
    if (!root) {
        // cJSON's error pointer is process-wide: use it only if it points into this header
        uintptr_t ep = (uintptr_t)cJSON_GetErrorPtr(), h0 = (uintptr_t)hdr;
        size_t at = ep >= h0 && ep <= h0 + hlen ? (size_t)(ep - h0) : hlen;
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': header is not valid JSON (near byte %zu of %zu)",
                             f->path, at, hlen);
    }
    vlt_status s = VLT_OK;
    for (const char *c = end; c && c < hdr + hlen; c++)
        if (*c != ' ' && *c != '\n' && *c != '\r' && *c != '\t') {
            s = vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': bytes after the header JSON (at byte %zu)", f->path,
                              (size_t)(c - hdr));
            break;
        }
    if (s == VLT_OK && !cJSON_IsObject(root))
        s = vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': header is not a JSON object", f->path);
    int total = s == VLT_OK ? cJSON_GetArraySize(root) : 0;
    if (s == VLT_OK) {
        f->t = calloc((size_t)total + 1, sizeof *f->t);
        f->names = calloc((size_t)total + 1, sizeof *f->names);
        if (!f->t || !f->names) s = vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory", f->path);
    }
    bool seen_meta = false;
    for (const cJSON *e = s == VLT_OK ? root->child : NULL; e && s == VLT_OK; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            s = seen_meta ? vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': __metadata__ appears twice", f->path)
                          : st_parse_metadata(f, e);
            seen_meta = true;
            continue;
        }
        vlt_st_tensor *t = &f->t[f->n];
        s = st_parse_tensor(f, e, t);
        if (s != VLT_OK) break;
        if (!(f->names[f->n] = strdup(e->string))) {
            s = vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory", f->path);
            break;
        }
        t->name = f->names[f->n++];
    }
    cJSON_Delete(root);
    if (s != VLT_OK) return s;
    qsort(f->t, (size_t)f->n, sizeof *f->t, st_cmp_tensor_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->t[i].name, f->t[i - 1].name))
            return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s' appears twice", f->path, f->t[i].name);
    return st_check_tiling(f);
}

// Validates the 8-byte length and the header of buf[0..len) and fills f.
static vlt_status st_parse(vlt_safetensors *f, const uint8_t *buf, size_t len) {
    if (len < 8)
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': truncated: %zu bytes, the header length alone needs 8",
                             f->path, len);
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    if (hlen > len - 8)
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': header length %llu goes beyond the file (%zu bytes)",
                             f->path, (unsigned long long)hlen, len);
    if (hlen > ST_MAX_HEADER)
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': header length %llu is above the %llu-byte limit",
                             f->path, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen < 2 || buf[8] != '{')
        return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': header does not start with '{'", f->path);
    f->data = buf + 8 + hlen;
    f->data_len = len - 8 - hlen;
    return st_parse_header(f, (const char *)buf + 8, (size_t)hlen);
}

static vlt_safetensors *st_new(const char *name) {
    vlt_safetensors *f = calloc(1, sizeof *f);
    if (f && !(f->path = strdup(name ? name : "(memory)"))) {
        free(f);
        f = NULL;
    }
    if (!f) vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory", name ? name : "(memory)");
    return f;
}

vlt_status vlt_safetensors_open_memory(const void *buf, size_t len, const char *name, vlt_safetensors **out) {
    *out = NULL;
    vlt_safetensors *f = st_new(name);
    if (!f) return VLT_ERR_NOMEM;
    vlt_status s = st_parse(f, buf, len);
    if (s != VLT_OK) {
        vlt_safetensors_close(f);
        return s;
    }
    *out = f;
    return VLT_OK;
}

vlt_status vlt_safetensors_open(const char *path, vlt_safetensors **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vlt_error_set(VLT_ERR_IO, "safetensors '%s': cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vlt_error_set(VLT_ERR_IO, "safetensors '%s': not a regular file", path);
    }
    vlt_safetensors *f = st_new(path);
    if (!f) {
        close(fd);
        return VLT_ERR_NOMEM;
    }
    size_t len = (size_t)st.st_size;
    if (len >= 8) {   // shorter files fail in st_parse; mmap of 0 bytes is not allowed
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            vlt_status s = vlt_error_set(VLT_ERR_IO, "safetensors '%s': cannot mmap %zu bytes: %s", path, len,
                                         strerror(errno));
            close(fd);
            vlt_safetensors_close(f);
            return s;
        }
        f->map = m;
        f->map_len = len;
    }
    close(fd);
    static const uint8_t empty[1];
    vlt_status s = st_parse(f, f->map ? f->map : empty, len);
    if (s != VLT_OK) {
        vlt_safetensors_close(f);
        return s;
    }
    *out = f;
    return VLT_OK;
}

const char *vlt_safetensors_path(const vlt_safetensors *f) { return f->path; }
int vlt_safetensors_count(const vlt_safetensors *f) { return f->n; }

const vlt_st_tensor *vlt_safetensors_at(const vlt_safetensors *f, int i) {
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const vlt_st_tensor *vlt_safetensors_get(const vlt_safetensors *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->t[mid].name, name);
        if (!c) return &f->t[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const char *vlt_safetensors_metadata(const vlt_safetensors *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_key[i], key)) return f->meta_val[i];
    return NULL;
}

int vlt_safetensors_metadata_count(const vlt_safetensors *f) { return f->n_meta; }

void vlt_safetensors_metadata_at(const vlt_safetensors *f, int i, const char **key, const char **value) {
    bool ok = i >= 0 && i < f->n_meta;
    *key = ok ? f->meta_key[i] : NULL;
    *value = ok ? f->meta_val[i] : NULL;
}

// The tensor `name` with numel n, or an error naming the file and key.
static vlt_status st_find_sized(const vlt_safetensors *f, const char *name, int64_t n, const vlt_st_tensor **out) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    if (!t) return vlt_error_set(VLT_ERR_ARG, "safetensors '%s': no tensor '%s'", f->path, name);
    if (t->numel != n)
        return vlt_error_set(VLT_ERR_SHAPE, "safetensors '%s': tensor '%s' has %lld elements, the destination %lld",
                             f->path, name, (long long)t->numel, (long long)n);
    *out = t;
    return VLT_OK;
}

vlt_status vlt_safetensors_read_f32(const vlt_safetensors *f, const char *name, float *dst, int64_t n) {
    const vlt_st_tensor *t;
    VLT_TRY(st_find_sized(f, name, n, &t));
    if (!st_is_float(t->dtype))
        return vlt_error_set(VLT_ERR_DTYPE, "safetensors '%s': tensor '%s' is %s, not a float type", f->path, name,
                             vlt_st_dtype_name(t->dtype));
    if (t->dtype == VLT_ST_F32) {
        if (n) memcpy(dst, t->data, t->nbytes);
    } else {
        for (int64_t i = 0; i < n; i++) dst[i] = st_load_f32(t->data, t->dtype, (size_t)i);
    }
    return VLT_OK;
}

vlt_status vlt_safetensors_read_i64(const vlt_safetensors *f, const char *name, int64_t *dst, int64_t n) {
    const vlt_st_tensor *t;
    VLT_TRY(st_find_sized(f, name, n, &t));
    if (!st_is_int(t->dtype))
        return vlt_error_set(VLT_ERR_DTYPE, "safetensors '%s': tensor '%s' is %s, not an integer type", f->path,
                             name, vlt_st_dtype_name(t->dtype));
    for (int64_t i = 0; i < n; i++) dst[i] = st_load_i64(t->data, t->dtype, (size_t)i);
    return VLT_OK;
}

// --- writing ----------------------------------------------------------------------------------

// A growable byte buffer for the header.
typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} st_buf;

static void sb_put(st_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(st_buf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(st_buf *b, uint64_t v) {
    char tmp[24];
    sb_put(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v));
}

// A JSON string escaped as serde_json (the python package's writer) does: \" \\ \b \f \n \r \t,
// other control bytes as \u00xx, everything else (UTF-8 included) as is.
static void sb_json_str(st_buf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        const char *esc = NULL;
        switch (*c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc) {
            sb_puts(b, esc);
        } else if (*c < 0x20) {
            char u[8];
            snprintf(u, sizeof u, "\\u%04x", *c);
            sb_puts(b, u);
        } else {
            sb_put(b, (const char *)c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int64_t st_array_numel(const vlt_st_array *a) {
    int64_t n = 1;
    for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
    return n;
}

// Checks one array; the error names the target file and the array.
static vlt_status st_check_array(const char *path, const vlt_st_array *a) {
    if (!a->name || !a->name[0] || !strcmp(a->name, "__metadata__"))
        return vlt_error_set(VLT_ERR_ARG, "safetensors write '%s': bad tensor name '%s'", path,
                             a->name ? a->name : "(null)");
    if ((unsigned)a->dtype >= VLT_ST_N_DTYPES || (unsigned)a->src >= VLT_ST_N_DTYPES)
        return vlt_error_set(VLT_ERR_ARG, "safetensors write '%s': tensor '%s': dtype out of range", path, a->name);
    if (a->src != a->dtype && !(st_is_float(a->src) && st_is_float(a->dtype)))
        return vlt_error_set(VLT_ERR_DTYPE, "safetensors write '%s': tensor '%s': cannot convert %s to %s", path,
                             a->name, vlt_st_dtype_name(a->src), vlt_st_dtype_name(a->dtype));
    if (a->ndim < 0 || a->ndim > VLT_ST_MAX_DIMS)
        return vlt_error_set(VLT_ERR_SHAPE, "safetensors write '%s': tensor '%s': ndim %d (0..%d)", path, a->name,
                             a->ndim, VLT_ST_MAX_DIMS);
    int64_t n = 1;
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] < 0 || (a->shape[d] && n > (INT64_C(1) << 48) / a->shape[d]))
            return vlt_error_set(VLT_ERR_SHAPE, "safetensors write '%s': tensor '%s': bad shape[%d] = %lld", path,
                                 a->name, d, (long long)a->shape[d]);
        n *= a->shape[d];
    }
    if (n && !a->data)
        return vlt_error_set(VLT_ERR_ARG, "safetensors write '%s': tensor '%s': NULL data", path, a->name);
    return VLT_OK;
}

// Writer order: the package's dtype rank, widest first, then name.
static int st_cmp_write(const void *x, const void *y) {
    const vlt_st_array *a = *(const vlt_st_array *const *)x, *b = *(const vlt_st_array *const *)y;
    int ra = st_dtypes[a->dtype].rank, rb = st_dtypes[b->dtype].rank;
    if (ra != rb) return rb - ra;
    return strcmp(a->name, b->name);
}

static int st_cmp_array_name(const void *x, const void *y) {
    return strcmp((*(const vlt_st_array *const *)x)->name, (*(const vlt_st_array *const *)y)->name);
}

static int st_cmp_meta_key(const void *x, const void *y) {
    return strcmp((*(const vlt_st_meta *const *)x)->key, (*(const vlt_st_meta *const *)y)->key);
}

// Validates everything and returns the arrays in file order and the metadata in key order.
static vlt_status st_plan(const char *path, const vlt_st_array *arrays, int n, const vlt_st_meta *meta, int n_meta,
                          const vlt_st_array ***order, const vlt_st_meta ***morder) {
    *order = NULL;
    *morder = NULL;
    if (n < 0 || n_meta < 0 || (n && !arrays) || (n_meta && !meta))
        return vlt_error_set(VLT_ERR_ARG, "safetensors write '%s': bad array or metadata list", path);
    const vlt_st_array **o = malloc(((size_t)n + 1) * sizeof *o);
    const vlt_st_meta **m = malloc(((size_t)n_meta + 1) * sizeof *m);
    if (!o || !m) {
        free(o);
        free(m);
        return vlt_error_set(VLT_ERR_NOMEM, "safetensors write '%s': out of memory", path);
    }
    vlt_status s = VLT_OK;
    for (int i = 0; i < n && s == VLT_OK; i++) {
        s = st_check_array(path, &arrays[i]);
        o[i] = &arrays[i];
    }
    if (s == VLT_OK) qsort(o, (size_t)n, sizeof *o, st_cmp_array_name);
    for (int i = 1; i < n && s == VLT_OK; i++)
        if (!strcmp(o[i]->name, o[i - 1]->name))
            s = vlt_error_set(VLT_ERR_ARG, "safetensors write '%s': tensor '%s' given twice", path, o[i]->name);
    for (int i = 0; i < n_meta && s == VLT_OK; i++) {
        if (!meta[i].key || !meta[i].value)
            s = vlt_error_set(VLT_ERR_ARG, "safetensors write '%s': metadata entry %d has a NULL key or value", path, i);
        m[i] = &meta[i];
    }
    if (s == VLT_OK) qsort(m, (size_t)n_meta, sizeof *m, st_cmp_meta_key);
    for (int i = 1; i < n_meta && s == VLT_OK; i++)
        if (!strcmp(m[i]->key, m[i - 1]->key))
            s = vlt_error_set(VLT_ERR_ARG, "safetensors write '%s': metadata key '%s' given twice", path, m[i]->key);
    if (s != VLT_OK) {
        free(o);
        free(m);
        return s;
    }
    qsort(o, (size_t)n, sizeof *o, st_cmp_write);
    *order = o;
    *morder = m;
    return VLT_OK;
}

// The header JSON, padded with spaces so that 8 + its length is a multiple of 8.
static vlt_status st_header(const char *path, const vlt_st_array *const *o, int n, const vlt_st_meta *const *m,
                            int n_meta, st_buf *b) {
    sb_put(b, "{", 1);
    if (n_meta) {
        sb_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_put(b, ",", 1);
            sb_json_str(b, m[i]->key);
            sb_put(b, ":", 1);
            sb_json_str(b, m[i]->value);
        }
        sb_put(b, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const vlt_st_array *a = o[i];
        uint64_t nbytes = (uint64_t)st_array_numel(a) * vlt_st_dtype_size(a->dtype);
        if (i || n_meta) sb_put(b, ",", 1);
        sb_json_str(b, a->name);
        sb_puts(b, ":{\"dtype\":");
        sb_json_str(b, vlt_st_dtype_name(a->dtype));
        sb_puts(b, ",\"shape\":[");
        for (int d = 0; d < a->ndim; d++) {
            if (d) sb_put(b, ",", 1);
            sb_u64(b, (uint64_t)a->shape[d]);
        }
        sb_puts(b, "],\"data_offsets\":[");
        sb_u64(b, off);
        sb_put(b, ",", 1);
        sb_u64(b, off + nbytes);
        sb_puts(b, "]}");
        off += nbytes;
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->n % 8) sb_put(b, " ", 1);
    return b->oom ? vlt_error_set(VLT_ERR_NOMEM, "safetensors write '%s': out of memory for the header", path) : VLT_OK;
}

// Buffered output to a file descriptor; the first error sticks (message naming the file).
typedef struct {
    int fd;
    const char *path;
    vlt_status s;
    size_t n;
    uint8_t buf[1 << 16];
} st_out;

static void so_flush(st_out *o) {
    size_t done = 0;
    while (o->s == VLT_OK && done < o->n) {
        ssize_t w = write(o->fd, o->buf + done, o->n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            o->s = vlt_error_set(VLT_ERR_IO, "safetensors write '%s': %s", o->path, w < 0 ? strerror(errno) : "short write");
        else
            done += (size_t)w;
    }
    o->n = 0;
}

static void so_put(st_out *o, const void *p, size_t n) {
    const uint8_t *c = p;
    while (n && o->s == VLT_OK) {
        if (o->n == sizeof o->buf) so_flush(o);
        size_t k = sizeof o->buf - o->n < n ? sizeof o->buf - o->n : n;
        memcpy(o->buf + o->n, c, k);
        o->n += k;
        c += k;
        n -= k;
    }
}

static void so_array(st_out *o, const vlt_st_array *a) {
    size_t numel = (size_t)st_array_numel(a), esz = vlt_st_dtype_size(a->dtype);
    if (a->src == a->dtype) {
        so_put(o, a->data, numel * esz);
        return;
    }
    uint8_t tmp[8];
    for (size_t i = 0; i < numel && o->s == VLT_OK; i++) {
        st_store_f32(tmp, a->dtype, 0, st_load_f32(a->data, a->src, i));
        so_put(o, tmp, esz);
    }
}

// Creates `path.tmp-XXXXXXXX` exclusively (mode 0666 less the umask); fills tmp.
static int st_create_tmp(const char *path, char *tmp, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40) ^ (uintptr_t)tmp;
    for (int tries = 0; tries < 100; tries++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        if ((size_t)snprintf(tmp, cap, "%s.tmp-%08x", path, (unsigned)(x >> 32)) >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

// fsync of the directory holding `path`, so that the rename is durable.
static vlt_status st_sync_dir(const char *path) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        vlt_status s = vlt_error_set(VLT_ERR_IO, "safetensors write '%s': written, but fsync of directory '%s' failed: %s",
                                     path, dir, strerror(errno));
        if (fd >= 0) close(fd);
        return s;
    }
    close(fd);
    return VLT_OK;
}

static vlt_status st_write_file(const char *path, const st_buf *hdr, const vlt_st_array *const *order, int n) {
    char tmp[PATH_MAX];
    int fd = st_create_tmp(path, tmp, sizeof tmp);
    if (fd < 0)
        return vlt_error_set(VLT_ERR_IO, "safetensors write '%s': cannot create a temporary file beside it: %s", path,
                             strerror(errno));
    st_out *o = malloc(sizeof *o);
    if (!o) {
        close(fd);
        unlink(tmp);
        return vlt_error_set(VLT_ERR_NOMEM, "safetensors write '%s': out of memory", path);
    }
    o->fd = fd;
    o->path = path;
    o->s = VLT_OK;
    o->n = 0;
    uint64_t hlen = hdr->n;
    so_put(o, &hlen, 8);
    so_put(o, hdr->p, hdr->n);
    for (int i = 0; i < n; i++) so_array(o, order[i]);
    so_flush(o);
    vlt_status s = o->s;
    free(o);
    if (s == VLT_OK && fsync(fd) != 0)
        s = vlt_error_set(VLT_ERR_IO, "safetensors write '%s': fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && s == VLT_OK)
        s = vlt_error_set(VLT_ERR_IO, "safetensors write '%s': close failed: %s", path, strerror(errno));
    if (s == VLT_OK && rename(tmp, path) != 0)
        s = vlt_error_set(VLT_ERR_IO, "safetensors write '%s': cannot rename the temporary file over it: %s", path,
                          strerror(errno));
    if (s != VLT_OK) {
        unlink(tmp);
        return s;
    }
    return st_sync_dir(path);
}

vlt_status vlt_safetensors_write(const char *path, const vlt_st_array *arrays, int n, const vlt_st_meta *meta,
                                 int n_meta) {
    if (!path || !path[0]) return vlt_error_set(VLT_ERR_ARG, "safetensors write: empty path");
    const vlt_st_array **order;
    const vlt_st_meta **morder;
    VLT_TRY(st_plan(path, arrays, n, meta, n_meta, &order, &morder));
    st_buf hdr = {0};
    vlt_status s = st_header(path, order, n, morder, n_meta, &hdr);
    if (s == VLT_OK) s = st_write_file(path, &hdr, order, n);
    free(hdr.p);
    free(order);
    free(morder);
    return s;
}

// --- parameter tables -------------------------------------------------------------------------

const char *const vlt_safetensors_scalar_keys[] = {"logit_scale", "logit_bias", NULL};

static bool st_is_scalar_key(const vlt_tensor *t) {
    if (t->ndim != 1 || t->shape[0] != 1) return false;
    const char *dot = strrchr(t->name, '.');
    const char *last = dot ? dot + 1 : t->name;
    for (int i = 0; vlt_safetensors_scalar_keys[i]; i++)
        if (!strcmp(last, vlt_safetensors_scalar_keys[i])) return true;
    return false;
}

void vlt_st_report_free(vlt_st_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_missing; i++) free(r->missing[i]);
    for (int i = 0; i < r->n_unexpected; i++) free(r->unexpected[i]);
    for (int i = 0; i < r->n_misshaped; i++) free(r->misshaped[i]);
    free(r->missing);
    free(r->unexpected);
    free(r->misshaped);
    memset(r, 0, sizeof *r);
}

// Appends to buf[0..cap) at *len, truncating safely.
static void st_cat(char *buf, size_t cap, size_t *len, const char *s) {
    if (*len + 1 >= cap) return;
    size_t k = strlen(s);
    if (k > cap - 1 - *len) k = cap - 1 - *len;
    memcpy(buf + *len, s, k);
    *len += k;
    buf[*len] = '\0';
}

// The report's three kinds, in message order.
typedef struct {
    int count;
    char *const *names;
    const char *what, *why;
    bool bracket;
} st_kind;

// Characters kind k needs to list its first 20 names.
static size_t st_kind_need(const st_kind *k) {
    size_t need = strlen(k->what) + strlen(k->why) + 48;
    for (int i = 0; i < k->count && i < 20; i++) need += strlen(k->names[i]) + 4;
    return need;
}

// "3 missing keys (why): a, b, c and 2 more", names while they fit in `share` characters.
static void st_format_kind(char *buf, size_t cap, size_t *len, size_t share, const st_kind *k) {
    char head[200];
    snprintf(head, sizeof head, "%d %s key%s %s: ", k->count, k->what, k->count == 1 ? "" : "s", k->why);
    size_t start = *len;
    st_cat(buf, cap, len, head);
    int shown = 0;
    for (; shown < k->count && shown < 20; shown++) {
        size_t need = strlen(k->names[shown]) + 4 + 24;   // separators, brackets, "and N more"
        if (shown && *len - start + need > share) break;
        if (shown) st_cat(buf, cap, len, ", ");
        if (k->bracket) st_cat(buf, cap, len, "[");
        st_cat(buf, cap, len, k->names[shown]);
        if (k->bracket) st_cat(buf, cap, len, "]");
    }
    if (shown < k->count) {
        char more[40];
        snprintf(more, sizeof more, " and %d more", k->count - shown);
        st_cat(buf, cap, len, more);
    }
}

const char *vlt_st_report_format(const vlt_st_report *r, char *buf, size_t n) {
    if (!n) return buf;
    buf[0] = '\0';
    const st_kind kinds[3] = {
        {r->n_missing, r->missing, "missing", "(in the model, not in the file)", false},
        {r->n_unexpected, r->unexpected, "unexpected", "(in the file, not in the model)", false},
        {r->n_misshaped, r->misshaped, "mis-shaped", "(file vs model)", true},
    };
    // share the room: kinds that need less than an even share get what they need, the rest split
    size_t share[3] = {0}, room = n;
    bool done[3] = {false};
    for (int k = 0; k < 3; k++) done[k] = kinds[k].count == 0;
    for (bool changed = true; changed;) {
        changed = false;
        int left = !done[0] + !done[1] + !done[2];
        for (int k = 0; k < 3 && left; k++)
            if (!done[k] && st_kind_need(&kinds[k]) <= room / (size_t)left) {
                share[k] = st_kind_need(&kinds[k]);
                room -= share[k];
                done[k] = changed = true;
                left--;
            }
    }
    int left = (share[0] == 0 && kinds[0].count) + (share[1] == 0 && kinds[1].count) +
               (share[2] == 0 && kinds[2].count);
    size_t len = 0;
    for (int k = 0; k < 3; k++) {
        if (!kinds[k].count) continue;
        if (len) st_cat(buf, n, &len, "; ");
        st_format_kind(buf, n, &len, share[k] ? share[k] : room / (size_t)left, &kinds[k]);
    }
    if (!len) st_cat(buf, n, &len, "all keys match");
    return buf;
}

static vlt_st_dtype st_from_vlt(vlt_dtype dt) {
    return dt == VLT_BF16 ? VLT_ST_BF16 : dt == VLT_I32 ? VLT_ST_I32 : VLT_ST_F32;
}

// Whether file tensor ft fits table tensor t: same shape ([] fits (1)), convertible dtype, and
// for i32 targets every value in range.
static bool st_fits(const vlt_st_tensor *ft, const vlt_tensor *t) {
    // Shapes must be equal; a 0-d file tensor also fits a shape-(1) table tensor and back
    // (vlt tables made before 0-d tensors existed).
    bool shape_ok = ft->ndim == t->ndim;
    for (int d = 0; shape_ok && d < t->ndim; d++) shape_ok = ft->shape[d] == t->shape[d];
    if (!shape_ok) shape_ok = (ft->ndim == 0 && t->ndim == 1 && t->shape[0] == 1) ||
                              (t->ndim == 0 && ft->ndim == 1 && ft->shape[0] == 1);
    if (!shape_ok) return false;
    if (t->dtype != VLT_I32) return st_is_float(ft->dtype);
    if (!st_is_int(ft->dtype)) return false;
    for (int64_t i = 0; i < ft->numel; i++) {
        int64_t v = st_load_i64(ft->data, ft->dtype, (size_t)i);
        if (v < INT32_MIN || v > INT32_MAX || (ft->dtype == VLT_ST_U64 && v < 0)) return false;
    }
    return true;
}

static char *st_misfit_str(const vlt_st_tensor *ft, const vlt_tensor *t) {
    char fs[200], ms[120];
    size_t off = (size_t)snprintf(fs, sizeof fs, "(");
    for (int d = 0; d < ft->ndim && off < sizeof fs; d++)
        off += (size_t)snprintf(fs + off, sizeof fs - off, d ? ", %lld" : "%lld", (long long)ft->shape[d]);
    if (off < sizeof fs) snprintf(fs + off, sizeof fs - off, ")");
    vlt_shape_str(t, ms, sizeof ms);
    size_t n = strlen(t->name) + strlen(fs) + strlen(ms) + 64;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s: file %s %s, model %s %s", t->name, fs, vlt_st_dtype_name(ft->dtype), ms,
                    vlt_dtype_name(t->dtype));
    return s;
}

// Appends an owned string to a report list (counts even when out of memory, string then NULL).
static bool st_list_push(char ***list, int *count, char *s) {
    char **nl = realloc(*list, ((size_t)*count + 1) * sizeof *nl);
    if (!nl || !s) {
        free(s);
        return false;
    }
    *list = nl;
    nl[(*count)++] = s;
    return true;
}

// Copies file tensor ft into table tensor t (st_fits holds).
static void st_copy_into(const vlt_st_tensor *ft, vlt_tensor *t) {
    size_t n = (size_t)t->numel;
    if (st_from_vlt(t->dtype) == ft->dtype) {
        if (n) memcpy(t->data, ft->data, ft->nbytes);
    } else if (t->dtype == VLT_F32) {
        for (size_t i = 0; i < n; i++) vlt_f32(t)[i] = st_load_f32(ft->data, ft->dtype, i);
    } else if (t->dtype == VLT_BF16) {
        for (size_t i = 0; i < n; i++) vlt_bf16(t)[i] = vlt_f32_to_bf16(st_load_f32(ft->data, ft->dtype, i));
    } else {
        for (size_t i = 0; i < n; i++) vlt_i32(t)[i] = (int32_t)st_load_i64(ft->data, ft->dtype, i);
    }
}

// Sorts the table against the file: match[i] is the file tensor for table entry i, or NULL.
static vlt_status st_classify(const vlt_safetensors *f, const vlt_params *p, const vlt_st_tensor **match,
                              vlt_st_report *r) {
    bool ok = true;
    for (int i = 0; i < p->n; i++) {
        vlt_tensor *t = p->t[i];
        if (t->device != VLT_CPU || !vlt_tensor_is_contiguous(t))
            return vlt_error_set(VLT_ERR_DEVICE, "safetensors '%s': parameter '%s' is not a contiguous CPU tensor",
                                 f->path, t->name);
        const vlt_st_tensor *ft = vlt_safetensors_get(f, t->name);
        match[i] = NULL;
        if (!ft) ok &= st_list_push(&r->missing, &r->n_missing, strdup(t->name));
        else if (!st_fits(ft, t)) ok &= st_list_push(&r->misshaped, &r->n_misshaped, st_misfit_str(ft, t));
        else match[i] = ft;
    }
    for (int i = 0; i < f->n; i++)
        if (!vlt_params_find(p, f->t[i].name))
            ok &= st_list_push(&r->unexpected, &r->n_unexpected, strdup(f->t[i].name));
    return ok ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory for the load report", f->path);
}

int64_t vlt_st_count_nonfinite(const vlt_st_tensor *t) {
    const unsigned char *d = t->data;
    int64_t bad = 0;
    // All exponent bits set is inf or NaN, in every IEEE width. The mapping is aligned only as the
    // file made it, hence memcpy.
    switch (t->dtype) {
    case VLT_ST_F32:
        for (int64_t i = 0; i < t->numel; i++) {
            uint32_t u;
            memcpy(&u, d + 4 * i, 4);
            bad += (u & 0x7f800000u) == 0x7f800000u;
        }
        break;
    case VLT_ST_F64:
        for (int64_t i = 0; i < t->numel; i++) {
            uint64_t u;
            memcpy(&u, d + 8 * i, 8);
            bad += (u & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
        }
        break;
    case VLT_ST_BF16:
    case VLT_ST_F16: {
        uint16_t mask = t->dtype == VLT_ST_BF16 ? 0x7f80u : 0x7c00u;
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t u;
            memcpy(&u, d + 2 * i, 2);
            bad += (u & mask) == mask;
        }
        break;
    }
    default: break;
    }
    return bad;
}

// Weights holding NaN or inf are refused whole, lenient or not: such a model computes nothing but
// NaN, and a training run would checkpoint it as its "good" state. The message names the tensors.
static vlt_status st_check_finite(const vlt_safetensors *f, const vlt_params *p, const vlt_st_tensor **match) {
    int n_bad = 0;
    const vlt_st_tensor *first = NULL;
    int64_t first_count = 0;
    for (int i = 0; i < p->n; i++) {
        if (!match[i]) continue;
        int64_t c = vlt_st_count_nonfinite(match[i]);
        if (!c) continue;
        if (!n_bad++) first = match[i], first_count = c;
    }
    if (!n_bad) return VLT_OK;
    char more[64] = "";
    if (n_bad > 1) snprintf(more, sizeof more, " (and %d more tensor%s)", n_bad - 1, n_bad > 2 ? "s" : "");
    return vlt_error_set(VLT_ERR_FORMAT, "safetensors '%s': tensor '%s' holds %lld non-finite values (NaN or inf) of "
                         "%lld%s; refusing to load non-finite weights", f->path, first->name, (long long)first_count,
                         (long long)first->numel, more);
}

vlt_status vlt_safetensors_load_params_from(const vlt_safetensors *f, vlt_params *p, bool lenient,
                                            vlt_st_report *report) {
    vlt_st_report local = {0}, *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    const vlt_st_tensor **match = calloc((size_t)p->n + 1, sizeof *match);
    if (!match) return vlt_error_set(VLT_ERR_NOMEM, "safetensors '%s': out of memory", f->path);
    vlt_status s = st_classify(f, p, match, r);
    if (s == VLT_OK && !lenient && (r->n_missing || r->n_unexpected || r->n_misshaped)) {
        char msg[1024];
        int head = snprintf(msg, sizeof msg, "safetensors '%s': does not match the model: ", f->path);
        if (head > 0 && (size_t)head < sizeof msg - 200)
            vlt_st_report_format(r, msg + head, sizeof msg - (size_t)head);
        s = vlt_error_set(VLT_ERR_FORMAT, "%s", msg);
    }
    if (s == VLT_OK) s = st_check_finite(f, p, match);
    for (int i = 0; i < p->n && s == VLT_OK; i++)
        if (match[i]) {
            st_copy_into(match[i], p->t[i]);
            r->n_loaded++;
        }
    free(match);
    vlt_st_report_free(&local);
    return s;
}

vlt_status vlt_safetensors_load_params(const char *path, vlt_params *p, bool lenient, vlt_st_report *report) {
    if (report) memset(report, 0, sizeof *report);
    vlt_safetensors *f;
    VLT_TRY(vlt_safetensors_open(path, &f));
    vlt_status s = vlt_safetensors_load_params_from(f, p, lenient, report);
    vlt_safetensors_close(f);
    return s;
}

vlt_status vlt_safetensors_save_params(const char *path, const vlt_params *p, vlt_st_dtype dtype,
                                       const vlt_st_meta *meta, int n_meta) {
    if (dtype != VLT_ST_F32 && dtype != VLT_ST_BF16 && dtype != VLT_ST_F16)
        return vlt_error_set(VLT_ERR_ARG, "safetensors write '%s': parameters are saved as F32, BF16 or F16, not %s",
                             path, vlt_st_dtype_name(dtype));
    vlt_st_array *a = calloc((size_t)p->n + 1, sizeof *a);
    if (!a) return vlt_error_set(VLT_ERR_NOMEM, "safetensors write '%s': out of memory", path);
    for (int i = 0; i < p->n; i++) {
        const vlt_tensor *t = p->t[i];
        if (t->device != VLT_CPU || !vlt_tensor_is_contiguous(t)) {
            free(a);
            return vlt_error_set(VLT_ERR_DEVICE, "safetensors write '%s': parameter '%s' is not a contiguous CPU tensor",
                                 path, t->name);
        }
        a[i].name = t->name;
        a[i].src = st_from_vlt(t->dtype);
        a[i].dtype = t->dtype == VLT_I32 ? VLT_ST_I32 : dtype;
        a[i].ndim = st_is_scalar_key(t) ? 0 : t->ndim;
        for (int d = 0; d < a[i].ndim; d++) a[i].shape[d] = t->shape[d];
        a[i].data = t->data;
    }
    vlt_status s = vlt_safetensors_write(path, a, p->n, meta, n_meta);
    free(a);
    return s;
}
