/* test_utf8: UTF-8 validation (what JSON accepts) and the \xNN escaping of invalid bytes. */
#include "utf8.h"
#include "test.h"

#include <jansson.h>
#include <stdlib.h>

static void check_escape(int line, const char *in, size_t len, const char *want)
{
    char *got = utf8_escape(in, len);
    test_checks++;
    if (!got || strcmp(got, want) != 0) {
        test_failures++;
        fprintf(stderr, "%s:%d: FAIL: utf8_escape: expected \"%s\", actual \"%s\"\n", __FILE__, line, want,
                got ? got : "(null)");
    }
    /* the result is always valid UTF-8: jansson takes it */
    json_t *j = got ? json_string(got) : NULL;
    CHECK(j != NULL);
    json_decref(j);
    free(got);
}

int main(void)
{
    size_t bad = 99;
    CHECK_EQ_INT(1, utf8_valid("", 0, NULL));
    CHECK_EQ_INT(1, utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x8d", 14, NULL));
    CHECK_EQ_INT(0, utf8_valid("ab\xff", 3, &bad));
    CHECK_EQ_INT(2, bad);
    CHECK_EQ_INT(0, utf8_valid("\xc0\xaf", 2, &bad));            /* overlong '/' */
    CHECK_EQ_INT(0, bad);
    CHECK_EQ_INT(0, utf8_valid("x\xed\xa0\x80", 4, &bad));       /* surrogate U+D800 */
    CHECK_EQ_INT(1, bad);
    CHECK_EQ_INT(0, utf8_valid("\xf4\x90\x80\x80", 4, NULL));     /* above U+10FFFF */
    CHECK_EQ_INT(0, utf8_valid("\xe2\x82", 2, NULL));             /* truncated */
    CHECK_EQ_INT(1, utf8_valid("\xf4\x8f\xbf\xbf", 4, NULL));     /* U+10FFFF */
    CHECK_EQ_INT(2, utf8_seq_len("\xc3\xa9", 2));
    CHECK_EQ_INT(0, utf8_seq_len("\xc3\xa9", 1));

    check_escape(__LINE__, "plain", 5, "plain");
    check_escape(__LINE__, "caf\xc3\xa9", 5, "caf\xc3\xa9");
    check_escape(__LINE__, "a\xff" "b", 3, "a\\xffb");
    check_escape(__LINE__, "\xe2\x82", 2, "\\xe2\\x82");
    check_escape(__LINE__, "x\0y", 3, "x\\x00y");
    check_escape(__LINE__, "\xed\xa0\x80!", 4, "\\xed\\xa0\\x80!");
    /* utf8_quote: control characters too */
    char *q = utf8_quote("a\x01\n\x7f\xc2\x85\xc2\xa0\xff" "b", 10);
    CHECK_EQ_STR("a\\x01\\x0a\\x7f\\u0085\xc2\xa0\\xffb", q);
    free(q);
    return test_done();
}
