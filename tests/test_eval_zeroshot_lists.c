// test_eval_zeroshot_lists.c — the class names and prompt templates vlt ships (assets/zeroshot/,
// written by scripts/reference/make_zeroshot_assets.py from open_clip's zero_shot_metadata.py and
// OpenAI CLIP's data/prompts.md): the counts open_clip and CLIP have (ImageNet-1k 1,000 names, 80
// OpenAI templates and 7 simple ones; CIFAR-10 10 names, CIFAR-100 100, 18 templates each), entries
// at known places, one {} per template; and how --classes / --templates arguments resolve: a
// shipped name to its file, a path as given, anything else refused naming it and the shipped names.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "eval/zeroshot.h"

// The lines of a shipped list (at most 1,100), each NUL-terminated in lines[i].
static int read_list(const char *name, const char *kind, char lines[][128]) {
    char path[4096];
    int shipped = 0;
    if (vlt_eval_zeroshot_list_path(name, kind, path, sizeof path, &shipped) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(shipped, 1);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    char buf[512];
    while (fgets(buf, sizeof buf, f)) {
        assert_true(n < 1100);
        size_t l = strlen(buf);
        assert_true(l > 1 && buf[l - 1] == '\n');  // every line ends in \n, none is empty
        buf[l - 1] = '\0';
        assert_true(l - 1 < 128);
        assert_true(buf[0] != ' ' && buf[l - 2] != ' ' && !strchr(buf, '\r') && !strchr(buf, '\t'));
        snprintf(lines[n++], 128, "%s", buf);
    }
    fclose(f);
    return n;
}

static char g_lines[1100][128];

static void test_imagenet1k(void **state) {
    (void)state;
    assert_int_equal(read_list("imagenet1k", "classnames", g_lines), 1000);
    assert_string_equal(g_lines[0], "tench");
    assert_string_equal(g_lines[21], "kite (bird of prey)");
    assert_string_equal(g_lines[404], "airliner");
    assert_string_equal(g_lines[999], "toilet paper");
    assert_int_equal(read_list("imagenet1k", "templates", g_lines), 80);  // open_clip's OPENAI_IMAGENET_TEMPLATES
    assert_string_equal(g_lines[0], "a bad photo of a {}.");
    assert_string_equal(g_lines[79], "a tattoo of the {}.");
    for (int i = 0; i < 80; i++) {
        const char *h = strstr(g_lines[i], "{}");
        assert_non_null(h);
        assert_null(strstr(h + 2, "{}"));
    }
    assert_int_equal(read_list("imagenet1k_simple", "templates", g_lines), 7);  // SIMPLE_IMAGENET_TEMPLATES
    assert_string_equal(g_lines[0], "itap of a {}.");
    assert_string_equal(g_lines[6], "a photo of the small {}.");
}

static void test_cifar(void **state) {
    (void)state;
    static const char *const c10[] = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
    assert_int_equal(read_list("cifar10", "classnames", g_lines), 10);
    for (int i = 0; i < 10; i++) assert_string_equal(g_lines[i], c10[i]);
    assert_int_equal(read_list("cifar100", "classnames", g_lines), 100);
    assert_string_equal(g_lines[0], "apple");
    assert_string_equal(g_lines[1], "aquarium fish");
    assert_string_equal(g_lines[99], "worm");
    for (int k = 0; k < 2; k++) {
        assert_int_equal(read_list(k ? "cifar100" : "cifar10", "templates", g_lines), 18);
        assert_string_equal(g_lines[0], "a photo of a {}.");
        assert_string_equal(g_lines[17], "a photo of the big {}.");
    }
}

static void test_resolution(void **state) {
    (void)state;
    char path[4096];
    int shipped = 1;
    // a path is taken as given
    assert_int_equal(vlt_eval_zeroshot_list_path("assets/zeroshot/cifar10_classnames.txt", "classnames", path, sizeof path,
                                                 &shipped), VLT_OK);
    assert_int_equal(shipped, 0);
    assert_string_equal(path, "assets/zeroshot/cifar10_classnames.txt");
    // a shipped name, in VLT_ASSETS
    assert_int_equal(vlt_eval_zeroshot_list_path("cifar100", "templates", path, sizeof path, &shipped), VLT_OK);
    assert_int_equal(shipped, 1);
    assert_string_equal(path, "assets/zeroshot/cifar100_templates.txt");
    setenv("VLT_ASSETS", "/nonexistent-vlt-assets", 1);
    assert_int_not_equal(vlt_eval_zeroshot_list_path("cifar100", "templates", path, sizeof path, &shipped), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "none found in /nonexistent-vlt-assets/zeroshot"));
    unsetenv("VLT_ASSETS");
    // an unknown name: the shipped ones listed, sorted
    assert_int_not_equal(vlt_eval_zeroshot_list_path("imagenet", "classnames", path, sizeof path, &shipped), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "imagenet: neither a file nor a shipped list of classnames"));
    assert_non_null(strstr(vlt_error_message(), "(shipped: cifar10, cifar100, imagenet1k)"));
    assert_int_not_equal(vlt_eval_zeroshot_list_path("/nonexistent/classes.txt", "classnames", path, sizeof path, &shipped), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent/classes.txt"));
    char names[256];
    assert_string_equal(vlt_eval_zeroshot_shipped("templates", names, sizeof names), "cifar10, cifar100, imagenet1k, imagenet1k_simple");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_imagenet1k), cmocka_unit_test(test_cifar),
                                       cmocka_unit_test(test_resolution)};
    return cmocka_run_group_tests_name("eval_zeroshot_lists", tests, NULL, NULL);
}
