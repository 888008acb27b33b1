/* loader: a model to serve from its URI, through the storage layer - the run folder the trainer
 * wrote (gs://B/D/LANG/JOB/RUN/, file:///..., a path) or that folder's model.safetensors. Reads
 * model.safetensors and vocab.txt (both required) and config.json (optional: the served version
 * and name come from its "run" and "job"). gs:// files are downloaded to a fresh folder under
 * work_dir and removed once the model is in memory; local files are read where they are. */
#ifndef KUBEFIT_SERVE_LOADER_H
#define KUBEFIT_SERVE_LOADER_H

#include "batcher.h"
#include "infer.h"
#include "storage/storage.h"

typedef struct {
    storage *st;          /* borrowed */
    const char *uri;      /* required */
    const char *work_dir; /* NULL: $TMPDIR, else /tmp */
    const char *name;     /* served name; NULL: config.json "job", else "kubefit" */
    infer_options infer;  /* device, threads, max_batch, lang, threshold (paths are filled here) */
    int replicas;         /* copies of the model to load (one per inference worker); <= 0: 1 */
} loader_options;

/* Loads the model (replicas copies of it); KF_ENOTFOUND naming the missing file, KF_EINVAL for a bad model, storage and
 * device errors as they come. Caller frees with batcher_model_free (or hands it to a batcher). */
int loader_load(batcher_model **out, const loader_options *o);

/* The folder URI of uri (ends with '/'): uri itself for a folder, its parent for a URI ending in
 * ".safetensors". Caller frees; NULL when out of memory. */
char *loader_folder(const char *uri);

#endif
