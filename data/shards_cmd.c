// shards_cmd.c — `vlt shards`: packs image-caption pairs into webdataset shards (data/shardwriter.h)
// from COCO caption annotations (optionally with the Karpathy split file), a TSV of
// path<TAB>caption, or a folder of image + .txt pairs. Images are read and (re-)encoded on all
// OpenMP threads in batches and appended in input order. A missing or undecodable image, or a
// missing caption, skips that sample and is counted; malformed annotation files stop the run.
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "data/shardwriter.h"
#include "data/cli_args.h"
#include "train/commands.h"

#define BATCH 128

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlt shards --out DIR SOURCE [options]\n"
            "\n"
            "Packs image-caption pairs into webdataset shards DIR/00000.tar, ... (members KEY.jpg, KEY.txt,\n"
            "KEY.json; keys 000000000, 000000001, ... as img2dataset) and DIR/sizes.json.\n"
            "\n"
            "SOURCE, one of:\n"
            "  --coco FILE.json --images DIR      COCO caption annotations (captions_train2017.json, ...):\n"
            "                                     one sample per image, .txt the first caption, .json all of\n"
            "                                     them (\"captions\"), the image id and file name\n"
            "  --karpathy dataset_coco.json --images DIR --split train|val|test\n"
            "                                     the Karpathy split (train includes restval); images are\n"
            "                                     DIR/<filepath>/<filename> or DIR/<filename>. With --coco\n"
            "                                     too, captions come from the COCO file for the split's images\n"
            "  --tsv FILE                         lines of image-path<TAB>caption (relative paths are taken\n"
            "                                     from --images DIR, else from the TSV's folder); a first line\n"
            "                                     naming columns (path/filepath/image/file/filename/url) is skipped\n"
            "  --folder DIR                       image files (.jpg .jpeg .png .webp, searched recursively,\n"
            "                                     sorted) each with a caption in the .txt of the same name\n"
            "\n"
            "options:\n"
            "  --out DIR            output directory (created if missing)\n"
            "  --shard-size K       samples per shard (default 1000)\n"
            "  --resize N           downscale images whose shorter side exceeds N to N (bicubic); JPEGs\n"
            "                       that need no resize are stored unchanged (default 0: never resize)\n"
            "  --each-caption       COCO/Karpathy: one sample per caption instead of per image\n"
            "  --quality Q          JPEG quality of re-encoded images (default 95)\n"
            "  --prefix P           shard name prefix (default none)\n"
            "  --limit N            stop after N input items (for trials)\n"
            "  -h, --help           this help\n");
}


// --- input items -----------------------------------------------------------------------------------

typedef struct {
    char *path;      // image file
    char *caption;   // NULL: missing (counted)
    cJSON *meta;     // extra .json fields (owned), or NULL
} item;

typedef struct {
    item *v;
    size_t n, cap;
} item_list;

static void items_push(item_list *l, char *path, char *caption, cJSON *meta) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) { fprintf(stderr, "vlt shards: out of memory\n"); exit(1); }
    }
    l->v[l->n++] = (item){path, caption, meta};
}

static void items_free(item_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].caption);
        cJSON_Delete(l->v[i].meta);
    }
    free(l->v);
}

static char *join(const char *dir, const char *name) {
    if (!dir || !*dir || name[0] == '/') return strdup(name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return s;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

// Whole file, NUL-terminated. NULL with errno set on failure.
static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            char *b = realloc(buf, cap);
            if (!b) { free(buf); buf = NULL; }
            else buf = b;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) { free(buf); errno = EIO; return NULL; }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static cJSON *read_json(const char *path) {
    char *text = read_text(path, NULL);
    if (!text) {
        fprintf(stderr, "vlt shards: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text ? (long)(at - text) : -1;
        fprintf(stderr, "vlt shards: %s is not valid JSON (near byte %ld)\n", path, off);
    }
    free(text);
    return j;
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

typedef struct {
    const char *coco, *karpathy, *split, *images, *tsv, *folder;
    int each_caption;
    long long limit;
} source;

// Adds one COCO/Karpathy image: per image (first caption in .txt) or one item per caption.
static void push_captioned(item_list *l, const source *src, char *path, cJSON *captions, cJSON *meta) {
    int n = cJSON_GetArraySize(captions);
    if (!src->each_caption || n == 0) {
        cJSON *first = cJSON_GetArrayItem(captions, 0);
        char *cap = cJSON_IsString(first) ? strdup(first->valuestring) : NULL;
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
        fprintf(stderr, "vlt shards: %s has no \"images\" array (is it dataset_coco.json?)\n", src->karpathy);
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

static int load_coco(const source *src, item_list *l) {
    cJSON *kroot = NULL, *kimgs = NULL;
    if (src->karpathy) {
        kimgs = karpathy_images(src, &kroot);
        if (!kimgs) { cJSON_Delete(kroot); return 1; }
    }
    if (!src->coco) {
        // Karpathy only: captions are its "sentences"[].raw.
        cJSON *im;
        cJSON_ArrayForEach(im, kimgs) {
            const char *split = cJSON_GetStringValue(cJSON_GetObjectItem(im, "split"));
            const char *fp = cJSON_GetStringValue(cJSON_GetObjectItem(im, "filepath"));
            const char *fn = cJSON_GetStringValue(cJSON_GetObjectItem(im, "filename"));
            if (!split || !fn) {
                fprintf(stderr, "vlt shards: %s: an image entry lacks \"split\" or \"filename\"\n", src->karpathy);
                cJSON_Delete(kroot);
                return 1;
            }
            if (!karpathy_in_split(split, src->split)) continue;
            char *dir = fp ? join(src->images, fp) : strdup(src->images);
            char *path = join(dir, fn);
            free(dir);
            if (!file_exists(path)) { free(path); path = join(src->images, fn); }
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
        return 0;
    }
    cJSON *root = read_json(src->coco);
    if (!root) { cJSON_Delete(kroot); return 1; }
    cJSON *images = cJSON_GetObjectItem(root, "images"), *anns = cJSON_GetObjectItem(root, "annotations");
    if (!cJSON_IsArray(images) || !cJSON_IsArray(anns)) {
        fprintf(stderr, "vlt shards: %s lacks the \"images\" or \"annotations\" array of a COCO caption file\n",
                src->coco);
        cJSON_Delete(root);
        cJSON_Delete(kroot);
        return 1;
    }
    // Image ids are small integers in COCO; index captions by id through a sorted array of images.
    int n_img = cJSON_GetArraySize(images);
    rec *r = calloc((size_t)n_img + 1, sizeof *r);
    int k = 0;
    cJSON *im;
    cJSON_ArrayForEach(im, images) {
        cJSON *id = cJSON_GetObjectItem(im, "id");
        if (!cJSON_IsNumber(id) || !cJSON_GetStringValue(cJSON_GetObjectItem(im, "file_name"))) {
            fprintf(stderr, "vlt shards: %s: image entry %d lacks \"id\" or \"file_name\"\n", src->coco, k);
            free(r);
            cJSON_Delete(root);
            cJSON_Delete(kroot);
            return 1;
        }
        r[k++] = (rec){id->valuedouble, im, cJSON_CreateArray(), NULL, NULL};
    }
    qsort(r, (size_t)n_img, sizeof *r, rec_by_id);
    cJSON *a;
    cJSON_ArrayForEach(a, anns) {
        cJSON *id = cJSON_GetObjectItem(a, "image_id");
        const char *cap = cJSON_GetStringValue(cJSON_GetObjectItem(a, "caption"));
        if (!cJSON_IsNumber(id) || !cap) {
            fprintf(stderr, "vlt shards: %s: an annotation lacks \"image_id\" or \"caption\"\n", src->coco);
            continue;
        }
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
        char *path = join(src->images, fn);
        if (!file_exists(path) && hit->kpath) {
            char *dir = join(src->images, hit->kpath);
            char *alt = join(dir, fn);
            free(dir);
            if (file_exists(alt)) { free(path); path = alt; }
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
    return 0;
}

static int is_header_word(const char *s) {
    static const char *words[] = {"path", "filepath", "image", "file", "filename", "url", "image_path"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strcasecmp(s, words[i])) return 1;
    return 0;
}

static int load_tsv(const source *src, item_list *l) {
    FILE *f = fopen(src->tsv, "r");
    if (!f) {
        fprintf(stderr, "vlt shards: cannot open %s: %s\n", src->tsv, strerror(errno));
        return 1;
    }
    char *base = NULL;
    if (src->images) base = strdup(src->images);
    else {
        base = strdup(src->tsv);
        char *slash = strrchr(base, '/');
        if (slash) *slash = 0;
        else { free(base); base = strdup("."); }
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long long lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        rtrim(line);
        if (!*line) continue;
        char *tab = strchr(line, '\t');
        if (!tab) {
            fprintf(stderr, "vlt shards: %s:%lld: no tab between path and caption\n", src->tsv, lineno);
            rc = 1;
            break;
        }
        *tab = 0;
        if (lineno == 1 && is_header_word(line)) continue;
        char *caption = tab + 1;
        char *t2 = strchr(caption, '\t');   // extra columns are ignored
        if (t2) *t2 = 0;
        cJSON *meta = cJSON_CreateObject();
        cJSON_AddStringToObject(meta, "source_path", line);
        items_push(l, join(base, line), *caption ? strdup(caption) : NULL, meta);
        if (src->limit > 0 && (long long)l->n >= src->limit) break;
    }
    free(line);
    free(base);
    fclose(f);
    return rc;
}

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
           !strcasecmp(dot, ".webp");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct { char **v; size_t n, cap; } str_list;

static int walk(const char *dir, str_list *out, int depth) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "vlt shards: cannot open folder %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = join(dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0) { free(p); continue; }
        if (S_ISDIR(st.st_mode) && depth < 16) {
            rc = walk(p, out, depth + 1);
            free(p);
        } else if (S_ISREG(st.st_mode) && has_image_ext(e->d_name)) {
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

static int load_folder(const source *src, item_list *l) {
    str_list files = {0};
    if (walk(src->folder, &files, 0) != 0) {
        for (size_t i = 0; i < files.n; i++) free(files.v[i]);
        free(files.v);
        return 1;
    }
    if (files.n) qsort(files.v, files.n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < files.n; i++) {
        char *p = files.v[i];
        size_t n = strlen(p);
        char *txt = malloc(n + 5);
        memcpy(txt, p, n + 1);
        char *dot = strrchr(txt, '.');
        strcpy(dot, ".txt");
        char *caption = read_text(txt, NULL);
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
    return 0;
}

// --- writing ---------------------------------------------------------------------------------------

enum { SKIP_NO_CAPTION, SKIP_MISSING_IMAGE, SKIP_BAD_IMAGE, N_SKIP };
static const char *SKIP_NAMES[N_SKIP] = {"missing caption", "missing image", "bad image"};

typedef struct {
    uint8_t *jpg;
    size_t len;
    int w, h, skip;   // skip: -1 none, else SKIP_*
    char err[300];
} prepared;

static void prepare(const vlt_shardwriter_cfg *cfg, const item *it, prepared *p) {
    memset(p, 0, sizeof *p);
    p->skip = -1;
    if (!it->caption || !*it->caption) { p->skip = SKIP_NO_CAPTION; return; }
    size_t len;
    char *buf = read_text(it->path, &len);
    if (!buf) {
        p->skip = SKIP_MISSING_IMAGE;
        snprintf(p->err, sizeof p->err, "%s: %s", it->path, strerror(errno));
        return;
    }
    if (vlt_shardwriter_prepare_encoded(cfg, (const uint8_t *)buf, len, it->path, &p->jpg, &p->len, &p->w, &p->h) !=
        VLT_OK) {
        p->skip = SKIP_BAD_IMAGE;
        snprintf(p->err, sizeof p->err, "%s", vlt_error_message());
    }
    free(buf);
}

int vlt_cmd_shards(int argc, char **argv) {
    source src = {0};
    const char *out = NULL, *prefix = "";
    long long shard_size = 1000, resize = 0, quality = 95;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--each-caption")) src.each_caption = 1;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--out"))) out = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--coco"))) src.coco = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--karpathy"))) src.karpathy = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--split"))) src.split = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--images"))) src.images = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--tsv"))) src.tsv = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--folder"))) src.folder = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--shard-size"))) shard_size = vlt_cli_int("shards", "--shard-size", v, 1, 1 << 30);
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--resize"))) resize = vlt_cli_int("shards", "--resize", v, 0, 1 << 16);
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--quality"))) quality = vlt_cli_int("shards", "--quality", v, 1, 100);
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--prefix"))) prefix = v;
        else if ((v = vlt_cli_opt("shards", argc, argv, &i, "--limit"))) src.limit = vlt_cli_int("shards", "--limit", v, 1, 1ll << 50);
        else {
            fprintf(stderr, "vlt shards: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    int n_sources = (src.coco || src.karpathy) + !!src.tsv + !!src.folder;
    const char *problem = !out ? "--out is required"
                          : n_sources != 1 ? "give exactly one source: --coco/--karpathy, --tsv or --folder"
                          : (src.coco || src.karpathy) && !src.images ? "--coco/--karpathy need --images DIR"
                          : src.karpathy && !src.split ? "--karpathy needs --split train|val|test"
                          : src.split && !src.karpathy ? "--split needs --karpathy dataset_coco.json"
                          : src.split && strcmp(src.split, "train") && strcmp(src.split, "val") && strcmp(src.split, "test")
                              ? "--split must be train, val or test"
                              : NULL;
    if (problem) {
        fprintf(stderr, "vlt shards: %s\n\n", problem);
        usage(stderr);
        return 2;
    }
    item_list items = {0};
    int rc = src.tsv ? load_tsv(&src, &items) : src.folder ? load_folder(&src, &items) : load_coco(&src, &items);
    if (rc != 0) { items_free(&items); return 1; }
    if (items.n == 0) {
        fprintf(stderr, "vlt shards: no input items found\n");
        items_free(&items);
        return 1;
    }
    vlt_shardwriter_cfg cfg;
    vlt_shardwriter_cfg_default(&cfg, out);
    cfg.shard_size = (int)shard_size;
    cfg.resize = (int)resize;
    cfg.quality = (int)quality;
    cfg.prefix = prefix;
    vlt_shardwriter *w;
    if (vlt_shardwriter_open(&cfg, &w) != VLT_OK) {
        fprintf(stderr, "vlt shards: %s\n", vlt_error_message());
        items_free(&items);
        return 1;
    }
    long long skipped[N_SKIP] = {0}, warned = 0;
    prepared *batch = calloc(BATCH, sizeof *batch);
    for (size_t b0 = 0; rc == 0 && b0 < items.n; b0 += BATCH) {
        int n = (int)(items.n - b0 < BATCH ? items.n - b0 : BATCH);
#pragma omp parallel for schedule(dynamic, 2)
        for (int k = 0; k < n; k++) prepare(&cfg, &items.v[b0 + k], &batch[k]);
        for (int k = 0; k < n; k++) {
            prepared *p = &batch[k];
            item *it = &items.v[b0 + k];
            if (p->skip >= 0) {
                skipped[p->skip]++;
                if (warned++ < 20)
                    fprintf(stderr, "vlt shards: skipped (%s): %s\n", SKIP_NAMES[p->skip], p->err[0] ? p->err : it->path);
                continue;
            }
            cJSON *meta = it->meta ? it->meta : cJSON_CreateObject();
            it->meta = NULL;
            cJSON_AddNumberToObject(meta, "width", p->w);
            cJSON_AddNumberToObject(meta, "height", p->h);
            char *json = cJSON_PrintUnformatted(meta);
            cJSON_Delete(meta);
            if (rc == 0 && vlt_shardwriter_add(w, p->jpg, p->len, it->caption, json, NULL) != VLT_OK) {
                fprintf(stderr, "vlt shards: %s\n", vlt_error_message());
                rc = 1;
            }
            cJSON_free(json);
            free(p->jpg);
            p->jpg = NULL;
        }
        for (int k = 0; k < n; k++) free(batch[k].jpg);
    }
    free(batch);
    long long written = vlt_shardwriter_samples(w);
    int shards = vlt_shardwriter_shards(w);
    if (rc == 0 && written == 0) {
        fprintf(stderr, "vlt shards: no sample could be written\n");
        rc = 1;
    }
    if (rc != 0) vlt_shardwriter_abort(w);
    else if (vlt_shardwriter_close(w) != VLT_OK) {
        fprintf(stderr, "vlt shards: %s\n", vlt_error_message());
        rc = 1;
    }
    long long total_skipped = skipped[0] + skipped[1] + skipped[2];
    if (warned > 20) fprintf(stderr, "vlt shards: ... %lld more skipped\n", warned - 20);
    if (rc == 0)
        printf("vlt shards: wrote %lld samples in %d shards to %s; skipped %lld (%lld missing image, %lld bad image, "
               "%lld missing caption)\n",
               written, shards, out, total_skipped, skipped[SKIP_MISSING_IMAGE], skipped[SKIP_BAD_IMAGE],
               skipped[SKIP_NO_CAPTION]);
    items_free(&items);
    return rc;
}
