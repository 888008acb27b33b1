/* utf8: validation and \xNN escaping of invalid bytes. See utf8.h. */
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

size_t utf8_seq_len(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (u[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int utf8_valid(const char *s, size_t len, size_t *bad)
{
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq_len(s + i, len - i);
        if (!k) {
            if (bad)
                *bad = i;
            return 0;
        }
        i += k;
    }
    return 1;
}

static char *escape(const char *s, size_t len, int controls)
{
    if (len > (SIZE_MAX - 1) / 4)
        return NULL;
    char *out = malloc(4 * len + 1), *w = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c ? utf8_seq_len(s + i, len - i) : 0;
        if (controls && k == 1 && (c < 0x20 || c == 0x7f))
            k = 0;
        if (controls && k == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0) { /* C1: 2 bytes, 6 chars */
            snprintf(w, 7, "\\u%04x", (unsigned char)s[i + 1]);
            w += 6;
            i += 2;
            continue;
        }
        if (k) {
            for (size_t j = 0; j < k; j++)
                *w++ = s[i + j];
            i += k;
        } else {
            snprintf(w, 5, "\\x%02x", (unsigned char)s[i]);
            w += 4;
            i++;
        }
    }
    *w = 0;
    return out;
}

char *utf8_escape(const char *s, size_t len) { return escape(s, len, 0); }

char *utf8_quote(const char *s, size_t len) { return escape(s, len, 1); }
