// test_train_metrics_log.c — metrics.jsonl lines (parsed with cJSON), the TensorBoard sink's
// records, the console text (plain lines off a terminal, a \r-redrawn line on one: a pty), and
// refusals of bad input. With VLT_METRICS_LOG_OUT_DIR set, the run directory of
// test_run_for_tensorboard is left there for scripts/reference/check_tfevents.py.
#include <cjson/cJSON.h>
#include <math.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "train/metrics_log.h"
#include "train/tfevents.h"

static char *make_tmp_dir(void) {
    char *d = strdup("/tmp/vlt_test_metrics_XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void remove_tree(const char *path) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

// The whole of a FILE's contents so far (rewinds it; for tmpfile() streams).
static char *slurp_stream(FILE *f) {
    fflush(f);
    long n = ftell(f);
    char *s = calloc(1, (size_t)n + 1);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    return s;
}

static char *slurp_path(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    char *s = slurp_stream(f);
    fclose(f);
    return s;
}

// Splits jsonl text into parsed objects; returns the count.
static int parse_jsonl(char *text, cJSON **rows, int cap) {
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        assert_true(n < cap);
        rows[n] = cJSON_Parse(line);
        assert_non_null(rows[n]);
        n++;
    }
    return n;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("key '%s' is not a number", key);
    return v->valuedouble;
}

static vlt_step_metrics record(int64_t step) {
    vlt_step_metrics m = {0};
    m.step = step;
    m.epoch = 0.01 * (double)step;
    m.loss = 5.0 / (double)(step + 1);
    m.n_parts = 2;
    m.parts[0] = (vlt_named_scalar){"contrastive", 0.75 * m.loss};
    m.parts[1] = (vlt_named_scalar){"caption", 0.25 * m.loss};
    m.lr = 1e-4 * (double)step;
    m.logit_scale = 14.285714 + 0.5 * (double)step;
    m.images_per_s = 100.0 + (double)step;
    m.data_wait = 0.03;
    m.time_s = 0.5 * (double)step;
    return m;
}

static char *jsonl_path(const char *dir) {
    char *p = malloc(strlen(dir) + 32);
    sprintf(p, "%s/metrics.jsonl", dir);
    return p;
}

static void test_jsonl_lines(void **state) {
    (void)state;
    char *dir = make_tmp_dir();
    char run[512];
    snprintf(run, sizeof run, "%s/run", dir);  // open creates it
    vlt_metrics_log *log = NULL;
    assert_int_equal(vlt_metrics_log_open(&log, run, 100, false), VLT_OK);
    vlt_metrics_log_set_console(log, NULL, VLT_CONSOLE_OFF, 0);
    vlt_step_metrics a = record(1);
    assert_int_equal(vlt_metrics_log_step(log, &a), VLT_OK);
    vlt_step_metrics b = record(2);
    b.loss = NAN;
    b.n_extra = 2;
    b.extra[0] = (vlt_named_scalar){"val/recall@1", 0.625};
    b.extra[1] = (vlt_named_scalar){"val/cider", 1.25};
    assert_int_equal(vlt_metrics_log_step(log, &b), VLT_OK);
    vlt_step_metrics c = {.step = 2, .epoch = 0.02, .time_s = 9.5, .extras_only = true, .n_extra = 1};
    c.extra[0] = (vlt_named_scalar){"val/bleu4", 0.125};
    assert_int_equal(vlt_metrics_log_step(log, &c), VLT_OK);
    // Written and flushed before close: readable while the run goes on.
    char *path = jsonl_path(run);
    char *text = slurp_path(path);
    cJSON *rows[8];
    assert_int_equal(parse_jsonl(text, rows, 8), 3);
    assert_int_equal((int)num(rows[0], "step"), 1);
    assert_true(num(rows[0], "epoch") == 0.01);
    assert_true(num(rows[0], "loss") == 2.5);
    assert_true(num(rows[0], "loss_contrastive") == 0.75 * 2.5);
    assert_true(num(rows[0], "loss_caption") == 0.25 * 2.5);
    assert_true(num(rows[0], "lr") == 1e-4);
    assert_true(num(rows[0], "logit_scale") == 14.785714);
    assert_true(num(rows[0], "images_per_s") == 101.0);
    assert_true(num(rows[0], "data_wait") == 0.03);
    assert_true(num(rows[0], "time") == 0.5);
    assert_true(fabs(num(rows[0], "wall_time") - (double)time(NULL)) < 60);
    assert_int_equal(cJSON_GetArraySize(rows[0]), 11);
    // NaN loss is null; the extras sit next to the training values.
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rows[1], "loss")));
    assert_true(num(rows[1], "val/recall@1") == 0.625);
    assert_true(num(rows[1], "val/cider") == 1.25);
    assert_int_equal(cJSON_GetArraySize(rows[1]), 13);
    // An eval-only record: step, epoch, time, wall_time and its extras, nothing else.
    assert_int_equal(cJSON_GetArraySize(rows[2]), 5);
    assert_true(num(rows[2], "val/bleu4") == 0.125);
    assert_true(num(rows[2], "time") == 9.5);
    assert_null(cJSON_GetObjectItemCaseSensitive(rows[2], "loss"));
    for (int i = 0; i < 3; i++) cJSON_Delete(rows[i]);
    free(text);
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);

    // A resumed run appends to the same file.
    assert_int_equal(vlt_metrics_log_open(&log, run, 100, false), VLT_OK);
    vlt_metrics_log_set_console(log, NULL, VLT_CONSOLE_OFF, 0);
    vlt_step_metrics d = record(3);
    assert_int_equal(vlt_metrics_log_step(log, &d), VLT_OK);
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
    text = slurp_path(path);
    assert_int_equal(parse_jsonl(text, rows, 8), 4);
    assert_int_equal((int)num(rows[3], "step"), 3);
    for (int i = 0; i < 4; i++) cJSON_Delete(rows[i]);
    free(text);
    // No tensorboard directory was asked for.
    char tb[600];
    snprintf(tb, sizeof tb, "%s/tensorboard", run);
    struct stat st;
    assert_int_not_equal(stat(tb, &st), 0);
    free(path);
    remove_tree(dir);
    free(dir);
}

static void test_format(void **state) {
    (void)state;
    vlt_step_metrics m = {.step = 120, .loss = 2.34564, .n_parts = 2, .lr = 3e-4, .logit_scale = 14.2857,
                          .images_per_s = 812.34, .data_wait = 0.031};
    m.parts[0] = (vlt_named_scalar){"contrastive", 2.1};
    m.parts[1] = (vlt_named_scalar){"caption", 0.24564};
    char buf[512];
    vlt_metrics_log_format(buf, sizeof buf, &m, 1000, 754.4);
    assert_string_equal(buf, "step  120/1000  loss 2.3456 (contrastive 2.1000 caption 0.2456)  lr 3.00e-04  "
                             "scale 14.29  812.3 img/s  data 3.1%  ETA 0:12:34");
    m.n_parts = 0;
    m.n_extra = 1;
    m.extra[0] = (vlt_named_scalar){"val/recall@1", 0.53};
    vlt_metrics_log_format(buf, sizeof buf, &m, 1000, 100 * 3600.0 + 61);
    assert_string_equal(buf, "step  120/1000  loss 2.3456  lr 3.00e-04  scale 14.29  812.3 img/s  data 3.1%  "
                             "ETA 100:01:01  val/recall@1 0.5300");
    m.extras_only = true;
    vlt_metrics_log_format(buf, sizeof buf, &m, 1000, -1);
    assert_string_equal(buf, "step  120/1000  val/recall@1 0.5300");
    m.extras_only = false;
    m.n_extra = 0;
    vlt_metrics_log_format(buf, sizeof buf, &m, 1000, -1);
    assert_non_null(strstr(buf, "ETA -:--:--"));
    vlt_metrics_log_format(buf, 12, &m, 1000, -1);  // truncated, still terminated
    assert_string_equal(buf, "step  120/1");
}

// Off a terminal (AUTO on a regular file): plain lines every N steps, the last step, and any
// record with extras; no \r, no escape sequences.
static void test_plain_lines(void **state) {
    (void)state;
    char *dir = make_tmp_dir();
    FILE *out = tmpfile();
    vlt_metrics_log *log = NULL;
    assert_int_equal(vlt_metrics_log_open(&log, dir, 20, false), VLT_OK);
    vlt_metrics_log_set_console(log, out, VLT_CONSOLE_AUTO, 5);
    for (int s = 1; s <= 20; s++) {
        vlt_step_metrics m = record(s);
        if (s == 8) {
            m.n_extra = 1;
            m.extra[0] = (vlt_named_scalar){"val/recall@1", 0.5};
        }
        assert_int_equal(vlt_metrics_log_step(log, &m), VLT_OK);
    }
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
    char *text = slurp_stream(out);
    fclose(out);
    assert_null(strchr(text, '\r'));
    assert_null(strchr(text, '\033'));
    const int want_steps[] = {1, 6, 8, 11, 16, 20};
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), n++) {
        assert_true(n < 6);
        char head[32];
        snprintf(head, sizeof head, "step %2d/20  loss ", want_steps[n]);
        assert_memory_equal(line, head, strlen(head));
        if (want_steps[n] == 8) assert_non_null(strstr(line, "val/recall@1 0.5000"));
        if (n == 0) assert_non_null(strstr(line, "ETA -:--:--"));
        // 0.5 s per step from the first record: (20 - s) steps left.
        if (n > 0) {
            char eta[32];
            int left = (20 - want_steps[n] + 1) / 2;  // 0.5 s * steps left, rounded half up
            snprintf(eta, sizeof eta, "ETA 0:00:%02d", left);
            assert_non_null(strstr(line, eta));
        }
    }
    assert_int_equal(n, 6);
    free(text);
    remove_tree(dir);
    free(dir);
}

// On a terminal (a pty, AUTO): \r redraws with clear-to-end-of-line, throttled, the last step
// always drawn, a newline at close; an extras record is a line of its own.
static void test_live_line_on_tty(void **state) {
    (void)state;
    int master, slave;
    if (openpty(&master, &slave, NULL, NULL, NULL) != 0) skip();
    setenv("TERM", "xterm", 1);
    FILE *tty = fdopen(slave, "w");
    assert_non_null(tty);
    char *dir = make_tmp_dir();
    vlt_metrics_log *log = NULL;
    assert_int_equal(vlt_metrics_log_open(&log, dir, 50, false), VLT_OK);
    vlt_metrics_log_set_console(log, tty, VLT_CONSOLE_AUTO, 0);
    for (int s = 1; s <= 50; s++) {
        vlt_step_metrics m = record(s);
        if (s == 25) {
            m.extras_only = true;
            m.n_extra = 1;
            m.extra[0] = (vlt_named_scalar){"val/cider", 0.75};
        }
        assert_int_equal(vlt_metrics_log_step(log, &m), VLT_OK);
    }
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
    fclose(tty);
    char buf[16384];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(master, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
    buf[len] = '\0';
    close(master);
    // The pty turns \n into \r\n on output.
    assert_memory_equal(buf, "\rstep  1/50  loss ", 18);
    assert_non_null(strstr(buf, "\033[K"));
    assert_non_null(strstr(buf, "\rstep 25/50  val/cider 0.7500\033[K\r\n"));
    const char *last = strstr(buf, "\rstep 50/50  loss ");
    assert_non_null(last);
    assert_non_null(strstr(last, "ETA 0:00:00\033[K\r\n"));
    int draws = 0, newlines = 0;
    for (size_t i = 0; i < len; i++) {
        draws += buf[i] == '\r' && buf[i + 1] == 's';
        newlines += buf[i] == '\n';
    }
    assert_int_equal(newlines, 2);
    assert_true(draws >= 3 && draws < 50);  // throttled to 10 Hz: these steps take microseconds
    remove_tree(dir);
    free(dir);
}

// Counts the records of an event file, checking the length CRC of each.
static int count_records(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t head[12];
    int n = 0;
    while (fread(head, 1, 12, f) == 12) {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | head[i];
        uint32_t crc = (uint32_t)head[8] | (uint32_t)head[9] << 8 | (uint32_t)head[10] << 16 | (uint32_t)head[11] << 24;
        assert_int_equal(crc, vlt_tfevents_mask_crc(vlt_tfevents_crc32c(head, 8)));
        assert_int_equal(fseek(f, (long)len + 4, SEEK_CUR), 0);
        n++;
    }
    fclose(f);
    return n;
}

// A small run with every kind of record; its directory is what check_tfevents.py reads.
static void test_run_for_tensorboard(void **state) {
    (void)state;
    const char *keep = getenv("VLT_METRICS_LOG_OUT_DIR");
    char *dir = keep && *keep ? strdup(keep) : make_tmp_dir();
    vlt_metrics_log *log = NULL;
    assert_int_equal(vlt_metrics_log_open(&log, dir, 30, true), VLT_OK);
    vlt_metrics_log_set_console(log, NULL, VLT_CONSOLE_OFF, 0);
    int scalars = 0;
    for (int s = 1; s <= 30; s++) {
        vlt_step_metrics m = record(s);
        if (s == 7) m.loss = NAN;
        if (s % 10 == 0) {
            m.n_extra = 2;
            m.extra[0] = (vlt_named_scalar){"val/recall@1", 0.02 * s};
            m.extra[1] = (vlt_named_scalar){"val/cider", 0.1 * s};
        }
        assert_int_equal(vlt_metrics_log_step(log, &m), VLT_OK);
        scalars += 7 + m.n_extra;
        if (s == 15) {
            vlt_step_metrics e = {.step = 15, .epoch = 0.15, .time_s = 7.75, .extras_only = true, .n_extra = 1};
            e.extra[0] = (vlt_named_scalar){"val/bleu4", 0.2};
            assert_int_equal(vlt_metrics_log_step(log, &e), VLT_OK);
            scalars += 1;
        }
    }
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
    char tb[600];
    snprintf(tb, sizeof tb, "%s/tensorboard", dir);
    DIR *d = opendir(tb);
    assert_non_null(d);
    struct dirent *ent;
    int files = 0;
    while ((ent = readdir(d))) {
        if (strncmp(ent->d_name, "events.out.tfevents.", 20)) continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", tb, ent->d_name);
        assert_int_equal(count_records(path), 1 + scalars);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 1);
    if (!(keep && *keep)) remove_tree(dir);
    free(dir);
}

// Resuming at step 6 drops the lines past it (and a torn last line), keeps eval records and
// lines it cannot parse, rewrites nothing when nothing is past it.
static void test_drop_after(void **state) {
    (void)state;
    char *dir = make_tmp_dir();
    char *path = jsonl_path(dir);
    FILE *f = fopen(path, "w");
    for (int s = 1; s <= 9; s++) {
        fprintf(f, "{\"step\":%d,\"loss\":%d}\n", s, 100 + s);
        if (s == 5) fprintf(f, "{\"step\":5,\"val/recall@1\":0.5}\n");
        if (s == 3) fprintf(f, "not json, kept\n");
    }
    fprintf(f, "{\"step\":10,\"lo");   // cut short
    fclose(f);
    int64_t dropped = -1;
    assert_int_equal(vlt_metrics_log_drop_after(path, 6, &dropped), VLT_OK);
    assert_int_equal(dropped, 4);
    char *text = slurp_path(path);
    assert_string_equal(text, "{\"step\":1,\"loss\":101}\n{\"step\":2,\"loss\":102}\n{\"step\":3,\"loss\":103}\n"
                              "not json, kept\n{\"step\":4,\"loss\":104}\n{\"step\":5,\"loss\":105}\n"
                              "{\"step\":5,\"val/recall@1\":0.5}\n{\"step\":6,\"loss\":106}\n");
    free(text);
    struct stat a, b;
    assert_int_equal(stat(path, &a), 0);
    assert_int_equal(vlt_metrics_log_drop_after(path, 6, &dropped), VLT_OK);
    assert_int_equal(dropped, 0);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);   // not rewritten
    // no temporary left behind
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));) entries += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 1);
    char absent[600];
    snprintf(absent, sizeof absent, "%s/none.jsonl", dir);
    assert_int_equal(vlt_metrics_log_drop_after(absent, 6, &dropped), VLT_OK);
    free(path);
    remove_tree(dir);
    free(dir);
}

// A run that logged steps 1..10 and stopped after its checkpoint at step 6, resumed there and
// logging 7..12 with other values: metrics.jsonl holds 1..12 once each, the new values past 6; the
// new event file starts with a SessionLog START at step 7 (TensorBoard then shows what the jsonl
// holds: scripts/reference/check_tfevents.py on VLT_METRICS_LOG_RESUME_OUT_DIR).
static void test_resumed_run(void **state) {
    (void)state;
    const char *keep = getenv("VLT_METRICS_LOG_RESUME_OUT_DIR");
    char *dir = keep && *keep ? strdup(keep) : make_tmp_dir();
    vlt_metrics_log *log = NULL;
    assert_int_equal(vlt_metrics_log_open(&log, dir, 12, true), VLT_OK);
    vlt_metrics_log_set_console(log, NULL, VLT_CONSOLE_OFF, 0);
    for (int s = 1; s <= 10; s++) {
        vlt_step_metrics m = record(s);
        m.loss += 100;   // the stopped run's values
        assert_int_equal(vlt_metrics_log_step(log, &m), VLT_OK);
    }
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
    int64_t dropped = 0;
    assert_int_equal(vlt_metrics_log_open_resumed(&log, dir, 12, true, 6, &dropped), VLT_OK);
    assert_int_equal(dropped, 4);
    vlt_metrics_log_set_console(log, NULL, VLT_CONSOLE_OFF, 0);
    for (int s = 7; s <= 12; s++) {
        vlt_step_metrics m = record(s);
        assert_int_equal(vlt_metrics_log_step(log, &m), VLT_OK);
    }
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
    char *path = jsonl_path(dir);
    char *text = slurp_path(path);
    cJSON *rows[16];
    assert_int_equal(parse_jsonl(text, rows, 16), 12);
    for (int i = 0; i < 12; i++) {
        assert_int_equal((int)num(rows[i], "step"), i + 1);
        assert_true(num(rows[i], "loss") == 5.0 / (i + 2) + (i + 1 <= 6 ? 100 : 0));
        cJSON_Delete(rows[i]);
    }
    free(text);
    free(path);
    // two event files; the newer one's second record is the START at step 7
    char tb[600];
    snprintf(tb, sizeof tb, "%s/tensorboard", dir);
    DIR *d = opendir(tb);
    assert_non_null(d);
    char newest[300] = "";
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "events.out.tfevents.", 20)) continue;
        files++;
        if (strcmp(e->d_name, newest) > 0) snprintf(newest, sizeof newest, "%s", e->d_name);
    }
    closedir(d);
    assert_int_equal(files, 2);
    char ev[1000];
    snprintf(ev, sizeof ev, "%s/%s", tb, newest);
    FILE *f = fopen(ev, "rb");
    assert_non_null(f);
    uint8_t head[12], data[256];
    for (int r = 0; r < 2; r++) {
        assert_int_equal(fread(head, 1, 12, f), 12);
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | head[i];
        assert_true(len <= sizeof data);
        assert_int_equal(fread(data, 1, len + 4, f), len + 4);
        if (r == 1) {
            static const uint8_t start7[] = {0x10, 0x07, 0x3a, 0x02, 0x08, 0x01};   // step 7, SessionLog START
            assert_int_equal(len, 9 + sizeof start7);
            assert_memory_equal(data + 9, start7, sizeof start7);
        }
    }
    fclose(f);
    assert_int_equal(count_records(ev), 2 + 6 * 7);
    if (!(keep && *keep)) remove_tree(dir);
    free(dir);
}

static void test_refusals(void **state) {
    (void)state;
    char *dir = make_tmp_dir();
    vlt_metrics_log *log = (vlt_metrics_log *)1;
    assert_int_equal(vlt_metrics_log_open(&log, dir, 0, false), VLT_ERR_ARG);
    assert_null(log);
    assert_int_equal(vlt_metrics_log_open(&log, "/nonexistent/vlt/run", 10, true), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent/vlt/run"));
    assert_int_equal(vlt_metrics_log_open(&log, dir, 10, false), VLT_OK);
    vlt_metrics_log_set_console(log, NULL, VLT_CONSOLE_OFF, 0);
    vlt_step_metrics m = record(1);
    m.n_extra = 1;
    m.extra[0] = (vlt_named_scalar){"recall", 1.0};  // no group: would clash with train keys
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "'recall'"));
    m.extra[0] = (vlt_named_scalar){"val/has space", 1.0};
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_ERR_ARG);
    m.n_extra = 2;
    m.extra[0] = m.extra[1] = (vlt_named_scalar){"val/x", 1.0};
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_ERR_ARG);
    m.n_extra = VLT_METRICS_MAX_EXTRA + 1;
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_ERR_ARG);
    m.n_extra = 0;
    m.parts[1].name = "cap-tion";
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_ERR_ARG);
    m.parts[1].name = NULL;
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_ERR_ARG);
    m.n_parts = -1;
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_ERR_ARG);
    assert_int_equal(vlt_metrics_log_step(log, NULL), VLT_ERR_ARG);
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
    char *path = jsonl_path(dir);
    char *text = slurp_path(path);
    assert_string_equal(text, "");  // nothing refused was written
    free(text);
    free(path);
    assert_int_equal(vlt_metrics_log_close(NULL), VLT_OK);
    // A run directory that is a file.
    char file[600];
    snprintf(file, sizeof file, "%s/metrics.jsonl", dir);
    assert_int_equal(vlt_metrics_log_open(&log, file, 10, false), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "not a directory"));
    remove_tree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_lines),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_plain_lines),
        cmocka_unit_test(test_live_line_on_tty),
        cmocka_unit_test(test_run_for_tensorboard),
        cmocka_unit_test(test_drop_after),
        cmocka_unit_test(test_resumed_run),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
