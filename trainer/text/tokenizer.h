/* tokenizer: the word tokenizer (our stand-in for spaCy's rule-based tokenizer) and the full
 * text -> tokens pipeline that fastai's Tokenizer runs: rules, word split, post rules.
 * Choices (docs/data.md): whitespace separates; a run of whitespace holding a line break gives one
 * "\n" token; punctuation is split off; numbers ("3.14", "1,000", "-5", "10:30"), words joined
 * by . - _ @ ' (versions, hosts, e-mails, "x86-64") and URLs ("https://..."; "www.x.org") stay one
 * token; en: "don't" -> "do" "n't", "it's" -> "it" "'s"; fr: "l'homme" -> "l'" "homme",
 * "jusqu'à" -> "jusqu'" "à". Combining marks, ZWJ emoji sequences and modifiers stay attached.
 * Stateless and thread-safe. */
#ifndef KUBEFIT_TEXT_TOKENIZER_H
#define KUBEFIT_TEXT_TOKENIZER_H

#include <stddef.h>

#include "tokens.h"

typedef enum { TOK_LANG_GENERIC = 0, TOK_LANG_EN, TOK_LANG_FR } tok_lang;

/* "en"/"fr" (also "en-GB", "fr-CA") -> that language; any other code the contract allows
 * (contract_language_check: "de", "pt-BR") -> TOK_LANG_GENERIC (no contraction rules). KF_EINVAL
 * for a code it refuses. */
int tok_lang_parse(tok_lang *out, const char *code);

/* Splits text[0..len) into words, appending to *out (no rules applied). Invalid UTF-8, NUL and
 * the control characters that are not whitespace (C0, DEL, C1) become U+FFFD, so every token is
 * one a vocabulary file can hold. 0 or KF_ENOMEM. */
int tok_words(tok_list *out, const char *text, size_t len, tok_lang lang);

/* The whole pipeline: tok_rules_apply, tok_words, tok_replace_space. Appends to *out; the first
 * token is always "xxbos". 0 or KF_ENOMEM. */
int tok_text(tok_list *out, const char *text, size_t len, tok_lang lang);

#endif
