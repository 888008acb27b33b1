/* data: the training data of one run, tokenised and numericalised, and its batches.
 *
 * Dimension legend: B batch, T time (BPTT chunk), S padded sequence length, L labels.
 * Classifier: texts + labels (train.csv, optional valid.csv or a seeded split). Language model:
 * the train texts, the valid texts (unlabelled use is fine) and corpus.txt lines, with 10% of
 * the documents (hash split) held out for LM validation.
 * The vocabulary is built from the LM documents as fastai's make_vocab (max 60000, min_freq 3). */
#ifndef KUBEFIT_DATA_H
#define KUBEFIT_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "tokenizer.h"
#include "vocab.h"

typedef struct {
    int32_t *ids; /* [n], starts with xxbos */
    size_t n;
} data_doc;

typedef struct {
    data_doc *v;
    size_t n;
} data_docs;

typedef struct {
    vocab *vocab;
    tok_lang lang;
    char **labels;      /* [n_labels], owned */
    size_t n_labels;
    int multi_label;
    data_docs train, valid;  /* classifier */
    float *train_y, *valid_y; /* multi-label: [n, L] 0/1; single-label: [n] class index */
    data_docs lm_train, lm_valid;
    size_t skipped_rows;
    /* Validation labels the label space lacks (a valid file's labels that train never has; in
     * evaluate, labels the model lacks): ignored in multi-label rows; single-label rows left
     * without a label are dropped (valid_dropped_rows). Reported in metrics.json. */
    ds_unseen valid_unseen;
    size_t valid_dropped_rows;
} data_set;

/* How many unseen label names metrics.json and the log show (the count is always whole). */
#define DATA_UNSEEN_SHOWN 10 /* = REPORT_UNSEEN_SHOWN */

typedef struct {
    /* Files: CSV or JSON lines by their name (.csv / .jsonl, .ndjson, .json: dataset.h); the
     * corpus likewise, or plain text (one document per line) under any other name. */
    const char *train_path;   /* required (local file) */
    const char *valid_path;   /* NULL: seeded split of train */
    const char *corpus_path;  /* NULL: none; one document per line */
    const char *lang;         /* "en", "fr", ... */
    const vocab *vocab;       /* NULL: build one; else use it (borrowed; copied by tokens) */
    double valid_frac;        /* default 0.2 */
    uint64_t seed;
    int skip_bad_rows;
    size_t max_vocab;         /* 0: 60000 */
    uint64_t min_freq;        /* 0: 3 */
    const vocab *known_vocab; /* NULL, or the pretrained LM's (borrowed): its tokens need one use
                               * in the task's texts, not min_freq (vocab_opts.known) */
    int lm_only;              /* pretrain: labels not needed (train file may be the corpus) */
    int label_mode;           /* 0: infer (a row with != 1 label -> multi); 1: multi; 2: single
                               * (KF_EINVAL naming the first row that has != 1 label) */
    const char *text_col, *label_col; /* NULL: dataset.h's defaults */
    char label_sep;           /* 0: ';' */
} data_options;

/* Loads, splits, tokenises, builds the vocabulary and numericalises. KF_EINVAL names the file
 * and line of bad input. Caller disposes with data_dispose. */
int data_load(data_set *out, const data_options *o);
void data_dispose(data_set *d);
/* evaluate: o->valid_path's labelled texts in a trained model's label space (labels[0..n), its
 * mode) and vocabulary (o->vocab, required), into out->valid / out->valid_y; unseen labels as in
 * data_load. */
int data_load_eval(data_set *out, const data_options *o, char *const *labels, size_t n_labels, int multi_label);
/* true for names the data loaders read as a table (.csv, .jsonl, .ndjson, .json). */
bool data_is_table(const char *path);
/* Tokenises and numericalises one text (predict). Caller frees *ids. */
int data_encode(int32_t **ids, size_t *n, const vocab *v, tok_lang lang, const char *text);
/* The same for text[0..len) (a NUL byte inside becomes U+FFFD, as tok_words says). */
int data_encode_n(int32_t **ids, size_t *n, const vocab *v, tok_lang lang, const char *text, size_t len);

/* ---- language-model batches (fastai LMDataLoader) ----
 * The documents (shuffled per epoch when seed != 0) are concatenated into one stream that is
 * cut into B rows of m = (N-1)/B tokens; chunk k holds x = row[k*T .. k*T+t), y = x shifted by
 * one token. */
typedef struct {
    int32_t *stream; /* [N] */
    size_t len;
    int B;
    size_t m;
} data_lm;

int data_lm_build(data_lm *out, const data_docs *docs, int B, uint64_t shuffle_seed);
void data_lm_dispose(data_lm *l);
size_t data_lm_chunks(const data_lm *l, int T);
/* Fills x, y (B, t) for chunk k; returns t (> 0), or 0 past the end. */
int data_lm_chunk(const data_lm *l, size_t k, int T, int32_t *x, int32_t *y);

/* ---- classifier batches (fastai SortedDL + pad_input_chunk) ----
 * Order: validation longest first; training: a seeded shuffle, then within blocks of 50*B the
 * documents sorted longest first, batches shuffled (keeps similar lengths together).
 * A batch of b documents is padded pad-first by chunks of seq_len to the longest length S:
 * for a document of n tokens, l = S - n pads: (l / seq_len) * seq_len before it, l % seq_len
 * after it (fastai pad_chunk). */
int data_clf_order(size_t *order, const data_docs *docs, int B, uint64_t shuffle_seed);
/* tokens (b, S) and pad (b, S) (1 = pad) for documents idx[0..b); caller frees both.
 * Rows are sorted longest first inside the batch; perm[i] gives the document index of row i. */
int data_clf_batch(int32_t **tokens, uint8_t **pad, int *S, size_t *perm, const data_docs *docs,
                   const size_t *idx, int b, int seq_len, int pad_id);
/* The same with S rounded up to a multiple of seq_len when aligned (inference): then every row
 * ends in the last chunk and starts a chunk, so the SentenceEncoder runs each row over all of its
 * tokens from a zero state and pools the same positions as for that row alone. Without it (fastai's
 * batches) a short row whose text lies in the final partial chunk can be left out of that chunk
 * when a longer row has only padding there (SentenceEncoder runs the first real_bs rows). */
int data_clf_batch_aligned(int32_t **tokens, uint8_t **pad, int *S, size_t *perm, const data_docs *docs,
                           const size_t *idx, int b, int seq_len, int pad_id, int aligned);

#endif
