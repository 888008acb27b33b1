/* vocab: token counts, fastai's make_vocab, numericalisation, vocab files.
 * make_vocab: the max_vocab most frequent tokens (ties: first seen first) with count >= min_freq,
 * the 9 specials moved to the front (ids 0..8, xxunk = 0), cut to max_vocab, then
 * 8 - len % 8 "xxfake" tokens appended (8 when len is already a multiple of 8, as fastai does).
 * Unknown tokens (and xxfake) numericalise to 0 (xxunk).
 * Vocab file: UTF-8, one token per line, '\n' line ends, line i = id i. The newline token is
 * written as the two characters "\n" (a lone backslash is always its own token, so this is
 * unambiguous). Reading rejects: empty file, empty line, whitespace or control characters in a
 * token, invalid UTF-8, a duplicate token (xxfake excepted), specials not at ids 0..8 - each
 * error names file:line. */
#ifndef KUBEFIT_TEXT_VOCAB_H
#define KUBEFIT_TEXT_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "tokens.h"

#define VOCAB_DEFAULT_MAX 60000
#define VOCAB_DEFAULT_MIN_FREQ 3

typedef struct vocab_counter vocab_counter;
typedef struct vocab vocab;

/* Caller frees with vocab_counter_free. NULL on out of memory (err set). */
vocab_counter *vocab_counter_new(void);
void vocab_counter_free(vocab_counter *c);
/* Counts every token of toks. 0 or KF_ENOMEM. */
int vocab_counter_add(vocab_counter *c, const tok_list *toks);
/* Count of one token (0 when never seen); number of distinct tokens. */
uint64_t vocab_counter_get(const vocab_counter *c, const char *tok);
size_t vocab_counter_size(const vocab_counter *c);

typedef struct vocab_opts {
    size_t max_vocab;   /* 0 -> VOCAB_DEFAULT_MAX (60000) */
    uint64_t min_freq;  /* 0 -> VOCAB_DEFAULT_MIN_FREQ (3) */
    /* NULL, or a pretrained model's vocabulary (borrowed): a token it holds needs one use, not
     * min_freq (its pretrained embedding carries meaning even when the task's texts use it once;
     * the order stays by count, and max_vocab still caps). */
    const struct vocab *known;
} vocab_opts;

/* fastai's make_vocab. opts may be NULL. *out: caller frees with vocab_free. */
int vocab_build(vocab **out, const vocab_counter *c, const vocab_opts *opts);
/* A vocab from an explicit token list (validated like a file; name is used in messages). */
int vocab_from_tokens(vocab **out, const char *const *toks, size_t n, const char *name);
void vocab_free(vocab *v);

size_t vocab_size(const vocab *v);                     /* including xxfake padding */
const char *vocab_token(const vocab *v, int32_t id);   /* NULL when id is out of range */
int32_t vocab_id(const vocab *v, const char *tok);     /* 0 (xxunk) when unknown */

/* ids[i] = vocab_id(toks->v[i]) for i < toks->n; ids holds toks->n entries. */
void vocab_encode(int32_t *ids, const vocab *v, const tok_list *toks);
/* Same, allocating: *ids (caller frees with free) and *n. 0 or KF_ENOMEM. */
int vocab_numericalize(int32_t **ids, size_t *n, const vocab *v, const tok_list *toks);

/* Why tok cannot be a vocabulary entry ("control character in token", ...), or NULL. */
const char *vocab_token_problem(const char *tok);

/* Vocab files. Errors: KF_EIO (open/read/write, with path), KF_EINVAL (content, path:line). */
int vocab_read(vocab **out, const char *path);
int vocab_parse(vocab **out, const char *buf, size_t len, const char *name);
int vocab_write(const vocab *v, const char *path);

#endif
