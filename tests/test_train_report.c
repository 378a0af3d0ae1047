// `vlt report RUN` (train/report_cmd.c, eval/html.c): a run directory made by hand with known
// records becomes one self-contained page: a chart per family of scalars with one point per
// record that carries the value, nulls and torn lines handled, the config escaped, checkpoints
// listed, nothing fetched from elsewhere, and the page written whole or not at all.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "train/commands.h"

static char g_dir[64];

static void write_file(const char *rel, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return s;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

// The points of the polyline(s) drawn after the chart titled `title` and before the next chart.
static int points_in_chart(const char *html, const char *title) {
    char pat[128];
    snprintf(pat, sizeof pat, "font-weight:bold\">%s</text>", title);
    const char *c = strstr(html, pat);
    if (!c) return -1;
    const char *end = strstr(c, "</svg>");
    int pts = 0;
    for (const char *p = c; (p = strstr(p, "points=\"")) && p < end; p += 8)
        for (const char *q = p + 8; *q != '"'; q++) pts += *q == ',';
    return pts;
}

static int run_report(const char *a1, const char *a2, const char *a3) {
    char *argv[5] = {"report", (char *)a1, (char *)a2, (char *)a3, NULL};
    int argc = 1 + (a1 != NULL) + (a2 != NULL) + (a3 != NULL);
    return vlt_cmd_report(argc, argv);
}

static void test_report_of_a_run(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-report-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    char p[256];
    snprintf(p, sizeof p, "%s/checkpoints", g_dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/checkpoints/step_00000004", g_dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/checkpoints/step_00000008", g_dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/checkpoints/latest", g_dir);
    assert_int_equal(symlink("step_00000008", p), 0);
    // 8 training records (one loss null: a non-finite step), 2 eval records with three recalls, a
    // torn last line
    char jl[8192] = "";
    for (int s = 1; s <= 8; s++) {
        char line[512];
        snprintf(line, sizeof line,
                 "{\"step\": %d, \"epoch\": %.2f, \"loss\": %s, \"loss_contrastive\": %.3f, \"loss_caption\": %.3f, "
                 "\"lr\": %.2e, \"logit_scale\": 14.3, \"images_per_s\": 100, \"data_wait\": 0.1, \"time\": %d}\n",
                 s, s / 8.0, s == 5 ? "null" : (s == 1 ? "4.0" : "3.0"), 1.0 / s, 2.0 / s, 1e-3 * s, s);
        strcat(jl, line);
        if (s % 4 == 0) {
            snprintf(line, sizeof line, "{\"step\": %d, \"epoch\": %.2f, \"time\": %d, \"val/i2t_R@1\": %d, "
                                        "\"val/i2t_R@5\": %d, \"val/i2t_R@10\": %d}\n", s, s / 8.0, s, s, 2 * s, 3 * s);
            strcat(jl, line);
        }
    }
    strcat(jl, "{\"step\": 9, \"loss");
    write_file("metrics.jsonl", jl);
    write_file("config.yaml", "model:\n  name: tiny-clip  # <script>alert(1)</script> & more\n");

    assert_int_equal(run_report(g_dir, NULL, NULL), 0);
    snprintf(p, sizeof p, "%s/report/index.html", g_dir);
    char *html = read_file(p);
    assert_non_null(html);
    // one chart per family: loss (3 series), lr, logit_scale, images_per_s, data_wait, val/i2t_R@k
    assert_int_equal(count(html, "<svg"), 6);
    assert_int_equal(points_in_chart(html, "loss"), 7 + 8 + 8);  // the null step is a gap
    assert_int_equal(points_in_chart(html, "val/i2t_R@k"), 3 * 2);
    assert_int_equal(points_in_chart(html, "lr"), 8);
    assert_non_null(strstr(html, "10 logged records"));
    assert_non_null(strstr(html, "1 line(s) that are not records were skipped"));
    assert_non_null(strstr(html, "step_00000008 <span class=\"muted\">(latest)</span>"));
    assert_non_null(strstr(html, "step_00000004"));
    // the config is shown, escaped; nothing is loaded from elsewhere
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src=\"http"));
    assert_null(strstr(html, "href=\"http"));
    free(html);
    // written whole: no temporary file left
    snprintf(p, sizeof p, "%s/report/index.html.tmp", g_dir);
    assert_int_equal(access(p, F_OK), -1);
    // --out elsewhere
    snprintf(p, sizeof p, "%s/other.html", g_dir);
    assert_int_equal(run_report(g_dir, "--out", p), 0);
    assert_int_equal(access(p, F_OK), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    assert_int_equal(system(cmd), 0);
}

static void test_report_arguments(void **state) {
    (void)state;
    assert_int_equal(run_report("--help", NULL, NULL), 0);
    assert_int_equal(run_report(NULL, NULL, NULL), 2);
    assert_int_equal(run_report("/tmp", "--bogus", NULL), 2);
    assert_int_equal(run_report("/tmp/a", "/tmp/b", NULL), 2);
    assert_int_equal(run_report("/nonexistent/run", NULL, NULL), 1);  // no metrics.jsonl: named
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_of_a_run),
        cmocka_unit_test(test_report_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
