/* Unit tests of the word tokenizer and the whole text -> tokens pipeline. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "test.h"
#include "tokenizer.h"
#include "vocab.h"

/* want: tokens joined by '|' ("\n" for the line-break token). */
static void check_tok(int line, bool rules, tok_lang lang, const char *in, const char *want)
{
    tok_list l = {0};
    int rc = rules ? tok_text(&l, in, strlen(in), lang) : tok_words(&l, in, strlen(in), lang);
    size_t n = 1;
    for (size_t i = 0; i < l.n; i++)
        n += strlen(l.v[i]) + 1;
    char *got = calloc(1, n);
    for (size_t i = 0; i < l.n; i++) {
        if (i)
            strcat(got, "|");
        strcat(got, l.v[i]);
    }
    test_checks++;
    if (rc != 0 || strcmp(got, want) != 0) {
        test_failures++;
        fprintf(stderr, "test_tokenizer.c:%d: \"%s\": expected \"%s\", actual \"%s\"\n", line, in, want, got);
    }
    free(got);
    tok_list_dispose(&l);
}
#define WORDS(lang, in, want) check_tok(__LINE__, false, lang, in, want)
#define TEXT(lang, in, want) check_tok(__LINE__, true, lang, in, want)

int main(void)
{
    tok_lang lang;
    CHECK_EQ_INT(0, tok_lang_parse(&lang, "en"));
    CHECK_EQ_INT(TOK_LANG_EN, lang);
    CHECK_EQ_INT(0, tok_lang_parse(&lang, "fr-FR"));
    CHECK_EQ_INT(TOK_LANG_FR, lang);
    CHECK_EQ_INT(0, tok_lang_parse(&lang, "de"));
    CHECK_EQ_INT(TOK_LANG_GENERIC, lang);
    CHECK_EQ_INT(KF_EINVAL, tok_lang_parse(&lang, ""));
    CHECK_EQ_INT(KF_EINVAL, tok_lang_parse(&lang, "e n"));
    CHECK(strstr(err_msg(), "e n") != NULL);
    CHECK_EQ_INT(KF_EINVAL, tok_lang_parse(&lang, NULL));
    /* The contract's rule (the CRD's): lowercase language, uppercase region. */
    CHECK_EQ_INT(0, tok_lang_parse(&lang, "pt-BR"));
    CHECK_EQ_INT(TOK_LANG_GENERIC, lang);
    CHECK_EQ_INT(KF_EINVAL, tok_lang_parse(&lang, "en_US"));
    CHECK_EQ_INT(KF_EINVAL, tok_lang_parse(&lang, "fr-fr"));

    WORDS(TOK_LANG_EN, "Don't stop, it's John's car.", "Do|n't|stop|,|it|'s|John|'s|car|.");
    WORDS(TOK_LANG_EN, "can't won't I'm we've rock'n'roll o'clock", "ca|n't|wo|n't|I|'m|we|'ve|rock'n'roll|o'clock");
    WORDS(TOK_LANG_EN, "'quoted' dogs'", "'|quoted|'|dogs|'");
    WORDS(TOK_LANG_FR, "l'homme « L'été » jusqu'à qu'il aujourd'hui", "l'|homme|«|L'|été|»|jusqu'|à|qu'|il|aujourd'hui");
    WORDS(TOK_LANG_FR, "l\xe2\x80\x99homme", "l\xe2\x80\x99|homme");
    WORDS(TOK_LANG_EN, "l'homme", "l'homme");   /* elision is French only */
    WORDS(TOK_LANG_FR, "don't", "don't");       /* contractions are English only */
    WORDS(TOK_LANG_EN, "3.14 1,000 -5 +33 10:30 v2.0.1 x86-64 5% $5", "3.14|1,000|-5|+33|10:30|v2.0.1|x86-64|5|%|$|5");
    WORDS(TOK_LANG_EN, "see https://www.debian.org/doc/, or www.gnu.org.", "see|https://www.debian.org/doc/|,|or|www.gnu.org|.");
    WORDS(TOK_LANG_EN, "mail me@example.com; e.g. end.", "mail|me@example.com|;|e.g|.|end|.");
    WORDS(TOK_LANG_EN, "(a) [b] {c} \"d\" a,b", "(|a|)|[|b|]|{|c|}|\"|d|\"|a|,|b");
    WORDS(TOK_LANG_EN, "I \xe2\x9d\xa4\xef\xb8\x8f NY \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd!",
          "I|\xe2\x9d\xa4\xef\xb8\x8f|NY|\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd|!");
    WORDS(TOK_LANG_EN, "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9 \xf0\x9f\x87\xab\xf0\x9f\x87\xb7\xf0\x9f\x87\xab",
          "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9|\xf0\x9f\x87\xab\xf0\x9f\x87\xb7|\xf0\x9f\x87\xab");
    WORDS(TOK_LANG_EN, "e\xcc\x81" "cole caf\xc3\xa9", "e\xcc\x81" "cole|caf\xc3\xa9");   /* combining accent stays */
    WORDS(TOK_LANG_EN, "a\n\n b\t c \r\n", "a|\n|b|c|\n");
    WORDS(TOK_LANG_EN, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xe6\x97\xa5\xe6\x9c\xac",
          "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82|,|\xe6\x97\xa5\xe6\x9c\xac");
    WORDS(TOK_LANG_EN, "", "");
    WORDS(TOK_LANG_EN, "   ", "");
    WORDS(TOK_LANG_EN, "bad\xff\xfe" "byte", "bad|\xef\xbf\xbd|\xef\xbf\xbd|byte");

    TEXT(TOK_LANG_EN, "", "xxbos");
    TEXT(TOK_LANG_EN, "THIS is GREAT!!! Don't", "xxbos|xxup|this|is|xxup|great|xxrep|3|!|xxmaj|do|n't");
    TEXT(TOK_LANG_FR, "L'HOMME dit « non non non » à Paris", "xxbos|xxup|l'|homme|dit|«|xxwrep|3|non|»|à|xxmaj|paris");
    TEXT(TOK_LANG_EN, "GNU Emacs\n .\n An editor", "xxbos|xxup|gnu|xxmaj|emacs|\n|.|\n|xxmaj|an|editor");
    TEXT(TOK_LANG_EN, "Tom &amp; Jerry <br />path/to", "xxbos|xxmaj|tom|&|&|xxmaj|jerry|\n|path|/|to");

    /* control characters that are not whitespace become U+FFFD (a vocabulary file cannot hold
     * them), like NUL and invalid bytes; the whitespace ones (\x1c-\x1f, \x85) still separate */
    WORDS(TOK_LANG_EN, "a\x01" "b \x7f x\xc2\x80y\x1f" "z", "a|\xef\xbf\xbd|b|\xef\xbf\xbd|x|\xef\xbf\xbd|y|z");
    TEXT(TOK_LANG_EN, "Hi\x02there\x1b[0m", "xxbos|xxmaj|hi|\xef\xbf\xbd|there|\xef\xbf\xbd|[|0m");
    /* whatever the bytes, every token is one a vocabulary can hold (seeded random byte strings) */
    uint64_t st = 0x9e3779b97f4a7c15u;
    size_t bad = 0;
    for (int it = 0; it < 3000; it++) {
        char buf[64];
        size_t n = 1 + it % 63;
        for (size_t i = 0; i < n; i++) {
            st = st * 6364136223846793005u + 1442695040888963407u;
            buf[i] = (char)(st >> 56);
            if (it % 3 == 0 && (st >> 40) % 4 == 0)
                buf[i] = (char)((st >> 33) % 0x21); /* plenty of control bytes */
        }
        tok_list tl = {0};
        CHECK_EQ_INT(0, tok_text(&tl, buf, n, TOK_LANG_EN));
        for (size_t k = 0; k < tl.n; k++)
            if (vocab_token_problem(tl.v[k]) && bad++ < 3)
                fprintf(stderr, "test_tokenizer.c:%d: token %zu of random text %d: %s\n", __LINE__, k, it,
                        vocab_token_problem(tl.v[k]));
        tok_list_dispose(&tl);
    }
    CHECK_EQ_INT(0, (long long)bad);

    /* appends after existing tokens */
    tok_list l = {0};
    tok_list_push(&l, "x", 1);
    CHECK_EQ_INT(0, tok_text(&l, "A b", 3, TOK_LANG_EN));
    CHECK_EQ_INT(4, (long long)l.n);
    CHECK_EQ_STR("x", l.v[0]);
    CHECK_EQ_STR("xxbos", l.v[1]);
    tok_list_dispose(&l);
    return test_done();
}
