/* Unit tests of the fastai rules on hand-checked cases (the full comparison with fastai itself
 * is the reference test text_fastai_rules). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rules.h"
#include "test.h"

static void check_rule(int line, tok_rule r, const char *in, const char *want)
{
    char *got = NULL;
    int rc = tok_rule_apply(&got, NULL, r, in, strlen(in));
    test_checks++;
    if (rc != 0 || strcmp(got, want) != 0) {
        test_failures++;
        fprintf(stderr, "test_rules.c:%d: %s(\"%s\"): expected \"%s\", actual \"%s\" (%s)\n", line,
                tok_rule_name(r), in, want, got ? got : "(null)", err_msg());
    }
    free(got);
}
#define RULE(r, in, want) check_rule(__LINE__, r, in, want)

static void check_all(int line, const char *in, const char *want)
{
    char *got = NULL;
    size_t len = 0;
    int rc = tok_rules_apply(&got, &len, in, strlen(in));
    test_checks++;
    if (rc != 0 || strcmp(got, want) != 0 || len != strlen(want)) {
        test_failures++;
        fprintf(stderr, "test_rules.c:%d: rules(\"%s\"): expected \"%s\", actual \"%s\"\n", line, in,
                want, got ? got : "(null)");
    }
    free(got);
}
#define ALL(in, want) check_all(__LINE__, in, want)

int main(void)
{
    CHECK_EQ_STR("xxunk", tok_specials[TOK_ID_UNK]);
    CHECK_EQ_STR("xxmaj", tok_specials[TOK_ID_MAJ]);
    CHECK_EQ_INT(9, TOK_N_SPECIALS);
    CHECK_EQ_STR("replace_wrep", tok_rule_name(TOK_RULE_REPLACE_WREP));
    CHECK(tok_rule_name(TOK_N_RULES) == NULL);

    RULE(TOK_RULE_FIX_HTML, "Tom &amp; Jerry", "Tom && Jerry");   /* 'amp;' -> '&' first */
    RULE(TOK_RULE_FIX_HTML, "it&#39;s &lt;b&gt;", "it&'s <b>");   /* '#39;' -> "'" first */
    RULE(TOK_RULE_FIX_HTML, "a<br />b\\nc", "a\nb\nc");
    RULE(TOK_RULE_FIX_HTML, "an <unk> 3 @.@ 5 well @-@ known...", "an xxunk 3.5 well-known \xe2\x80\xa6");
    RULE(TOK_RULE_FIX_HTML, "&#x41;&#66&#128;&#0;&#xD800;", "AB\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbd");
    RULE(TOK_RULE_FIX_HTML, "&notit; &copy2024 &unknown; &#x;", "\xc2\xacit; \xc2\xa9" "2024 &unknown; &#x;");
    RULE(TOK_RULE_REPLACE_REP, "sooooo !!!", "s xxrep 5 o   xxrep 3 ! ");
    RULE(TOK_RULE_REPLACE_REP, "aa   bb", "aa   bb");   /* spaces never repeat-count */
    RULE(TOK_RULE_REPLACE_REP, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", " xxrep 3 \xf0\x9f\x98\x80 ");
    RULE(TOK_RULE_REPLACE_WREP, "very very very good", " xxwrep 3 very  good");
    RULE(TOK_RULE_REPLACE_WREP, "go go go!", " xxwrep 3 go !");
    RULE(TOK_RULE_REPLACE_WREP, "a a a b b b", " xxwrep 3 a  b b b");   /* \s consumed: no 2nd match */
    RULE(TOK_RULE_REPLACE_WREP, "the the", "the the");
    RULE(TOK_RULE_SPEC_ADD_SPACES, "a/b#c\\d", "a / b # c \\ d");
    RULE(TOK_RULE_RM_USELESS_SPACES, "a   b \t  c", "a b \t c");
    RULE(TOK_RULE_REPLACE_ALL_CAPS, "I am FINE U.S.A. CAFÉ HeLLO", "i am xxup fine xxup u.s.a. xxup café HeLLO");
    RULE(TOK_RULE_REPLACE_MAJ, "Hello World I Éric McDonald", "xxmaj hello xxmaj world i Éric McDonald");
    RULE(TOK_RULE_LOWERCASE, "  ÉCOLE ΟΔΟΣ  ", "xxbos école οδος");
    RULE(TOK_RULE_LOWERCASE, "", "xxbos ");

    ALL("THIS is GREAT!!! really really really good. L'été",
        "xxbos xxup this is xxup great xxrep 3 ! xxwrep 3 really good. xxmaj l'été");
    ALL("Really really really", "xxbos xxmaj really really really");   /* case matters */
    ALL("see path/to/file", "xxbos see path / to / file");
    ALL("bad \xff byte", "xxbos bad \xef\xbf\xbd byte");   /* invalid UTF-8 -> U+FFFD */
    /* one U+FFFD per maximal invalid subpart, as Python's decode(errors="replace") */
#define FFFD "\xef\xbf\xbd"
    RULE(TOK_RULE_SPEC_ADD_SPACES, "\xe0\x80|\xe1\x80|\xed\xa0\x80|\xf4\x90|\xc0\xaf",
         FFFD FFFD "|" FFFD "|" FFFD FFFD FFFD "|" FFFD FFFD "|" FFFD FFFD);

    /* replace_space post rule */
    tok_list l = {0};
    tok_list_push(&l, "a b", 3);
    tok_list_push(&l, "ab", 2);
    CHECK_EQ_INT(0, tok_replace_space(&l));
    CHECK_EQ_STR("a\xe2\x96\x81" "b", l.v[0]);
    CHECK_EQ_STR("ab", l.v[1]);
    char *j = tok_list_join(&l);
    CHECK_EQ_STR("a\xe2\x96\x81" "b ab", j);
    free(j);
    tok_list_dispose(&l);
    CHECK_EQ_INT(0, (long long)l.n);

    char *out = NULL;
    CHECK_EQ_INT(KF_EINVAL, tok_rule_apply(&out, NULL, TOK_N_RULES, "x", 1));
    CHECK(out == NULL);
    return test_done();
}
