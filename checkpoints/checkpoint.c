// checkpoint.c — checkpoint directories: durable save, keep-last-K, resolve, strict load
// (see checkpoint.h for the layout and the write sequence).
#include "checkpoints/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"

#define CK_MODEL "model.safetensors"
#define CK_OPTIM "optimizer.safetensors"
#define CK_STATE "state.json"
#define CK_LATEST "latest"
#define CK_TMP_PREFIX ".tmp-"
#define CK_KEY_MAX 128   // a tensor name (< 96) + ".exp_avg_sq"

// --- small helpers ----------------------------------------------------------------------------

// The fault-injection counter of one save (checkpoint.h, VLT_CHECKPOINT_CRASH_AT).
typedef struct {
    long crash_at;   // 0: off
    long point;      // durable operations reached so far
} ck_faults;

static ck_faults ck_faults_from_env(void) {
    ck_faults f = {0, 0};
    const char *s = getenv(VLT_CHECKPOINT_CRASH_ENV);
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && v > 0) f.crash_at = v;
    }
    return f;
}

// Marks the next durable operation; dies there as kill -9 would when the test asked for it.
static void ck_point(ck_faults *f) {
    f->point++;
    if (f->crash_at && f->point == f->crash_at) {
        kill(getpid(), SIGKILL);
        _exit(137);   // not reached
    }
}

// snprintf into a PATH_MAX buffer; false (with a message) when the path does not fit.
static vlt_status ck_path(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static vlt_status ck_path(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) return vlt_error_set(VLT_ERR_ARG, "checkpoint: path too long (%.200s...)", buf);
    return VLT_OK;
}

static vlt_status ck_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot open '%s' to fsync it: %s", path, strerror(errno));
    vlt_status s = VLT_OK;
    if (fsync(fd) != 0) s = vlt_error_set(VLT_ERR_IO, "checkpoint: fsync of '%s' failed: %s", path, strerror(errno));
    close(fd);
    return s;
}

static bool ck_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// mkdir -p, fsyncing each parent in which a directory was created.
static vlt_status ck_mkdirs(const char *path) {
    if (ck_is_dir(path)) return VLT_OK;
    char buf[PATH_MAX];
    VLT_TRY(ck_path(buf, sizeof buf, "%s", path));
    char *slash = strrchr(buf, '/');
    while (slash && slash > buf && slash[1] == '\0') {   // trailing slashes
        *slash = '\0';
        slash = strrchr(buf, '/');
    }
    if (slash && slash != buf) {
        *slash = '\0';
        VLT_TRY(ck_mkdirs(buf));
        *slash = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot create directory '%s': %s", buf, strerror(errno));
    if (slash == buf) return ck_fsync_path("/");
    if (slash) {
        *slash = '\0';
        vlt_status s = ck_fsync_path(buf);
        *slash = '/';
        return s;
    }
    return ck_fsync_path(".");
}

static int ck_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

// rm -rf (does not follow symbolic links).
static vlt_status ck_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return VLT_OK;
    if (nftw(path, ck_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot remove '%s': %s", path, strerror(errno));
    return VLT_OK;
}

// The step of a name written as "step_%08lld" (exactly), or -1.
static int64_t ck_step_of_name(const char *name) {
    if (strncmp(name, "step_", 5) != 0 || !name[5]) return -1;
    int64_t v = 0;
    for (const char *p = name + 5; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    char canon[40];
    snprintf(canon, sizeof canon, "step_%08" PRId64, v);
    return strcmp(canon, name) ? -1 : v;
}

static const char *ck_basename(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *p = path + n;
    while (p > path && p[-1] != '/') p--;
    return p;
}

static int ck_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// The steps of the step_ directories under ck (ascending). *out is malloc'd (NULL when none).
static vlt_status ck_list_steps(const char *ck, int64_t **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(ck);
    if (!d) {
        if (errno == ENOENT) return VLT_OK;
        return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot list '%s': %s", ck, strerror(errno));
    }
    int64_t *v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t step = ck_step_of_name(e->d_name);
        if (step < 0) continue;
        char p[PATH_MAX];
        if (ck_path(p, sizeof p, "%s/%s", ck, e->d_name) != VLT_OK || !ck_is_dir(p)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                free(v);
                closedir(d);
                return vlt_error_set(VLT_ERR_NOMEM, "checkpoint: out of memory listing '%s'", ck);
            }
            v = nv;
        }
        v[n++] = step;
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, ck_cmp_i64);
    *out = v;
    *n_out = n;
    return VLT_OK;
}

// Reads a whole file, NUL-terminated. Errors name the file.
static vlt_status ck_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vlt_error_set(VLT_ERR_IO, "checkpoint: '%s' is not a regular file", path);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return vlt_error_set(VLT_ERR_NOMEM, "checkpoint: out of memory reading '%s'", path);
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot read '%s' (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return VLT_OK;
}

// The state text must be one JSON object (trailing whitespace only). `what` names it.
static vlt_status ck_check_state_json(const char *text, size_t len, const char *what) {
    if (strlen(text) != len) return vlt_error_set(VLT_ERR_FORMAT, "checkpoint: %s contains a NUL byte", what);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return vlt_error_set(VLT_ERR_FORMAT, "checkpoint: %s is not valid JSON (near byte %zu)", what, at);
    }
    bool obj = cJSON_IsObject(j);
    cJSON_Delete(j);
    return obj ? VLT_OK : vlt_error_set(VLT_ERR_FORMAT, "checkpoint: %s is JSON but not an object", what);
}

// --- saving -----------------------------------------------------------------------------------

// Removes .tmp-* entries of RUN/checkpoints whose writer (the pid after the last '-') is not a
// live process other than this one.
static vlt_status ck_clean_stale(const char *ck, ck_faults *f) {
    DIR *d = opendir(ck);
    if (!d) return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot list '%s': %s", ck, strerror(errno));
    vlt_status s = VLT_OK;
    struct dirent *e;
    while (s == VLT_OK && (e = readdir(d))) {
        if (strncmp(e->d_name, CK_TMP_PREFIX, strlen(CK_TMP_PREFIX)) != 0) continue;
        const char *dash = strrchr(e->d_name, '-');
        char *end;
        long pid = dash ? strtol(dash + 1, &end, 10) : 0;
        bool parsed = dash && dash[1] && *end == '\0' && pid > 0;
        if (parsed && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;
        char p[PATH_MAX];
        s = ck_path(p, sizeof p, "%s/%s", ck, e->d_name);
        if (s == VLT_OK) {
            ck_point(f);
            s = ck_rmtree(p);
        }
    }
    closedir(d);
    return s;
}

static void ck_meta_step(char *buf, size_t cap, int64_t step) { snprintf(buf, cap, "%" PRId64, step); }

static vlt_status ck_write_model(const char *path, const vlt_params *model, int64_t step) {
    char fmt[16], st[32];
    snprintf(fmt, sizeof fmt, "%d", VLT_CHECKPOINT_FORMAT);
    ck_meta_step(st, sizeof st, step);
    vlt_st_meta meta[] = {{"format", "pt"}, {"vlt_checkpoint_format", fmt}, {"vlt_step", st}};
    return vlt_safetensors_save_params(path, model, VLT_ST_F32, meta, 3);
}

// "<name>.exp_avg" and "<name>.exp_avg_sq" for every parameter (F32, its shape), and "step".
static vlt_status ck_write_optim(const char *path, const vlt_adamw *opt, int64_t step) {
    int n = opt ? opt->n : 0;
    vlt_st_array *a = calloc((size_t)(2 * n + 1), sizeof *a);
    char (*names)[CK_KEY_MAX] = calloc((size_t)(2 * n + 1), sizeof *names);
    if (!a || !names) {
        free(a);
        free(names);
        return vlt_error_set(VLT_ERR_NOMEM, "checkpoint: out of memory writing '%s'", path);
    }
    for (int i = 0; i < n; i++) {
        const vlt_tensor *p = opt->params[i];
        for (int k = 0; k < 2; k++) {
            vlt_st_array *x = &a[2 * i + k];
            snprintf(names[2 * i + k], CK_KEY_MAX, "%s.%s", p->name, k ? "exp_avg_sq" : "exp_avg");
            x->name = names[2 * i + k];
            x->dtype = VLT_ST_F32;
            x->src = VLT_ST_F32;
            x->ndim = p->ndim;
            for (int d = 0; d < p->ndim; d++) x->shape[d] = p->shape[d];
            x->data = k ? opt->v[i] : opt->m[i];
        }
    }
    int64_t t = opt ? opt->t : 0;
    a[2 * n] = (vlt_st_array){.name = "step", .dtype = VLT_ST_I64, .src = VLT_ST_I64, .ndim = 0, .data = &t};
    char fmt[16], st[32], b1[32], b2[32], eps[32], wd[32];
    snprintf(fmt, sizeof fmt, "%d", VLT_CHECKPOINT_FORMAT);
    ck_meta_step(st, sizeof st, step);
    vlt_adamw_cfg c = opt ? opt->cfg : vlt_adamw_defaults();
    snprintf(b1, sizeof b1, "%.9g", c.beta1);
    snprintf(b2, sizeof b2, "%.9g", c.beta2);
    snprintf(eps, sizeof eps, "%.9g", c.eps);
    snprintf(wd, sizeof wd, "%.9g", c.weight_decay);
    vlt_st_meta meta[] = {{"vlt_checkpoint_format", fmt}, {"vlt_step", st},   {"optimizer", opt ? "adamw" : "none"},
                          {"beta1", b1},                  {"beta2", b2},       {"eps", eps},
                          {"weight_decay", wd}};
    vlt_status s = vlt_safetensors_write(path, a, 2 * n + 1, meta, (int)(sizeof meta / sizeof meta[0]));
    free(a);
    free(names);
    return s;
}

static vlt_status ck_write_text(const char *path, const char *text, ck_faults *f) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot create '%s': %s", path, strerror(errno));
    size_t n = strlen(text), done = 0;
    vlt_status s = VLT_OK;
    while (done < n) {
        ssize_t w = write(fd, text + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            s = vlt_error_set(VLT_ERR_IO, "checkpoint: cannot write '%s': %s", path, strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    if (s == VLT_OK) {
        ck_point(f);
        if (fsync(fd) != 0) s = vlt_error_set(VLT_ERR_IO, "checkpoint: fsync of '%s' failed: %s", path, strerror(errno));
    }
    if (close(fd) != 0 && s == VLT_OK)
        s = vlt_error_set(VLT_ERR_IO, "checkpoint: cannot close '%s': %s", path, strerror(errno));
    return s;
}

// Renames the finished temporary directory to `final`. When `final` exists (the same step saved
// again), the two are exchanged atomically and the old one, now under `tmp`, removed.
static vlt_status ck_publish_dir(const char *ck, const char *tmp, const char *final, ck_faults *f) {
    ck_point(f);
    if (rename(tmp, final) == 0) return VLT_OK;
    if (errno != EEXIST && errno != ENOTEMPTY)
        return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) != 0) {
        if (errno != EINVAL && errno != ENOSYS)
            return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot exchange '%s' and '%s': %s", tmp, final, strerror(errno));
        // No RENAME_EXCHANGE on this file system: move the old one aside, then rename (not atomic).
        char aside[PATH_MAX];
        VLT_TRY(ck_path(aside, sizeof aside, "%s/" CK_TMP_PREFIX "old-%s-%ld", ck, ck_basename(final), (long)getpid()));
        if (rename(final, aside) != 0 || rename(tmp, final) != 0)
            return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot replace '%s': %s", final, strerror(errno));
        VLT_TRY(ck_fsync_path(ck));
        return ck_rmtree(aside);
    }
    ck_point(f);
    VLT_TRY(ck_fsync_path(ck));
    return ck_rmtree(tmp);   // the old contents
}

static vlt_status ck_point_latest(const char *ck, const char *name, ck_faults *f) {
    char tmp[PATH_MAX], latest[PATH_MAX];
    VLT_TRY(ck_path(tmp, sizeof tmp, "%s/" CK_TMP_PREFIX "latest-%ld", ck, (long)getpid()));
    VLT_TRY(ck_path(latest, sizeof latest, "%s/" CK_LATEST, ck));
    ck_point(f);
    unlink(tmp);
    if (symlink(name, tmp) != 0)
        return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot create symlink '%s': %s", tmp, strerror(errno));
    ck_point(f);
    if (rename(tmp, latest) != 0) {
        vlt_status s = vlt_error_set(VLT_ERR_IO, "checkpoint: cannot rename '%s' over '%s': %s", tmp, latest,
                                     strerror(errno));
        unlink(tmp);
        return s;
    }
    ck_point(f);
    return ck_fsync_path(ck);
}

// Deletes the step_ directories beyond the newest `keep` (never `current`).
static vlt_status ck_prune(const char *ck, int64_t current, int keep, ck_faults *f) {
    if (keep <= 0) return VLT_OK;
    int64_t *steps;
    int n;
    VLT_TRY(ck_list_steps(ck, &steps, &n));
    vlt_status s = VLT_OK;
    for (int i = 0; i < n - keep && s == VLT_OK; i++) {
        if (steps[i] == current) continue;
        char dir[PATH_MAX], aside[PATH_MAX];
        s = ck_path(dir, sizeof dir, "%s/step_%08" PRId64, ck, steps[i]);
        if (s != VLT_OK) break;
        s = ck_path(aside, sizeof aside, "%s/" CK_TMP_PREFIX "prune-step_%08" PRId64 "-%ld", ck, steps[i], (long)getpid());
        if (s != VLT_OK) break;
        ck_point(f);
        if (rename(dir, aside) != 0) {
            s = vlt_error_set(VLT_ERR_IO, "checkpoint: cannot move old checkpoint '%s' aside: %s", dir, strerror(errno));
            break;
        }
        ck_point(f);
        s = ck_fsync_path(ck);
        if (s == VLT_OK) {
            ck_point(f);
            s = ck_rmtree(aside);
        }
    }
    free(steps);
    return s;
}

// NaN and inf elements of n floats (f32) or bf16 values.
static int64_t ck_count_nonfinite_f32(const float *x, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !isfinite(x[i]);
    return bad;
}

static int64_t ck_count_nonfinite_bf16(const uint16_t *x, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += (x[i] & 0x7f80u) == 0x7f80u;
    return bad;
}

// A state that is not finite is never written: a checkpoint is what `latest` offers as the state
// to resume from, and NaN weights only ever compute NaN. Names the first bad tensor.
static vlt_status ck_check_finite(const vlt_params *model, const vlt_adamw *opt, int64_t step) {
    for (int i = 0; i < model->n; i++) {
        const vlt_tensor *t = model->t[i];
        if (t->device != VLT_CPU) continue;   // the writer refuses it by name
        int64_t bad = t->dtype == VLT_F32    ? ck_count_nonfinite_f32(vlt_f32(t), t->numel)
                      : t->dtype == VLT_BF16 ? ck_count_nonfinite_bf16((const uint16_t *)t->data, t->numel)
                                             : 0;
        if (bad)
            return vlt_error_set(VLT_ERR_STATE, "checkpoint: not saving step %" PRId64 ": parameter '%s' holds %" PRId64
                                 " non-finite values (NaN or inf) of %" PRId64 "; the previous checkpoint stays 'latest'",
                                 step, t->name, bad, t->numel);
    }
    for (int i = 0; opt && i < opt->n; i++) {
        for (int k = 0; k < 2; k++) {
            const float *m = k ? (opt->v ? opt->v[i] : NULL) : (opt->m ? opt->m[i] : NULL);
            int64_t bad = m ? ck_count_nonfinite_f32(m, opt->params[i]->numel) : 0;
            if (bad)
                return vlt_error_set(VLT_ERR_STATE, "checkpoint: not saving step %" PRId64 ": optimizer state '%s.%s' holds %"
                                     PRId64 " non-finite values (NaN or inf); the previous checkpoint stays 'latest'", step,
                                     opt->params[i]->name, k ? "exp_avg_sq" : "exp_avg", bad);
        }
    }
    return VLT_OK;
}

vlt_status vlt_checkpoint_save(const char *run_dir, int64_t step, const vlt_params *model, const vlt_adamw *opt,
                               const char *state_json, int keep_last_k) {
    if (!run_dir || !run_dir[0]) return vlt_error_set(VLT_ERR_ARG, "checkpoint save: empty run directory");
    if (step < 0) return vlt_error_set(VLT_ERR_ARG, "checkpoint save: negative step %" PRId64, step);
    if (!model) return vlt_error_set(VLT_ERR_ARG, "checkpoint save: no model parameter table");
    if (!state_json) return vlt_error_set(VLT_ERR_ARG, "checkpoint save: no state JSON");
    VLT_TRY(ck_check_state_json(state_json, strlen(state_json), "the state to save"));
    if (opt)
        for (int i = 0; i < opt->n; i++)
            if (strlen(opt->params[i]->name) + 12 > CK_KEY_MAX || !opt->params[i]->name[0])
                return vlt_error_set(VLT_ERR_ARG, "checkpoint save: optimizer parameter %d has an empty or too long name",
                                     i);
    VLT_TRY(ck_check_finite(model, opt, step));

    ck_faults f = ck_faults_from_env();
    char ck[PATH_MAX], name[64], tmp[PATH_MAX], final[PATH_MAX], file[PATH_MAX];
    VLT_TRY(ck_path(ck, sizeof ck, "%s/checkpoints", run_dir));
    snprintf(name, sizeof name, "step_%08" PRId64, step);
    VLT_TRY(ck_path(tmp, sizeof tmp, "%s/" CK_TMP_PREFIX "%s-%ld", ck, name, (long)getpid()));
    VLT_TRY(ck_path(final, sizeof final, "%s/%s", ck, name));
    VLT_TRY(ck_mkdirs(ck));
    VLT_TRY(ck_clean_stale(ck, &f));

    ck_point(&f);
    if (mkdir(tmp, 0777) != 0)
        return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot create directory '%s': %s", tmp, strerror(errno));
    ck_point(&f);
    vlt_status s = ck_path(file, sizeof file, "%s/" CK_MODEL, tmp);
    if (s == VLT_OK) s = ck_write_model(file, model, step);
    if (s == VLT_OK) {
        ck_point(&f);
        s = ck_path(file, sizeof file, "%s/" CK_OPTIM, tmp);
    }
    if (s == VLT_OK) s = ck_write_optim(file, opt, step);
    if (s == VLT_OK) {
        ck_point(&f);
        s = ck_path(file, sizeof file, "%s/" CK_STATE, tmp);
    }
    if (s == VLT_OK) s = ck_write_text(file, state_json, &f);
    if (s == VLT_OK) {
        ck_point(&f);
        s = ck_fsync_path(tmp);
    }
    if (s == VLT_OK) s = ck_publish_dir(ck, tmp, final, &f);
    if (s != VLT_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vlt_error_message());
        ck_rmtree(tmp);
        return vlt_error_set(s, "%s", msg);
    }
    ck_point(&f);
    VLT_TRY(ck_fsync_path(ck));
    VLT_TRY(ck_point_latest(ck, name, &f));
    VLT_TRY(ck_prune(ck, step, keep_last_k, &f));
    ck_point(&f);
    return VLT_OK;
}

// --- validating and loading -------------------------------------------------------------------

// The format version and step of an open checkpoint file. Errors name it.
static vlt_status ck_check_meta(const vlt_safetensors *f, int64_t *step) {
    const char *path = vlt_safetensors_path(f);
    const char *fmt = vlt_safetensors_metadata(f, "vlt_checkpoint_format");
    const char *st = vlt_safetensors_metadata(f, "vlt_step");
    if (!fmt || !st)
        return vlt_error_set(VLT_ERR_FORMAT, "checkpoint '%s': no vlt_checkpoint_format / vlt_step metadata "
                             "(not written by vlt_checkpoint_save)", path);
    char *end;
    long v = strtol(fmt, &end, 10);
    if (*end || v != VLT_CHECKPOINT_FORMAT)
        return vlt_error_set(VLT_ERR_FORMAT, "checkpoint '%s': format version '%s', this vlt reads version %d", path, fmt,
                             VLT_CHECKPOINT_FORMAT);
    long long sv = strtoll(st, &end, 10);
    if (*end || !*st || sv < 0) return vlt_error_set(VLT_ERR_FORMAT, "checkpoint '%s': bad vlt_step '%s'", path, st);
    *step = sv;
    return VLT_OK;
}

// The three files of a checkpoint, open and checked.
typedef struct {
    vlt_safetensors *model, *optim;
    char *state;
    int64_t step;
} ck_files;

static void ck_files_close(ck_files *c) {
    vlt_safetensors_close(c->model);
    vlt_safetensors_close(c->optim);
    free(c->state);
    memset(c, 0, sizeof *c);
}

static vlt_status ck_files_open(const char *dir, ck_files *c) {
    memset(c, 0, sizeof *c);
    char mp[PATH_MAX], op[PATH_MAX], sp[PATH_MAX];
    VLT_TRY(ck_path(mp, sizeof mp, "%s/" CK_MODEL, dir));
    VLT_TRY(ck_path(op, sizeof op, "%s/" CK_OPTIM, dir));
    VLT_TRY(ck_path(sp, sizeof sp, "%s/" CK_STATE, dir));
    if (!ck_is_dir(dir)) return vlt_error_set(VLT_ERR_IO, "checkpoint '%s': no such directory", dir);
    int64_t ostep;
    size_t len;
    vlt_status s = vlt_safetensors_open(mp, &c->model);
    if (s == VLT_OK) s = ck_check_meta(c->model, &c->step);
    if (s == VLT_OK) s = vlt_safetensors_open(op, &c->optim);
    if (s == VLT_OK) s = ck_check_meta(c->optim, &ostep);
    if (s == VLT_OK && ostep != c->step)
        s = vlt_error_set(VLT_ERR_FORMAT, "checkpoint '%s': step %" PRId64 ", but '%s' says step %" PRId64, op, ostep, mp,
                          c->step);
    if (s == VLT_OK) {
        const vlt_st_tensor *t = vlt_safetensors_get(c->optim, "step");
        if (!t || t->numel != 1)
            s = vlt_error_set(VLT_ERR_FORMAT, "checkpoint '%s': no scalar 'step' tensor (the optimizer's t)", op);
    }
    int64_t dstep = ck_step_of_name(ck_basename(dir));
    if (s == VLT_OK && dstep >= 0 && dstep != c->step)
        s = vlt_error_set(VLT_ERR_FORMAT, "checkpoint '%s': says step %" PRId64 ", but its directory is named %s", mp,
                          c->step, ck_basename(dir));
    if (s == VLT_OK) s = ck_read_file(sp, &c->state, &len);
    if (s == VLT_OK) {
        char what[PATH_MAX + 8];
        snprintf(what, sizeof what, "'%s'", sp);
        s = ck_check_state_json(c->state, len, what);
    }
    if (s != VLT_OK) ck_files_close(c);
    return s;
}

vlt_status vlt_checkpoint_validate(const char *dir, int64_t *step_out) {
    if (!dir || !dir[0]) return vlt_error_set(VLT_ERR_ARG, "checkpoint: empty directory path");
    ck_files c;
    VLT_TRY(ck_files_open(dir, &c));
    if (step_out) *step_out = c.step;
    ck_files_close(&c);
    return VLT_OK;
}

vlt_status vlt_checkpoint_read_state(const char *dir, char **state_json_out, int64_t *step_out) {
    *state_json_out = NULL;
    if (!dir || !dir[0]) return vlt_error_set(VLT_ERR_ARG, "checkpoint: empty directory path");
    ck_files c;
    VLT_TRY(ck_files_open(dir, &c));
    *state_json_out = c.state;
    c.state = NULL;
    if (step_out) *step_out = c.step;
    ck_files_close(&c);
    return VLT_OK;
}

// Whether file tensor ft can be read into a moment of parameter p (F32-convertible, same shape;
// [] fits (1)).
static bool ck_moment_fits(const vlt_st_tensor *ft, const vlt_tensor *p) {
    if (ft->dtype != VLT_ST_F32 && ft->dtype != VLT_ST_BF16 && ft->dtype != VLT_ST_F16 && ft->dtype != VLT_ST_F64)
        return false;
    if (ft->numel != p->numel) return false;
    if (ft->ndim == 0) return p->numel == 1;
    if (ft->ndim != p->ndim) return false;
    for (int d = 0; d < p->ndim; d++)
        if (ft->shape[d] != p->shape[d]) return false;
    return true;
}

static bool ck_push(char ***list, int *n, const char *s) {
    char **nl = realloc(*list, ((size_t)*n + 1) * sizeof *nl);
    if (!nl) return false;
    *list = nl;
    nl[*n] = strdup(s);
    if (!nl[*n]) return false;
    (*n)++;
    return true;
}

// The optimizer parameter whose moment a file key names ("<name>.exp_avg[_sq]"), or -1.
static int ck_moment_owner(const vlt_adamw *opt, const char *key) {
    size_t n = strlen(key);
    size_t cut = 0;
    if (n > 11 && !strcmp(key + n - 11, ".exp_avg_sq")) cut = n - 11;
    else if (n > 8 && !strcmp(key + n - 8, ".exp_avg")) cut = n - 8;
    else return -1;
    for (int i = 0; i < opt->n; i++)
        if (strlen(opt->params[i]->name) == cut && !strncmp(opt->params[i]->name, key, cut)) return i;
    return -1;
}

// Whether a moment key names a parameter of the model table (a shard load's other moments).
static bool ck_moment_of_model(const vlt_params *model, const char *key) {
    size_t n = strlen(key), cut = 0;
    if (n > 11 && !strcmp(key + n - 11, ".exp_avg_sq")) cut = n - 11;
    else if (n > 8 && !strcmp(key + n - 8, ".exp_avg")) cut = n - 8;
    else return false;
    char name[CK_KEY_MAX];
    if (cut >= sizeof name) return false;
    memcpy(name, key, cut);
    name[cut] = '\0';
    return vlt_params_find(model, name) != NULL;
}

// Checks the optimizer file against opt's parameters (names, shapes), naming every misfit.
// shard_of (may be NULL): opt is a subset of this table, whose other moments may be in the file.
static vlt_status ck_check_optim(const vlt_safetensors *f, const vlt_adamw *opt, const vlt_params *shard_of) {
    vlt_st_report r = {0};
    bool ok = true;
    char key[CK_KEY_MAX];
    for (int i = 0; i < opt->n && ok; i++) {
        const vlt_tensor *p = opt->params[i];
        for (int k = 0; k < 2 && ok; k++) {
            snprintf(key, sizeof key, "%s.%s", p->name, k ? "exp_avg_sq" : "exp_avg");
            const vlt_st_tensor *ft = vlt_safetensors_get(f, key);
            if (!ft) {
                ok = ck_push(&r.missing, &r.n_missing, key);
            } else if (!ck_moment_fits(ft, p)) {
                char line[CK_KEY_MAX + 200], shp[96];
                size_t o = (size_t)snprintf(line, sizeof line, "%s: file (", key);
                for (int d = 0; d < ft->ndim && o < sizeof line; d++)
                    o += (size_t)snprintf(line + o, sizeof line - o, d ? ", %" PRId64 : "%" PRId64, ft->shape[d]);
                if (o < sizeof line)
                    snprintf(line + o, sizeof line - o, ") %s, parameter %s", vlt_st_dtype_name(ft->dtype),
                             vlt_shape_str(p, shp, sizeof shp));
                ok = ck_push(&r.misshaped, &r.n_misshaped, line);
            }
        }
    }
    for (int i = 0; i < vlt_safetensors_count(f) && ok; i++) {
        const char *name = vlt_safetensors_at(f, i)->name;
        bool other_shard = shard_of && ck_moment_of_model(shard_of, name);
        if (strcmp(name, "step") != 0 && ck_moment_owner(opt, name) < 0 && !other_shard)
            ok = ck_push(&r.unexpected, &r.n_unexpected, name);
    }
    vlt_status s = VLT_OK;
    if (!ok) {
        s = vlt_error_set(VLT_ERR_NOMEM, "checkpoint '%s': out of memory", vlt_safetensors_path(f));
    } else if (r.n_missing || r.n_unexpected || r.n_misshaped) {
        char msg[1024];
        int head = snprintf(msg, sizeof msg, "checkpoint '%s': does not match the optimizer: ", vlt_safetensors_path(f));
        if (head > 0 && (size_t)head < sizeof msg - 200) vlt_st_report_format(&r, msg + head, sizeof msg - (size_t)head);
        s = vlt_error_set(VLT_ERR_FORMAT, "%s", msg);
    }
    vlt_st_report_free(&r);
    return s;
}

// Copies the moments and t (ck_check_optim passed).
static vlt_status ck_copy_optim(const vlt_safetensors *f, vlt_adamw *opt) {
    char key[CK_KEY_MAX];
    for (int i = 0; i < opt->n; i++) {
        const vlt_tensor *p = opt->params[i];
        snprintf(key, sizeof key, "%s.exp_avg", p->name);
        VLT_TRY(vlt_safetensors_read_f32(f, key, opt->m[i], p->numel));
        snprintf(key, sizeof key, "%s.exp_avg_sq", p->name);
        VLT_TRY(vlt_safetensors_read_f32(f, key, opt->v[i], p->numel));
    }
    int64_t t;
    VLT_TRY(vlt_safetensors_read_i64(f, "step", &t, 1));
    opt->t = t;
    return VLT_OK;
}

static vlt_status ck_load(const char *dir, vlt_params *model, vlt_adamw *opt, bool shard, char **state_json_out) {
    if (state_json_out) *state_json_out = NULL;
    if (!dir || !dir[0]) return vlt_error_set(VLT_ERR_ARG, "checkpoint load: empty directory path");
    if (!model) return vlt_error_set(VLT_ERR_ARG, "checkpoint load: no model parameter table");
    ck_files c;
    VLT_TRY(ck_files_open(dir, &c));
    vlt_status s = VLT_OK;
    if (opt) {
        s = ck_check_optim(c.optim, opt, shard ? model : NULL);
        if (s == VLT_OK) {
            int64_t t;
            s = vlt_safetensors_read_i64(c.optim, "step", &t, 1);
            if (s == VLT_OK && t < 0)
                s = vlt_error_set(VLT_ERR_FORMAT, "checkpoint '%s': negative optimizer step %" PRId64,
                                  vlt_safetensors_path(c.optim), t);
        }
        for (int i = 0; s == VLT_OK && i < vlt_safetensors_count(c.optim); i++) {
            const vlt_st_tensor *ft = vlt_safetensors_at(c.optim, i);
            int64_t bad = ck_moment_owner(opt, ft->name) >= 0 ? vlt_st_count_nonfinite(ft) : 0;
            if (bad)
                s = vlt_error_set(VLT_ERR_FORMAT, "checkpoint '%s': tensor '%s' holds %" PRId64 " non-finite values (NaN "
                                  "or inf) of %" PRId64 "; refusing to resume from a non-finite optimizer state",
                                  vlt_safetensors_path(c.optim), ft->name, bad, ft->numel);
        }
    }
    if (s == VLT_OK) s = vlt_safetensors_load_params_from(c.model, model, false, NULL);   // checks, then copies
    if (s == VLT_OK && opt) s = ck_copy_optim(c.optim, opt);
    if (s == VLT_OK && state_json_out) {
        *state_json_out = c.state;
        c.state = NULL;
    }
    ck_files_close(&c);
    return s;
}

vlt_status vlt_checkpoint_load(const char *dir, vlt_params *model, vlt_adamw *opt, char **state_json_out) {
    return ck_load(dir, model, opt, false, state_json_out);
}

vlt_status vlt_checkpoint_load_shard(const char *dir, vlt_params *model, vlt_adamw *opt, char **state_json_out) {
    return ck_load(dir, model, opt, true, state_json_out);
}

// --- resolving --------------------------------------------------------------------------------

// What RUN/checkpoints/latest names, as a path (ck/target for a relative target).
static vlt_status ck_read_latest(const char *ck, char *out, size_t cap) {
    char latest[PATH_MAX], target[PATH_MAX];
    VLT_TRY(ck_path(latest, sizeof latest, "%s/" CK_LATEST, ck));
    struct stat st;
    if (lstat(latest, &st) != 0)
        return vlt_error_set(VLT_ERR_IO, "checkpoint: no '%s' (%s)", latest, strerror(errno));
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(latest, target, sizeof target - 1);
        if (n < 0) return vlt_error_set(VLT_ERR_IO, "checkpoint: cannot read link '%s': %s", latest, strerror(errno));
        target[n] = '\0';
    } else if (S_ISREG(st.st_mode)) {
        char *text;
        VLT_TRY(ck_read_file(latest, &text, NULL));
        size_t n = strcspn(text, "\r\n");
        while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t')) n--;
        snprintf(target, sizeof target, "%.*s", (int)n, text);
        free(text);
    } else {
        return vlt_error_set(VLT_ERR_FORMAT, "checkpoint: '%s' is neither a symlink nor a file", latest);
    }
    if (!target[0]) return vlt_error_set(VLT_ERR_FORMAT, "checkpoint: '%s' is empty", latest);
    if (target[0] == '/') return ck_path(out, cap, "%s", target);
    return ck_path(out, cap, "%s/%s", ck, target);
}

// The newest valid step_ directory under ck other than `skip` (a path; may be NULL), into out.
static bool ck_newest_valid(const char *ck, const char *skip, char *out, size_t cap) {
    int64_t *steps;
    int n;
    if (ck_list_steps(ck, &steps, &n) != VLT_OK) return false;
    bool found = false;
    for (int i = n - 1; i >= 0 && !found; i--) {
        char p[PATH_MAX];
        if (ck_path(p, sizeof p, "%s/step_%08" PRId64, ck, steps[i]) != VLT_OK) continue;
        if (skip && !strcmp(p, skip)) continue;
        if (vlt_checkpoint_validate(p, NULL) == VLT_OK && ck_path(out, cap, "%s", p) == VLT_OK) found = true;
    }
    free(steps);
    return found;
}

static vlt_status ck_resolve_latest(const char *run_dir, char *out, size_t cap) {
    char ck[PATH_MAX], target[PATH_MAX], other[PATH_MAX], reason[512];
    VLT_TRY(ck_path(ck, sizeof ck, "%s/checkpoints", run_dir));
    vlt_status s = ck_read_latest(ck, target, sizeof target);
    bool have_target = s == VLT_OK;
    if (s == VLT_OK) s = vlt_checkpoint_validate(target, NULL);
    if (s == VLT_OK) return ck_path(out, cap, "%s", target);
    snprintf(reason, sizeof reason, "%s", vlt_error_message());
    bool alt = ck_newest_valid(ck, have_target ? target : NULL, other, sizeof other);
    char offer[PATH_MAX + 96];
    if (alt) snprintf(offer, sizeof offer, "the newest valid checkpoint is '%s': resume from it explicitly", other);
    else snprintf(offer, sizeof offer, "there is no valid checkpoint in '%s'", ck);
    if (have_target)
        return vlt_error_set(VLT_ERR_FORMAT, "checkpoint: '%s/latest' names '%s', which is not a valid checkpoint (%s); "
                             "not falling back on my own: %s", ck, target, reason, offer);
    return vlt_error_set(s, "checkpoint: cannot follow 'latest' (%s); %s", reason, offer);
}

vlt_status vlt_checkpoint_resolve(const char *run_dir, const char *which, char *out_dir, size_t cap) {
    if (!out_dir || cap < 64) return vlt_error_set(VLT_ERR_ARG, "checkpoint resolve: output buffer too small");
    out_dir[0] = '\0';
    if (!which || !strcmp(which, "latest")) {
        if (!run_dir || !run_dir[0]) return vlt_error_set(VLT_ERR_ARG, "checkpoint resolve: 'latest' needs a run directory");
        return ck_resolve_latest(run_dir, out_dir, cap);
    }
    char p[PATH_MAX];
    if (ck_is_dir(which)) {
        VLT_TRY(ck_path(p, sizeof p, "%s/checkpoints", which));
        char m[PATH_MAX];
        VLT_TRY(ck_path(m, sizeof m, "%s/" CK_MODEL, which));
        struct stat st;
        if (stat(m, &st) != 0 && ck_is_dir(p)) return ck_resolve_latest(which, out_dir, cap);   // a run directory
        VLT_TRY(ck_path(p, sizeof p, "%s", which));
    } else if (run_dir && run_dir[0] && ck_step_of_name(which) >= 0) {
        VLT_TRY(ck_path(p, sizeof p, "%s/checkpoints/%s", run_dir, which));
    } else {
        return vlt_error_set(VLT_ERR_IO, "checkpoint: '%s' is not a directory (expected \"latest\", a checkpoint "
                             "directory, a run directory or a step_XXXXXXXX name)", which);
    }
    VLT_TRY(vlt_checkpoint_validate(p, NULL));
    return ck_path(out_dir, cap, "%s", p);
}
