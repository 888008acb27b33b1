/* check_rules: compares our fastai rules with fastai's own output (tests/text/fastai_rules.py):
 * each rule alone on fastai's input for that step, the whole chain, and the post rule
 * replace_space on the same token list; then make_vocab (fastai.text.data) against vocab_build on
 * the same token lists (the chain's outputs split on whitespace) for several min_freq/max_vocab.
 * Any mismatch fails, with the string shown escaped.
 * usage: check_rules EXPECTED.jsonl */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rules.h"
#include "test.h"
#include "tokens.h"
#include "unicode.h"
#include "vocab.h"

/* Python's str.split(): tokens between runs of whitespace. */
static void split_ws(tok_list *out, const char *s, size_t len)
{
    uc_str u = {0};
    uc_decode(&u, s, len);
    for (size_t i = 0; i < u.n;) {
        while (i < u.n && uc_is_space(u.v[i]))
            i++;
        size_t e = i;
        while (e < u.n && !uc_is_space(u.v[e]))
            e++;
        if (e > i) {
            char *t;
            uc_encode(&t, NULL, u.v + i, e - i);
            tok_list_push_owned(out, t);
        }
        i = e;
    }
    uc_str_dispose(&u);
}

static int check_make_vocab(const vocab_counter *c, json_t *mv)
{
    vocab_opts o = {.min_freq = (uint64_t)json_integer_value(json_object_get(mv, "min_freq")),
                    .max_vocab = (size_t)json_integer_value(json_object_get(mv, "max_vocab"))};
    json_t *want = json_object_get(mv, "vocab");
    vocab *v = NULL;
    int bad = 0;
    test_checks++;
    if (vocab_build(&v, c, &o) != 0) {
        fprintf(stderr, "make_vocab(min_freq %llu, max_vocab %zu): error %s\n",
                (unsigned long long)o.min_freq, o.max_vocab, err_msg());
        test_failures++;
        return 1;
    }
    if (vocab_size(v) != json_array_size(want))
        bad = fprintf(stderr, "make_vocab(min_freq %llu, max_vocab %zu): %zu tokens, fastai %zu\n",
                      (unsigned long long)o.min_freq, o.max_vocab, vocab_size(v), json_array_size(want));
    for (size_t i = 0; !bad && i < vocab_size(v); i++)
        if (strcmp(vocab_token(v, (int32_t)i), json_string_value(json_array_get(want, i))) != 0)
            bad = fprintf(stderr, "make_vocab(min_freq %llu, max_vocab %zu): id %zu is \"%s\", fastai \"%s\"\n",
                          (unsigned long long)o.min_freq, o.max_vocab, i, vocab_token(v, (int32_t)i),
                          json_string_value(json_array_get(want, i)));
    if (bad)
        test_failures++;
    vocab_free(v);
    return bad != 0;
}

static void show(const char *label, const char *s)
{
    fprintf(stderr, "    %-9s \"", label);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        if (*p == '\n') fputs("\\n", stderr);
        else if (*p == '\t') fputs("\\t", stderr);
        else if (*p < 0x20) fprintf(stderr, "\\x%02x", *p);
        else fputc(*p, stderr);
    fputs("\"\n", stderr);
}

static int mismatches;

static void compare(size_t row, const char *what, const char *in, const char *want, const char *got)
{
    test_checks++;
    if (got && strcmp(want, got) == 0)
        return;
    test_failures++;
    if (mismatches++ < 40) {
        fprintf(stderr, "row %zu: %s differs from fastai\n", row + 1, what);
        show("input", in);
        show("fastai", want);
        show("ours", got ? got : "(error)");
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: check_rules EXPECTED.jsonl\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0, row = 0, vocabs = 0;
    ssize_t len;
    vocab_counter *counter = vocab_counter_new();
    while ((len = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        json_t *mv = json_object_get(o, "make_vocab");
        if (mv) {
            mismatches += check_make_vocab(counter, mv);
            vocabs++;
            json_decref(o);
            continue;
        }
        json_t *in = json_object_get(o, "in"), *steps = json_object_get(o, "steps");
        json_t *toks = json_object_get(o, "toks"), *post = json_object_get(o, "post");
        if (!json_is_string(in) || json_array_size(steps) != TOK_N_RULES || !json_is_array(toks)) {
            fprintf(stderr, "%s:%zu: malformed reference row\n", argv[1], row + 1);
            return 2;
        }
        const char *prev = json_string_value(in);
        size_t prev_len = json_string_length(in);
        for (int r = 0; r < TOK_N_RULES; r++) {
            json_t *want = json_array_get(steps, (size_t)r);
            char *got = NULL;
            tok_rule_apply(&got, NULL, (tok_rule)r, prev, prev_len);
            compare(row, tok_rule_name((tok_rule)r), prev, json_string_value(want), got);
            free(got);
            prev = json_string_value(want);
            prev_len = json_string_length(want);
        }
        char *all = NULL;
        tok_rules_apply(&all, NULL, json_string_value(in), json_string_length(in));
        compare(row, "the whole chain", json_string_value(in),
                json_string_value(json_array_get(steps, TOK_N_RULES - 1)), all);
        free(all);
        tok_list tl = {0};
        json_t *last = json_array_get(steps, TOK_N_RULES - 1);
        split_ws(&tl, json_string_value(last), json_string_length(last));
        vocab_counter_add(counter, &tl);
        tok_list_clear(&tl);
        size_t i;
        json_t *t;
        json_array_foreach(toks, i, t) tok_list_push(&tl, json_string_value(t), json_string_length(t));
        tok_replace_space(&tl);
        json_array_foreach(post, i, t) compare(row, "replace_space", json_string_value(json_array_get(toks, i)),
                                               json_string_value(t), i < tl.n ? tl.v[i] : NULL);
        tok_list_dispose(&tl);
        json_decref(o);
        row++;
    }
    free(line);
    fclose(f);
    vocab_counter_free(counter);
    fprintf(stderr, "check_rules: %zu strings, %zu vocabularies, %d mismatches\n", row, vocabs, mismatches);
    if (vocabs == 0) {
        fprintf(stderr, "check_rules: no make_vocab reference rows\n");
        return 1;
    }
    if (row < 200) {
        fprintf(stderr, "check_rules: expected at least 200 reference strings\n");
        return 1;
    }
    return test_done();
}
