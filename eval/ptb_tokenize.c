// ptb_tokenize.c — pycocoevalcap's PTB tokenization of captions (see ptb_tokenize.h).
#include "eval/ptb_tokenize.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

// Words after which the 3.4.1 lexer keeps a final period attached (lower case; found by running
// the jar on "the X." for each candidate of its abbreviation classes).
static const char *const ABBREV[] = {
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon",
    "tue", "tues", "wed", "thu", "thurs", "fri", "calif", "conn", "fla", "mich", "va", "ariz",
    "tenn", "md", "ga", "wis", "colo", "okla", "kan", "ky", "minn", "neb", "vt", "nev", "ala", "mo",
    "mont", "wyo", "inc", "co", "cos", "corp", "pty", "pte", "ltd", "plc", "rt", "bancorp", "bhd",
    "assn", "univ", "intl", "sys", "tel", "est", "ext", "sq", "jr", "sr", "bros", "blvd", "rd",
    "esq", "etc", "al", "seq", "bldg", "mr", "mrs", "ms", "dr", "drs", "prof", "profs", "sen",
    "sens", "rep", "reps", "atty", "attys", "lt", "col", "gen", "messrs", "gov", "govs", "adm",
    "rev", "maj", "sgt", "cpl", "pvt", "capt", "st", "ste", "ave", "pres", "lieut", "hon", "brig",
    "cmdr", "comdr", "pfc", "spc", "supt", "supts", "det", "mme", "mlle", "vs", "alex", "wm",
    "jos", "cie", "cf", "treas", "invt", "elec", "natl", "mfg", "mtg", "dept", "ft",
};

// Whole words the lexer splits in two (its "assimilations"): word, length of the first part.
static const struct { const char *word; int split; } ASSIM[] = {
    {"cannot", 3}, {"gonna", 3}, {"gotta", 3}, {"wanna", 3}, {"lemme", 3}, {"gimme", 3},
};

// Tokens pycocoevalcap drops (its PUNCTUATIONS, as they compare after lower-casing).
static const char *const DROPPED[] = {"''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"};

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} outbuf;

static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

// Appends token s[0..n) lower-cased, unless pycocoevalcap drops it.
static void emit(outbuf *o, const char *s, size_t n) {
    if (n == 0 || o->failed) return;
    for (size_t k = 0; k < sizeof DROPPED / sizeof DROPPED[0]; k++)
        if (strlen(DROPPED[k]) == n && memcmp(DROPPED[k], s, n) == 0) return;
    if (o->len + n + 2 > o->cap) {
        size_t nc = o->cap * 2 + n + 16;
        char *b = realloc(o->buf, nc);
        if (!b) { o->failed = 1; return; }
        o->buf = b;
        o->cap = nc;
    }
    if (o->len) o->buf[o->len++] = ' ';
    for (size_t k = 0; k < n; k++) o->buf[o->len++] = lower(s[k]);
    o->buf[o->len] = '\0';
}

static void emit_str(outbuf *o, const char *s) { emit(o, s, strlen(s)); }

// Length of the clitic at s (s[0] == '\'') — 's 'm 'd 'll 're 've — followed by a non-word
// character; 0 when there is none.
static size_t clitic_len(const char *s) {
    static const char *const CL[] = {"'s", "'m", "'d", "'ll", "'re", "'ve"};
    for (size_t k = 0; k < sizeof CL / sizeof CL[0]; k++) {
        size_t n = strlen(CL[k]);
        if (strncasecmp(s, CL[k], n) == 0 && !is_alnum((unsigned char)s[n])) return n;
    }
    return 0;
}

// Single letter, or letters separated by periods (u.s, e.g, a.m): keeps a following period.
static int is_acronym(const char *w, size_t n) {
    for (size_t k = 0; k < n; k++) {
        if (k % 2 == 0 && !is_alpha((unsigned char)w[k])) return 0;
        if (k % 2 == 1 && w[k] != '.') return 0;
    }
    return n % 2 == 1;
}

static int keeps_period(const char *w, size_t n) {
    if (is_acronym(w, n)) return 1;
    for (size_t k = 0; k < sizeof ABBREV / sizeof ABBREV[0]; k++)
        if (strlen(ABBREV[k]) == n && strncasecmp(ABBREV[k], w, n) == 0) return 1;
    return 0;
}

// End of the word that starts at s[i] (letters, digits and the joiners the lexer keeps inside).
static size_t word_end(const char *s, size_t i) {
    size_t start = i;
    if (s[i] == '+' || s[i] == '-' || s[i] == '.' || s[i] == ',' || s[i] == '#' || s[i] == '@' || s[i] == '\'') i++;
    for (;;) {
        while (is_alnum((unsigned char)s[i])) i++;
        unsigned char c = (unsigned char)s[i], n = c ? (unsigned char)s[i + 1] : 0;  // never past the NUL
        unsigned char p = i > start ? (unsigned char)s[i - 1] : 0;
        if ((c == '-' || c == '.' || c == '/') && is_alnum(n) && is_alnum(p)) { i++; continue; }
        if ((c == ',' || c == ':') && is_digit(p) && is_digit(n)) { i++; continue; }
        if (c == '\'' && i == start + 1 && strchr("dDlLoO", s[start]) && is_alpha(n)) { i++; continue; }
        return i;
    }
}

// Emits the word s[i..e) with its clitics split off; returns where scanning resumes.
static size_t emit_word(outbuf *o, const char *s, size_t i, size_t e) {
    if (s[e] == '\'' && e - i >= 2 && (s[e - 1] == 'n' || s[e - 1] == 'N') && (s[e + 1] == 't' || s[e + 1] == 'T') &&
        !is_alnum((unsigned char)s[e + 2])) {
        emit(o, s + i, e - i - 1);  // "can't" -> ca n't
        emit(o, s + e - 1, 3);
        e += 2;
    } else if (s[e] == '\'' && clitic_len(s + e)) {
        emit(o, s + i, e - i);
    } else if (s[e] == '.' && keeps_period(s + i, e - i)) {
        emit(o, s + i, e - i + 1);
        return e + 1;
    } else {
        for (size_t k = 0; k < sizeof ASSIM / sizeof ASSIM[0]; k++)
            if (strlen(ASSIM[k].word) == e - i && strncasecmp(ASSIM[k].word, s + i, e - i) == 0) {
                emit(o, s + i, (size_t)ASSIM[k].split);
                emit(o, s + i + ASSIM[k].split, e - i - (size_t)ASSIM[k].split);
                return e;
            }
        emit(o, s + i, e - i);
        return e;
    }
    size_t n;
    while (s[e] == '\'' && (n = clitic_len(s + e)) > 0) {  // they'd've -> they 'd 've
        emit(o, s + e, n);
        e += n;
    }
    return e;
}

// Length of the run of characters from set starting at s.
static size_t run_of(const char *s, const char *set) {
    size_t n = 0;
    while (s[n] && strchr(set, s[n])) n++;
    return n;
}

// One token (or run) starting at the non-space s[i]; returns where scanning resumes.
static size_t scan_one(outbuf *o, const char *s, size_t i) {
    unsigned char c = (unsigned char)s[i], n = (unsigned char)s[i + 1];
    int word = is_alnum(c) || ((c == '+' || c == '-' || c == '.' || c == ',') && is_digit(n)) ||
               ((c == '#' || c == '@') && is_alnum(n)) || (c == '\'' && is_digit(n) && is_digit((unsigned char)s[i + 2]));
    if (word) return emit_word(o, s, i, word_end(s, i));
    size_t k;
    switch (c) {
    case '\'':
        if ((k = clitic_len(s + i)) > 0) { emit(o, s + i, k); return i + k; }
        return i + run_of(s + i, "'");  // a quote: removed
    case '"': case '`': return i + run_of(s + i, "\"`");
    case '(': emit_str(o, "-lrb-"); return i + 1;
    case ')': emit_str(o, "-rrb-"); return i + 1;
    case '[': emit_str(o, "-lsb-"); return i + 1;
    case ']': emit_str(o, "-rsb-"); return i + 1;
    case '{': emit_str(o, "-lcb-"); return i + 1;
    case '}': emit_str(o, "-rcb-"); return i + 1;
    case '.': k = run_of(s + i, "."); return i + (k >= 3 ? k : 1);  // "...", or one "." (removed)
    case '?': case '!': k = run_of(s + i, "?!"); emit(o, s + i, k); return i + k;
    case '-': return i + run_of(s + i, "-");                          // - or -- (removed)
    default: emit(o, s + i, 1); return i + 1;                          // , ; : removed by emit
    }
}

vlt_status vlt_eval_ptb_tokenize(const char *caption, char **out) {
    if (!caption || !out) return vlt_error_set(VLT_ERR_ARG, "ptb_tokenize: NULL caption or output");
    outbuf o = {malloc(64), 0, 64, 0};
    if (!o.buf) return vlt_error_set(VLT_ERR_NOMEM, "ptb_tokenize: out of memory");
    o.buf[0] = '\0';
    size_t i = 0;
    while (caption[i] && !o.failed) {
        if (is_space((unsigned char)caption[i])) { i++; continue; }
        i = scan_one(&o, caption, i);
    }
    if (o.failed) {
        free(o.buf);
        return vlt_error_set(VLT_ERR_NOMEM, "ptb_tokenize: out of memory");
    }
    *out = o.buf;
    return VLT_OK;
}
