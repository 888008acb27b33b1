/* leader: leader election on a coordination.k8s.io/v1 Lease, in the manner of client-go:
 * acquire when the lease is free or expired, renew every retry period, give up leadership when
 * renewals fail past the renew deadline, release (clear the holder) on a clean stop. */
#ifndef KUBEFIT_LEADER_H
#define KUBEFIT_LEADER_H

#include "kube.h"

typedef struct leader leader;

typedef struct {
    kube_client *kube;
    const char *namespace;  /* of the Lease */
    const char *name;       /* Lease name */
    const char *identity;   /* this process; default hostname_pid */
    double lease_s;         /* leaseDurationSeconds; default 15 */
    double renew_deadline_s;/* default 10 */
    double retry_s;         /* default 2 */
    void (*on_change)(void *ctx, int leading);
    void *ctx;
} leader_options;

leader *leader_new(const leader_options *opt);
int leader_start(leader *l);
/* Stops the loop and, when leading, releases the Lease. */
void leader_stop(leader *l);
void leader_free(leader *l);
int leader_is_leader(leader *l);

/* One acquire-or-renew step at time now (exposed for tests). Returns 0 when this identity holds
 * the Lease afterwards, KF_ECONFLICT when another holder's lease is valid, other codes on errors. */
int leader_try(leader *l, double now);

#endif
