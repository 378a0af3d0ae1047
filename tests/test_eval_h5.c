// test_eval_h5.c — the embeddings HDF5 file: write/read round trip and clear errors on bad files.
#include <hdf5.h>
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

static char *tmp_path(void) {
    char *p = strdup("/tmp/vlt_test_h5_XXXXXX");
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    close(fd);
    return p;
}

static void make(vlt_eval_embeddings *e, int n, int m, int d) {
    e->n_images = n;
    e->n_texts = m;
    e->dim = d;
    e->image_embeds = malloc((size_t)n * d * sizeof(float));
    e->text_embeds = malloc((size_t)m * d * sizeof(float));
    e->image_ids = malloc((size_t)n * sizeof(int64_t));
    e->text_image_index = malloc((size_t)m * sizeof(int32_t));
    for (int i = 0; i < n * d; i++) e->image_embeds[i] = 0.25f * (float)i - 3.0f;
    for (int i = 0; i < m * d; i++) e->text_embeds[i] = -0.5f * (float)i + 1.0f;
    for (int i = 0; i < n; i++) e->image_ids[i] = 1000000000000LL + 7 * i;
    for (int i = 0; i < m; i++) e->text_image_index[i] = i % n;
    e->model = strdup("ViT-B-32");
    e->config = strdup("{\"embed_dim\": 512}");
}

static void test_round_trip(void **state) {
    (void)state;
    char *path = tmp_path();
    vlt_eval_embeddings w = {0}, r;
    make(&w, 5, 13, 7);
    assert_int_equal(vlt_eval_embeddings_write(path, &w), VLT_OK);
    assert_int_equal(vlt_eval_embeddings_read(path, &r), VLT_OK);
    assert_int_equal(r.n_images, 5);
    assert_int_equal(r.n_texts, 13);
    assert_int_equal(r.dim, 7);
    assert_memory_equal(r.image_embeds, w.image_embeds, 5 * 7 * sizeof(float));
    assert_memory_equal(r.text_embeds, w.text_embeds, 13 * 7 * sizeof(float));
    assert_memory_equal(r.image_ids, w.image_ids, 5 * sizeof(int64_t));
    assert_memory_equal(r.text_image_index, w.text_image_index, 13 * sizeof(int32_t));
    assert_string_equal(r.model, "ViT-B-32");
    assert_string_equal(r.config, "{\"embed_dim\": 512}");
    vlt_eval_embeddings_free(&r);
    assert_null(r.image_embeds);
    vlt_eval_embeddings_free(&w);
    unlink(path);
    free(path);
}

static void test_bad_files(void **state) {
    (void)state;
    vlt_eval_embeddings r;
    assert_int_equal(vlt_eval_embeddings_read("/nonexistent/emb.h5", &r), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent/emb.h5"));
    char *path = tmp_path();  // not HDF5 at all
    FILE *f = fopen(path, "w");
    fputs("this is not an HDF5 file\n", f);
    fclose(f);
    assert_int_equal(vlt_eval_embeddings_read(path, &r), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), path));

    // Valid HDF5, but text_image_index points past the images.
    vlt_eval_embeddings w = {0};
    make(&w, 3, 4, 2);
    w.text_image_index[2] = 3;
    assert_int_equal(vlt_eval_embeddings_write(path, &w), VLT_OK);
    assert_int_equal(vlt_eval_embeddings_read(path, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "text_image_index[2]"));
    vlt_eval_embeddings_free(&w);

    // Valid HDF5 missing a dataset.
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {2, 3};
    float data[6] = {0};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(file, "image_embeds", H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(file);
    assert_int_equal(vlt_eval_embeddings_read(path, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "no dataset text_embeds"));

    // Truncated file.
    make(&w, 3, 4, 2);
    assert_int_equal(vlt_eval_embeddings_write(path, &w), VLT_OK);
    vlt_eval_embeddings_free(&w);
    assert_int_equal(truncate(path, 100), 0);
    vlt_status st = vlt_eval_embeddings_read(path, &r);
    assert_true(st == VLT_ERR_IO || st == VLT_ERR_FORMAT);
    assert_int_equal(vlt_eval_embeddings_write("/nonexistent/dir/x.h5", &w), VLT_ERR_ARG);  // w was freed: empty
    unlink(path);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests_name("eval_h5", tests, NULL, NULL);
}
