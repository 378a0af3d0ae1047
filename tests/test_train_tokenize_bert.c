// test_train_tokenize_bert.c — `vlt tokenize --bert VOCAB`: BERT WordPiece ids of the committed
// test vocabularies (tests/data/bert/) equal transformers' BertTokenizer (the ids below were
// printed by BertTokenizer 4.57.6, see scripts/reference/make_bert_tokenizer_fixture.py), uncased
// and --cased, unpadded and --context N, --decode, and the refused option mixes.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "train/commands.h"

#define UNCASED "tests/data/bert/vocab_uncased.txt"
#define CASED "tests/data/bert/vocab_cased.txt"

// Runs vlt tokenize with argv (NULL-terminated) and `input` on stdin; returns its stdout (malloc'd)
// and the exit status in *rc.
static char *run(char **argv, const char *input, int *rc) {
    char in_path[] = "/tmp/vlt_btok_in_XXXXXX", out_path[] = "/tmp/vlt_btok_out_XXXXXX";
    int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path);
    assert_true(in_fd >= 0 && out_fd >= 0);
    assert_int_equal(write(in_fd, input, strlen(input)), (ssize_t)strlen(input));
    lseek(in_fd, 0, SEEK_SET);
    fflush(stdout);
    int saved_in = dup(0), saved_out = dup(1);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    clearerr(stdin);
    int argc = 0;
    while (argv[argc]) argc++;
    *rc = vlt_cmd_tokenize(argc, argv);
    fflush(stdout);
    dup2(saved_in, 0);
    dup2(saved_out, 1);
    close(saved_in);
    close(saved_out);
    clearerr(stdin);
    off_t n = lseek(out_fd, 0, SEEK_END);
    char *text = calloc((size_t)n + 1, 1);
    assert_int_equal(pread(out_fd, text, (size_t)n, 0), n);
    close(in_fd);
    close(out_fd);
    unlink(in_path);
    unlink(out_path);
    return text;
}

static void expect(char **argv, const char *input, const char *want) {
    int rc;
    char *out = run(argv, input, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
    free(out);
}

static void test_bert_ids(void **state) {
    (void)state;
    char *a[] = {"tokenize", "--bert", UNCASED, "Dogs, playing in the snow.", "Café crème, 北京!", NULL};
    expect(a, "", "5 2167 16 79 2184 2330 2156 2324 30 6\n5 2417 2442 79 244 124 52 6\n");
    char *b[] = {"tokenize", "--bert", CASED, "--cased", NULL};
    expect(b, "Dogs, playing in the snow.\nThe bus was driving near the airport!\n",
           "5 3327 16 121 2935 2923 2862 3022 26 6\n5 3176 2908 2966 2991 2837 2862 2869 61 6\n");
    // tokenizer(text, max_length=6, truncation=True, padding="max_length"), and a short one padded
    char *c[] = {"tokenize", "--bert", UNCASED, "--context", "6", "Dogs, playing in the snow.", "the", NULL};
    expect(c, "", "5 2167 16 79 2184 6\n5 2156 6 0 0 0\n");
    char *d[] = {"tokenize", "--bert", UNCASED, "--context", "6", "--no-pad", "the", NULL};
    expect(d, "", "5 2156 6\n");
}

static void test_bert_decode(void **state) {
    (void)state;
    char *a[] = {"tokenize", "--bert", UNCASED, "--decode", "5 2167 16 79 2184 2330 2156 2324 30 6 0 0", NULL};
    expect(a, "", "[CLS] dogs , playing in the snow . [SEP]\n");   // convert_tokens_to_string
}

static void test_bert_errors(void **state) {
    (void)state;
    int rc;
    char *a[] = {"tokenize", "--bert", "/nonexistent/vocab.txt", "x", NULL};
    free(run(a, "", &rc));
    assert_int_equal(rc, 1);
    char *b[] = {"tokenize", "--cased", "x", NULL};
    free(run(b, "", &rc));
    assert_int_not_equal(rc, 0);
    char *c[] = {"tokenize", "--bert", UNCASED, "--ptb", "x", NULL};
    free(run(c, "", &rc));
    assert_int_not_equal(rc, 0);
    char *d[] = {"tokenize", "--bert", UNCASED, "--decode", "5 99999", NULL};
    free(run(d, "", &rc));
    assert_int_equal(rc, 1);
    char *e[] = {"tokenize", "--bert", NULL};
    free(run(e, "", &rc));
    assert_int_not_equal(rc, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert_ids),
        cmocka_unit_test(test_bert_decode),
        cmocka_unit_test(test_bert_errors),
    };
    return cmocka_run_group_tests_name("train_tokenize_bert", tests, NULL, NULL);
}
