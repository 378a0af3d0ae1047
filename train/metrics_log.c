// metrics_log.c — one logged step to metrics.jsonl, TensorBoard and the console (see the header).
#include "train/metrics_log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "train/tfevents.h"

struct vlt_metrics_log {
    char *jsonl_path;
    FILE *jsonl;
    vlt_tfevents *tb;  // NULL without TensorBoard
    int64_t total_steps;
    // console
    FILE *out;
    vlt_console_mode mode;  // resolved: LIVE, PLAIN or OFF
    int64_t plain_every;
    int64_t last_plain_step;  // INT64_MIN before the first plain line
    double last_draw;         // monotonic seconds of the last live redraw
    bool live_drawn;          // a live line is on screen (ended by a newline before other output)
    // ETA: the first record this process logged
    bool have_first;
    int64_t first_step;
    double first_time;
};

static double monotonic_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// --- names -------------------------------------------------------------------------------------

static bool part_name_ok(const char *s) {
    if (!s || !*s || strlen(s) > VLT_METRICS_MAX_NAME) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

// An extra is a TensorBoard tag with a group: printable, no spaces, at least one '/'.
static bool extra_name_ok(const char *s) {
    if (!s || !*s || strlen(s) > VLT_METRICS_MAX_NAME || !strchr(s, '/')) return false;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 0x7f || *s == '"' || *s == '\\') return false;
    return true;
}

static vlt_status check_record(const vlt_step_metrics *m) {
    if (m->n_parts < 0 || m->n_parts > VLT_METRICS_MAX_PARTS)
        return vlt_error_set(VLT_ERR_ARG, "metrics_log: n_parts %d is outside 0..%d", m->n_parts, VLT_METRICS_MAX_PARTS);
    if (m->n_extra < 0 || m->n_extra > VLT_METRICS_MAX_EXTRA)
        return vlt_error_set(VLT_ERR_ARG, "metrics_log: n_extra %d is outside 0..%d", m->n_extra, VLT_METRICS_MAX_EXTRA);
    for (int i = 0; i < m->n_parts; i++) {
        if (!part_name_ok(m->parts[i].name))
            return vlt_error_set(VLT_ERR_ARG, "metrics_log: loss part name '%.64s' is not [A-Za-z0-9_]+ (at most %d bytes)",
                                 m->parts[i].name ? m->parts[i].name : "(null)", VLT_METRICS_MAX_NAME);
        for (int j = 0; j < i; j++)
            if (!strcmp(m->parts[i].name, m->parts[j].name))
                return vlt_error_set(VLT_ERR_ARG, "metrics_log: loss part '%s' given twice", m->parts[i].name);
    }
    for (int i = 0; i < m->n_extra; i++) {
        if (!extra_name_ok(m->extra[i].name))
            return vlt_error_set(VLT_ERR_ARG,
                                 "metrics_log: extra scalar name '%.64s' must be printable, without spaces or quotes, "
                                 "hold a '/' (\"val/recall@1\") and be at most %d bytes",
                                 m->extra[i].name ? m->extra[i].name : "(null)", VLT_METRICS_MAX_NAME);
        for (int j = 0; j < i; j++)
            if (!strcmp(m->extra[i].name, m->extra[j].name))
                return vlt_error_set(VLT_ERR_ARG, "metrics_log: extra scalar '%s' given twice", m->extra[i].name);
    }
    return VLT_OK;
}

// --- metrics.jsonl -----------------------------------------------------------------------------

static void json_num(cJSON *o, const char *key, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *record_json(const vlt_step_metrics *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char key[VLT_METRICS_MAX_NAME + 8];
    cJSON_AddNumberToObject(o, "step", (double)m->step);
    json_num(o, "epoch", m->epoch);
    if (!m->extras_only) {
        json_num(o, "loss", m->loss);
        for (int i = 0; i < m->n_parts; i++) {
            snprintf(key, sizeof key, "loss_%s", m->parts[i].name);
            json_num(o, key, m->parts[i].value);
        }
        json_num(o, "lr", m->lr);
        json_num(o, "logit_scale", m->logit_scale);
        json_num(o, "images_per_s", m->images_per_s);
        json_num(o, "data_wait", m->data_wait);
    }
    json_num(o, "time", m->time_s);
    json_num(o, "wall_time", wall_now());
    for (int i = 0; i < m->n_extra; i++) json_num(o, m->extra[i].name, m->extra[i].value);
    return o;
}

static vlt_status write_jsonl(vlt_metrics_log *log, const vlt_step_metrics *m) {
    cJSON *o = record_json(m);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) return vlt_error_set(VLT_ERR_NOMEM, "metrics_log: out of memory building a jsonl line");
    int bad = fputs(text, log->jsonl) < 0 || fputc('\n', log->jsonl) == EOF || fflush(log->jsonl) != 0;
    free(text);
    if (bad) return vlt_error_set(VLT_ERR_IO, "metrics_log: cannot write %s: %s", log->jsonl_path, strerror(errno));
    return VLT_OK;
}

// --- TensorBoard -------------------------------------------------------------------------------

static vlt_status write_tensorboard(vlt_metrics_log *log, const vlt_step_metrics *m) {
    vlt_tfevents *tb = log->tb;
    char tag[VLT_METRICS_MAX_NAME + 16];
    if (!m->extras_only) {
        VLT_TRY(vlt_tfevents_add_scalar(tb, "train/loss", m->step, (float)m->loss));
        for (int i = 0; i < m->n_parts; i++) {
            snprintf(tag, sizeof tag, "train/loss_%s", m->parts[i].name);
            VLT_TRY(vlt_tfevents_add_scalar(tb, tag, m->step, (float)m->parts[i].value));
        }
        VLT_TRY(vlt_tfevents_add_scalar(tb, "train/lr", m->step, (float)m->lr));
        VLT_TRY(vlt_tfevents_add_scalar(tb, "train/logit_scale", m->step, (float)m->logit_scale));
        VLT_TRY(vlt_tfevents_add_scalar(tb, "train/images_per_s", m->step, (float)m->images_per_s));
        VLT_TRY(vlt_tfevents_add_scalar(tb, "train/data_wait", m->step, (float)m->data_wait));
    }
    for (int i = 0; i < m->n_extra; i++)
        VLT_TRY(vlt_tfevents_add_scalar(tb, m->extra[i].name, m->step, (float)m->extra[i].value));
    return vlt_tfevents_flush(tb);
}

// --- console -----------------------------------------------------------------------------------

static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
    if (*len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0) *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

static int digits(int64_t v) {
    int d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

void vlt_metrics_log_format(char *buf, size_t cap, const vlt_step_metrics *m, int64_t total_steps,
                            double eta_s) {
    size_t len = 0;
    if (cap == 0) return;
    buf[0] = '\0';
    appendf(buf, cap, &len, "step %*lld/%lld", digits(total_steps), (long long)m->step, (long long)total_steps);
    if (!m->extras_only) {
        appendf(buf, cap, &len, "  loss %.4f", m->loss);
        for (int i = 0; i < m->n_parts; i++)
            appendf(buf, cap, &len, "%s%s %.4f", i ? " " : " (", m->parts[i].name, m->parts[i].value);
        if (m->n_parts > 0) appendf(buf, cap, &len, ")");
        appendf(buf, cap, &len, "  lr %.2e  scale %.2f  %.1f img/s  data %.1f%%", m->lr, m->logit_scale,
                m->images_per_s, 100.0 * m->data_wait);
        if (eta_s >= 0 && eta_s < 1e9) {
            long long s = llround(eta_s);
            appendf(buf, cap, &len, "  ETA %lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
        } else {
            appendf(buf, cap, &len, "  ETA -:--:--");
        }
    }
    for (int i = 0; i < m->n_extra; i++) appendf(buf, cap, &len, "  %s %.4f", m->extra[i].name, m->extra[i].value);
}

// Seconds left, from the rate since the first record of this process; -1 when not known yet.
static double eta_seconds(vlt_metrics_log *log, const vlt_step_metrics *m) {
    if (!log->have_first) {
        log->have_first = true;
        log->first_step = m->step;
        log->first_time = m->time_s;
        return -1;
    }
    int64_t done = m->step - log->first_step;
    double spent = m->time_s - log->first_time;
    if (done <= 0 || !(spent > 0)) return -1;
    int64_t left = log->total_steps > m->step ? log->total_steps - m->step : 0;
    return spent / (double)done * (double)left;
}

static int terminal_width(FILE *f) {
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 0;
}

static void write_console(vlt_metrics_log *log, const vlt_step_metrics *m) {
    if (log->mode == VLT_CONSOLE_OFF) return;
    double eta = eta_seconds(log, m);
    bool last = m->step >= log->total_steps;
    bool line_of_its_own = m->n_extra > 0;
    char text[2048];
    if (log->mode == VLT_CONSOLE_PLAIN) {
        bool due = log->last_plain_step == INT64_MIN || m->step - log->last_plain_step >= log->plain_every;
        if (!(due || last || line_of_its_own)) return;
        vlt_metrics_log_format(text, sizeof text, m, log->total_steps, eta);
        fprintf(log->out, "%s\n", text);
        if (due && !m->extras_only) log->last_plain_step = m->step;  // extras keep the cadence
    } else if (line_of_its_own) {  // LIVE: a permanent line, then the live line resumes below it
        vlt_metrics_log_format(text, sizeof text, m, log->total_steps, eta);
        fprintf(log->out, "\r%s\033[K\n", text);
        log->live_drawn = false;
    } else {
        double now = monotonic_now();
        if (log->live_drawn && now - log->last_draw < 0.1 && !last) return;
        vlt_metrics_log_format(text, sizeof text, m, log->total_steps, eta);
        int width = terminal_width(log->out);
        if (width > 1 && strlen(text) >= (size_t)width) text[width - 1] = '\0';  // never wrap
        fprintf(log->out, "\r%s\033[K", text);
        log->live_drawn = true;
        log->last_draw = now;
    }
    fflush(log->out);
}

// Under mpirun a rank's stdout is a pseudo-terminal that Open MPI forwards to wherever mpirun's
// output goes (often a log file), so isatty() says nothing there: a launched rank prints plain lines.
static bool under_launcher(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}

static vlt_console_mode resolve_mode(FILE *out, vlt_console_mode mode) {
    if (mode != VLT_CONSOLE_AUTO) return mode;
    const char *term = getenv("TERM");
    if (isatty(fileno(out)) && !(term && !strcmp(term, "dumb")) && !under_launcher()) return VLT_CONSOLE_LIVE;
    return VLT_CONSOLE_PLAIN;
}

void vlt_metrics_log_break(vlt_metrics_log *log) {
    if (!log || log->mode != VLT_CONSOLE_LIVE || !log->live_drawn) return;
    fputs("\r\033[K", log->out);   // the next step redraws the live line below the event
    fflush(log->out);
    log->live_drawn = false;
}

// --- open / step / close -----------------------------------------------------------------------

static vlt_status make_dir(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return VLT_OK;
        return vlt_error_set(VLT_ERR_IO, "metrics_log: %s exists and is not a directory", path);
    }
    return vlt_error_set(VLT_ERR_IO, "metrics_log: cannot create directory %s: %s", path, strerror(errno));
}

static vlt_status open_files(vlt_metrics_log *log, const char *run_dir, bool use_tensorboard) {
    VLT_TRY(make_dir(run_dir));
    size_t cap = strlen(run_dir) + 32;
    log->jsonl_path = malloc(cap);
    char *tb_dir = malloc(cap);
    if (!log->jsonl_path || !tb_dir) {
        free(tb_dir);
        return vlt_error_set(VLT_ERR_NOMEM, "metrics_log: out of memory");
    }
    snprintf(log->jsonl_path, cap, "%s/metrics.jsonl", run_dir);
    snprintf(tb_dir, cap, "%s/tensorboard", run_dir);
    vlt_status s = VLT_OK;
    log->jsonl = fopen(log->jsonl_path, "a");
    if (!log->jsonl)
        s = vlt_error_set(VLT_ERR_IO, "metrics_log: cannot open %s: %s", log->jsonl_path, strerror(errno));
    if (s == VLT_OK && use_tensorboard) s = make_dir(tb_dir);
    if (s == VLT_OK && use_tensorboard) s = vlt_tfevents_open(&log->tb, tb_dir);
    free(tb_dir);
    return s;
}

// --- resume: the steps a stopped run logged after its checkpoint are dropped ----------------------

static vlt_status fsync_dir_of(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vlt_error_set(VLT_ERR_IO, "metrics_log: cannot open %s: %s", dir, strerror(errno));
    int r = fsync(fd);
    close(fd);
    return r == 0 ? VLT_OK : vlt_error_set(VLT_ERR_IO, "metrics_log: cannot fsync %s: %s", dir, strerror(errno));
}

vlt_status vlt_metrics_log_drop_after(const char *path, int64_t step, int64_t *dropped) {
    *dropped = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? VLT_OK : vlt_error_set(VLT_ERR_IO, "metrics_log: cannot read %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[65536];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, mem);
    bool bad = ferror(f) || !mem;
    fclose(f);
    if (mem) fclose(mem);
    if (bad) {
        free(text);
        return vlt_error_set(VLT_ERR_IO, "metrics_log: cannot read %s", path);
    }
    // Keep every whole line but those of a step past `step`; a last line without its newline is
    // a write cut short by the stop and goes too. Lines that do not parse are kept as they are.
    char *keep = malloc(len + 1);
    size_t k = 0;
    if (!keep) {
        free(text);
        return vlt_error_set(VLT_ERR_NOMEM, "metrics_log: out of memory");
    }
    for (size_t i = 0; i < len;) {
        char *nl = memchr(text + i, '\n', len - i);
        if (!nl) {
            (*dropped)++;
            break;
        }
        size_t end = (size_t)(nl - text) + 1;
        *nl = '\0';
        cJSON *o = cJSON_Parse(text + i);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
        bool late = cJSON_IsNumber(st) && st->valuedouble > (double)step;
        cJSON_Delete(o);
        *nl = '\n';
        if (late) (*dropped)++;
        else {
            memcpy(keep + k, text + i, end - i);
            k += end - i;
        }
        i = end;
    }
    free(text);
    vlt_status s = VLT_OK;
    if (*dropped) {
        // Written aside and renamed over: a crash leaves the old file or the new one, whole.
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
        FILE *o = fopen(tmp, "wb");
        bool ok = o && fwrite(keep, 1, k, o) == k && fflush(o) == 0 && fsync(fileno(o)) == 0;
        if (o) ok &= fclose(o) == 0;
        if (!ok || rename(tmp, path) != 0) {
            s = vlt_error_set(VLT_ERR_IO, "metrics_log: cannot rewrite %s: %s", path, strerror(errno));
            unlink(tmp);
        } else {
            s = fsync_dir_of(path);
        }
    }
    free(keep);
    return s;
}

vlt_status vlt_metrics_log_open_resumed(vlt_metrics_log **out, const char *run_dir, int64_t total_steps,
                                        bool use_tensorboard, int64_t resume_step, int64_t *dropped) {
    *dropped = 0;
    if (!out || !run_dir || !*run_dir) return vlt_metrics_log_open(out, run_dir, total_steps, use_tensorboard);
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    VLT_TRY(vlt_metrics_log_drop_after(path, resume_step, dropped));
    VLT_TRY(vlt_metrics_log_open(out, run_dir, total_steps, use_tensorboard));
    vlt_status s = (*out)->tb ? vlt_tfevents_add_session_start((*out)->tb, resume_step + 1) : VLT_OK;
    if (s != VLT_OK) {
        vlt_metrics_log_close(*out);
        *out = NULL;
    }
    return s;
}

vlt_status vlt_metrics_log_open(vlt_metrics_log **out, const char *run_dir, int64_t total_steps,
                                bool use_tensorboard) {
    if (!out || !run_dir || !*run_dir)
        return vlt_error_set(VLT_ERR_ARG, "metrics_log_open: %s", out ? "empty run directory" : "NULL out");
    *out = NULL;
    if (total_steps <= 0)
        return vlt_error_set(VLT_ERR_ARG, "metrics_log_open: total_steps is %lld, must be > 0", (long long)total_steps);
    vlt_metrics_log *log = calloc(1, sizeof *log);
    if (!log) return vlt_error_set(VLT_ERR_NOMEM, "metrics_log: out of memory");
    log->total_steps = total_steps;
    log->last_plain_step = INT64_MIN;
    vlt_metrics_log_set_console(log, stdout, VLT_CONSOLE_AUTO, 0);
    int64_t every = total_steps / 100;
    log->plain_every = every < 1 ? 1 : every > 100 ? 100 : every;
    vlt_status s = open_files(log, run_dir, use_tensorboard);
    if (s != VLT_OK) {
        if (log->jsonl) fclose(log->jsonl);
        free(log->jsonl_path);
        free(log);
        return s;
    }
    *out = log;
    return VLT_OK;
}

void vlt_metrics_log_set_console(vlt_metrics_log *log, FILE *stream, vlt_console_mode mode,
                                 int64_t plain_every) {
    if (!log) return;
    if (stream) log->out = stream;
    log->mode = resolve_mode(log->out, mode);
    if (plain_every > 0) log->plain_every = plain_every;
}

vlt_status vlt_metrics_log_step(vlt_metrics_log *log, const vlt_step_metrics *m) {
    if (!log || !m) return vlt_error_set(VLT_ERR_ARG, "metrics_log_step: NULL %s", log ? "record" : "log");
    VLT_TRY(check_record(m));
    VLT_TRY(write_jsonl(log, m));
    if (log->tb) VLT_TRY(write_tensorboard(log, m));
    write_console(log, m);
    return VLT_OK;
}

vlt_status vlt_metrics_log_close(vlt_metrics_log *log) {
    if (!log) return VLT_OK;
    if (log->mode == VLT_CONSOLE_LIVE && log->live_drawn) {
        fputc('\n', log->out);
        fflush(log->out);
    }
    vlt_status s = VLT_OK;
    if (fflush(log->jsonl) != 0 || fsync(fileno(log->jsonl)) != 0)
        s = vlt_error_set(VLT_ERR_IO, "metrics_log: cannot flush %s: %s", log->jsonl_path, strerror(errno));
    if (fclose(log->jsonl) != 0 && s == VLT_OK)
        s = vlt_error_set(VLT_ERR_IO, "metrics_log: cannot close %s: %s", log->jsonl_path, strerror(errno));
    vlt_status t = vlt_tfevents_close(log->tb);
    if (s == VLT_OK) s = t;
    free(log->jsonl_path);
    free(log);
    return s;
}
