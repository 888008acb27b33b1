/* watch: the decoder of a Kubernetes watch stream: newline-delimited JSON event objects
 * {"type":"ADDED","object":{...}} arriving in chunks split anywhere. ERROR events become return
 * codes (KF_EGONE for code 410, else KF_ERETRY with the Status message). */
#ifndef KUBEFIT_WATCH_H
#define KUBEFIT_WATCH_H

#include "kube.h"

#include <stddef.h>

#define WATCH_MAX_LINE ((size_t)64 << 20) /* one event object larger than this is refused */

typedef struct {
    char *buf;   /* bytes of the incomplete last line */
    size_t len, cap;
    size_t max_line; /* 0: WATCH_MAX_LINE */
    int stopped;     /* the callback asked to stop */
} watch_parser;

/* Feeds one chunk. Calls fn for each complete event (the object is borrowed for the call).
 * Returns 0, or a negative code: KF_EINVAL (malformed event), KF_EGONE, KF_ERETRY (ERROR event),
 * KF_ENOMEM. After an error or a stop the parser should not be fed again. */
int watch_parser_feed(watch_parser *p, const char *data, size_t len, kube_watch_fn fn, void *ctx);
/* Call at end of stream: a non-empty unterminated remainder is decoded as a last event. */
int watch_parser_finish(watch_parser *p, kube_watch_fn fn, void *ctx);
void watch_parser_dispose(watch_parser *p);

#endif
