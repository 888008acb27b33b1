/* history: the progress points of each job's current run, as status.progress changed in the
 * controller's watch of TrainingJobs (every replica sees every change, whichever replica wrote
 * it), for the console's live curves. In memory only: a restarted controller starts the curves
 * again from the progress in status. Bounded: max_points per job (when full, every other point
 * is dropped, so the whole run keeps its shape) and max_jobs (the least recently updated job is
 * forgotten first). Thread-safe.
 *
 * A point: {"t":seconds,"run":N,"stage":"...","epoch":E,"epochs":N,"step":S,"steps":N,
 *           "loss":x,"percent":p,"etaSeconds":s} (keys absent from the report are absent). */
#ifndef KUBEFIT_HISTORY_H
#define KUBEFIT_HISTORY_H

#include <jansson.h>
#include <stddef.h>

typedef struct history history;

/* 0s: 256 jobs, 600 points. */
history *history_new(size_t max_jobs, size_t max_points);
void history_free(history *h);

/* Looks at a job from a watch event (type ADDED, MODIFIED, DELETED). Returns the new point when
 * its status.progress brought one (caller decrefs), else NULL. */
json_t *history_observe(history *h, const char *type, const json_t *job);

/* The points of the job's latest run, oldest first (a new array; caller decrefs). */
json_t *history_points(history *h, const char *ns, const char *name);

#endif
