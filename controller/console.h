/* console: the browser console's server side - its static files, a JSON API and a WebSocket
 * feed of TrainingJob changes, all behind Kubernetes access control.
 *
 *   GET /                        the page (console/index.html, console.js, console.css: embedded)
 *   GET /api/whoami              who the caller is
 *   GET /api/jobs[?namespace=N]  the jobs the caller may list (summaries)
 *   GET /api/jobs/N/J            one job: status, conditions, per-label metrics, runs, curve points
 *   GET /api/jobs/N/J/events     Events of the job and of its current Pod
 *   GET /api/jobs/N/J/log        the tail of the trainer Pod's log (pods/log; ?tailLines=, ?pod=)
 *   WS  /api/watch               {"type":"subscribe","namespace":N?,"job":J?} -> snapshot, then
 *                                every change (and every progress point) as it happens
 *
 * Who: "Authorization: Bearer <token>" (the user's own Kubernetes token; a browser WebSocket
 * sends {"type":"auth","token":...} as its first message instead), checked with TokenReview;
 * what: SubjectAccessReview for the verb and resource each route reads (list/get trainingjobs,
 * list events, get pods/log). Without a token: 401, unless the console runs with anonymous
 * read-only access (an explicit opt-in for port-forward use): then everything the controller
 * watches may be read. Spec env values are never shown. Thread-safe. */
#ifndef KUBEFIT_CONSOLE_H
#define KUBEFIT_CONSOLE_H

#include "httpd.h"
#include "informer.h"
#include "kube.h"
#include "review.h"

#include <jansson.h>
#include <stdint.h>

typedef struct console console;

typedef struct {
    kube_client *kube;     /* borrowed */
    review *review;        /* borrowed */
    informer *jobs, *pods; /* borrowed: the controller's caches */
    int anonymous;         /* read-only access without a token */
} console_options;

console *console_new(const console_options *opt);
void console_free(console *c);
/* The server to answer through (set before it starts). */
void console_attach(console *c, httpd *h);

/* Whether path is the console's (static files, /api/...). */
int console_owns(const char *path);
/* Answers a request for one of its paths (service thread; API calls run on httpd workers). */
void console_handle(console *c, httpd_req *r);

/* WebSocket hooks (service thread). */
int console_ws_path_ok(console *c, const char *path);
void console_ws_open(console *c, uint64_t conn, const char *bearer);
void console_ws_message(console *c, uint64_t conn, const char *text, size_t len);
void console_ws_close(console *c, uint64_t conn);

/* A TrainingJob watch event (any thread): updates the curves and the subscribed clients. */
void console_on_job(console *c, const char *type, const json_t *job);

typedef struct {
    long api_requests, api_denied, ws_sessions, ws_messages;
} console_stats;
console_stats console_get_stats(console *c);

/* The summary the jobs table shows, and the detail the job page shows (exposed for tests).
 * New objects; caller decrefs. */
json_t *console_job_summary(const json_t *job);
json_t *console_job_detail(const json_t *job);

#endif
