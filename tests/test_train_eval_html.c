// `vlt eval checkpoint --html DIR` (train/eval_html.c, data/thumbs.c): on embeddings made by hand,
// the page ranks as the retrieval metric does (ties against the target), shows the top 5 with
// the right image framed, lists the worst-ranked queries in order, sorts captions by CIDEr-D,
// and every image it shows is a thumbnail file beside it. Nothing is loaded from elsewhere.
#include <math.h>
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

#include "autograd/rng.h"
#include "train/commands.h"
#include "train/eval_html.h"

#define N 12
#define D 6

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

static void normalize(float *v) {
    double s = 0;
    for (int i = 0; i < D; i++) s += (double)v[i] * v[i];
    for (int i = 0; i < D; i++) v[i] = (float)(v[i] / sqrt(s));
}

static void test_page(void **state) {
    (void)state;
    char dir[64], shards[128], html[128];
    snprintf(dir, sizeof dir, "/tmp/vlt-evalhtml-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char out[96];
    snprintf(out, sizeof out, "%s/data", dir);
    char *a[] = {"synth", "--out", out, "--samples", "12", "--shard-size", "12", "--image-size", "32", "--seed", "4", NULL};
    assert_int_equal(vlt_cmd_synth(11, a), 0);
    snprintf(shards, sizeof shards, "%s/data/00000.tar", dir);

    // random unit features; caption j belongs to image j; caption 3 is the image 3 feature exactly
    // (rank 1), caption 7 ties with image 2 (a tie ranks against the target)
    vlt_embedded_pairs p = {.n = N, .dim = D, .n_txt = N};
    p.img = calloc(N * D, sizeof(float));
    p.txt = calloc(N * D, sizeof(float));
    p.txt_img = calloc(N, sizeof(int32_t));
    p.keys = calloc(N, sizeof(char *));
    p.captions = calloc(N, sizeof(char *));
    for (int i = 0; i < N; i++) {
        vlt_rng_fill_normal(p.img + i * D, D, 0, 1, 11, 1, (uint64_t)i);
        vlt_rng_fill_normal(p.txt + i * D, D, 0, 1, 12, 1, (uint64_t)i);
        normalize(p.img + i * D);
        normalize(p.txt + i * D);
        p.txt_img[i] = i;
        char k[16], c[64];
        snprintf(k, sizeof k, "%09d", i);
        snprintf(c, sizeof c, "caption <%d> & co", i);
        p.keys[i] = strdup(k);
        p.captions[i] = strdup(c);
    }
    memcpy(p.txt + 3 * D, p.img + 3 * D, D * sizeof(float));
    memcpy(p.img + 2 * D, p.img + 7 * D, D * sizeof(float));
    memcpy(p.txt + 7 * D, p.img + 7 * D, D * sizeof(float));
    // expected text->image rank of each caption
    int rank[N];
    for (int j = 0; j < N; j++) {
        double st = 0;
        for (int d = 0; d < D; d++) st += (double)p.txt[j * D + d] * p.img[j * D + d];
        rank[j] = 1;
        for (int i = 0; i < N; i++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += (double)p.txt[j * D + d] * p.img[i * D + d];
            if (i != j && s >= st) rank[j]++;
        }
    }
    assert_int_equal(rank[3], 1);
    assert_true(rank[7] >= 2);  // the tie with image 2 counts against it
    vlt_eval_retrieval_result r = {0};
    double cider[N];
    char *gen[N], *ref[N], *keys[N];
    for (int i = 0; i < N; i++) {
        cider[i] = (double)((i * 5) % N) / N;
        gen[i] = strdup("generated words");
        ref[i] = strdup("reference words");
        keys[i] = p.keys[i];
    }
    vlt_caption_eval ce = {.n = N, .keys = keys, .generated = gen, .reference = ref, .cider_per_image = cider};
    snprintf(out, sizeof out, "%s/page", dir);
    assert_int_equal(vlt_eval_html_checkpoint(out, "ckpt", shards, &p, &r, NULL, 0, &ce, NULL, NULL), VLT_OK);
    snprintf(html, sizeof html, "%s/page/index.html", dir);
    char *s = read_file(html);
    assert_non_null(s);
    // a folder whose parents do not exist yet is made with them (mkdir -p)
    char nested[160];
    snprintf(nested, sizeof nested, "%s/report/eval/page", dir);
    assert_int_equal(vlt_eval_html_checkpoint(nested, "ckpt", shards, &p, &r, NULL, 0, &ce, NULL, NULL), VLT_OK);
    snprintf(nested, sizeof nested, "%s/report/eval/page/index.html", dir);
    char *s2 = read_file(nested);
    assert_non_null(s2);
    free(s2);
    // a file where a folder of the path should be: refused, naming it
    snprintf(nested, sizeof nested, "%s/report/eval/page/index.html/sub", dir);
    assert_int_equal(vlt_eval_html_checkpoint(nested, "ckpt", shards, &p, &r, NULL, 0, &ce, NULL, NULL), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "page/index.html/sub: Not a directory"));
    snprintf(nested, sizeof nested, "%s/report/eval/page/index.html", dir);
    assert_int_equal(vlt_eval_html_checkpoint(nested, "ckpt", shards, &p, &r, NULL, 0, &ce, NULL, NULL), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "is not a directory"));
    // the sampled queries (every image's caption, N <= 10 of them... N is 12: evenly spaced) show
    // the metric's rank
    const char *pat = "<tr><td>caption &lt;";
    int rows = 0, last_worst = 1 << 30, in_worst = 0;
    const char *worst = strstr(s, "the worst-ranked queries");
    assert_non_null(worst);
    for (const char *q = s; (q = strstr(q, pat)); q++) {
        int j, rk;
        assert_int_equal(sscanf(q + strlen(pat), "%d&gt; &amp; co<br><span class=\"muted\">right image ranked %d", &j, &rk), 2);
        assert_int_equal(rk, rank[j]);
        if (q > worst) {  // the worst section: ranks never increase
            assert_true(rk <= last_worst);
            last_worst = rk;
            in_worst++;
        }
        rows++;
    }
    assert_int_equal(in_worst, 8);
    assert_true(rows >= 10 + 8);
    // captions: best first by CIDEr-D, worst after, values shown
    const char *best = strstr(s, "the best by CIDEr-D"), *bottom = strstr(s, "the worst by CIDEr-D");
    assert_true(best && bottom && best < bottom);
    double prev = 1e9, v;
    int n_cap = 0;
    for (const char *q = best; (q = strstr(q, "<td class=\"num\">")); q++) {
        assert_int_equal(sscanf(q + 16, "%lf", &v), 1);
        if (q < bottom) assert_true(v <= prev);
        prev = v;
        n_cap++;
    }
    assert_int_equal(n_cap, 8 + 4);  // 8 best, then the 4 not already shown
    // every image shown is a file beside the page; nothing remote; text escaped
    int imgs = 0;
    for (const char *q = s; (q = strstr(q, "<img src=\"")); q += 10) {
        char name[64], path[256];
        assert_int_equal(sscanf(q + 10, "%63[^\"]", name), 1);
        snprintf(path, sizeof path, "%s/page/%s", dir, name);
        struct stat st;
        if (stat(path, &st) != 0 || st.st_size < 100) fail_msg("missing thumbnail %s", path);
        imgs++;
    }
    assert_true(imgs > 20);
    assert_null(strstr(s, "src=\"http"));
    assert_null(strstr(s, "<script"));
    assert_null(strstr(s, "caption <"));
    free(s);
    for (int i = 0; i < N; i++) {
        free(p.keys[i]);
        free(p.captions[i]);
        free(gen[i]);
        free(ref[i]);
    }
    free(p.img); free(p.txt); free(p.txt_img); free(p.keys); free(p.captions);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_page)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
