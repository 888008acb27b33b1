/* dataset: labelled texts from CSV / JSON lines, relabelling, seeded hash split. */
#include "dataset.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "utf8.h"

void ds_init(ds_dataset *d) { memset(d, 0, sizeof *d); }

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void ds_dispose(ds_dataset *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->ex[i].text);
        free(d->ex[i].labels);
    }
    free(d->ex);
    free_names(d->label_names, d->n_label_names);
    ds_init(d);
}

/* Label names seen while loading, interned to temporary ids (first-seen order). */
typedef struct interner {
    char **names;
    size_t n, cap;
    size_t *slots, n_slots;   /* open addressing: id + 1, 0 = empty */
} interner;

static uint64_t fnv(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static int intern(interner *in, const char *s, size_t len, uint32_t *id)
{
    if (in->n * 2 >= in->n_slots) {
        size_t ns = in->n_slots ? in->n_slots * 2 : 256;
        size_t *slots = calloc(ns, sizeof *slots);
        if (!slots)
            return err_set(KF_ENOMEM, "dataset: out of memory");
        for (size_t k = 0; k < in->n; k++) {
            size_t i = fnv(in->names[k], strlen(in->names[k])) & (ns - 1);
            while (slots[i])
                i = (i + 1) & (ns - 1);
            slots[i] = k + 1;
        }
        free(in->slots);
        in->slots = slots;
        in->n_slots = ns;
    }
    size_t i = fnv(s, len) & (in->n_slots - 1);
    for (; in->slots[i]; i = (i + 1) & (in->n_slots - 1)) {
        const char *t = in->names[in->slots[i] - 1];
        if (strlen(t) == len && memcmp(t, s, len) == 0) {
            *id = (uint32_t)(in->slots[i] - 1);
            return 0;
        }
    }
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 64;
        char **nn = realloc(in->names, cap * sizeof *nn);
        if (!nn)
            return err_set(KF_ENOMEM, "dataset: out of memory");
        in->names = nn;
        in->cap = cap;
    }
    if (!(in->names[in->n] = strndup(s, len)))
        return err_set(KF_ENOMEM, "dataset: out of memory");
    in->slots[i] = ++in->n;
    *id = (uint32_t)(in->n - 1);
    return 0;
}

static void interner_dispose(interner *in)
{
    free_names(in->names, in->n);
    free(in->slots);
    memset(in, 0, sizeof *in);
}

/* Loading context: the options, the output and the labels seen so far. */
typedef struct loader {
    const ds_opts *o;
    const char *name;
    ds_dataset *d;
    interner labels;
    uint32_t *row_labels;   /* labels of the row being read */
    size_t n_row, cap_row;
} loader;

/* A malformed row: an error (file:line: reason), or with skip_bad_rows a counted skip. */
__attribute__((format(printf, 3, 4))) static int bad_row(loader *L, long line, const char *fmt, ...)
{
    char *why = NULL;
    va_list ap;
    va_start(ap, fmt);
    int k = vasprintf(&why, fmt, ap);
    va_end(ap);
    if (k < 0)
        return err_set(KF_ENOMEM, "dataset: out of memory");
    int rc = 0;
    if (L->o->skip_bad_rows) {
        if (L->d->skipped < 5)
            log_warn("dataset", "skipping bad row", "{s:s,s:I,s:s}", "file", L->name, "line",
                     (json_int_t)line, "reason", why);
        L->d->skipped++;
    } else {
        rc = err_set(KF_EINVAL, "%s:%ld: %s", L->name, line, why);
    }
    free(why);
    return rc;
}

/* Why name[0..len) cannot be a label name, or NULL: labels go into metrics.json, the model's
 * kubefit.labels and predict's output, all JSON, so a name must be valid UTF-8 without control
 * characters (C0, DEL, C1). */
static const char *bad_label_name(const char *name, size_t len)
{
    if (!len)
        return "is empty";
    if (memchr(name, 0, len) || !utf8_valid(name, len, NULL))
        return "is not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < len && (unsigned char)name[i + 1] < 0xa0))
            return "holds a control character";
    }
    return NULL;
}

/* A row's label (trimmed; blank is no label). where names the column or key for messages, e.g.
 * "column 2 (\"labels\")". A bad name is a bad row (exit 2 in the trainer, or skipped). */
static int row_label(loader *L, const char *s, size_t len, long line, const char *where)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (!len)
        return 0;
    const char *why = bad_label_name(s, len);
    if (why) {
        char *q = utf8_quote(s, len);
        int rc = q ? bad_row(L, line, "%s: label \"%.80s\" %s", where, q, why)
                   : err_set(KF_ENOMEM, "dataset: out of memory");
        free(q);
        return rc ? rc : 1; /* 1: the row is skipped */
    }
    if (L->n_row == L->cap_row) {
        size_t cap = L->cap_row ? L->cap_row * 2 : 16;
        uint32_t *r = realloc(L->row_labels, cap * sizeof *r);
        if (!r)
            return err_set(KF_ENOMEM, "dataset: out of memory");
        L->row_labels = r;
        L->cap_row = cap;
    }
    return intern(&L->labels, s, len, &L->row_labels[L->n_row++]);
}

static int split_labels(loader *L, const char *s, size_t len, long line, const char *where)
{
    char sep = L->o->label_sep ? L->o->label_sep : ';';
    int rc = 0;
    for (size_t a = 0; rc == 0 && a <= len;) {
        const char *e = memchr(s + a, sep, len - a);
        size_t b = e ? (size_t)(e - s) : len;
        rc = row_label(L, s + a, b - a, line, where);
        a = b + 1;
    }
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Appends an example with the row's labels (sorted, deduplicated later on remap). */
/* Makes room for one more example in d->ex. */
static int grow_examples(ds_dataset *d)
{
    if (d->n < d->cap)
        return 0;
    size_t cap = d->cap ? d->cap * 2 : 1024;
    ds_example *ex = cap <= SIZE_MAX / sizeof *ex ? realloc(d->ex, cap * sizeof *ex) : NULL;
    if (!ex)
        return err_set(KF_ENOMEM, "dataset: out of memory");
    d->ex = ex;
    d->cap = cap;
    return 0;
}

char *ds_text_copy(const char *s, size_t len)
{
    size_t nul = 0;
    for (const char *p = s; (p = memchr(p, 0, len - (size_t)(p - s))); p++)
        nul++;
    if (nul > (SIZE_MAX - 1 - len) / 2)
        return NULL;
    char *out = malloc(len + 2 * nul + 1), *w = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i])
            *w++ = s[i];
        else
            memcpy(w, "\xef\xbf\xbd", 3), w += 3; /* U+FFFD */
    }
    *w = 0;
    return out;
}

static int add_example(loader *L, const char *text, size_t len, long line)
{
    ds_dataset *d = L->d;
    if (len == 0)
        return bad_row(L, line, "empty text");
    if (L->n_row == 0 && !L->o->allow_unlabelled)
        return bad_row(L, line, "no labels");
    if (grow_examples(d) < 0)
        return KF_ENOMEM;
    ds_example *e = &d->ex[d->n];
    memset(e, 0, sizeof *e);
    e->line = line;
    e->text = ds_text_copy(text, len);
    if (L->n_row)
        e->labels = malloc(L->n_row * sizeof *e->labels);
    if (!e->text || (L->n_row && !e->labels)) {
        free(e->text);
        free(e->labels);
        return err_set(KF_ENOMEM, "dataset: out of memory");
    }
    if (L->n_row)
        memcpy(e->labels, L->row_labels, L->n_row * sizeof *e->labels);
    e->n_labels = L->n_row;
    d->n++;
    return 0;
}

static int find_col(const csv_reader *r, const char *name)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (strcmp(r->fields[i], name) == 0)
            return (int)i;
    return -1;
}

static int load_csv(loader *L, const char *buf, size_t len)
{
    csv_reader r;
    const ds_opts *o = L->o;
    const char *text_col = o->text_col ? o->text_col : "text";
    const char *label_col = o->label_col ? o->label_col : "labels";
    int text_i, label_i = -1, rc = 0;
    size_t n_cols, n_flags = 0;
    int *flags = NULL;      /* 0/1 label columns */
    char **flag_names = NULL;
    char *where = NULL;     /* the label column, for messages: column 2 ("labels") */
    csv_init(&r, buf, len, L->name);
    rc = csv_next(&r);
    if (rc == 0)
        rc = err_set(KF_EINVAL, "%s: empty file (expected a header row with a \"%s\" column)", L->name,
                     text_col);
    if (rc < 0)
        goto done;
    rc = 0;
    n_cols = r.n_fields;
    text_i = find_col(&r, text_col);
    if (text_i < 0) {
        rc = err_set(KF_EINVAL, "%s:1: no column \"%s\" in the header (first column: \"%s\")", L->name,
                     text_col, r.fields[0]);
        goto done;
    }
    if (!o->label_cols)
        label_i = find_col(&r, label_col);
    if (label_i < 0 && !o->label_cols && !o->label_col && (label_i = find_col(&r, "label")) >= 0)
        label_col = "label"; /* the common text,label header: one label name per row (or several) */
    if (label_i == text_i && label_i >= 0) {
        rc = err_set(KF_EINVAL, "%s:1: the text and the label column are the same column \"%s\"", L->name, label_col);
        goto done;
    }
    if (label_i >= 0 && asprintf(&where, "column %d (\"%s\")", label_i + 1, label_col) < 0) {
        where = NULL;
        rc = err_set(KF_ENOMEM, "dataset: out of memory");
        goto done;
    }
    if (label_i < 0 && !o->label_cols && o->label_col) {
        rc = err_set(KF_EINVAL, "%s:1: no label column \"%s\" in the header", L->name, label_col);
        goto done;
    }
    if (label_i < 0) {
        flags = calloc(n_cols, sizeof *flags);
        flag_names = calloc(n_cols, sizeof *flag_names);
        if (!flags || !flag_names) {
            rc = err_set(KF_ENOMEM, "dataset: out of memory");
            goto done;
        }
        for (size_t c = 0; o->label_cols && o->label_cols[c]; c++) {
            int i = find_col(&r, o->label_cols[c]);
            if (i < 0) {
                rc = err_set(KF_EINVAL, "%s:1: no label column \"%s\" in the header", L->name,
                             o->label_cols[c]);
                goto done;
            }
            flags[n_flags++] = i;
        }
        for (size_t i = 0; !o->label_cols && i < n_cols; i++)
            if ((int)i != text_i)
                flags[n_flags++] = (int)i;
        if (n_flags == 0) {
            rc = err_set(KF_EINVAL, "%s:1: no label column (neither \"%s\" nor 0/1 columns)", L->name,
                         label_col);
            goto done;
        }
        for (size_t k = 0; k < n_flags; k++) {
            const char *why = bad_label_name(r.fields[flags[k]], r.lens[flags[k]]);
            if (why) {
                char *q = utf8_quote(r.fields[flags[k]], r.lens[flags[k]]);
                rc = err_set(KF_EINVAL, "%s:1: column %d: label name \"%.80s\" (a 0/1 label column) %s", L->name,
                             flags[k] + 1, q ? q : "?", why);
                free(q);
                goto done;
            }
            if (!(flag_names[k] = strdup(r.fields[flags[k]]))) {
                rc = err_set(KF_ENOMEM, "dataset: out of memory");
                goto done;
            }
        }
    }
    while ((rc = csv_next(&r)) != 0) {
        if (rc < 0) {
            if (rc == KF_EINVAL && o->skip_bad_rows) {
                if (L->d->skipped++ < 5)
                    log_warn("dataset", "skipping bad row", "{s:s}", "reason", err_msg());
                continue;
            }
            goto done;
        }
        rc = 0;
        L->n_row = 0;
        if (r.n_fields == 1 && r.lens[0] == 0)
            continue;   /* blank line */
        if (r.n_fields != n_cols) {
            if ((rc = bad_row(L, r.row_line, "expected %zu fields (as in the header), found %zu",
                              n_cols, r.n_fields)))
                goto done;
            continue;
        }
        bool bad = false;
        if (label_i >= 0) {
            rc = split_labels(L, r.fields[label_i], r.lens[label_i], r.row_line, where);
        } else {
            for (size_t k = 0; rc == 0 && k < n_flags && !bad; k++) {
                const char *v = r.fields[flags[k]];
                if (strcmp(v, "1") == 0)
                    rc = row_label(L, flag_names[k], strlen(flag_names[k]), r.row_line, "header");
                else if (strcmp(v, "0") != 0) {
                    bad = true;
                    rc = bad_row(L, r.row_line, "column \"%s\": expected 0 or 1, found \"%.40s\"",
                                 flag_names[k], v);
                }
            }
        }
        if (rc == 1) /* a bad label, skipped */
            rc = 0, bad = true;
        if (rc == 0 && !bad)
            rc = add_example(L, r.fields[text_i], r.lens[text_i], r.row_line);
        if (rc)
            goto done;
    }
done:
    free(where);
    if (flag_names)
        for (size_t k = 0; k < n_flags; k++)
            free(flag_names[k]);
    free(flag_names);
    free(flags);
    csv_dispose(&r);
    return rc;
}

static int load_jsonl(loader *L, const char *buf, size_t len)
{
    const char *key_text = L->o->text_col ? L->o->text_col : "text";
    const char *key_labels = L->o->label_col ? L->o->label_col : "labels";
    int rc = 0;
    char where[96];
    long line = 0;
    size_t pos = len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    while (rc == 0 && pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, a = pos;
        line++;
        pos = nl ? end + 1 : len;
        while (a < end && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r'))
            a++;
        if (a == end)
            continue;
        json_error_t jerr;
        json_t *obj = json_loadb(buf + a, end - a, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        json_t *text = obj ? json_object_get(obj, key_text) : NULL;
        json_t *labels = obj ? json_object_get(obj, key_labels) : NULL;
        const char *key = key_labels;
        if (!labels && obj && !L->o->label_col && (labels = json_object_get(obj, "label")))
            key = "label"; /* {"text": ..., "label": "spam"} */
        L->n_row = 0;
        if (!obj)
            rc = bad_row(L, line, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        else if (!json_is_object(obj))
            rc = bad_row(L, line, "expected a JSON object");
        else if (!json_is_string(text))
            rc = bad_row(L, line, "\"%s\" missing or not a string", key_text);
        else if (labels && !json_is_string(labels) && !json_is_array(labels))
            rc = bad_row(L, line, "\"%s\" must be an array of strings or a string", key);
        else {
            bool bad = false;
            snprintf(where, sizeof where, "key \"%.60s\"", key);
            if (json_is_string(labels))
                rc = split_labels(L, json_string_value(labels), json_string_length(labels), line, where);
            size_t i;
            json_t *v;
            json_array_foreach(labels, i, v) {
                if (rc || bad)
                    break;
                snprintf(where, sizeof where, "key \"%.60s\"[%zu]", key, i);
                if (!json_is_string(v)) {
                    bad = true;
                    rc = bad_row(L, line, "%s is not a string", where);
                } else if (json_string_length(v) == 0) { /* an explicit "" is no label name */
                    bad = true;
                    rc = bad_row(L, line, "%s: label \"\" is empty", where);
                } else {
                    rc = row_label(L, json_string_value(v), json_string_length(v), line, where);
                }
            }
            if (rc == 1) /* a bad label, skipped */
                rc = 0, bad = true;
            if (rc == 0 && !bad)
                rc = add_example(L, json_string_value(text), json_string_length(text), line);
        }
        json_decref(obj);
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the interned names; labels of each example become final ids, sorted and unique. */
static int finish_labels(loader *L)
{
    ds_dataset *d = L->d;
    size_t n = L->labels.n;
    uint32_t *map = malloc((n ? n : 1) * sizeof *map);
    char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!map || !sorted) {
        free(map);
        free(sorted);
        return err_set(KF_ENOMEM, "dataset: out of memory");
    }
    if (n) {
        memcpy(sorted, L->labels.names, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_str);
    }
    for (size_t i = 0; i < n; i++) {
        char **hit = bsearch(&L->labels.names[i], sorted, n, sizeof *sorted, cmp_str);
        map[i] = (uint32_t)(hit - sorted);
    }
    for (size_t i = 0; i < d->n; i++) {
        ds_example *e = &d->ex[i];
        for (size_t k = 0; k < e->n_labels; k++)
            e->labels[k] = map[e->labels[k]];
        if (e->n_labels > 1)
            qsort(e->labels, e->n_labels, sizeof *e->labels, cmp_u32);
        size_t u = 0;
        for (size_t k = 0; k < e->n_labels; k++)
            if (u == 0 || e->labels[u - 1] != e->labels[k])
                e->labels[u++] = e->labels[k];
        e->n_labels = u;
    }
    free(map);
    d->label_names = sorted;   /* the strings move from the interner */
    d->n_label_names = n;
    free(L->labels.names);
    L->labels.names = NULL;
    L->labels.n = 0;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int ds_load_buffer(ds_dataset *out, const char *buf, size_t len, const char *name,
                   const ds_opts *opts)
{
    static const ds_opts defaults = {0};
    loader L = {.o = opts ? opts : &defaults, .name = name ? name : "<data>", .d = out};
    ds_init(out);
    ds_format f = L.o->format;
    if (f == DS_FORMAT_AUTO)
        f = ends_with(L.name, ".jsonl") || ends_with(L.name, ".json") || ends_with(L.name, ".ndjson")
                ? DS_FORMAT_JSONL : DS_FORMAT_CSV;
    int rc = f == DS_FORMAT_JSONL ? load_jsonl(&L, buf, len) : load_csv(&L, buf, len);
    if (rc == 0 && out->n == 0)
        rc = err_set(KF_EINVAL, "%s: no examples%s", L.name, out->skipped ? " (all rows were bad)" : "");
    if (rc == 0)
        rc = finish_labels(&L);
    if (rc == 0 && out->skipped)
        log_warn("dataset", "skipped bad rows", "{s:s,s:I,s:I}", "file", L.name, "skipped",
                 (json_int_t)out->skipped, "kept", (json_int_t)out->n);
    interner_dispose(&L.labels);
    free(L.row_labels);
    if (rc)
        ds_dispose(out);
    return rc;
}

int ds_load(ds_dataset *out, const char *path, const ds_opts *opts)
{
    char *buf = NULL;
    size_t len = 0;
    ds_init(out);
    int rc = file_read_all(&buf, &len, path);
    if (rc == 0)
        rc = ds_load_buffer(out, buf, len, path, opts);
    free(buf);
    return rc;
}

void ds_unseen_dispose(ds_unseen *u)
{
    if (!u)
        return;
    free_names(u->names, u->n_names);
    memset(u, 0, sizeof *u);
}

int ds_relabel(ds_dataset *d, char *const *names, size_t n, ds_unseen *unseen)
{
    char **copy = calloc(n ? n : 1, sizeof *copy);
    int64_t *map = malloc((d->n_label_names ? d->n_label_names : 1) * sizeof *map);
    int rc = 0;
    ds_unseen u = {0};
    if (!copy || !map) {
        rc = err_set(KF_ENOMEM, "dataset: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (!(copy[i] = strdup(names[i]))) {
            rc = err_set(KF_ENOMEM, "dataset: out of memory");
            goto done;
        }
    for (size_t i = 0; i < d->n_label_names; i++) {
        map[i] = -1;
        for (size_t k = 0; k < n && map[i] < 0; k++)
            if (strcmp(d->label_names[i], names[k]) == 0)
                map[i] = (int64_t)k;
    }
    /* unseen names in the order of first use, so the first few reported are the ones met first */
    for (size_t i = 0; i < d->n; i++) {
        ds_example *e = &d->ex[i];
        size_t kept = 0;
        bool any = false;
        for (size_t k = 0; k < e->n_labels; k++) {
            uint32_t id = e->labels[k];
            if (map[id] >= 0) {
                e->labels[kept++] = (uint32_t)map[id];
                continue;
            }
            any = true;
            u.labels++;
            if (map[id] == -1) { /* first use of this unseen name */
                map[id] = -2;
                char **v = realloc(u.names, (u.n_names + 1) * sizeof *v);
                if (!v || !(v[u.n_names] = strdup(d->label_names[id]))) {
                    if (v)
                        u.names = v;
                    rc = err_set(KF_ENOMEM, "dataset: out of memory");
                    goto done;
                }
                u.names = v;
                u.n_names++;
            }
        }
        e->n_labels = kept;
        u.rows += any;
        if (kept > 1)
            qsort(e->labels, kept, sizeof *e->labels, cmp_u32);
    }
    free_names(d->label_names, d->n_label_names);
    d->label_names = copy;
    d->n_label_names = n;
    copy = NULL;
    if (unseen) {
        *unseen = u;
        memset(&u, 0, sizeof u);
    }
done:
    if (copy)
        free_names(copy, n);
    ds_unseen_dispose(&u);
    free(map);
    return rc;
}

size_t ds_drop_unlabelled(ds_dataset *d)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (d->ex[i].n_labels == 0) {
            free(d->ex[i].text);
            free(d->ex[i].labels);
            continue;
        }
        d->ex[kept++] = d->ex[i];
    }
    size_t dropped = d->n - kept;
    d->n = kept;
    return dropped;
}

uint64_t ds_hash(const char *s, size_t len, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (seed * 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    h ^= h >> 30; /* splitmix64 finaliser */
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

static int copy_example(ds_dataset *d, const ds_example *e)
{
    if (grow_examples(d) < 0)
        return KF_ENOMEM;
    ds_example *c = &d->ex[d->n];
    *c = *e;
    c->text = strdup(e->text);
    c->labels = e->n_labels ? malloc(e->n_labels * sizeof *c->labels) : NULL;
    if (!c->text || (e->n_labels && !c->labels)) {
        free(c->text);
        free(c->labels);
        return err_set(KF_ENOMEM, "dataset: out of memory");
    }
    if (e->n_labels)
        memcpy(c->labels, e->labels, e->n_labels * sizeof *c->labels);
    d->n++;
    return 0;
}

int ds_split(ds_dataset *train, ds_dataset *valid, const ds_dataset *all, double valid_frac,
             uint64_t seed)
{
    int rc = 0;
    ds_init(train);
    ds_init(valid);
    if (!(valid_frac >= 0.0 && valid_frac <= 1.0))
        return err_set(KF_EINVAL, "dataset: valid fraction %g outside [0, 1]", valid_frac);
    for (int k = 0; rc == 0 && k < 2; k++) {
        ds_dataset *d = k ? valid : train;
        d->label_names = calloc(all->n_label_names ? all->n_label_names : 1, sizeof *d->label_names);
        if (!d->label_names) {
            rc = err_set(KF_ENOMEM, "dataset: out of memory");
            break;
        }
        for (size_t i = 0; rc == 0 && i < all->n_label_names; i++) {
            if (!(d->label_names[i] = strdup(all->label_names[i])))
                rc = err_set(KF_ENOMEM, "dataset: out of memory");
            d->n_label_names = i + 1;
        }
    }
    for (size_t i = 0; rc == 0 && i < all->n; i++) {
        const ds_example *e = &all->ex[i];
        double u = (double)(ds_hash(e->text, strlen(e->text), seed) >> 11) * 0x1p-53;
        rc = copy_example(u < valid_frac ? valid : train, e);
    }
    if (rc) {
        ds_dispose(train);
        ds_dispose(valid);
    }
    return rc;
}

bool ds_single_label(const ds_dataset *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->ex[i].n_labels != 1)
            return false;
    return d->n > 0;
}
