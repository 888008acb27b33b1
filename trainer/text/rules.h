/* rules: fastai v2's pre-tokenization rules and special tokens (fastai/text/core.py), same
 * order and same output, string for string: fix_html, replace_rep, replace_wrep,
 * spec_add_spaces, rm_useless_spaces, replace_all_caps, replace_maj, lowercase (add_bos=True,
 * add_eos=False); then, per token, the post rule replace_space.
 * Strings are UTF-8; invalid bytes are read as U+FFFD (Python's errors="replace"). */
#ifndef KUBEFIT_TEXT_RULES_H
#define KUBEFIT_TEXT_RULES_H

#include <stddef.h>

#include "tokens.h"

#define TOK_UNK "xxunk"
#define TOK_PAD "xxpad"
#define TOK_BOS "xxbos"
#define TOK_EOS "xxeos"
#define TOK_FLD "xxfld"
#define TOK_REP "xxrep"
#define TOK_WREP "xxwrep"
#define TOK_UP "xxup"
#define TOK_MAJ "xxmaj"
#define TOK_FAKE "xxfake"   /* vocab padding (make_vocab) */

/* fastai's defaults.text_spec_tok, in order: xxunk=0, xxpad=1, xxbos=2, ... xxmaj=8. */
enum { TOK_ID_UNK, TOK_ID_PAD, TOK_ID_BOS, TOK_ID_EOS, TOK_ID_FLD, TOK_ID_REP, TOK_ID_WREP,
       TOK_ID_UP, TOK_ID_MAJ, TOK_N_SPECIALS };
extern const char *const tok_specials[TOK_N_SPECIALS];

/* fastai's defaults.text_proc_rules, in their order. */
typedef enum {
    TOK_RULE_FIX_HTML,
    TOK_RULE_REPLACE_REP,
    TOK_RULE_REPLACE_WREP,
    TOK_RULE_SPEC_ADD_SPACES,
    TOK_RULE_RM_USELESS_SPACES,
    TOK_RULE_REPLACE_ALL_CAPS,
    TOK_RULE_REPLACE_MAJ,
    TOK_RULE_LOWERCASE,
    TOK_N_RULES
} tok_rule;

/* fastai's function name ("fix_html", ...); NULL for an unknown rule. */
const char *tok_rule_name(tok_rule rule);

/* Applies one rule to text[0..len). *out: new NUL-terminated string, caller frees; *out_len its
 * length (may be NULL). Returns 0, KF_EINVAL (bad rule) or KF_ENOMEM. */
int tok_rule_apply(char **out, size_t *out_len, tok_rule rule, const char *text, size_t len);

/* All eight rules in the default order (the string fastai hands to spaCy). Same contract. */
int tok_rules_apply(char **out, size_t *out_len, const char *text, size_t len);

/* Post rule replace_space: every ' ' in each token becomes U+2581 '▁'. 0 or KF_ENOMEM. */
int tok_replace_space(tok_list *toks);

#endif
