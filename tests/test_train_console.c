// test_train_console.c — the training console as users see it: on a terminal the progress line is
// redrawn in place (\r, ESC[K); a rank under mpirun (whose stdout is Open MPI's pseudo-terminal,
// forwarded to wherever mpirun's output goes) prints plain lines with no control characters; an
// event printed during a live line gets a line of its own instead of being glued onto it.
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "train/metrics_log.h"

static char g_dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-console-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static vlt_step_metrics record(int64_t step) {
    vlt_step_metrics m = {.step = step, .epoch = 0.1 * (double)step, .loss = 2.5, .lr = 1e-3, .logit_scale = 14.3,
                          .images_per_s = 100, .time_s = (double)step};
    return m;
}

// Logs `steps` records with the console on `out` in `mode`; returns what a reader of the pty
// master (fd >= 0) received, or NULL.
static void log_steps(FILE *out, vlt_console_mode mode, int steps, const char *sub) {
    char run[128];
    snprintf(run, sizeof run, "%s/%s", g_dir, sub);
    vlt_metrics_log *log;
    assert_int_equal(vlt_metrics_log_open(&log, run, steps, false), VLT_OK);
    vlt_metrics_log_set_console(log, out, mode, 1);
    for (int s = 1; s <= steps; s++) {
        vlt_step_metrics m = record(s);
        assert_int_equal(vlt_metrics_log_step(log, &m), VLT_OK);
    }
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
}

static char *read_master(int master) {
    static char buf[1 << 16];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof buf - 1 && (got = read(master, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)got;
    buf[n] = 0;
    return buf;
}

// A pseudo-terminal pair: the slave as a FILE* (what the process writes to), the master
// non-blocking (what the terminal, or mpirun's forwarding, reads).
static FILE *open_pty(int *master) {
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(*master >= 0);
    assert_int_equal(grantpt(*master), 0);
    assert_int_equal(unlockpt(*master), 0);
    int slave = open(ptsname(*master), O_RDWR | O_NOCTTY);
    assert_true(slave >= 0);
    assert_true(isatty(slave));
    fcntl(*master, F_SETFL, O_NONBLOCK);
    FILE *f = fdopen(slave, "w");
    assert_non_null(f);
    return f;
}

static void test_terminal_is_live_mpirun_rank_is_plain(void **state) {
    (void)state;
    setenv("TERM", "xterm", 1);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    unsetenv("PMI_SIZE");
    int master;
    FILE *tty = open_pty(&master);
    log_steps(tty, VLT_CONSOLE_AUTO, 3, "live");
    fflush(tty);
    char *seen = read_master(master);
    assert_non_null(strchr(seen, '\r'));
    assert_non_null(strstr(seen, "\033[K"));   // a terminal: redrawn in place
    // The same pseudo-terminal, but as a rank launched by mpirun: plain lines only.
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    log_steps(tty, VLT_CONSOLE_AUTO, 3, "rank");
    fflush(tty);
    seen = read_master(master);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    assert_non_null(strstr(seen, "step 3/3"));
    assert_null(strstr(seen, "\033"));
    // (the pty turns \n into \r\n itself; no \r may come before a line's text)
    for (char *p = strchr(seen, '\r'); p; p = strchr(p + 1, '\r')) assert_int_equal(p[1], '\n');
    int lines = 0;
    for (char *p = seen; (p = strstr(p, "step ")); p++) lines++;
    assert_int_equal(lines, 3);   // one line per logged step (log every 1)
    fclose(tty);
    close(master);
}

// A file (not a terminal) gets plain lines; an event between steps is a line of its own.
static void test_file_is_plain(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    log_steps(f, VLT_CONSOLE_AUTO, 4, "file");
    rewind(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    assert_null(strchr(buf, '\r'));
    assert_null(strchr(buf, '\033'));
    assert_non_null(strstr(buf, "step 4/4"));
    fclose(f);
}

static void test_event_during_live_line_gets_its_own_line(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    char run[128];
    snprintf(run, sizeof run, "%s/event", g_dir);
    vlt_metrics_log *log;
    assert_int_equal(vlt_metrics_log_open(&log, run, 10, false), VLT_OK);
    vlt_metrics_log_set_console(log, f, VLT_CONSOLE_LIVE, 1);
    vlt_step_metrics m = record(1);
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_OK);
    vlt_metrics_log_break(log);
    fprintf(f, "checkpoint: step 1 saved\n");
    m = record(2);
    assert_int_equal(vlt_metrics_log_step(log, &m), VLT_OK);
    vlt_metrics_log_break(log);   // a second break with nothing drawn in between adds nothing
    vlt_metrics_log_break(log);
    assert_int_equal(vlt_metrics_log_close(log), VLT_OK);
    rewind(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    // The live line of step 1 is cleared before the event: the event starts a screen line.
    char *ev = strstr(buf, "checkpoint: step 1 saved\n");
    assert_non_null(ev);
    assert_true(ev - buf >= 4);
    assert_memory_equal(ev - 4, "\r\033[K", 4);
    assert_non_null(strstr(ev, "step  2/10"));   // the live line resumes below it
    fclose(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terminal_is_live_mpirun_rank_is_plain),
        cmocka_unit_test(test_file_is_plain),
        cmocka_unit_test(test_event_during_live_line_gets_its_own_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
