/* rules: fastai v2's pre-tokenization rules on code point strings. Each rule reproduces what
 * Python's `re` does with fastai's pattern (scan left to right, non-overlapping matches, the
 * same greediness), with the character classes of Python's `re` (unicode_tables.c). */
#include "rules.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "unicode.h"

const char *const tok_specials[TOK_N_SPECIALS] = {TOK_UNK, TOK_PAD, TOK_BOS, TOK_EOS, TOK_FLD,
                                                  TOK_REP, TOK_WREP, TOK_UP, TOK_MAJ};

static const char *const rule_names[TOK_N_RULES] = {
    "fix_html", "replace_rep", "replace_wrep", "spec_add_spaces", "rm_useless_spaces",
    "replace_all_caps", "replace_maj", "lowercase"};

const char *tok_rule_name(tok_rule rule)
{
    return (unsigned)rule < TOK_N_RULES ? rule_names[rule] : NULL;
}

static bool is_upper_ascii(uint32_t c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower_ascii(uint32_t c) { return c >= 'a' && c <= 'z'; }

/* str.lower() of s[0..n) (Final_Sigma judged within s[0..n) only, as Python does). */
static int lower_into(uc_str *out, const uint32_t *s, size_t n)
{
    int rc = uc_str_reserve(out, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint32_t l[3];
        size_t k;
        if (s[i] == 0x3a3) {
            size_t j = i;
            while (j > 0 && uc_is_case_ignorable(s[j - 1]))
                j--;
            bool final = j > 0 && uc_is_cased(s[j - 1]);
            if (final) {
                j = i + 1;
                while (j < n && uc_is_case_ignorable(s[j]))
                    j++;
                final = j == n || !uc_is_cased(s[j]);
            }
            l[0] = final ? 0x3c2 : 0x3c3;
            k = 1;
        } else {
            k = uc_lower_cp(s[i], l);
        }
        rc = uc_str_append(out, l, k);
    }
    return rc;
}

/* Python's str.replace(pat, rep): non-overlapping, left to right. */
static int replace_all(uc_str *out, const uint32_t *s, size_t n, const char *pat, const char *rep)
{
    uint32_t p[16];
    size_t pn = 0;
    for (const unsigned char *c = (const unsigned char *)pat; *c; c++)
        p[pn++] = *c;   /* patterns are ASCII */
    int rc = 0;
    size_t done = 0;   /* s[0..done) has been copied or replaced */
    for (size_t i = 0; rc == 0 && i + pn <= n;) {
        if (s[i] != p[0] || memcmp(s + i, p, pn * sizeof *p) != 0) {
            i++;
            continue;
        }
        rc = uc_str_append(out, s + done, i - done);
        if (rc == 0)
            rc = uc_str_append_utf8(out, rep, strlen(rep));
        i += pn;
        done = i;
    }
    if (rc == 0)
        rc = uc_str_append(out, s + done, n - done);
    return rc;
}

static bool is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static bool is_hex(uint32_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One numeric reference's replacement (html._replace_charref). num > 0x10FFFF means "too big". */
static int numeric_ref(uc_str *out, uint32_t num)
{
    for (size_t i = 0; i < uc_invalid_charrefs_len; i++)
        if (uc_invalid_charrefs[i].num == num)
            return uc_str_push(out, uc_invalid_charrefs[i].cp);
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff)
        return uc_str_push(out, 0xfffd);
    if (uc_in(uc_invalid_codepoints, uc_invalid_codepoints_len, num))
        return 0;
    return uc_str_push(out, num);
}

/* html.unescape. */
static int html_unescape(uc_str *out, const uint32_t *s, size_t n)
{
    int rc = 0;
    char name[64];
    for (size_t i = 0; rc == 0 && i < n;) {
        if (s[i] != '&' || i + 1 >= n) {
            rc = uc_str_push(out, s[i++]);
            continue;
        }
        size_t j = i + 1;
        if (s[j] == '#') {
            bool hex = j + 2 < n && (s[j + 1] == 'x' || s[j + 1] == 'X') && is_hex(s[j + 2]);
            size_t k = hex ? j + 2 : j + 1;
            if (!hex && !(k < n && is_digit(s[k]))) {
                rc = uc_str_push(out, s[i++]);   /* "&#" not followed by a number: no match */
                continue;
            }
            uint32_t num = 0;
            for (; k < n && (hex ? is_hex(s[k]) : is_digit(s[k])); k++) {
                uint32_t d = is_digit(s[k]) ? s[k] - '0' : (s[k] | 0x20) - 'a' + 10;
                if (num <= 0x10ffff)
                    num = num * (hex ? 16 : 10) + d;   /* stays > 0x10FFFF once there */
            }
            if (k < n && s[k] == ';')
                k++;
            rc = numeric_ref(out, num);
            i = k;
            continue;
        }
        /* [^\t\n\f <&#;]{1,32};? */
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' &&
               s[k] != '<' && s[k] != '&' && s[k] != '#' && s[k] != ';')
            k++;
        if (k == j) {
            rc = uc_str_push(out, s[i++]);
            continue;
        }
        if (k < n && s[k] == ';')
            k++;
        /* Entity names are ASCII: only an ASCII prefix can match. */
        size_t len = k - j, ascii = 0;
        while (ascii < len && s[j + ascii] < 0x80) {
            name[ascii] = (char)s[j + ascii];
            ascii++;
        }
        const char *val = NULL;
        size_t used = 0;
        if (ascii == len)
            val = uc_entity_lookup(name, len), used = len;
        for (size_t x = len - 1; !val && x >= 2; x--)   /* longest known prefix */
            if (x <= ascii && (val = uc_entity_lookup(name, x)))
                used = x;
        if (val) {
            rc = uc_str_append_utf8(out, val, strlen(val));
            if (rc == 0)
                rc = uc_str_append(out, s + j + used, len - used);
        } else {
            rc = uc_str_append(out, s + i, k - i);
        }
        i = k;
    }
    return rc;
}

static int fix_html(uc_str *out, const uint32_t *s, size_t n)
{
    static const char *const pairs[][2] = {
        {"#39;", "'"}, {"amp;", "&"}, {"#146;", "'"}, {"nbsp;", " "}, {"#36;", "$"},
        {"\\n", "\n"}, {"quot;", "'"}, {"<br />", "\n"}, {"\\\"", "\""}, {"<unk>", TOK_UNK},
        {" @.@ ", "."}, {" @-@ ", "-"}, {"...", " \xe2\x80\xa6"}};
    uc_str a = {0}, b = {0};
    int rc = uc_str_append(&a, s, n);
    for (size_t i = 0; rc == 0 && i < sizeof pairs / sizeof pairs[0]; i++) {
        b.n = 0;
        rc = replace_all(&b, a.v, a.n, pairs[i][0], pairs[i][1]);
        uc_str t = a;
        a = b;
        b = t;
    }
    if (rc == 0)
        rc = html_unescape(out, a.v, a.n);
    uc_str_dispose(&a);
    uc_str_dispose(&b);
    return rc;
}

/* (\S)(\1{2,}) -> " xxrep N c " */
static int replace_rep(uc_str *out, const uint32_t *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t run = 1;
        while (i + run < n && s[i + run] == s[i])
            run++;
        if (run >= 3 && !uc_is_space(s[i])) {
            rc = uc_str_append_ascii(out, " " TOK_REP " ");
            if (rc == 0) rc = uc_str_append_uint(out, run);
            if (rc == 0) rc = uc_str_push(out, ' ');
            if (rc == 0) rc = uc_str_push(out, s[i]);
            if (rc == 0) rc = uc_str_push(out, ' ');
        } else {
            rc = uc_str_append(out, s + i, run);
        }
        i += run;
    }
    return rc;
}

static bool same(const uint32_t *s, size_t n, size_t at, const uint32_t *w, size_t wl)
{
    return at + wl <= n && memcmp(s + at, w, wl * sizeof *w) == 0;
}

static size_t skip_space(const uint32_t *s, size_t n, size_t i)
{
    while (i < n && uc_is_space(s[i]))
        i++;
    return i;
}

/* (?:\s|^)(\w+)\s+((?:\1\s+)+)\1(\s|\W|$) -> " xxwrep N w e". Tries a match at p; on success
 * writes the replacement and returns the end of the match, else returns 0. */
static size_t wrep_at(uc_str *out, const uint32_t *s, size_t n, size_t p, int *rc)
{
    size_t ws = p < n && uc_is_space(s[p]) ? p + 1 : p == 0 ? 0 : SIZE_MAX;
    if (ws == SIZE_MAX)
        return 0;
    size_t we = ws;
    while (we < n && uc_is_word(s[we]))
        we++;
    size_t wl = we - ws;
    if (wl == 0 || we >= n || !uc_is_space(s[we]))
        return 0;
    const uint32_t *w = s + ws;
    size_t q = skip_space(s, n, we), reps = 0, last_rep = 0;
    while (same(s, n, q, w, wl) && q + wl < n && uc_is_space(s[q + wl])) {
        last_rep = q;
        reps++;
        q = skip_space(s, n, q + wl);
    }
    size_t end;
    uint32_t e = 0;
    bool has_e;
    if (reps >= 1 && same(s, n, q, w, wl) && (q + wl == n || !uc_is_word(s[q + wl]))) {
        has_e = q + wl < n;
        if (has_e)
            e = s[q + wl];
        end = q + wl + has_e;
    } else if (reps >= 2) {
        reps--;                       /* the last repetition becomes the final \1 */
        has_e = true;
        e = s[last_rep + wl];
        end = last_rep + wl + 1;
    } else {
        return 0;
    }
    *rc = uc_str_append_ascii(out, " " TOK_WREP " ");
    if (*rc == 0) *rc = uc_str_append_uint(out, reps + 2);
    if (*rc == 0) *rc = uc_str_push(out, ' ');
    if (*rc == 0) *rc = uc_str_append(out, w, wl);
    if (*rc == 0) *rc = uc_str_push(out, ' ');
    if (*rc == 0 && has_e) *rc = uc_str_push(out, e);
    return end;
}

static int replace_wrep(uc_str *out, const uint32_t *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t end = wrep_at(out, s, n, i, &rc);
        if (end > i)
            i = end;
        else if (rc == 0)
            rc = uc_str_push(out, s[i++]);
    }
    return rc;
}

/* ([/#\\]) -> " \1 " */
static int spec_add_spaces(uc_str *out, const uint32_t *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (s[i] == '/' || s[i] == '#' || s[i] == '\\') {
            uint32_t t[3] = {' ', s[i], ' '};
            rc = uc_str_append(out, t, 3);
        } else {
            rc = uc_str_push(out, s[i]);
        }
    }
    return rc;
}

/* ' {2,}' -> ' ' */
static int rm_useless_spaces(uc_str *out, const uint32_t *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!(s[i] == ' ' && i > 0 && s[i - 1] == ' '))
            rc = uc_str_push(out, s[i]);
    return rc;
}

/* (\s|^)(TOKEN)(?=(\s|$)) with TOKEN = [A-Z]+[^a-z\s]* (all caps) or [A-Z][^A-Z\s]* (maj):
 * TOKEN -> "xxup "/"xxmaj " (when longer than one character) + TOKEN.lower(). */
static int replace_case(uc_str *out, const uint32_t *s, size_t n, bool all_caps)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t t = i < n && uc_is_space(s[i]) ? i + 1 : i == 0 ? 0 : SIZE_MAX;
        size_t e = t;
        if (t < n && is_upper_ascii(s[t])) {
            e = t + 1;
            while (e < n && !uc_is_space(s[e]) && !(all_caps ? is_lower_ascii(s[e]) : is_upper_ascii(s[e])))
                e++;
        }
        if (t == SIZE_MAX || e == t || !(e == n || uc_is_space(s[e]))) {
            rc = uc_str_push(out, s[i++]);
            continue;
        }
        if (t > i)
            rc = uc_str_push(out, s[i]);
        if (rc == 0 && e - t > 1)
            rc = uc_str_append_ascii(out, all_caps ? TOK_UP " " : TOK_MAJ " ");
        if (rc == 0)
            rc = lower_into(out, s + t, e - t);
        i = e;
    }
    return rc;
}

/* "xxbos " + t.lower().strip() */
static int lowercase(uc_str *out, const uint32_t *s, size_t n)
{
    uc_str l = {0};
    int rc = lower_into(&l, s, n);
    size_t a = 0, b = l.n;
    while (a < b && uc_is_space(l.v[a]))
        a++;
    while (b > a && uc_is_space(l.v[b - 1]))
        b--;
    if (rc == 0)
        rc = uc_str_append_ascii(out, TOK_BOS " ");
    if (rc == 0)
        rc = uc_str_append(out, l.v + a, b - a);
    uc_str_dispose(&l);
    return rc;
}

static int apply(uc_str *out, tok_rule rule, const uint32_t *s, size_t n)
{
    switch (rule) {
    case TOK_RULE_FIX_HTML: return fix_html(out, s, n);
    case TOK_RULE_REPLACE_REP: return replace_rep(out, s, n);
    case TOK_RULE_REPLACE_WREP: return replace_wrep(out, s, n);
    case TOK_RULE_SPEC_ADD_SPACES: return spec_add_spaces(out, s, n);
    case TOK_RULE_RM_USELESS_SPACES: return rm_useless_spaces(out, s, n);
    case TOK_RULE_REPLACE_ALL_CAPS: return replace_case(out, s, n, true);
    case TOK_RULE_REPLACE_MAJ: return replace_case(out, s, n, false);
    case TOK_RULE_LOWERCASE: return lowercase(out, s, n);
    default: return err_set(KF_EINVAL, "text: unknown rule %d", (int)rule);
    }
}

/* Runs rules[first..last] over text. */
static int run_rules(char **out, size_t *out_len, int first, int last, const char *text, size_t len)
{
    uc_str a = {0}, b = {0};
    *out = NULL;
    int rc = uc_decode(&a, text, len);
    for (int r = first; rc == 0 && r <= last; r++) {
        b.n = 0;
        rc = apply(&b, (tok_rule)r, a.v, a.n);
        uc_str t = a;
        a = b;
        b = t;
    }
    if (rc == 0)
        rc = uc_encode(out, out_len, a.v, a.n);
    uc_str_dispose(&a);
    uc_str_dispose(&b);
    return rc;
}

int tok_rule_apply(char **out, size_t *out_len, tok_rule rule, const char *text, size_t len)
{
    if ((unsigned)rule >= TOK_N_RULES) {
        *out = NULL;
        return err_set(KF_EINVAL, "text: unknown rule %d", (int)rule);
    }
    return run_rules(out, out_len, (int)rule, (int)rule, text, len);
}

int tok_rules_apply(char **out, size_t *out_len, const char *text, size_t len)
{
    return run_rules(out, out_len, 0, TOK_N_RULES - 1, text, len);
}

int tok_replace_space(tok_list *toks)
{
    for (size_t i = 0; i < toks->n; i++) {
        const char *t = toks->v[i];
        size_t spaces = 0, len = strlen(t);
        for (size_t k = 0; k < len; k++)
            spaces += t[k] == ' ';
        if (!spaces)
            continue;
        char *r = malloc(len + 2 * spaces + 1), *p = r;
        if (!r)
            return err_set(KF_ENOMEM, "text: out of memory");
        for (size_t k = 0; k < len; k++) {
            if (t[k] == ' ') {
                memcpy(p, "\xe2\x96\x81", 3);   /* U+2581 */
                p += 3;
            } else {
                *p++ = t[k];
            }
        }
        *p = 0;
        free(toks->v[i]);
        toks->v[i] = r;
    }
    return 0;
}
