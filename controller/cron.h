/* cron: 5-field schedules (minute hour day-of-month month day-of-week) as Vixie cron reads
 * them: numbers, '*', ranges a-b, steps (star-slash-n and a-b/n), lists, names JAN..DEC and SUN..SAT,
 * 7 = Sunday, '?' = '*', and the macros @yearly @annually @monthly @weekly @daily @midnight
 * @hourly. When both day fields are restricted a day matches either (cron's rule). */
#ifndef KUBEFIT_CRON_H
#define KUBEFIT_CRON_H

#include <stdint.h>

#include "tz.h"

typedef struct {
    uint64_t minute;  /* bit i: minute i */
    uint32_t hour, dom, month;
    uint8_t dow;      /* bit 0 Sunday */
    int dom_any, dow_any;
} cron_schedule;

/* Returns 0, or KF_EINVAL with a message naming the bad field. */
int cron_parse(cron_schedule *out, const char *expr);
/* The first matching time strictly after t (seconds since the epoch, UTC), or -1 if none within
 * five years. */
double cron_next(const cron_schedule *s, double t);
/* The same in time zone z (NULL: UTC): the first instant strictly after t whose wall-clock time
 * in z matches. A wall-clock time skipped by a daylight-saving change does not fire; one that
 * occurs twice fires once, at its first occurrence. */
double cron_next_in(const cron_schedule *s, double t, const tz_zone *z);

#endif
