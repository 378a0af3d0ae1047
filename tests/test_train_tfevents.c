// test_train_tfevents.c — TensorBoard event files: CRC32C known answers, one record's bytes
// against bytes made by TensorBoard's own protobuf classes and masked_crc32c, and a written file
// parsed back here (framing, both CRCs, every Event field). With VLT_TFEVENTS_OUT_DIR set, the
// round-trip file is left in that directory (for scripts/reference/check_tfevents.py).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "train/tfevents.h"

static void test_crc32c_known_answers(void **state) {
    (void)state;
    uint8_t buf[32];
    assert_int_equal(vlt_tfevents_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(vlt_tfevents_crc32c("", 0), 0u);
    // RFC 3720 (iSCSI) appendix B.4 vectors.
    memset(buf, 0, 32);
    assert_int_equal(vlt_tfevents_crc32c(buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, 32);
    assert_int_equal(vlt_tfevents_crc32c(buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    assert_int_equal(vlt_tfevents_crc32c(buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    assert_int_equal(vlt_tfevents_crc32c(buf, 32), 0x113FDB5Cu);
    // Masked values from tensorboard's masked_crc32c.
    assert_int_equal(vlt_tfevents_mask_crc(0xE3069283u), 0xC78AB0E5u);
    assert_int_equal(vlt_tfevents_mask_crc(0u), 0xA282EAD8u);
}

// Event(wall_time=1.5, step=3, summary {value {tag "a" simple_value 0.5}}) framed as a record,
// bytes from tensorboard.compat.proto.event_pb2 + masked_crc32c (tensorboard 2.21).
static const uint8_t RECORD_A[] = {
    0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,        // length 23
    0xe7, 0xce, 0xf8, 0x1e,                                // masked crc of the length
    0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f,  // wall_time 1.5
    0x10, 0x03,                                            // step 3
    0x2a, 0x0a, 0x0a, 0x08,                                // summary (10) { value (8) {
    0x0a, 0x01, 0x61,                                      //   tag "a"
    0x15, 0x00, 0x00, 0x00, 0x3f,                          //   simple_value 0.5 }}
    0xde, 0x57, 0x68, 0xcd,                                // masked crc of the data
};

static void test_record_bytes(void **state) {
    (void)state;
    uint8_t ev[64], rec[96];
    size_t n = vlt_tfevents_encode_scalar(ev, sizeof ev, 1.5, 3, "a", 0.5f);
    assert_int_equal(n, 23);
    assert_int_equal(vlt_tfevents_frame(rec, ev, n), sizeof RECORD_A);
    assert_memory_equal(rec, RECORD_A, sizeof RECORD_A);
}

static void test_event_bytes(void **state) {
    (void)state;
    // Negative step (10-byte varint), a longer tag, a negative value: event_pb2 bytes.
    static const uint8_t want[] = {
        0x09, 0x00, 0x00, 0x10, 0x40, 0xfc, 0x54, 0xd9, 0x41, 0x10, 0xfe, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x2a, 0x13, 0x0a, 0x11, 0x0a, 0x0a, 0x74, 0x72,
        0x61, 0x69, 0x6e, 0x2f, 0x6c, 0x6f, 0x73, 0x73, 0x15, 0x00, 0x00, 0x70, 0xc0};
    uint8_t ev[64];
    size_t n = vlt_tfevents_encode_scalar(ev, sizeof ev, 1700000000.25, -2, "train/loss", -3.75f);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(ev, want, sizeof want);
    // Event(wall_time=2.0, file_version="brain.Event:2").
    static const uint8_t version[] = {
        0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x1a, 0x0d, 0x62, 0x72, 0x61,
        0x69, 0x6e, 0x2e, 0x45, 0x76, 0x65, 0x6e, 0x74, 0x3a, 0x32};
    n = vlt_tfevents_encode_version(ev, sizeof ev, 2.0);
    assert_int_equal(n, sizeof version);
    assert_memory_equal(ev, version, sizeof version);
    // Event(wall_time=2.0, step=5 / 300, session_log=SessionLog(status=START)): event_pb2 bytes.
    static const uint8_t start5[] = {0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                     0x40, 0x10, 0x05, 0x3a, 0x02, 0x08, 0x01};
    static const uint8_t start300[] = {0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x40, 0x10, 0xac, 0x02, 0x3a, 0x02, 0x08, 0x01};
    n = vlt_tfevents_encode_session_start(ev, sizeof ev, 2.0, 5);
    assert_int_equal(n, sizeof start5);
    assert_memory_equal(ev, start5, sizeof start5);
    n = vlt_tfevents_encode_session_start(ev, sizeof ev, 2.0, 300);
    assert_int_equal(n, sizeof start300);
    assert_memory_equal(ev, start300, sizeof start300);
    assert_int_equal(vlt_tfevents_encode_session_start(ev, 12, 2.0, 300), 0);
    // Too small a buffer, empty and over-long tags.
    assert_int_equal(vlt_tfevents_encode_scalar(ev, 40, 1700000000.25, -2, "train/loss", -3.75f), 0);
    assert_int_equal(vlt_tfevents_encode_scalar(ev, sizeof ev, 0, 0, "", 1.0f), 0);
    char *long_tag = malloc(VLT_TFEVENTS_MAX_TAG + 2);
    memset(long_tag, 'x', VLT_TFEVENTS_MAX_TAG + 1);
    long_tag[VLT_TFEVENTS_MAX_TAG + 1] = '\0';
    uint8_t big[VLT_TFEVENTS_MAX_TAG + 64];
    assert_int_equal(vlt_tfevents_encode_scalar(big, sizeof big, 0, 0, long_tag, 1.0f), 0);
    // Exactly the limit: 2-byte length varints. wall_time 9, step 0 left out, summary key 1 +
    // length 2 + { value key 1 + length 2 + { tag key 1 + length 2 + tag + simple_value 5 }}.
    long_tag[VLT_TFEVENTS_MAX_TAG] = '\0';
    assert_int_equal(vlt_tfevents_encode_scalar(big, sizeof big, 0, 0, long_tag, 1.0f),
                     9 + 3 + 3 + 3 + VLT_TFEVENTS_MAX_TAG + 5);
    free(long_tag);
}

// --- a small reader: TFRecord framing and the Event fields --------------------------------------

typedef struct {
    double wall_time;
    int64_t step;
    char file_version[32];
    char tag[64];
    float value;
    int has_value;
    int session_start;   // a SessionLog with status START
} event;

static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint64_t get_varint(const uint8_t **p, const uint8_t *end) {
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 70; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    fail_msg("truncated varint");
    return 0;
}

// Parses a Summary.Value into e (tag, simple_value).
static void parse_value(const uint8_t *p, const uint8_t *end, event *e) {
    while (p < end) {
        uint64_t key = get_varint(&p, end);
        if (key == (1 << 3 | 2)) {
            uint64_t n = get_varint(&p, end);
            assert_true(n < sizeof e->tag && p + n <= end);
            memcpy(e->tag, p, n);
            e->tag[n] = '\0';
            p += n;
        } else if (key == (2 << 3 | 5)) {
            assert_true(p + 4 <= end);
            uint32_t bits = (uint32_t)get_le(p, 4);
            memcpy(&e->value, &bits, 4);
            e->has_value = 1;
            p += 4;
        } else {
            fail_msg("unexpected Value field key %llu", (unsigned long long)key);
        }
    }
}

static void parse_event(const uint8_t *p, const uint8_t *end, event *e) {
    memset(e, 0, sizeof *e);
    while (p < end) {
        uint64_t key = get_varint(&p, end);
        if (key == (1 << 3 | 1)) {
            assert_true(p + 8 <= end);
            uint64_t bits = get_le(p, 8);
            memcpy(&e->wall_time, &bits, 8);
            p += 8;
        } else if (key == (2 << 3 | 0)) {
            e->step = (int64_t)get_varint(&p, end);
        } else if (key == (3 << 3 | 2) || key == (5 << 3 | 2)) {
            uint64_t n = get_varint(&p, end);
            assert_true(p + n <= end);
            if (key == (3 << 3 | 2)) {
                assert_true(n < sizeof e->file_version);
                memcpy(e->file_version, p, n);
            } else {  // Summary: exactly one Value
                const uint8_t *q = p, *qend = p + n;
                assert_int_equal(get_varint(&q, qend), 1 << 3 | 2);
                uint64_t vn = get_varint(&q, qend);
                assert_true(q + vn == qend);
                parse_value(q, qend, e);
            }
            p += n;
        } else if (key == (7 << 3 | 2)) {  // SessionLog: only status START is written
            uint64_t n = get_varint(&p, end);
            assert_true(n == 2 && p + n <= end && p[0] == 0x08 && p[1] == 0x01);
            e->session_start = 1;
            p += n;
        } else {
            fail_msg("unexpected Event field key %llu", (unsigned long long)key);
        }
    }
}

// Reads every record of the file at `path` into events[], checking both CRCs of each.
static int read_events(const char *path, event *events, int cap) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    int n = 0;
    uint8_t head[12], data[4096], foot[4];
    while (fread(head, 1, 12, f) == 12) {
        uint64_t len = get_le(head, 8);
        assert_int_equal(get_le(head + 8, 4), vlt_tfevents_mask_crc(vlt_tfevents_crc32c(head, 8)));
        assert_true(len <= sizeof data);
        assert_int_equal(fread(data, 1, len, f), len);
        assert_int_equal(fread(foot, 1, 4, f), 4);
        assert_int_equal(get_le(foot, 4), vlt_tfevents_mask_crc(vlt_tfevents_crc32c(data, len)));
        assert_true(n < cap);
        parse_event(data, data + len, &events[n++]);
    }
    assert_true(feof(f));  // no trailing partial record
    fclose(f);
    return n;
}

// The scalars the round trip writes (check_tfevents.py lists them from a kept file).
#define N_STEPS 20
static float loss_at(int step) { return 4.0f / (float)(step + 1) + 0.125f; }
static float lr_at(int step) { return 1e-3f * (float)step / N_STEPS; }

static void test_file_round_trip(void **state) {
    (void)state;
    const char *keep = getenv("VLT_TFEVENTS_OUT_DIR");
    char tmpl[] = "/tmp/vlt_test_tfevents_XXXXXX";
    const char *dir = keep && *keep ? keep : mkdtemp(tmpl);
    assert_non_null(dir);
    double t0 = (double)time(NULL) - 1;
    vlt_tfevents *w = NULL;
    assert_int_equal(vlt_tfevents_open(&w, dir), VLT_OK);
    const char *path = vlt_tfevents_path(w);
    const char *base = strrchr(path, '/') + 1;
    assert_int_equal(strncmp(base, "events.out.tfevents.", 20), 0);
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    assert_non_null(strstr(base + 20, host));
    for (int s = 1; s <= N_STEPS; s++) {
        assert_int_equal(vlt_tfevents_add_scalar(w, "train/loss", s, loss_at(s)), VLT_OK);
        assert_int_equal(vlt_tfevents_add_scalar(w, "train/lr", s, lr_at(s)), VLT_OK);
        if (s % 5 == 0) assert_int_equal(vlt_tfevents_add_scalar(w, "val/recall@1", s, 0.01f * (float)s), VLT_OK);
        assert_int_equal(vlt_tfevents_flush(w), VLT_OK);
    }
    assert_int_equal(vlt_tfevents_add_scalar(w, "", 1, 1.0f), VLT_ERR_ARG);  // refused, not written
    char *saved = strdup(path);
    assert_int_equal(vlt_tfevents_close(w), VLT_OK);
    double t1 = (double)time(NULL) + 1;

    event ev[128];
    int n = read_events(saved, ev, 128);
    assert_int_equal(n, 1 + 2 * N_STEPS + N_STEPS / 5);
    assert_string_equal(ev[0].file_version, "brain.Event:2");
    assert_int_equal(ev[0].step, 0);
    assert_false(ev[0].has_value);
    int k = 1;
    for (int s = 1; s <= N_STEPS; s++) {
        const char *tags[3] = {"train/loss", "train/lr", "val/recall@1"};
        float vals[3] = {loss_at(s), lr_at(s), 0.01f * (float)s};
        for (int j = 0; j < (s % 5 == 0 ? 3 : 2); j++, k++) {
            assert_string_equal(ev[k].tag, tags[j]);
            assert_int_equal(ev[k].step, s);
            assert_true(ev[k].has_value);
            assert_true(ev[k].value == vals[j]);
            assert_true(ev[k].wall_time >= t0 && ev[k].wall_time <= t1);
            assert_true(ev[k].wall_time >= ev[k - 1].wall_time);
            assert_string_equal(ev[k].file_version, "");
        }
    }
    if (!(keep && *keep)) {
        unlink(saved);
        rmdir(dir);
    }
    free(saved);
}

static void test_open_errors(void **state) {
    (void)state;
    vlt_tfevents *w = (vlt_tfevents *)1;
    assert_int_equal(vlt_tfevents_open(&w, "/nonexistent/vlt/dir"), VLT_ERR_IO);
    assert_null(w);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent/vlt/dir"));
    assert_int_equal(vlt_tfevents_close(NULL), VLT_OK);
}

// Two writers in one directory in the same second get two different files.
static void test_name_collision(void **state) {
    (void)state;
    char tmpl[] = "/tmp/vlt_test_tfevents_XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    vlt_tfevents *a = NULL, *b = NULL;
    assert_int_equal(vlt_tfevents_open(&a, dir), VLT_OK);
    assert_int_equal(vlt_tfevents_open(&b, dir), VLT_OK);
    assert_string_not_equal(vlt_tfevents_path(a), vlt_tfevents_path(b));
    char *pa = strdup(vlt_tfevents_path(a)), *pb = strdup(vlt_tfevents_path(b));
    assert_int_equal(vlt_tfevents_close(a), VLT_OK);
    assert_int_equal(vlt_tfevents_close(b), VLT_OK);
    event ev[4];
    assert_int_equal(read_events(pa, ev, 4), 1);
    assert_int_equal(read_events(pb, ev, 4), 1);
    unlink(pa);
    unlink(pb);
    rmdir(dir);
    free(pa);
    free(pb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_answers),
        cmocka_unit_test(test_record_bytes),
        cmocka_unit_test(test_event_bytes),
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_name_collision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
