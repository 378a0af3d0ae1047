// test_data_image.c — JPEG / PNG / WebP decoding against PIL's convert("RGB") (fixtures made by
// scripts/reference/make_transform_fixtures.py), DCT scaling, JPEG encoding, and corrupt or
// truncated inputs returning VLT_ERR_FORMAT without crashing.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <webp/encode.h>
#include <zlib.h>

#include "autograd/rng.h"
#include "data/image.h"

#define FIXTURES "tests/data/data/image/"

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open fixture %s (run tests from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int max_abs_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

// A smooth colour pattern with some edges (w x h x 3).
static void pattern(uint8_t *rgb, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            p[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            p[2] = (uint8_t)(((x / 16 + y / 16) & 1) ? 200 : 40);
        }
}

// Every fixture decodes to exactly PIL's convert("RGB") bytes. Stated tolerance: 0 for all formats
// (PIL and vlt both use libjpeg-turbo's default islow IDCT with fancy upsampling, and libwebp).
static void test_decode_matches_pil(void **state) {
    (void)state;
    FILE *m = fopen(FIXTURES "manifest.txt", "r");
    assert_non_null(m);
    char line[256], name[128], mode[16];
    int n = 0, w, h;
    while (fgets(line, sizeof line, m)) {
        if (line[0] == '#' || sscanf(line, "%127s %d %d %15s", name, &w, &h, mode) != 4) continue;
        char path[256], ref_path[300];
        snprintf(path, sizeof path, FIXTURES "%s", name);
        snprintf(ref_path, sizeof ref_path, "%s.rgb", path);
        size_t len, ref_len;
        uint8_t *buf = read_file(path, &len), *ref = read_file(ref_path, &ref_len);
        vlt_image img;
        vlt_status st = vlt_image_decode(buf, len, 0, name, &img);
        if (st != VLT_OK) fail_msg("%s: %s", name, vlt_error_message());
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        assert_int_equal(ref_len, (size_t)w * h * 3);
        int d = max_abs_diff(img.rgb, ref, ref_len);
        if (d != 0) fail_msg("%s (PIL mode %s): max abs difference %d from PIL", name, mode, d);
        int pw, ph;
        vlt_image_format f;
        assert_int_equal(vlt_image_probe(buf, len, name, &pw, &ph, &f), VLT_OK);
        assert_int_equal(pw, w);
        assert_int_equal(ph, h);
        assert_int_not_equal(f, VLT_IMAGE_UNKNOWN);
        vlt_image_free(&img);
        free(buf);
        free(ref);
        n++;
    }
    fclose(m);
    assert_true(n >= 13);
}

static void test_sniff(void **state) {
    (void)state;
    assert_int_equal(vlt_image_sniff((const uint8_t *)"\xff\xd8\xff\xe0", 4), VLT_IMAGE_JPEG);
    assert_int_equal(vlt_image_sniff((const uint8_t *)"\x89PNG\r\n\x1a\n", 8), VLT_IMAGE_PNG);
    assert_int_equal(vlt_image_sniff((const uint8_t *)"RIFF\0\0\0\0WEBPVP8 ", 16), VLT_IMAGE_WEBP);
    assert_int_equal(vlt_image_sniff((const uint8_t *)"GIF89a", 6), VLT_IMAGE_UNKNOWN);
    assert_int_equal(vlt_image_sniff((const uint8_t *)"\xff\xd8", 2), VLT_IMAGE_UNKNOWN);
}

static void test_encode_decode_and_dct_scaling(void **state) {
    (void)state;
    vlt_image src;
    assert_int_equal(vlt_image_alloc(&src, 200, 120), VLT_OK);
    pattern(src.rgb, 200, 120);
    uint8_t *jpg;
    size_t len;
    assert_int_equal(vlt_image_encode_jpeg(&src, 95, &jpg, &len), VLT_OK);
    assert_true(len > 100 && len < 200 * 120 * 3);
    assert_int_equal(vlt_image_sniff(jpg, len), VLT_IMAGE_JPEG);

    vlt_image full;
    assert_int_equal(vlt_image_decode(jpg, len, 0, "full", &full), VLT_OK);
    assert_int_equal(full.width, 200);
    assert_int_equal(full.height, 120);
    // q95 4:2:0 on sharp blue edges: PIL gets a mean error of 3.85 on this pattern, vlt 3.91.
    double mean = 0;
    for (size_t i = 0; i < 200 * 120 * 3; i++) mean += abs((int)full.rgb[i] - (int)src.rgb[i]);
    mean /= 200 * 120 * 3;
    if (mean >= 5.0) fail_msg("mean abs error %.2f", mean);

    // min_side 50: 120 >= 2 * 50, so the smallest factor keeping both sides >= 50 is 1/2 (100x60;
    // 3/8 would give 45 rows).
    vlt_image half;
    assert_int_equal(vlt_image_decode(jpg, len, 50, "half", &half), VLT_OK);
    assert_int_equal(half.width, 100);
    assert_int_equal(half.height, 60);
    // It is the same picture at half size: compare with a 2x2 box average of the full decode.
    double err = 0;
    for (int y = 0; y < 60; y++)
        for (int x = 0; x < 100; x++)
            for (int c = 0; c < 3; c++) {
                int s = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) s += full.rgb[((size_t)(2 * y + dy) * 200 + 2 * x + dx) * 3 + c];
                err += fabs(s / 4.0 - half.rgb[((size_t)y * 100 + x) * 3 + c]);
            }
    assert_true(err / (100 * 60 * 3) < 6.0);
    // min_side 15: 1/8 gives 25x15.
    vlt_image eighth;
    assert_int_equal(vlt_image_decode(jpg, len, 15, "eighth", &eighth), VLT_OK);
    assert_int_equal(eighth.width, 25);
    assert_int_equal(eighth.height, 15);
    // min_side 70: 120 < 140, no scaling.
    vlt_image same;
    assert_int_equal(vlt_image_decode(jpg, len, 70, "same", &same), VLT_OK);
    assert_int_equal(same.width, 200);
    assert_int_equal(same.height, 120);
    assert_memory_equal(same.rgb, full.rgb, 200 * 120 * 3);
    vlt_image_free(&src);
    vlt_image_free(&full);
    vlt_image_free(&half);
    vlt_image_free(&eighth);
    vlt_image_free(&same);
    free(jpg);
}

// --- PNGs written here with libpng: Adam7 interlace, 16-bit gray+alpha, 2-bit gray --------------

typedef struct { uint8_t *buf; size_t len, cap; } membuf;

static void mem_write(png_structp png, png_bytep data, size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->buf = realloc(m->buf, m->cap);
    }
    memcpy(m->buf + m->len, data, n);
    m->len += n;
}
static void mem_flush(png_structp png) { (void)png; }

// rows: h rows of rowbytes each.
static membuf write_png(int w, int h, int depth, int type, int interlace, uint8_t **rows) {
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng write failed");
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return m;
}

static void test_png_made_here(void **state) {
    (void)state;
    enum { W = 13, H = 11 };
    uint8_t rgb[H][W * 3], *rows[H];
    pattern(&rgb[0][0], W, H);
    for (int y = 0; y < H; y++) rows[y] = rgb[y];
    // Adam7-interlaced 8-bit RGB: exact.
    membuf m = write_png(W, H, 8, PNG_COLOR_TYPE_RGB, 1, rows);
    vlt_image img;
    assert_int_equal(vlt_image_decode(m.buf, m.len, 0, "adam7", &img), VLT_OK);
    assert_int_equal(img.width, W);
    assert_memory_equal(img.rgb, &rgb[0][0], sizeof rgb);
    vlt_image_free(&img);
    free(m.buf);

    // 16-bit gray + alpha (big-endian samples): the high byte, replicated, alpha dropped.
    uint8_t ga[H][W * 4];
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            ga[y][4 * x] = (uint8_t)(x * 19 + y);   // gray high byte
            ga[y][4 * x + 1] = (uint8_t)(x * 7);    // gray low byte
            ga[y][4 * x + 2] = (uint8_t)(y * 20);   // alpha
            ga[y][4 * x + 3] = 0x55;
        }
        rows[y] = ga[y];
    }
    m = write_png(W, H, 16, PNG_COLOR_TYPE_GRAY_ALPHA, 0, rows);
    assert_int_equal(vlt_image_decode(m.buf, m.len, 0, "ga16", &img), VLT_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) assert_int_equal(img.rgb[((size_t)y * W + x) * 3 + c], ga[y][4 * x]);
    vlt_image_free(&img);
    free(m.buf);

    // 2-bit gray: values 0..3 scale to 0, 85, 170, 255 (as PIL's "L;2").
    uint8_t g2[H][(W * 2 + 7) / 8];
    memset(g2, 0, sizeof g2);
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) g2[y][x / 4] |= (uint8_t)(((x + y) & 3) << (6 - 2 * (x % 4)));
        rows[y] = g2[y];
    }
    m = write_png(W, H, 2, PNG_COLOR_TYPE_GRAY, 0, rows);
    assert_int_equal(vlt_image_decode(m.buf, m.len, 0, "gray2", &img), VLT_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) assert_int_equal(img.rgb[((size_t)y * W + x) * 3 + 1], ((x + y) & 3) * 85);
    vlt_image_free(&img);
    free(m.buf);
}

// --- bad input -------------------------------------------------------------------------------------

static void expect_format_error(const uint8_t *buf, size_t len, const char *what) {
    vlt_image img = {1, 1, (uint8_t *)&img};
    vlt_status st = vlt_image_decode(buf, len, 0, what, &img);
    if (st != VLT_ERR_FORMAT) fail_msg("%s: expected VLT_ERR_FORMAT, got %s", what, vlt_status_name(st));
    assert_null(img.rgb);
    assert_int_equal(img.width, 0);
    if (!strstr(vlt_error_message(), what)) fail_msg("message '%s' does not name '%s'", vlt_error_message(), what);
}

static const char *CORRUPTIBLE[] = {"rgb420.jpg", "rgb444_progressive.jpg", "cmyk.jpg", "rgb.png",
                                     "palette_trns.png", "lossy.webp", "lossless_alpha.webp"};

static void test_truncated(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CORRUPTIBLE / sizeof *CORRUPTIBLE; i++) {
        char path[256], what[300];
        snprintf(path, sizeof path, FIXTURES "%s", CORRUPTIBLE[i]);
        size_t len;
        uint8_t *buf = read_file(path, &len);
        // Cut inside the header, in the middle of the data, and just before the end marker.
        size_t cuts[] = {5, 20, len / 2, len - 12};
        for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
            snprintf(what, sizeof what, "sample-%s-cut%zu", CORRUPTIBLE[i], cuts[c]);
            expect_format_error(buf, cuts[c], what);
        }
        free(buf);
    }
}

static void test_corrupt_headers(void **state) {
    (void)state;
    expect_format_error((const uint8_t *)"hello world, not an image", 25, "text-sample");
    expect_format_error((const uint8_t *)"\xff\xd8\xff", 3, "jpeg-magic-only");
    expect_format_error((const uint8_t *)"\x89PNG\r\n\x1a\n", 8, "png-magic-only");
    expect_format_error((const uint8_t *)"RIFF\x10\0\0\0WEBPVP8 \0\0\0\0", 20, "webp-empty");
    vlt_image img;
    assert_int_equal(vlt_image_decode(NULL, 0, 0, "null-sample", &img), VLT_ERR_FORMAT);
    for (size_t i = 0; i < sizeof CORRUPTIBLE / sizeof *CORRUPTIBLE; i++) {
        char path[256], what[300];
        snprintf(path, sizeof path, FIXTURES "%s", CORRUPTIBLE[i]);
        size_t len;
        uint8_t *buf = read_file(path, &len);
        // Overwrite the bytes after the magic (JPEG: the first marker segments; PNG: IHDR length,
        // type and size; WebP: the chunk header) with garbage.
        for (size_t k = 4; k < 40 && k < len; k++) buf[k] = (uint8_t)(0xA5 ^ (k * 31));
        if (vlt_image_sniff(buf, len) == VLT_IMAGE_PNG) memset(buf + 8, 0xFF, 8);
        snprintf(what, sizeof what, "garbled-%s", CORRUPTIBLE[i]);
        expect_format_error(buf, len, what);
        free(buf);
    }
    // A PNG whose IHDR CRC is wrong.
    size_t len;
    uint8_t *buf = read_file(FIXTURES "rgb.png", &len);
    buf[29] ^= 0xFF;
    expect_format_error(buf, len, "bad-crc-png");
    free(buf);
}

// Random byte flips and cuts: decoding returns OK or VLT_ERR_FORMAT and never crashes (the
// sanitizer build checks memory safety).
static void test_mutations_never_crash(void **state) {
    (void)state;
    int errors = 0, total = 0;
    for (size_t i = 0; i < sizeof CORRUPTIBLE / sizeof *CORRUPTIBLE; i++) {
        char path[256];
        snprintf(path, sizeof path, FIXTURES "%s", CORRUPTIBLE[i]);
        size_t len;
        uint8_t *orig = read_file(path, &len);
        uint8_t *buf = malloc(len);
        uint64_t stream = vlt_rng_stream(VLT_RNG_TEST, i, 0);
        for (int trial = 0; trial < 60; trial++) {
            memcpy(buf, orig, len);
            int flips = 1 + (int)vlt_rng_below(1, stream, 100 * trial, 8);
            for (int f = 0; f < flips; f++) {
                size_t pos = (size_t)vlt_rng_below(1, stream, 100 * trial + 1 + 2 * f, len);
                buf[pos] = (uint8_t)vlt_rng_u32(1, stream, 100 * trial + 2 + 2 * f);
            }
            size_t n = trial % 3 == 0 ? (size_t)vlt_rng_below(1, stream, 100 * trial + 99, len) : len;
            vlt_image img;
            vlt_status st = vlt_image_decode(buf, n, trial % 2 ? 4 : 0, "mutant", &img);
            assert_true(st == VLT_OK || st == VLT_ERR_FORMAT);
            if (st == VLT_OK) {
                assert_non_null(img.rgb);
                assert_true(img.width > 0 && img.height > 0);
            }
            errors += st != VLT_OK;
            total++;
            vlt_image_free(&img);
        }
        free(buf);
        free(orig);
    }
    assert_true(errors > total / 10);   // the mutations do hit the error paths
}

// --- damaged data that decoders "recover" from with a warning (issue 13, item 3) --------------------

static void expect_fault(const uint8_t *buf, size_t len, vlt_image_fault want, const char *what) {
    vlt_image img;
    vlt_image_fault fault = VLT_IMAGE_FAULT_NONE;
    vlt_status st = vlt_image_decode_fault(buf, len, 0, what, &img, &fault);
    if (st != VLT_ERR_FORMAT)
        fail_msg("%s: decoded as %dx%d (%s) instead of failing as %s", what, img.width, img.height,
                 vlt_status_name(st), vlt_image_fault_name(want));
    assert_null(img.rgb);
    if (fault != want)
        fail_msg("%s: fault %s, expected %s (%s)", what, vlt_image_fault_name(fault), vlt_image_fault_name(want),
                 vlt_error_message());
    if (!strstr(vlt_error_message(), what)) fail_msg("message '%s' does not name '%s'", vlt_error_message(), what);
    // The plain entry point refuses it the same way.
    assert_int_equal(vlt_image_decode(buf, len, 0, what, &img), VLT_ERR_FORMAT);
}

static uint8_t *make_jpeg(int w, int h, size_t *len) {
    vlt_image src;
    assert_int_equal(vlt_image_alloc(&src, w, h), VLT_OK);
    pattern(src.rgb, w, h);
    uint8_t *jpg;
    assert_int_equal(vlt_image_encode_jpeg(&src, 90, &jpg, len), VLT_OK);
    vlt_image_free(&src);
    return jpg;
}

// The offset of the first marker `code` (FF code) in a JPEG, or 0.
static size_t jpeg_marker(const uint8_t *b, size_t len, uint8_t code) {
    for (size_t i = 2; i + 1 < len; i++)
        if (b[i] == 0xFF && b[i + 1] == code) return i;
    return 0;
}

static void test_jpeg_warnings_are_bad_samples(void **state) {
    (void)state;
    size_t len;
    uint8_t *jpg = make_jpeg(96, 64, &len);
    size_t sos = jpeg_marker(jpg, len, 0xDA);
    assert_true(sos > 0 && sos < len / 2);
    uint8_t *buf = malloc(len + 16);

    // Cut in the middle of the entropy-coded data and an end marker appended: libjpeg warns
    // "Corrupt JPEG data: premature end of data segment" and fills the rest with grey.
    size_t cut = sos + (len - sos) / 2;
    memcpy(buf, jpg, cut);
    buf[cut] = 0xFF;
    buf[cut + 1] = 0xD9;
    expect_fault(buf, cut + 2, VLT_IMAGE_FAULT_TRUNCATED, "cut-with-eoi");

    // Cut without an end marker: "Premature end of JPEG file".
    expect_fault(jpg, cut, VLT_IMAGE_FAULT_TRUNCATED, "cut-no-eoi");

    // The same after a harmless first warning (unknown JFIF major revision): TurboJPEG reported
    // only the first warning, which hid the truncation.
    memcpy(buf, jpg, cut);
    assert_int_equal(memcmp(buf + 6, "JFIF", 4), 0);
    buf[11] = 3;
    buf[cut] = 0xFF;
    buf[cut + 1] = 0xD9;
    expect_fault(buf, cut + 2, VLT_IMAGE_FAULT_TRUNCATED, "jfif3-cut-with-eoi");

    // A harmless warning alone: the picture is whole and decodes to the same pixels.
    memcpy(buf, jpg, len);
    buf[11] = 3;
    vlt_image a, b;
    assert_int_equal(vlt_image_decode(jpg, len, 0, "clean", &a), VLT_OK);
    vlt_image_fault fault = VLT_IMAGE_FAULT_BAD;
    assert_int_equal(vlt_image_decode_fault(buf, len, 0, "jfif3", &b, &fault), VLT_OK);
    assert_int_equal(fault, VLT_IMAGE_FAULT_NONE);
    assert_int_equal(a.width, b.width);
    assert_memory_equal(a.rgb, b.rgb, (size_t)a.width * a.height * 3);
    vlt_image_free(&a);
    vlt_image_free(&b);

    // Garbage over part of the entropy-coded data (no 0xFF, so no marker): bad Huffman codes
    // or a premature end; either way not a picture.
    memcpy(buf, jpg, len);
    for (size_t i = sos + 40; i < sos + 120; i++) buf[i] = (uint8_t)(0x5A + i * 7) == 0xFF ? 0 : (uint8_t)(0x5A + i * 7);
    vlt_image img;
    fault = VLT_IMAGE_FAULT_NONE;
    vlt_status st = vlt_image_decode_fault(buf, len, 0, "garbage-scan", &img, &fault);
    if (st == VLT_OK) fail_msg("garbage in the scan decoded OK");
    assert_true(fault == VLT_IMAGE_FAULT_CORRUPT || fault == VLT_IMAGE_FAULT_TRUNCATED);

    // Bytes between two marker segments ("extraneous bytes before marker"): corrupt.
    size_t sof = jpeg_marker(jpg, len, 0xC0);
    assert_true(sof > 0);
    memcpy(buf, jpg, sof);
    memcpy(buf + sof, "\x11\x22\x33\x44", 4);
    memcpy(buf + sof + 4, jpg + sof, len - sof);
    expect_fault(buf, len + 4, VLT_IMAGE_FAULT_CORRUPT, "extraneous");
    free(buf);
    free(jpg);
}

// A 48x48 JPEG whose frame header claims 11000x11000: "decoded OK" as a grey 11000x11000 before.
static void test_jpeg_size_lie(void **state) {
    (void)state;
    size_t len;
    uint8_t *jpg = make_jpeg(48, 48, &len);
    size_t sof = jpeg_marker(jpg, len, 0xC0);
    assert_true(sof > 0);
    // FF C0, length (2), precision (1), height (2), width (2)
    jpg[sof + 5] = 11000 >> 8;
    jpg[sof + 6] = 11000 & 0xFF;
    jpg[sof + 7] = 11000 >> 8;
    jpg[sof + 8] = 11000 & 0xFF;
    int w, h;
    vlt_image_format f;
    assert_int_equal(vlt_image_probe(jpg, len, "liar", &w, &h, &f), VLT_OK);
    assert_int_equal(w, 11000);
    expect_fault(jpg, len, VLT_IMAGE_FAULT_TRUNCATED, "size-lie");
    free(jpg);
}

// Appends a PNG chunk (length, type, data, CRC; crc_ok = 0 writes a wrong CRC) at *m's end.
static void png_chunk(membuf *m, const char *type, const uint8_t *data, uint32_t n, int crc_ok) {
    uint8_t hdr[8] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(hdr + 4, type, 4);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, n);   // crc32(c, NULL, 0) would return 0, not c
    if (!crc_ok) crc ^= 0x5555;
    uint8_t tail[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    m->buf = realloc(m->buf, m->len + 12 + n);
    memcpy(m->buf + m->len, hdr, 8);
    if (n) memcpy(m->buf + m->len + 8, data, n);
    memcpy(m->buf + m->len + 8 + n, tail, 4);
    m->len += 12 + n;
}

static void test_png_warnings_are_bad_samples(void **state) {
    (void)state;
    enum { W = 16, H = 12 };
    uint8_t rgb[H][W * 3], *rows[H];
    pattern(&rgb[0][0], W, H);
    for (int y = 0; y < H; y++) rows[y] = rgb[y];
    membuf good = write_png(W, H, 8, PNG_COLOR_TYPE_RGB, 0, rows);
    size_t iend = good.len - 12;
    assert_int_equal(memcmp(good.buf + iend + 4, "IEND", 4), 0);

    // More image data in the zlib stream than the picture needs: libpng warns "Extra compressed
    // data" (a benign error, a warning in release builds) and returns the picture.
    uint8_t raw[H * (1 + W * 3) + 50], z[2 * sizeof raw];
    for (int y = 0; y < H; y++) {
        raw[y * (1 + W * 3)] = 0;   // filter type None
        memcpy(raw + y * (1 + W * 3) + 1, rgb[y], W * 3);
    }
    memset(raw + H * (1 + W * 3), 0x42, 50);
    uLongf zlen = sizeof z;
    assert_int_equal(compress(z, &zlen, raw, sizeof raw), Z_OK);
    size_t idat0 = 8 + 12 + 13;
    membuf m = {0};
    m.buf = malloc(idat0);
    memcpy(m.buf, good.buf, idat0);
    m.len = idat0;
    png_chunk(&m, "IDAT", z, (uint32_t)zlen, 1);
    png_chunk(&m, "IEND", NULL, 0, 1);
    expect_fault(m.buf, m.len, VLT_IMAGE_FAULT_CORRUPT, "png-extra-idat");
    free(m.buf);

    // An ancillary chunk with a bad CRC: libpng drops it with a warning; PIL refuses the file.
    size_t ihdr_end = 8 + 12 + 13;
    m = (membuf){0};
    m.buf = malloc(ihdr_end);
    memcpy(m.buf, good.buf, ihdr_end);
    m.len = ihdr_end;
    png_chunk(&m, "tEXt", (const uint8_t *)"Comment\0hi", 10, 0);
    m.buf = realloc(m.buf, m.len + good.len - ihdr_end);
    memcpy(m.buf + m.len, good.buf + ihdr_end, good.len - ihdr_end);
    m.len += good.len - ihdr_end;
    expect_fault(m.buf, m.len, VLT_IMAGE_FAULT_CORRUPT, "png-bad-text-crc");

    // With a correct CRC the same file is fine.
    size_t text_crc = ihdr_end + 12 + 10 - 4;
    uLong crc = crc32(crc32(0, (const Bytef *)"tEXt", 4), (const Bytef *)"Comment\0hi", 10);
    m.buf[text_crc] = (uint8_t)(crc >> 24);
    m.buf[text_crc + 1] = (uint8_t)(crc >> 16);
    m.buf[text_crc + 2] = (uint8_t)(crc >> 8);
    m.buf[text_crc + 3] = (uint8_t)crc;
    vlt_image img;
    assert_int_equal(vlt_image_decode(m.buf, m.len, 0, "png-good-text", &img), VLT_OK);
    assert_memory_equal(img.rgb, &rgb[0][0], sizeof rgb);
    vlt_image_free(&img);
    free(m.buf);

    // IDAT data cut short and IEND appended.
    size_t idat = 8 + 12 + 13;
    uint32_t n = (uint32_t)good.buf[idat] << 24 | (uint32_t)good.buf[idat + 1] << 16 |
                 (uint32_t)good.buf[idat + 2] << 8 | good.buf[idat + 3];
    assert_int_equal(memcmp(good.buf + idat + 4, "IDAT", 4), 0);
    m = (membuf){0};
    m.buf = malloc(idat);
    memcpy(m.buf, good.buf, idat);
    m.len = idat;
    png_chunk(&m, "IDAT", good.buf + idat + 8, n / 2, 1);
    png_chunk(&m, "IEND", NULL, 0, 1);
    expect_fault(m.buf, m.len, VLT_IMAGE_FAULT_TRUNCATED, "png-cut-with-iend");
    free(m.buf);
    free(good.buf);
}

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

// A lossy WebP cut short with its RIFF and VP8 chunk sizes rewritten to match (the container is
// then consistent and only the bitstream is short).
static void test_webp_cut_consistent(void **state) {
    (void)state;
    enum { W = 64, H = 48 };
    uint8_t rgb[W * H * 3];
    pattern(rgb, W, H);
    uint8_t *webp;
    size_t len = WebPEncodeRGB(rgb, W, H, W * 3, 90, &webp);
    assert_true(len > 100);
    assert_int_equal(memcmp(webp + 12, "VP8 ", 4), 0);
    size_t cut = len * 2 / 3 & ~(size_t)1;
    uint8_t *buf = malloc(cut);
    memcpy(buf, webp, cut);
    put_le32(buf + 4, (uint32_t)(cut - 8));
    put_le32(buf + 16, (uint32_t)(cut - 20));
    expect_fault(buf, cut, VLT_IMAGE_FAULT_TRUNCATED, "webp-cut");
    free(buf);
    WebPFree(webp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_matches_pil),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_encode_decode_and_dct_scaling),
        cmocka_unit_test(test_png_made_here),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_mutations_never_crash),
        cmocka_unit_test(test_jpeg_warnings_are_bad_samples),
        cmocka_unit_test(test_jpeg_size_lie),
        cmocka_unit_test(test_png_warnings_are_bad_samples),
        cmocka_unit_test(test_webp_cut_consistent),
    };
    return cmocka_run_group_tests_name("data_image", tests, NULL, NULL);
}
