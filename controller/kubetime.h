/* kubetime: RFC 3339 timestamps as the API server writes them (metav1.Time, MicroTime). */
#ifndef KUBEFIT_KUBETIME_H
#define KUBEFIT_KUBETIME_H

#include <time.h>

/* Parses "2026-11-26T15:40:00Z" (fractional seconds and +hh:mm offsets accepted) into *out
 * (seconds, UTC). Returns 0 or KF_EINVAL. */
int kube_time_parse(const char *s, double *out);
/* Formats t as "2026-11-26T15:40:00Z" into buf (at least 32 bytes); micro != 0 adds ".000000". */
const char *kube_time_format(double t, int micro, char *buf);
/* Wall clock now, seconds since the epoch. */
double kube_now(void);

#endif
