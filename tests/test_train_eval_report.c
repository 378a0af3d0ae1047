// test_train_eval_report.c — evaluation reports that re-run themselves, and CPU evaluation that is
// bit-identical across runs and thread counts: a tiny CLIP trained two steps on synthetic shards is
// embedded and evaluated with 1 and 2 threads (embeddings and every reported number equal bit for
// bit); `vlt eval --reproduce` says REPRODUCED for an unchanged report and not for a changed input
// or a changed number.
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "eval/embeddings_h5.h"
#include "eval/json_file.h"
#include "eval/report.h"
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

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-evalreport-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char data[200];
    snprintf(data, sizeof data, "%s/data", g_dir);
    char *synth[] = {"synth", "--out", data, "--samples", "96", "--shard-size", "48", "--image-size", "32", "--seed", "5", NULL};
    if (run_cmd(vlt_cmd_synth, synth) != 0) return -1;
    snprintf(g_shards, sizeof g_shards, "%s/{00000..00001}.tar", data);
    snprintf(g_run, sizeof g_run, "%s/run", g_dir);
    vlt_run_config c;
    vlt_run_config_default(&c);
    snprintf(c.model_name, sizeof c.model_name, "tiny-clip");
    snprintf(c.train_shards, sizeof c.train_shards, "%s", g_shards);
    snprintf(c.output_dir, sizeof c.output_dir, "%s", g_run);
    c.batch_size = 16;
    c.workers = 1;
    c.steps = 2;
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

static cJSON *load(const char *path) {
    cJSON *j = NULL;
    if (vlt_eval_json_load(path, &j) != VLT_OK) fail_msg("%s", vlt_error_message());
    return j;
}

// `vlt embed` and `vlt eval checkpoint` with 1 and with 2 threads: the same bits.
static void test_threads_bit_identical(void **state) {
    (void)state;
    int saved = omp_get_max_threads();
    char h5[2][320], rep[2][320];
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k + 1);
        snprintf(h5[k], sizeof h5[k], "%s/emb%d.h5", g_dir, k + 1);
        snprintf(rep[k], sizeof rep[k], "%s/report%d.json", g_dir, k + 1);
        char *embed[] = {"embed", "--checkpoint", g_run, "--shards", g_shards, "--out", h5[k], "--batch", "7", NULL};
        assert_int_equal(run_cmd(vlt_cmd_embed, embed), 0);
        char *eval[] = {"eval", "checkpoint", "--checkpoint", g_run, "--shards", g_shards, "--batch", "7", "--out", rep[k], NULL};
        assert_int_equal(run_cmd(vlt_cmd_eval, eval), 0);
    }
    omp_set_num_threads(saved);
    vlt_eval_embeddings a, b;
    assert_int_equal(vlt_eval_embeddings_read(h5[0], &a), VLT_OK);
    assert_int_equal(vlt_eval_embeddings_read(h5[1], &b), VLT_OK);
    assert_int_equal(a.n_images, 96);
    assert_int_equal(b.n_images, a.n_images);
    assert_memory_equal(a.image_embeds, b.image_embeds, sizeof(float) * (size_t)(a.n_images * a.dim));
    assert_memory_equal(a.text_embeds, b.text_embeds, sizeof(float) * (size_t)(a.n_texts * a.dim));
    vlt_eval_embeddings_free(&a);
    vlt_eval_embeddings_free(&b);
    cJSON *r1 = load(rep[0]), *r2 = load(rep[1]);
    int same = 0, diff = 0;
    vlt_eval_report_compare(cJSON_GetObjectItem(r1, "numbers"), cJSON_GetObjectItem(r2, "numbers"), 0, stderr, &same, &diff);
    assert_int_equal(diff, 0);
    assert_true(same >= 9);
    // the report names what it read: weights, state, both shards, the vocabulary
    int shards = 0, weights = 0;
    const cJSON *in;
    cJSON_ArrayForEach(in, cJSON_GetObjectItem(r1, "inputs")) {
        const char *role = cJSON_GetObjectItem(in, "role")->valuestring;
        assert_int_equal(strlen(cJSON_GetObjectItem(in, "sha256")->valuestring), 64);
        shards += !strcmp(role, "shard");
        weights += !strcmp(role, "weights");
    }
    assert_int_equal(shards, 2);
    assert_int_equal(weights, 1);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r1, "settings"), "transform"));
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r1, "vlt"), "version"));
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    // and the checkpoint report reproduces (from another directory)
    char *rp[] = {"eval", "--reproduce", rep[0], NULL};
    char here[1024];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir("/"), 0);
    int rc = run_cmd(vlt_cmd_eval, rp);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

// A captions report: reproduced as is; not with a changed input; not with a changed number.
static void test_reproduce_captions(void **state) {
    (void)state;
    char pred[320], refs[320], rep[320];
    snprintf(pred, sizeof pred, "%s/pred.json", g_dir);
    snprintf(refs, sizeof refs, "%s/refs.json", g_dir);
    snprintf(rep, sizeof rep, "%s/captions.json", g_dir);
    write_file(refs, "{\"images\":[{\"id\":1},{\"id\":2}],\"annotations\":[{\"image_id\":1,\"caption\":\"A dog runs on grass.\"},"
                     "{\"image_id\":1,\"caption\":\"a dog running\"},{\"image_id\":2,\"caption\":\"Two cats sleep.\"}]}");
    write_file(pred, "[{\"image_id\":2,\"caption\":\"two cats sleeping\"},{\"image_id\":1,\"caption\":\"a dog runs\"}]");
    char *eval[] = {"eval", "captions", "--pred", pred, "--refs", refs, "--per-image", "--out", rep, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, eval), 0);
    cJSON *r = load(rep);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "numbers"), "per_image.1.CIDEr"));
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "scorers"), "CIDEr"));
    cJSON_Delete(r);
    char *rp[] = {"eval", "--reproduce", rep, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, rp), 0);
    // a number in the report that the run does not give
    r = load(rep);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "numbers"), "Bleu_1", cJSON_CreateNumber(0.5));
    char bad[320];
    snprintf(bad, sizeof bad, "%s/captions-edited.json", g_dir);
    assert_int_equal(vlt_eval_json_save(bad, r), VLT_OK);
    cJSON_Delete(r);
    char *rp2[] = {"eval", "--reproduce", bad, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, rp2), 1);
    // an input that changed since
    write_file(pred, "[{\"image_id\":2,\"caption\":\"two dogs\"},{\"image_id\":1,\"caption\":\"a dog runs\"}]");
    assert_int_equal(run_cmd(vlt_cmd_eval, rp), 1);
    // not a report
    char *rp3[] = {"eval", "--reproduce", refs, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, rp3), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_reproduce_captions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
