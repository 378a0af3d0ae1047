// test_train_model_source.c — the evaluation commands' one model loader (train/model_source.h):
// open_clip's own weights (tests/data/layers/clip_gelu, saved by open_clip with safetensors) and
// their config JSON give open_clip's features through --weights/--model; a file that does not fit
// the model is refused naming the file and the keys; a run and its checkpoint's model.safetensors
// with --weights give the same embeddings bit for bit through `vlt embed`; the report of `vlt eval
// checkpoint --weights` records the weights' and model config's sha256 and `vlt eval --reproduce`
// says REPRODUCED, and not once the weights file changed; the option checks of every command.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/tape.h"
#include "checkpoints/safetensors.h"
#include "data/image.h"
#include "data/thumbs.h"
#include "eval/embeddings_h5.h"
#include "eval/json_file.h"
#include "train/commands.h"
#include "train/model_source.h"
#include "train/run_config.h"
#include "train/trainer.h"

#define FIX "tests/data/layers/clip_gelu/"
static char g_dir[128], g_run[300], g_shards[300];

static int run_cmd(int (*cmd)(int, char **), char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    return cmd(argc, argv);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-msource-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char data[200];
    snprintf(data, sizeof data, "%s/data", g_dir);
    char *synth[] = {"synth", "--out", data, "--samples", "40", "--shard-size", "20", "--image-size", "32", "--seed", "8", NULL};
    if (run_cmd(vlt_cmd_synth, synth) != 0) return -1;
    snprintf(g_shards, sizeof g_shards, "%s/{00000..00001}.tar", data);
    snprintf(g_run, sizeof g_run, "%s/run", g_dir);
    vlt_run_config c;
    vlt_run_config_default(&c);
    snprintf(c.model_name, sizeof c.model_name, "tiny-clip");
    snprintf(c.train_shards, sizeof c.train_shards, "%s", g_shards);
    snprintf(c.output_dir, sizeof c.output_dir, "%s", g_run);
    c.batch_size = 8;
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

// open_clip's weights and config: the features open_clip computed for the fixture's inputs.
static void test_open_clip_weights_give_open_clip_features(void **state) {
    (void)state;
    vlt_model_source src;
    if (vlt_model_source_open(NULL, FIX "weights.safetensors", FIX "config.json", &src) != VLT_OK)
        fail_msg("%s", vlt_error_message());
    assert_string_equal(vlt_model_kind(&src.m), "clip");
    assert_string_equal(src.config_path, FIX "config.json");
    assert_string_equal(src.checkpoint, "");
    vlt_safetensors *io;
    assert_int_equal(vlt_safetensors_open(FIX "io.safetensors", &io), VLT_OK);
    int S = src.m.cfg.vision.image_size, T = src.m.cfg.text.context_length, E = src.m.cfg.embed_dim;
    vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(4, 3, S, S), "images");
    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(4, T), "ids");
    int64_t ids64[4 * 64];
    float want_i[4 * 64], want_t[4 * 64];
    assert_true(T <= 64 && E <= 64);
    assert_int_equal(vlt_safetensors_read_f32(io, "images", vlt_f32(im), 4 * 3 * S * S), VLT_OK);
    assert_int_equal(vlt_safetensors_read_i64(io, "ids", ids64, 4 * T), VLT_OK);
    for (int i = 0; i < 4 * T; i++) vlt_i32(ids)[i] = (int32_t)ids64[i];
    assert_int_equal(vlt_safetensors_read_f32(io, "image_features", want_i, 4 * E), VLT_OK);
    assert_int_equal(vlt_safetensors_read_f32(io, "text_features", want_t, 4 * E), VLT_OK);
    vlt_no_grad_enter();
    vlt_tensor *fi = vlt_model_encode_image(&src.m, im), *ft = vlt_model_encode_text(&src.m, ids);
    assert_non_null(fi);
    assert_non_null(ft);
    double worst = 0;
    for (int i = 0; i < 4 * E; i++) {
        worst = fmax(worst, fabs(vlt_f32(fi)[i] - want_i[i]));
        worst = fmax(worst, fabs(vlt_f32(ft)[i] - want_t[i]));
    }
    vlt_no_grad_exit();
    vlt_step_reset();
    print_message("open_clip weights through --weights/--model: features within %.2e of open_clip's\n", worst);
    assert_true(worst < 1e-5);
    vlt_tensor_free(im);
    vlt_tensor_free(ids);
    vlt_safetensors_close(io);
    vlt_model_source_close(&src);
}

// Weights that do not fit the model: refused naming the file, the model and the keys; nothing
// left allocated (the source closes cleanly).
static void test_mismatched_weights_named(void **state) {
    (void)state;
    vlt_model_source src;
    // open_clip's tiny CLIP weights into vlt's tiny-clip config: another vocabulary size
    assert_int_not_equal(vlt_model_source_open(NULL, FIX "weights.safetensors", "tiny-clip", &src), VLT_OK);
    const char *msg = vlt_error_message();
    print_message("%s\n", msg);
    assert_non_null(strstr(msg, FIX "weights.safetensors"));
    assert_non_null(strstr(msg, "tiny-clip"));
    assert_non_null(strstr(msg, "mis-shaped"));
    assert_non_null(strstr(msg, "token_embedding.weight: file (100, 64)"));  // open_clip fixture: a 100-token vocabulary
    vlt_model_source_close(&src);
    // CoCa weights into the CLIP config: its text tower under text.* is unexpected, by name
    assert_int_not_equal(vlt_model_source_open(NULL, "tests/data/layers/coca_tiny/weights.safetensors", FIX "config.json", &src),
                         VLT_OK);
    msg = vlt_error_message();
    assert_non_null(strstr(msg, "unexpected"));
    assert_non_null(strstr(msg, "text.cls_emb"));
    vlt_model_source_close(&src);
    assert_int_not_equal(vlt_model_source_open(NULL, "/nonexistent/w.safetensors", "tiny-clip", &src), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent/w.safetensors"));
    assert_int_not_equal(vlt_model_source_open(NULL, FIX "weights.safetensors", "tiny-clipp", &src), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "tiny-clip"));  // the closest names
    assert_int_not_equal(vlt_model_source_open("/nonexistent-run", NULL, NULL, &src), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent-run"));
    // the option rules
    assert_null(vlt_model_source_check("run", NULL, NULL));
    assert_null(vlt_model_source_check(NULL, "w", "m"));
    assert_non_null(vlt_model_source_check(NULL, NULL, NULL));
    assert_non_null(vlt_model_source_check("run", "w", "m"));
    assert_non_null(vlt_model_source_check(NULL, "w", NULL));
    assert_non_null(vlt_model_source_check("run", NULL, "m"));
}

// A run and its checkpoint's weights file with the model name: the same embeddings, bit for bit.
static void test_checkpoint_and_weights_embed_the_same(void **state) {
    (void)state;
    char h1[320], h2[320], w[400];
    snprintf(h1, sizeof h1, "%s/ck.h5", g_dir);
    snprintf(h2, sizeof h2, "%s/w.h5", g_dir);
    snprintf(w, sizeof w, "%s/checkpoints/latest/model.safetensors", g_run);
    char *a[] = {"embed", "--checkpoint", g_run, "--shards", g_shards, "--out", h1, NULL};
    char *b[] = {"embed", "--weights", w, "--model", "tiny-clip", "--shards", g_shards, "--out", h2, NULL};
    assert_int_equal(run_cmd(vlt_cmd_embed, a), 0);
    assert_int_equal(run_cmd(vlt_cmd_embed, b), 0);
    vlt_eval_embeddings x, y;
    assert_int_equal(vlt_eval_embeddings_read(h1, &x), VLT_OK);
    assert_int_equal(vlt_eval_embeddings_read(h2, &y), VLT_OK);
    assert_int_equal(x.n_images, 40);
    assert_int_equal(y.n_images, x.n_images);
    assert_int_equal(y.n_texts, x.n_texts);
    assert_memory_equal(x.image_embeds, y.image_embeds, sizeof(float) * (size_t)(x.n_images * x.dim));
    assert_memory_equal(x.text_embeds, y.text_embeds, sizeof(float) * (size_t)(x.n_texts * x.dim));
    vlt_eval_embeddings_free(&x);
    vlt_eval_embeddings_free(&y);
    // a fresh model's weights (vlt model init) differ: the comparison can fail
    char w2[400], h3[320];
    snprintf(w2, sizeof w2, "%s/init.safetensors", g_dir);
    snprintf(h3, sizeof h3, "%s/init.h5", g_dir);
    char *init[] = {"model", "init", "--model", "tiny-clip", "--out", w2, "--seed", "11", NULL};
    assert_int_equal(run_cmd(vlt_cmd_model, init), 0);
    char *c[] = {"embed", "--weights", w2, "--model", "tiny-clip", "--shards", g_shards, "--out", h3, NULL};
    assert_int_equal(run_cmd(vlt_cmd_embed, c), 0);
    assert_int_equal(vlt_eval_embeddings_read(h1, &x), VLT_OK);
    assert_int_equal(vlt_eval_embeddings_read(h3, &y), VLT_OK);
    assert_memory_not_equal(x.image_embeds, y.image_embeds, sizeof(float) * (size_t)(x.n_images * x.dim));
    vlt_eval_embeddings_free(&x);
    vlt_eval_embeddings_free(&y);
}

static const cJSON *input_with_role(const cJSON *report, const char *role) {
    const cJSON *in;
    cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(report, "inputs")) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(in, "role");
        if (cJSON_IsString(r) && !strcmp(r->valuestring, role)) return in;
    }
    return NULL;
}

// The report of an evaluation from a weights file names its hash and the model config's, and
// --reproduce checks them: REPRODUCED as it is, not after the weights changed.
static void test_reproduce_from_weights(void **state) {
    (void)state;
    char w[400], rep[400], ck[400];
    snprintf(w, sizeof w, "%s/weights.safetensors", g_dir);
    snprintf(ck, sizeof ck, "%s/checkpoints/latest/model.safetensors", g_run);
    snprintf(rep, sizeof rep, "%s/report-w.json", g_dir);
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "cp %s %s", ck, w);
    assert_int_equal(system(cmd), 0);
    char *ev[] = {"eval", "checkpoint", "--weights", w, "--model", "tiny-clip", "--shards", g_shards, "--out", rep, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, ev), 0);
    cJSON *r = NULL;
    assert_int_equal(vlt_eval_json_load(rep, &r), VLT_OK);
    const cJSON *wi = input_with_role(r, "weights"), *mc = input_with_role(r, "model config");
    assert_non_null(wi);
    assert_non_null(mc);
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(wi, "path")->valuestring, "weights.safetensors"));
    assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(wi, "sha256")->valuestring), 64);
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(mc, "path")->valuestring, "tiny-clip.json"));
    assert_null(input_with_role(r, "checkpoint state"));
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(r, "settings");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(settings, "weights")->valuestring, w);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(settings, "model")->valuestring, "tiny-clip");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(settings, "model_kind")->valuestring, "CLIP");
    cJSON_Delete(r);
    char *again[] = {"eval", "--reproduce", rep, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, again), 0);
    // other weights under the same name: the input changed and the numbers differ
    char *init[] = {"model", "init", "--model", "tiny-clip", "--out", w, "--seed", "5", NULL};
    assert_int_equal(run_cmd(vlt_cmd_model, init), 0);
    assert_int_equal(run_cmd(vlt_cmd_eval, again), 1);
}

// Every command that takes a model accepts --weights/--model and refuses a half-given source.
static void test_commands_take_weights(void **state) {
    (void)state;
    char *e1[] = {"embed", "--weights", "w.safetensors", "--shards", g_shards, "--out", "x.h5", NULL};
    assert_int_equal(run_cmd(vlt_cmd_embed, e1), 2);
    char *e2[] = {"embed", "--checkpoint", g_run, "--weights", "w.safetensors", "--model", "tiny-clip", "--shards", g_shards,
                  "--out", "x.h5", NULL};
    assert_int_equal(run_cmd(vlt_cmd_embed, e2), 2);
    char *e3[] = {"eval", "zeroshot", "--model", "tiny-clip", "--shards", g_shards, "--classes", "c", "--templates", "t", NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, e3), 2);
    char *e4[] = {"explain", "--weights", "w.safetensors", "--image", "x.png", "--text", "a", "--out", g_dir, NULL};
    assert_int_equal(run_cmd(vlt_cmd_explain, e4), 2);
    char *e5[] = {"eval", "clipscore", "--weights", "/nonexistent/w.safetensors", "--model", "tiny-clip", "--results",
                  "/nonexistent/r.json", "--shards", g_shards, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, e5), 1);
    char w[400], out[400];
    snprintf(w, sizeof w, "%s/checkpoints/latest/model.safetensors", g_run);
    snprintf(out, sizeof out, "%s/explain", g_dir);
    char img[400];
    snprintf(img, sizeof img, "%s/pic.png", g_dir);
    // a picture for explain: one of the fixture's images written as PNG
    vlt_image pic = {0};
    assert_int_equal(vlt_image_alloc(&pic, 40, 40), VLT_OK);
    for (int i = 0; i < 40 * 40 * 3; i++) pic.rgb[i] = (uint8_t)(i * 7);
    assert_int_equal(vlt_image_write_png(&pic, img), VLT_OK);
    vlt_image_free(&pic);
    char *ex[] = {"explain", "--weights", w, "--model", "tiny-clip", "--image", img, "--text", "a red circle", "--out", out, NULL};
    assert_int_equal(run_cmd(vlt_cmd_explain, ex), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_clip_weights_give_open_clip_features),
        cmocka_unit_test(test_mismatched_weights_named),
        cmocka_unit_test(test_checkpoint_and_weights_embed_the_same),
        cmocka_unit_test(test_reproduce_from_weights),
        cmocka_unit_test(test_commands_take_weights),
    };
    int rc = cmocka_run_group_tests_name("train_model_source", tests, setup, teardown);
    vlt_tape_shutdown();
    return rc;
}
