// Resume safety: a checkpoint's state.json is checked field by field before anything is loaded
// (each bad field refused by name, the checkpoint left byte for byte as it was), and a resume
// with another model is refused with the model keys that differ.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cJSON.h>
#include <dirent.h>
#include <unistd.h>

#include "autograd/rng.h"
#include "data/files.h"
#include "train/commands.h"
#include "train/trainer.h"
#include "tests/train_fixture.h"

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

// A 4-step run with its checkpoint at step 4 (of 12): the directory under the fixture.
static void make_run(vlt_run_config *c, const char *name) {
    train_fixture_config(c, name);
    c->steps = 12;
    c->warmup = 2;
    c->checkpoint_every = 4;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run_steps(t, 4), VLT_OK);
    vlt_trainer_free(t);
}

typedef struct {
    const char *field;      // a top-level key of state.json
    const char *value;      // its new value as JSON, or NULL to delete the key
    const char *expect;     // in the error message
} state_edit;

static void test_state_fields_are_checked(void **state) {
    (void)state;
    vlt_run_config c;
    make_run(&c, "state");
    char sp[600], mp[600];
    snprintf(sp, sizeof sp, "%s/checkpoints/step_00000004/state.json", c.output_dir);
    snprintf(mp, sizeof mp, "%s/checkpoints/step_00000004/model.safetensors", c.output_dir);
    char *orig = vlt_read_file(sp, NULL), *model = vlt_read_file(mp, NULL);
    assert_non_null(orig);
    const state_edit edits[] = {
        {"step", "-5", "'step' is -5, outside [4, 4]: the checkpoint's files are of step 4"},
        {"step", "999999", "'step' is 999999, outside [4, 4]"},
        {"step", "4.5", "'step' is not an integer"},
        {"step", "\"4\"", "'step' is not an integer"},
        {"step", NULL, "state.json has no 'step'"},
        {"format", "2", "'format' is 2"},
        {"epoch", "-1", "'epoch' is -1"},
        {"world_size", "3", "saved by 3 ranks, this run has 1"},
        {"world_size", "0", "'world_size' is 0"},
        {"loader_ranks", "{}", "'loader_ranks' must be a list of 1 loader positions"},
        {"loader_ranks", "[1]", "'loader_ranks' must be a list of 1"},
        {"nonfinite_total", "-1", "'nonfinite_total' is -1"},
        {"nonfinite_total", "7", "'nonfinite_total' is 7, outside [0, 5]"},
        {"nonfinite_total", "2", "the optimizer has taken 4 steps, but state.json says step 4 with 2 skipped"},
        {"nonfinite_run", "1", "'nonfinite_run' is 1, outside [0, 0]"},
        {"seed", "7", "'seed' 7 differs from the config's model.seed 0"},
        {"lr", "\"fast\"", "'lr' is missing or not a finite number"},
        {"lr", "-1", "'lr' is missing or not a finite number >= 0"},
        {"config", "17", "'config' is missing or not a string"},
        {"config_hash", "\"0000000000000000\"", "'config_hash' does not match its 'config'"},
    };
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        cJSON *root = cJSON_Parse(orig);
        cJSON_DeleteItemFromObjectCaseSensitive(root, edits[i].field);
        if (edits[i].value) cJSON_AddItemToObject(root, edits[i].field, cJSON_Parse(edits[i].value));
        char *text = cJSON_Print(root);
        cJSON_Delete(root);
        spit(sp, text);
        free(text);
        vlt_trainer *t = NULL;
        if (vlt_trainer_create(&c, &r, &t) == VLT_OK) fail_msg("%s = %s: resumed", edits[i].field, edits[i].value);
        if (!strstr(vlt_error_message(), edits[i].expect))
            fail_msg("%s = %s: '%s' lacks '%s'", edits[i].field, edits[i].value, vlt_error_message(), edits[i].expect);
        assert_non_null(strstr(vlt_error_message(), "step_00000004"));
        // nothing written: the checkpoint is as it was
        char *now = vlt_read_file(mp, NULL);
        assert_string_equal(now, model);
        free(now);
    }
    // A bad loader position of this rank is refused, naming loader_ranks.
    cJSON *root = cJSON_Parse(orig);
    cJSON *pos = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "loader_ranks"), 0);
    cJSON_ReplaceItemInObjectCaseSensitive(pos, "next_reader", cJSON_CreateNumber(-3));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    spit(sp, text);
    free(text);
    vlt_trainer *t = NULL;
    assert_int_not_equal(vlt_trainer_create(&c, &r, &t), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "'loader_ranks'[0]"));

    // A reader offset past the end of every shard (the loader would skip the shard).
    root = cJSON_Parse(orig);
    pos = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "loader_ranks"), 0);
    cJSON *rd = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pos, "reader"), 0);
    cJSON_ReplaceItemInObjectCaseSensitive(rd, "offset", cJSON_CreateNumber(512.0 * 1e7));
    text = cJSON_Print(root);
    cJSON_Delete(root);
    spit(sp, text);
    free(text);
    assert_int_not_equal(vlt_trainer_create(&c, &r, &t), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "'loader_ranks'[0] reader 0: offset 5120000000 is past the end of every "
                                                "training shard"));

    // The untouched state resumes; a schedule that ends at the checkpoint's step is refused.
    spit(sp, orig);
    c.steps = 4;
    assert_int_not_equal(vlt_trainer_create(&c, &r, &t), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "at step 4, the end of schedule.steps 4: nothing to train"));
    c.steps = 12;
    if (vlt_trainer_create(&c, &r, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(t), 4);
    vlt_trainer_free(t);
    free(orig);
    free(model);
}

// A resume with another model.name is refused by the config comparison, before any weight is
// read (not by a key mismatch of the weights).
static void test_resume_other_model_refused(void **state) {
    (void)state;
    vlt_run_config c;
    make_run(&c, "model");
    snprintf(c.model_name, sizeof c.model_name, "tiny-coca");
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    vlt_trainer *t = NULL;
    assert_int_not_equal(vlt_trainer_create(&c, &r, &t), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "the model config differs from the checkpoint's: model.name: "
                                                "\"tiny-clip\" -> \"tiny-coca\""));
}

static int jsonl_steps(const char *path, int *steps, int cap) {
    char *text = vlt_read_file(path, NULL);
    assert_non_null(text);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_true(n < cap);
        steps[n++] = (int)cJSON_GetObjectItem(o, "step")->valuedouble;
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

// A run stopped two steps after its checkpoint at 4 (as by kill -9): its lines for steps 5 and 6
// are dropped on resume, which logs 5 and 6 again; TensorBoard gets a new file starting at 5.
static void test_resume_drops_orphaned_metrics(void **state) {
    (void)state;
    vlt_run_config c;
    train_fixture_config(&c, "orphans");
    c.steps = 12;
    c.warmup = 2;
    c.checkpoint_every = 4;
    c.log_every = 1;
    c.tensorboard = true;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run_steps(t, 6), VLT_OK);
    vlt_trainer_free(t);
    char mp[600];
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", c.output_dir);
    int steps[64];
    assert_int_equal(jsonl_steps(mp, steps, 64), 6);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    if (vlt_trainer_create(&c, &r, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(jsonl_steps(mp, steps, 64), 4);
    assert_int_equal(vlt_trainer_run_steps(t, 2), VLT_OK);
    vlt_trainer_free(t);
    assert_int_equal(jsonl_steps(mp, steps, 64), 6);
    for (int i = 0; i < 6; i++) assert_int_equal(steps[i], i + 1);
    char tb[600];
    snprintf(tb, sizeof tb, "%s/tensorboard", c.output_dir);
    DIR *d = opendir(tb);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) files += !strncmp(e->d_name, "events.out.tfevents.", 20);
    closedir(d);
    assert_int_equal(files, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_fields_are_checked),
        cmocka_unit_test(test_resume_other_model_refused),
        cmocka_unit_test(test_resume_drops_orphaned_metrics),
    };
    return cmocka_run_group_tests_name("train_resume", tests, train_fixture_setup, train_fixture_teardown);
}
