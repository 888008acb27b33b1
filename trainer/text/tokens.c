/* tokens: a growable list of owned token strings. */
#include "tokens.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void tok_list_init(tok_list *l) { memset(l, 0, sizeof *l); }

void tok_list_clear(tok_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

void tok_list_dispose(tok_list *l)
{
    if (!l)
        return;
    tok_list_clear(l);
    free(l->v);
    tok_list_init(l);
}

int tok_list_push_owned(tok_list *l, char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = cap < SIZE_MAX / sizeof *v ? realloc(l->v, cap * sizeof *v) : NULL;
        if (!v) {
            free(s);
            return err_set(KF_ENOMEM, "text: out of memory (%zu tokens)", cap);
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

int tok_list_push(tok_list *l, const char *s, size_t len)
{
    char *c = len < SIZE_MAX ? malloc(len + 1) : NULL;
    if (!c)
        return err_set(KF_ENOMEM, "text: out of memory");
    memcpy(c, s, len);
    c[len] = 0;
    return tok_list_push_owned(l, c);
}

char *tok_list_join(const tok_list *l)
{
    size_t total = 1;
    for (size_t i = 0; i < l->n; i++)
        total += strlen(l->v[i]) + 1;
    char *r = malloc(total), *p = r;
    if (!r) {
        err_set(KF_ENOMEM, "text: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < l->n; i++) {
        size_t k = strlen(l->v[i]);
        if (i)
            *p++ = ' ';
        memcpy(p, l->v[i], k);
        p += k;
    }
    *p = 0;
    return r;
}
