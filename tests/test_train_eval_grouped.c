// test_train_eval_grouped.c — the standard multi-caption retrieval protocol end to end: COCO
// captions packed by `vlt shards` keep every caption of an image (.json "captions") and its COCO
// id; `vlt embed` writes one text row per caption with its image index and the dataset's image
// ids; `vlt eval checkpoint` scores the grouped protocol, equal to a brute-force recall computed
// here from the written embeddings (image->text: the best of the image's captions; a tie counts
// against the target).
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

#include "data/image.h"
#include "eval/embeddings_h5.h"
#include "eval/json_file.h"
#include "train/commands.h"
#include "train/run_config.h"
#include "train/trainer.h"

static char g_dir[128], g_run[300], g_shards[300];

static int run_cmd(int (*cmd)(int, char **), char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    return cmd(argc, argv);
}

// Image k: a 40x40 picture of its own colours.
static int write_jpeg(const char *path, int k) {
    vlt_image img;
    if (vlt_image_alloc(&img, 40, 40) != VLT_OK) return -1;
    for (int i = 0; i < 40 * 40; i++) {
        img.rgb[3 * i] = (uint8_t)(60 * k + (i % 40) * 3);
        img.rgb[3 * i + 1] = (uint8_t)(200 - 40 * k);
        img.rgb[3 * i + 2] = (uint8_t)((i / 40) * 5 + 30 * k);
    }
    uint8_t *jpg = NULL;
    size_t n = 0;
    vlt_status s = vlt_image_encode_jpeg(&img, 95, &jpg, &n);
    vlt_image_free(&img);
    if (s != VLT_OK) return -1;
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(jpg, 1, n, f) == n;
    if (f) fclose(f);
    free(jpg);
    return ok ? 0 : -1;
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-grouped-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char images[200], ann[200], shards[200];
    snprintf(images, sizeof images, "%s/images", g_dir);
    snprintf(ann, sizeof ann, "%s/captions.json", g_dir);
    snprintf(shards, sizeof shards, "%s/shards", g_dir);
    mkdir(images, 0755);
    for (int k = 0; k < 4; k++) {
        char p[300];
        snprintf(p, sizeof p, "%s/im%d.jpg", images, k);
        if (write_jpeg(p, k)) return -1;
    }
    // 4 images with 3, 2, 1 and 4 captions (and a blank one, left out)
    FILE *f = fopen(ann, "w");
    if (!f) return -1;
    fputs("{\"images\": [{\"id\": 101, \"file_name\": \"im0.jpg\"}, {\"id\": 57, \"file_name\": \"im1.jpg\"},"
          " {\"id\": 9000, \"file_name\": \"im2.jpg\"}, {\"id\": 3, \"file_name\": \"im3.jpg\"}],"
          " \"annotations\": [{\"image_id\": 101, \"id\": 1, \"caption\": \"a red square\"},"
          " {\"image_id\": 57, \"id\": 2, \"caption\": \"a green field\"}, {\"image_id\": 101, \"id\": 3, \"caption\": \"red\"},"
          " {\"image_id\": 9000, \"id\": 4, \"caption\": \"blue sky\"}, {\"image_id\": 3, \"id\": 5, \"caption\": \"purple\"},"
          " {\"image_id\": 3, \"id\": 6, \"caption\": \"  \"}, {\"image_id\": 3, \"id\": 7, \"caption\": \"a violet thing\"},"
          " {\"image_id\": 101, \"id\": 8, \"caption\": \"crimson block\"}, {\"image_id\": 57, \"id\": 9, \"caption\": \"grass\"},"
          " {\"image_id\": 3, \"id\": 10, \"caption\": \"lilac\"}, {\"image_id\": 3, \"id\": 11, \"caption\": \"mauve\"}]}", f);
    fclose(f);
    char *pack[] = {"shards", "--out", shards, "--coco", ann, "--images", images, NULL};
    if (run_cmd(vlt_cmd_shards, pack) != 0) return -1;
    snprintf(g_shards, sizeof g_shards, "%s/00000.tar", shards);
    snprintf(g_run, sizeof g_run, "%s/run", g_dir);
    vlt_run_config c;
    vlt_run_config_default(&c);
    snprintf(c.model_name, sizeof c.model_name, "tiny-clip");
    snprintf(c.train_shards, sizeof c.train_shards, "%s", g_shards);
    snprintf(c.output_dir, sizeof c.output_dir, "%s", g_run);
    c.batch_size = 4;
    c.workers = 1;
    c.steps = 1;
    c.warmup = 1;
    c.checkpoint_every = 0;
    c.eval_every = 0;
    c.tensorboard = false;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t = NULL;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) { fprintf(stderr, "%s\n", vlt_error_message()); return -1; }
    vlt_status s = vlt_trainer_run(t);
    vlt_trainer_free(t);
    return s == VLT_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static double dot(const float *a, const float *b, int64_t d) {
    double s = 0;
    for (int64_t k = 0; k < d; k++) s += (double)a[k] * b[k];
    return s;
}

static void test_grouped_protocol(void **state) {
    (void)state;
    char h5[300], rep[300];
    snprintf(h5, sizeof h5, "%s/emb.h5", g_dir);
    snprintf(rep, sizeof rep, "%s/report.json", g_dir);
    char *embed[] = {"embed", "--checkpoint", g_run, "--shards", g_shards, "--out", h5, "--batch", "3", NULL};
    assert_int_equal(run_cmd(vlt_cmd_embed, embed), 0);
    vlt_eval_embeddings e;
    assert_int_equal(vlt_eval_embeddings_read(h5, &e), VLT_OK);
    assert_int_equal(e.n_images, 4);
    assert_int_equal(e.n_texts, 10);  // 3 + 2 + 1 + 4: the blank caption is left out
    const int64_t ids[4] = {101, 57, 9000, 3};
    const int32_t owner[10] = {0, 0, 0, 1, 1, 2, 3, 3, 3, 3};
    for (int i = 0; i < 4; i++) assert_int_equal(e.image_ids[i], ids[i]);  // COCO ids, not sample indices
    for (int t = 0; t < 10; t++) assert_int_equal(e.text_image_index[t], owner[t]);
    // brute force: ranks with ties counted against the target
    double i2t[3] = {0}, t2i[3] = {0};
    const int ks[3] = {1, 5, 10};
    for (int i = 0; i < 4; i++) {
        double best = -INFINITY;
        for (int t = 0; t < 10; t++)
            if (owner[t] == i) best = fmax(best, dot(e.image_embeds + i * e.dim, e.text_embeds + t * e.dim, e.dim));
        int rank = 1;
        for (int t = 0; t < 10; t++)
            if (owner[t] != i && dot(e.image_embeds + i * e.dim, e.text_embeds + t * e.dim, e.dim) >= best) rank++;
        for (int k = 0; k < 3; k++) i2t[k] += rank <= ks[k];
    }
    for (int t = 0; t < 10; t++) {
        double own = dot(e.text_embeds + t * e.dim, e.image_embeds + owner[t] * e.dim, e.dim);
        int rank = 1;
        for (int i = 0; i < 4; i++)
            if (i != owner[t] && dot(e.text_embeds + t * e.dim, e.image_embeds + i * e.dim, e.dim) >= own) rank++;
        for (int k = 0; k < 3; k++) t2i[k] += rank <= ks[k];
    }
    vlt_eval_embeddings_free(&e);
    char *eval[] = {"eval", "checkpoint", "--checkpoint", g_run, "--shards", g_shards, "--batch", "3", "--out", rep, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, eval), 0);
    cJSON *r = NULL;
    assert_int_equal(vlt_eval_json_load(rep, &r), VLT_OK);
    const cJSON *num = cJSON_GetObjectItem(r, "numbers");
    assert_int_equal(cJSON_GetObjectItem(num, "pairs")->valueint, 4);
    assert_int_equal(cJSON_GetObjectItem(num, "captions")->valueint, 10);
    const char *names[3] = {"R@1", "R@5", "R@10"};
    for (int k = 0; k < 3; k++) {
        char key[64];
        snprintf(key, sizeof key, "image_to_text.%s", names[k]);
        assert_true(cJSON_GetObjectItem(num, key)->valuedouble == i2t[k] / 4);
        snprintf(key, sizeof key, "text_to_image.%s", names[k]);
        assert_true(cJSON_GetObjectItem(num, key)->valuedouble == t2i[k] / 10);
    }
    cJSON_Delete(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped_protocol),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
