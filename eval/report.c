// report.c — the evaluation report (see report.h).
#include "eval/report.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval/json_file.h"
#include "eval/sha256.h"

vlt_status vlt_eval_report_init(vlt_eval_report *r, const char *version, int argc, char *const *argv) {
    memset(r, 0, sizeof *r);
    r->root = cJSON_CreateObject();
    if (!r->root) return vlt_error_set(VLT_ERR_NOMEM, "report: out of memory");
    cJSON_AddNumberToObject(r->root, "vlt_report", 1);
    cJSON *cmd = cJSON_AddArrayToObject(r->root, "command");
    for (int i = 0; i < argc; i++) cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
    char cwd[PATH_MAX];
    cJSON_AddStringToObject(r->root, "cwd", getcwd(cwd, sizeof cwd) ? cwd : "");
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(r->root, "date", when);
    cJSON *v = cJSON_AddObjectToObject(r->root, "vlt");
    cJSON_AddStringToObject(v, "version", version);
#ifdef __VERSION__
    cJSON_AddStringToObject(v, "compiler", __VERSION__);
#endif
    cJSON_AddStringToObject(v, "built", __DATE__ " " __TIME__);
    const char *blas = openblas_get_config();
    cJSON_AddStringToObject(v, "blas", blas ? blas : "");
    cJSON_AddStringToObject(v, "features", ""
#ifdef VLT_MPI
                            "mpi "
#endif
#ifdef VLT_HAVE_CUDA
                            "cuda "
#endif
#ifdef __SANITIZE_ADDRESS__
                            "asan "
#endif
                            "cpu");
    cJSON_AddNumberToObject(v, "threads", omp_get_max_threads());
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(v, "host", host);
    r->inputs = cJSON_AddArrayToObject(r->root, "inputs");
    r->settings = cJSON_AddObjectToObject(r->root, "settings");
    r->scorers = cJSON_AddObjectToObject(r->root, "scorers");
    r->numbers = cJSON_AddObjectToObject(r->root, "numbers");
    r->details = cJSON_AddObjectToObject(r->root, "details");
    if (!r->inputs || !r->settings || !r->scorers || !r->numbers || !r->details) {
        vlt_eval_report_free(r);
        return vlt_error_set(VLT_ERR_NOMEM, "report: out of memory");
    }
    return VLT_OK;
}

void vlt_eval_report_free(vlt_eval_report *r) {
    cJSON_Delete(r->root);
    memset(r, 0, sizeof *r);
}

vlt_status vlt_eval_report_input(vlt_eval_report *r, const char *role, const char *path) {
    char hex[65];
    long long bytes = 0;
    VLT_TRY(vlt_sha256_file(path, hex, &bytes));
    char abs[PATH_MAX];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", role);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "abs_path", realpath(path, abs) ? abs : path);
    cJSON_AddNumberToObject(o, "bytes", (double)bytes);
    cJSON_AddStringToObject(o, "sha256", hex);
    cJSON_AddItemToArray(r->inputs, o);
    return VLT_OK;
}

static void replace(cJSON *obj, const char *key, cJSON *item) {
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    else cJSON_AddItemToObject(obj, key, item);
}

void vlt_eval_report_setting(vlt_eval_report *r, const char *key, const char *value) {
    replace(r->settings, key, cJSON_CreateString(value ? value : ""));
}
void vlt_eval_report_setting_num(vlt_eval_report *r, const char *key, double value) {
    replace(r->settings, key, cJSON_CreateNumber(value));
}
void vlt_eval_report_scorer(vlt_eval_report *r, const char *name, const char *definition) {
    replace(r->scorers, name, cJSON_CreateString(definition));
}
void vlt_eval_report_number(vlt_eval_report *r, const char *key, double value) {
    // JSON has no NaN or infinity: those are written as strings and compared as such
    // cJSON prints 15 digits when they read back within its epsilon, which is not always the same
    // double: numbers go in as raw text with 17 significant digits, which always reads back exactly
    char text[40];
    snprintf(text, sizeof text, "%.17g", value);
    if (isfinite(value)) replace(r->numbers, key, cJSON_CreateRaw(text));
    else replace(r->numbers, key, cJSON_CreateString(isnan(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity"));
}

vlt_status vlt_eval_report_save(const vlt_eval_report *r, const char *path) {
    if (!strcmp(path, "-")) {
        char *s = cJSON_Print(r->root);
        if (!s) return vlt_error_set(VLT_ERR_NOMEM, "report: out of memory");
        printf("%s\n", s);
        free(s);
        return VLT_OK;
    }
    return vlt_eval_json_save(path, r->root);
}

// Bit-for-bit equality of two report values (numbers, or the strings of NaN / infinities).
static int as_double(const cJSON *v, double *d) {
    if (cJSON_IsNumber(v)) { *d = v->valuedouble; return 1; }
    if (cJSON_IsRaw(v)) { *d = strtod(v->valuestring, NULL); return 1; }  // a report being written
    return 0;
}

static int same_value(const cJSON *a, const cJSON *b) {
    double x, y;
    if (as_double(a, &x) && as_double(b, &y)) return memcmp(&x, &y, sizeof(double)) == 0;
    if (cJSON_IsString(a) && cJSON_IsString(b)) return strcmp(a->valuestring, b->valuestring) == 0;
    return 0;
}

static void print_value(FILE *out, const cJSON *v) {
    double d;
    if (!v) fprintf(out, "(absent)");
    else if (as_double(v, &d)) fprintf(out, "%.17g", d);
    else if (cJSON_IsString(v)) fprintf(out, "%s", v->valuestring);
    else fprintf(out, "(not a number)");
}

void vlt_eval_report_compare(const cJSON *old_numbers, const cJSON *new_numbers, int show, FILE *out, int *n_same,
                             int *n_diff) {
    int same = 0, diff = 0, k = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, old_numbers) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(new_numbers, o->string);
        int eq = n && same_value(o, n);
        if (eq) same++; else diff++;
        if (out && (!eq || k < show)) {
            fprintf(out, "  %-40s %-10s ", o->string, eq ? "identical" : "DIFFERS");
            print_value(out, o);
            if (!eq) {
                fprintf(out, " -> ");
                print_value(out, n);
                double x, y;
                if (n && as_double(o, &x) && as_double(n, &y)) fprintf(out, "  (relative %.3g)", fabs(y - x) / fmax(fabs(x), 1e-300));
            }
            fprintf(out, "\n");
        }
        k++;
    }
    cJSON_ArrayForEach(o, new_numbers) {
        if (cJSON_GetObjectItemCaseSensitive(old_numbers, o->string)) continue;
        diff++;
        if (out) {
            fprintf(out, "  %-40s %-10s (absent) -> ", o->string, "DIFFERS");
            print_value(out, o);
            fprintf(out, "\n");
        }
    }
    if (n_same) *n_same = same;
    if (n_diff) *n_diff = diff;
}

int vlt_eval_report_check_inputs(const cJSON *report, FILE *out) {
    int bad = 0;
    const cJSON *in;
    cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(report, "inputs")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(in, "abs_path"), *h = cJSON_GetObjectItemCaseSensitive(in, "sha256");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(in, "role");
        if (!cJSON_IsString(p) || !cJSON_IsString(h)) { bad++; continue; }
        char hex[65];
        long long bytes = 0;
        const char *state;
        if (vlt_sha256_file(p->valuestring, hex, &bytes) != VLT_OK) state = "MISSING";
        else state = strcmp(hex, h->valuestring) == 0 ? "same" : "CHANGED";
        if (strcmp(state, "same") != 0) bad++;
        if (out) fprintf(out, "  %-8s %-12s %s\n", state, cJSON_IsString(role) ? role->valuestring : "", p->valuestring);
    }
    return bad;
}
