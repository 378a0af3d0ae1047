// embeddings_h5.c — embeddings file read/write with the HDF5 C API (see embeddings_h5.h).
// HDF5's own error stack printing is switched off around every call (H5E_BEGIN_TRY), so bad
// files give one vlt error naming the file and the dataset.
#include "eval/embeddings_h5.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static vlt_status write_dataset(hid_t file, const char *path, const char *name, hid_t type, int rank,
                                const hsize_t *dims, const void *data) {
    hid_t space = -1, ds = -1;
    herr_t w = -1;
    H5E_BEGIN_TRY {
        space = H5Screate_simple(rank, dims, NULL);
        if (space >= 0) ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds >= 0) w = H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
        if (ds >= 0) H5Dclose(ds);
        if (space >= 0) H5Sclose(space);
    } H5E_END_TRY;
    return w < 0 ? vlt_error_set(VLT_ERR_IO, "%s: cannot write dataset %s", path, name) : VLT_OK;
}

static vlt_status write_attr(hid_t file, const char *path, const char *name, const char *value) {
    hid_t type = -1, space = -1, attr = -1;
    herr_t w = -1;
    const char *v = value ? value : "";
    H5E_BEGIN_TRY {
        type = H5Tcopy(H5T_C_S1);
        if (type >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0)
            space = H5Screate(H5S_SCALAR);
        if (space >= 0) attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attr >= 0) w = H5Awrite(attr, type, &v);
        if (attr >= 0) H5Aclose(attr);
        if (space >= 0) H5Sclose(space);
        if (type >= 0) H5Tclose(type);
    } H5E_END_TRY;
    return w < 0 ? vlt_error_set(VLT_ERR_IO, "%s: cannot write attribute %s", path, name) : VLT_OK;
}

vlt_status vlt_eval_embeddings_write(const char *path, const vlt_eval_embeddings *e) {
    if (!path || !e || e->n_images < 1 || e->n_texts < 1 || e->dim < 1 || !e->image_embeds || !e->text_embeds ||
        !e->image_ids || !e->text_image_index)
        return vlt_error_set(VLT_ERR_ARG, "embeddings: write %s: need images, texts, dim >= 1 and all four arrays", path ? path : "(null)");
    hid_t file;
    H5E_BEGIN_TRY { file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); } H5E_END_TRY;
    if (file < 0) return vlt_error_set(VLT_ERR_IO, "%s: cannot create HDF5 file", path);
    hsize_t di[2] = {(hsize_t)e->n_images, (hsize_t)e->dim}, dt[2] = {(hsize_t)e->n_texts, (hsize_t)e->dim};
    vlt_status st = write_dataset(file, path, "image_embeds", H5T_NATIVE_FLOAT, 2, di, e->image_embeds);
    if (st == VLT_OK) st = write_dataset(file, path, "text_embeds", H5T_NATIVE_FLOAT, 2, dt, e->text_embeds);
    if (st == VLT_OK) st = write_dataset(file, path, "image_ids", H5T_NATIVE_INT64, 1, di, e->image_ids);
    if (st == VLT_OK) st = write_dataset(file, path, "text_image_index", H5T_NATIVE_INT32, 1, dt, e->text_image_index);
    if (st == VLT_OK) st = write_attr(file, path, "model", e->model);
    if (st == VLT_OK) st = write_attr(file, path, "config", e->config);
    herr_t c;
    H5E_BEGIN_TRY { c = H5Fclose(file); } H5E_END_TRY;
    if (st == VLT_OK && c < 0) st = vlt_error_set(VLT_ERR_IO, "%s: cannot close HDF5 file", path);
    return st;
}

// What a dataset declares, looked at before anything is allocated for it: a few KB of HDF5 can
// declare a (20M, 64) dataset with no data stored (HDF5 then reads fill values), and reading it
// would allocate and fill gigabytes before anything else is checked.
typedef struct {
    const char *name;
    int rank;
    hsize_t dims[2];
    hsize_t count;        // elements
    double mem_bytes;     // what reading it needs in memory, in the memory type
} ds_info;

static vlt_status probe_dataset(hid_t file, const char *path, const char *name, hid_t mem_type, int rank,
                                ds_info *info) {
    memset(info, 0, sizeof *info);
    info->name = name;
    hid_t ds = -1, space = -1, ftype = -1, dcpl = -1;
    int got_rank = -1, nfilters = 0, scalar_class = 1;
    size_t fsize = 0;
    hsize_t stored = 0;
    H5E_BEGIN_TRY {
        ds = H5Dopen2(file, name, H5P_DEFAULT);
        if (ds >= 0) space = H5Dget_space(ds);
        if (space >= 0) got_rank = H5Sget_simple_extent_ndims(space);
        if (got_rank == rank) H5Sget_simple_extent_dims(space, info->dims, NULL);
        if (ds >= 0) ftype = H5Dget_type(ds);
        if (ftype >= 0) {
            fsize = H5Tget_size(ftype);
            H5T_class_t cls = H5Tget_class(ftype);
            scalar_class = cls == H5T_INTEGER || cls == H5T_FLOAT;
        }
        if (ds >= 0) {
            stored = H5Dget_storage_size(ds);
            dcpl = H5Dget_create_plist(ds);
        }
        if (dcpl >= 0) nfilters = H5Pget_nfilters(dcpl);
        if (dcpl >= 0) H5Pclose(dcpl);
        if (ftype >= 0) H5Tclose(ftype);
        if (space >= 0) H5Sclose(space);
        if (ds >= 0) H5Dclose(ds);
    } H5E_END_TRY;
    if (ds < 0) return vlt_error_set(VLT_ERR_FORMAT, "%s: no dataset %s", path, name);
    if (got_rank != rank)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: dataset %s has rank %d, expected %d", path, name, got_rank, rank);
    if (!scalar_class || fsize == 0 || fsize > 16)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: dataset %s is not numeric", path, name);
    // Limits that no real embeddings file reaches: ids index rows with int32, a dim beyond 2^20 is
    // no embedding. Checked before multiplying so that nothing overflows.
    for (int k = 0; k < rank; k++)
        if (info->dims[k] > (k == 0 ? (hsize_t)INT32_MAX : (hsize_t)1 << 20))
            return vlt_error_set(VLT_ERR_FORMAT, "%s: dataset %s declares %llu %s, more than the limit (%llu)", path,
                                 name, (unsigned long long)info->dims[k], k == 0 ? "rows" : "columns",
                                 k == 0 ? (unsigned long long)INT32_MAX : 1ull << 20);
    info->count = 1;
    for (int k = 0; k < rank; k++) info->count *= info->dims[k];
    double declared = (double)info->count * (double)fsize;
    info->mem_bytes = (double)info->count * (double)H5Tget_size(mem_type);
    // Unfiltered data is stored in full; without it, HDF5 would make up fill values. Compressed
    // chunks may be smaller, but not by more than 1000:1 for embeddings (gzip of all zeros is
    // ~1000:1; real float32 vectors barely compress).
    if (nfilters == 0 && (double)stored < declared)
        return vlt_error_set(VLT_ERR_FORMAT,
                             "%s: dataset %s declares %llu x %llu values (%.0f bytes) but the file stores only %llu "
                             "bytes of it (unwritten or cut short)",
                             path, name, (unsigned long long)info->dims[0],
                             (unsigned long long)(rank > 1 ? info->dims[1] : 1), declared, (unsigned long long)stored);
    if (nfilters > 0 && declared > 1e6 && declared > 1000.0 * (double)stored)
        return vlt_error_set(VLT_ERR_FORMAT,
                             "%s: dataset %s declares %.0f bytes compressed into %llu (more than 1000:1: missing "
                             "chunks or a decompression bomb)",
                             path, name, declared, (unsigned long long)stored);
    return VLT_OK;
}

// Reads a probed dataset into a new buffer of the memory type.
static vlt_status read_dataset(hid_t file, const char *path, const ds_info *info, hid_t mem_type, void **out) {
    void *buf = malloc((info->count ? (size_t)info->count : 1) * H5Tget_size(mem_type));
    if (!buf) return vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory reading %s (%.0f bytes)", path, info->name,
                                   info->mem_bytes);
    herr_t r = -1;
    H5E_BEGIN_TRY {
        hid_t ds = H5Dopen2(file, info->name, H5P_DEFAULT);
        if (ds >= 0) {
            r = H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            H5Dclose(ds);
        }
    } H5E_END_TRY;
    if (r < 0) {
        free(buf);
        return vlt_error_set(VLT_ERR_FORMAT, "%s: cannot read dataset %s (corrupt or not numeric)", path, info->name);
    }
    *out = buf;
    return VLT_OK;
}

// This machine's physical memory in bytes (0 when unknown): a file needing more is refused
// before the allocation that the kernel's OOM killer would end.
static double physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0.0;
}

// A string attribute (variable or fixed length) as a new string; "" when absent.
static char *read_attr(hid_t file, const char *name) {
    char *out = NULL;
    H5E_BEGIN_TRY {
        if (H5Aexists(file, name) > 0) {
            hid_t attr = H5Aopen(file, name, H5P_DEFAULT), ftype = H5Aget_type(attr);
            if (H5Tget_class(ftype) == H5T_STRING && H5Tis_variable_str(ftype) > 0) {
                hid_t mt = H5Tcopy(H5T_C_S1);
                H5Tset_size(mt, H5T_VARIABLE);
                H5Tset_cset(mt, H5Tget_cset(ftype));
                char *v = NULL;
                if (H5Aread(attr, mt, &v) >= 0 && v) {
                    out = strdup(v);
                    H5free_memory(v);
                }
                H5Tclose(mt);
            } else if (H5Tget_class(ftype) == H5T_STRING) {
                size_t n = H5Tget_size(ftype);
                out = calloc(n + 1, 1);
                if (out && H5Aread(attr, ftype, out) < 0) out[0] = '\0';
            }
            H5Tclose(ftype);
            H5Aclose(attr);
        }
    } H5E_END_TRY;
    return out ? out : strdup("");
}

static vlt_status check_shapes(const char *path, const hsize_t *di, const hsize_t *dt, const hsize_t *dids,
                               const hsize_t *dx) {
    if (di[1] != dt[1]) return vlt_error_set(VLT_ERR_FORMAT, "%s: image_embeds dim %llu != text_embeds dim %llu", path,
                                             (unsigned long long)di[1], (unsigned long long)dt[1]);
    if (dids[0] != di[0]) return vlt_error_set(VLT_ERR_FORMAT, "%s: image_ids has %llu entries, image_embeds %llu rows", path,
                                               (unsigned long long)dids[0], (unsigned long long)di[0]);
    if (dx[0] != dt[0]) return vlt_error_set(VLT_ERR_FORMAT, "%s: text_image_index has %llu entries, text_embeds %llu rows", path,
                                             (unsigned long long)dx[0], (unsigned long long)dt[0]);
    if (di[0] < 1 || dt[0] < 1 || di[1] < 1) return vlt_error_set(VLT_ERR_FORMAT, "%s: empty embeddings", path);
    return VLT_OK;
}

static vlt_status check_index(const char *path, const vlt_eval_embeddings *e) {
    for (int64_t c = 0; c < e->n_texts; c++)
        if (e->text_image_index[c] < 0 || e->text_image_index[c] >= e->n_images)
            return vlt_error_set(VLT_ERR_FORMAT, "%s: text_image_index[%lld] = %d is outside [0, %lld)", path, (long long)c,
                                 e->text_image_index[c], (long long)e->n_images);
    return VLT_OK;
}

vlt_status vlt_eval_embeddings_read(const char *path, vlt_eval_embeddings *e) {
    memset(e, 0, sizeof *e);
    hid_t file = -1;
    H5E_BEGIN_TRY {
        if (H5Fis_hdf5(path) > 0) file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    } H5E_END_TRY;
    if (file < 0) return vlt_error_set(VLT_ERR_IO, "%s: cannot open as an HDF5 file (missing or not HDF5)", path);
    // Every dataset's shape and stored size is checked, and the shapes against each other and the
    // total against the machine, before a byte is allocated.
    ds_info im = {0}, tx = {0}, ids = {0}, ix = {0};
    vlt_status st = probe_dataset(file, path, "image_embeds", H5T_NATIVE_FLOAT, 2, &im);
    if (st == VLT_OK) st = probe_dataset(file, path, "text_embeds", H5T_NATIVE_FLOAT, 2, &tx);
    if (st == VLT_OK) st = probe_dataset(file, path, "image_ids", H5T_NATIVE_INT64, 1, &ids);
    if (st == VLT_OK) st = probe_dataset(file, path, "text_image_index", H5T_NATIVE_INT32, 1, &ix);
    if (st == VLT_OK) st = check_shapes(path, im.dims, tx.dims, ids.dims, ix.dims);
    double need = im.mem_bytes + tx.mem_bytes + ids.mem_bytes + ix.mem_bytes, phys = physical_memory();
    if (st == VLT_OK && phys > 0 && need > phys)
        st = vlt_error_set(VLT_ERR_NOMEM, "%s: reading it needs %.2f GB, more than this machine's %.2f GB of memory",
                           path, need / 1e9, phys / 1e9);
    if (st == VLT_OK) st = read_dataset(file, path, &im, H5T_NATIVE_FLOAT, (void **)&e->image_embeds);
    if (st == VLT_OK) st = read_dataset(file, path, &tx, H5T_NATIVE_FLOAT, (void **)&e->text_embeds);
    if (st == VLT_OK) st = read_dataset(file, path, &ids, H5T_NATIVE_INT64, (void **)&e->image_ids);
    if (st == VLT_OK) st = read_dataset(file, path, &ix, H5T_NATIVE_INT32, (void **)&e->text_image_index);
    if (st == VLT_OK) {
        e->n_images = (int64_t)im.dims[0];
        e->n_texts = (int64_t)tx.dims[0];
        e->dim = (int64_t)im.dims[1];
        st = check_index(path, e);
    }
    if (st == VLT_OK) {
        e->model = read_attr(file, "model");
        e->config = read_attr(file, "config");
    }
    H5E_BEGIN_TRY { H5Fclose(file); } H5E_END_TRY;
    if (st != VLT_OK) vlt_eval_embeddings_free(e);
    return st;
}

void vlt_eval_embeddings_free(vlt_eval_embeddings *e) {
    if (!e) return;
    free(e->image_embeds);
    free(e->text_embeds);
    free(e->image_ids);
    free(e->text_image_index);
    free(e->model);
    free(e->config);
    memset(e, 0, sizeof *e);
}
