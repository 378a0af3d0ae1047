// test_data_shardwriter.c — write shards, then read the tar bytes back with a minimal ustar parser
// (the real reader is data/tar.c's job): member names and order, contents, header checksums,
// end-of-archive blocks, sizes.json, no temp files left, JPEG passthrough / re-encode / resize.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/image.h"
#include "data/shardwriter.h"

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

typedef struct { char name[101]; size_t size; const uint8_t *data; } member;

// Parses a whole ustar archive in memory; checks each header's checksum and the two zero blocks.
static int parse_tar(const uint8_t *buf, size_t len, member *out, int max) {
    assert_int_equal(len % 512, 0);
    size_t p = 0;
    int n = 0;
    while (p + 512 <= len) {
        const uint8_t *h = buf + p;
        int zero = 1;
        for (int i = 0; i < 512; i++) zero &= h[i] == 0;
        if (zero) {
            assert_true(p + 1024 == len);   // two zero blocks, then nothing
            for (size_t i = p; i < len; i++) assert_int_equal(buf[i], 0);
            return n;
        }
        unsigned sum = 0;
        for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
        assert_int_equal(strtoul((const char *)h + 148, NULL, 8), sum);
        assert_memory_equal(h + 257, "ustar\0" "00", 8);
        assert_int_equal(h[156], '0');
        assert_true(n < max);
        memcpy(out[n].name, h, 100);
        out[n].name[100] = 0;
        out[n].size = strtoull((const char *)h + 124, NULL, 8);
        out[n].data = h + 512;
        p += 512 + (out[n].size + 511) / 512 * 512;
        assert_true(p <= len);
        n++;
    }
    fail_msg("archive without end blocks");
    return -1;
}

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vlt_test_shardwriter_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        n += l >= s && !strcmp(e->d_name + l - s, suffix);
    }
    closedir(d);
    return n;
}

static void test_write_and_read_back(void **state) {
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/out/nested", tmpdir);   // created on open
    vlt_shardwriter_cfg cfg;
    vlt_shardwriter_cfg_default(&cfg, dir);
    cfg.shard_size = 3;
    cfg.prefix = "train-";
    vlt_shardwriter *w;
    assert_int_equal(vlt_shardwriter_open(&cfg, &w), VLT_OK);
    // 7 samples: JPEG payloads of different lengths (not multiples of 512).
    uint8_t *payload[7];
    size_t plen[7];
    for (int i = 0; i < 7; i++) {
        vlt_image img;
        assert_int_equal(vlt_image_alloc(&img, 20 + 7 * i, 16), VLT_OK);
        for (size_t k = 0; k < (size_t)img.width * img.height * 3; k++) img.rgb[k] = (uint8_t)(k * (i + 3));
        int sw, sh;
        assert_int_equal(vlt_shardwriter_prepare_rgb(&cfg, &img, &payload[i], &plen[i], &sw, &sh), VLT_OK);
        assert_int_equal(sw, img.width);
        vlt_image_free(&img);
        char caption[64], json[64], key[32];
        snprintf(caption, sizeof caption, "caption number %d, with \"quotes\" and é", i);
        snprintf(json, sizeof json, "{\"index\": %d, \"caption\": \"overwritten\"}", i);
        assert_int_equal(vlt_shardwriter_add(w, payload[i], plen[i], caption, i % 2 ? json : NULL, key), VLT_OK);
        char want[32];
        snprintf(want, sizeof want, "%09d", i);
        assert_string_equal(key, want);
        // While a shard is open it exists only as a temp file.
        char path[400];
        snprintf(path, sizeof path, "%s/train-%05d.tar", dir, i / 3);
        assert_int_equal(access(path, F_OK) == 0, i % 3 == 2);
    }
    assert_int_equal(vlt_shardwriter_samples(w), 7);
    assert_int_equal(vlt_shardwriter_shards(w), 3);
    assert_int_equal(vlt_shardwriter_close(w), VLT_OK);
    assert_int_equal(count_files(dir, ".tmp"), 0);
    assert_int_equal(count_files(dir, ".tar"), 3);

    for (int s = 0; s < 3; s++) {
        char path[400];
        snprintf(path, sizeof path, "%s/train-%05d.tar", dir, s);
        size_t len;
        uint8_t *tar = slurp(path, &len);
        assert_non_null(tar);
        member m[16];
        int n = parse_tar(tar, len, m, 16);
        int samples = s < 2 ? 3 : 1;
        assert_int_equal(n, 3 * samples);
        for (int j = 0; j < samples; j++) {
            int i = 3 * s + j;
            char name[64];
            snprintf(name, sizeof name, "%09d.jpg", i);
            assert_string_equal(m[3 * j].name, name);
            assert_int_equal(m[3 * j].size, plen[i]);
            assert_memory_equal(m[3 * j].data, payload[i], plen[i]);
            snprintf(name, sizeof name, "%09d.txt", i);
            assert_string_equal(m[3 * j + 1].name, name);
            char caption[64];
            snprintf(caption, sizeof caption, "caption number %d, with \"quotes\" and é", i);
            assert_int_equal(m[3 * j + 1].size, strlen(caption));
            assert_memory_equal(m[3 * j + 1].data, caption, strlen(caption));
            snprintf(name, sizeof name, "%09d.json", i);
            assert_string_equal(m[3 * j + 2].name, name);
            char *text = strndup((const char *)m[3 * j + 2].data, m[3 * j + 2].size);
            cJSON *o = cJSON_Parse(text);
            assert_non_null(o);
            snprintf(name, sizeof name, "%09d", i);
            assert_string_equal(cJSON_GetObjectItem(o, "key")->valuestring, name);
            assert_string_equal(cJSON_GetObjectItem(o, "caption")->valuestring, caption);
            if (i % 2) assert_int_equal(cJSON_GetObjectItem(o, "index")->valueint, i);
            else assert_null(cJSON_GetObjectItem(o, "index"));
            cJSON_Delete(o);
            free(text);
        }
        free(tar);
    }
    for (int i = 0; i < 7; i++) free(payload[i]);

    char path[400];
    snprintf(path, sizeof path, "%s/sizes.json", dir);
    size_t len;
    char *text = (char *)slurp(path, &len);
    assert_non_null(text);
    cJSON *sizes = cJSON_Parse(text);
    assert_non_null(sizes);
    assert_int_equal(cJSON_GetArraySize(sizes), 3);
    assert_int_equal(cJSON_GetObjectItem(sizes, "train-00000.tar")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(sizes, "train-00001.tar")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(sizes, "train-00002.tar")->valueint, 1);
    cJSON_Delete(sizes);
    free(text);
}

static void test_prepare_encoded(void **state) {
    (void)state;
    vlt_shardwriter_cfg cfg;
    vlt_shardwriter_cfg_default(&cfg, tmpdir);
    vlt_image img;
    assert_int_equal(vlt_image_alloc(&img, 200, 100), VLT_OK);
    for (size_t k = 0; k < 200 * 100 * 3; k++) img.rgb[k] = (uint8_t)(k / 600);
    uint8_t *jpg, *out;
    size_t jlen, olen;
    assert_int_equal(vlt_image_encode_jpeg(&img, 90, &jpg, &jlen), VLT_OK);
    int w, h;
    // A JPEG that needs no resize is passed through byte for byte.
    assert_int_equal(vlt_shardwriter_prepare_encoded(&cfg, jpg, jlen, "a.jpg", &out, &olen, &w, &h), VLT_OK);
    assert_int_equal(olen, jlen);
    assert_memory_equal(out, jpg, jlen);
    assert_int_equal(w, 200);
    free(out);
    // resize 50: the shorter side becomes 50.
    cfg.resize = 50;
    assert_int_equal(vlt_shardwriter_prepare_encoded(&cfg, jpg, jlen, "a.jpg", &out, &olen, &w, &h), VLT_OK);
    assert_int_equal(w, 100);
    assert_int_equal(h, 50);
    vlt_image back;
    assert_int_equal(vlt_image_decode(out, olen, 0, "back", &back), VLT_OK);
    assert_int_equal(back.width, 100);
    assert_int_equal(back.height, 50);
    vlt_image_free(&back);
    free(out);
    // Images already smaller than resize are not enlarged.
    cfg.resize = 150;
    assert_int_equal(vlt_shardwriter_prepare_encoded(&cfg, jpg, jlen, "a.jpg", &out, &olen, &w, &h), VLT_OK);
    assert_int_equal(h, 100);
    assert_memory_equal(out, jpg, jlen);
    free(out);
    // A corrupt JPEG is refused, naming the input.
    jpg[jlen / 2] ^= 0xFF;
    uint8_t *cut = malloc(jlen / 2);
    memcpy(cut, jpg, jlen / 2);
    assert_int_equal(vlt_shardwriter_prepare_encoded(&cfg, cut, jlen / 2, "images/cut.jpg", &out, &olen, &w, &h),
                     VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "images/cut.jpg"));
    assert_null(out);
    free(cut);
    free(jpg);
    vlt_image_free(&img);
    // PNG input is re-encoded as JPEG.
    size_t plen;
    uint8_t *png = slurp("tests/data/data/image/rgb.png", &plen);
    assert_non_null(png);
    cfg.resize = 0;
    assert_int_equal(vlt_shardwriter_prepare_encoded(&cfg, png, plen, "rgb.png", &out, &olen, &w, &h), VLT_OK);
    assert_int_equal(vlt_image_sniff(out, olen), VLT_IMAGE_JPEG);
    assert_int_equal(w, 23);
    free(out);
    free(png);
}

static void test_abort_and_errors(void **state) {
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/aborted", tmpdir);
    vlt_shardwriter_cfg cfg;
    vlt_shardwriter_cfg_default(&cfg, dir);
    vlt_shardwriter *w;
    assert_int_equal(vlt_shardwriter_open(&cfg, &w), VLT_OK);
    const uint8_t fake[4] = {0xFF, 0xD8, 0xFF, 0xD9};
    assert_int_equal(vlt_shardwriter_add(w, fake, 4, "c", NULL, NULL), VLT_OK);
    assert_int_equal(vlt_shardwriter_add(w, fake, 4, "c", "[1, 2]", NULL), VLT_ERR_FORMAT);   // not an object
    assert_int_equal(vlt_shardwriter_add(w, fake, 4, "c", "{broken", NULL), VLT_ERR_FORMAT);
    vlt_shardwriter_abort(w);
    assert_int_equal(count_files(dir, ".tmp"), 0);
    assert_int_equal(count_files(dir, ".tar"), 0);
    assert_int_equal(count_files(dir, ".json"), 0);
    cfg.shard_size = 0;
    assert_int_equal(vlt_shardwriter_open(&cfg, &w), VLT_ERR_ARG);
    vlt_shardwriter_cfg_default(&cfg, "/proc/definitely/not/writable");
    assert_int_equal(vlt_shardwriter_open(&cfg, &w), VLT_ERR_IO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_and_read_back),
        cmocka_unit_test(test_prepare_encoded),
        cmocka_unit_test(test_abort_and_errors),
    };
    return cmocka_run_group_tests_name("data_shardwriter", tests, setup, teardown);
}
