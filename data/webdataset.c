// webdataset.c — tar members to webdataset samples (see webdataset.h).
#include "data/webdataset.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct vlt_wds {
    vlt_tar *tar;
    vlt_tar_member pending;   // a member read ahead: the first of the next sample
    int has_pending;
    int done;
    vlt_status err;           // the stream failed while a sample was being finished: reported
    char *errmsg;             //   on the call after that sample is delivered
    char *tail_key;           // the key of a member cut short after the delivered sample
    uint64_t tail_offset;
};

int vlt_wds_split_path(const char *path, size_t *key_len, size_t *ext_len) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    if (blen >= 4 && base[0] == '_' && base[1] == '_' && base[blen - 1] == '_' && base[blen - 2] == '_')
        return -1;
    const char *dot = strchr(base, '.');
    if (!dot || dot == base) return -1;
    *key_len = (size_t)(dot - path);
    *ext_len = strlen(dot + 1);
    return 0;
}

const char *vlt_wds_bad_name(vlt_wds_bad b) {
    switch (b) {
    case VLT_WDS_OK: return "ok";
    case VLT_WDS_BAD_DUP_EXT: return "duplicate extension";
    case VLT_WDS_BAD_TOO_LARGE: return "member too large";
    case VLT_WDS_BAD_TRUNCATED: return "shard ends inside the sample";
    }
    return "?";
}

vlt_status vlt_wds_open(vlt_tar *t, vlt_wds **out) {
    *out = NULL;
    if (!t) return vlt_error_set(VLT_ERR_ARG, "webdataset: NULL tar reader");
    vlt_wds *w = calloc(1, sizeof *w);
    if (!w) return vlt_error_set(VLT_ERR_NOMEM, "webdataset: out of memory");
    w->tar = t;
    *out = w;
    return VLT_OK;
}

void vlt_wds_close(vlt_wds *w) {
    if (!w) return;
    if (w->has_pending) vlt_tar_member_free(&w->pending);
    free(w->errmsg);
    free(w->tail_key);
    free(w);
}

void vlt_wds_sample_free(vlt_wds_sample *s) {
    if (!s) return;
    for (int i = 0; i < s->n_fields; i++) {
        free(s->fields[i].ext);
        free(s->fields[i].data);
    }
    free(s->fields);
    free(s->key);
    free(s->bad_ext);
    memset(s, 0, sizeof *s);
}

const vlt_wds_field *vlt_wds_sample_field(const vlt_wds_sample *s, const char *ext) {
    for (int i = 0; i < s->n_fields; i++)
        if (strcmp(s->fields[i].ext, ext) == 0) return &s->fields[i];
    return NULL;
}

// The next member that has a key (pending first), or *got = 0 at the end.
static vlt_status next_keyed(vlt_wds *w, vlt_tar_member *m, size_t *klen, int *got) {
    if (w->has_pending) {
        *m = w->pending;
        w->has_pending = 0;
        size_t elen;
        vlt_wds_split_path(m->path, klen, &elen);
        *got = 1;
        return VLT_OK;
    }
    for (;;) {
        VLT_TRY(vlt_tar_next(w->tar, m, got));
        if (!*got) return VLT_OK;
        size_t elen;
        if (vlt_wds_split_path(m->path, klen, &elen) == 0) return VLT_OK;
        vlt_tar_member_free(m);
    }
}

static void mark_bad(vlt_wds_sample *s, vlt_wds_bad why, const char *ext) {
    if (s->bad) return;   // the first reason wins
    s->bad = why;
    s->bad_ext = strdup(ext);
}

// Adds member m (key already matched) to s; takes m's buffers.
static vlt_status add_member(vlt_wds_sample *s, vlt_tar_member *m, size_t klen) {
    char *ext = strdup(m->path + klen + 1);
    if (!ext) return vlt_error_set(VLT_ERR_NOMEM, "webdataset: out of memory");
    for (char *p = ext; *p; p++) *p = (char)tolower((unsigned char)*p);
    s->next_offset = m->next_offset;
    if (m->too_large) mark_bad(s, VLT_WDS_BAD_TOO_LARGE, ext);
    else if (vlt_wds_sample_field(s, ext)) mark_bad(s, VLT_WDS_BAD_DUP_EXT, ext);
    if (s->bad) {
        free(ext);
        vlt_tar_member_free(m);
        return VLT_OK;
    }
    vlt_wds_field *f = realloc(s->fields, (size_t)(s->n_fields + 1) * sizeof *f);
    if (!f) {
        free(ext);
        vlt_tar_member_free(m);
        return vlt_error_set(VLT_ERR_NOMEM, "webdataset: out of memory");
    }
    s->fields = f;
    f[s->n_fields++] = (vlt_wds_field){ext, m->data, m->size};
    free(m->path);
    memset(m, 0, sizeof *m);
    return VLT_OK;
}

static void drop_fields(vlt_wds_sample *s) {
    for (int i = 0; i < s->n_fields; i++) {
        free(s->fields[i].ext);
        free(s->fields[i].data);
    }
    free(s->fields);
    s->fields = NULL;
    s->n_fields = 0;
}

// The key of the member the tar reader failed in (its header was whole), or NULL.
static char *failed_key(const vlt_wds *w) {
    const char *p = vlt_tar_failed_member(w->tar, NULL);
    size_t klen, elen;
    if (!p || vlt_wds_split_path(p, &klen, &elen) != 0) return NULL;
    return strndup(p, klen);
}

// A bad sample standing for the members of `key` that the shard cut short (takes key).
static void truncated_sample(vlt_wds_sample *s, char *key, uint64_t offset, const char *failed_path) {
    memset(s, 0, sizeof *s);
    s->key = key;
    s->offset = s->next_offset = offset;
    s->bad = VLT_WDS_BAD_TRUNCATED;
    size_t klen, elen;
    s->bad_ext = failed_path && vlt_wds_split_path(failed_path, &klen, &elen) == 0 ? strdup(failed_path + klen + 1)
                                                                                  : NULL;
}

// The stream failed (status st, message in vlt_error_message) while sample *s was being
// assembled (s->key NULL: none yet). What was read whole is not thrown away: a sample whose
// members all arrived is delivered, and the cut-short tail comes out as a bad sample
// (VLT_WDS_BAD_TRUNCATED) so the caller counts it; the error itself follows on the next call.
// Whether the sample being assembled was complete is known only from the member that broke:
// when its header named the same key, the sample lost a member and is the truncated one; when
// it named another key (or the header itself was cut), every member of the sample had arrived.
static vlt_status stream_failed(vlt_wds *w, vlt_status st, vlt_wds_sample *s, int *got) {
    w->err = st;
    free(w->errmsg);
    w->errmsg = strdup(vlt_error_message());
    uint64_t member_off = 0;
    const char *fpath = vlt_tar_failed_member(w->tar, &member_off);
    char *fkey = failed_key(w);
    if (!s->key) {
        if (!fkey) return st;   // nothing of a sample was read: just the error
        truncated_sample(s, fkey, member_off, fpath);
        *got = 1;
        return VLT_OK;
    }
    if (fkey && strcmp(fkey, s->key) == 0) {
        free(fkey);
        drop_fields(s);
        free(s->bad_ext);
        s->bad = VLT_WDS_BAD_TRUNCATED;
        size_t klen, elen;
        s->bad_ext = vlt_wds_split_path(fpath, &klen, &elen) == 0 ? strdup(fpath + klen + 1) : NULL;
        *got = 1;
        return VLT_OK;
    }
    w->tail_key = fkey;
    w->tail_offset = member_off;
    if (s->bad) drop_fields(s);
    *got = 1;
    return VLT_OK;
}

vlt_status vlt_wds_next(vlt_wds *w, vlt_wds_sample *s, int *got) {
    *got = 0;
    memset(s, 0, sizeof *s);
    if (w->err) {
        if (w->tail_key) {
            truncated_sample(s, w->tail_key, w->tail_offset, vlt_tar_failed_member(w->tar, NULL));
            w->tail_key = NULL;
            *got = 1;
            return VLT_OK;
        }
        return vlt_error_set(w->err, "%s", w->errmsg ? w->errmsg : "webdataset: the tar stream failed");
    }
    if (w->done) return VLT_OK;
    vlt_tar_member m;
    size_t klen;
    int have;
    vlt_status st = next_keyed(w, &m, &klen, &have);
    if (st != VLT_OK) return st == VLT_ERR_NOMEM ? st : stream_failed(w, st, s, got);
    if (!have) {
        w->done = 1;
        return VLT_OK;
    }
    s->key = strndup(m.path, klen);
    s->offset = m.offset;
    st = s->key ? add_member(s, &m, klen) : vlt_error_set(VLT_ERR_NOMEM, "webdataset: out of memory");
    while (st == VLT_OK) {
        st = next_keyed(w, &m, &klen, &have);
        if (st != VLT_OK) {
            if (st != VLT_ERR_NOMEM) return stream_failed(w, st, s, got);
            break;
        }
        if (!have) {
            w->done = 1;
            break;
        }
        if (klen != strlen(s->key) || memcmp(m.path, s->key, klen) != 0) {
            w->pending = m;
            w->has_pending = 1;
            break;
        }
        st = add_member(s, &m, klen);
    }
    if (st != VLT_OK) {
        vlt_wds_sample_free(s);
        return st;
    }
    if (s->bad) drop_fields(s);
    *got = 1;
    return VLT_OK;
}
