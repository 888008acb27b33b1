/* unicode: UTF-8 <-> code points and table lookups (see unicode.h). */
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

bool uc_in(const uc_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

bool uc_is_space(uint32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f);
    return uc_in(uc_space, uc_space_len, cp);
}

bool uc_is_word(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
               cp == '_';
    return uc_in(uc_word, uc_word_len, cp);
}

bool uc_is_cased(uint32_t cp) { return uc_in(uc_cased, uc_cased_len, cp); }
bool uc_is_case_ignorable(uint32_t cp) { return uc_in(uc_case_ignorable, uc_case_ignorable_len, cp); }
bool uc_is_extend(uint32_t cp) { return cp >= 0x300 && uc_in(uc_extend, uc_extend_len, cp); }

size_t uc_lower_cp(uint32_t cp, uint32_t out[3])
{
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    size_t lo = 0, hi = uc_lower_map_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uc_lower_map[mid].cp == cp) {
            size_t n = 0;
            while (n < 3 && uc_lower_map[mid].lower[n])
                out[n] = uc_lower_map[mid].lower[n], n++;
            return n;
        }
        if (uc_lower_map[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    out[0] = cp;
    return 1;
}

const char *uc_entity_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = uc_entities_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *e = uc_entities[mid].name;
        size_t elen = strlen(e);
        int c = memcmp(name, e, len < elen ? len : elen);
        if (c == 0)
            c = len < elen ? -1 : len > elen ? 1 : 0;
        if (c == 0)
            return uc_entities[mid].value;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

void uc_str_dispose(uc_str *s)
{
    if (!s)
        return;
    free(s->v);
    memset(s, 0, sizeof *s);
}

int uc_str_reserve(uc_str *s, size_t extra)
{
    if (extra <= s->cap - s->n)
        return 0;
    if (extra > SIZE_MAX / sizeof(uint32_t) / 2 - s->n)
        return err_set(KF_ENOMEM, "text: string too long");
    size_t cap = s->cap ? s->cap : 64;
    while (cap - s->n < extra)
        cap *= 2;
    uint32_t *v = realloc(s->v, cap * sizeof *v);
    if (!v)
        return err_set(KF_ENOMEM, "text: out of memory (%zu code points)", cap);
    s->v = v;
    s->cap = cap;
    return 0;
}

int uc_str_push(uc_str *s, uint32_t cp)
{
    int rc = uc_str_reserve(s, 1);
    if (rc == 0)
        s->v[s->n++] = cp;
    return rc;
}

int uc_str_append(uc_str *s, const uint32_t *v, size_t n)
{
    int rc = uc_str_reserve(s, n);
    if (rc == 0 && n) {
        memcpy(s->v + s->n, v, n * sizeof *v);
        s->n += n;
    }
    return rc;
}

int uc_str_append_utf8(uc_str *s, const char *utf8, size_t len) { return uc_decode(s, utf8, len); }

int uc_str_append_ascii(uc_str *s, const char *ascii)
{
    size_t n = strlen(ascii);
    int rc = uc_str_reserve(s, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        s->v[s->n++] = (unsigned char)ascii[i];
    return rc;
}

int uc_str_append_uint(uc_str *s, size_t x)
{
    char buf[24];
    size_t i = sizeof buf;
    buf[--i] = 0;
    do {
        buf[--i] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    return uc_str_append_ascii(s, buf + i);
}

size_t uc_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        need = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return need;
}

/* Length of the maximal prefix of an invalid sequence (at least 1), per Unicode's practice. */
static size_t invalid_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 1;
    size_t i = 1;
    for (; i < need && i < len; i++) {
        unsigned char lo = 0x80, hi = 0xbf;
        if (i == 1) {
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        }
        if (s[i] < lo || s[i] > hi)
            break;
    }
    return i;
}

int uc_decode(uc_str *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    int rc = uc_str_reserve(out, len);
    size_t i = 0;
    while (rc == 0 && i < len) {
        uint32_t cp;
        size_t k = uc_utf8_next(s + i, len - i, &cp);
        if (k == 0) {
            cp = 0xfffd;
            k = invalid_len(s + i, len - i);
        }
        out->v[out->n++] = cp;   /* never more code points than bytes: reserved above */
        i += k;
    }
    return rc;
}

int uc_encode(char **out, size_t *out_len, const uint32_t *v, size_t n)
{
    *out = NULL;
    if (n > (SIZE_MAX - 1) / 4)
        return err_set(KF_ENOMEM, "text: string too long");
    unsigned char *b = malloc(n * 4 + 1), *p = b;
    if (!b)
        return err_set(KF_ENOMEM, "text: out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t c = v[i];
        if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            c = 0xfffd;
        if (c < 0x80) {
            *p++ = (unsigned char)c;
        } else if (c < 0x800) {
            *p++ = (unsigned char)(0xc0 | (c >> 6));
            *p++ = (unsigned char)(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            *p++ = (unsigned char)(0xe0 | (c >> 12));
            *p++ = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
            *p++ = (unsigned char)(0x80 | (c & 0x3f));
        } else {
            *p++ = (unsigned char)(0xf0 | (c >> 18));
            *p++ = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
            *p++ = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
            *p++ = (unsigned char)(0x80 | (c & 0x3f));
        }
    }
    *p = 0;
    if (out_len)
        *out_len = (size_t)(p - b);
    *out = (char *)b;
    return 0;
}
