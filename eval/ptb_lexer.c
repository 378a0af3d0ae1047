// ptb_lexer.c — a scanner that tokenizes as Stanford CoreNLP 3.4.1's PTBLexer does with the options
// pycocoevalcap's PTBTokenizer gives it (see ptb_lexer.h).
//
// The 3.4.1 lexer is a JFlex scanner: at each position the rule with the longest match wins (a
// rule's trailing context r1/r2 counts in the length but only r1 becomes the token), ties go to
// the rule listed first, string literals match without regard to case and character classes do
// not. It reads UTF-16 code units. This file reproduces that machinery with a small regular
// expression engine (Thompson NFA simulation, one automaton per rule) and the rule list below,
// written in a JFlex-like notation so that each rule can be read against the behaviour it copies.
#include "eval/ptb_lexer.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/ptb_unicode.h"

// ---- character classes ----------------------------------------------------------------------

enum { CF_LETTER = 1, CF_DIGIT = 2, CF_UPPER = 4 };

typedef struct {
    int first, count;  // ranges in the pool
    int flags;         // CF_*
    int negated;
} cclass;

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static uint8_t g_props[65536];  // CF_* of every UTF-16 code unit

int vlt_ptb_is_letter(unsigned c) { return c < 65536 && (g_props[c] & CF_LETTER); }

// ---- NFA ------------------------------------------------------------------------------------

enum { S_CLASS, S_EPS, S_SPLIT, S_MATCH };

typedef struct {
    uint8_t type;
    int cls;       // S_CLASS
    int out, out1;
} nstate;

typedef struct {
    nstate *st;
    int n, cap;
    cclass *cls;
    int ncls, clscap;
    uint16_t (*rng)[2];
    int nrng, rngcap;
    int failed;
} nfa_builder;

static int new_state(nfa_builder *b, int type, int cls, int out, int out1) {
    if (b->n == b->cap) {
        int nc = b->cap ? b->cap * 2 : 1024;
        nstate *p = realloc(b->st, (size_t)nc * sizeof *p);
        if (!p) { b->failed = 1; return 0; }
        b->st = p;
        b->cap = nc;
    }
    b->st[b->n] = (nstate){(uint8_t)type, cls, out, out1};
    return b->n++;
}

static void add_range(nfa_builder *b, unsigned lo, unsigned hi) {
    if (b->nrng == b->rngcap) {
        int nc = b->rngcap ? b->rngcap * 2 : 256;
        void *p = realloc(b->rng, (size_t)nc * sizeof *b->rng);
        if (!p) { b->failed = 1; return; }
        b->rng = p;
        b->rngcap = nc;
    }
    b->rng[b->nrng][0] = (uint16_t)lo;
    b->rng[b->nrng][1] = (uint16_t)hi;
    b->nrng++;
}

static int new_class(nfa_builder *b) {
    if (b->ncls == b->clscap) {
        int nc = b->clscap ? b->clscap * 2 : 128;
        cclass *p = realloc(b->cls, (size_t)nc * sizeof *p);
        if (!p) { b->failed = 1; return 0; }
        b->cls = p;
        b->clscap = nc;
    }
    b->cls[b->ncls] = (cclass){b->nrng, 0, 0, 0};
    return b->ncls++;
}

typedef struct { int start, end; } frag;  // end: an S_EPS state whose out is patched later

// ---- pattern parser (JFlex-like: | * + ? {n,m} {MACRO} [...] [^...] [:letter:] . \uXXXX) ----

typedef struct { const char *name, *pattern; } macro;

typedef struct {
    nfa_builder *b;
    const char *p;
    const macro *macros;
    int caseless;
    int error;
} parser;

static frag frag_class(nfa_builder *b, int cls) {
    int e = new_state(b, S_EPS, 0, -1, -1);
    int s = new_state(b, S_CLASS, cls, e, -1);
    return (frag){s, e};
}

static frag frag_empty(nfa_builder *b) {
    int e = new_state(b, S_EPS, 0, -1, -1);
    return (frag){e, e};
}

static frag frag_cat(nfa_builder *b, frag x, frag y) {
    b->st[x.end].out = y.start;
    return (frag){x.start, y.end};
}

static frag frag_alt(nfa_builder *b, frag x, frag y) {
    int e = new_state(b, S_EPS, 0, -1, -1);
    int s = new_state(b, S_SPLIT, 0, x.start, y.start);
    b->st[x.end].out = e;
    b->st[y.end].out = e;
    return (frag){s, e};
}

static frag frag_star(nfa_builder *b, frag x) {
    int e = new_state(b, S_EPS, 0, -1, -1);
    int s = new_state(b, S_SPLIT, 0, x.start, e);
    b->st[x.end].out = s;
    return (frag){s, e};
}

static frag frag_opt(nfa_builder *b, frag x) {
    int s = new_state(b, S_SPLIT, 0, x.start, x.end);
    return (frag){s, x.end};
}

static unsigned hexval(const char *p, int n) {
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
    }
    return v;
}

// One (possibly escaped) character at ps->p; advances.
static unsigned parse_char(parser *ps) {
    const char *p = ps->p;
    if (*p != '\\') {
        // Non-ASCII characters are written as \u escapes in the patterns below.
        ps->p++;
        return (unsigned char)*p;
    }
    p++;
    unsigned c;
    switch (*p) {
    case 'u': c = hexval(p + 1, 4); ps->p = p + 5; return c;
    case 'x': c = hexval(p + 1, 2); ps->p = p + 3; return c;
    case 't': c = '\t'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 'f': c = '\f'; break;
    case '0': c = 0; break;
    default: c = (unsigned char)*p; break;
    }
    ps->p = p + 1;
    return c;
}

static frag parse_alt(parser *ps);

static frag parse_class(parser *ps) {
    nfa_builder *b = ps->b;
    int cls = new_class(b);
    static const struct { const char *name; int flag; } PRE[] = {
        {"[:letter:]", CF_LETTER}, {"[:digit:]", CF_DIGIT}, {"[:uppercase:]", CF_UPPER}};
    for (int i = 0; i < 3; i++)  // a predefined class standing alone
        if (strncmp(ps->p, PRE[i].name, strlen(PRE[i].name)) == 0) {
            b->cls[cls].flags = PRE[i].flag;
            ps->p += strlen(PRE[i].name);
            return frag_class(b, cls);
        }
    ps->p++;  // '['
    if (*ps->p == '^') { b->cls[cls].negated = 1; ps->p++; }
    while (*ps->p && *ps->p != ']') {
        if (strncmp(ps->p, "[:letter:]", 10) == 0) { b->cls[cls].flags |= CF_LETTER; ps->p += 10; continue; }
        if (strncmp(ps->p, "[:digit:]", 9) == 0) { b->cls[cls].flags |= CF_DIGIT; ps->p += 9; continue; }
        if (strncmp(ps->p, "[:uppercase:]", 13) == 0) { b->cls[cls].flags |= CF_UPPER; ps->p += 13; continue; }
        unsigned lo = parse_char(ps), hi = lo;
        if (ps->p[0] == '-' && ps->p[1] != ']' && ps->p[1]) {
            ps->p++;
            hi = parse_char(ps);
        }
        add_range(b, lo, hi);
        b->cls[cls].count++;
    }
    if (*ps->p != ']') { ps->error = 1; return frag_empty(b); }
    ps->p++;
    return frag_class(b, cls);
}

static frag literal(parser *ps, unsigned c) {
    nfa_builder *b = ps->b;
    int cls = new_class(b);
    add_range(b, c, c);
    b->cls[cls].count = 1;
    if (ps->caseless && c < 128 && ((c | 32) >= 'a' && (c | 32) <= 'z')) {  // %caseless: both cases
        add_range(b, c ^ 32, c ^ 32);
        b->cls[cls].count = 2;
    }
    return frag_class(b, cls);
}

static const char *macro_body(const parser *ps, const char *name, size_t n) {
    for (const macro *m = ps->macros; m->name; m++)
        if (strlen(m->name) == n && strncmp(m->name, name, n) == 0) return m->pattern;
    return NULL;
}

static frag parse_pattern_text(parser *ps, const char *text);

static frag parse_atom(parser *ps) {
    nfa_builder *b = ps->b;
    char c = *ps->p;
    if (c == '(') {
        ps->p++;
        frag f = parse_alt(ps);
        if (*ps->p != ')') ps->error = 1; else ps->p++;
        return f;
    }
    if (c == '[') return parse_class(ps);
    if (c == '{') {
        const char *q = strchr(ps->p, '}');
        const char *body = q ? macro_body(ps, ps->p + 1, (size_t)(q - ps->p - 1)) : NULL;
        if (!body) { ps->error = 1; ps->p++; return frag_empty(b); }
        ps->p = q + 1;
        return parse_pattern_text(ps, body);
    }
    if (c == '.') {  // JFlex: any character but \n
        ps->p++;
        int cls = new_class(b);
        add_range(b, '\n', '\n');
        b->cls[cls].count = 1;
        b->cls[cls].negated = 1;
        return frag_class(b, cls);
    }
    return literal(ps, parse_char(ps));
}

static int is_repeat(const char *p) { return p[0] == '{' && p[1] >= '0' && p[1] <= '9'; }

static frag parse_repeat(parser *ps) {
    const char *atom_start = ps->p;
    frag f = parse_atom(ps);
    const char *atom_end = ps->p;
    for (;;) {
        char c = *ps->p;
        if (c == '*') { ps->p++; f = frag_star(ps->b, f); }
        else if (c == '+') {  // x+: x, then back to x or out
            ps->p++;
            int e = new_state(ps->b, S_EPS, 0, -1, -1);
            int s = new_state(ps->b, S_SPLIT, 0, f.start, e);
            ps->b->st[f.end].out = s;
            f = (frag){f.start, e};
        }
        else if (c == '?') { ps->p++; f = frag_opt(ps->b, f); }
        else if (is_repeat(ps->p)) {
            int lo = 0, hi;
            const char *p = ps->p + 1;
            while (*p >= '0' && *p <= '9') lo = lo * 10 + (*p++ - '0');
            hi = lo;
            if (*p == ',') { p++; hi = 0; while (*p >= '0' && *p <= '9') hi = hi * 10 + (*p++ - '0'); }
            if (*p != '}') { ps->error = 1; return f; }
            const char *after = p + 1;
            // x{lo,hi}: lo copies of x, then hi-lo optional copies (each copy parsed afresh).
            char *text = strndup(atom_start, (size_t)(atom_end - atom_start));
            if (!text) { ps->b->failed = 1; return f; }
            frag r = frag_empty(ps->b);
            for (int k = 0; k < hi; k++) {
                const char *save = ps->p;
                ps->p = text;
                frag x = parse_atom(ps);
                ps->p = save;
                r = frag_cat(ps->b, r, k < lo ? x : frag_opt(ps->b, x));
            }
            free(text);
            f = r;
            ps->p = after;
        } else break;
    }
    return f;
}

static frag parse_cat(parser *ps) {
    frag f = frag_empty(ps->b);
    while (*ps->p && *ps->p != '|' && *ps->p != ')') f = frag_cat(ps->b, f, parse_repeat(ps));
    return f;
}

static frag parse_alt(parser *ps) {
    frag f = parse_cat(ps);
    while (*ps->p == '|') {
        ps->p++;
        f = frag_alt(ps->b, f, parse_cat(ps));
    }
    return f;
}

static frag parse_pattern_text(parser *ps, const char *text) {
    const char *save = ps->p;
    ps->p = text;
    frag f = parse_alt(ps);
    if (*ps->p) ps->error = 1;
    ps->p = save;
    return f;
}

// ---- the 3.4.1 lexer's definitions, as pycocoevalcap runs it --------------------------------
// (state YyTraditionalTreebank3; options tokenizeNLs, everything else at its default:
// ptb3 quotes/ellipsis/dashes/brackets/fractions/currency/space normalization on, americanize,
// escapeForwardSlashAsterisk and strictTreebank3 off, untokenizable characters deleted.)

static const macro MACROS[] = {
    {"SGML", "\\<([!\\?][A-Za-z\\-][^>\\r\\n]*|[A-Za-z][A-Za-z0-9_:\\.\\-]*([ ]+([A-Za-z][A-Za-z0-9_:\\.\\-]*|[A-Za-z][A-Za-z0-9_:\\.\\-]*[ ]*=[ ]*('[^']*'|\\\"[^\\\"]*\\\")))*[ ]*\\/?|\\/[A-Za-z][A-Za-z0-9_:\\.\\-]*)[ ]*\\>"},
    {"SPMDASH", "&(MD|mdash|ndash);|[\\u0096\\u0097\\u2013\\u2014\\u2015]"},
    {"SPAMP", "&amp;"},
    {"SPPUNC", "&(HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);"},
    {"SPLET", "&[aeiouAEIOU](acute|grave|uml);"},
    {"SPACE", "[ \\t\\u00A0\\u2000-\\u200A\\u3000]"},
    {"SPACES", "{SPACE}+"},
    {"NEWLINE", "\\r|\\r?\\n|\\u2028|\\u2029|\\u000B|\\u000C|\\u0085"},
    {"SPACENL", "({SPACE}|{NEWLINE})"},
    {"SPACENLS", "{SPACENL}+"},
    {"SENTEND", "{SPACENL}({SPACENL}|[:uppercase:]|{SGML})"},
    {"DIGIT", "[:digit:]|[\\u07C0-\\u07C9]"},
    {"DATE", "{DIGIT}{1,2}[\\-\\/]{DIGIT}{1,2}[\\-\\/]{DIGIT}{2,4}"},
    {"NUM", "{DIGIT}+|{DIGIT}*([.:,\\u00AD\\u066B\\u066C]{DIGIT}+)+"},
    {"NUMBER", "[\\-+]?{NUM}"},
    {"SUBSUPNUM", "[\\u207A\\u207B\\u208A\\u208B]?([\\u2070\\u00B9\\u00B2\\u00B3\\u2074-\\u2079]+|[\\u2080-\\u2089]+)"},
    {"FRAC", "({DIGIT}{1,4}[- \\u00A0])?{DIGIT}{1,4}(\\\\?\\/|\\u2044){DIGIT}{1,4}"},
    {"FRAC2", "[\\u00BC\\u00BD\\u00BE\\u2153-\\u215E]"},
    {"DOLSIGN", "([A-Z]*\\$|#)"},
    {"DOLSIGN2", "[\\u00A2\\u00A3\\u00A4\\u00A5\\u0080\\u20A0\\u20AC\\u060B\\u0E3F\\u20A4\\uFFE0\\uFFE1\\uFFE5\\uFFE6]"},
    {"LETTER", "([:letter:]|{SPLET}|[\\u00AD\\u0237-\\u024F\\u02C2-\\u02C5\\u02D2-\\u02DF\\u02E5-\\u02FF\\u0300-\\u036F"
               "\\u0370-\\u037D\\u0384\\u0385\\u03CF\\u03F6\\u03FC-\\u03FF\\u0483-\\u0487\\u04CF\\u04F6-\\u04FF\\u0510-\\u0525"
               "\\u055A-\\u055F\\u0591-\\u05BD\\u05BF\\u05C1\\u05C2\\u05C4\\u05C5\\u05C7\\u0615-\\u061A\\u063B-\\u063F"
               "\\u064B-\\u065E\\u0670\\u06D6-\\u06EF\\u06FA-\\u06FF\\u070F\\u0711\\u0730-\\u074F\\u0750-\\u077F"
               "\\u07A6-\\u07B1\\u07CA-\\u07F5\\u07FA\\u0900-\\u0903\\u093C\\u093E-\\u094E\\u0951-\\u0955\\u0962-\\u0963"
               "\\u0981-\\u0983\\u09BC-\\u09C4\\u09C7\\u09C8\\u09CB-\\u09CD\\u09D7\\u09E2\\u09E3\\u0A01-\\u0A03\\u0A3C"
               "\\u0A3E-\\u0A4F\\u0A81-\\u0A83\\u0ABC-\\u0ACF\\u0B82\\u0BBE-\\u0BC2\\u0BC6-\\u0BC8\\u0BCA-\\u0BCD"
               "\\u0C01-\\u0C03\\u0C3E-\\u0C56\\u0D3E-\\u0D44\\u0D46-\\u0D48\\u0E30-\\u0E3A\\u0E47-\\u0E4E\\u0EB1-\\u0EBC"
               "\\u0EC8-\\u0ECD])"},
    {"WORD", "{LETTER}({LETTER}|{DIGIT})*([.!?]{LETTER}({LETTER}|{DIGIT})*)*"},
    {"FILENAME_EXT", "bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip"},
    {"FILENAME", "({LETTER}|{DIGIT})+([.]({LETTER}|{DIGIT})+)*([.]{FILENAME_EXT})"},
    {"THING", "([dDoOlL]{APOSETCETERA}([:letter:]|[:digit:]))?([:letter:]|[:digit:])+({HYPHEN}([dDoOlL]{APOSETCETERA}([:letter:]|[:digit:]))?([:letter:]|[:digit:])+)*"},
    {"THINGA", "[A-Z]+(([+&]|{SPAMP})[A-Z]+)+"},
    {"THING3", "[A-Za-z0-9]+(-[A-Za-z]+){0,2}(\\\\?\\/[A-Za-z0-9]+(-[A-Za-z]+){0,2}){1,2}"},
    {"APOS", "['\\u0092\\u2019]|&apos;"},
    {"APOSETCETERA", "{APOS}|[`\\u0091\\u2018\\u201B]"},
    {"HTHING", "[A-Za-z0-9][A-Za-z0-9.,\\u00AD]*(-([A-Za-z0-9\\u00AD]+|{ACRO2}\\.))+"},
    {"REDAUX", "{APOS}([msdMSD]|re|ve|ll)"},
    {"SWORD", "[A-Za-z\\u00AD]*[A-MO-Za-mo-z](\\u00AD)*"},
    {"SREDAUX", "n{APOSETCETERA}t"},
    {"APOWORD", "{APOS}n{APOS}?|[lLdDjJ]{APOS}|Dunkin{APOS}|somethin{APOS}|ol{APOS}|{APOS}em|[A-HJ-XZn]{APOSETCETERA}[:letter:]{2}[:letter:]*"
                "|{APOS}[2-9]0s|{APOS}till?|[:letter:][:letter:]*[aeiouyAEIOUY]{APOSETCETERA}[aeiouA-Z][:letter:]*|{APOS}cause"
                "|cont'd\\.?|'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l|O{APOSETCETERA}o"},
    {"APOWORD2", "y{APOS}"},
    {"FULLURL", "https?:\\/\\/[^ \\t\\n\\f\\r\\\"<>|(){}]+[^ \\t\\n\\f\\r\\\"<>|.!?(){},-]"},
    {"LIKELYURL", "((www\\.([^ \\t\\n\\f\\r\\\"<>|.!?(){},]+\\.)+[a-zA-Z]{2,4})|(([^ \\t\\n\\f\\r\\\"`'<>|.!?(){},-_$]+\\.)+(com|net|org|edu)))"
                  "(\\/[^ \\t\\n\\f\\r\\\"<>|()]+[^ \\t\\n\\f\\r\\\"<>|.!?(){},-])?"},
    {"EMAIL", "(&lt;|<)?[a-zA-Z0-9][^ \\t\\n\\f\\r\\\"<>|()\\u00A0{}]*@([^ \\t\\n\\f\\r\\\"<>|(){}.\\u00A0]+\\.)*([^ \\t\\n\\f\\r\\\"<>|(){}.\\u00A0]+)(&gt;|>)?"},
    {"TWITTER_NAME", "@[a-zA-Z_][a-zA-Z_0-9]*"},
    {"TWITTER_CATEGORY", "#{LETTER}+"},
    {"TWITTER", "{TWITTER_NAME}|{TWITTER_CATEGORY}"},
    {"ABMONTH", "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"},
    {"ABDAYS", "Mon|Tue|Tues|Wed|Thu|Thurs|Fri"},
    {"ABSTATE", "Ala|Ariz|[A]z|[A]rk|Calif|Colo|Conn|Ct|Dak|[D]el|Fla|Ga|[I]ll|Ind|Kans?|Ky|[L]a|[M]ass|Md|Mich|Minn|[M]iss|Mo|Mont|Neb|Nev|Okla|[O]re|[P]a|Penn|Tenn|[T]ex|Va|Vt|[W]ash|Wisc?|Wyo"},
    {"ABCOMP", "Inc|Cos?|Corp|Pp?t[ye]s?|Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys"},
    {"ABNUM", "tel|est|ext|sq"},
    {"ABPTIT", "Jr|Sr|Bros|(Ed|Ph)\\.D|Blvd|Rd|Esq"},
    {"ABBREV1", "({ABMONTH}|{ABDAYS}|{ABSTATE}|{ABCOMP}|{ABNUM}|{ABPTIT}|etc|al|seq|Bldg)\\."},
    {"ACRO", "[A-Za-z](\\.[A-Za-z])*|(Canada|Sino|Korean|EU|Japan|non)-U\\.S|U\\.S\\.-(U\\.K|U\\.S\\.S\\.R)"},
    {"ACRO2", "[A-Za-z](\\.[A-Za-z])+|(Canada|Sino|Korean|EU|Japan|non)-U\\.S|U\\.S\\.-(U\\.K|U\\.S\\.S\\.R)"},
    {"ABTITLE", "Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Mt|Ft|Adj|Adv|Asst|Assoc|Ens|Insp|Mlle|Mme|Msgr|Sfc"},
    {"ABCOMP2", "Invt|Elec|Natl|M[ft]g|Dept"},
    {"ABBREV4", "{ABTITLE}|vs|Alex|Wm|Jos|Cie|a\\.k\\.a|cf|TREAS|Ph|{ACRO}|{ABCOMP2}"},
    {"ABBREV2", "{ABBREV4}\\."},
    {"ACRONYM", "({ACRO})\\."},
    {"ABBREV3", "(ca|figs?|prop|nos?|art|bldg|prop|pp|op)\\."},
    {"PHONE", "(\\([0-9]{2,3}\\)[ \\u00A0]?|(\\+\\+?)?([0-9]{2,4}[\\- \\u00A0])?[0-9]{2,4}[\\- \\u00A0])[0-9]{3,4}[\\- \\u00A0]?[0-9]{3,5}"
              "|((\\+\\+?)?[0-9]{2,4}\\.)?[0-9]{2,4}\\.[0-9]{3,4}\\.[0-9]{3,5}"},
    {"FAKEDUCKFEET", "<<|>>"},
    {"LESSTHAN", "<|&lt;"},
    {"GREATERTHAN", ">|&gt;"},
    {"HYPHEN", "[-_\\u058A\\u2010\\u2011]"},
    {"HYPHENS", "\\-+"},
    {"LDOTS", "\\.{3,5}|(\\.[ \\u00A0]){2,4}\\.|[\\u0085\\u2026]"},
    {"ATS", "@+"},
    {"UNDS", "_+"},
    {"ASTS", "\\*+|(\\\\\\*){1,3}"},
    {"HASHES", "#+"},
    {"FNMARKS", "{ATS}|{HASHES}|{UNDS}"},
    {"INSENTP", "[,;:\\u3001]"},
    {"QUOTES", "{APOS}|''|[`\\u2018\\u2019\\u201A\\u201B\\u201C\\u201D\\u0091\\u0092\\u0093\\u0094\\u201E\\u201F\\u2039\\u203A\\u00AB\\u00BB]{1,2}"},
    {"DBLQUOT", "\\\"|&quot;"},
    {"TBSPEC", "-(RRB|LRB|RCB|LCB|RSB|LSB)-|C\\.D\\.s|pro-|anti-|S(&|&amp;)P-500|S(&|&amp;)Ls|Cap{APOS}n|c{APOS}est"},
    {"TBSPEC2", "{APOS}[0-9][0-9]"},
    {"SMILEY", "[<>]?[:;=][\\-o\\*']?[\\(\\)DPdpO\\\\{@\\|\\[\\]]"},
    // The first alternative reads \[ where a class was meant; as written it is a literal '['.
    {"ASIANSMILEY", "[\\^x=~<>]\\.\\[\\^x=~<>\\]|[\\-\\^x=~<>']_[\\-\\^x=~<>']|\\([\\-\\^x=~<>'][_.]?[\\-\\^x=~<>']\\)|\\([\\^x=~<>']-[\\^x=~<>'`]\\)"},
    {"MISCSYMBOL", "[+%&~\\^|\\\\\\u00A6\\u00A7\\u00A8\\u00A9\\u00AC\\u00AE\\u00AF\\u00B0-\\u00B3\\u00B4-\\u00BA\\u00D7\\u00F7\\u0387\\u05BE\\u05C0\\u05C3"
                   "\\u05C6\\u05F3\\u05F4\\u0600-\\u0603\\u0606-\\u060A\\u060C\\u0614\\u061B\\u061E\\u066A\\u066D\\u0703-\\u070D\\u07F6\\u07F7"
                   "\\u07F8\\u0964\\u0965\\u0E4F\\u1FBD\\u2016\\u2017\\u2020-\\u2023\\u2030-\\u2038\\u203B\\u203E-\\u2042\\u2044\\u207A-\\u207F"
                   "\\u208A-\\u208E\\u2100-\\u214F\\u2190-\\u21FF\\u2200-\\u2BFF\\u3012\\u30FB\\uFF01-\\uFF0F\\uFF1A-\\uFF20\\uFF3B-\\uFF40"
                   "\\uFF5B-\\uFF65\\uFF65]"},
    {NULL, NULL},
};

// What a rule does with its text.
enum {
    A_TEXT,        // the text as matched
    A_PUSHBACK,    // the text less its last `arg` characters, which are scanned again
    A_SOFTHYPHEN,  // the text without soft hyphens (U+00AD; "-" if nothing is left)
    A_SPACE_NBSP,  // spaces become U+00A0 (SGML, fractions)
    A_DASH,        // "--"
    A_AMP,         // &amp; (any case) becomes &
    A_QUOTE,       // PTB quotes: arg 1 probably a left quote, 0 a right one
    A_FRAC2,       // the vulgar fraction characters spelt out
    A_CURRENCY,    // cents, #, $
    A_ACRONYM_END, // an acronym before a sentence start: the acronym (with its period) and a period
    A_TRIM,        // the text less trailing whitespace
    A_ABBREV_END,  // an abbreviation ending a sentence: the word with its period, and a period
    A_PHONE,       // spaces to U+00A0, parentheses to -LRB- -RRB-
    A_FIXED,       // the string `fixed`
    A_SMILEY,      // parentheses to -LRB- -RRB-
    A_HYPHENS,     // 3 or 4 hyphens become "--"
    A_ELLIPSIS,    // "..."
    A_SKIP,        // whitespace, NUL, DEL, zero-width characters, untokenizable characters
    A_NEWLINE,     // a line break (a line break in pycocoevalcap's output)
};

typedef struct {
    const char *re, *trail;  // pattern, trailing context (NULL: none)
    int action, arg;
    const char *fixed;
} rule;

#define ACRONYM_NEXT "([A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|[H]e|[H]er|[H]ere|" \
    "[H]owever|[I]f|[I]n|[I]t|[L]ast|[M]any|[M]ore|[M]r\\.|[M]s\\.|[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he|[S]ince|[S]o|" \
    "[S]ome|[S]uch|[T]hat|[T]he|[T]heir|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile|[W]hat|[Y]et|[Y]ou|{SGML})"

static const rule RULES[] = {
    {"c[+][+]", NULL, A_TEXT, 0, NULL},
    {"(c|f)#", NULL, A_TEXT, 0, NULL},
    {"cannot", NULL, A_PUSHBACK, 3, NULL},
    {"'twas", NULL, A_PUSHBACK, 3, NULL},
    {"'tis", NULL, A_PUSHBACK, 2, NULL},
    {"gonna|gotta|lemme|gimme|wanna", NULL, A_PUSHBACK, 2, NULL},
    {"{SGML}", NULL, A_SPACE_NBSP, 0, NULL},
    {"{SPMDASH}", NULL, A_DASH, 0, NULL},
    {"{SPAMP}", NULL, A_AMP, 0, NULL},
    {"{SPPUNC}", NULL, A_TEXT, 0, NULL},
    {"{WORD}", "{REDAUX}", A_SOFTHYPHEN, 0, NULL},
    {"{SWORD}", "{SREDAUX}", A_SOFTHYPHEN, 0, NULL},
    {"{WORD}", NULL, A_SOFTHYPHEN, 0, NULL},
    {"{APOWORD}", NULL, A_TEXT, 0, NULL},
    {"{APOWORD2}", "[:letter:]", A_TEXT, 0, NULL},
    {"{FULLURL}", NULL, A_TEXT, 0, NULL},
    {"{LIKELYURL}", NULL, A_TEXT, 0, NULL},
    {"{EMAIL}", NULL, A_TEXT, 0, NULL},
    {"{TWITTER}", NULL, A_TEXT, 0, NULL},
    {"{REDAUX}", "[^A-Za-z]", A_QUOTE, 0, NULL},
    {"{SREDAUX}", "[^A-Za-z]", A_QUOTE, 0, NULL},
    {"{DATE}", NULL, A_TEXT, 0, NULL},
    {"{NUMBER}", NULL, A_SOFTHYPHEN, 0, NULL},
    {"{SUBSUPNUM}", NULL, A_TEXT, 0, NULL},
    {"{FRAC}", NULL, A_SPACE_NBSP, 0, NULL},
    {"{FRAC2}", NULL, A_FRAC2, 0, NULL},
    {"{TBSPEC}", NULL, A_AMP, 0, NULL},
    {"{THING3}", NULL, A_TEXT, 0, NULL},
    {"{DOLSIGN}", NULL, A_TEXT, 0, NULL},
    {"{DOLSIGN2}", NULL, A_CURRENCY, 0, NULL},
    {"{ACRONYM}", "({SPACENLS})" ACRONYM_NEXT "{SPACENL}", A_ACRONYM_END, 0, NULL},
    {"{ABBREV3}", "{SPACENL}?[:digit:]", A_TRIM, 0, NULL},
    {"(pt[eyEY]|co)\\.", "{SPACE}(ltd|lim)", A_TEXT, 0, NULL},
    {"{ABBREV1}", "{SENTEND}", A_ABBREV_END, 0, NULL},
    {"{ABBREV1}", "[^][^]", A_TEXT, 0, NULL},
    {"{ABBREV1}", NULL, A_ABBREV_END, 0, NULL},
    {"{ABBREV2}", NULL, A_TEXT, 0, NULL},
    {"{ABBREV4}", "{SPACE}", A_TEXT, 0, NULL},
    {"{ACRO}", "{SPACENL}", A_TEXT, 0, NULL},
    {"{TBSPEC2}", "{SPACENL}", A_TEXT, 0, NULL},
    {"{FILENAME}", "({SPACENL}|[.?!,])", A_TEXT, 0, NULL},
    {"{WORD}\\.", "{INSENTP}", A_SOFTHYPHEN, 0, NULL},
    {"{PHONE}", NULL, A_PHONE, 0, NULL},
    {"{DBLQUOT}", "[A-Za-z0-9$]", A_QUOTE, 1, NULL},
    {"{DBLQUOT}", NULL, A_QUOTE, 0, NULL},
    {"\\x7f", NULL, A_SKIP, 0, NULL},
    {"{LESSTHAN}", NULL, A_FIXED, 0, "<"},
    {"{GREATERTHAN}", NULL, A_FIXED, 0, ">"},
    {"{SMILEY}", "[^A-Za-z0-9]", A_SMILEY, 0, NULL},
    {"{ASIANSMILEY}", NULL, A_SMILEY, 0, NULL},
    {"\\{", NULL, A_FIXED, 0, "-LCB-"},
    {"\\}", NULL, A_FIXED, 0, "-RCB-"},
    {"\\[", NULL, A_FIXED, 0, "-LSB-"},
    {"\\]", NULL, A_FIXED, 0, "-RSB-"},
    {"\\(", NULL, A_FIXED, 0, "-LRB-"},
    {"\\)", NULL, A_FIXED, 0, "-RRB-"},
    {"{HYPHENS}", NULL, A_HYPHENS, 0, NULL},
    {"{LDOTS}", NULL, A_ELLIPSIS, 0, NULL},
    {"{FNMARKS}", NULL, A_TEXT, 0, NULL},
    {"{ASTS}", NULL, A_TEXT, 0, NULL},
    {"{INSENTP}", NULL, A_TEXT, 0, NULL},
    {"[?!]+", NULL, A_TEXT, 0, NULL},
    {"[.\\u00A1\\u00BF\\u037E\\u0589\\u061F\\u06D4\\u0700-\\u0702\\u07FA\\u3002]", NULL, A_TEXT, 0, NULL},
    {"=", NULL, A_TEXT, 0, NULL},
    {"\\/", NULL, A_TEXT, 0, NULL},
    {"{HTHING}\\.", "{INSENTP}", A_SOFTHYPHEN, 0, NULL},
    {"{HTHING}", NULL, A_SOFTHYPHEN, 0, NULL},
    {"{THING}\\.", "{INSENTP}", A_TEXT, 0, NULL},
    {"{THING}", NULL, A_TEXT, 0, NULL},
    {"{THINGA}\\.", "{INSENTP}", A_AMP, 0, NULL},
    {"{THINGA}", NULL, A_AMP, 0, NULL},
    {"'", "[A-Za-z][^ \\t\\n\\r\\u00A0]", A_QUOTE, 1, NULL},
    {"{REDAUX}", NULL, A_QUOTE, 0, NULL},
    {"{SREDAUX}", NULL, A_QUOTE, 0, NULL},
    {"{QUOTES}", NULL, A_QUOTE, 0, NULL},
    {"{FAKEDUCKFEET}", NULL, A_TEXT, 0, NULL},
    {"{MISCSYMBOL}", NULL, A_TEXT, 0, NULL},
    {"\\0|{SPACES}|[\\u200B\\u200E-\\u200F\\uFEFF]", NULL, A_SKIP, 0, NULL},
    {"{NEWLINE}", NULL, A_NEWLINE, 0, NULL},
    {"&nbsp;", NULL, A_SKIP, 0, NULL},
    {".", NULL, A_SKIP, 0, NULL},
};

#define N_RULES NELEM(RULES)

typedef struct {
    int whole, head, tail;  // NFA starts: r1 r2 (or r1), r1, r2 (-1 when no trailing context)
    uint8_t first[65536 / 8]; // code units that can start a match of `whole`
} compiled_rule;

static struct {
    nfa_builder b;
    compiled_rule *rules;
    int ok;
} G;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int class_match(const nfa_builder *b, int cls, unsigned c) {
    const cclass *k = &b->cls[cls];
    int in = (k->flags & g_props[c]) != 0;
    for (int i = 0; !in && i < k->count; i++) in = c >= b->rng[k->first + i][0] && c <= b->rng[k->first + i][1];
    return k->negated ? !in : in;
}

static int compile(const char *re, const char *trail, int which) {
    parser ps = {&G.b, NULL, MACROS, 1, 0};
    frag f;
    if (which == 2) f = parse_pattern_text(&ps, trail);
    else {
        f = parse_pattern_text(&ps, re);
        if (which == 0 && trail) f = frag_cat(&G.b, f, parse_pattern_text(&ps, trail));
    }
    int m = new_state(&G.b, S_MATCH, 0, -1, -1);
    G.b.st[f.end].out = m;
    return ps.error ? -1 : f.start;
}

// Marks in `first` every code unit that a transition reachable from s without input accepts.
static void first_set(int s, uint8_t *first, uint8_t *seen) {
    if (s < 0 || seen[s]) return;
    seen[s] = 1;
    const nstate *t = &G.b.st[s];
    if (t->type == S_CLASS) {  // the class as a bitmap: its properties, its ranges, negation
        static uint8_t bm[65536 / 8];
        const cclass *k = &G.b.cls[t->cls];
        memset(bm, 0, sizeof bm);
        if (k->flags)
            for (unsigned c = 0; c < 65536; c++)
                if (g_props[c] & k->flags) bm[c >> 3] |= (uint8_t)(1u << (c & 7));
        for (int i = 0; i < k->count; i++)
            for (unsigned c = G.b.rng[k->first + i][0]; c <= G.b.rng[k->first + i][1]; c++) bm[c >> 3] |= (uint8_t)(1u << (c & 7));
        for (size_t i = 0; i < sizeof bm; i++) first[i] |= k->negated ? (uint8_t)~bm[i] : bm[i];
    } else if (t->type == S_EPS) first_set(t->out, first, seen);
    else if (t->type == S_SPLIT) { first_set(t->out, first, seen); first_set(t->out1, first, seen); }
}

static void init_once(void) {
    for (int i = 0; i < NELEM(PTB_LETTER); i++)
        for (unsigned c = PTB_LETTER[i].lo; c <= PTB_LETTER[i].hi; c++) g_props[c] |= CF_LETTER;
    for (int i = 0; i < NELEM(PTB_DIGIT); i++)
        for (unsigned c = PTB_DIGIT[i].lo; c <= PTB_DIGIT[i].hi; c++) g_props[c] |= CF_DIGIT;
    for (int i = 0; i < NELEM(PTB_UPPER); i++)
        for (unsigned c = PTB_UPPER[i].lo; c <= PTB_UPPER[i].hi; c++) g_props[c] |= CF_UPPER;
    G.rules = calloc(N_RULES, sizeof *G.rules);
    if (!G.rules) return;
    for (int r = 0; r < N_RULES; r++) {
        compiled_rule *c = &G.rules[r];
        c->whole = compile(RULES[r].re, RULES[r].trail, 0);
        c->head = RULES[r].trail ? compile(RULES[r].re, NULL, 1) : -1;
        c->tail = RULES[r].trail ? compile(NULL, RULES[r].trail, 2) : -1;
        if (c->whole < 0 || (RULES[r].trail && (c->head < 0 || c->tail < 0))) return;
    }
    if (G.b.failed) return;
    uint8_t *seen = malloc((size_t)G.b.n);
    if (!seen) return;
    for (int r = 0; r < N_RULES; r++) {
        memset(seen, 0, (size_t)G.b.n);
        first_set(G.rules[r].whole, G.rules[r].first, seen);
    }
    free(seen);
    G.ok = 1;
}

// ---- simulation -----------------------------------------------------------------------------

typedef struct {
    int *cur, *next;  // state lists
    unsigned *mark;   // per state: generation that last added it
    unsigned gen;
} sim;

static void add_state(sim *S, int *list, int *n, int s) {
    while (s >= 0) {
        if (S->mark[s] == S->gen) return;
        S->mark[s] = S->gen;
        const nstate *t = &G.b.st[s];
        if (t->type == S_EPS) { s = t->out; continue; }
        if (t->type == S_SPLIT) { add_state(S, list, n, t->out); s = t->out1; continue; }
        list[(*n)++] = s;
        return;
    }
}

// Runs the automaton at `start` over t[pos..end). acc (when not NULL, size end-pos+1) gets 1 at
// every length that is a match. Returns the longest match length, or -1.
static int run(sim *S, int start, const uint16_t *t, int pos, int end, uint8_t *acc) {
    int nc = 0, best = -1;
    S->gen++;
    add_state(S, S->cur, &nc, start);
    for (int i = pos;; i++) {
        int matched = 0;
        for (int k = 0; k < nc; k++)
            if (G.b.st[S->cur[k]].type == S_MATCH) matched = 1;
        if (matched) {
            best = i - pos;
            if (acc) acc[i - pos] = 1;
        }
        if (i == end || nc == 0) break;
        unsigned c = t[i];
        int nn = 0;
        S->gen++;
        for (int k = 0; k < nc; k++) {
            const nstate *st = &G.b.st[S->cur[k]];
            if (st->type == S_CLASS && class_match(&G.b, st->cls, c)) add_state(S, S->next, &nn, st->out);
        }
        int *tmp = S->cur; S->cur = S->next; S->next = tmp;
        nc = nn;
    }
    return best;
}

// ---- actions --------------------------------------------------------------------------------

typedef struct {
    uint16_t *buf;
    size_t len, cap;
    int failed;
} u16buf;

static void put(u16buf *o, uint16_t c) {
    if (o->failed) return;
    if (o->len == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 256;
        uint16_t *p = realloc(o->buf, nc * sizeof *p);
        if (!p) { o->failed = 1; return; }
        o->buf = p;
        o->cap = nc;
    }
    o->buf[o->len++] = c;
}

static void put_ascii(u16buf *o, const char *s) { while (*s) put(o, (uint16_t)(unsigned char)*s++); }

static int ieq_ascii(const uint16_t *t, int n, const char *s) {
    for (int i = 0; i < n; i++) {
        if (!s[i]) return 0;
        unsigned c = t[i], d = (unsigned char)s[i];
        if (c < 128 && (c | 32) >= 'a' && (c | 32) <= 'z') c |= 32;
        if (c != d) return 0;
    }
    return s[n] == '\0';
}

static int eq_ascii(const uint16_t *t, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!s[i] || t[i] != (unsigned char)s[i]) return 0;
    return s[n] == '\0';
}

// Writes the token text t[0..n) after the rule's normalization into o (the token is then in
// o->buf[start..o->len)).
static void normalize(u16buf *o, const rule *r, const uint16_t *t, int n) {
    switch (r->action) {
    case A_SOFTHYPHEN: {
        size_t before = o->len;
        for (int i = 0; i < n; i++) if (t[i] != 0x00AD) put(o, t[i]);
        if (o->len == before) put(o, '-');
        return;
    }
    case A_SPACE_NBSP:
        for (int i = 0; i < n; i++) put(o, t[i] == ' ' ? 0x00A0 : t[i]);
        return;
    case A_DASH: put_ascii(o, "--"); return;
    case A_AMP:
        for (int i = 0; i < n; i++) {
            if (t[i] == '&' && i + 5 <= n && ieq_ascii(t + i, 5, "&amp;")) { put(o, '&'); i += 4; continue; }
            put(o, t[i]);
        }
        return;
    case A_QUOTE: {  // PTB (LaTeX-style) quotes: ' and &apos; by side, " and &quot; to `` or ''
        int left = r->arg;
        for (int i = 0; i < n; i++) {
            unsigned c = t[i];
            if (c == '&' && i + 6 <= n && (eq_ascii(t + i, 6, "&apos;") || eq_ascii(t + i, 6, "&quot;"))) {  // case matters here
                int dbl = (t[i + 1] | 32) == 'q';
                put_ascii(o, dbl ? (left ? "``" : "''") : (left ? "`" : "'"));
                i += 5;
                continue;
            }
            if (c == '\'') put_ascii(o, left ? "`" : "'");
            else if (c == '"') put_ascii(o, left ? "``" : "''");
            else if (c == 0x0091 || c == 0x2018 || c == 0x201B || c == 0x2039) put(o, '`');
            else if (c == 0x0092 || c == 0x2019 || c == 0x203A) put(o, '\'');
            else if (c == 0x0093 || c == 0x201C || c == 0x00AB) put_ascii(o, "``");
            else if (c == 0x0094 || c == 0x201D || c == 0x00BB) put_ascii(o, "''");
            else put(o, (uint16_t)c);
        }
        return;
    }
    case A_FRAC2:
        for (int i = 0; i < n; i++) {
            switch (t[i]) {
            case 0x00BC: put_ascii(o, "1/4"); break;
            case 0x00BD: put_ascii(o, "1/2"); break;
            case 0x00BE: put_ascii(o, "3/4"); break;
            case 0x2153: put_ascii(o, "1/3"); break;
            case 0x2154: put_ascii(o, "2/3"); break;
            default: put(o, t[i]);
            }
        }
        return;
    case A_CURRENCY:
        for (int i = 0; i < n; i++) {
            unsigned c = t[i];
            if (c == 0x00A2) put_ascii(o, "cents");
            else if (c == 0x00A3) put(o, '#');
            else if (c == 0x0080 || c == 0x00A4 || c == 0x20A0 || c == 0x20AC) put(o, '$');
            else put(o, (uint16_t)c);
        }
        return;
    case A_PHONE:
        for (int i = 0; i < n; i++) {
            if (t[i] == ' ') put(o, 0x00A0);
            else if (t[i] == '(') put_ascii(o, "-LRB-");
            else if (t[i] == ')') put_ascii(o, "-RRB-");
            else put(o, t[i]);
        }
        return;
    case A_SMILEY:
        for (int i = 0; i < n; i++) {
            if (t[i] == '(') put_ascii(o, "-LRB-");
            else if (t[i] == ')') put_ascii(o, "-RRB-");
            else put(o, t[i]);
        }
        return;
    case A_FIXED: put_ascii(o, r->fixed); return;
    case A_HYPHENS:
        if (n >= 3 && n <= 4) put_ascii(o, "--");
        else for (int i = 0; i < n; i++) put(o, t[i]);
        return;
    case A_ELLIPSIS: put_ascii(o, "..."); return;
    default:
        for (int i = 0; i < n; i++) put(o, t[i]);
        return;
    }
}

static int is_trim_space(unsigned c) { return c == ' ' || c == '\t' || (c >= '\n' && c <= '\r') || c == 0x0085; }

int vlt_ptb_lex(const uint16_t *t, int n, vlt_ptb_token_fn emit, void *ctx) {
    pthread_once(&g_once, init_once);
    if (!G.ok) return -1;
    sim S = {0};
    S.cur = malloc((size_t)G.b.n * sizeof *S.cur);
    S.next = malloc((size_t)G.b.n * sizeof *S.next);
    S.mark = calloc((size_t)G.b.n, sizeof *S.mark);
    uint8_t *acc = NULL;
    u16buf tok = {0};
    int status = 0;
    if (!S.cur || !S.next || !S.mark) status = -1;
    size_t acc_cap = 0;
    int pos = 0;
    while (status == 0 && pos < n) {
        unsigned c0 = t[pos];
        int best = -1, best_len = 0;
        for (int r = 0; r < N_RULES; r++) {
            const compiled_rule *cr = &G.rules[r];
            if (!(cr->first[c0 >> 3] & (1u << (c0 & 7)))) continue;
            int len = run(&S, cr->whole, t, pos, n, NULL);
            if (len > best_len) { best_len = len; best = r; }
        }
        if (best < 0) { pos++; continue; }  // cannot happen: "." and NEWLINE take every code unit
        const rule *r = &RULES[best];
        int len = best_len;
        if (r->trail) {  // r1/r2: the longest r1 whose rest matches r2 (as JFlex's general lookahead)
            if ((size_t)best_len + 1 > acc_cap) {
                acc_cap = (size_t)best_len + 64;
                uint8_t *a = realloc(acc, acc_cap);
                if (!a) { status = -1; break; }
                acc = a;
            }
            memset(acc, 0, (size_t)best_len + 1);
            run(&S, G.rules[best].head, t, pos, pos + best_len, acc);
            int k = best_len;
            for (; k >= 0; k--) {
                if (!acc[k]) continue;
                int tl = run(&S, G.rules[best].tail, t, pos + k, pos + best_len, NULL);
                if (tl == best_len - k) break;
            }
            len = k > 0 ? k : best_len;
        }
        int next = pos + len, out_len = len;
        switch (r->action) {
        case A_PUSHBACK: out_len = len - r->arg; next = pos + out_len; break;
        case A_TRIM: while (out_len > 0 && is_trim_space(t[pos + out_len - 1])) out_len--; next = pos + out_len; break;
        case A_ACRONYM_END:
            while (out_len > 0 && is_trim_space(t[pos + out_len - 1])) out_len--;
            if (out_len == 2) { out_len = 1; next = pos + 1; }     // "I." -> "I", then "."
            else next = pos + out_len - 1;                          // "U.S." and then its "." again
            break;
        case A_ABBREV_END: next = pos + out_len - 1; break;       // "etc." and then "." again
        default: break;
        }
        if (r->action == A_SKIP) { pos = next; continue; }
        if (r->action == A_NEWLINE) {
            if (emit(NULL, 0, ctx)) status = -1;
            pos = next;
            continue;
        }
        tok.len = 0;
        normalize(&tok, r, t + pos, out_len);
        if (tok.failed) { status = -1; break; }
        if (emit(tok.buf, (int)tok.len, ctx)) status = -1;
        pos = next;
    }
    free(S.cur);
    free(S.next);
    free(S.mark);
    free(acc);
    free(tok.buf);
    return status;
}
