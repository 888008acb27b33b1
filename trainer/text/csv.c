/* csv: RFC 4180 reader (see csv.h). */
#include "csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void csv_init(csv_reader *r, const char *buf, size_t len, const char *name)
{
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->len = len;
    r->name = name ? name : "<csv>";
    r->line = 1;
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        r->pos = 3;
}

void csv_dispose(csv_reader *r)
{
    if (!r)
        return;
    free(r->fields);
    free(r->lens);
    free(r->scratch);
    memset(r, 0, sizeof *r);
}

static int scratch_put(csv_reader *r, size_t *used, const char *s, size_t n)
{
    if (n > r->scratch_cap - *used) {
        size_t cap = r->scratch_cap ? r->scratch_cap : 256;
        while (cap - *used < n) {
            if (cap > SIZE_MAX / 2)
                return err_set(KF_ENOMEM, "%s: row too large", r->name);
            cap *= 2;
        }
        char *b = realloc(r->scratch, cap);
        if (!b)
            return err_set(KF_ENOMEM, "%s: out of memory", r->name);
        r->scratch = b;
        r->scratch_cap = cap;
    }
    memcpy(r->scratch + *used, s, n);
    *used += n;
    return 0;
}

/* Records the end of a field: its start offset goes in fields[] (fixed up to pointers later). */
static int end_field(csv_reader *r, size_t *used, size_t start)
{
    if (r->n_fields == r->cap_fields) {
        size_t cap = r->cap_fields ? r->cap_fields * 2 : 16;
        char **f = realloc(r->fields, cap * sizeof *f);
        size_t *l = f ? realloc(r->lens, cap * sizeof *l) : NULL;
        if (f)
            r->fields = f;
        if (!f || !l)
            return err_set(KF_ENOMEM, "%s: out of memory", r->name);
        r->lens = l;
        r->cap_fields = cap;
    }
    r->fields[r->n_fields] = (char *)(uintptr_t)start;
    r->lens[r->n_fields++] = *used - start;
    return scratch_put(r, used, "", 1);
}

/* After an error: continue at the next physical line. */
static void skip_line(csv_reader *r)
{
    const char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
    r->pos = nl ? (size_t)(nl - r->buf) + 1 : r->len;
    r->line++;
}

int csv_next(csv_reader *r)
{
    const char *b = r->buf;
    size_t used = 0;
    int rc = 0;
    r->n_fields = 0;
    if (r->pos >= r->len)
        return 0;
    r->row_line = r->line;
    for (;;) {
        size_t start = used;
        if (r->pos < r->len && b[r->pos] == '"') {
            long qline = r->line;
            r->pos++;
            for (;;) {
                if (r->pos >= r->len)
                    return err_set(KF_EINVAL, "%s:%ld: unterminated quoted field", r->name, qline);
                const char *q = memchr(b + r->pos, '"', r->len - r->pos);
                size_t end = q ? (size_t)(q - b) : r->len;
                for (size_t k = r->pos; k < end; k++)
                    r->line += b[k] == '\n';
                if ((rc = scratch_put(r, &used, b + r->pos, end - r->pos)))
                    return rc;
                r->pos = end;
                if (!q)
                    continue;                          /* reports unterminated above */
                if (end + 1 < r->len && b[end + 1] == '"') {
                    if ((rc = scratch_put(r, &used, "\"", 1)))
                        return rc;
                    r->pos = end + 2;
                } else {
                    r->pos = end + 1;
                    break;
                }
            }
            if (r->pos < r->len && b[r->pos] != ',' && b[r->pos] != '\n' &&
                !(b[r->pos] == '\r' && r->pos + 1 < r->len && b[r->pos + 1] == '\n') &&
                !(b[r->pos] == '\r' && r->pos + 1 == r->len)) {
                long line = r->line;
                skip_line(r);
                return err_set(KF_EINVAL, "%s:%ld: characters after the closing quote of field %zu",
                               r->name, line, r->n_fields + 1);
            }
        } else {
            size_t k = r->pos;
            while (k < r->len && b[k] != ',' && b[k] != '\n' &&
                   !(b[k] == '\r' && (k + 1 == r->len || b[k + 1] == '\n')))
                k++;
            if ((rc = scratch_put(r, &used, b + r->pos, k - r->pos)))
                return rc;
            r->pos = k;
        }
        if ((rc = end_field(r, &used, start)))
            return rc;
        if (r->pos < r->len && b[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->len && b[r->pos] == '\r')
            r->pos++;
        if (r->pos < r->len && b[r->pos] == '\n') {
            r->pos++;
            r->line++;
        }
        break;
    }
    for (size_t i = 0; i < r->n_fields; i++)
        r->fields[i] = r->scratch + (uintptr_t)r->fields[i];
    return 1;
}
