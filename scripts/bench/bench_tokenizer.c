// bench_tokenizer.c — times vlt_tokenizer_encode over a file of captions (one per line) on the
// calling thread. Built and run by scripts/bench/bench_tokenizer.sh.
// Usage: bench_tokenizer CAPTIONS_FILE REPEATS
// Prints one JSON line: captions, tokens (between SOT and EOT), seconds, checksum of the ids.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s CAPTIONS_FILE REPEATS\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[1]); return 1; }
    int repeats = atoi(argv[2]), n = 0, cap = 1024;
    char **lines = malloc(sizeof(char *) * (size_t)cap), *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n') line[len - 1] = '\0';
        if (n == cap) lines = realloc(lines, sizeof(char *) * (size_t)(cap *= 2));
        lines[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    vlt_tokenizer *tok;
    double t0 = now();
    if (vlt_tokenizer_load(NULL, &tok) != VLT_OK) { fprintf(stderr, "%s\n", vlt_error_message()); return 1; }
    double load = now() - t0;
    int32_t ids[VLT_TOKENIZER_CONTEXT];
    long long tokens = 0;
    unsigned long long sum = 0;
    t0 = now();
    for (int r = 0; r < repeats; r++)
        for (int i = 0; i < n; i++) {
            int k = vlt_tokenizer_encode(tok, lines[i], ids, VLT_TOKENIZER_CONTEXT);
            tokens += k - 2;
            if (r == 0)
                for (int j = 0; j < k; j++) sum = sum * 1000003ull + (unsigned long long)ids[j];
        }
    double secs = now() - t0;
    printf("{\"captions\": %lld, \"tokens\": %lld, \"seconds\": %.6f, \"load_seconds\": %.6f, \"checksum\": \"%llu\"}\n",
           (long long)n * repeats, tokens, secs, load, sum);
    vlt_tokenizer_free(tok);
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
    return 0;
}
