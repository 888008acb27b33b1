/* vocab: token counter, fastai's make_vocab, token <-> id, vocab files (see vocab.h). */
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fileio.h"
#include "rules.h"
#include "unicode.h"

/* Open-addressing index from token string to a slot number (shared by counter and vocab). */
typedef struct str_index {
    size_t *slots;   /* slot + 1, 0 = empty */
    size_t cap;      /* power of two */
} str_index;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* Finds tok; returns its slot or SIZE_MAX, and in *where the table position to insert at. */
static size_t index_find(const str_index *ix, char *const *keys, const char *tok, size_t *where)
{
    size_t mask = ix->cap - 1, i = (size_t)hash_str(tok) & mask;
    while (ix->slots[i]) {
        if (strcmp(keys[ix->slots[i] - 1], tok) == 0)
            return ix->slots[i] - 1;
        i = (i + 1) & mask;
    }
    *where = i;
    return SIZE_MAX;
}

/* Makes room for `need` keys (load <= 1/2), re-indexing keys[0..have). */
static int index_grow(str_index *ix, char *const *keys, size_t have, size_t need)
{
    if (ix->cap && need * 2 <= ix->cap)
        return 0;
    size_t cap = ix->cap ? ix->cap : 64;
    while (cap < need * 2) {
        if (cap > SIZE_MAX / 4 / sizeof(size_t))
            return err_set(KF_ENOMEM, "vocab: too many tokens");
        cap *= 2;
    }
    size_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return err_set(KF_ENOMEM, "vocab: out of memory");
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    for (size_t k = 0; k < have; k++) {
        size_t where;
        if (index_find(ix, keys, keys[k], &where) == SIZE_MAX)
            ix->slots[where] = k + 1;
    }
    return 0;
}

struct vocab_counter {
    char **toks;       /* in first-seen order */
    uint64_t *counts;
    size_t n, cap;
    str_index ix;
};

vocab_counter *vocab_counter_new(void)
{
    vocab_counter *c = calloc(1, sizeof *c);
    if (!c)
        err_set(KF_ENOMEM, "vocab: out of memory");
    return c;
}

void vocab_counter_free(vocab_counter *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->toks[i]);
    free(c->toks);
    free(c->counts);
    free(c->ix.slots);
    free(c);
}

static int counter_add1(vocab_counter *c, const char *tok)
{
    size_t where = 0, slot = c->ix.cap ? index_find(&c->ix, c->toks, tok, &where) : SIZE_MAX;
    if (slot != SIZE_MAX) {
        c->counts[slot]++;
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        char **t = realloc(c->toks, cap * sizeof *t);
        if (!t)
            return err_set(KF_ENOMEM, "vocab: out of memory");
        c->toks = t;
        uint64_t *n = realloc(c->counts, cap * sizeof *n);
        if (!n)
            return err_set(KF_ENOMEM, "vocab: out of memory");
        c->counts = n;
        c->cap = cap;
    }
    char *copy = strdup(tok);
    if (!copy)
        return err_set(KF_ENOMEM, "vocab: out of memory");
    c->toks[c->n] = copy;
    c->counts[c->n] = 1;
    int rc = index_grow(&c->ix, c->toks, c->n, c->n + 1);
    if (rc) {
        free(copy);
        return rc;
    }
    index_find(&c->ix, c->toks, tok, &where);
    c->ix.slots[where] = ++c->n;
    return 0;
}

int vocab_counter_add(vocab_counter *c, const tok_list *toks)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < toks->n; i++)
        rc = counter_add1(c, toks->v[i]);
    return rc;
}

uint64_t vocab_counter_get(const vocab_counter *c, const char *tok)
{
    size_t where;
    size_t slot = c->ix.cap ? index_find(&c->ix, c->toks, tok, &where) : SIZE_MAX;
    return slot == SIZE_MAX ? 0 : c->counts[slot];
}

size_t vocab_counter_size(const vocab_counter *c) { return c->n; }

struct vocab {
    char **toks;
    size_t n;
    str_index ix;
};

void vocab_free(vocab *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        free(v->toks[i]);
    free(v->toks);
    free(v->ix.slots);
    free(v);
}

const char *vocab_token_problem(const char *t)
{
    const unsigned char *s = (const unsigned char *)t;
    size_t len = strlen(t);
    if (len == 0)
        return "empty token";
    if (strcmp(t, "\n") == 0)
        return NULL;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = uc_utf8_next(s + i, len - i, &cp);
        if (!k)
            return "invalid UTF-8";
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
            return "control character in token";
        if (uc_is_space(cp))
            return "whitespace in token";
        i += k;
    }
    return NULL;
}

/* Takes ownership of toks[0..n) (freed on error). Validates and indexes. */
static int vocab_adopt(vocab **out, char **toks, size_t n, const char *name, const long *lines)
{
    int rc = 0;
    vocab *v = calloc(1, sizeof *v);
    *out = NULL;
    if (!v) {
        for (size_t i = 0; i < n; i++)
            free(toks[i]);
        free(toks);
        return err_set(KF_ENOMEM, "vocab: out of memory");
    }
    v->toks = toks;
    v->n = n;
    if (n < TOK_N_SPECIALS) {
        rc = err_set(KF_EINVAL, "%s: vocab has %zu tokens, fewer than the %d special tokens", name, n,
                     TOK_N_SPECIALS);
        goto done;
    }
#define LINE(i) (lines ? lines[i] : (long)(i) + 1)
    for (size_t i = 0; i < TOK_N_SPECIALS; i++)
        if (strcmp(toks[i], tok_specials[i]) != 0) {
            rc = err_set(KF_EINVAL, "%s:%ld: expected special token \"%s\" at id %zu, found \"%s\"",
                         name, LINE(i), tok_specials[i], i, toks[i]);
            goto done;
        }
    rc = index_grow(&v->ix, toks, 0, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *why = vocab_token_problem(toks[i]);
        if (why) {
            rc = err_set(KF_EINVAL, "%s:%ld: %s", name, LINE(i), why);
            break;
        }
        size_t where, prev = index_find(&v->ix, toks, toks[i], &where);
        if (prev == SIZE_MAX)
            v->ix.slots[where] = i + 1;
        else if (strcmp(toks[i], TOK_FAKE) != 0)
            rc = err_set(KF_EINVAL, "%s:%ld: duplicate token \"%s\" (first at line %ld)", name,
                         LINE(i), toks[i], LINE(prev));
    }
#undef LINE
done:
    if (rc)
        vocab_free(v);
    else
        *out = v;
    return rc;
}

int vocab_from_tokens(vocab **out, const char *const *toks, size_t n, const char *name)
{
    char **copy = calloc(n ? n : 1, sizeof *copy);
    *out = NULL;
    if (!copy)
        return err_set(KF_ENOMEM, "vocab: out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(copy[i] = strdup(toks[i]))) {
            for (size_t k = 0; k < i; k++)
                free(copy[k]);
            free(copy);
            return err_set(KF_ENOMEM, "vocab: out of memory");
        }
    return vocab_adopt(out, copy, n, name ? name : "<vocab>", NULL);
}

typedef struct { uint64_t count; size_t first; } rank;

static int by_count(const void *a, const void *b)
{
    const rank *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;   /* ties: first seen first */
}

int vocab_build(vocab **out, const vocab_counter *c, const vocab_opts *opts)
{
    size_t max_vocab = opts && opts->max_vocab ? opts->max_vocab : VOCAB_DEFAULT_MAX;
    uint64_t min_freq = opts && opts->min_freq ? opts->min_freq : VOCAB_DEFAULT_MIN_FREQ;
    int rc = 0;
    rank *order = NULL;
    size_t n = 0;
    char **toks = NULL;
    *out = NULL;
    if (max_vocab < TOK_N_SPECIALS)
        return err_set(KF_EINVAL, "vocab: max_vocab %zu is below the %d special tokens", max_vocab,
                       TOK_N_SPECIALS);
    order = malloc((c->n ? c->n : 1) * sizeof *order);
    toks = calloc(max_vocab + 8, sizeof *toks);
    if (!order || !toks) {
        rc = err_set(KF_ENOMEM, "vocab: out of memory");
        goto done;
    }
    for (size_t i = 0; i < c->n; i++)
        order[i] = (rank){c->counts[i], i};
    qsort(order, c->n, sizeof *order, by_count);
    /* specials first, then most_common(max_vocab) with count >= min_freq, minus specials */
    for (size_t i = 0; i < TOK_N_SPECIALS; i++)
        toks[n++] = (char *)tok_specials[i];
    for (size_t i = 0; i < c->n && i < max_vocab && n < max_vocab; i++) {
        const char *t = c->toks[order[i].first];
        bool special = false;
        for (size_t k = 0; k < TOK_N_SPECIALS; k++)
            special |= strcmp(t, tok_specials[k]) == 0;
        uint64_t need = opts && opts->known && vocab_id(opts->known, t) != TOK_ID_UNK ? 1 : min_freq;
        if (order[i].count >= need && !special)
            toks[n++] = c->toks[order[i].first];
    }
    for (size_t pad = 8 - n % 8; pad > 0; pad--)
        toks[n++] = TOK_FAKE;
    rc = vocab_from_tokens(out, (const char *const *)toks, n, "<built vocab>");
done:
    free(order);
    free(toks);
    return rc;
}

size_t vocab_size(const vocab *v) { return v->n; }

const char *vocab_token(const vocab *v, int32_t id)
{
    return id >= 0 && (size_t)id < v->n ? v->toks[id] : NULL;
}

int32_t vocab_id(const vocab *v, const char *tok)
{
    size_t where, slot = index_find(&v->ix, v->toks, tok, &where);
    if (slot == SIZE_MAX || strcmp(tok, TOK_FAKE) == 0)
        return TOK_ID_UNK;
    return (int32_t)slot;
}

void vocab_encode(int32_t *ids, const vocab *v, const tok_list *toks)
{
    for (size_t i = 0; i < toks->n; i++)
        ids[i] = vocab_id(v, toks->v[i]);
}

int vocab_numericalize(int32_t **ids, size_t *n, const vocab *v, const tok_list *toks)
{
    *ids = malloc((toks->n ? toks->n : 1) * sizeof **ids);
    *n = 0;
    if (!*ids)
        return err_set(KF_ENOMEM, "vocab: out of memory (%zu ids)", toks->n);
    vocab_encode(*ids, v, toks);
    *n = toks->n;
    return 0;
}

int vocab_parse(vocab **out, const char *buf, size_t len, const char *name)
{
    size_t n = 0, cap = 0, pos = 0;
    char **toks = NULL;
    long *lines = NULL, line = 1;
    int rc = 0;
    *out = NULL;
    name = name ? name : "<vocab>";
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    if (pos == len) {
        rc = err_set(KF_EINVAL, "%s: empty vocab file", name);
        goto done;
    }
    for (; rc == 0 && pos < len; line++) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, k = end - pos;
        if (k && buf[pos + k - 1] == '\r')
            k--;
        if (k == 0) {
            rc = err_set(KF_EINVAL, "%s:%ld: empty line (one token per line expected)", name, line);
            break;
        }
        if (memchr(buf + pos, 0, k)) {
            rc = err_set(KF_EINVAL, "%s:%ld: NUL byte in token", name, line);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **t = realloc(toks, cap * sizeof *t);
            long *l = t ? realloc(lines, cap * sizeof *l) : NULL;
            if (t)
                toks = t;
            if (!t || !l) {
                rc = err_set(KF_ENOMEM, "vocab: out of memory");
                break;
            }
            lines = l;
        }
        bool nl_tok = k == 2 && buf[pos] == '\\' && buf[pos + 1] == 'n';
        toks[n] = nl_tok ? strdup("\n") : strndup(buf + pos, k);
        if (!toks[n]) {
            rc = err_set(KF_ENOMEM, "vocab: out of memory");
            break;
        }
        lines[n++] = line;
        pos = nl ? end + 1 : len;
    }
    if (rc == 0) {
        rc = vocab_adopt(out, toks, n, name, lines);
        toks = NULL;
    }
done:
    if (toks) {
        for (size_t i = 0; i < n; i++)
            free(toks[i]);
        free(toks);
    }
    free(lines);
    return rc;
}

int vocab_read(vocab **out, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = file_read_all(&buf, &len, path);
    if (rc < 0)
        err_wrap(rc, "vocab file");
    else
        rc = vocab_parse(out, buf, len, path);
    free(buf);
    return rc;
}

int vocab_write(const vocab *v, const char *path)
{
    int rc = 0;
    FILE *f = fopen(path, "wb");
    if (!f)
        return err_set(KF_EIO, "%s: cannot create vocab file: %m", path);
    for (size_t i = 0; i < v->n; i++)
        if (fputs(strcmp(v->toks[i], "\n") == 0 ? "\\n" : v->toks[i], f) < 0 || fputc('\n', f) < 0) {
            rc = err_set(KF_EIO, "%s: write error: %m", path);
            break;
        }
    if (fclose(f) != 0 && rc == 0)
        rc = err_set(KF_EIO, "%s: write error: %m", path);
    return rc;
}
