/* tokenizer: word split (a small rule-based stand-in for spaCy's tokenizer) and the full
 * fastai pipeline. Works on code points; see tokenizer.h and docs/data.md for the choices. */
#include "tokenizer.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "err.h"
#include "rules.h"
#include "unicode.h"

int tok_lang_parse(tok_lang *out, const char *code)
{
    *out = TOK_LANG_GENERIC;
    if (contract_language_check(code) < 0)
        return err_wrap(KF_EINVAL, "text");
    if (!strncmp(code, "en", 2) && (!code[2] || code[2] == '-'))
        *out = TOK_LANG_EN;
    else if (!strncmp(code, "fr", 2) && (!code[2] || code[2] == '-'))
        *out = TOK_LANG_FR;
    return 0;
}

static bool is_line_break(uint32_t c)
{
    return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) ||
           c == 0x85 || c == 0x2028 || c == 0x2029;
}
static bool is_apos(uint32_t c) { return c == '\'' || c == 0x2019; }
static bool is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static bool is_ri(uint32_t c) { return c >= 0x1f1e6 && c <= 0x1f1ff; }
static uint32_t lc(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int emit(tok_list *out, const uint32_t *s, size_t n)
{
    char *t;
    int rc = uc_encode(&t, NULL, s, n);
    return rc ? rc : tok_list_push_owned(out, t);
}

/* s[0..n) equals the ASCII word w, ASCII case ignored, ’ read as '. */
static bool eq_ascii(const uint32_t *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    if (n != k)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = is_apos(s[i]) ? '\'' : lc(s[i]);
        if (c != (unsigned char)w[i])
            return false;
    }
    return true;
}

/* Emits one word, splitting off English contractions or French elisions. */
static int emit_word(tok_list *out, const uint32_t *s, size_t n, tok_lang lang)
{
    static const char *const en_suffixes[] = {"n't", "'s", "'re", "'ve", "'ll", "'d", "'m"};
    static const char *const fr_elisions[] = {"l'", "d'", "j'", "m'", "n'", "s'", "t'", "c'",
                                              "qu'", "jusqu'", "lorsqu'", "puisqu'", "quoiqu'",
                                              "presqu'"};
    if (lang == TOK_LANG_EN) {
        for (size_t i = 0; i < sizeof en_suffixes / sizeof *en_suffixes; i++) {
            size_t k = strlen(en_suffixes[i]);
            if (n > k && eq_ascii(s + n - k, k, en_suffixes[i])) {
                int rc = emit(out, s, n - k);
                return rc ? rc : emit(out, s + n - k, k);
            }
        }
    } else if (lang == TOK_LANG_FR) {
        for (size_t i = 0; i < sizeof fr_elisions / sizeof *fr_elisions; i++) {
            size_t k = strlen(fr_elisions[i]);
            if (n > k && eq_ascii(s, k, fr_elisions[i])) {
                int rc = emit(out, s, k);
                return rc ? rc : emit(out, s + k, n - k);
            }
        }
    }
    return emit(out, s, n);
}

/* End of the grapheme-like cluster starting at i: the code point, its combining marks, ZWJ
 * joined code points, a regional-indicator pair. */
static size_t cluster_end(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i + 1;
    if (is_ri(s[i]) && j < n && is_ri(s[j]))
        j++;
    while (j < n && uc_is_extend(s[j])) {
        if (s[j] == 0x200d && j + 1 < n && !uc_is_space(s[j + 1]))
            j += 2;
        else
            j++;
    }
    return j;
}

/* A URL chunk: starts with scheme "://" or "www." followed by a word character. */
static bool is_url(const uint32_t *s, size_t n)
{
    if (n > 4 && eq_ascii(s, 4, "www.") && uc_is_word(s[4]))
        return true;
    size_t i = 0;
    while (i < n && i < 32 && ((lc(s[i]) >= 'a' && lc(s[i]) <= 'z') || (i && (is_digit(s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-'))))
        i++;
    return i >= 2 && i + 3 < n && s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/';
}

static bool is_url_trail(uint32_t c)
{
    return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == ')' ||
           c == ']' || c == '}' || c == '\'' || c == '"' || c == '>' || c == 0xbb || c == 0x2019 ||
           c == 0x201d;
}

/* Can the word continue through connector s[k] (s[k+1] exists)? */
static bool joins(const uint32_t *s, size_t a, size_t k, size_t b)
{
    if (k + 1 >= b || k == a)
        return false;
    uint32_t c = s[k], prev = s[k - 1], next = s[k + 1];
    if (c == ',' || c == ':')
        return is_digit(prev) && is_digit(next);
    if (c == '.' || c == '-' || c == '@' || is_apos(c) || c == '+')
        return uc_is_word(next) && (uc_is_word(prev) || uc_is_extend(prev));
    return false;
}

static int split_chunk(tok_list *out, const uint32_t *s, size_t a, size_t b, tok_lang lang)
{
    int rc = 0;
    if (is_url(s + a, b - a)) {
        size_t e = b;
        while (e > a + 1 && is_url_trail(s[e - 1]))
            e--;
        rc = emit(out, s + a, e - a);
        for (size_t k = e; rc == 0 && k < b; k++)
            rc = emit(out, s + k, 1);
        return rc;
    }
    for (size_t i = a; rc == 0 && i < b;) {
        bool sign = (s[i] == '-' || s[i] == '+') && i == a && i + 1 < b && is_digit(s[i + 1]);
        if (!uc_is_word(s[i]) && !sign) {
            size_t e = cluster_end(s, b, i);
            rc = emit(out, s + i, e - i);
            i = e;
            continue;
        }
        size_t e = i + 1;
        for (;;) {
            if (e < b && (uc_is_word(s[e]) || uc_is_extend(s[e])))
                e++;
            else if (e < b && joins(s, i, e, b))
                e += 2;
            else
                break;
        }
        rc = emit_word(out, s + i, e - i, lang);
        i = e;
    }
    return rc;
}

static int words(tok_list *out, const uint32_t *s, size_t n, tok_lang lang)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n;) {
        if (uc_is_space(s[i])) {
            bool brk = false;
            for (; i < n && uc_is_space(s[i]); i++)
                brk |= is_line_break(s[i]);
            if (brk)
                rc = tok_list_push(out, "\n", 1);
            continue;
        }
        size_t e = i;
        while (e < n && !uc_is_space(s[e]))
            e++;
        rc = split_chunk(out, s, i, e, lang);
        i = e;
    }
    return rc;
}

int tok_words(tok_list *out, const char *text, size_t len, tok_lang lang)
{
    uc_str s = {0};
    int rc = uc_decode(&s, text, len);
    /* NUL (tokens are C strings) and the other control characters that are not whitespace (C0,
     * DEL, C1: a vocabulary file cannot hold them) become U+FFFD, like invalid bytes */
    for (size_t i = 0; rc == 0 && i < s.n; i++)
        if ((s.v[i] < 0x20 || (s.v[i] >= 0x7f && s.v[i] < 0xa0)) && !uc_is_space(s.v[i]))
            s.v[i] = 0xfffd;
    if (rc == 0)
        rc = words(out, s.v, s.n, lang);
    uc_str_dispose(&s);
    return rc;
}

int tok_text(tok_list *out, const char *text, size_t len, tok_lang lang)
{
    char *pre = NULL;
    size_t pre_len = 0;
    size_t first = out->n;
    int rc = tok_rules_apply(&pre, &pre_len, text, len);
    if (rc == 0)
        rc = tok_words(out, pre, pre_len, lang);
    if (rc == 0) {
        tok_list tail = {out->v + first, out->n - first, out->n - first};
        rc = tok_replace_space(&tail);
    }
    free(pre);
    return rc;
}
