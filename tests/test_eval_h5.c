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

// Writes a rank-`rank` dataset; data NULL leaves it unwritten (HDF5 stores nothing, reads fill
// values). gzip > 0: chunked and compressed.
static void put(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims, const void *data, int gzip) {
    hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (gzip) {
        hsize_t chunk[2] = {dims[0] < 1024 ? dims[0] : 1024, rank > 1 ? dims[1] : 1};
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_deflate(dcpl, (unsigned)gzip);
    }
    hid_t ds = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(ds >= 0);
    if (data) assert_true(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(sp);
}

// Issue 13 item 10: a file of a few KB declaring a huge dataset with no stored data made the reader
// allocate and fill it (5.25 GB, 17 s, for (20M, 64)). Here the declared (200000, 64) float32
// image_embeds (51 MB) is unwritten while the other datasets are consistent: the reader used to
// return 51 MB of made-up zeros as embeddings; it must refuse, naming the dataset, before reading.
static void test_declared_but_not_stored(void **state) {
    (void)state;
    char *path = tmp_path();
    enum { N = 200000, D = 64, M = 4 };
    float tx[M * D];
    int32_t ix[M] = {0, 1, 2, 3};
    for (int i = 0; i < M * D; i++) tx[i] = (float)i;
    int64_t *ids = calloc(N, sizeof *ids);
    hsize_t di[2] = {N, D}, dt[2] = {M, D}, dn[1] = {N}, dm[1] = {M};
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put(file, "image_embeds", H5T_NATIVE_FLOAT, 2, di, NULL, 0);
    put(file, "text_embeds", H5T_NATIVE_FLOAT, 2, dt, tx, 0);
    put(file, "image_ids", H5T_NATIVE_INT64, 1, dn, ids, 0);
    put(file, "text_image_index", H5T_NATIVE_INT32, 1, dm, ix, 0);
    H5Fclose(file);
    vlt_eval_embeddings r;
    assert_int_equal(vlt_eval_embeddings_read(path, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "image_embeds"));
    assert_non_null(strstr(vlt_error_message(), "stores only"));
    assert_null(r.image_embeds);

    // The issue's own bomb, (20M, 64) with nothing stored: refused the same way, at once.
    hsize_t big[2] = {20000000, 64}, bign[1] = {20000000};
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put(file, "image_embeds", H5T_NATIVE_FLOAT, 2, big, NULL, 0);
    put(file, "text_embeds", H5T_NATIVE_FLOAT, 2, dt, tx, 0);
    put(file, "image_ids", H5T_NATIVE_INT64, 1, bign, NULL, 0);
    put(file, "text_image_index", H5T_NATIVE_INT32, 1, dm, ix, 0);
    H5Fclose(file);
    assert_int_equal(vlt_eval_embeddings_read(path, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "20000000 x 64"));

    // Compressed (chunked + gzip) embeddings are fine when their chunks are there...
    float *im = malloc((size_t)5000 * D * sizeof(float));
    for (int i = 0; i < 5000 * D; i++) im[i] = (float)((i * 2654435761u) >> 8) / 16777216.0f;
    hsize_t d5[2] = {5000, D}, n5[1] = {5000};
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put(file, "image_embeds", H5T_NATIVE_FLOAT, 2, d5, im, 6);
    put(file, "text_embeds", H5T_NATIVE_FLOAT, 2, dt, tx, 6);
    put(file, "image_ids", H5T_NATIVE_INT64, 1, n5, ids, 6);   // all zeros: compresses far, but is small
    put(file, "text_image_index", H5T_NATIVE_INT32, 1, dm, ix, 0);
    H5Fclose(file);
    assert_int_equal(vlt_eval_embeddings_read(path, &r), VLT_OK);
    assert_int_equal(r.n_images, 5000);
    assert_memory_equal(r.image_embeds, im, (size_t)5000 * D * sizeof(float));
    vlt_eval_embeddings_free(&r);
    // ...and refused when chunked with none written (a compressed-looking bomb).
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put(file, "image_embeds", H5T_NATIVE_FLOAT, 2, di, NULL, 6);
    put(file, "text_embeds", H5T_NATIVE_FLOAT, 2, dt, tx, 0);
    put(file, "image_ids", H5T_NATIVE_INT64, 1, dn, ids, 0);
    put(file, "text_image_index", H5T_NATIVE_INT32, 1, dm, ix, 0);
    H5Fclose(file);
    assert_int_equal(vlt_eval_embeddings_read(path, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "image_embeds"));
    free(im);
    free(ids);
    unlink(path);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_declared_but_not_stored),
    };
    return cmocka_run_group_tests_name("eval_h5", tests, NULL, NULL);
}
