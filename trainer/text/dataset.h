/* dataset: labelled texts from CSV or JSON lines, and a seeded, hash-based train/valid split.
 * CSV: a header row; a text column (default "text") and either one label column (default
 *   "labels") holding labels separated by ';' (configurable) or one 0/1 column per label
 *   (opts.label_cols, or, when the label column is absent and none are named, every column
 *   other than the text column).
 *   Without a "labels" column (and no label_col given), a column "label" is the label column
 *   (the common text,label header); the text column may not also be the label column.
 * JSON lines: one object per line {"text": "...", "labels": ["a", "b"]} ("labels" may also be
 *   one string, split on the separator; without "labels", "label" is read); blank lines are
 *   ignored.
 * Label names must be valid UTF-8 without control characters; a bad one is a bad row naming
 * file:line and the column or key. NUL bytes in texts become U+FFFD.
 * Labels are sorted by name (byte order) and numbered from 0. A malformed row is an error naming
 * file:line, or, with skip_bad_rows, skipped and counted (first few logged). */
#ifndef KUBEFIT_TEXT_DATASET_H
#define KUBEFIT_TEXT_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ds_example {
    char *text;          /* UTF-8, owned */
    uint32_t *labels;    /* label ids, ascending, no duplicates; owned (NULL when none) */
    size_t n_labels;
    long line;           /* line in the source file where the row starts */
} ds_example;

typedef struct ds_dataset {
    ds_example *ex;
    size_t n, cap;
    char **label_names;  /* label_names[id], sorted, owned */
    size_t n_label_names;
    size_t skipped;      /* bad rows skipped (skip_bad_rows) */
} ds_dataset;

typedef enum { DS_FORMAT_AUTO = 0, DS_FORMAT_CSV, DS_FORMAT_JSONL } ds_format;

typedef struct ds_opts {
    ds_format format;            /* AUTO: .jsonl/.json/.ndjson -> JSONL, otherwise CSV */
    const char *text_col;        /* NULL -> "text" (CSV column and JSON key) */
    const char *label_col;       /* NULL -> "labels", else "label" */
    const char *const *label_cols; /* NULL-terminated 0/1 columns (CSV); NULL -> see above */
    char label_sep;              /* 0 -> ';' */
    bool skip_bad_rows;          /* skip and count instead of failing */
    bool allow_unlabelled;       /* rows with no label are kept (else: an error/skip) */
} ds_opts;

/* A zeroed ds_dataset is valid and empty. ds_dispose frees everything; NULL is fine. */
void ds_init(ds_dataset *d);
void ds_dispose(ds_dataset *d);

/* Loads a file. opts may be NULL. Errors: KF_EIO (cannot read path), KF_EINVAL ("path:line:
 * ..."), KF_ENOMEM. On error *out is left empty. */
int ds_load(ds_dataset *out, const char *path, const ds_opts *opts);
/* Same from memory; name is used in messages and for the AUTO format choice. */
int ds_load_buffer(ds_dataset *out, const char *buf, size_t len, const char *name,
                   const ds_opts *opts);

/* Labels of a data set that are not in the label space it is mapped onto (ds_relabel). */
typedef struct ds_unseen {
    size_t rows;    /* examples that named at least one unseen label */
    size_t labels;  /* unseen label uses, all rows together */
    char **names;   /* the distinct unseen names, in order of first use (owned) */
    size_t n_names;
} ds_unseen;
void ds_unseen_dispose(ds_unseen *u);

/* Re-expresses d's labels in the label space names[0..n) (e.g. a valid set in the train set's
 * labels). Labels of d not in names are dropped from their examples (an example may be left
 * with none: see ds_drop_unlabelled) and described in *unseen (may be NULL; dispose it). */
int ds_relabel(ds_dataset *d, char *const *names, size_t n, ds_unseen *unseen);
/* Removes the examples that have no label; returns how many. */
size_t ds_drop_unlabelled(ds_dataset *d);

/* Stable split: an example goes to valid when hash(seed, text) / 2^64 < valid_frac, so the
 * result depends only on the text, the seed and the fraction (not on order or row count).
 * Both outputs get a copy of all's label names. all is left untouched. 0, KF_EINVAL
 * (valid_frac outside [0,1]), KF_ENOMEM. */
int ds_split(ds_dataset *train, ds_dataset *valid, const ds_dataset *all, double valid_frac,
             uint64_t seed);
/* The hash ds_split uses (64-bit, seeded); exposed so tests and scripts can reproduce it. */
uint64_t ds_hash(const char *s, size_t len, uint64_t seed);

/* A NUL-terminated copy of text[0..len) with every NUL byte written as U+FFFD (what the loaders
 * store, so one NUL does not cut a text short or fail a file). Caller frees; NULL when out of
 * memory. */
char *ds_text_copy(const char *text, size_t len);

/* true when every example has exactly one label (softmax + CE instead of sigmoid + BCE). */
bool ds_single_label(const ds_dataset *d);

#endif
