// test_checkpoints_safetensors.c — safetensors: f16 conversion (edge cases, and against the
// compiler's _Float16 and PyTorch's rounding), fixtures written by the python package read with
// exact values and rewritten byte for byte, round trips through F32/BF16/F16, corrupt files
// (each error naming the file and key), parameter-table loading in strict and lenient modes,
// and the atomic write leaving the old file whole when writing fails.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/params.h"
#include "autograd/rng.h"
#include "checkpoints/safetensors.h"

#define FIXTURE_MIXED "tests/data/checkpoints/py_mixed.safetensors"
#define FIXTURE_META "tests/data/checkpoints/py_meta.safetensors"

// --- helpers ----------------------------------------------------------------------------------

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

// A fresh directory under /tmp; rm_dir removes it with the plain files inside.
static void make_dir(char *dir) {
    strcpy(dir, "/tmp/vlt_st_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static int count_entries(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (remove(p) != 0) rm_dir(p);
    }
    closedir(d);
    rmdir(dir);
}

#define assert_msg_has(s) \
    do { if (!strstr(vlt_error_message(), (s))) fail_msg("message '%s' lacks '%s'", vlt_error_message(), (s)); } while (0)

// --- f16 --------------------------------------------------------------------------------------

static void test_f16_edge_cases(void **state) {
    (void)state;
    assert_true(vlt_f16_to_f32(0x3c00) == 1.0f);
    assert_true(vlt_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(vlt_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(vlt_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_true(vlt_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(vlt_f16_to_f32(0x8001) == -0x1p-24f);
    assert_int_equal(f32_bits(vlt_f16_to_f32(0x8000)), 0x80000000u);
    assert_true(isinf(vlt_f16_to_f32(0x7c00)) && vlt_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(vlt_f16_to_f32(0xfc00)) && vlt_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(vlt_f16_to_f32(0x7e00)));
    assert_true(isnan(vlt_f16_to_f32(0x7c01)));   // signalling NaN stays NaN
    assert_true(vlt_f16_to_f32(0x3555) == 0.333251953125f);

    assert_int_equal(vlt_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(vlt_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(vlt_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(vlt_f32_to_f16(bits_f32(f32_bits(65520.0f) - 1)), 0x7bff);   // just below the tie
    assert_int_equal(vlt_f32_to_f16(65520.0f), 0x7c00);                            // tie -> even = inf
    assert_int_equal(vlt_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(vlt_f32_to_f16(-INFINITY), 0xfc00);
    uint16_t nan = vlt_f32_to_f16(NAN);
    assert_int_equal(nan & 0x7c00, 0x7c00);
    assert_true((nan & 0x3ff) != 0);
    assert_true(vlt_f32_to_f16(bits_f32(0x7f800001u)) & 0x3ff);   // sNaN with a low payload: NaN
    assert_int_equal(vlt_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(vlt_f32_to_f16(0x1p-25f), 0x0000);                            // tie -> even = 0
    assert_int_equal(vlt_f32_to_f16(-0x1p-25f), 0x8000);
    assert_int_equal(vlt_f32_to_f16(bits_f32(f32_bits(0x1p-25f) + 1)), 0x0001);
    assert_int_equal(vlt_f32_to_f16(1.5f * 0x1p-24f), 0x0002);                     // tie -> even
    assert_int_equal(vlt_f32_to_f16(2.5f * 0x1p-24f), 0x0002);                     // tie -> even
    assert_int_equal(vlt_f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400);                  // tie at the normal edge
    assert_int_equal(vlt_f32_to_f16(1023 * 0x1p-24f), 0x03ff);
    assert_int_equal(vlt_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);                     // tie -> even down
    assert_int_equal(vlt_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);                 // tie -> even up
    assert_int_equal(vlt_f32_to_f16(1e-30f), 0x0000);
    assert_int_equal(vlt_f32_to_f16(bits_f32(1)), 0x0000);                          // f32 subnormal
    assert_int_equal(vlt_f32_to_f16(2049.0f), 0x6800);                             // 2048 (tie -> even)
    assert_int_equal(vlt_f32_to_f16(2051.0f), 0x6802);                             // 2052

    // every f16 survives f16 -> f32 -> f16 (NaNs stay NaN)
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = vlt_f32_to_f16(vlt_f16_to_f32((uint16_t)h));
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            assert_int_equal(back & 0x7c00, 0x7c00);
            assert_true(back & 0x3ff);
        } else if (back != h) {
            fail_msg("f16 0x%04x came back as 0x%04x", h, back);
        }
    }
}

#ifdef __FLT16_MAX__
// The compiler's _Float16 conversions (IEEE, round to nearest even) as an oracle.
static void test_f16_against_float16(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        uint16_t hb = (uint16_t)h;
        _Float16 v;
        memcpy(&v, &hb, 2);
        if (f32_bits(vlt_f16_to_f32(hb)) != f32_bits((float)v)) fail_msg("f16 0x%04x to f32", h);
    }
    // every 997th f32 bit pattern (4.3M values: all exponents, both signs)
    for (uint64_t u = 0; u < (1ull << 32); u += 997) {
        float x = bits_f32((uint32_t)u);
        if (isnan(x)) continue;
        _Float16 v = (_Float16)x;
        uint16_t want;
        memcpy(&want, &v, 2);
        uint16_t got = vlt_f32_to_f16(x);
        if (got != want) fail_msg("f32 0x%08x (%g): vlt 0x%04x, _Float16 0x%04x", (uint32_t)u, x, got, want);
    }
}
#else
static void test_f16_against_float16(void **state) {
    (void)state;
    skip();
}
#endif

// --- python fixtures --------------------------------------------------------------------------

static void test_fixture_values(void **state) {
    (void)state;
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(FIXTURE_MIXED, &f), VLT_OK);
    assert_int_equal(vlt_safetensors_count(f), 10);
    assert_string_equal(vlt_safetensors_at(f, 0)->name, "a.f32");   // name order
    assert_string_equal(vlt_safetensors_at(f, 9)->name, "r.src");
    assert_null(vlt_safetensors_at(f, 10));
    assert_string_equal(vlt_safetensors_metadata(f, "format"), "pt");
    assert_int_equal(vlt_safetensors_metadata_count(f), 1);
    assert_null(vlt_safetensors_metadata(f, "nope"));
    assert_null(vlt_safetensors_get(f, "nope"));

    const vlt_st_tensor *t = vlt_safetensors_get(f, "a.f32");
    assert_non_null(t);
    assert_int_equal(t->dtype, VLT_ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    assert_int_equal(t->nbytes, 24);
    float a[6];
    assert_int_equal(vlt_safetensors_read_f32(f, "a.f32", a, 6), VLT_OK);
    const float a_want[5] = {1.5f, -2.25f, 0.0f, 3.1415927410125732f, 1e-30f};
    for (int i = 0; i < 5; i++) assert_true(a[i] == a_want[i]);
    assert_true(isinf(a[5]) && a[5] < 0);

    float b[4];
    assert_int_equal(vlt_safetensors_read_f32(f, "b.bf16", b, 4), VLT_OK);
    assert_int_equal(vlt_safetensors_get(f, "b.bf16")->dtype, VLT_ST_BF16);
    assert_true(b[0] == 1.0f && b[1] == -0.5f && b[2] == 3.140625f && b[3] == 65280.0f);

    float c[8];
    assert_int_equal(vlt_safetensors_read_f32(f, "c.f16", c, 8), VLT_OK);
    assert_int_equal(vlt_safetensors_get(f, "c.f16")->dtype, VLT_ST_F16);
    assert_true(c[0] == 65504.0f && c[1] == 0x1p-14f && c[2] == 0x1p-24f);
    assert_int_equal(f32_bits(c[3]), 0x80000000u);
    assert_true(isinf(c[4]) && c[4] > 0 && isinf(c[5]) && c[5] < 0 && isnan(c[6]));
    assert_true(c[7] == 0.333251953125f);

    int64_t d[3], e[2];
    assert_int_equal(vlt_safetensors_read_i64(f, "d.i64", d, 3), VLT_OK);
    assert_true(d[0] == -1 && d[1] == (INT64_C(1) << 40) && d[2] == INT64_MAX);
    assert_int_equal(vlt_safetensors_read_i64(f, "e.i32", e, 2), VLT_OK);
    assert_true(e[0] == -7 && e[1] == INT32_MAX);

    t = vlt_safetensors_get(f, "logit_scale");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    float ls;
    assert_int_equal(vlt_safetensors_read_f32(f, "logit_scale", &ls, 1), VLT_OK);
    assert_true(ls == 2.6592600345611572f);
    t = vlt_safetensors_get(f, "one");
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], 1);

    // PyTorch's f32 -> f16 / bf16 rounding of 512 edge and random values equals vlt's, bit for bit
    float src[512], f16v[512];
    assert_int_equal(vlt_safetensors_read_f32(f, "r.src", src, 512), VLT_OK);
    assert_int_equal(vlt_safetensors_read_f32(f, "r.f16", f16v, 512), VLT_OK);
    const uint8_t *h16 = vlt_safetensors_get(f, "r.f16")->data, *hb = vlt_safetensors_get(f, "r.bf16")->data;
    for (int i = 0; i < 512; i++) {
        uint16_t want16, wantb;
        memcpy(&want16, h16 + 2 * i, 2);
        memcpy(&wantb, hb + 2 * i, 2);
        if (vlt_f32_to_f16(src[i]) != want16)
            fail_msg("r[%d] = %a: torch f16 0x%04x, vlt 0x%04x", i, src[i], want16, vlt_f32_to_f16(src[i]));
        if (vlt_f32_to_bf16(src[i]) != wantb)
            fail_msg("r[%d] = %a: torch bf16 0x%04x, vlt 0x%04x", i, src[i], wantb, vlt_f32_to_bf16(src[i]));
        assert_int_equal(f32_bits(f16v[i]), f32_bits(vlt_f16_to_f32(want16)));
    }

    // misuse: wrong dtype family, wrong size, absent key; each message names the file and key
    int64_t big[6];
    assert_int_equal(vlt_safetensors_read_f32(f, "d.i64", a, 3), VLT_ERR_DTYPE);
    assert_msg_has(FIXTURE_MIXED);
    assert_msg_has("'d.i64'");
    assert_int_equal(vlt_safetensors_read_i64(f, "a.f32", big, 6), VLT_ERR_DTYPE);
    assert_msg_has("'a.f32'");
    assert_int_equal(vlt_safetensors_read_f32(f, "a.f32", a, 5), VLT_ERR_SHAPE);
    assert_msg_has("'a.f32'");
    assert_int_equal(vlt_safetensors_read_f32(f, "zzz", a, 1), VLT_ERR_ARG);
    assert_msg_has("'zzz'");
    vlt_safetensors_close(f);
}

static void test_fixture_metadata_and_names(void **state) {
    (void)state;
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(FIXTURE_META, &f), VLT_OK);
    assert_int_equal(vlt_safetensors_metadata_count(f), 3);
    const char *k, *v;
    vlt_safetensors_metadata_at(f, 0, &k, &v);
    assert_string_equal(k, "format");
    vlt_safetensors_metadata_at(f, 1, &k, &v);
    assert_string_equal(k, "note");
    assert_string_equal(v, "line1\nline2\t\"q\" \\ caf\xc3\xa9 \xe2\x9c\x93");
    vlt_safetensors_metadata_at(f, 2, &k, &v);
    assert_string_equal(k, "z");
    assert_string_equal(v, "");

    const char *uname = "caf\xc3\xa9/\"quoted\"";
    const vlt_st_tensor *t = vlt_safetensors_get(f, uname);
    assert_non_null(t);
    assert_int_equal(t->dtype, VLT_ST_U8);
    int64_t u[3];
    assert_int_equal(vlt_safetensors_read_i64(f, uname, u, 3), VLT_OK);
    assert_true(u[0] == 0 && u[1] == 128 && u[2] == 255);
    t = vlt_safetensors_get(f, "empty");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 0);
    float d[2];
    assert_int_equal(vlt_safetensors_read_f32(f, "f64", d, 2), VLT_OK);
    assert_true(d[0] == 0.1f && d[1] == -2.5f);
    assert_int_equal(vlt_safetensors_read_f32(f, "empty", d, 0), VLT_OK);
    vlt_safetensors_close(f);
}

// Every tensor of a file as a write array (raw copy).
static int arrays_of(const vlt_safetensors *f, vlt_st_array *a) {
    int n = vlt_safetensors_count(f);
    for (int i = 0; i < n; i++) {
        const vlt_st_tensor *t = vlt_safetensors_at(f, i);
        memset(&a[i], 0, sizeof a[i]);
        a[i].name = t->name;
        a[i].dtype = a[i].src = t->dtype;
        a[i].ndim = t->ndim;
        memcpy(a[i].shape, t->shape, sizeof t->shape);
        a[i].data = t->data;
    }
    return n;
}

// vlt writes the python package's file byte for byte (tensor order, JSON, padding).
static void test_rewrite_fixture_bytes(void **state) {
    (void)state;
    char dir[64], out[128];
    make_dir(dir);
    snprintf(out, sizeof out, "%s/rewritten.safetensors", dir);
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(FIXTURE_MIXED, &f), VLT_OK);
    vlt_st_array a[16];
    int n = arrays_of(f, a);
    vlt_st_meta meta[] = {{"format", "pt"}};
    assert_int_equal(vlt_safetensors_write(out, a, n, meta, 1), VLT_OK);
    vlt_safetensors_close(f);
    size_t la, lb;
    uint8_t *x = slurp(FIXTURE_MIXED, &la), *y = slurp(out, &lb);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(x);
    free(y);
    assert_int_equal(count_entries(dir, ".tmp-"), 0);
    rm_dir(dir);
}

// --- round trips ------------------------------------------------------------------------------

static void test_roundtrip_conversions(void **state) {
    (void)state;
    char dir[64], out[128];
    make_dir(dir);
    snprintf(out, sizeof out, "%s/rt.safetensors", dir);
    enum { N = 300 };
    float x[N];
    vlt_rng_fill_normal(x, N, 0.0f, 3.0f, 7, vlt_rng_stream(VLT_RNG_TEST, 51, 0), 0);
    x[0] = 1e-6f;   // f16 subnormal
    x[1] = 1e5f;    // f16 overflow
    x[2] = -0.0f;
    uint16_t xb[N], xh[N];
    vlt_f32_to_bf16_array(xb, x, N);
    vlt_f32_to_f16_array(xh, x, N);
    int64_t ints[3] = {INT64_MIN, 0, 123456789012345};
    int32_t i32[2] = {-5, 6};
    float scalar = 4.25f;
    vlt_st_array a[] = {
        {.name = "x.f32", .dtype = VLT_ST_F32, .ndim = 2, .shape = {20, 15}, .data = x},
        {.name = "x.bf16", .dtype = VLT_ST_BF16, .ndim = 3, .shape = {3, 4, 25}, .data = x},
        {.name = "x.f16", .dtype = VLT_ST_F16, .ndim = 1, .shape = {N}, .data = x},
        {.name = "bf16.to.f32", .dtype = VLT_ST_F32, .src = VLT_ST_BF16, .ndim = 1, .shape = {N}, .data = xb},
        {.name = "f16.to.bf16", .dtype = VLT_ST_BF16, .src = VLT_ST_F16, .ndim = 1, .shape = {N}, .data = xh},
        {.name = "i64", .dtype = VLT_ST_I64, .src = VLT_ST_I64, .ndim = 1, .shape = {3}, .data = ints},
        {.name = "i32", .dtype = VLT_ST_I32, .src = VLT_ST_I32, .ndim = 2, .shape = {1, 2}, .data = i32},
        {.name = "scalar", .dtype = VLT_ST_F32, .ndim = 0, .data = &scalar},
        {.name = "empty", .dtype = VLT_ST_F16, .ndim = 2, .shape = {0, 7}},
    };
    vlt_st_meta meta[] = {{"z", "last"}, {"a", "tab\there \"q\" \x01 caf\xc3\xa9"}, {"m", ""}};
    assert_int_equal(vlt_safetensors_write(out, a, 9, meta, 3), VLT_OK);

    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(out, &f), VLT_OK);
    assert_int_equal(vlt_safetensors_count(f), 9);
    assert_string_equal(vlt_safetensors_metadata(f, "a"), "tab\there \"q\" \x01 caf\xc3\xa9");
    assert_string_equal(vlt_safetensors_metadata(f, "m"), "");
    assert_string_equal(vlt_safetensors_metadata(f, "z"), "last");
    float y[N];
    assert_int_equal(vlt_safetensors_read_f32(f, "x.f32", y, N), VLT_OK);
    assert_memory_equal(x, y, sizeof x);
    assert_int_equal(vlt_safetensors_read_f32(f, "x.bf16", y, N), VLT_OK);
    for (int i = 0; i < N; i++) assert_int_equal(f32_bits(y[i]), f32_bits(vlt_bf16_to_f32(xb[i])));
    assert_int_equal(vlt_safetensors_get(f, "x.bf16")->shape[2], 25);
    assert_int_equal(vlt_safetensors_read_f32(f, "x.f16", y, N), VLT_OK);
    for (int i = 0; i < N; i++) assert_int_equal(f32_bits(y[i]), f32_bits(vlt_f16_to_f32(xh[i])));
    assert_true(isinf(y[1]));
    assert_true(y[0] > 0 && y[0] < 0x1p-14f);
    assert_int_equal(vlt_safetensors_read_f32(f, "bf16.to.f32", y, N), VLT_OK);
    for (int i = 0; i < N; i++) assert_int_equal(f32_bits(y[i]), f32_bits(vlt_bf16_to_f32(xb[i])));
    assert_int_equal(vlt_safetensors_read_f32(f, "f16.to.bf16", y, N), VLT_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(f32_bits(y[i]), f32_bits(vlt_bf16_to_f32(vlt_f32_to_bf16(vlt_f16_to_f32(xh[i])))));
    int64_t got[3];
    assert_int_equal(vlt_safetensors_read_i64(f, "i64", got, 3), VLT_OK);
    assert_memory_equal(got, ints, sizeof ints);
    assert_int_equal(vlt_safetensors_read_i64(f, "i32", got, 2), VLT_OK);
    assert_true(got[0] == -5 && got[1] == 6);
    assert_int_equal(vlt_safetensors_get(f, "scalar")->ndim, 0);
    assert_int_equal(vlt_safetensors_read_f32(f, "scalar", y, 1), VLT_OK);
    assert_true(y[0] == 4.25f);
    assert_int_equal(vlt_safetensors_get(f, "empty")->numel, 0);
    // layout: widest dtypes first, each tensor aligned to its element size
    assert_true(vlt_safetensors_get(f, "i64")->offset == 0);
    for (int i = 0; i < vlt_safetensors_count(f); i++) {
        const vlt_st_tensor *t = vlt_safetensors_at(f, i);
        assert_int_equal(t->offset % vlt_st_dtype_size(t->dtype), 0);
        assert_int_equal((uintptr_t)t->data % vlt_st_dtype_size(t->dtype), 0);
    }
    vlt_safetensors_close(f);

    size_t len;
    uint8_t *raw = slurp(out, &len);
    uint64_t hlen;
    memcpy(&hlen, raw, 8);
    assert_int_equal((8 + hlen) % 8, 0);
    assert_int_equal(raw[8], '{');
    assert_memory_equal(raw + 8, "{\"__metadata__\":{\"a\":\"tab\\there \\\"q\\\" \\u0001 caf", 48);
    free(raw);
    rm_dir(dir);
}

// A file for the python side (scripts/reference/make_safetensors_fixture.py --check): written
// into $VLT_TEST_KEEP_DIR when set, and always read back here.
static void test_write_for_python(void **state) {
    (void)state;
    char dir[64], out[600];
    make_dir(dir);
    const char *keep = getenv("VLT_TEST_KEEP_DIR");
    snprintf(out, sizeof out, "%s/vlt_written.safetensors", keep && keep[0] ? keep : dir);
    const float x[6] = {1.0f, -2.0f, 0.5f, 1e-3f, 70000.0f, -1e-8f};
    const int64_t i[2] = {-3, INT64_C(1) << 40};
    const float ls = 2.5f;
    vlt_st_array a[] = {
        {.name = "w.f32", .dtype = VLT_ST_F32, .ndim = 2, .shape = {2, 3}, .data = x},
        {.name = "w.bf16", .dtype = VLT_ST_BF16, .ndim = 2, .shape = {2, 3}, .data = x},
        {.name = "w.f16", .dtype = VLT_ST_F16, .ndim = 2, .shape = {2, 3}, .data = x},
        {.name = "w.i64", .dtype = VLT_ST_I64, .src = VLT_ST_I64, .ndim = 1, .shape = {2}, .data = i},
        {.name = "logit_scale", .dtype = VLT_ST_F32, .ndim = 0, .data = &ls},
    };
    vlt_st_meta meta[] = {{"format", "pt"}, {"note", "caf\xc3\xa9 \"vlt\"\n"}};
    assert_int_equal(vlt_safetensors_write(out, a, 5, meta, 2), VLT_OK);
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(out, &f), VLT_OK);
    assert_int_equal(vlt_safetensors_count(f), 5);
    assert_int_equal(vlt_safetensors_metadata_count(f), 2);
    float y[6];
    assert_int_equal(vlt_safetensors_read_f32(f, "w.f16", y, 6), VLT_OK);
    assert_true(isinf(y[4]));
    assert_int_equal(f32_bits(y[5]), 0x80000000u);
    vlt_safetensors_close(f);
    rm_dir(dir);
}

// --- corrupt files ----------------------------------------------------------------------------

// A file in memory: the header JSON (padded with spaces to a multiple of 8) then `data_len` bytes.
static uint8_t *make_file(const char *json, size_t data_len, size_t *len) {
    size_t h = strlen(json), hp = (h + 7) / 8 * 8;
    *len = 8 + hp + data_len;
    uint8_t *b = calloc(1, *len);
    uint64_t hl = hp;
    memcpy(b, &hl, 8);
    memset(b + 8, ' ', hp);
    memcpy(b + 8, json, h);
    return b;
}

// Opens json+data from memory as "bad.safetensors"; expects VLT_ERR_FORMAT and each needle.
static void expect_bad(const char *json, size_t data_len, const char *n1, const char *n2) {
    size_t len;
    uint8_t *b = make_file(json, data_len, &len);
    vlt_safetensors *f = (vlt_safetensors *)b;
    vlt_status s = vlt_safetensors_open_memory(b, len, "bad.safetensors", &f);
    if (s != VLT_ERR_FORMAT) fail_msg("'%s': status %d (%s)", json, s, vlt_error_message());
    assert_null(f);
    assert_msg_has("'bad.safetensors'");
    if (n1) assert_msg_has(n1);
    if (n2) assert_msg_has(n2);
    free(b);
}

static void test_corrupt_headers(void **state) {
    (void)state;
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t len;
    uint8_t *b = make_file(ok, 8, &len);
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open_memory(b, len, "ok", &f), VLT_OK);   // the baseline is fine
    vlt_safetensors_close(f);
    free(b);

    expect_bad("{\"a\":{\"dtype\":\"F32\",", 8, "not valid JSON", NULL);
    expect_bad("[1, 2]", 0, "not start with '{'", NULL);
    expect_bad("{\"a\":1}", 0, "'a'", "not an object");
    expect_bad("{\"a\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "unknown dtype 'F17'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,400]}}", 8, "'a'", "out of range");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "'a'", "end before begin");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'a'", "need 12");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "'b'", "overlap tensor 'a'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "'b'", "gap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "cover 8 bytes", "12-byte");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'a'", "shape[0]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "'a'", "shape[0]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "'a'",
               "9 dimensions");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'a'", "data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "'a'", "data_offsets");
    expect_bad("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, "'a'", "twice");
    expect_bad("{\"__metadata__\":{\"k\":3}}", 0, "'k'", "not a string");
    expect_bad("{\"__metadata__\":[]}", 0, "__metadata__", NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "'a'",
               "too large");
    expect_bad("{} x", 0, "after the header", NULL);

    // header length beyond the file, and absurd header lengths
    b = make_file(ok, 8, &len);
    uint64_t huge = len;   // 8 more than what follows the length field
    memcpy(b, &huge, 8);
    assert_int_equal(vlt_safetensors_open_memory(b, len, "bad.safetensors", &f), VLT_ERR_FORMAT);
    assert_msg_has("'bad.safetensors'");
    assert_msg_has("beyond the file");
    huge = UINT64_MAX;
    memcpy(b, &huge, 8);
    assert_int_equal(vlt_safetensors_open_memory(b, len, "bad.safetensors", &f), VLT_ERR_FORMAT);
    assert_msg_has("beyond the file");
    free(b);
}

// Every truncation of a valid file fails with a message naming the file (and the key once the
// header is whole); so does a file on disk, by path.
static void test_truncated_files(void **state) {
    (void)state;
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    float x[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    vlt_st_array a[] = {{.name = "first", .dtype = VLT_ST_F32, .ndim = 1, .shape = {4}, .data = x},
                        {.name = "second", .dtype = VLT_ST_F16, .ndim = 2, .shape = {2, 3}, .data = x}};
    assert_int_equal(vlt_safetensors_write(path, a, 2, NULL, 0), VLT_OK);
    size_t len;
    uint8_t *full = slurp(path, &len);
    uint64_t hlen;
    memcpy(&hlen, full, 8);
    vlt_safetensors *f;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *b = malloc(cut + 1);   // exact-size copy so ASan sees any overread
        memcpy(b, full, cut);
        vlt_status s = vlt_safetensors_open_memory(b, cut, "cut.safetensors", &f);
        if (s != VLT_ERR_FORMAT) fail_msg("cut at %zu: status %d", cut, s);
        assert_msg_has("'cut.safetensors'");
        if (cut < 8) assert_msg_has("truncated");
        else if (cut < 8 + hlen) assert_msg_has("beyond the file");
        else if (cut < 8 + hlen + 16) assert_msg_has("'first'");   // F32 'first' lies first
        else assert_msg_has("'second'");
        free(b);
    }
    spit(path, full, len - 3);
    assert_int_equal(vlt_safetensors_open(path, &f), VLT_ERR_FORMAT);
    assert_msg_has(path);
    assert_msg_has("'second'");
    assert_msg_has("out of range");
    spit(path, full, 5);
    assert_int_equal(vlt_safetensors_open(path, &f), VLT_ERR_FORMAT);
    assert_msg_has(path);
    assert_msg_has("truncated");
    spit(path, full, 0);
    assert_int_equal(vlt_safetensors_open(path, &f), VLT_ERR_FORMAT);
    assert_msg_has("truncated");
    free(full);
    assert_int_equal(vlt_safetensors_open(dir, &f), VLT_ERR_IO);   // a directory
    assert_msg_has(dir);
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    assert_int_equal(vlt_safetensors_open(path, &f), VLT_ERR_IO);
    assert_msg_has(path);
    assert_null(f);
    rm_dir(dir);
}

// --- parameter tables -------------------------------------------------------------------------

// A small open_clip-like table: visual.proj (4, 3), visual.ln.weight (3), logit_scale (1),
// text.tok (5, 2), text.ids i32 (3), all filled from `seed`.
static void make_table(vlt_params *p, uint64_t seed) {
    vlt_params_init(p);
    assert_non_null(vlt_params_new(p, "visual.proj", 2, (int[]){4, 3}));
    assert_non_null(vlt_params_new(p, "visual.ln.weight", 1, (int[]){3}));
    assert_non_null(vlt_params_new(p, "logit_scale", 1, (int[]){1}));
    assert_non_null(vlt_params_new(p, "text.tok", 2, (int[]){5, 2}));
    assert_int_equal(vlt_params_add(p, vlt_tensor_new(VLT_I32, VLT_CPU, 1, (int[]){3}, "text.ids")), VLT_OK);
    for (int i = 0; i < 4; i++)
        vlt_rng_fill_normal(vlt_f32(p->t[i]), (size_t)p->t[i]->numel, 0, 1, seed, vlt_rng_stream(VLT_RNG_TEST, 52, i), 0);
    for (int i = 0; i < 3; i++) vlt_i32(p->t[4])[i] = (int32_t)(seed * 10 + (uint64_t)i);
}

static void test_params_roundtrip(void **state) {
    (void)state;
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const vlt_st_dtype dts[3] = {VLT_ST_F32, VLT_ST_BF16, VLT_ST_F16};
    for (int k = 0; k < 3; k++) {
        vlt_params src, dst;
        make_table(&src, 1);
        make_table(&dst, 2);
        vlt_st_meta meta[] = {{"format", "pt"}, {"vlt.step", "12"}};
        assert_int_equal(vlt_safetensors_save_params(path, &src, dts[k], meta, 2), VLT_OK);
        vlt_safetensors *f;
        assert_int_equal(vlt_safetensors_open(path, &f), VLT_OK);
        assert_int_equal(vlt_safetensors_get(f, "logit_scale")->ndim, 0);   // 0-d, as PyTorch's
        assert_int_equal(vlt_safetensors_get(f, "visual.ln.weight")->ndim, 1);
        assert_int_equal(vlt_safetensors_get(f, "visual.proj")->dtype, dts[k]);
        assert_int_equal(vlt_safetensors_get(f, "text.ids")->dtype, VLT_ST_I32);
        assert_string_equal(vlt_safetensors_metadata(f, "vlt.step"), "12");
        vlt_safetensors_close(f);

        vlt_st_report r;
        assert_int_equal(vlt_safetensors_load_params(path, &dst, false, &r), VLT_OK);
        assert_int_equal(r.n_loaded, 5);
        assert_int_equal(r.n_missing + r.n_unexpected + r.n_misshaped, 0);
        vlt_st_report_free(&r);
        for (int i = 0; i < 4; i++)
            for (int64_t j = 0; j < src.t[i]->numel; j++) {
                float x = vlt_f32(src.t[i])[j], want = k == 0 ? x
                                                     : k == 1 ? vlt_bf16_to_f32(vlt_f32_to_bf16(x))
                                                              : vlt_f16_to_f32(vlt_f32_to_f16(x));
                assert_int_equal(f32_bits(vlt_f32(dst.t[i])[j]), f32_bits(want));
            }
        assert_memory_equal(vlt_i32(dst.t[4]), vlt_i32(src.t[4]), 12);
        vlt_params_free(&src);
        vlt_params_free(&dst);
    }
    // bf16 table tensors load from F32 files and save as F32
    vlt_params a, b;
    vlt_params_init(&a);
    vlt_params_init(&b);
    vlt_tensor *ta = vlt_tensor_new(VLT_BF16, VLT_CPU, 1, (int[]){3}, "h");
    vlt_tensor *tb = vlt_tensor_new(VLT_BF16, VLT_CPU, 1, (int[]){3}, "h");
    vlt_bf16(ta)[0] = vlt_f32_to_bf16(1.5f);
    vlt_bf16(ta)[1] = vlt_f32_to_bf16(-3.0f);
    vlt_bf16(ta)[2] = vlt_f32_to_bf16(0.15625f);
    assert_int_equal(vlt_params_add(&a, ta), VLT_OK);
    assert_int_equal(vlt_params_add(&b, tb), VLT_OK);
    assert_int_equal(vlt_safetensors_save_params(path, &a, VLT_ST_F32, NULL, 0), VLT_OK);
    assert_int_equal(vlt_safetensors_load_params(path, &b, false, NULL), VLT_OK);
    assert_memory_equal(vlt_bf16(tb), vlt_bf16(ta), 6);
    assert_int_equal(vlt_safetensors_save_params(path, &a, VLT_ST_I64, NULL, 0), VLT_ERR_ARG);
    vlt_params_free(&a);
    vlt_params_free(&b);
    rm_dir(dir);
}

// A file that does not fit make_table(): visual.proj transposed (3, 4), text.tok absent,
// extra.a and extra.b present, text.ids as I64 with a value out of i32 range.
static void write_mismatched(const char *path) {
    float x[12] = {0};
    for (int i = 0; i < 12; i++) x[i] = 0.5f * (float)i;
    int64_t ids[3] = {1, 2, INT64_C(1) << 40};
    float ls = 2.0f;
    vlt_st_array a[] = {
        {.name = "visual.proj", .dtype = VLT_ST_F32, .ndim = 2, .shape = {3, 4}, .data = x},
        {.name = "visual.ln.weight", .dtype = VLT_ST_F16, .ndim = 1, .shape = {3}, .data = x + 1},
        {.name = "logit_scale", .dtype = VLT_ST_F32, .ndim = 0, .data = &ls},
        {.name = "text.ids", .dtype = VLT_ST_I64, .src = VLT_ST_I64, .ndim = 1, .shape = {3}, .data = ids},
        {.name = "extra.a", .dtype = VLT_ST_F32, .ndim = 1, .shape = {2}, .data = x},
        {.name = "extra.b", .dtype = VLT_ST_F32, .ndim = 1, .shape = {2}, .data = x},
    };
    assert_int_equal(vlt_safetensors_write(path, a, 6, NULL, 0), VLT_OK);
}

static void test_params_mismatch(void **state) {
    (void)state;
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/wrong.safetensors", dir);
    write_mismatched(path);
    vlt_params p, ref;
    make_table(&p, 3);
    make_table(&ref, 3);

    // strict: an error listing every kind, nothing loaded
    vlt_st_report r;
    assert_int_equal(vlt_safetensors_load_params(path, &p, false, &r), VLT_ERR_FORMAT);
    assert_msg_has(path);
    assert_msg_has("1 missing key (in the model, not in the file): text.tok");
    assert_msg_has("2 unexpected keys (in the file, not in the model): extra.a, extra.b");
    assert_msg_has("2 mis-shaped keys");
    assert_msg_has("visual.proj: file (3, 4) F32, model (4, 3) f32");
    assert_msg_has("text.ids: file (3) I64, model (3) i32");
    assert_int_equal(r.n_missing, 1);
    assert_int_equal(r.n_unexpected, 2);
    assert_int_equal(r.n_misshaped, 2);
    assert_int_equal(r.n_loaded, 0);
    assert_string_equal(r.missing[0], "text.tok");
    assert_string_equal(r.unexpected[0], "extra.a");
    assert_string_equal(r.unexpected[1], "extra.b");
    assert_string_equal(r.misshaped[0], "visual.proj: file (3, 4) F32, model (4, 3) f32");
    vlt_st_report_free(&r);
    for (int i = 0; i < 5; i++) assert_memory_equal(p.t[i]->data, ref.t[i]->data, (size_t)p.t[i]->numel * 4);

    // lenient: what fits is loaded (F16 -> f32, [] -> (1)), the rest reported and left alone
    assert_int_equal(vlt_safetensors_load_params(path, &p, true, &r), VLT_OK);
    assert_int_equal(r.n_loaded, 2);
    assert_int_equal(r.n_missing, 1);
    assert_int_equal(r.n_unexpected, 2);
    assert_int_equal(r.n_misshaped, 2);
    char line[512];
    vlt_st_report_format(&r, line, sizeof line);
    assert_non_null(strstr(line, "1 missing key (in the model, not in the file): text.tok"));
    assert_non_null(strstr(line, "[visual.proj: file (3, 4) F32, model (4, 3) f32]"));
    vlt_st_report_free(&r);
    const float *w = vlt_f32(vlt_params_find(&p, "visual.ln.weight"));
    assert_true(w[0] == 0.5f && w[1] == 1.0f && w[2] == 1.5f);
    assert_true(vlt_f32(vlt_params_find(&p, "logit_scale"))[0] == 2.0f);
    assert_memory_equal(vlt_params_find(&p, "visual.proj")->data, vlt_params_find(&ref, "visual.proj")->data, 48);
    assert_memory_equal(vlt_params_find(&p, "text.tok")->data, vlt_params_find(&ref, "text.tok")->data, 40);
    assert_memory_equal(vlt_params_find(&p, "text.ids")->data, vlt_params_find(&ref, "text.ids")->data, 12);
    // no report wanted
    assert_int_equal(vlt_safetensors_load_params(path, &p, false, NULL), VLT_ERR_FORMAT);
    assert_int_equal(vlt_safetensors_load_params(path, &p, true, NULL), VLT_OK);
    vlt_params_free(&p);
    vlt_params_free(&ref);

    // many missing keys: the message lists some, then "and N more"; the report has them all
    vlt_params big;
    vlt_params_init(&big);
    for (int i = 0; i < 40; i++) {
        char name[96];
        snprintf(name, sizeof name, "visual.transformer.resblocks.%d.attn.in_proj_weight", i);
        assert_non_null(vlt_params_new(&big, name, 1, (int[]){2}));
    }
    assert_int_equal(vlt_safetensors_load_params(path, &big, false, &r), VLT_ERR_FORMAT);
    assert_int_equal(r.n_missing, 40);
    assert_int_equal(r.n_unexpected, 6);
    assert_string_equal(r.missing[39], "visual.transformer.resblocks.39.attn.in_proj_weight");
    assert_msg_has("40 missing keys");
    assert_msg_has("visual.transformer.resblocks.0.attn.in_proj_weight");
    assert_msg_has("more");
    assert_msg_has("6 unexpected keys");
    assert_msg_has("extra.a");
    assert_true(strlen(vlt_error_message()) < 1024);
    vlt_st_report_free(&r);
    vlt_params_free(&big);

    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    vlt_params empty;
    vlt_params_init(&empty);
    assert_int_equal(vlt_safetensors_load_params(path, &empty, false, &r), VLT_ERR_IO);
    assert_msg_has(path);
    assert_int_equal(r.n_loaded + r.n_missing, 0);
    rm_dir(dir);
}

// Weights holding NaN or inf are refused, strict or lenient, in every float dtype, naming the
// tensor and the count; the table is left untouched.
static void test_params_nonfinite_refused(void **state) {
    (void)state;
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/nan.safetensors", dir);
    const vlt_st_dtype dts[3] = {VLT_ST_F32, VLT_ST_BF16, VLT_ST_F16};
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        vlt_params src, dst, ref;
        make_table(&src, 1);
        make_table(&dst, 2);
        make_table(&ref, 2);
        float *w = vlt_f32(vlt_params_find(&src, "visual.ln.weight"));
        w[1] = bad[k];
        w[2] = bad[k];
        assert_int_equal(vlt_safetensors_save_params(path, &src, dts[k], NULL, 0), VLT_OK);
        vlt_safetensors *f;
        assert_int_equal(vlt_safetensors_open(path, &f), VLT_OK);
        assert_int_equal(vlt_st_count_nonfinite(vlt_safetensors_get(f, "visual.ln.weight")), 2);
        assert_int_equal(vlt_st_count_nonfinite(vlt_safetensors_get(f, "visual.proj")), 0);
        vlt_safetensors_close(f);
        for (int lenient = 0; lenient < 2; lenient++) {
            assert_int_equal(vlt_safetensors_load_params(path, &dst, lenient, NULL), VLT_ERR_FORMAT);
            assert_msg_has(path);
            assert_msg_has("tensor 'visual.ln.weight' holds 2 non-finite values (NaN or inf) of 3");
            for (int i = 0; i < 5; i++)
                assert_memory_equal(dst.t[i]->data, ref.t[i]->data, (size_t)dst.t[i]->numel * 4);
        }
        // a second bad tensor is counted in the message
        vlt_f32(vlt_params_find(&src, "text.tok"))[0] = bad[k];
        assert_int_equal(vlt_safetensors_save_params(path, &src, dts[k], NULL, 0), VLT_OK);
        assert_int_equal(vlt_safetensors_load_params(path, &dst, false, NULL), VLT_ERR_FORMAT);
        assert_msg_has("(and 1 more tensor)");
        vlt_params_free(&src);
        vlt_params_free(&dst);
        vlt_params_free(&ref);
    }
    rm_dir(dir);
}

// --- atomic writes ----------------------------------------------------------------------------

static void test_atomic_write(void **state) {
    (void)state;
    char dir[64], path[128], sub[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float v1[4] = {1, 2, 3, 4};
    vlt_st_array a1 = {.name = "x", .dtype = VLT_ST_F32, .ndim = 1, .shape = {4}, .data = v1};
    assert_int_equal(vlt_safetensors_write(path, &a1, 1, NULL, 0), VLT_OK);
    size_t len1;
    uint8_t *old = slurp(path, &len1);

    // a write that fails half way (file size limit: write() gets EFBIG) leaves the old file whole
    enum { BIG = 1 << 16 };
    float *big = calloc(BIG, sizeof *big);
    vlt_st_array a2 = {.name = "x", .dtype = VLT_ST_F32, .ndim = 1, .shape = {BIG}, .data = big};
    struct rlimit saved, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = saved;
    lim.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    vlt_status s = vlt_safetensors_write(path, &a2, 1, NULL, 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(s, VLT_ERR_IO);
    assert_msg_has(path);
    size_t len;
    uint8_t *now = slurp(path, &len);
    assert_int_equal(len, len1);
    assert_memory_equal(now, old, len1);
    free(now);
    assert_int_equal(count_entries(dir, ".tmp-"), 0);

    // bad arrays are refused before anything is written
    vlt_st_array dup[2] = {a1, a1};
    assert_int_equal(vlt_safetensors_write(path, dup, 2, NULL, 0), VLT_ERR_ARG);
    assert_msg_has("'x' given twice");
    vlt_st_array nul = {.name = "y", .dtype = VLT_ST_F32, .ndim = 1, .shape = {4}};
    assert_int_equal(vlt_safetensors_write(path, &nul, 1, NULL, 0), VLT_ERR_ARG);
    assert_msg_has("'y'");
    vlt_st_array conv = {.name = "z", .dtype = VLT_ST_I64, .ndim = 1, .shape = {4}, .data = v1};
    assert_int_equal(vlt_safetensors_write(path, &conv, 1, NULL, 0), VLT_ERR_DTYPE);
    assert_msg_has("'z'");
    vlt_st_array meta_name = {.name = "__metadata__", .dtype = VLT_ST_F32, .ndim = 1, .shape = {4}, .data = v1};
    assert_int_equal(vlt_safetensors_write(path, &meta_name, 1, NULL, 0), VLT_ERR_ARG);
    vlt_st_meta m2[] = {{"k", "1"}, {"k", "2"}};
    assert_int_equal(vlt_safetensors_write(path, &a1, 1, m2, 2), VLT_ERR_ARG);
    assert_msg_has("'k'");
    now = slurp(path, &len);
    assert_int_equal(len, len1);
    assert_memory_equal(now, old, len1);
    free(now);

    // the target is a directory: the rename fails, the temporary file is removed
    snprintf(sub, sizeof sub, "%s/adir", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(vlt_safetensors_write(sub, &a1, 1, NULL, 0), VLT_ERR_IO);
    assert_msg_has(sub);
    assert_int_equal(count_entries(dir, ".tmp-"), 0);
    // a directory that does not exist
    snprintf(sub, sizeof sub, "%s/nodir/w.safetensors", dir);
    assert_int_equal(vlt_safetensors_write(sub, &a1, 1, NULL, 0), VLT_ERR_IO);
    assert_msg_has(sub);

    // replacing a file that is open: the old mapping still reads the old values
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(path, &f), VLT_OK);
    big[0] = 42.0f;
    assert_int_equal(vlt_safetensors_write(path, &a2, 1, NULL, 0), VLT_OK);
    float y[4];
    assert_int_equal(vlt_safetensors_read_f32(f, "x", y, 4), VLT_OK);
    assert_memory_equal(y, v1, sizeof v1);
    vlt_safetensors_close(f);
    assert_int_equal(vlt_safetensors_open(path, &f), VLT_OK);
    assert_int_equal(vlt_safetensors_get(f, "x")->numel, BIG);
    assert_true(((const float *)vlt_safetensors_get(f, "x")->data)[0] == 42.0f);
    vlt_safetensors_close(f);
    struct stat st;
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666 & ~mask);   // as a plain fopen would make it, not 0600
    assert_int_equal(count_entries(dir, ".tmp-"), 0);
    free(big);
    free(old);
    rm_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_edge_cases),
        cmocka_unit_test(test_f16_against_float16),
        cmocka_unit_test(test_fixture_values),
        cmocka_unit_test(test_fixture_metadata_and_names),
        cmocka_unit_test(test_rewrite_fixture_bytes),
        cmocka_unit_test(test_roundtrip_conversions),
        cmocka_unit_test(test_write_for_python),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_params_roundtrip),
        cmocka_unit_test(test_params_mismatch),
        cmocka_unit_test(test_params_nonfinite_refused),
        cmocka_unit_test(test_atomic_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
