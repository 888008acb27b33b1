/* fuzz_tokenizer: every fastai rule, the whole rule chain, the word tokenizer and the full
 * pipeline on arbitrary bytes. Byte 0 picks the language. Invariants: outputs are valid UTF-8,
 * tokens are non-empty and hold no whitespace except the "\n" token, every token is one a
 * vocabulary file can hold (no control characters), the pipeline starts with xxbos. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "tokenizer.h"
#include "unicode.h"
#include "vocab.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

static void require_utf8(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = uc_utf8_next((const unsigned char *)s + i, len - i, &cp);
        REQUIRE(k > 0);
        i += k;
    }
}

static void require_tokens(const tok_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *t = l->v[i];
        size_t len = strlen(t);
        REQUIRE(len > 0);
        require_utf8(t, len);
        REQUIRE(vocab_token_problem(t) == NULL);
        if (strcmp(t, "\n") == 0)
            continue;
        uc_str s = {0};
        REQUIRE(uc_decode(&s, t, len) == 0);
        for (size_t k = 0; k < s.n; k++)
            REQUIRE(!uc_is_space(s.v[k]));
        uc_str_dispose(&s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    tok_lang lang = (tok_lang)(data[0] % 3);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    for (int r = 0; r < TOK_N_RULES; r++) {
        char *out = NULL;
        size_t out_len = 0;
        REQUIRE(tok_rule_apply(&out, &out_len, (tok_rule)r, text, len) == 0);
        REQUIRE(strlen(out) <= out_len);
        require_utf8(out, out_len);
        free(out);
    }
    tok_list l = {0};
    REQUIRE(tok_words(&l, text, len, lang) == 0);
    require_tokens(&l);
    tok_list_clear(&l);
    REQUIRE(tok_text(&l, text, len, lang) == 0);
    REQUIRE(l.n >= 1 && strcmp(l.v[0], "xxbos") == 0);
    require_tokens(&l);
    tok_list_dispose(&l);
    return 0;
}
