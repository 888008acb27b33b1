/* stats: kubefit-serve's Prometheus metrics (text format 0.0.4 at /metrics).
 *   kubefit_serve_requests_total{route,code}          counter
 *   kubefit_serve_request_duration_seconds{route}     histogram (inference routes: receipt of the
 *                                                     whole request -> reply)
 *   kubefit_serve_batch_size                          histogram (texts per forward)
 *   kubefit_serve_queue_seconds                       histogram (oldest text's wait for its batch)
 *   kubefit_serve_inference_seconds                   histogram (one forward)
 *   kubefit_serve_texts_total, kubefit_serve_tokens_total
 *   kubefit_serve_model_loads_total{outcome}          counter (ok | error)
 *   plus the gauges the caller passes (queue depth, in flight, ready, model info).
 * Thread-safe. */
#ifndef KUBEFIT_SERVE_STATS_H
#define KUBEFIT_SERVE_STATS_H

#include <stddef.h>

typedef enum {
    STATS_V2_INFER,
    STATS_V1_PREDICT,
    STATS_TS_PREDICT,
    STATS_HEALTH,
    STATS_METADATA,
    STATS_REPOSITORY,
    STATS_METRICS,
    STATS_OTHER,
    STATS_NROUTES
} stats_route;

typedef struct stats stats;

stats *stats_new(void); /* NULL when out of memory; free with stats_free */
void stats_free(stats *s);

void stats_request(stats *s, stats_route route, int code, double seconds);
void stats_batch(stats *s, int size, double queue_s, double infer_s, size_t tokens);
void stats_model_load(stats *s, int ok);

typedef struct {
    size_t queued, in_flight;
    int ready;
    const char *model, *version, *uri; /* NULL before the first model serves */
} stats_gauges;

/* The exposition text (caller frees; *len bytes). NULL when out of memory. */
char *stats_render(stats *s, const stats_gauges *g, size_t *len);

#endif
