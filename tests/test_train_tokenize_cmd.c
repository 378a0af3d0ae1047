// test_train_tokenize_cmd.c — `vlt tokenize`: CLIP BPE ids as open_clip's tokenize() (padded and
// not), back to text with --decode, and --ptb as pycocoevalcap's tokenizer (lines read as one call).
#include <fcntl.h>
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

// Runs vlt tokenize with argv (NULL-terminated) and `input` on stdin; returns its stdout (malloc'd)
// and the exit status in *rc.
static char *run(char **argv, const char *input, int *rc) {
    char in_path[] = "/tmp/vlt_tok_in_XXXXXX", out_path[] = "/tmp/vlt_tok_out_XXXXXX";
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

static void test_clip_ids(void **state) {
    (void)state;
    int rc;
    char *a[] = {"tokenize", "--no-pad", "a photo of a cat.", NULL};
    char *out = run(a, "", &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "49406 320 1125 539 320 2368 269 49407\n");  // open_clip.tokenize
    free(out);
    char *b[] = {"tokenize", "--context", "6", NULL};
    out = run(b, "hello world\n", &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "49406 3306 1002 49407 0 0\n");
    free(out);
    char *c[] = {"tokenize", "--decode", NULL};
    out = run(c, "49406 320 1125 539 320 2368 269 49407\n", &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "a photo of a cat . \n");
    free(out);
    char *d[] = {"tokenize", "--decode", "12 x", NULL};
    out = run(d, "", &rc);
    assert_int_equal(rc, 1);
    free(out);
}

// The lines are one pycocoevalcap call: "I." before a capital is "i", before lower case "i.".
static void test_ptb(void **state) {
    (void)state;
    int rc;
    char *a[] = {"tokenize", "--ptb", NULL};
    char *out = run(a, "the letter I.\nThe end\nthe letter I.\nthe end\nA man's dog isn't running; they're happy.\n", &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "the letter i\nthe end\nthe letter i.\nthe end\na man 's dog is n't running they 're happy\n");
    free(out);
    char *b[] = {"tokenize", "--ptb", "--decode", NULL};
    out = run(b, "", &rc);
    assert_int_equal(rc, 2);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_ids),
        cmocka_unit_test(test_ptb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
