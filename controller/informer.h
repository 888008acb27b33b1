/* informer: list + watch one resource collection into a cache keyed "namespace/name".
 * A thread lists (paginated), then watches from the list's resourceVersion with bookmarks;
 * on 410 Gone (HTTP status or ERROR event) it relists and reports the difference, on other
 * errors it reconnects with exponential backoff. Handlers only see events (the object is
 * borrowed for the call). Objects are trimmed before they are cached (no
 * managedFields; a trim callback may keep less), and an optional label index answers
 * "the objects of namespace N whose label L is V" without scanning the cache. The cache holds
 * each object as compact JSON text (a parsed object takes several times the memory); readers
 * get their own parsed copy. Readers take a shared lock; only the watch thread writes. */
#ifndef KUBEFIT_INFORMER_H
#define KUBEFIT_INFORMER_H

#include "kube.h"

typedef struct informer informer;

/* type: ADDED, MODIFIED, DELETED. obj is borrowed for the call. */
typedef void (*informer_handler)(void *ctx, const char *type, const json_t *obj);
/* Returns what to cache of obj: a new reference (obj itself, or a smaller copy), or NULL for out
 * of memory. metadata.managedFields is dropped before it is called. */
typedef json_t *(*informer_trim)(json_t *obj);

typedef struct {
    kube_client *kube;
    const char *name;           /* for logs and metrics: "trainingjobs", "pods" */
    const char *collection;     /* "/apis/kubefit.dev/v1alpha1/trainingjobs" */
    const char *label_selector; /* or NULL */
    long page_size;             /* list limit; 0: 500 */
    long watch_timeout_s;       /* 0: 300 */
    double backoff_min_s, backoff_max_s; /* reconnect backoff; 0: 0.2 and 30 */
    informer_handler on_event;
    void *ctx;
    informer_trim trim;         /* or NULL: cache what the server sent, less managedFields */
    const char *index_label;    /* or NULL: index objects by namespace + this label's value */
} informer_options;

typedef struct {
    long relists, watch_restarts, events, errors;
} informer_stats;

informer *informer_new(const informer_options *opt);
int informer_start(informer *inf);
/* Stops the thread (cancels the watch within about a second) and joins it. */
void informer_stop(informer *inf);
void informer_free(informer *inf);
/* True after the first complete list. */
int informer_synced(informer *inf);
/* A new object holding the cached one (parsed for this caller: it may keep or change it), or
 * NULL. Caller decrefs. */
json_t *informer_get(informer *inf, const char *ns, const char *name);
/* A new array of the cached objects (parsed for this caller) whose label key equals value (both
 * NULL: all); through the index when key is the index label. Caller decrefs. */
json_t *informer_list(informer *inf, const char *ns, const char *label_key, const char *label_value);
informer_stats informer_get_stats(informer *inf);
/* Applies one watch event (ADDED, MODIFIED, DELETED) as the watch thread does; obj may be
 * modified (trimmed). For tests that drive the cache without a server. */
int informer_apply(informer *inf, const char *type, json_t *obj);

/* "namespace/name" of an object; caller frees. */
char *informer_key(const json_t *obj);

#endif
