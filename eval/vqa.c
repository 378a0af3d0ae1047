// vqa.c — VQAv2 answer normalization and accuracy (see vqa.h).
#include "eval/vqa.h"

#include <stdlib.h>
#include <string.h>

static const char PUNCT[] = ";/[]\"{}()=+\\_-><@`,?!";

static const char *const NUMBER_WORDS[][2] = {
    {"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"}, {"three", "3"}, {"four", "4"},
    {"five", "5"}, {"six", "6"}, {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"},
};

static const char *const ARTICLES[] = {"a", "an", "the"};

// The official contractions table (keys as written there, some with capitals that never match
// after lower-casing — kept for fidelity).
static const char *const CONTRACTIONS[][2] = {
    {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"}, {"couldnt", "couldn't"},
    {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"}, {"didnt", "didn't"}, {"doesnt", "doesn't"},
    {"dont", "don't"}, {"hadnt", "hadn't"}, {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"},
    {"hasnt", "hasn't"}, {"havent", "haven't"}, {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"},
    {"hes", "he's"}, {"howd", "how'd"}, {"howll", "how'll"}, {"hows", "how's"}, {"Id've", "I'd've"},
    {"I'dve", "I'd've"}, {"Im", "I'm"}, {"Ive", "I've"}, {"isnt", "isn't"}, {"itd", "it'd"}, {"itd've", "it'd've"},
    {"it'dve", "it'd've"}, {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
    {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"}, {"mustnt", "mustn't"},
    {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"}, {"oclock", "o'clock"}, {"oughtnt", "oughtn't"},
    {"ow's'at", "'ow's'at"}, {"'ows'at", "'ow's'at"}, {"'ow'sat", "'ow's'at"}, {"shant", "shan't"},
    {"shed've", "she'd've"}, {"she'dve", "she'd've"}, {"she's", "she's"}, {"shouldve", "should've"},
    {"shouldnt", "shouldn't"}, {"shouldnt've", "shouldn't've"}, {"shouldn'tve", "shouldn't've"},
    {"somebody'd", "somebodyd"}, {"somebodyd've", "somebody'd've"}, {"somebody'dve", "somebody'd've"},
    {"somebodyll", "somebody'll"}, {"somebodys", "somebody's"}, {"someoned", "someone'd"},
    {"someoned've", "someone'd've"}, {"someone'dve", "someone'd've"}, {"someonell", "someone'll"},
    {"someones", "someone's"}, {"somethingd", "something'd"}, {"somethingd've", "something'd've"},
    {"something'dve", "something'd've"}, {"somethingll", "something'll"}, {"thats", "that's"}, {"thered", "there'd"},
    {"thered've", "there'd've"}, {"there'dve", "there'd've"}, {"therere", "there're"}, {"theres", "there's"},
    {"theyd", "they'd"}, {"theyd've", "they'd've"}, {"they'dve", "they'd've"}, {"theyll", "they'll"},
    {"theyre", "they're"}, {"theyve", "they've"}, {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"},
    {"we'dve", "we'd've"}, {"weve", "we've"}, {"werent", "weren't"}, {"whatll", "what'll"}, {"whatre", "what're"},
    {"whats", "what's"}, {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"}, {"wheres", "where's"},
    {"whereve", "where've"}, {"whod", "who'd"}, {"whod've", "who'd've"}, {"who'dve", "who'd've"}, {"wholl", "who'll"},
    {"whos", "who's"}, {"whove", "who've"}, {"whyll", "why'll"}, {"whyre", "why're"}, {"whys", "why's"},
    {"wont", "won't"}, {"wouldve", "would've"}, {"wouldnt", "wouldn't"}, {"wouldnt've", "wouldn't've"},
    {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"}, {"yall'll", "y'all'll"}, {"y'allll", "y'all'll"},
    {"yall'd've", "y'all'd've"}, {"y'alld've", "y'all'd've"}, {"y'all'dve", "y'all'd've"}, {"youd", "you'd"},
    {"youd've", "you'd've"}, {"you'dve", "you'd've"}, {"youll", "you'll"}, {"youre", "you're"}, {"youve", "you've"},
};

static int is_digit(char c) { return c >= '0' && c <= '9'; }
// Python's whitespace for str.strip()/split() in the ASCII range: \t\n\v\f\r, \x1c-\x1f, space.
static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); }

const char *vlt_eval_vqa_version_name(vlt_eval_vqa_version v) {
    return v == VLT_EVAL_VQA_2016 ? "vqaeval-2016" : "vqaeval-2021";
}

const char *vlt_eval_vqa_version_description(vlt_eval_vqa_version v) {
    if (v == VLT_EVAL_VQA_2016)
        return "official vqaEval.py as of 2016 to March 2021 (before a013f00): prediction stripped and fully normalized, "
               "ground-truth answers only punctuation-processed and only when the ten differ";
    return "official vqaEval.py since a013f00 (March 2021): prediction and answers stripped; when the ten answers differ "
           "both fully normalized (punctuation, digits, articles, contractions), when identical neither";
}

int vlt_eval_vqa_version_parse(const char *name, vlt_eval_vqa_version *v) {
    if (!name) return 0;
    if (!strcmp(name, "vqaeval-2021") || !strcmp(name, "current") || !strcmp(name, "official") || !strcmp(name, "2021")) {
        *v = VLT_EVAL_VQA_CURRENT;
        return 1;
    }
    if (!strcmp(name, "vqaeval-2016") || !strcmp(name, "2016")) {
        *v = VLT_EVAL_VQA_2016;
        return 1;
    }
    return 0;
}

// re.search("(\d)(\,)(\d)", s) != None
static int has_digit_comma_digit(const char *s) {
    for (size_t i = 1; s[0] && s[i] && s[i + 1]; i++)   // s[0] first: "" has no s[1]
        if (s[i] == ',' && is_digit(s[i - 1]) && is_digit(s[i + 1])) return 1;
    return 0;
}

static int adjacent_space(const char *s, char p) {
    for (size_t i = 0; s[i]; i++)
        if (s[i] == p && ((s[i + 1] == ' ') || (i > 0 && s[i - 1] == ' '))) return 1;
    return 0;
}

vlt_status vlt_eval_vqa_punctuation(const char *in, char **out) {
    if (!in || !out) return vlt_error_set(VLT_ERR_ARG, "vqa: NULL answer");
    size_t n = strlen(in);
    char *a = malloc(n + 1), *b = malloc(n + 1);
    if (!a || !b) { free(a); free(b); return vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory"); }
    memcpy(a, in, n + 1);
    int comma_num = has_digit_comma_digit(in);
    for (const char *p = PUNCT; *p; p++) {
        int del = comma_num || adjacent_space(in, *p);  // tests the original text, as the official code
        size_t k = 0;
        for (size_t i = 0; a[i]; i++) {
            if (a[i] != *p) b[k++] = a[i];
            else if (!del) b[k++] = ' ';
        }
        b[k] = '\0';
        char *t = a; a = b; b = t;
    }
    // periodStrip.sub("", text, 32): delete '.' not followed by a digit, at most 32 times.
    size_t k = 0;
    int removed = 0;
    for (size_t i = 0; a[i]; i++) {
        if (a[i] == '.' && !is_digit(a[i + 1]) && removed < 32) { removed++; continue; }
        b[k++] = a[i];
    }
    b[k] = '\0';
    free(a);
    *out = b;
    return VLT_OK;
}

static const char *map_word(const char *w) {
    for (size_t k = 0; k < sizeof NUMBER_WORDS / sizeof NUMBER_WORDS[0]; k++)
        if (!strcmp(w, NUMBER_WORDS[k][0])) return NUMBER_WORDS[k][1];
    return w;
}

static int is_article(const char *w) {
    for (size_t k = 0; k < sizeof ARTICLES / sizeof ARTICLES[0]; k++)
        if (!strcmp(w, ARTICLES[k])) return 1;
    return 0;
}

static const char *contract(const char *w) {
    for (size_t k = 0; k < sizeof CONTRACTIONS / sizeof CONTRACTIONS[0]; k++)
        if (!strcmp(w, CONTRACTIONS[k][0])) return CONTRACTIONS[k][1];
    return w;
}

// processDigitArticle: lower, split, number words, drop articles, contractions, join.
vlt_status vlt_eval_vqa_digit_article(const char *in, char **out) {
    if (!in || !out) return vlt_error_set(VLT_ERR_ARG, "vqa: NULL answer");
    size_t n = strlen(in);
    char *low = malloc(n + 1), *res = malloc(2 * n + 16);  // a word grows by at most 2 (contractions)
    if (!low || !res) { free(low); free(res); return vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory"); }
    for (size_t i = 0; i <= n; i++) low[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
    size_t k = 0;
    for (char *p = low; *p;) {
        while (*p && is_space(*p)) p++;
        if (!*p) break;
        char *q = p;
        while (*q && !is_space(*q)) q++;
        char save = *q;
        *q = '\0';
        const char *w = map_word(p);
        if (!is_article(w)) {
            w = contract(w);
            if (k) res[k++] = ' ';
            size_t wl = strlen(w);
            memcpy(res + k, w, wl);
            k += wl;
        }
        *q = save;
        p = q;
    }
    res[k] = '\0';
    free(low);
    *out = res;
    return VLT_OK;
}

vlt_status vlt_eval_vqa_strip(const char *in, char **out) {
    if (!in || !out) return vlt_error_set(VLT_ERR_ARG, "vqa: NULL answer");
    size_t n = strlen(in), s = 0;
    char *t = malloc(n + 1);
    if (!t) return vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
    for (size_t i = 0; i <= n; i++) t[i] = (in[i] == '\n' || in[i] == '\t') ? ' ' : in[i];
    while (n > 0 && is_space(t[n - 1])) t[--n] = '\0';  // str.strip()
    while (is_space(t[s])) s++;
    if (s) memmove(t, t + s, n - s + 1);
    *out = t;
    return VLT_OK;
}

vlt_status vlt_eval_vqa_normalize(const char *in, char **out) {
    char *t = NULL, *p = NULL;
    VLT_TRY(vlt_eval_vqa_strip(in, &t));
    vlt_status st = vlt_eval_vqa_punctuation(t, &p);
    free(t);
    if (st != VLT_OK) return st;
    st = vlt_eval_vqa_digit_article(p, out);
    free(p);
    return st;
}

// Replaces *s by f(*s).
static vlt_status apply(vlt_status (*f)(const char *, char **), char **s) {
    char *t = NULL;
    VLT_TRY(f(*s, &t));
    free(*s);
    *s = t;
    return VLT_OK;
}

static vlt_status digit_article_punct(const char *in, char **out) {
    char *p = NULL;
    VLT_TRY(vlt_eval_vqa_punctuation(in, &p));
    vlt_status st = vlt_eval_vqa_digit_article(p, out);
    free(p);
    return st;
}

static int all_identical(char *const *a, int n) {
    for (int j = 1; j < n; j++)
        if (strcmp(a[j], a[0]) != 0) return 0;
    return 1;
}

vlt_status vlt_eval_vqa_score(vlt_eval_vqa_version v, const char *pred, char **answers, const int *same, int n_answers,
                              double *acc) {
    if (!pred || !answers || n_answers < 1 || !acc)
        return vlt_error_set(VLT_ERR_ARG, "vqa: a question needs a prediction and at least one answer");
    for (int j = 0; j < n_answers; j++)
        if (!answers[j]) return vlt_error_set(VLT_ERR_ARG, "vqa: answer %d is NULL", j);
    char *p = NULL;
    if (v == VLT_EVAL_VQA_2016) {
        VLT_TRY(vlt_eval_vqa_normalize(pred, &p));
        if (!all_identical(answers, n_answers))
            for (int j = 0; j < n_answers; j++) {
                vlt_status st = apply(vlt_eval_vqa_punctuation, &answers[j]);
                if (st != VLT_OK) { free(p); return st; }
            }
    } else {
        for (int j = 0; j < n_answers; j++) VLT_TRY(apply(vlt_eval_vqa_strip, &answers[j]));
        VLT_TRY(vlt_eval_vqa_strip(pred, &p));
        if (!all_identical(answers, n_answers)) {
            for (int j = 0; j < n_answers; j++) {
                vlt_status st = apply(digit_article_punct, &answers[j]);
                if (st != VLT_OK) { free(p); return st; }
            }
            vlt_status st = apply(digit_article_punct, &p);
            if (st != VLT_OK) { free(p); return st; }
        }
    }
    int matches = 0;  // answers equal to the prediction (after their processing)
    for (int j = 0; j < n_answers; j++) matches += strcmp(answers[j], p) == 0;
    // Leaving answer j out leaves the matching answers that are not equal dicts to j; summed in
    // answer order as the official code does, so the result is bit-identical.
    double sum = 0;
    for (int j = 0; j < n_answers; j++) {
        int m = matches;
        if (strcmp(answers[j], p) == 0) {
            if (!same) m--;
            else
                for (int k = 0; k < n_answers; k++) m -= same[k] == same[j] && strcmp(answers[k], p) == 0;
        }
        double a = (double)m / 3;
        sum += a < 1 ? a : 1;
    }
    *acc = sum / n_answers;
    free(p);
    return VLT_OK;
}

vlt_status vlt_eval_vqa_accuracy(vlt_eval_vqa_version v, const char *pred, const char *const *answers, int n_answers,
                                 double *acc) {
    if (!answers || n_answers < 1)
        return vlt_error_set(VLT_ERR_ARG, "vqa: a question needs a prediction and at least one answer");
    char **copy = calloc((size_t)n_answers, sizeof *copy);
    if (!copy) return vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
    vlt_status st = VLT_OK;
    for (int j = 0; j < n_answers && st == VLT_OK; j++) {
        if (!answers[j]) st = vlt_error_set(VLT_ERR_ARG, "vqa: answer %d is NULL", j);
        else if (!(copy[j] = strdup(answers[j]))) st = vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
    }
    if (st == VLT_OK) st = vlt_eval_vqa_score(v, pred, copy, NULL, n_answers, acc);
    for (int j = 0; j < n_answers; j++) free(copy[j]);
    free(copy);
    return st;
}

int vlt_eval_vqa_soft_scores(const char *const *answers, int n, const char **uniq, double *score) {
    int u = 0;
    for (int j = 0; j < n; j++) {
        int seen = 0;
        for (int k = 0; k < u && !seen; k++) seen = strcmp(uniq[k], answers[j]) == 0;
        if (!seen) uniq[u++] = answers[j];
    }
    for (int k = 0; k < u; k++) {
        int m = 0;
        for (int j = 0; j < n; j++) m += strcmp(answers[j], uniq[k]) == 0;
        double sum = 0;  // as vlt_eval_vqa_score: leave each answer out in turn, in answer order
        for (int j = 0; j < n; j++) {
            double a = (double)(m - (strcmp(answers[j], uniq[k]) == 0)) / 3;
            sum += a < 1 ? a : 1;
        }
        score[k] = sum / n;
    }
    return u;
}
