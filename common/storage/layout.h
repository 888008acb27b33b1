/* layout: where a training run's inputs and outputs live (DESIGN.md "Storage layout"):
 *   ROOT/LANG/pretrained/{lm.safetensors,vocab.txt}   ROOT/LANG/data/{train.csv,valid.csv,corpus.txt}
 *   ROOT/MODELDIR/LANG/JOB/RUN/{model.safetensors,vocab.txt,config.json,metrics.json,history.csv,curves.svg}
 * ROOT comes from --bucket-name: "B" means gs://B; "gs://B[/prefix]", "file:///dir" and local paths
 * (anything with a '/') are used as given. Every field can be overridden. */
#ifndef KUBEFIT_STORAGE_LAYOUT_H
#define KUBEFIT_STORAGE_LAYOUT_H

typedef struct {
    const char *bucket;    /* required */
    const char *lang;      /* required: contract_language_check's rule, e.g. "fr", "pt-BR" */
    const char *model_dir; /* relative folder under the root (no "..", no leading '/'); NULL: "models" */
    const char *job;       /* NULL: "default" */
    const char *run;       /* NULL: "1" */
    const char *data_dir;  /* inputs from here (DIR/pretrained/..., DIR/data/...) instead of ROOT/LANG */
    /* per-file overrides: full URIs or paths; NULL keeps the default */
    const char *lm, *vocab_in, *train, *valid, *corpus, *output_dir;
} storage_layout_options;

typedef struct {
    char *root;       /* "gs://B", "file:///dir" or "dir" (no trailing '/') */
    char *lm;         /* pretrained language model (optional input) */
    char *vocab_in;   /* its vocabulary (optional input) */
    char *train;      /* labelled training texts */
    char *valid;      /* optional validation texts */
    char *corpus;     /* optional unlabelled text */
    char *output_dir; /* ends with '/' */
    char *model, *vocab, *config, *metrics, *history, *curves; /* output_dir + file name */
} storage_layout;

/* Fills out (dispose with storage_layout_dispose); KF_EINVAL naming the bad field otherwise. */
int storage_layout_init(storage_layout *out, const storage_layout_options *opt);
void storage_layout_dispose(storage_layout *l);
/* output_dir + name, e.g. storage_layout_output(l, "checkpoint.safetensors"). Caller frees. */
char *storage_layout_output(const storage_layout *l, const char *name);

#endif
