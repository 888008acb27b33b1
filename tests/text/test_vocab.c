/* Unit tests of vocab: make_vocab semantics, numericalisation, vocab files and their errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "rules.h"
#include "test.h"
#include "vocab.h"

/* Adds tok n times. */
static void add(vocab_counter *c, const char *tok, int n)
{
    tok_list l = {0};
    for (int i = 0; i < n; i++)
        tok_list_push(&l, tok, strlen(tok));
    CHECK_EQ_INT(0, vocab_counter_add(c, &l));
    tok_list_dispose(&l);
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

int main(void)
{
    vocab_counter *c = vocab_counter_new();
    add(c, "b", 5);
    add(c, "a", 5);   /* tie with b: b was seen first, so b comes first */
    add(c, "xxmaj", 7);
    add(c, "c", 9);
    add(c, "rare", 2);
    add(c, "d", 3);
    CHECK_EQ_INT(6, (long long)vocab_counter_size(c));
    CHECK_EQ_INT(5, (long long)vocab_counter_get(c, "a"));
    CHECK_EQ_INT(0, (long long)vocab_counter_get(c, "zzz"));

    vocab *v = NULL;
    CHECK_EQ_INT(0, vocab_build(&v, c, NULL));
    /* specials, then c(9) b(5) a(5) d(3); "rare" (2) is below min_freq 3: 13 -> padded to 16 */
    const char *want[] = {"xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup",
                          "xxmaj", "c", "b", "a", "d", "xxfake", "xxfake", "xxfake"};
    CHECK_EQ_INT(16, (long long)vocab_size(v));
    for (int i = 0; i < 16; i++)
        CHECK_EQ_STR(want[i], vocab_token(v, i));
    CHECK(vocab_token(v, 16) == NULL);
    CHECK(vocab_token(v, -1) == NULL);
    CHECK_EQ_INT(9, vocab_id(v, "c"));
    CHECK_EQ_INT(0, vocab_id(v, "rare"));
    CHECK_EQ_INT(0, vocab_id(v, "xxfake"));
    CHECK_EQ_INT(8, vocab_id(v, "xxmaj"));

    tok_list t = {0};
    const char *sent[] = {"xxbos", "a", "unknown", "d", "c"};
    for (int i = 0; i < 5; i++)
        tok_list_push(&t, sent[i], strlen(sent[i]));
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_EQ_INT(0, vocab_numericalize(&ids, &n, v, &t));
    CHECK_EQ_INT(5, (long long)n);
    int32_t want_ids[] = {2, 11, 0, 12, 9};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(want_ids[i], ids[i]);
    free(ids);
    tok_list_dispose(&t);
    vocab_free(v);

    /* a pretrained vocabulary's tokens need one use: "rare" (2 uses) is kept when the known
     * vocabulary holds it, in count order; "zzz" (known, never used) is not added */
    const char *known_toks[] = {"xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup",
                                "xxmaj", "rare", "zzz", "xxfake"};
    vocab *known = NULL;
    CHECK_EQ_INT(0, vocab_from_tokens(&known, known_toks, 12, "known"));
    CHECK_EQ_INT(0, vocab_build(&v, c, &(vocab_opts){.known = known}));
    CHECK_EQ_INT(16, (long long)vocab_size(v));
    CHECK_EQ_STR("d", vocab_token(v, 12));
    CHECK_EQ_STR("rare", vocab_token(v, 13));
    CHECK_EQ_INT(0, vocab_id(v, "zzz"));
    vocab_free(v);
    /* max_vocab still caps: 13 entries leave no room for "rare" */
    CHECK_EQ_INT(0, vocab_build(&v, c, &(vocab_opts){.max_vocab = 13, .known = known}));
    CHECK_EQ_INT(0, vocab_id(v, "rare"));
    vocab_free(v);
    vocab_free(known);

    /* min_freq 1, max_vocab 12: most_common(12) then cut to 12, then 8 - 12 % 8 = 4 fakes */
    CHECK_EQ_INT(0, vocab_build(&v, c, &(vocab_opts){.max_vocab = 12, .min_freq = 1}));
    CHECK_EQ_INT(16, (long long)vocab_size(v));
    CHECK_EQ_STR("a", vocab_token(v, 11));
    CHECK_EQ_STR("xxfake", vocab_token(v, 12));
    vocab_free(v);
    /* exactly 16 real tokens -> fastai still appends 8 xxfake */
    for (int i = 0; i < 10; i++) {
        char w[8];
        snprintf(w, sizeof w, "w%d", i);
        add(c, w, 4);
    }
    CHECK_EQ_INT(0, vocab_build(&v, c, &(vocab_opts){.max_vocab = 16, .min_freq = 3}));
    CHECK_EQ_INT(24, (long long)vocab_size(v));
    CHECK_EQ_STR("w3", vocab_token(v, 15));   /* specials + c b a w0..w3 */
    CHECK_EQ_STR("xxfake", vocab_token(v, 16));
    vocab_free(v);
    CHECK_EQ_INT(KF_EINVAL, vocab_build(&v, c, &(vocab_opts){.max_vocab = 5}));
    vocab_counter_free(c);

    /* files: round trip, including the newline token */
    const char *toks[] = {"xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup",
                          "xxmaj", "\n", "caf\xc3\xa9", "\\", "xxfake"};
    CHECK_EQ_INT(0, vocab_from_tokens(&v, toks, 13, "test"));
    char path[] = "/tmp/kubefit-vocab-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK_EQ_INT(0, vocab_write(v, path));
    vocab *r = NULL;
    CHECK_EQ_INT(0, vocab_read(&r, path));
    CHECK_EQ_INT(13, (long long)vocab_size(r));
    CHECK_EQ_STR("\n", vocab_token(r, 9));
    CHECK_EQ_STR("\\", vocab_token(r, 11));
    CHECK_EQ_INT(9, vocab_id(r, "\n"));
    vocab_free(r);
    vocab_free(v);

    /* errors name file:line */
    const char *specials = "xxunk\nxxpad\nxxbos\nxxeos\nxxfld\nxxrep\nxxwrep\nxxup\nxxmaj\n";
    struct { const char *tail, *msg; } bad[] = {
        {"a\n\nb\n", ":11: empty line"},
        {"a\nb c\n", ":11: whitespace in token"},
        {"a\nb\na\n", ":12: duplicate token \"a\" (first at line 10)"},
        {"a\n\xff\n", ":11: invalid UTF-8"},
        {"a\nb\tc\n", ":11: control character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *s = malloc(strlen(specials) + strlen(bad[i].tail) + 1);
        strcpy(s, specials);
        strcat(s, bad[i].tail);
        write_file(path, s);
        free(s);
        r = NULL;
        CHECK_EQ_INT(KF_EINVAL, vocab_read(&r, path));
        CHECK(r == NULL);
        CHECK(strstr(err_msg(), path) != NULL);
        if (!strstr(err_msg(), bad[i].msg))
            TEST_FAIL_("vocab error: expected \"%s\" in \"%s\"", bad[i].msg, err_msg());
    }
    write_file(path, "xxpad\nxxunk\n");
    CHECK_EQ_INT(KF_EINVAL, vocab_read(&r, path));
    CHECK(strstr(err_msg(), "fewer than the 9 special tokens") != NULL);
    write_file(path, "xxunk\nxxbos\nxxpad\nxxeos\nxxfld\nxxrep\nxxwrep\nxxup\nxxmaj\n");
    CHECK_EQ_INT(KF_EINVAL, vocab_read(&r, path));
    CHECK(strstr(err_msg(), ":2: expected special token \"xxpad\"") != NULL);
    write_file(path, "");
    CHECK_EQ_INT(KF_EINVAL, vocab_read(&r, path));
    CHECK(strstr(err_msg(), "empty vocab file") != NULL);
    /* CRLF and a missing final newline are accepted */
    write_file(path, "xxunk\r\nxxpad\r\nxxbos\r\nxxeos\r\nxxfld\r\nxxrep\r\nxxwrep\r\nxxup\r\nxxmaj\r\nfin");
    CHECK_EQ_INT(0, vocab_read(&r, path));
    CHECK_EQ_INT(9, vocab_id(r, "fin"));
    vocab_free(r);
    unlink(path);
    CHECK_EQ_INT(KF_ENOTFOUND, vocab_read(&r, path));
    CHECK(strstr(err_msg(), path) != NULL);
    CHECK_EQ_INT(KF_EINVAL, vocab_read(&r, "/tmp")); /* a folder */
    CHECK(strstr(err_msg(), "/tmp: not a regular file") != NULL);
    return test_done();
}
