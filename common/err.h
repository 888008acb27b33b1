/* err: error codes and a thread-local error message with context (libgit2 style).
 * Functions return 0 on success or a negative KF_E* code and call err_set() first. */
#ifndef KUBEFIT_ERR_H
#define KUBEFIT_ERR_H

enum {
    KF_OK = 0,
    KF_EINVAL = -1,     /* bad input: manifest, CSV, config, weights file (do not retry) */
    KF_ENOMEM = -2,
    KF_EIO = -3,        /* local file or socket failure */
    KF_ENOTFOUND = -4,
    KF_ECONFLICT = -5,  /* HTTP 409 */
    KF_EGONE = -6,      /* HTTP 410: resourceVersion too old */
    KF_ERETRY = -7,     /* transient: 408/429/5xx, connection reset; retry with backoff */
    KF_EAUTH = -8,      /* 401/403, bad credentials */
    KF_EEXISTS = -9,
    KF_EUNSUPPORTED = -10,
};

/* Sets this thread's message (printf format); returns code so callers can `return err_set(...)`. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context: "ctx: old message". Returns code. */
int err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last message set on this thread ("" when none). Valid until the next err_set. */
const char *err_msg(void);
void err_clear(void);
/* Stable short name of a code ("EINVAL", ...). */
const char *err_name(int code);

#endif
