/* ratelimit: a token bucket for the controller's API client (client-go's --kube-api-qps and
 * --kube-api-burst): on average qps requests a second, bursts of up to burst. Thread-safe. */
#ifndef KUBEFIT_RATELIMIT_H
#define KUBEFIT_RATELIMIT_H

typedef struct rl_bucket rl_bucket;

/* qps <= 0: no limit (rl_take returns at once). Caller frees with rl_free. */
rl_bucket *rl_new(double qps, int burst);
void rl_free(rl_bucket *b);
/* Takes one token, sleeping until one is there. Returns the seconds it waited. */
double rl_take(rl_bucket *b);
/* Seconds rl_take has waited in all, for /metrics. */
double rl_waited(rl_bucket *b);

#endif
