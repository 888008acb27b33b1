/* data: tokenised, numericalised training data and its batches. See data.h. */
#include "data.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "rules.h"
#include "tokens.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void shuffle(size_t *v, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix(&s) % i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static void docs_dispose(data_docs *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].ids);
    free(d->v);
    memset(d, 0, sizeof *d);
}

void data_dispose(data_set *d)
{
    if (!d)
        return;
    vocab_free(d->vocab);
    for (size_t i = 0; d->labels && i < d->n_labels; i++)
        free(d->labels[i]);
    free(d->labels);
    docs_dispose(&d->train);
    docs_dispose(&d->valid);
    docs_dispose(&d->lm_train);
    docs_dispose(&d->lm_valid);
    free(d->train_y);
    free(d->valid_y);
    ds_unseen_dispose(&d->valid_unseen);
    memset(d, 0, sizeof *d);
}

/* Tokenised texts, kept until the vocabulary exists. */
typedef struct {
    tok_list *v;
    size_t n;
} tok_docs;

static void tok_docs_dispose(tok_docs *t)
{
    for (size_t i = 0; i < t->n; i++)
        tok_list_dispose(&t->v[i]);
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* Tokenises texts[0..n) from path (lines[i]: where text i starts, for messages). Every token must
 * be one a vocabulary can hold (the tokenizer makes sure of it; a failure names the row). */
static int tokenize_all(tok_docs *out, char *const *texts, size_t n, tok_lang lang, const char *path,
                        const long *lines)
{
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->v)
        return err_set(KF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        tok_list_init(&out->v[i]);
        out->n = i + 1;
        long line = lines ? lines[i] : (long)i + 1;
        int rc = tok_text(&out->v[i], texts[i], strlen(texts[i]), lang);
        if (rc < 0)
            return err_wrap(rc, "%s:%ld: tokenising the text", path, line);
        for (size_t k = 0; k < out->v[i].n; k++) {
            const char *why = vocab_token_problem(out->v[i].v[k]);
            if (why)
                return err_set(KF_EINVAL, "%s:%ld: token %zu of the text cannot go into a vocabulary (%s)", path,
                               line, k, why);
        }
    }
    return 0;
}

static int numericalize_all(data_docs *out, const tok_docs *t, const vocab *v)
{
    out->v = calloc(t->n ? t->n : 1, sizeof *out->v);
    if (!out->v)
        return err_set(KF_ENOMEM, "out of memory");
    out->n = t->n;
    for (size_t i = 0; i < t->n; i++) {
        int rc = vocab_numericalize(&out->v[i].ids, &out->v[i].n, v, &t->v[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static char **texts_of(const ds_dataset *d)
{
    char **t = calloc(d->n ? d->n : 1, sizeof *t);
    for (size_t i = 0; t && i < d->n; i++)
        t[i] = d->ex[i].text;
    return t;
}

static long *lines_of(const ds_dataset *d)
{
    long *l = calloc(d->n ? d->n : 1, sizeof *l);
    for (size_t i = 0; l && i < d->n; i++)
        l[i] = d->ex[i].line;
    return l;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

bool data_is_table(const char *path)
{
    return ends_with(path, ".csv") || ends_with(path, ".jsonl") || ends_with(path, ".ndjson") ||
           ends_with(path, ".json");
}

static int targets_of(float **out, const ds_dataset *d, size_t L, int multi)
{
    *out = calloc(multi ? (d->n ? d->n : 1) * L : (d->n ? d->n : 1), sizeof **out);
    if (!*out)
        return err_set(KF_ENOMEM, "out of memory");
    for (size_t i = 0; i < d->n; i++) {
        const ds_example *e = &d->ex[i];
        if (multi)
            for (size_t k = 0; k < e->n_labels; k++)
                (*out)[i * L + e->labels[k]] = 1.0f;
        else
            (*out)[i] = e->n_labels ? (float)e->labels[0] : 0.0f;
    }
    return 0;
}

/* Label mode single: every row must carry exactly one label. */
static int check_single(const ds_dataset *d, const char *path)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->ex[i].n_labels != 1)
            return err_set(KF_EINVAL, "%s:%ld: %zu labels on one row, but the label mode is single (exactly one per "
                                      "row; use multi or auto)", path, d->ex[i].line, d->ex[i].n_labels);
    return 0;
}

/* Reads corpus.txt: one document per non-empty line (LF or CRLF; a UTF-8 byte-order mark is
 * skipped; NUL bytes become U+FFFD as in the labelled files). */
static int read_lines(char ***out, long **lines, size_t *n, const char *path)
{
    char *buf = NULL, **v = NULL;
    long *ln = NULL, line = 0;
    size_t len = 0, cap = 0, k = 0;
    int rc = file_read_all(&buf, &len, path);
    *out = NULL;
    *lines = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    size_t pos = len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, e = end;
        line++;
        while (e > pos && buf[e - 1] == '\r')
            e--;
        if (e > pos) {
            if (k == cap) {
                size_t nc = cap ? 2 * cap : 256;
                char **nv = nc <= SIZE_MAX / sizeof *nv ? realloc(v, nc * sizeof *nv) : NULL;
                long *nl2 = nv && nc <= SIZE_MAX / sizeof *nl2 ? realloc(ln, nc * sizeof *nl2) : NULL;
                if (nv)
                    v = nv;
                if (!nv || !nl2) {
                    rc = err_set(KF_ENOMEM, "out of memory");
                    goto done;
                }
                ln = nl2;
                cap = nc;
            }
            ln[k] = line;
            if (!(v[k] = ds_text_copy(buf + pos, e - pos))) {
                rc = err_set(KF_ENOMEM, "out of memory");
                goto done;
            }
            k++;
        }
        pos = nl ? end + 1 : len;
    }
done:
    free(buf);
    *out = v;
    *lines = ln;
    *n = k;
    return rc;
}

/* Unlabelled texts: a CSV / JSON-lines file (by its name; the text column or key, labels not
 * needed and ignored) or plain text, one document per line. */
static int read_corpus(char ***out, long **lines, size_t *n, const char *path, const data_options *o)
{
    if (!data_is_table(path))
        return read_lines(out, lines, n, path);
    ds_dataset d = {0};
    ds_opts dso = {.skip_bad_rows = o->skip_bad_rows, .allow_unlabelled = true, .text_col = o->text_col,
                   .label_col = o->label_col, .label_sep = o->label_sep};
    *out = NULL;
    *lines = NULL;
    *n = 0;
    int rc = ds_load(&d, path, &dso);
    if (rc < 0)
        return rc;
    if (!(*out = texts_of(&d)) || !(*lines = lines_of(&d))) {
        free(*out);
        *out = NULL;
        ds_dispose(&d);
        return err_set(KF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < d.n; i++)
        d.ex[i].text = NULL; /* the texts move to *out */
    *n = d.n;
    ds_dispose(&d);
    return 0;
}

/* Labels of the labelled file a validation set was mapped from that the label space lacks:
 * single-label rows left without a label are dropped (they cannot be scored); multi-label rows
 * keep their other labels (an unseen label is ignored). Counted in d, logged once. */
static void note_unseen(data_set *d, ds_dataset *valid, const char *path)
{
    if (!d->multi_label)
        d->valid_dropped_rows = ds_drop_unlabelled(valid);
    if (!d->valid_unseen.rows)
        return;
    json_t *names = json_array();
    for (size_t i = 0; names && i < d->valid_unseen.n_names && i < DATA_UNSEEN_SHOWN; i++)
        json_array_append_new(names, json_string(d->valid_unseen.names[i]));
    log_warn("data", "validation labels unseen in training", "{s:s,s:I,s:I,s:I,s:o}", "file", path, "rows",
             (json_int_t)d->valid_unseen.rows, "droppedRows", (json_int_t)d->valid_dropped_rows, "distinctLabels",
             (json_int_t)d->valid_unseen.n_names, "labels", names);
}

static int copy_labels(data_set *out, const ds_dataset *src)
{
    out->n_labels = src->n_label_names;
    if (!out->n_labels)
        return 0;
    if (!(out->labels = calloc(out->n_labels, sizeof *out->labels)))
        return err_set(KF_ENOMEM, "out of memory");
    for (size_t i = 0; i < out->n_labels; i++)
        if (!(out->labels[i] = strdup(src->label_names[i])))
            return err_set(KF_ENOMEM, "out of memory");
    return 0;
}

static int copy_vocab(vocab **out, const vocab *v)
{
    const char **toks = malloc(vocab_size(v) * sizeof *toks);
    if (!toks)
        return err_set(KF_ENOMEM, "out of memory");
    for (size_t i = 0; i < vocab_size(v); i++)
        toks[i] = vocab_token(v, (int32_t)i);
    int rc = vocab_from_tokens(out, toks, vocab_size(v), "vocab");
    free(toks);
    return rc;
}

int data_load(data_set *out, const data_options *o)
{
    int rc = 0;
    ds_dataset all = {0}, train = {0}, valid = {0};
    tok_docs t_train = {0}, t_valid = {0}, t_corpus = {0};
    char **corpus = NULL, **texts = NULL;
    long *lines = NULL, *corpus_lines = NULL;
    size_t n_corpus = 0;
    vocab_counter *cnt = NULL;
    const char *corpus_name = o->corpus_path;
    memset(out, 0, sizeof *out);
    ds_opts dso = {.skip_bad_rows = o->skip_bad_rows, .allow_unlabelled = o->lm_only, .text_col = o->text_col,
                   .label_col = o->label_col, .label_sep = o->label_sep};

    if ((rc = tok_lang_parse(&out->lang, o->lang)) < 0)
        goto done;
    if (o->lm_only && !data_is_table(o->train_path)) {
        /* plain-text corpus as the only input */
    } else if ((rc = ds_load(&all, o->train_path, &dso)) < 0) {
        goto done;
    }
    out->skipped_rows = all.skipped;
    if (o->valid_path) {
        if ((rc = ds_load(&valid, o->valid_path, &dso)) < 0)
            goto done;
        out->skipped_rows += valid.skipped;
        if ((rc = ds_relabel(&valid, all.label_names, all.n_label_names, &out->valid_unseen)) < 0)
            goto done;
        train = all;
        memset(&all, 0, sizeof all);
    } else if ((rc = ds_split(&train, &valid, &all, o->valid_frac > 0 ? o->valid_frac : 0.2, o->seed)) < 0) {
        goto done;
    }
    const char *valid_name = o->valid_path ? o->valid_path : o->train_path;
    out->multi_label = o->label_mode == 1 || (o->label_mode == 0 && !ds_single_label(&train));
    if (!o->lm_only)
        note_unseen(out, &valid, valid_name);
    if (!o->lm_only && (train.n == 0 || valid.n == 0)) {
        rc = valid.n == 0 && out->valid_dropped_rows
                 ? err_set(KF_EINVAL, "%s: no validation example left: all %zu name only labels that %s does not have",
                           valid_name, out->valid_dropped_rows, o->train_path)
                 : err_set(KF_EINVAL, "%s: %zu training and %zu validation examples; need at least one of each",
                           o->train_path, train.n, valid.n);
        goto done;
    }
    if (!o->lm_only && o->label_mode == 2 && (rc = check_single(&train, o->train_path)) == 0)
        rc = check_single(&valid, valid_name);
    if (rc < 0)
        goto done;
    if ((rc = copy_labels(out, &train)) < 0)
        goto done;
    if (!o->lm_only && out->n_labels < 2 && !out->multi_label) {
        rc = err_set(KF_EINVAL, "%s: only %zu distinct label(s); a classifier needs at least 2", o->train_path,
                     out->n_labels);
        goto done;
    }
    if (o->corpus_path && (rc = read_corpus(&corpus, &corpus_lines, &n_corpus, o->corpus_path, o)) < 0)
        goto done;
    if (o->lm_only && train.n == 0 && n_corpus == 0) {
        corpus_name = o->train_path;
        if ((rc = read_lines(&corpus, &corpus_lines, &n_corpus, o->train_path)) < 0)
            goto done;
    }

    if (!(texts = texts_of(&train)) || !(lines = lines_of(&train)) ||
        (rc = tokenize_all(&t_train, texts, train.n, out->lang, o->train_path, lines)) < 0)
        goto nomem_or_rc;
    free(texts);
    free(lines);
    lines = NULL;
    if (!(texts = texts_of(&valid)) || !(lines = lines_of(&valid)) ||
        (rc = tokenize_all(&t_valid, texts, valid.n, out->lang, valid_name, lines)) < 0)
        goto nomem_or_rc;
    if ((rc = tokenize_all(&t_corpus, corpus, n_corpus, out->lang, corpus_name ? corpus_name : "corpus",
                           corpus_lines)) < 0)
        goto done;

    if (o->vocab) {
        if ((rc = copy_vocab(&out->vocab, o->vocab)) < 0)
            goto done;
    } else {
        if (!(cnt = vocab_counter_new())) {
            rc = err_set(KF_ENOMEM, "out of memory");
            goto done;
        }
        const tok_docs *all_t[3] = {&t_train, &t_valid, &t_corpus};
        for (int k = 0; k < 3; k++)
            for (size_t i = 0; i < all_t[k]->n; i++)
                if ((rc = vocab_counter_add(cnt, &all_t[k]->v[i])) < 0)
                    goto done;
        vocab_opts vo = {.max_vocab = o->max_vocab, .min_freq = o->min_freq, .known = o->known_vocab};
        if ((rc = vocab_build(&out->vocab, cnt, &vo)) < 0)
            goto done;
    }
    if ((rc = numericalize_all(&out->train, &t_train, out->vocab)) < 0 ||
        (rc = numericalize_all(&out->valid, &t_valid, out->vocab)) < 0)
        goto done;
    if ((rc = targets_of(&out->train_y, &train, out->n_labels ? out->n_labels : 1, out->multi_label)) < 0 ||
        (rc = targets_of(&out->valid_y, &valid, out->n_labels ? out->n_labels : 1, out->multi_label)) < 0)
        goto done;

    /* LM documents: every text; 10% held out by hash (text + seed), fastai's default split. */
    {
        data_docs corp = {0};
        if ((rc = numericalize_all(&corp, &t_corpus, out->vocab)) < 0) {
            docs_dispose(&corp);
            goto done;
        }
        size_t total = out->train.n + out->valid.n + corp.n;
        out->lm_train.v = calloc(total ? total : 1, sizeof(data_doc));
        out->lm_valid.v = calloc(total ? total : 1, sizeof(data_doc));
        if (!out->lm_train.v || !out->lm_valid.v) {
            docs_dispose(&corp);
            rc = err_set(KF_ENOMEM, "out of memory");
            goto done;
        }
        const data_docs *src[3] = {&out->train, &out->valid, &corp};
        char *const *src_text[3] = {NULL, NULL, corpus};
        for (int k = 0; k < 3; k++)
            for (size_t i = 0; i < src[k]->n; i++) {
                const data_doc *d = &src[k]->v[i];
                const char *txt = k == 0 ? train.ex[i].text : k == 1 ? valid.ex[i].text : src_text[2][i];
                int held = (double)ds_hash(txt, strlen(txt), o->seed ^ 0x4c4du) / 18446744073709551616.0 < 0.1;
                data_docs *dst = held ? &out->lm_valid : &out->lm_train;
                data_doc *nd = &dst->v[dst->n];
                if (!(nd->ids = malloc((d->n ? d->n : 1) * sizeof *nd->ids))) {
                    docs_dispose(&corp);
                    rc = err_set(KF_ENOMEM, "out of memory");
                    goto done;
                }
                memcpy(nd->ids, d->ids, d->n * sizeof *nd->ids);
                nd->n = d->n;
                dst->n++;
            }
        docs_dispose(&corp);
    }
    if (out->lm_train.n == 0) {
        rc = err_set(KF_EINVAL, "%s: no text to train the language model on", o->train_path);
        goto done;
    }
    goto done;
nomem_or_rc:
    if (rc == 0)
        rc = err_set(KF_ENOMEM, "out of memory");
done:
    free(texts);
    free(lines);
    for (size_t i = 0; i < n_corpus; i++)
        free(corpus[i]);
    free(corpus);
    free(corpus_lines);
    tok_docs_dispose(&t_train);
    tok_docs_dispose(&t_valid);
    tok_docs_dispose(&t_corpus);
    vocab_counter_free(cnt);
    ds_dispose(&all);
    ds_dispose(&train);
    ds_dispose(&valid);
    if (rc < 0)
        data_dispose(out);
    return rc;
}

int data_load_eval(data_set *out, const data_options *o, char *const *labels, size_t n_labels, int multi_label)
{
    int rc = 0;
    ds_dataset d = {0};
    tok_docs t = {0};
    char **texts = NULL;
    long *lines = NULL;
    memset(out, 0, sizeof *out);
    ds_opts dso = {.skip_bad_rows = o->skip_bad_rows, .text_col = o->text_col, .label_col = o->label_col,
                   .label_sep = o->label_sep};
    out->multi_label = multi_label;
    if ((rc = tok_lang_parse(&out->lang, o->lang)) < 0 || (rc = ds_load(&d, o->valid_path, &dso)) < 0)
        goto done;
    out->skipped_rows = d.skipped;
    if ((rc = ds_relabel(&d, labels, n_labels, &out->valid_unseen)) < 0)
        goto done;
    note_unseen(out, &d, o->valid_path);
    if (d.n == 0) {
        rc = err_set(KF_EINVAL, "%s: no example left to evaluate: all %zu name only labels the model does not have",
                     o->valid_path, out->valid_dropped_rows);
        goto done;
    }
    if ((rc = copy_labels(out, &d)) < 0 || (rc = copy_vocab(&out->vocab, o->vocab)) < 0)
        goto done;
    if (!(texts = texts_of(&d)) || !(lines = lines_of(&d))) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = tokenize_all(&t, texts, d.n, out->lang, o->valid_path, lines)) < 0 ||
        (rc = numericalize_all(&out->valid, &t, out->vocab)) < 0 ||
        (rc = targets_of(&out->valid_y, &d, out->n_labels ? out->n_labels : 1, multi_label)) < 0)
        goto done;
done:
    free(texts);
    free(lines);
    tok_docs_dispose(&t);
    ds_dispose(&d);
    if (rc < 0)
        data_dispose(out);
    return rc;
}

int data_encode(int32_t **ids, size_t *n, const vocab *v, tok_lang lang, const char *text)
{
    return data_encode_n(ids, n, v, lang, text, strlen(text));
}

int data_encode_n(int32_t **ids, size_t *n, const vocab *v, tok_lang lang, const char *text, size_t len)
{
    tok_list t;
    tok_list_init(&t);
    int rc = tok_text(&t, text, len, lang);
    if (rc == 0)
        rc = vocab_numericalize(ids, n, v, &t);
    tok_list_dispose(&t);
    return rc;
}

/* ---- LM batches ---- */

int data_lm_build(data_lm *out, const data_docs *docs, int B, uint64_t shuffle_seed)
{
    int rc = 0;
    size_t total = 0, *order = NULL;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < docs->n; i++)
        total += docs->v[i].n;
    if (B < 1 || total < (size_t)B + 1)
        return err_set(KF_EINVAL, "language model data: %zu tokens for batch size %d (need more text or a "
                                  "smaller --batch-size)", total, B);
    if (!(order = malloc(docs->n * sizeof *order)) || !(out->stream = malloc(total * sizeof *out->stream))) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < docs->n; i++)
        order[i] = i;
    if (shuffle_seed)
        shuffle(order, docs->n, shuffle_seed);
    for (size_t i = 0; i < docs->n; i++) {
        const data_doc *d = &docs->v[order[i]];
        memcpy(out->stream + out->len, d->ids, d->n * sizeof *d->ids);
        out->len += d->n;
    }
    out->B = B;
    out->m = (out->len - 1) / (size_t)B;
done:
    free(order);
    if (rc < 0)
        data_lm_dispose(out);
    return rc;
}

void data_lm_dispose(data_lm *l)
{
    if (!l)
        return;
    free(l->stream);
    memset(l, 0, sizeof *l);
}

size_t data_lm_chunks(const data_lm *l, int T) { return (l->m + (size_t)T - 1) / (size_t)T; }

int data_lm_chunk(const data_lm *l, size_t k, int T, int32_t *x, int32_t *y)
{
    size_t pos = k * (size_t)T;
    if (pos >= l->m)
        return 0;
    int t = (int)(l->m - pos < (size_t)T ? l->m - pos : (size_t)T);
    for (int b = 0; b < l->B; b++) {
        const int32_t *row = l->stream + (size_t)b * l->m + pos;
        memcpy(x + (size_t)b * t, row, (size_t)t * sizeof *x);
        memcpy(y + (size_t)b * t, row + 1, (size_t)t * sizeof *y);
    }
    return t;
}

/* ---- classifier batches ---- */

static _Thread_local const data_docs *sort_docs_; /* qsort context (per thread) */

static int cmp_len_desc(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    size_t lx = sort_docs_->v[x].n, ly = sort_docs_->v[y].n;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

int data_clf_order(size_t *order, const data_docs *docs, int B, uint64_t shuffle_seed)
{
    size_t n = docs->n;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    sort_docs_ = docs;
    if (!shuffle_seed) {
        qsort(order, n, sizeof *order, cmp_len_desc);
        return 0;
    }
    shuffle(order, n, shuffle_seed);
    size_t block = (size_t)B * 50;
    for (size_t s = 0; s < n; s += block)
        qsort(order + s, n - s < block ? n - s : block, sizeof *order, cmp_len_desc);
    /* shuffle whole batches (the last, short one stays last so drop_last can drop it) */
    size_t nb = n / (size_t)B;
    size_t *bidx = malloc((nb ? nb : 1) * sizeof *bidx), *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!bidx || !tmp) {
        free(bidx);
        free(tmp);
        return err_set(KF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nb; i++)
        bidx[i] = i;
    shuffle(bidx, nb, shuffle_seed ^ 0xb47c5u);
    for (size_t i = 0; i < nb; i++)
        memcpy(tmp + i * (size_t)B, order + bidx[i] * (size_t)B, (size_t)B * sizeof *tmp);
    memcpy(order, tmp, nb * (size_t)B * sizeof *tmp);
    free(bidx);
    free(tmp);
    return 0;
}

int data_clf_batch(int32_t **tokens, uint8_t **pad, int *S, size_t *perm, const data_docs *docs,
                   const size_t *idx, int b, int seq_len, int pad_id)
{
    return data_clf_batch_aligned(tokens, pad, S, perm, docs, idx, b, seq_len, pad_id, 0);
}

int data_clf_batch_aligned(int32_t **tokens, uint8_t **pad, int *S, size_t *perm, const data_docs *docs,
                           const size_t *idx, int b, int seq_len, int pad_id, int aligned)
{
    size_t maxlen = 1;
    *tokens = NULL;
    *pad = NULL;
    memcpy(perm, idx, (size_t)b * sizeof *perm);
    sort_docs_ = docs;
    qsort(perm, (size_t)b, sizeof *perm, cmp_len_desc);
    for (int i = 0; i < b; i++)
        if (docs->v[perm[i]].n > maxlen)
            maxlen = docs->v[perm[i]].n;
    if (maxlen > (size_t)1 << 24)
        return err_set(KF_EINVAL, "a text of %zu tokens is too long", maxlen);
    if (aligned && maxlen % (size_t)seq_len)
        maxlen += (size_t)seq_len - maxlen % (size_t)seq_len;
    *S = (int)maxlen;
    *tokens = malloc((size_t)b * maxlen * sizeof **tokens);
    *pad = malloc((size_t)b * maxlen);
    if (!*tokens || !*pad) {
        free(*tokens);
        free(*pad);
        *tokens = NULL;
        *pad = NULL;
        return err_set(KF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < b; i++) {
        const data_doc *d = &docs->v[perm[i]];
        size_t l = maxlen - d->n, before = l / (size_t)seq_len * (size_t)seq_len;
        int32_t *row = *tokens + (size_t)i * maxlen;
        uint8_t *prow = *pad + (size_t)i * maxlen;
        for (size_t k = 0; k < maxlen; k++) {
            int is_pad = k < before || k >= before + d->n;
            row[k] = is_pad ? pad_id : d->ids[k - before];
            prow[k] = (uint8_t)is_pad;
        }
    }
    return 0;
}
