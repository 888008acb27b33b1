/* unicode: code point strings (UTF-32 in memory), UTF-8 conversion, and the character classes
 * of Python's `re` / str that the fastai rules depend on (tables in unicode_tables.c, generated
 * by gen_tables.py). Internal to kubefit_text. */
#ifndef KUBEFIT_TEXT_UNICODE_H
#define KUBEFIT_TEXT_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct { uint32_t lo, hi; } uc_range;
typedef struct { uint32_t cp; uint32_t lower[3]; } uc_lower;   /* lower[] 0-terminated */
typedef struct { const char *name, *value; } uc_entity;         /* UTF-8 */
typedef struct { uint32_t num, cp; } uc_charref;

extern const uc_range uc_space[], uc_word[], uc_cased[], uc_case_ignorable[], uc_extend[],
    uc_invalid_codepoints[];
extern const size_t uc_space_len, uc_word_len, uc_cased_len, uc_case_ignorable_len,
    uc_extend_len, uc_invalid_codepoints_len;
extern const uc_lower uc_lower_map[];
extern const size_t uc_lower_map_len;
extern const uc_entity uc_entities[];          /* sorted by name (bytes) */
extern const size_t uc_entities_len, uc_entity_max_len;
extern const uc_charref uc_invalid_charrefs[];
extern const size_t uc_invalid_charrefs_len;

bool uc_in(const uc_range *r, size_t n, uint32_t cp);
bool uc_is_space(uint32_t cp);           /* re's \s (str.isspace) */
bool uc_is_word(uint32_t cp);            /* re's \w (str.isalnum or '_') */
bool uc_is_cased(uint32_t cp);           /* Cased and not Case_Ignorable */
bool uc_is_case_ignorable(uint32_t cp);
bool uc_is_extend(uint32_t cp);          /* combining marks, ZWJ, variation selectors, skin tones */
/* str.lower() of one code point (Final_Sigma aside): writes 1..3 code points, returns the count. */
size_t uc_lower_cp(uint32_t cp, uint32_t out[3]);
/* HTML5 named entity (name as bytes, with or without ';'); its UTF-8 value or NULL. */
const char *uc_entity_lookup(const char *name, size_t len);

typedef struct uc_str {
    uint32_t *v;
    size_t n, cap;
} uc_str;

void uc_str_dispose(uc_str *s);
int uc_str_reserve(uc_str *s, size_t extra);
int uc_str_push(uc_str *s, uint32_t cp);
int uc_str_append(uc_str *s, const uint32_t *v, size_t n);
int uc_str_append_utf8(uc_str *s, const char *utf8, size_t len);   /* decodes */
int uc_str_append_ascii(uc_str *s, const char *ascii);
int uc_str_append_uint(uc_str *s, size_t x);                       /* decimal */

/* Decodes UTF-8 into *out (appends). Each maximal invalid sequence becomes one U+FFFD. */
int uc_decode(uc_str *out, const char *s, size_t len);
/* Encodes to a new NUL-terminated UTF-8 string (caller frees); *out_len may be NULL. */
int uc_encode(char **out, size_t *out_len, const uint32_t *v, size_t n);
/* Length of the valid UTF-8 sequence at s[0..len) (1..4) and its code point, or 0 if invalid. */
size_t uc_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);

#endif
