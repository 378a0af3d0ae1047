// tfevents.c — TensorBoard event files: TFRecord framing, CRC32C, hand-encoded Event protobufs.
// See tfevents.h for the layout. Protobuf facts used here: a field key is (number << 3 | wire
// type) as a varint; wire type 0 = varint, 1 = 64-bit, 2 = length-delimited, 5 = 32-bit;
// fixed-width values are little-endian; int64 varints of negative numbers take 10 bytes.
#include "train/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct vlt_tfevents {
    FILE *f;
    char *path;
    vlt_status err;  // the first write error, reported again by flush / close
};

// --- CRC32C ------------------------------------------------------------------------------------

// Bitwise, reflected. A few dozen bytes per scalar, so speed does not matter here.
uint32_t vlt_tfevents_crc32c(const void *data, size_t n) {
    const uint8_t *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

uint32_t vlt_tfevents_mask_crc(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// --- little-endian and protobuf encoding -------------------------------------------------------

static void put_le(uint8_t *out, uint64_t v, int nbytes) {
    for (int i = 0; i < nbytes; i++) out[i] = (uint8_t)(v >> (8 * i));
}

size_t vlt_tfevents_frame(uint8_t *out, const void *data, size_t n) {
    put_le(out, (uint64_t)n, 8);
    put_le(out + 8, vlt_tfevents_mask_crc(vlt_tfevents_crc32c(out, 8)), 4);
    memcpy(out + 12, data, n);
    put_le(out + 12 + n, vlt_tfevents_mask_crc(vlt_tfevents_crc32c(data, n)), 4);
    return n + 16;
}

// A bounded output buffer: writes past cap set `overflow` instead of writing.
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int overflow;
} pb_buf;

static void pb_bytes(pb_buf *b, const void *src, size_t n) {
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static void pb_varint(pb_buf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) tmp[n++] = (uint8_t)(v | 0x80), v >>= 7;
    tmp[n++] = (uint8_t)v;
    pb_bytes(b, tmp, n);
}

static void pb_key(pb_buf *b, int field, int wire) { pb_varint(b, (uint64_t)(field << 3 | wire)); }

static void pb_double(pb_buf *b, int field, double v) {
    uint64_t bits;
    uint8_t tmp[8];
    memcpy(&bits, &v, 8);
    put_le(tmp, bits, 8);
    pb_key(b, field, 1);
    pb_bytes(b, tmp, 8);
}

static void pb_float(pb_buf *b, int field, float v) {
    uint32_t bits;
    uint8_t tmp[4];
    memcpy(&bits, &v, 4);
    put_le(tmp, bits, 4);
    pb_key(b, field, 5);
    pb_bytes(b, tmp, 4);
}

static void pb_string(pb_buf *b, int field, const char *s, size_t n) {
    pb_key(b, field, 2);
    pb_varint(b, n);
    pb_bytes(b, s, n);
}

// Event header fields shared by every record: wall_time, and step when non-zero (proto3 leaves
// default values out, as TensorFlow's writer does).
static void pb_event_head(pb_buf *b, double wall_time, int64_t step) {
    pb_double(b, 1, wall_time);
    if (step != 0) {
        pb_key(b, 2, 0);
        pb_varint(b, (uint64_t)step);
    }
}

size_t vlt_tfevents_encode_scalar(uint8_t *out, size_t cap, double wall_time, int64_t step,
                                  const char *tag, float value) {
    size_t tag_len = tag ? strlen(tag) : 0;
    if (tag_len == 0 || tag_len > VLT_TFEVENTS_MAX_TAG) return 0;
    size_t value_len = 1 + varint_len(tag_len) + tag_len + 1 + 4;  // Value {tag, simple_value}
    size_t summary_len = 1 + varint_len(value_len) + value_len;     // Summary {value}
    pb_buf b = {out, 0, cap, 0};
    pb_event_head(&b, wall_time, step);
    pb_key(&b, 5, 2);  // Event.summary
    pb_varint(&b, summary_len);
    pb_key(&b, 1, 2);  // Summary.value
    pb_varint(&b, value_len);
    pb_string(&b, 1, tag, tag_len);  // Value.tag
    pb_float(&b, 2, value);          // Value.simple_value
    return b.overflow ? 0 : b.len;
}

size_t vlt_tfevents_encode_session_start(uint8_t *out, size_t cap, double wall_time, int64_t step) {
    pb_buf b = {out, 0, cap, 0};
    pb_event_head(&b, wall_time, step);
    pb_key(&b, 7, 2);  // Event.session_log
    pb_varint(&b, 2);
    pb_key(&b, 1, 0);  // SessionLog.status = START (1)
    pb_varint(&b, 1);
    return b.overflow ? 0 : b.len;
}

size_t vlt_tfevents_encode_version(uint8_t *out, size_t cap, double wall_time) {
    static const char version[] = "brain.Event:2";
    pb_buf b = {out, 0, cap, 0};
    pb_event_head(&b, wall_time, 0);
    pb_string(&b, 3, version, sizeof version - 1);
    return b.overflow ? 0 : b.len;
}

// --- the file ----------------------------------------------------------------------------------

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Frames `n` bytes of an encoded Event and appends them to the file.
static vlt_status write_record(vlt_tfevents *w, const uint8_t *event, size_t n) {
    if (w->err != VLT_OK) return w->err;
    uint8_t rec[VLT_TFEVENTS_MAX_TAG + 64 + 16];
    size_t len = vlt_tfevents_frame(rec, event, n);
    if (fwrite(rec, 1, len, w->f) != len)
        w->err = vlt_error_set(VLT_ERR_IO, "tfevents: cannot write %s: %s", w->path, strerror(errno));
    return w->err;
}

// Opens DIR/events.out.tfevents.<time>.<host>[.k] exclusively, so two writers never share a file.
static vlt_status create_file(vlt_tfevents *w, const char *dir) {
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0 || host[0] == '\0') strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
    long long now = (long long)time(NULL);
    size_t cap = strlen(dir) + strlen(host) + 64;
    w->path = malloc(cap);
    if (!w->path) return vlt_error_set(VLT_ERR_NOMEM, "tfevents: out of memory");
    for (int k = 0; k < 1000; k++) {
        int n = snprintf(w->path, cap, "%s/events.out.tfevents.%010lld.%s", dir, now, host);
        if (k > 0) snprintf(w->path + n, cap - (size_t)n, ".%d", k);
        int fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST) continue;
        if (fd < 0)
            return vlt_error_set(VLT_ERR_IO, "tfevents: cannot create %s: %s", w->path, strerror(errno));
        w->f = fdopen(fd, "wb");
        if (!w->f) {
            close(fd);
            return vlt_error_set(VLT_ERR_IO, "tfevents: cannot open %s: %s", w->path, strerror(errno));
        }
        return VLT_OK;
    }
    return vlt_error_set(VLT_ERR_IO, "tfevents: %s: too many event files named %s.*", dir, w->path);
}

vlt_status vlt_tfevents_open(vlt_tfevents **out, const char *dir) {
    if (!out || !dir) return vlt_error_set(VLT_ERR_ARG, "tfevents_open: NULL %s", out ? "dir" : "out");
    *out = NULL;
    vlt_tfevents *w = calloc(1, sizeof *w);
    if (!w) return vlt_error_set(VLT_ERR_NOMEM, "tfevents: out of memory");
    vlt_status s = create_file(w, dir);
    if (s == VLT_OK) {
        uint8_t ev[64];
        size_t n = vlt_tfevents_encode_version(ev, sizeof ev, wall_now());
        s = write_record(w, ev, n);
    }
    if (s == VLT_OK) s = vlt_tfevents_flush(w);
    if (s != VLT_OK) {
        if (w->f) fclose(w->f);
        if (w->path && w->f) unlink(w->path);
        free(w->path);
        free(w);
        return s;
    }
    *out = w;
    return VLT_OK;
}

vlt_status vlt_tfevents_add_scalar(vlt_tfevents *w, const char *tag, int64_t step, float value) {
    if (!w) return vlt_error_set(VLT_ERR_ARG, "tfevents_add_scalar: NULL writer");
    uint8_t ev[VLT_TFEVENTS_MAX_TAG + 64];
    size_t n = vlt_tfevents_encode_scalar(ev, sizeof ev, wall_now(), step, tag, value);
    if (n == 0)
        return vlt_error_set(VLT_ERR_ARG, "tfevents: scalar tag '%.64s' is empty or longer than %d bytes",
                             tag ? tag : "(null)", VLT_TFEVENTS_MAX_TAG);
    return write_record(w, ev, n);
}

vlt_status vlt_tfevents_add_session_start(vlt_tfevents *w, int64_t step) {
    if (!w) return vlt_error_set(VLT_ERR_ARG, "tfevents_add_session_start: NULL writer");
    uint8_t ev[64];
    size_t n = vlt_tfevents_encode_session_start(ev, sizeof ev, wall_now(), step);
    VLT_TRY(write_record(w, ev, n));
    return vlt_tfevents_flush(w);
}

vlt_status vlt_tfevents_flush(vlt_tfevents *w) {
    if (!w) return vlt_error_set(VLT_ERR_ARG, "tfevents_flush: NULL writer");
    if (w->err == VLT_OK && fflush(w->f) != 0)
        w->err = vlt_error_set(VLT_ERR_IO, "tfevents: cannot flush %s: %s", w->path, strerror(errno));
    return w->err;
}

vlt_status vlt_tfevents_close(vlt_tfevents *w) {
    if (!w) return VLT_OK;
    vlt_status s = vlt_tfevents_flush(w);
    if (s == VLT_OK && fsync(fileno(w->f)) != 0)
        s = vlt_error_set(VLT_ERR_IO, "tfevents: cannot fsync %s: %s", w->path, strerror(errno));
    if (fclose(w->f) != 0 && s == VLT_OK)
        s = vlt_error_set(VLT_ERR_IO, "tfevents: cannot close %s: %s", w->path, strerror(errno));
    free(w->path);
    free(w);
    return s;
}

const char *vlt_tfevents_path(const vlt_tfevents *w) { return w ? w->path : NULL; }
