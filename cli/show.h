/* show: what kubefit prints about a TrainingJob - the table of `kubefit get` (the CRD's printer
 * columns), the page of `kubefit status`, the live progress line, and the summary a finished run
 * ends with. Multi-label runs lead with micro-F1 and macro-F1 (their accuracy is per label and
 * flattered by the many absent labels); single-label runs with accuracy. */
#ifndef KUBEFIT_SHOW_H
#define KUBEFIT_SHOW_H

#include <stdio.h>

#include <jansson.h>

/* "45s", "3m05s", "2h04m", "3d4h". */
void show_duration(char *out, size_t n, double seconds);

/* One line of progress: "classifier epoch 3/8  42%  loss 0.123  ETA 1m20s", with a bar
 * "[#####.....]" in front when bar_width > 0. */
void show_progress_text(char *out, size_t n, const json_t *progress, int bar_width);

/* kubectl-style table of jobs (array of TrainingJobs) with the CRD's printer columns; wide adds
 * the priority > 0 ones; all_namespaces adds NAMESPACE. now: seconds since the epoch (ages). */
typedef struct {
    const json_t *columns; /* additionalPrinterColumns */
    int wide, all_namespaces, no_headers;
    double now;
} show_table_opts;
void show_table(FILE *f, const json_t *jobs, const show_table_opts *o);

/* The status page of one job (kubefit status). */
void show_status(FILE *f, const json_t *job, double now, int tty);

/* The metrics of a run: the headline numbers, then the best and worst labels. metrics: the
 * status.metrics / result "metrics" object (may hold "labels" and "trainSeconds"); full: the
 * run's metrics.json when it could be read (all labels, data sizes), else NULL. */
void show_metrics(FILE *f, const json_t *metrics, const json_t *full, const char *indent);

/* The closing lines of a finished run: outcome, metrics, where the model and metrics are. */
void show_summary(FILE *f, const json_t *job, const json_t *full);

#endif
