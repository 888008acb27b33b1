/* tz: IANA time zones read from the system's TZif files (/usr/share/zoneinfo, or $ZONEINFO), for
 * spec.timeZone. Thread-safe and independent of the process's TZ: each zone is a value. Times
 * after the file's last transition follow its POSIX TZ footer (e.g. "CET-1CEST,M3.5.0,M10.5.0/3"). */
#ifndef KUBEFIT_TZ_H
#define KUBEFIT_TZ_H

#include <stdint.h>

typedef struct tz_zone tz_zone;

/* Loads zone name ("Europe/Paris", "UTC"). KF_EINVAL for a malformed name or file, KF_ENOTFOUND
 * when the zone database has no such zone. Caller frees with tz_free. */
int tz_load(tz_zone **out, const char *name);
void tz_free(tz_zone *z);

/* Seconds east of UTC at instant t (seconds since the epoch). A NULL zone is UTC. */
int32_t tz_offset(const tz_zone *z, int64_t t);

#endif
