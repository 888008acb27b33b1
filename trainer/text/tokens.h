/* tokens: a growable list of owned UTF-8 token strings (what the tokenizer produces). */
#ifndef KUBEFIT_TEXT_TOKENS_H
#define KUBEFIT_TEXT_TOKENS_H

#include <stddef.h>

typedef struct tok_list {
    char **v;      /* v[i]: NUL-terminated UTF-8, owned by the list */
    size_t n, cap;
} tok_list;

/* A zeroed tok_list is a valid empty list; tok_list_init zeroes one. */
void tok_list_init(tok_list *l);
/* Frees every token and the array; the list is empty and reusable afterwards. NULL is fine. */
void tok_list_dispose(tok_list *l);
/* Drops the tokens but keeps the allocation. */
void tok_list_clear(tok_list *l);
/* Appends a copy of s[0..len). Returns 0 or KF_ENOMEM. */
int tok_list_push(tok_list *l, const char *s, size_t len);
/* Appends s itself (the list takes ownership; on error s is freed). 0 or KF_ENOMEM. */
int tok_list_push_owned(tok_list *l, char *s);
/* Tokens joined with single spaces; caller frees. NULL on out of memory (err set). */
char *tok_list_join(const tok_list *l);

#endif
