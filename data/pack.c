// pack.c — image-caption pairs into webdataset shards (see pack.h).
#include "data/pack.h"

#include "data/files.h"
#include "data/pack_run.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static const char *SKIP_NAMES[VLT_PACK_N_SKIP] = {"missing caption", "empty caption", "missing image", "bad image",
                                                  "path leaves --images", "no tab"};

const char *vlt_pack_skip_name(vlt_pack_skip reason) {
    return reason >= 0 && reason < VLT_PACK_N_SKIP ? SKIP_NAMES[reason] : "?";
}

// --- input items -----------------------------------------------------------------------------------

typedef struct {
    char *path;      // image file (or, for a skipped line, what to name in the message)
    char *caption;   // NULL: missing (counted)
    cJSON *meta;     // extra .json fields (owned), or NULL
    int skip;        // -1, or the vlt_pack_skip reason already known when the input was read
    int label;       // --classes: the class index (a .cls member; the caption is optional); else -1
} item;

typedef struct {
    item *v;
    size_t n, cap;
    bool oom;
} item_list;

static void items_push_skip(item_list *l, char *path, char *caption, cJSON *meta, int skip) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        item *v = realloc(l->v, cap * sizeof *l->v);
        if (!v) {
            l->oom = true;
            free(path);
            free(caption);
            cJSON_Delete(meta);
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (item){path, caption, meta, skip, -1};
}

static void items_push(item_list *l, char *path, char *caption, cJSON *meta) {
    items_push_skip(l, path, caption, meta, -1);
}

static void items_free(item_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].caption);
        cJSON_Delete(l->v[i].meta);
    }
    free(l->v);
}

// Whether an annotation's relative path stays inside the images folder: not absolute, and no ".."
// component (COCO and Karpathy files come from elsewhere; "/etc/hostname" or "../x" must not be read).
static bool path_stays_inside(const char *rel) {
    if (!rel || !*rel || rel[0] == '/') return false;
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        p += n;
        while (*p == '/') p++;
    }
    return true;
}

// A JSON file, or NULL with the message set (vlt_read_json_file).
static cJSON *read_json(const char *path) {
    cJSON *j = NULL;
    return vlt_read_json_file(path, &j) == VLT_OK ? j : NULL;
}

// Trims trailing whitespace/newlines in place; returns s.
static char *rtrim(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

static int karpathy_in_split(const char *img_split, const char *want) {
    if (!strcmp(want, "train")) return !strcmp(img_split, "train") || !strcmp(img_split, "restval");
    return !strcmp(img_split, want);
}

typedef vlt_pack_source source;

// Adds one COCO/Karpathy image: per image (first caption in .txt) or one item per caption.
static void push_captioned(item_list *l, const source *src, char *path, cJSON *captions, cJSON *meta) {
    int n = cJSON_GetArraySize(captions);
    if (!src->each_caption || n == 0) {
        // .txt holds the first caption that is not blank; an image whose captions are all blank
        // gets "" (counted as an empty caption), one without any gets none (a missing caption).
        char *cap = n ? strdup("") : NULL;
        cJSON *c;
        cJSON_ArrayForEach(c, captions) {
            if (cJSON_IsString(c) && !vlt_pack_blank(c->valuestring)) {
                free(cap);
                cap = strdup(c->valuestring);
                break;
            }
        }
        cJSON_AddItemToObject(meta, "captions", captions);
        items_push(l, path, cap ? rtrim(cap) : NULL, meta);
        return;
    }
    for (int k = 0; k < n; k++) {
        cJSON *c = cJSON_GetArrayItem(captions, k);
        cJSON *m = cJSON_Duplicate(meta, 1);
        cJSON_AddNumberToObject(m, "caption_index", k);
        items_push(l, k ? strdup(path) : path, cJSON_IsString(c) ? rtrim(strdup(c->valuestring)) : NULL, m);
    }
    cJSON_Delete(captions);
    cJSON_Delete(meta);
}

// Karpathy split: id -> (path pieces, sentences). Returns a JSON array of the split's images, or NULL.
static cJSON *karpathy_images(const source *src, cJSON **root) {
    *root = read_json(src->karpathy);
    if (!*root) return NULL;
    cJSON *imgs = cJSON_GetObjectItem(*root, "images");
    if (!cJSON_IsArray(imgs)) {
        vlt_error_set(VLT_ERR_FORMAT, "%s has no \"images\" array (is it dataset_coco.json?)", src->karpathy);
        return NULL;
    }
    return imgs;
}

// A COCO image with its captions and, with --karpathy, its split entry.
typedef struct { double id; cJSON *im; cJSON *caps; const char *kpath, *ksplit; } rec;

static int rec_by_id(const void *a, const void *b) {
    double x = ((const rec *)a)->id, y = ((const rec *)b)->id;
    return (x > y) - (x < y);
}

static vlt_status load_coco(const source *src, item_list *l) {
    cJSON *kroot = NULL, *kimgs = NULL;
    if (src->karpathy) {
        kimgs = karpathy_images(src, &kroot);
        if (!kimgs) { cJSON_Delete(kroot); return vlt_error_code() ? vlt_error_code() : VLT_ERR_FORMAT; }
    }
    if (!src->coco) {
        // Karpathy only: captions are its "sentences"[].raw.
        cJSON *im;
        cJSON_ArrayForEach(im, kimgs) {
            const char *split = cJSON_GetStringValue(cJSON_GetObjectItem(im, "split"));
            const char *fp = cJSON_GetStringValue(cJSON_GetObjectItem(im, "filepath"));
            const char *fn = cJSON_GetStringValue(cJSON_GetObjectItem(im, "filename"));
            if (!split || !fn) {
                cJSON_Delete(kroot);
                return vlt_error_set(VLT_ERR_FORMAT, "%s: an image entry lacks \"split\" or \"filename\"", src->karpathy);
            }
            if (!karpathy_in_split(split, src->split)) continue;
            if (!path_stays_inside(fn) || (fp && !path_stays_inside(fp))) {
                char what[600];
                snprintf(what, sizeof what, "%s: filepath/filename '%s%s%s'", src->karpathy, fp ? fp : "", fp ? "/" : "", fn);
                items_push_skip(l, strdup(what), NULL, NULL, VLT_PACK_OUTSIDE_IMAGES);
                continue;
            }
            char *dir = fp ? vlt_pack_join(src->images, fp) : strdup(src->images);
            char *path = vlt_pack_join(dir, fn);
            free(dir);
            if (!vlt_pack_file_exists(path)) { free(path); path = vlt_pack_join(src->images, fn); }
            cJSON *caps = cJSON_CreateArray(), *s;
            cJSON_ArrayForEach(s, cJSON_GetObjectItem(im, "sentences")) {
                const char *raw = cJSON_GetStringValue(cJSON_GetObjectItem(s, "raw"));
                if (raw) cJSON_AddItemToArray(caps, cJSON_CreateString(raw));
            }
            cJSON *meta = cJSON_CreateObject();
            cJSON *cid = cJSON_GetObjectItem(im, "cocoid");
            if (cJSON_IsNumber(cid)) cJSON_AddNumberToObject(meta, "image_id", cid->valuedouble);
            cJSON_AddStringToObject(meta, "file_name", fn);
            cJSON_AddStringToObject(meta, "split", split);
            push_captioned(l, src, path, caps, meta);
            if (src->limit > 0 && (long long)l->n >= src->limit) break;
        }
        cJSON_Delete(kroot);
        return VLT_OK;
    }
    cJSON *root = read_json(src->coco);
    if (!root) { cJSON_Delete(kroot); return vlt_error_code(); }
    cJSON *images = cJSON_GetObjectItem(root, "images"), *anns = cJSON_GetObjectItem(root, "annotations");
    if (!cJSON_IsArray(images) || !cJSON_IsArray(anns)) {
        cJSON_Delete(root);
        cJSON_Delete(kroot);
        return vlt_error_set(VLT_ERR_FORMAT, "%s lacks the \"images\" or \"annotations\" array of a COCO caption file",
                             src->coco);
    }
    // Image ids are small integers in COCO; index captions by id through a sorted array of images.
    int n_img = cJSON_GetArraySize(images);
    rec *r = calloc((size_t)n_img + 1, sizeof *r);
    int k = 0;
    cJSON *im;
    cJSON_ArrayForEach(im, images) {
        cJSON *id = cJSON_GetObjectItem(im, "id");
        if (!cJSON_IsNumber(id) || !cJSON_GetStringValue(cJSON_GetObjectItem(im, "file_name"))) {
            for (int i = 0; i < k; i++) cJSON_Delete(r[i].caps);
            free(r);
            cJSON_Delete(root);
            cJSON_Delete(kroot);
            return vlt_error_set(VLT_ERR_FORMAT, "%s: image entry %d lacks \"id\" or \"file_name\"", src->coco, k);
        }
        r[k++] = (rec){id->valuedouble, im, cJSON_CreateArray(), NULL, NULL};
    }
    qsort(r, (size_t)n_img, sizeof *r, rec_by_id);
    cJSON *a;
    cJSON_ArrayForEach(a, anns) {
        cJSON *id = cJSON_GetObjectItem(a, "image_id");
        const char *cap = cJSON_GetStringValue(cJSON_GetObjectItem(a, "caption"));
        if (!cJSON_IsNumber(id) || !cap) continue;   // no caption for that image: counted when it has none at all
        rec key = {.id = id->valuedouble};
        rec *hit = bsearch(&key, r, (size_t)n_img, sizeof *r, rec_by_id);
        if (hit) cJSON_AddItemToArray(hit->caps, cJSON_CreateString(cap));
    }
    if (kimgs) {
        cJSON *ki;
        cJSON_ArrayForEach(ki, kimgs) {
            cJSON *cid = cJSON_GetObjectItem(ki, "cocoid");
            const char *split = cJSON_GetStringValue(cJSON_GetObjectItem(ki, "split"));
            if (!cJSON_IsNumber(cid) || !split || !karpathy_in_split(split, src->split)) continue;
            rec key = {.id = cid->valuedouble};
            rec *hit = bsearch(&key, r, (size_t)n_img, sizeof *r, rec_by_id);
            if (hit) {
                hit->ksplit = split;
                hit->kpath = cJSON_GetStringValue(cJSON_GetObjectItem(ki, "filepath"));
            }
        }
    }
    // Output in the COCO file's image order.
    cJSON_ArrayForEach(im, images) {
        double id = cJSON_GetObjectItem(im, "id")->valuedouble;
        rec key = {.id = id};
        rec *hit = bsearch(&key, r, (size_t)n_img, sizeof *r, rec_by_id);
        if (!hit || !hit->caps) continue;   // duplicate id: first entry only
        cJSON *caps = hit->caps;
        hit->caps = NULL;
        if (kimgs && !hit->ksplit) { cJSON_Delete(caps); continue; }
        const char *fn = cJSON_GetStringValue(cJSON_GetObjectItem(im, "file_name"));
        if (!path_stays_inside(fn)) {
            char what[600];
            snprintf(what, sizeof what, "%s: image %.0f file_name '%s'", src->coco, id, fn);
            items_push_skip(l, strdup(what), NULL, NULL, VLT_PACK_OUTSIDE_IMAGES);
            cJSON_Delete(caps);
            if (src->limit > 0 && (long long)l->n >= src->limit) break;
            continue;
        }
        char *path = vlt_pack_join(src->images, fn);
        if (!vlt_pack_file_exists(path) && hit->kpath && path_stays_inside(hit->kpath)) {
            char *dir = vlt_pack_join(src->images, hit->kpath);
            char *alt = vlt_pack_join(dir, fn);
            free(dir);
            if (vlt_pack_file_exists(alt)) { free(path); path = alt; }
            else free(alt);
        }
        cJSON *meta = cJSON_CreateObject();
        cJSON_AddNumberToObject(meta, "image_id", id);
        cJSON_AddStringToObject(meta, "file_name", fn);
        if (hit->ksplit) cJSON_AddStringToObject(meta, "split", hit->ksplit);
        push_captioned(l, src, path, caps, meta);
        if (src->limit > 0 && (long long)l->n >= src->limit) break;
    }
    for (int i = 0; i < n_img; i++) cJSON_Delete(r[i].caps);
    free(r);
    cJSON_Delete(root);
    cJSON_Delete(kroot);
    return VLT_OK;
}

static int is_header_word(const char *s) {
    static const char *words[] = {"path", "filepath", "image", "file", "filename", "url", "image_path"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strcasecmp(s, words[i])) return 1;
    return 0;
}

static vlt_status load_tsv(const source *src, item_list *l) {
    FILE *f = fopen(src->tsv, "r");
    if (!f) return vlt_error_set(VLT_ERR_IO, "cannot open %s: %s", src->tsv, strerror(errno));
    char *base = vlt_pack_base_dir(src->images, src->tsv);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long long lineno = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        // Only the line end is cut here: "path<TAB>" is a line with an empty caption, not one
        // without a tab.
        line[strcspn(line, "\r\n")] = 0;
        if (vlt_pack_blank(line)) continue;
        char *tab = strchr(line, '\t');
        if (!tab) {
            char what[600];
            snprintf(what, sizeof what, "%s:%lld: no tab between path and caption", src->tsv, lineno);
            items_push_skip(l, strdup(what), NULL, NULL, VLT_PACK_BAD_LINE);
        } else {
            *tab = 0;
            if (lineno == 1 && is_header_word(line)) continue;
            char *caption = tab + 1;
            char *t2 = strchr(caption, '\t');   // extra columns are ignored
            if (t2) *t2 = 0;
            cJSON *meta = cJSON_CreateObject();
            cJSON_AddStringToObject(meta, "source_path", line);
            items_push(l, vlt_pack_join(base, line), rtrim(strdup(caption)), meta);
        }
        if (src->limit > 0 && (long long)l->n >= src->limit) break;
    }
    free(line);
    free(base);
    fclose(f);
    return VLT_OK;
}

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
           !strcasecmp(dot, ".webp");
}

// torchvision's IMG_EXTENSIONS (what ImageFolder takes as a sample): vlt decodes JPEG, PNG and WebP,
// so a BMP, PPM, PGM or TIFF in a class folder is counted as a bad image, by name, rather than
// silently left out of the set torchvision would see.
static int has_torchvision_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    static const char *ext[] = {".bmp", ".pgm", ".ppm", ".tif", ".tiff"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot, ext[i])) return 1;
    return has_image_ext(name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct { char **v; size_t n, cap; } str_list;

static vlt_status walk(const char *dir, str_list *out, int depth, int (*is_image)(const char *)) {
    DIR *d = opendir(dir);
    if (!d) return vlt_error_set(VLT_ERR_IO, "cannot open folder %s: %s", dir, strerror(errno));
    struct dirent *e;
    vlt_status rc = VLT_OK;
    while (rc == VLT_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = vlt_pack_join(dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0) { free(p); continue; }
        if (S_ISDIR(st.st_mode) && depth < 16) {
            rc = walk(p, out, depth + 1, is_image);
            free(p);
        } else if (S_ISREG(st.st_mode) && is_image(e->d_name)) {
            if (out->n == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 1024;
                out->v = realloc(out->v, out->cap * sizeof(char *));
            }
            out->v[out->n++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
    return rc;
}

static vlt_status load_folder(const source *src, item_list *l) {
    str_list files = {0};
    vlt_status s = walk(src->folder, &files, 0, has_image_ext);
    if (s != VLT_OK) {
        for (size_t i = 0; i < files.n; i++) free(files.v[i]);
        free(files.v);
        return s;
    }
    if (files.n) qsort(files.v, files.n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < files.n; i++) {
        char *p = files.v[i];
        size_t n = strlen(p);
        char *txt = malloc(n + 5);
        memcpy(txt, p, n + 1);
        char *dot = strrchr(txt, '.');
        strcpy(dot, ".txt");
        char *caption = vlt_read_file(txt, NULL);
        free(txt);
        cJSON *meta = cJSON_CreateObject();
        cJSON_AddStringToObject(meta, "source_path", p);
        items_push(l, p, caption ? rtrim(caption) : NULL, meta);
        if (src->limit > 0 && (long long)l->n >= src->limit) {
            for (size_t j = i + 1; j < files.n; j++) free(files.v[j]);
            break;
        }
    }
    free(files.v);
    return VLT_OK;
}

// The sub-folders of dir, sorted by name (strcmp on UTF-8 is code point order, as Python's sorted()):
// the classes in torchvision's ImageFolder order (find_classes: every sub-folder, hidden ones too).
static vlt_status class_folders(const char *dir, str_list *out) {
    DIR *d = opendir(dir);
    if (!d) return vlt_error_set(VLT_ERR_IO, "cannot open folder %s: %s", dir, strerror(errno));
    struct dirent *e;
    vlt_status rc = VLT_OK;
    while (rc == VLT_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = vlt_pack_join(dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (strpbrk(e->d_name, "\n\r"))
                rc = vlt_error_set(VLT_ERR_FORMAT, "class folder '%s' has a line break in its name (classes.txt holds one "
                                   "name per line)", p);
            if (out->n == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 64;
                out->v = realloc(out->v, out->cap * sizeof(char *));
            }
            out->v[out->n++] = strdup(e->d_name);
        }
        free(p);
    }
    closedir(d);
    if (out->n) qsort(out->v, out->n, sizeof(char *), cmp_str);
    return rc;
}

static void str_list_free(str_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

// --classes DIR: one sample per image file under DIR/<class>/ (recursively, sorted by path), its
// label the class's index; a .txt of the same name is its caption when there is one.
static vlt_status load_classes(const source *src, item_list *l, str_list *classes, FILE *warn) {
    VLT_TRY(class_folders(src->classes, classes));
    if (classes->n == 0) return vlt_error_set(VLT_ERR_FORMAT, "%s holds no class folders (one sub-folder per class)", src->classes);
    for (size_t c = 0; c < classes->n; c++) {
        if (warn && classes->v[c][0] == '.')
            fprintf(warn, "vlt shards: warning: hidden folder '%s' is class %zu (as in torchvision's ImageFolder); remove it "
                    "if it is not a class\n", classes->v[c], c);
        char *dir = vlt_pack_join(src->classes, classes->v[c]);
        str_list files = {0};
        vlt_status s = walk(dir, &files, 0, has_torchvision_image_ext);
        free(dir);
        if (s != VLT_OK) {
            str_list_free(&files);
            return s;
        }
        if (files.n) qsort(files.v, files.n, sizeof(char *), cmp_str);
        else if (warn) fprintf(warn, "vlt shards: warning: class %zu '%s' has no images\n", c, classes->v[c]);
        bool full = false;
        for (size_t i = 0; i < files.n; i++) {
            char *p = files.v[i];
            files.v[i] = NULL;
            if (full) { free(p); continue; }
            size_t n = strlen(p);
            char *txt = malloc(n + 5);
            memcpy(txt, p, n + 1);
            strcpy(strrchr(txt, '.'), ".txt");
            char *caption = vlt_read_file(txt, NULL);
            free(txt);
            if (caption && vlt_pack_blank(caption)) { free(caption); caption = NULL; }
            cJSON *meta = cJSON_CreateObject();
            cJSON_AddStringToObject(meta, "class", classes->v[c]);
            cJSON_AddNumberToObject(meta, "label", (double)c);
            cJSON_AddStringToObject(meta, "source_path", p);
            items_push(l, p, caption ? rtrim(caption) : NULL, meta);
            if (l->n && !l->oom) l->v[l->n - 1].label = (int)c;
            full = src->limit > 0 && (long long)l->n >= src->limit;
        }
        str_list_free(&files);
    }
    return VLT_OK;
}

// DIR/classes.txt: the class names in index order, one per line (temp file, fsync, rename).
static vlt_status write_classes(const char *out_dir, const str_list *classes) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/classes.txt", out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return vlt_error_set(VLT_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    int bad = 0;
    for (size_t c = 0; c < classes->n; c++) bad |= fprintf(f, "%s\n", classes->v[c]) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        vlt_status st = vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return st;
    }
    return VLT_OK;
}

// --- writing ---------------------------------------------------------------------------------------

// What the shared pipeline (data/pack_run.h) calls back with.
typedef struct {
    const vlt_shardwriter_cfg *cfg;
    item_list *items;
    const char *classes_out;   // --classes: the folder that gets classes.txt
    const str_list *classes;
} pack_ctx;

static void prepare(void *ctx, size_t i, vlt_pack_prepared *p) {
    const pack_ctx *c = ctx;
    const item *it = &c->items->v[i];
    p->skip = it->skip;
    if (p->skip >= 0) return;
    if (!it->caption && it->label < 0) { p->skip = VLT_PACK_MISSING_CAPTION; return; }
    if (it->caption && vlt_pack_blank(it->caption)) { p->skip = VLT_PACK_EMPTY_CAPTION; return; }
    size_t len;
    char *buf = vlt_read_file(it->path, &len);
    if (!buf) {
        p->skip = VLT_PACK_MISSING_IMAGE;
        snprintf(p->err, sizeof p->err, "%s: %s", it->path, strerror(errno));
        return;
    }
    if (vlt_shardwriter_prepare_encoded(c->cfg, (const uint8_t *)buf, len, it->path, &p->jpg, &p->len, &p->w, &p->h) !=
        VLT_OK) {
        p->skip = VLT_PACK_BAD_IMAGE;
        snprintf(p->err, sizeof p->err, "%s", vlt_error_message());
    }
    free(buf);
}

// KEY.jpg, KEY.txt (when there is a caption), KEY.cls (with a label) and KEY.json: the item's
// fields and the stored image's size.
static vlt_status emit(void *ctx, size_t i, const vlt_pack_prepared *p, vlt_shardwriter *w) {
    item *it = &((pack_ctx *)ctx)->items->v[i];
    cJSON *meta = it->meta ? it->meta : cJSON_CreateObject();
    it->meta = NULL;
    cJSON_AddNumberToObject(meta, "width", p->w);
    cJSON_AddNumberToObject(meta, "height", p->h);
    char *json = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    vlt_status s = vlt_shardwriter_add_labeled(w, p->jpg, p->len, it->caption, it->label, json, NULL);
    cJSON_free(json);
    return s;
}

static const char *what(void *ctx, size_t i) { return ((pack_ctx *)ctx)->items->v[i].path; }

// classes.txt once the shards are in (--classes).
static vlt_status after_close(void *ctx, vlt_status s) {
    const pack_ctx *c = ctx;
    return s == VLT_OK && c->classes_out ? write_classes(c->classes_out, c->classes) : s;
}

vlt_status vlt_pack_source_check(const vlt_pack_source *src) {
    int n_sources = (src->coco || src->karpathy) + !!src->tsv + !!src->folder + !!src->classes;
    if (n_sources != 1)
        return vlt_error_set(VLT_ERR_ARG, "give exactly one source: --coco/--karpathy, --tsv, --folder or --classes");
    if (src->classes && src->each_caption) return vlt_error_set(VLT_ERR_ARG, "--each-caption is for --coco/--karpathy");
    if ((src->coco || src->karpathy) && !src->images)
        return vlt_error_set(VLT_ERR_ARG, "--coco/--karpathy need --images DIR");
    if (src->karpathy && !src->split) return vlt_error_set(VLT_ERR_ARG, "--karpathy needs --split train|val|test");
    if (src->split && !src->karpathy) return vlt_error_set(VLT_ERR_ARG, "--split needs --karpathy dataset_coco.json");
    if (src->split && strcmp(src->split, "train") && strcmp(src->split, "val") && strcmp(src->split, "test"))
        return vlt_error_set(VLT_ERR_ARG, "--split must be train, val or test, not '%s'", src->split);
    return VLT_OK;
}

vlt_status vlt_pack_shards(const vlt_pack_source *src, const vlt_shardwriter_cfg *cfg, FILE *warn,
                           vlt_pack_stats *stats) {
    memset(stats, 0, sizeof *stats);
    VLT_TRY(vlt_pack_source_check(src));
    item_list items = {0};
    str_list classes = {0};
    vlt_status s = src->tsv ? load_tsv(src, &items) : src->folder ? load_folder(src, &items)
                 : src->classes ? load_classes(src, &items, &classes, warn) : load_coco(src, &items);
    stats->classes = (int)classes.n;
    if (s == VLT_OK && items.oom) s = vlt_error_set(VLT_ERR_NOMEM, "out of memory reading the input list");
    if (s == VLT_OK && items.n == 0) s = vlt_error_set(VLT_ERR_FORMAT, "no input items found");
    if (s == VLT_OK) {
        pack_ctx ctx = {cfg, &items, src->classes ? cfg->out_dir : NULL, &classes};
        vlt_pack_run run = {.n = items.n, .ctx = &ctx, .prepare = prepare, .emit = emit, .what = what,
                            .after_close = after_close, .skip_names = SKIP_NAMES, .n_skip = VLT_PACK_N_SKIP};
        s = vlt_pack_run_items(&run, cfg, warn, stats->skipped, &stats->written, &stats->shards);
    }
    items_free(&items);
    str_list_free(&classes);
    return s;
}
