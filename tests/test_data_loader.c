// Tests for the threaded loader: every sample exactly once with its own image, caption and
// tokens; the same sequence whatever the thread timing; save/restore of the position giving
// exactly the uninterrupted continuation (plain and .tar.zst shards, shuffle buffer, epoch
// boundaries, resampled mode); corrupt data survived and counted by reason; config errors.
// Shards are written by the test into a temp directory.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/image.h"
#include "data/loader.h"
#include "data/tar.h"
#include "data/tokenizer.h"
#include "test_data_tar_util.h"

#define S 16   // output image side in these tests

// The uniform colour of sample (shard, i).
static void colour_of(int shard, int i, uint8_t rgb[3]) {
    rgb[0] = (uint8_t)((shard * 61 + i * 13) % 200 + 20);
    rgb[1] = (uint8_t)((shard * 17 + i * 7) % 200 + 30);
    rgb[2] = (uint8_t)((i * 29) % 200 + 10);
}

static tb_buf jpeg_of(int shard, int i) {
    vlt_image img;
    assert_int_equal(vlt_image_alloc(&img, 24, 20), VLT_OK);
    uint8_t c[3];
    colour_of(shard, i, c);
    for (int p = 0; p < 24 * 20; p++) memcpy(img.rgb + 3 * p, c, 3);
    uint8_t *jpg;
    size_t len;
    assert_int_equal(vlt_image_encode_jpeg(&img, 95, &jpg, &len), VLT_OK);
    vlt_image_free(&img);
    tb_buf b = {jpg, len, len};
    return b;
}

// Sample kinds for writing shards.
enum { GOOD, GOOD_JSON, BAD_JPEG, NO_IMAGE, NO_CAPTION, BAD_JSON, DUP_EXT, EMPTY_CAPTION, CUT_JPEG, CORRUPT_JPEG };

static void add_sample(tb_buf *b, int shard, int i, int kind) {
    char key[32], name[64], cap[64];
    snprintf(key, sizeof key, "s%02d_%04d", shard, i);
    snprintf(cap, sizeof cap, "caption of %s", key);
    if (kind != NO_IMAGE) {
        snprintf(name, sizeof name, "%s.jpg", key);
        if (kind == BAD_JPEG) {
            tb_str(b, name, "\xff\xd8\xff\xe0 this is not a jpeg");
        } else if (kind == CUT_JPEG || kind == CORRUPT_JPEG) {
            // CUT: the entropy-coded data cut in the middle and an end marker appended (libjpeg only
            // warns, "premature end of data segment", and fills with grey). CORRUPT: 4 stray bytes
            // between two marker segments ("extraneous bytes before marker").
            tb_buf j = jpeg_of(shard, i);
            tb_buf d = {0};
            size_t sof = 0, sos = 0;
            for (size_t k = 2; k + 1 < j.len; k++) {
                if (j.buf[k] == 0xFF && j.buf[k + 1] == 0xC0 && !sof) sof = k;
                if (j.buf[k] == 0xFF && j.buf[k + 1] == 0xDA && !sos) sos = k;
            }
            assert_true(sof > 0 && sos > sof);
            if (kind == CUT_JPEG) {
                size_t data = sos + 2 + ((size_t)j.buf[sos + 2] << 8 | j.buf[sos + 3]);
                assert_true(data + 4 < j.len);
                tb_put(&d, j.buf, data + (j.len - 2 - data) / 2);
                tb_put(&d, "\xff\xd9", 2);
            } else {
                tb_put(&d, j.buf, sof);
                tb_put(&d, "\x01\x02\x03\x04", 4);
                tb_put(&d, j.buf + sof, j.len - sof);
            }
            tb_file(b, name, d.buf, d.len);
            tb_free(&d);
            tb_free(&j);
        } else {
            tb_buf j = jpeg_of(shard, i);
            tb_file(b, name, j.buf, j.len);
            tb_free(&j);
        }
    }
    if (kind == DUP_EXT) {
        snprintf(name, sizeof name, "%s.JPG", key);
        tb_str(b, name, "dup");
    }
    if (kind == GOOD_JSON || kind == BAD_JSON) {
        char js[128];
        snprintf(js, sizeof js, kind == BAD_JSON ? "{\"caption\": \"%s\"" : "{\"caption\": \"%s\", \"w\": 24}", cap);
        snprintf(name, sizeof name, "%s.json", key);
        tb_str(b, name, js);
    } else if (kind == EMPTY_CAPTION) {
        snprintf(name, sizeof name, "%s.txt", key);
        tb_str(b, name, "  \n");
    } else if (kind != NO_CAPTION) {
        snprintf(name, sizeof name, "%s.txt", key);
        tb_str(b, name, cap);
    }
}

// Writes shard `shard` with n good samples (every 5th with a .json caption) as
// DIR/shard-NN.tar or .tar.zst.
static void write_shard(const char *dir, int shard, int n, int zst) {
    tb_buf b = {0};
    for (int i = 0; i < n; i++) add_sample(&b, shard, i, i % 5 == 4 ? GOOD_JSON : GOOD);
    tb_end(&b);
    char path[512];
    snprintf(path, sizeof path, "%s/shard-%02d.tar%s", dir, shard, zst ? ".zst" : "");
    if (zst) {
        tb_buf z = tb_zstd(&b, 1);
        assert_int_equal(tb_save(z.buf, z.len, path), 0);
        tb_free(&z);
    } else {
        assert_int_equal(tb_save(b.buf, b.len, path), 0);
    }
    tb_free(&b);
}

// --- collecting what a loader delivers -------------------------------------------------------------

typedef struct {
    int n, cap;
    char **keys;
    char **captions;
    float *images;     // n x 3*S*S
    int32_t *tokens;   // n x T
    int T;
    int batches, ends;
    int64_t *batch_n;  // sizes, in order; -1 marks an epoch end
    int nb;
} seqlog;

static void log_free(seqlog *g) {
    for (int i = 0; i < g->n; i++) {
        free(g->keys[i]);
        free(g->captions[i]);
    }
    free(g->keys);
    free(g->captions);
    free(g->images);
    free(g->tokens);
    free(g->batch_n);
    memset(g, 0, sizeof *g);
}

static void log_batch(seqlog *g, const vlt_batch *b) {
    g->batch_n = realloc(g->batch_n, (size_t)(g->nb + 1) * sizeof *g->batch_n);
    if (!b) {
        g->batch_n[g->nb++] = -1;
        g->ends++;
        return;
    }
    g->batch_n[g->nb++] = b->n;
    g->batches++;
    g->T = b->context_len;
    size_t img = 3 * S * S;
    if (g->n + b->n > g->cap) {
        g->cap = (g->n + b->n) * 2;
        g->keys = realloc(g->keys, (size_t)g->cap * sizeof(char *));
        g->captions = realloc(g->captions, (size_t)g->cap * sizeof(char *));
        g->images = realloc(g->images, (size_t)g->cap * img * sizeof(float));
        g->tokens = realloc(g->tokens, (size_t)g->cap * (size_t)g->T * sizeof(int32_t));
    }
    assert_int_equal(b->image_size, S);
    for (int i = 0; i < b->n; i++) {
        g->keys[g->n] = strdup(b->keys[i]);
        g->captions[g->n] = strdup(b->captions[i]);
        memcpy(g->images + (size_t)g->n * img, b->images + (size_t)i * img, img * sizeof(float));
        memcpy(g->tokens + (size_t)g->n * (size_t)g->T, b->tokens + (size_t)i * (size_t)g->T,
               (size_t)g->T * sizeof(int32_t));
        g->n++;
    }
}

// Runs `steps` calls of vlt_loader_next (an epoch end counts as a step).
static void run_steps(vlt_loader *L, int steps, seqlog *g) {
    for (int k = 0; k < steps; k++) {
        const vlt_batch *b;
        vlt_status s = vlt_loader_next(L, &b);
        if (s != VLT_OK) fail_msg("vlt_loader_next: %s", vlt_error_message());
        log_batch(g, b);
    }
}

// Runs until `epochs` epoch ends.
static void run_epochs(vlt_loader *L, int epochs, seqlog *g) {
    int target = g->ends + epochs;
    while (g->ends < target) run_steps(L, 1, g);
}

static void assert_same(const seqlog *a, int a_from, const seqlog *b) {
    assert_int_equal(a->n - a_from, b->n);
    for (int i = 0; i < b->n; i++) {
        assert_string_equal(a->keys[a_from + i], b->keys[i]);
        assert_string_equal(a->captions[a_from + i], b->captions[i]);
    }
    size_t img = 3 * S * S;
    assert_memory_equal(a->images + (size_t)a_from * img, b->images, (size_t)b->n * img * sizeof(float));
    if (b->n) assert_memory_equal(a->tokens + (size_t)a_from * (size_t)a->T, b->tokens,
                                  (size_t)b->n * (size_t)b->T * sizeof(int32_t));
}

static void base_cfg(vlt_loader_cfg *c, const char *spec) {
    vlt_loader_cfg_default(c);
    c->shards = spec;
    c->readers = 2;
    c->batch_size = 4;
    c->image_size = S;
    c->context_len = 16;
    c->seed = 1234;
    c->shuffle_buffer = 8;
    c->shuffle_initial = 3;
    c->warn_limit = 3;
    c->report = 0;
}

static vlt_loader *make(const vlt_loader_cfg *c) {
    vlt_loader *L;
    if (vlt_loader_create(c, &L) != VLT_OK) fail_msg("vlt_loader_create: %s", vlt_error_message());
    return L;
}

// --- fixtures --------------------------------------------------------------------------------------

typedef struct {
    char *dir;
    char spec[600];
} shards_fx;

// 5 shards of 7..11 samples; shards 1 and 3 zstd-compressed.
static int setup_shards(void **state) {
    shards_fx *fx = calloc(1, sizeof *fx);
    fx->dir = tb_tmpdir();
    for (int s = 0; s < 5; s++) write_shard(fx->dir, s, 7 + s, s == 1 || s == 3);
    snprintf(fx->spec, sizeof fx->spec, "%s/shard-{00,02,04}.tar::%s/shard-{01,03}.tar.zst", fx->dir, fx->dir);
    *state = fx;
    return 0;
}

static int teardown_shards(void **state) {
    shards_fx *fx = *state;
    tb_rmdir(fx->dir);
    free(fx);
    return 0;
}

#define TOTAL_SAMPLES (7 + 8 + 9 + 10 + 11)

// --- tests -----------------------------------------------------------------------------------------

static void test_every_sample_once(void **state) {
    shards_fx *fx = *state;
    vlt_loader_cfg c;
    base_cfg(&c, fx->spec);
    c.train = 0;   // eval transform: a uniform image stays exactly uniform
    vlt_tokenizer *tok = NULL;
    if (vlt_tokenizer_load(NULL, &tok) == VLT_OK) c.tokenizer = tok;
    else fprintf(stderr, "note: tokenizer not loadable (%s); tokens unchecked\n", vlt_error_message());
    vlt_loader *L = make(&c);
    seqlog g = {0};
    run_epochs(L, 1, &g);
    assert_int_equal(g.n, TOTAL_SAMPLES);
    assert_int_equal(g.batches, (TOTAL_SAMPLES + 3) / 4);
    for (int b = 0; b < g.batches - 1; b++) assert_int_equal(g.batch_n[b], 4);
    assert_int_equal(g.batch_n[g.batches - 1], TOTAL_SAMPLES % 4);
    int seen[5][16] = {{0}};
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, sd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    for (int k = 0; k < g.n; k++) {
        int sh, i;
        assert_int_equal(sscanf(g.keys[k], "s%02d_%04d", &sh, &i), 2);
        assert_true(sh >= 0 && sh < 5 && i >= 0 && i < 7 + sh);
        seen[sh][i]++;
        char want[64];
        snprintf(want, sizeof want, "caption of %s", g.keys[k]);
        assert_string_equal(g.captions[k], want);
        // The image is this key's colour (JPEG error of a flat colour is a level or two).
        uint8_t col[3];
        colour_of(sh, i, col);
        const float *im = g.images + (size_t)k * 3 * S * S;
        for (int ch = 0; ch < 3; ch++) {
            float v = im[(size_t)ch * S * S + 37] * sd[ch] + mean[ch];
            assert_true(fabsf(v * 255.0f - col[ch]) < 3.0f);
        }
        if (tok) {
            const int32_t *t = g.tokens + (size_t)k * 16;
            int32_t ids[16];
            vlt_tokenizer_encode(tok, want, ids, 16);
            assert_memory_equal(t, ids, sizeof ids);
            assert_int_equal(t[0], VLT_TOKEN_SOT);
        }
    }
    for (int sh = 0; sh < 5; sh++)
        for (int i = 0; i < 7 + sh; i++) assert_int_equal(seen[sh][i], 1);
    const vlt_loader_stats *st = vlt_loader_get_stats(L);
    assert_int_equal(st->epoch, 0);
    assert_int_equal(st->samples, TOTAL_SAMPLES);
    assert_int_equal(st->batches, g.batches);
    assert_int_equal(st->shards_done, 5);
    assert_int_equal(st->shards_failed + st->shards_truncated, 0);
    for (int r = 0; r < VLT_SKIP_COUNT; r++) assert_int_equal(st->skipped[r], 0);
    vlt_loader_free(L);
    vlt_tokenizer_free(tok);
    log_free(&g);
}

// The sequence depends on (seed, epoch) only: not on queue sizes, prefetch depth or timing.
static void test_deterministic_order(void **state) {
    shards_fx *fx = *state;
    vlt_loader_cfg c;
    base_cfg(&c, fx->spec);
    seqlog ref = {0};
    vlt_loader *L = make(&c);
    run_epochs(L, 2, &ref);
    vlt_loader_free(L);
    assert_int_equal(ref.n, 2 * TOTAL_SAMPLES);
    const int queues[3] = {1, 2, 9}, prefetch[3] = {1, 4, 2};
    for (int v = 0; v < 3; v++) {
        base_cfg(&c, fx->spec);
        c.queue_per_reader = queues[v];
        c.prefetch = prefetch[v];
        seqlog g = {0};
        L = make(&c);
        run_epochs(L, 2, &g);
        vlt_loader_free(L);
        assert_same(&ref, 0, &g);
        log_free(&g);
    }
    // The two epochs differ in order; so does another seed.
    int same = 0;
    for (int k = 0; k < TOTAL_SAMPLES; k++) same += !strcmp(ref.keys[k], ref.keys[TOTAL_SAMPLES + k]);
    assert_true(same < TOTAL_SAMPLES / 2);
    base_cfg(&c, fx->spec);
    c.seed = 99;
    seqlog other = {0};
    L = make(&c);
    run_epochs(L, 1, &other);
    vlt_loader_free(L);
    same = 0;
    for (int k = 0; k < TOTAL_SAMPLES; k++) same += !strcmp(ref.keys[k], other.keys[k]);
    assert_true(same < TOTAL_SAMPLES / 2);
    // Without any shuffling: shard order as dealt, samples in shard order.
    base_cfg(&c, fx->spec);
    c.shuffle_shards = 0;
    c.shuffle_buffer = 0;
    c.readers = 1;
    seqlog plain = {0};
    L = make(&c);
    run_epochs(L, 1, &plain);
    vlt_loader_free(L);
    assert_string_equal(plain.keys[0], "s00_0000");
    assert_string_equal(plain.keys[7], "s02_0000");
    assert_string_equal(plain.keys[TOTAL_SAMPLES - 1], "s03_0009");
    log_free(&plain);
    log_free(&other);
    log_free(&ref);
}

// Saving after k steps and restoring into a fresh loader gives exactly the rest of the
// uninterrupted run, across epoch ends; the stats carry over.
static void check_resume(const vlt_loader_cfg *c, int total_steps) {
    seqlog ref = {0};
    vlt_loader *L = make(c);
    run_steps(L, total_steps, &ref);
    vlt_loader_stats ref_stats = *vlt_loader_get_stats(L);
    vlt_loader_free(L);
    for (int cut = 0; cut < total_steps; cut += 1 + cut / 4) {
        seqlog head = {0}, tail = {0};
        L = make(c);
        run_steps(L, cut, &head);
        char *json;
        assert_int_equal(vlt_loader_position_json(L, &json), VLT_OK);
        vlt_loader_free(L);   // the first loader is gone, as after a crash
        L = make(c);
        if (vlt_loader_restore_json(L, json) != VLT_OK) fail_msg("restore: %s", vlt_error_message());
        run_steps(L, total_steps - cut, &tail);
        assert_int_equal(head.nb + tail.nb, ref.nb);
        for (int i = 0; i < tail.nb; i++) assert_int_equal(tail.batch_n[i], ref.batch_n[head.nb + i]);
        assert_same(&ref, head.n, &tail);
        const vlt_loader_stats *st = vlt_loader_get_stats(L);
        assert_memory_equal(st, &ref_stats, sizeof ref_stats);
        vlt_loader_free(L);
        free(json);
        log_free(&head);
        log_free(&tail);
    }
    log_free(&ref);
}

static void test_resume_exact(void **state) {
    shards_fx *fx = *state;
    vlt_loader_cfg c;
    base_cfg(&c, fx->spec);
    // Two epochs plus a bit: 12 batches + end + 12 batches + end + 3.
    check_resume(&c, 2 * ((TOTAL_SAMPLES + 3) / 4 + 1) + 3);
}

static void test_resume_variants(void **state) {
    shards_fx *fx = *state;
    vlt_loader_cfg c;
    base_cfg(&c, fx->spec);   // a big buffer: it spans shards
    c.shuffle_buffer = 30;
    c.shuffle_initial = 30;
    c.readers = 1;
    c.batch_size = 5;
    check_resume(&c, 9);
    base_cfg(&c, fx->spec);   // resampled, a sample budget per epoch, drop_last
    c.resampled = 1;
    c.readers = 3;
    c.samples_per_epoch = 17;
    c.drop_last = 1;
    check_resume(&c, 10);
}

static void test_resampled_and_budget(void **state) {
    shards_fx *fx = *state;
    vlt_loader_cfg c;
    base_cfg(&c, fx->spec);
    c.resampled = 1;
    c.readers = 3;   // 3 readers x ceil(5/3) = 2 shards each, drawn with replacement
    seqlog a = {0}, b = {0};
    vlt_loader *L = make(&c);
    run_epochs(L, 1, &a);
    assert_int_equal(vlt_loader_get_stats(L)->shards_done, 6);
    vlt_loader_free(L);
    L = make(&c);
    run_epochs(L, 1, &b);
    vlt_loader_free(L);
    assert_same(&a, 0, &b);
    log_free(&a);
    log_free(&b);

    base_cfg(&c, fx->spec);
    c.samples_per_epoch = 10;
    seqlog g = {0};
    L = make(&c);
    run_epochs(L, 2, &g);
    vlt_loader_free(L);
    int64_t want[] = {4, 4, 2, -1, 4, 4, 2, -1};
    assert_int_equal(g.nb, 8);
    assert_memory_equal(g.batch_n, want, sizeof want);
    log_free(&g);
    c.drop_last = 1;
    L = make(&c);
    run_epochs(L, 1, &g);
    int64_t want2[] = {4, 4, -1};
    assert_int_equal(g.nb, 3);
    assert_memory_equal(g.batch_n, want2, sizeof want2);
    assert_int_equal(vlt_loader_get_stats(L)->samples, 8);
    vlt_loader_free(L);
    log_free(&g);
}

// Bad samples and bad shards: skipped, counted by reason, everything good still delivered.
static void test_bad_data_counted(void **state) {
    (void)state;
    char *dir = tb_tmpdir();
    char path[600], spec[2000];
    // shard-00: one of each bad kind between good samples.
    tb_buf b = {0};
    int kinds[] = {GOOD,    BAD_JPEG, GOOD,          NO_IMAGE, NO_CAPTION, GOOD_JSON, BAD_JSON,
                   DUP_EXT, CUT_JPEG, EMPTY_CAPTION, CUT_JPEG, GOOD,       CORRUPT_JPEG};
    for (int i = 0; i < (int)(sizeof kinds / sizeof *kinds); i++) add_sample(&b, 0, i, kinds[i]);
    tb_end(&b);
    snprintf(path, sizeof path, "%s/shard-00.tar", dir);
    assert_int_equal(tb_save(b.buf, b.len, path), 0);
    // shard-01: 6 good samples, truncated inside the 5th one's image.
    tb_free(&b);
    size_t cut = 0;
    for (int i = 0; i < 6; i++) {
        if (i == 4) cut = b.len + 700;
        add_sample(&b, 1, i, GOOD);
    }
    tb_end(&b);
    snprintf(path, sizeof path, "%s/shard-01.tar", dir);
    assert_int_equal(tb_save(b.buf, cut, path), 0);
    // shard-02: garbage; shard-03: a zstd stream cut short; shard-05 is missing.
    uint8_t junk[3000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 7 + 1);
    snprintf(path, sizeof path, "%s/shard-02.tar", dir);
    assert_int_equal(tb_save(junk, sizeof junk, path), 0);
    tb_free(&b);
    for (int i = 0; i < 3; i++) add_sample(&b, 3, i, GOOD);
    tb_end(&b);
    tb_buf z = tb_zstd(&b, 1);
    snprintf(path, sizeof path, "%s/shard-03.tar.zst", dir);
    assert_int_equal(tb_save(z.buf, z.len - 10, path), 0);
    tb_free(&z);
    tb_free(&b);
    write_shard(dir, 4, 5, 0);
    snprintf(spec, sizeof spec, "%s/shard-{00..02}.tar::%s/shard-03.tar.zst::%s/shard-{04..05}.tar", dir, dir, dir);

    vlt_loader_cfg c;
    base_cfg(&c, spec);
    c.readers = 3;
    c.report = 1;   // one line on stderr at the end of the epoch
    vlt_loader *L = make(&c);
    seqlog g = {0};
    run_epochs(L, 1, &g);
    const vlt_loader_stats *st = vlt_loader_get_stats(L);
    assert_int_equal(st->skipped[VLT_SKIP_BAD_IMAGE], 1);
    assert_int_equal(st->skipped[VLT_SKIP_NO_IMAGE], 1);
    assert_int_equal(st->skipped[VLT_SKIP_NO_CAPTION], 2);   // none at all, and blank
    assert_int_equal(st->skipped[VLT_SKIP_BAD_CAPTION], 1);
    assert_int_equal(st->skipped[VLT_SKIP_DUP_EXT], 1);
    assert_int_equal(st->skipped[VLT_SKIP_TOO_LARGE], 0);
    assert_int_equal(st->skipped[VLT_SKIP_TRUNCATED_IMAGE], 2);   // cut, end marker appended
    assert_int_equal(st->skipped[VLT_SKIP_CORRUPT_IMAGE], 1);
    // s01_0004 (cut inside its image member), and maybe the sample shard 03 breaks in.
    int64_t cut_samples = st->skipped[VLT_SKIP_TRUNCATED_SAMPLE];
    assert_true(cut_samples == 1 || cut_samples == 2);
    assert_int_equal(st->shards_done, 2);        // 00 and 04
    assert_int_equal(st->shards_failed, 1);      // 05
    assert_int_equal(st->shards_truncated, 3);   // 01, 02, 03
    char *text;
    size_t text_len;
    FILE *mf = open_memstream(&text, &text_len);
    vlt_loader_stats_print(st, mf);
    fclose(mf);
    char want[400];
    snprintf(want, sizeof want,
             "skipped %d sample(s): 1 no image, 1 bad image, 2 no caption, 1 bad caption, 1 duplicate extension, "
             "2 truncated image, 1 corrupt image, %d truncated sample; shards: 2 read, 1 unreadable, 3 truncated",
             9 + (int)cut_samples, (int)cut_samples);
    if (!strstr(text, want)) fail_msg("stats line '%s' lacks '%s'", text, want);
    free(text);
    // Good: 4 of shard 00, 4 of shard 01, 5 of shard 04; shard 03's stream
    // breaks in its last block, so its samples are lost or not depending on where the cut falls:
    // count exactly what came out.
    int n03 = 0, n00 = 0, n01 = 0, n04 = 0;
    for (int k = 0; k < g.n; k++) {
        n00 += !strncmp(g.keys[k], "s00", 3);
        n01 += !strncmp(g.keys[k], "s01", 3);
        n03 += !strncmp(g.keys[k], "s03", 3);
        n04 += !strncmp(g.keys[k], "s04", 3);
    }
    assert_int_equal(n00, 4);
    // Shard 01 breaks inside s01_0004.jpg; s01_0003 was still being assembled (its end is only
    // known from the next key) and is whole: it is delivered, s01_0004 is counted as truncated.
    assert_int_equal(n01, 4);
    assert_int_equal(n04, 5);
    assert_true(n03 <= 3);
    assert_int_equal(st->samples, g.n);
    assert_int_equal(g.n, 13 + n03);
    vlt_loader_free(L);
    log_free(&g);

    // The same data resumes exactly, too.
    base_cfg(&c, spec);
    c.readers = 3;
    c.batch_size = 3;
    c.warn_limit = 0;
    check_resume(&c, 7);
    tb_rmdir(dir);
}

static int alloc_calls, free_calls;
static void *count_alloc(size_t n, void *ctx) {
    (void)ctx;
    alloc_calls++;
    return malloc(n);
}
static void count_free(void *p, void *ctx) {
    (void)ctx;
    free_calls++;
    free(p);
}

static void test_config_errors_and_hooks(void **state) {
    shards_fx *fx = *state;
    vlt_loader_cfg c;
    vlt_loader *L;
    base_cfg(&c, fx->spec);
    c.readers = 6;   // 5 shards
    assert_int_equal(vlt_loader_create(&c, &L), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "5 shard(s) cannot feed 1 rank(s) x 6 reader(s)"));
    c.resampled = 1;   // with replacement, fewer shards than readers is fine
    L = make(&c);
    vlt_loader_free(L);
    base_cfg(&c, fx->spec);
    c.world_size = 2;
    c.rank = 1;
    c.readers = 3;
    assert_int_equal(vlt_loader_create(&c, &L), VLT_ERR_ARG);
    base_cfg(&c, fx->spec);
    c.pinned = 1;
    assert_int_equal(vlt_loader_create(&c, &L), VLT_ERR_UNSUPPORTED);
    assert_non_null(strstr(vlt_error_message(), "cudaHostAlloc"));
    c.host_alloc = count_alloc;
    c.host_free = count_free;
    c.prefetch = 3;
    L = make(&c);
    assert_int_equal(alloc_calls, 2 * 4);   // images + tokens for prefetch + 1 slots
    seqlog g = {0};
    run_steps(L, 2, &g);
    vlt_loader_free(L);
    assert_int_equal(free_calls, alloc_calls);
    log_free(&g);
    base_cfg(&c, "/nonexistent/dir/*.tar");
    assert_int_equal(vlt_loader_create(&c, &L), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "matches no files"));

    // A position from another configuration is refused; malformed JSON too.
    base_cfg(&c, fx->spec);
    L = make(&c);
    run_steps(L, 2, &g);
    char *json;
    assert_int_equal(vlt_loader_position_json(L, &json), VLT_OK);
    vlt_loader_free(L);
    c.seed = 5;
    L = make(&c);
    assert_int_equal(vlt_loader_restore_json(L, json), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "seed"));
    vlt_loader_free(L);
    base_cfg(&c, fx->spec);
    c.readers = 1;
    L = make(&c);
    assert_int_equal(vlt_loader_restore_json(L, json), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "readers"));
    assert_int_equal(vlt_loader_restore_json(L, "{\"version\": 1"), VLT_ERR_FORMAT);
    assert_int_equal(vlt_loader_restore_json(L, "[]"), VLT_ERR_FORMAT);
    vlt_loader_free(L);
    free(json);
    log_free(&g);
}

// Two ranks with two readers each (5 shards: rank 0 gets 3, rank 1 gets 2): together they
// deliver every sample exactly once per epoch; each rank on its own is deterministic.
static void test_ranks_cover_disjointly(void **state) {
    shards_fx *fx = *state;
    int seen[5][16] = {{0}};
    int total = 0;
    for (int rank = 0; rank < 2; rank++) {
        vlt_loader_cfg c;
        base_cfg(&c, fx->spec);
        c.world_size = 2;
        c.rank = rank;
        c.readers = 2;
        for (int epoch = 0; epoch < 2; epoch++) {
            c.start_epoch = epoch;
            seqlog g = {0};
            vlt_loader *L = make(&c);
            run_epochs(L, 1, &g);
            vlt_loader_free(L);
            for (int k = 0; k < g.n; k++) {
                int sh, i;
                assert_int_equal(sscanf(g.keys[k], "s%02d_%04d", &sh, &i), 2);
                seen[sh][i] += 1 << (8 * epoch);
            }
            total += g.n;
            log_free(&g);
        }
    }
    assert_int_equal(total, 2 * TOTAL_SAMPLES);
    for (int sh = 0; sh < 5; sh++)
        for (int i = 0; i < 7 + sh; i++) assert_int_equal(seen[sh][i], 0x101);
}

// set_epoch restarts an epoch from its beginning; an unfinished epoch can be abandoned.
static void test_set_epoch(void **state) {
    shards_fx *fx = *state;
    vlt_loader_cfg c;
    base_cfg(&c, fx->spec);
    seqlog a = {0}, b = {0};
    vlt_loader *L = make(&c);
    run_epochs(L, 2, &a);
    vlt_loader_free(L);
    L = make(&c);
    run_steps(L, 3, &b);
    assert_int_equal(vlt_loader_set_epoch(L, 1), VLT_OK);
    log_free(&b);
    run_epochs(L, 1, &b);
    assert_int_equal(vlt_loader_get_stats(L)->epoch, 1);
    vlt_loader_free(L);
    assert_same(&a, TOTAL_SAMPLES, &b);
    log_free(&a);
    log_free(&b);
}

// Issue 13 item 1: a shard that is a FIFO hung its reader in open() forever. It is refused (counted
// as unreadable, named in a warning) and the other shard is read. alarm() turns a hang into a
// failure instead of a stuck test run.
static void test_fifo_shard_refused(void **state) {
    (void)state;
    char *dir = tb_tmpdir();
    char fifo[600], spec[1300];
    snprintf(fifo, sizeof fifo, "%s/f.tar", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    write_shard(dir, 0, 5, 0);
    snprintf(spec, sizeof spec, "%s::%s/shard-00.tar", fifo, dir);
    vlt_loader_cfg c;
    base_cfg(&c, spec);
    c.shuffle_shards = 0;
    alarm(60);
    vlt_loader *L = make(&c);
    seqlog g = {0};
    run_epochs(L, 1, &g);
    alarm(0);
    assert_int_equal(g.n, 5);
    const vlt_loader_stats *st = vlt_loader_get_stats(L);
    assert_int_equal(st->shards_failed, 1);
    assert_int_equal(st->shards_done, 1);
    vlt_loader_free(L);
    log_free(&g);
    // The reader says what it is: not a regular file.
    vlt_tar *t;
    assert_int_equal(vlt_tar_open(fifo, &t), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "FIFO"));
    assert_non_null(strstr(vlt_error_message(), fifo));
    assert_int_equal(vlt_tar_open(dir, &t), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "directory"));
    tb_rmdir(dir);
}

// A reader busy without progress for stall_ms is reported (here: decoding 1600x1200 pictures of
// noise takes ~25 ms each, far longer than the 2 ms allowed); with stall_ms = 0 nothing is.
static void test_stall_reported(void **state) {
    (void)state;
    char *dir = tb_tmpdir();
    tb_buf b = {0};
    vlt_image img;
    assert_int_equal(vlt_image_alloc(&img, 1600, 1200), VLT_OK);
    for (size_t p = 0; p < (size_t)1600 * 1200 * 3; p++) img.rgb[p] = (uint8_t)((p * 2654435761u) >> 13);
    uint8_t *jpg;
    size_t len;
    assert_int_equal(vlt_image_encode_jpeg(&img, 95, &jpg, &len), VLT_OK);
    vlt_image_free(&img);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "big%d.jpg", i);
        tb_file(&b, name, jpg, len);
        snprintf(name, sizeof name, "big%d.txt", i);
        tb_str(&b, name, "noise");
    }
    free(jpg);
    tb_end(&b);
    char path[600];
    snprintf(path, sizeof path, "%s/big.tar", dir);
    assert_int_equal(tb_save(b.buf, b.len, path), 0);
    tb_free(&b);
    for (int k = 0; k < 2; k++) {
        vlt_loader_cfg c;
        base_cfg(&c, path);
        c.readers = 1;
        c.image_size = 64;
        c.stall_ms = k == 0 ? 2 : 0;
        vlt_loader *L = make(&c);
        int n = 0;
        const vlt_batch *bt;
        for (;;) {
            assert_int_equal(vlt_loader_next(L, &bt), VLT_OK);
            if (!bt) break;
            n += bt->n;
        }
        assert_int_equal(n, 4);
        if (k == 0) assert_true(vlt_loader_stall_reports(L) >= 1);
        else assert_int_equal(vlt_loader_stall_reports(L), 0);
        vlt_loader_free(L);
    }
    tb_rmdir(dir);
}

// Issue 13 item 2: data.batch_size = 100000000 allocated queue item after queue item until the
// kernel's OOM killer ended the run (78 s, 23.7 GB). It is refused at create, at once, with the
// figure and the key to lower; so is a batch whose training step (given by the caller) cannot fit.
static void test_impossible_batch_refused(void **state) {
    const char *spec = ((shards_fx *)*state)->spec;
    vlt_loader_cfg c;
    base_cfg(&c, spec);
    c.batch_size = 100000000;
    vlt_loader_memory m;
    vlt_loader_memory_estimate(&c, &m);
    // 3 batch slots of 1e8 images of 3 x 16 x 16 float32, and the reader queues as much again.
    assert_true(m.loader > 3.0 * 1e8 * 3 * S * S * 4);
    vlt_loader *L = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(vlt_loader_create(&c, &L), VLT_ERR_NOMEM);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_null(L);
    assert_true((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9 < 2.0);
    const char *msg = vlt_error_message();
    if (!strstr(msg, "batch_size 100000000 needs about") || !strstr(msg, "TB") || !strstr(msg, "data.batch_size"))
        fail_msg("message lacks the figure or the key: %s", msg);

    // A sane batch whose step would need 1 PB per sample: the step's share is in the figure.
    base_cfg(&c, spec);
    c.step_bytes_fixed = 1e9;
    c.step_bytes_per_sample = 1e15;
    assert_int_equal(vlt_loader_create(&c, &L), VLT_ERR_NOMEM);
    assert_non_null(strstr(vlt_error_message(), "training step: 4.0 PB"));
    // And a step that fits is accepted.
    c.step_bytes_per_sample = 1e6;
    assert_int_equal(vlt_loader_create(&c, &L), VLT_OK);
    vlt_loader_free(L);
    assert_true(vlt_memory_available() > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_sample_once, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_deterministic_order, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_resume_exact, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_resume_variants, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_resampled_and_budget, setup_shards, teardown_shards),
        cmocka_unit_test(test_bad_data_counted),
        cmocka_unit_test(test_fifo_shard_refused),
        cmocka_unit_test_setup_teardown(test_impossible_batch_refused, setup_shards, teardown_shards),
        cmocka_unit_test(test_stall_reported),
        cmocka_unit_test_setup_teardown(test_config_errors_and_hooks, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_set_epoch, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_ranks_cover_disjointly, setup_shards, teardown_shards),
    };
    return cmocka_run_group_tests_name("data_loader", tests, NULL, NULL);
}
