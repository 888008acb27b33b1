/* b64: base64 (RFC 4648 §4, padded) and base64url (§5, unpadded, for JWTs). */
#ifndef KUBEFIT_STORAGE_B64_H
#define KUBEFIT_STORAGE_B64_H

#include <stddef.h>

/* Length of the encoding of n bytes, without the NUL. */
size_t b64_encoded_len(size_t n, int url);
/* Writes the encoding plus a NUL into out (b64_encoded_len(n, url) + 1 bytes). */
void b64_encode_to(char *out, const void *data, size_t n, int url);
/* Returns a new string, or NULL on overflow/out of memory. Caller frees. */
char *b64_encode(const void *data, size_t n, int url);
/* Decodes either alphabet, padding optional; returns a new buffer (*n bytes, NUL added) or NULL
 * on a character outside the alphabet. Caller frees. */
unsigned char *b64_decode(const char *s, size_t len, size_t *n);

#endif
