/* utf8: checking UTF-8 and making any bytes printable as UTF-8 (log fields, result messages,
 * label names quoted in errors). Valid means what JSON (and jansson) accept: no overlong forms,
 * no surrogates, nothing above U+10FFFF. */
#ifndef KUBEFIT_UTF8_H
#define KUBEFIT_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s[0..len) (1-4), or 0 when s starts with an invalid or
 * truncated one. len must be > 0. */
size_t utf8_seq_len(const char *s, size_t len);
/* 1 when s[0..len) is entirely valid UTF-8; else 0 and *bad (may be NULL) = offset of the first
 * invalid byte. */
int utf8_valid(const char *s, size_t len, size_t *bad);
/* A NUL-terminated copy of s[0..len) where every byte that is not part of a valid sequence (and
 * every NUL byte) is written as the four characters \xNN (hex, lower case): the result is valid
 * UTF-8 and shows the bytes that were there. Caller frees; NULL when out of memory. */
char *utf8_escape(const char *s, size_t len);
/* Like utf8_escape, and control characters too (C0 and DEL as \xNN, C1 as \uNNNN): for quoting
 * input in a one-line message. */
char *utf8_quote(const char *s, size_t len);

#endif
