#include "b64.h"

#include <stdint.h>
#include <stdlib.h>

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n, int url)
{
    if (n > (SIZE_MAX / 4 - 1) * 3)
        return SIZE_MAX;
    return url ? (n * 4 + 2) / 3 : (n + 2) / 3 * 4;
}

void b64_encode_to(char *out, const void *data, size_t n, int url)
{
    const unsigned char *p = data;
    const char *a = url ? url_alpha : std_alpha;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *out++ = a[v >> 18], *out++ = a[(v >> 12) & 63], *out++ = a[(v >> 6) & 63], *out++ = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *out++ = a[v >> 18], *out++ = a[(v >> 12) & 63];
        if (!url)
            *out++ = '=', *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *out++ = a[v >> 18], *out++ = a[(v >> 12) & 63], *out++ = a[(v >> 6) & 63];
        if (!url)
            *out++ = '=';
    }
    *out = '\0';
}

char *b64_encode(const void *data, size_t n, int url)
{
    size_t len = b64_encoded_len(n, url);
    if (len == SIZE_MAX)
        return NULL;
    char *out = malloc(len + 1);
    if (out)
        b64_encode_to(out, data, n, url);
    return out;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

unsigned char *b64_decode(const char *s, size_t len, size_t *n)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return NULL;
    unsigned char *out = malloc(len / 4 * 3 + 3), *o = out;
    if (!out)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (unsigned char)(acc >> bits);
        }
    }
    *n = (size_t)(o - out);
    *o = '\0';
    return out;
}
