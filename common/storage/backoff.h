/* backoff: bounded exponential backoff with full jitter, shared by the GCS calls and the
 * credential fetches. Attempt 1 is the first retry. */
#ifndef KUBEFIT_STORAGE_BACKOFF_H
#define KUBEFIT_STORAGE_BACKOFF_H

/* A delay drawn uniformly from [base/2, base], base = min(max_ms, initial_ms * 2^(attempt-1)). */
long backoff_delay_ms(int attempt, long initial_ms, long max_ms);
void backoff_sleep_ms(long ms);
/* Whether an HTTP status is worth retrying: 408, 429, 5xx. */
int backoff_retryable_status(long status);

#endif
