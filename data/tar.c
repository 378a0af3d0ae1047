// tar.c — streaming tar reader (see tar.h). Layers, bottom up: raw input (FILE* or memory),
// optional zstd decompression into an output buffer, then tar blocks on top of that buffer.
#include "data/tar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define TAR_BLOCK 512
#define TAR_BUF (128 * 1024)
#define TAR_MAX_PAX ((uint64_t)1 << 20)      // largest pax extended header we accept
#define TAR_MAX_LONGNAME ((uint64_t)64 << 10) // largest GNU long name
#define TAR_MAX_SIZE ((uint64_t)1 << 62)     // sizes above this are nonsense

struct vlt_tar {
    char *name;
    FILE *f;
    int own;
    int seekable;               // plain FILE that fseeko works on
    off_t base;                 // file offset of tar offset 0
    const uint8_t *mem;         // memory input
    size_t mem_len, mem_pos;
    int raw_eof;

    uint8_t *ibuf;              // raw input (zstd mode)
    size_t ilen, ipos;
    ZSTD_DStream *zs;           // NULL in plain mode
    size_t zret;                // last ZSTD_decompressStream return: 0 at a frame boundary

    uint8_t *obuf;              // tar stream bytes
    size_t olen, opos;
    uint64_t pos;               // tar-stream offset of obuf[opos]

    uint64_t max_member;
    vlt_status failed;          // sticky error
    char *failed_msg;
    char *failed_path;          // the member whose data was cut short (NULL: failed in a header)
    uint64_t failed_offset;     // its first header
    int done;
};

// --- raw input -----------------------------------------------------------------------------------

static vlt_status raw_read(vlt_tar *t, uint8_t *dst, size_t cap, size_t *got) {
    *got = 0;
    if (t->raw_eof) return VLT_OK;
    if (t->mem) {
        size_t n = t->mem_len - t->mem_pos;
        if (n > cap) n = cap;
        memcpy(dst, t->mem + t->mem_pos, n);
        t->mem_pos += n;
        *got = n;
        if (t->mem_pos == t->mem_len) t->raw_eof = 1;
        return VLT_OK;
    }
    size_t n = fread(dst, 1, cap, t->f);
    if (n < cap) {
        if (ferror(t->f))
            return vlt_error_set(VLT_ERR_IO, "tar %s: read error: %s", t->name, strerror(errno));
        t->raw_eof = 1;
    }
    *got = n;
    return VLT_OK;
}

// --- the tar byte stream (plain or zstd) ---------------------------------------------------------

static vlt_status zstd_fill(vlt_tar *t) {
    for (;;) {
        if (t->ipos == t->ilen && !t->raw_eof) {
            VLT_TRY(raw_read(t, t->ibuf, TAR_BUF, &t->ilen));
            t->ipos = 0;
        }
        ZSTD_inBuffer in = {t->ibuf, t->ilen, t->ipos};
        ZSTD_outBuffer out = {t->obuf, TAR_BUF, 0};
        size_t before = t->ipos;
        size_t r = ZSTD_decompressStream(t->zs, &out, &in);
        if (ZSTD_isError(r))
            return vlt_error_set(VLT_ERR_FORMAT, "tar %s: corrupt zstd stream near tar offset %llu: %s",
                                 t->name, (unsigned long long)t->pos, ZSTD_getErrorName(r));
        t->ipos = in.pos;
        t->zret = r;
        t->olen = out.pos;
        t->opos = 0;
        if (t->olen > 0) return VLT_OK;
        if (t->ipos == t->ilen && t->raw_eof) {
            if (t->zret != 0)
                return vlt_error_set(VLT_ERR_FORMAT, "tar %s: zstd stream truncated at tar offset %llu",
                                     t->name, (unsigned long long)t->pos);
            return VLT_OK;   // clean end
        }
        if (in.pos == before && t->ipos < t->ilen)
            return vlt_error_set(VLT_ERR_FORMAT, "tar %s: zstd decoder stalled at tar offset %llu",
                                 t->name, (unsigned long long)t->pos);
    }
}

// Makes obuf non-empty unless the stream has ended.
static vlt_status stream_fill(vlt_tar *t) {
    if (t->opos < t->olen) return VLT_OK;
    t->opos = t->olen = 0;
    if (t->zs) return zstd_fill(t);
    return raw_read(t, t->obuf, TAR_BUF, &t->olen);
}

// Reads up to n bytes (dst may be NULL to discard); *got < n only at the end of the stream.
static vlt_status stream_read(vlt_tar *t, uint8_t *dst, uint64_t n, uint64_t *got) {
    *got = 0;
    while (*got < n) {
        VLT_TRY(stream_fill(t));
        size_t avail = t->olen - t->opos;
        if (avail == 0) break;
        uint64_t want = n - *got;
        size_t k = want < avail ? (size_t)want : avail;
        if (dst) memcpy(dst + *got, t->obuf + t->opos, k);
        t->opos += k;
        t->pos += k;
        *got += k;
    }
    return VLT_OK;
}

// Skips n bytes, seeking when the input is a plain seekable file.
static vlt_status stream_skip(vlt_tar *t, uint64_t n, uint64_t *got) {
    size_t avail = t->olen - t->opos;
    if (!t->zs && t->seekable && n > avail + TAR_BUF) {
        // Clamp to the file size so that skipping past the end reads as truncation.
        off_t here = ftello(t->f);
        if (here >= 0 && fseeko(t->f, 0, SEEK_END) == 0) {
            off_t end = ftello(t->f);
            uint64_t rest = (uint64_t)(end - here);
            uint64_t raw_skip = n - avail;
            uint64_t k = raw_skip < rest ? raw_skip : rest;
            if (fseeko(t->f, here + (off_t)k, SEEK_SET) == 0) {
                t->opos = t->olen = 0;
                t->pos += avail + k;
                *got = avail + k;
                t->raw_eof = (k == rest);
                return VLT_OK;
            }
        }
        return vlt_error_set(VLT_ERR_IO, "tar %s: seek failed: %s", t->name, strerror(errno));
    }
    return stream_read(t, NULL, n, got);
}

// --- header fields -------------------------------------------------------------------------------

// Parses an octal field (leading spaces, digits, then NUL/space) or a base-256 one.
static int parse_number(const uint8_t *p, size_t n, uint64_t *out) {
    uint64_t v = 0;
    if (p[0] & 0x80) {   // GNU base-256: big-endian, first byte's top bit is the marker
        if (p[0] & 0x40) return -1;  // negative
        v = p[0] & 0x3f;
        for (size_t i = 1; i < n; i++) {
            if (v >> 55) return -1;
            v = (v << 8) | p[i];
        }
        *out = v;
        return 0;
    }
    size_t i = 0;
    while (i < n && p[i] == ' ') i++;
    size_t digits = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++, digits++) {
        if (v >> 60) return -1;
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    for (; i < n; i++)
        if (p[i] != ' ' && p[i] != '\0') return -1;
    if (digits == 0) return -1;
    *out = v;
    return 0;
}

static int header_is_zero(const uint8_t *h) {
    for (int i = 0; i < TAR_BLOCK; i++)
        if (h[i]) return 0;
    return 1;
}

static int checksum_ok(const uint8_t *h) {
    uint64_t want;
    if (parse_number(h + 148, 8, &want) != 0) return 0;
    uint64_t su = 0;
    int64_t ss = 0;
    for (int i = 0; i < TAR_BLOCK; i++) {
        uint8_t c = (i >= 148 && i < 156) ? ' ' : h[i];
        su += c;
        ss += (int8_t)c;
    }
    return want == su || (int64_t)want == ss;
}

static char *field_dup(const uint8_t *p, size_t n) {
    size_t len = strnlen((const char *)p, n);
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static char *ustar_path(const uint8_t *h) {
    char *name = field_dup(h, 100);
    if (!name) return NULL;
    if (memcmp(h + 257, "ustar\0", 6) != 0 || h[345] == '\0') return name;
    char *prefix = field_dup(h + 345, 155);
    if (!prefix) { free(name); return NULL; }
    size_t a = strlen(prefix), b = strlen(name);
    char *full = malloc(a + 1 + b + 1);
    if (full) {
        memcpy(full, prefix, a);
        full[a] = '/';
        memcpy(full + a + 1, name, b + 1);
    }
    free(prefix);
    free(name);
    return full;
}

// --- pax records ---------------------------------------------------------------------------------

typedef struct {
    char *path;        // NULL when absent
    int has_size;
    uint64_t size;
} pax_info;

static vlt_status fail_at(vlt_tar *t, uint64_t off, const char *what) {
    return vlt_error_set(VLT_ERR_FORMAT, "tar %s: %s at offset %llu", t->name, what,
                         (unsigned long long)off);
}

// Records are "LEN KEY=VALUE\n" where LEN counts the whole record in decimal.
static vlt_status parse_pax(vlt_tar *t, const uint8_t *d, uint64_t n, uint64_t off, pax_info *pax) {
    uint64_t i = 0;
    while (i < n) {
        if (d[i] == '\0') break;   // some writers pad with NULs
        uint64_t len = 0, j = i;
        while (j < n && d[j] >= '0' && d[j] <= '9') {
            if (len > n) return fail_at(t, off, "pax record length too large");
            len = len * 10 + (uint64_t)(d[j] - '0');
            j++;
        }
        if (j == i || j >= n || d[j] != ' ' || len < (j - i) + 3 || len > n - i)
            return fail_at(t, off, "malformed pax record");
        uint64_t end = i + len;   // one past the '\n'
        if (d[end - 1] != '\n') return fail_at(t, off, "pax record without newline");
        const uint8_t *key = d + j + 1;
        const uint8_t *eq = memchr(key, '=', (size_t)(end - 1 - (j + 1)));
        if (!eq) return fail_at(t, off, "pax record without '='");
        size_t klen = (size_t)(eq - key);
        const uint8_t *val = eq + 1;
        size_t vlen = (size_t)(d + end - 1 - val);
        if (klen == 4 && memcmp(key, "path", 4) == 0) {
            free(pax->path);
            pax->path = malloc(vlen + 1);
            if (!pax->path) return vlt_error_set(VLT_ERR_NOMEM, "tar %s: pax path", t->name);
            memcpy(pax->path, val, vlen);
            pax->path[vlen] = '\0';
        } else if (klen == 4 && memcmp(key, "size", 4) == 0) {
            uint64_t v = 0;
            if (vlen == 0 || vlen > 19) return fail_at(t, off, "bad pax size");
            for (size_t k = 0; k < vlen; k++) {
                if (val[k] < '0' || val[k] > '9') return fail_at(t, off, "bad pax size");
                v = v * 10 + (uint64_t)(val[k] - '0');
            }
            pax->has_size = 1;
            pax->size = v;
        }
        i = end;
    }
    return VLT_OK;
}

// --- open / close --------------------------------------------------------------------------------

static vlt_status tar_init(vlt_tar *t, const char *name) {
    t->name = strdup(name ? name : "(tar)");
    t->ibuf = malloc(TAR_BUF);
    t->obuf = malloc(TAR_BUF);
    t->max_member = VLT_TAR_DEFAULT_MAX_MEMBER;
    if (!t->name || !t->ibuf || !t->obuf) return vlt_error_set(VLT_ERR_NOMEM, "tar: out of memory");
    // Sniff: read the first chunk; zstd frames start with 28 b5 2f fd.
    VLT_TRY(raw_read(t, t->ibuf, TAR_BUF, &t->ilen));
    static const uint8_t zmagic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    if (t->ilen >= 4 && memcmp(t->ibuf, zmagic, 4) == 0) {
        t->zs = ZSTD_createDStream();
        if (!t->zs || ZSTD_isError(ZSTD_initDStream(t->zs)))
            return vlt_error_set(VLT_ERR_NOMEM, "tar %s: cannot create zstd decoder", t->name);
    } else {
        uint8_t *tmp = t->obuf;   // plain: what we read is already tar bytes
        t->obuf = t->ibuf;
        t->ibuf = tmp;
        t->olen = t->ilen;
        t->ilen = 0;
    }
    return VLT_OK;
}

static vlt_status tar_new(FILE *f, int own, const uint8_t *mem, size_t len, const char *name, vlt_tar **out) {
    *out = NULL;
    vlt_tar *t = calloc(1, sizeof *t);
    if (!t) {
        if (own && f) fclose(f);
        return vlt_error_set(VLT_ERR_NOMEM, "tar: out of memory");
    }
    t->f = f;
    t->own = own;
    t->mem = mem;
    t->mem_len = len;
    if (mem && len == 0) t->raw_eof = 1;
    if (f) {
        off_t here = ftello(f);
        t->seekable = here >= 0 && fseeko(f, here, SEEK_SET) == 0;
        t->base = here >= 0 ? here : 0;
    }
    vlt_status s = tar_init(t, name);
    if (s != VLT_OK) {
        vlt_tar_close(t);
        return s;
    }
    *out = t;
    return VLT_OK;
}

vlt_status vlt_tar_open(const char *path, vlt_tar **out) {
    *out = NULL;
    if (!path) return vlt_error_set(VLT_ERR_ARG, "tar: NULL path");
    // O_NONBLOCK so that opening a FIFO (or a device) cannot block the reader thread forever
    // waiting for a writer: anything but a regular file is refused before a byte is read.
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return vlt_error_set(VLT_ERR_IO, "tar %s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return vlt_error_set(VLT_ERR_IO, "tar %s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        const char *kind = S_ISFIFO(sb.st_mode)                       ? "a FIFO (named pipe)"
                           : S_ISDIR(sb.st_mode)                      ? "a directory"
                           : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device"
                           : S_ISSOCK(sb.st_mode)                     ? "a socket"
                                                                      : "a special file";
        close(fd);
        return vlt_error_set(VLT_ERR_IO, "tar %s: is %s, not a regular file; shards must be regular files", path,
                             kind);
    }
    int fl = fcntl(fd, F_GETFL);
    FILE *f = (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0) ? fdopen(fd, "rb") : NULL;
    if (!f) {
        int err = errno;
        close(fd);
        return vlt_error_set(VLT_ERR_IO, "tar %s: cannot open: %s", path, strerror(err));
    }
    return tar_new(f, 1, NULL, 0, path, out);
}

vlt_status vlt_tar_open_file(FILE *f, int own, const char *name, vlt_tar **out) {
    *out = NULL;
    if (!f) return vlt_error_set(VLT_ERR_ARG, "tar: NULL FILE for %s", name ? name : "(tar)");
    return tar_new(f, own, NULL, 0, name, out);
}

vlt_status vlt_tar_open_mem(const uint8_t *buf, size_t len, const char *name, vlt_tar **out) {
    *out = NULL;
    if (!buf && len) return vlt_error_set(VLT_ERR_ARG, "tar: NULL buffer for %s", name ? name : "(tar)");
    static const uint8_t empty[1] = {0};
    return tar_new(NULL, 0, buf ? buf : empty, len, name, out);
}

void vlt_tar_close(vlt_tar *t) {
    if (!t) return;
    if (t->own && t->f) fclose(t->f);
    if (t->zs) ZSTD_freeDStream(t->zs);
    free(t->ibuf);
    free(t->obuf);
    free(t->name);
    free(t->failed_msg);
    free(t->failed_path);
    free(t);
}

void vlt_tar_set_max_member(vlt_tar *t, uint64_t max_bytes) { t->max_member = max_bytes; }
uint64_t vlt_tar_offset(const vlt_tar *t) { return t->pos; }
int vlt_tar_is_compressed(const vlt_tar *t) { return t->zs != NULL; }
const char *vlt_tar_name(const vlt_tar *t) { return t->name; }
const char *vlt_tar_failed_member(const vlt_tar *t, uint64_t *offset) {
    if (offset) *offset = t->failed_offset;
    return t->failed ? t->failed_path : NULL;
}

void vlt_tar_member_free(vlt_tar_member *m) {
    if (!m) return;
    free(m->path);
    free(m->data);
    memset(m, 0, sizeof *m);
}

// --- members -------------------------------------------------------------------------------------

// Makes an error sticky: later calls repeat it.
static vlt_status tar_fail(vlt_tar *t, vlt_status s) {
    t->failed = s;
    free(t->failed_msg);
    t->failed_msg = strdup(vlt_error_message());
    return s;
}

// Reads a member's data (n bytes, then padding) into a fresh buffer with a trailing NUL.
static vlt_status read_data(vlt_tar *t, uint64_t n, uint64_t hdr_off, const char *path, uint8_t **out) {
    *out = NULL;
    uint8_t *d = malloc((size_t)n + 1);
    if (!d) return vlt_error_set(VLT_ERR_NOMEM, "tar %s: no memory for %llu bytes of '%s'", t->name,
                                 (unsigned long long)n, path);
    uint64_t got;
    vlt_status s = stream_read(t, d, n, &got);
    if (s == VLT_OK && got < n)
        s = vlt_error_set(VLT_ERR_FORMAT, "tar %s: member '%s' (header at offset %llu) truncated at offset %llu",
                          t->name, path, (unsigned long long)hdr_off, (unsigned long long)t->pos);
    if (s != VLT_OK) {
        free(d);
        return s;
    }
    d[n] = '\0';
    *out = d;
    return VLT_OK;
}

static vlt_status skip_bytes(vlt_tar *t, uint64_t n, uint64_t hdr_off, const char *path) {
    uint64_t got;
    VLT_TRY(stream_skip(t, n, &got));
    if (got < n)
        return vlt_error_set(VLT_ERR_FORMAT, "tar %s: member '%s' (header at offset %llu) truncated at offset %llu",
                             t->name, path, (unsigned long long)hdr_off, (unsigned long long)t->pos);
    return VLT_OK;
}

static uint64_t pad_of(uint64_t n) { return (TAR_BLOCK - n % TAR_BLOCK) % TAR_BLOCK; }

static vlt_status next_member(vlt_tar *t, vlt_tar_member *m, int *got) {
    pax_info pax = {0};
    char *longname = NULL;
    uint64_t chain_off = t->pos;   // first header of this member's chain
    vlt_status s = VLT_OK;
    for (;;) {
        uint8_t h[TAR_BLOCK];
        uint64_t off = t->pos, n;
        if ((s = stream_read(t, h, TAR_BLOCK, &n)) != VLT_OK) break;
        if (n == 0 || (n == TAR_BLOCK && header_is_zero(h))) {
            if (pax.path || pax.has_size || longname) {
                s = fail_at(t, off, "archive ends after an extended header");
                break;
            }
            t->done = 1;
            break;
        }
        if (n < TAR_BLOCK) { s = fail_at(t, off, "truncated header"); break; }
        if (!checksum_ok(h)) { s = fail_at(t, off, "bad header checksum (not a tar header)"); break; }
        uint64_t size;
        if (parse_number(h + 124, 12, &size) != 0) { s = fail_at(t, off, "bad size field"); break; }
        char type = (char)h[156];
        if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
            uint64_t cap = (type == 'L') ? TAR_MAX_LONGNAME : TAR_MAX_PAX;
            if (size > cap) { s = fail_at(t, off, "extended header too large"); break; }
            uint8_t *d = NULL;
            if ((s = read_data(t, size, off, "(extended header)", &d)) != VLT_OK) break;
            if ((s = skip_bytes(t, pad_of(size), off, "(extended header)")) != VLT_OK) { free(d); break; }
            if (type == 'x') s = parse_pax(t, d, size, off, &pax);
            if (type == 'L') {
                free(longname);
                longname = (char *)d;   // NUL-terminated by read_data; stops at the first NUL
                d = NULL;
            }
            free(d);
            if (s != VLT_OK) break;
            continue;
        }
        if (pax.has_size) size = pax.size;
        if (size > TAR_MAX_SIZE) { s = fail_at(t, off, "member size out of range"); break; }
        char *path = pax.path ? pax.path : longname ? longname : ustar_path(h);
        if (path == pax.path) pax.path = NULL;
        else if (path == longname) longname = NULL;
        if (!path) { s = vlt_error_set(VLT_ERR_NOMEM, "tar %s: out of memory", t->name); break; }
        int regular = (type == '0' || type == '\0' || type == '7');
        // Links, directories and devices carry no data even when the size field says otherwise.
        if (type == '1' || type == '2' || type == '3' || type == '4' || type == '5' || type == '6') size = 0;
        if (!regular) {
            s = skip_bytes(t, size + pad_of(size), off, path);
            free(path);
            if (s != VLT_OK) break;
            free(pax.path);
            pax = (pax_info){0};
            free(longname);
            longname = NULL;
            chain_off = t->pos;
            continue;
        }
        memset(m, 0, sizeof *m);
        m->path = path;
        m->size = size;
        m->offset = chain_off;
        if (size > t->max_member) {
            m->too_large = 1;
            s = skip_bytes(t, size + pad_of(size), off, path);
        } else {
            s = read_data(t, size, off, path, &m->data);
            if (s == VLT_OK) s = skip_bytes(t, pad_of(size), off, path);
        }
        if (s != VLT_OK) {
            free(t->failed_path);
            t->failed_path = strdup(m->path);   // its header was whole: say which member broke
            t->failed_offset = chain_off;
            vlt_tar_member_free(m);
            break;
        }
        m->next_offset = t->pos;
        *got = 1;
        break;
    }
    free(pax.path);
    free(longname);
    return s;
}

vlt_status vlt_tar_next(vlt_tar *t, vlt_tar_member *m, int *got) {
    *got = 0;
    memset(m, 0, sizeof *m);
    if (t->failed) return vlt_error_set(t->failed, "%s", t->failed_msg ? t->failed_msg : "tar: failed");
    if (t->done) return VLT_OK;
    vlt_status s = next_member(t, m, got);
    if (s != VLT_OK) return tar_fail(t, s);
    return VLT_OK;
}

vlt_status vlt_tar_seek(vlt_tar *t, uint64_t offset) {
    if (t->failed) return vlt_error_set(t->failed, "%s", t->failed_msg ? t->failed_msg : "tar: failed");
    if (offset % TAR_BLOCK) return vlt_error_set(VLT_ERR_ARG, "tar %s: seek to %llu: not a block boundary",
                                                 t->name, (unsigned long long)offset);
    t->done = 0;
    if (offset == t->pos) return VLT_OK;
    if (offset < t->pos) {
        if (t->zs || !(t->seekable || t->mem))
            return vlt_error_set(VLT_ERR_ARG, "tar %s: cannot seek back from %llu to %llu on this input",
                                 t->name, (unsigned long long)t->pos, (unsigned long long)offset);
        if (t->mem) {
            t->mem_pos = offset < t->mem_len ? (size_t)offset : t->mem_len;
            t->raw_eof = t->mem_pos == t->mem_len;
        } else {
            if (fseeko(t->f, t->base + (off_t)offset, SEEK_SET) != 0)
                return vlt_error_set(VLT_ERR_IO, "tar %s: seek failed: %s", t->name, strerror(errno));
            clearerr(t->f);
            t->raw_eof = 0;
        }
        t->opos = t->olen = 0;
        t->pos = offset;
        return VLT_OK;
    }
    uint64_t got;
    vlt_status s = stream_skip(t, offset - t->pos, &got);
    if (s != VLT_OK) return tar_fail(t, s);
    if (t->pos != offset)
        return tar_fail(t, vlt_error_set(VLT_ERR_FORMAT, "tar %s: seek to %llu past the end (%llu bytes)", t->name,
                                         (unsigned long long)offset, (unsigned long long)t->pos));
    return VLT_OK;
}
