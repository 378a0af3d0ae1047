// tokenize_cmd.c — `vlt tokenize`: text in, tokens out, with either of vlt's text tokenizers, for
// checking and scripting.
//   vlt tokenize [--context N | --no-pad] [TEXT ...]   CLIP BPE ids as open_clip's tokenize():
//                                                      SOT, tokens, EOT, zero padding to N (77)
//   vlt tokenize --ptb [TEXT ...]                      pycocoevalcap's PTB tokens (what BLEU and
//                                                      CIDEr-D score), all lines as one call
//   vlt tokenize --decode [IDS ...]                    CLIP BPE ids back to text
//   vlt tokenize --bert VOCAB [--cased] [...]          BERT WordPiece ids as transformers'
//                                                      BertTokenizer: [CLS], tokens, [SEP]
//                                                      (--context N: truncated and padded to N)
// Without TEXT the lines of standard input are read (one text per line); one output line each.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bert_tokenizer.h"
#include "data/tokenizer.h"
#include "eval/ptb_tokenize.h"
#include "train/cli_args.h"
#include "train/commands.h"

static const char *USAGE =
    "usage: vlt tokenize [--ptb | --decode] [--bert VOCAB [--cased]] [--context N | --no-pad] [TEXT ...]\n"
    "Tokenizes each TEXT (or each line of standard input) and prints one line per text:\n"
    "  (default)   CLIP BPE token ids as open_clip's tokenize(): SOT, tokens, EOT, zero padding to\n"
    "              --context N (77); --no-pad stops at EOT\n"
    "  --ptb       the PTB tokens pycocoevalcap scores (Stanford PTBTokenizer 3.4.1, lower-cased,\n"
    "              punctuation removed), the texts read as one pycocoevalcap call\n"
    "  --decode    CLIP BPE ids (space separated) back to text, as open_clip's decode\n"
    "  --bert VOCAB  BERT WordPiece ids of a BERT vocab.txt as transformers' BertTokenizer (uncased:\n"
    "              lower-cased, accents stripped; --cased for a cased vocabulary): [CLS], tokens,\n"
    "              [SEP]; with --context N truncated and [PAD]-padded to N (--no-pad: not padded);\n"
    "              with --decode, ids back to tokens\n";

static int bert_main(const char *vocab, int cased, int decode, int pad, int context, char **texts, int n);

// The texts: the arguments from `first`, or the lines of stdin (malloc'd array; *owned = 1 when
// the strings are malloc'd too).
static char **read_texts(int argc, char **argv, int first, int *n, int *owned) {
    if (first < argc) {
        *n = argc - first;
        *owned = 0;
        return argv + first;
    }
    *owned = 1;
    int cap = 64;
    char **v = malloc(sizeof *v * (size_t)cap);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    *n = 0;
    while (v && (len = getline(&line, &lcap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if (*n == cap) {
            char **g = realloc(v, sizeof *v * (size_t)(cap *= 2));
            if (!g) break;
            v = g;
        }
        v[(*n)++] = strdup(line);
    }
    free(line);
    return v;
}

int vlt_cmd_tokenize(int argc, char **argv) {
    int ptb = 0, decode = 0, pad = 1, context = VLT_TOKENIZER_CONTEXT, i = 1, cased = 0, has_context = 0;
    const char *bert = NULL;
    for (; i < argc; i++) {
        const char *o = argv[i];
        if (vlt_cli_is_help(o)) { fputs(USAGE, stdout); return 0; }
        if (!strcmp(o, "--ptb")) ptb = 1;
        else if (!strcmp(o, "--decode")) decode = 1;
        else if (!strcmp(o, "--no-pad")) pad = 0;
        else if (!strcmp(o, "--cased")) cased = 1;
        else if (!strcmp(o, "--bert")) {
            if (i + 1 >= argc) return vlt_cli_usage_error("tokenize", "--bert needs a vocab.txt");
            bert = argv[++i];
        }
        else if (!strcmp(o, "--context")) {
            if (i + 1 >= argc) return vlt_cli_usage_error("tokenize", "--context needs a number");
            context = (int)vlt_cli_int("tokenize", "--context", argv[++i], 2, 1 << 20);
            has_context = 1;
        } else if (!strcmp(o, "--")) { i++; break; }
        else if (o[0] == '-' && o[1] == '-') return vlt_cli_unexpected("tokenize", o);
        else break;
    }
    if (ptb && decode) return vlt_cli_usage_error("tokenize", "--ptb and --decode exclude each other");
    if (ptb && bert) return vlt_cli_usage_error("tokenize", "--ptb and --bert exclude each other");
    if (cased && !bert) return vlt_cli_usage_error("tokenize", "--cased goes with --bert VOCAB");
    int n = 0, owned = 0;
    char **texts = read_texts(argc, argv, i, &n, &owned);
    if (!texts) { fprintf(stderr, "vlt tokenize: out of memory\n"); return 1; }
    int rc = 0;
    if (bert) {
        // Without --context a text is not padded and keeps up to 512 tokens (BERT's positions).
        rc = bert_main(bert, cased, decode, pad && has_context, has_context ? context : 512, texts, n);
    } else if (ptb) {
        char **out = calloc((size_t)(n ? n : 1), sizeof *out);
        int lines = 0;
        if (!out || vlt_eval_ptb_tokenize_batch((const char *const *)texts, n, out, &lines) != VLT_OK) {
            fprintf(stderr, "vlt tokenize: %s\n", out ? vlt_error_message() : "out of memory");
            rc = 1;
        } else {
            if (lines != n)
                fprintf(stderr, "vlt tokenize: warning: a text holds a line break other than \\n; as in pycocoevalcap, "
                                "the texts after it get the wrong lines\n");
            for (int k = 0; k < n; k++) printf("%s\n", out[k] ? out[k] : "");
        }
        for (int k = 0; out && k < n; k++) free(out[k]);
        free(out);
    } else {
        vlt_tokenizer *tok = NULL;
        if (vlt_tokenizer_load(NULL, &tok) != VLT_OK) {
            fprintf(stderr, "vlt tokenize: %s\n", vlt_error_message());
            rc = 1;
        }
        int32_t *ids = malloc(sizeof *ids * (size_t)(context > 4096 ? context : 4096));
        char *text = malloc(1 << 20);
        for (int k = 0; rc == 0 && k < n; k++) {
            if (!ids || !text) { fprintf(stderr, "vlt tokenize: out of memory\n"); rc = 1; break; }
            if (decode) {
                int m = 0;
                for (char *p = texts[k], *end; *p && m < 4096; p = end) {
                    long v = strtol(p, &end, 10);
                    if (end == p) {
                        if (*p == ' ' || *p == '\t' || *p == ',') { end = p + 1; continue; }
                        fprintf(stderr, "vlt tokenize: line %d: '%s' is not a token id\n", k + 1, p);
                        rc = 1;
                        break;
                    }
                    ids[m++] = (int32_t)v;
                }
                if (rc) break;
                if (vlt_tokenizer_decode(tok, ids, m, text, 1 << 20) != VLT_OK) {
                    fprintf(stderr, "vlt tokenize: line %d: %s\n", k + 1, vlt_error_message());
                    rc = 1;
                    break;
                }
                printf("%s\n", text);
                continue;
            }
            int m = vlt_tokenizer_encode(tok, texts[k], ids, context);
            if (m < 0) { fprintf(stderr, "vlt tokenize: %s\n", vlt_error_message()); rc = 1; break; }
            int show = pad ? context : m;
            for (int j = 0; j < show; j++) printf(j ? " %d" : "%d", ids[j]);
            printf("\n");
        }
        free(ids);
        free(text);
        vlt_tokenizer_free(tok);
    }
    if (owned) {
        for (int k = 0; k < n; k++) free(texts[k]);
        free(texts);
    }
    return rc;
}

// Parses space / comma separated ids of `line` into ids (at most cap); -1 on a bad one.
static int parse_ids(const char *line, int lineno, int32_t *ids, int cap) {
    int m = 0;
    for (const char *p = line; *p && m < cap;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            if (*p == ' ' || *p == '\t' || *p == ',') { p++; continue; }
            fprintf(stderr, "vlt tokenize: line %d: '%s' is not a token id\n", lineno, p);
            return -1;
        }
        ids[m++] = (int32_t)v;
        p = end;
    }
    return m;
}

// vlt tokenize --bert: encode (or with --decode, decode) each text with a BERT vocab.txt.
static int bert_main(const char *vocab, int cased, int decode, int pad, int context, char **texts, int n) {
    vlt_bert_tokenizer *tok = NULL;
    if (vlt_bert_tokenizer_load(vocab, !cased, &tok) != VLT_OK) {
        fprintf(stderr, "vlt tokenize: %s\n", vlt_error_message());
        return 1;
    }
    int rc = 0;
    int cap = context > 4096 ? context : 4096;
    int32_t *ids = malloc(sizeof *ids * (size_t)cap);
    char *text = malloc(1 << 20);
    for (int k = 0; k < n && rc == 0; k++) {
        if (!ids || !text) { fprintf(stderr, "vlt tokenize: out of memory\n"); rc = 1; break; }
        if (decode) {
            int m = parse_ids(texts[k], k + 1, ids, cap);
            if (m < 0 || vlt_bert_tokenizer_decode(tok, ids, m, text, 1 << 20) != VLT_OK) {
                if (m >= 0) fprintf(stderr, "vlt tokenize: line %d: %s\n", k + 1, vlt_error_message());
                rc = 1;
                break;
            }
            printf("%s\n", text);
            continue;
        }
        int m = vlt_bert_tokenizer_encode(tok, texts[k], ids, NULL, context);
        if (m < 0) { fprintf(stderr, "vlt tokenize: %s\n", vlt_error_message()); rc = 1; break; }
        int show = pad ? context : m;
        for (int j = 0; j < show; j++) printf(j ? " %d" : "%d", ids[j]);
        printf("\n");
    }
    free(ids);
    free(text);
    vlt_bert_tokenizer_free(tok);
    return rc;
}
