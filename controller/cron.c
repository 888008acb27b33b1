#include "cron.h"

#include "err.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const MONTHS[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const DAYS[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

/* A number or a name; advances *p. Returns -1 when neither. */
static int value(const char **p, int field)
{
    if (isdigit((unsigned char)**p)) {
        int v = 0;
        while (isdigit((unsigned char)**p) && v < 1000)
            v = v * 10 + (*(*p)++ - '0');
        return v;
    }
    const char *const *names = field == 3 ? MONTHS : field == 4 ? DAYS : NULL;
    int n = field == 3 ? 12 : 7, base = field == 3 ? 1 : 0;
    for (int i = 0; names && i < n; i++)
        if (strncasecmp(*p, names[i], 3) == 0) {
            *p += 3;
            return i + base;
        }
    return -1;
}

static int parse_field(const char *text, size_t len, int field, uint64_t *bits, int *any)
{
    static const char *const NAMES[] = {"minute", "hour", "day-of-month", "month", "day-of-week"};
    static const int LO[] = {0, 0, 1, 1, 0}, HI[] = {59, 23, 31, 12, 7};
    char *copy = strndup(text, len);
    if (!copy)
        return err_set(KF_ENOMEM, "cron: out of memory");
    int rc = KF_OK;
    *bits = 0;
    *any = (strcmp(copy, "*") == 0 || strcmp(copy, "?") == 0);
    const char *p = copy;
    while (*p) {
        int lo, hi, step = 1, single = 0;
        if (*p == '*' || *p == '?') {
            lo = LO[field], hi = HI[field];
            p++;
        } else {
            if ((lo = value(&p, field)) < 0)
                goto bad;
            hi = lo;
            single = *p != '-';
            if (*p == '-') {
                p++;
                if ((hi = value(&p, field)) < 0)
                    goto bad;
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p))
                goto bad;
            step = value(&p, field);
            if (step <= 0)
                goto bad;
            if (single)
                hi = HI[field]; /* "5/15" means 5-max/15 */
        }
        if (lo < LO[field] || hi > HI[field] || lo > hi)
            goto bad;
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ULL << (field == 4 && v == 7 ? 0 : v);
        if (*p == ',') {
            if (!*++p)
                goto bad;
        } else if (*p) {
            goto bad;
        }
    }
    if (!*bits)
        goto bad;
    goto done;
bad:
    rc = err_set(KF_EINVAL, "cron: bad %s field \"%s\"", NAMES[field], copy);
done:
    free(copy);
    return rc;
}

int cron_parse(cron_schedule *out, const char *expr)
{
    memset(out, 0, sizeof *out);
    if (!expr)
        return err_set(KF_EINVAL, "cron: empty schedule");
    static const struct {
        const char *name, *expr;
    } macros[] = {{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
                  {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
                  {"@hourly", "0 * * * *"}};
    while (isspace((unsigned char)*expr))
        expr++;
    for (size_t i = 0; i < sizeof macros / sizeof *macros; i++)
        if (strcmp(expr, macros[i].name) == 0)
            expr = macros[i].expr;
    const char *p = expr;
    for (int f = 0; f < 5; f++) {
        while (isspace((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (p == start)
            return err_set(KF_EINVAL, "cron: \"%s\" has %d fields, want 5", expr, f);
        uint64_t bits = 0;
        int any = 0, rc = parse_field(start, (size_t)(p - start), f, &bits, &any);
        if (rc)
            return rc;
        switch (f) {
        case 0: out->minute = bits; break;
        case 1: out->hour = (uint32_t)bits; break;
        case 2: out->dom = (uint32_t)bits, out->dom_any = any; break;
        case 3: out->month = (uint32_t)bits; break;
        case 4: out->dow = (uint8_t)bits, out->dow_any = any; break;
        }
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return err_set(KF_EINVAL, "cron: \"%s\" has more than 5 fields", expr);
    return KF_OK;
}

static int day_matches(const cron_schedule *s, const struct tm *tm)
{
    int dom = (s->dom >> tm->tm_mday) & 1, dow = (s->dow >> tm->tm_wday) & 1;
    if (s->dom_any || s->dow_any)
        return dom && dow;
    return dom || dow;
}

double cron_next(const cron_schedule *s, double t)
{
    time_t cur = (time_t)floor(t / 60) * 60 + 60; /* the next whole minute after t */
    time_t end = cur + 5 * 366 * 86400L;
    struct tm tm;
    while (cur < end) {
        gmtime_r(&cur, &tm);
        if (!((s->month >> (tm.tm_mon + 1)) & 1)) {
            tm.tm_mon++, tm.tm_mday = 1, tm.tm_hour = 0, tm.tm_min = 0, tm.tm_sec = 0;
            cur = timegm(&tm);
            continue;
        }
        if (!day_matches(s, &tm)) {
            tm.tm_mday++, tm.tm_hour = 0, tm.tm_min = 0, tm.tm_sec = 0;
            cur = timegm(&tm);
            continue;
        }
        if (!((s->hour >> tm.tm_hour) & 1)) {
            tm.tm_hour++, tm.tm_min = 0, tm.tm_sec = 0;
            cur = timegm(&tm);
            continue;
        }
        if (!((s->minute >> tm.tm_min) & 1)) {
            cur += 60;
            continue;
        }
        return (double)cur;
    }
    return -1;
}

double cron_next_in(const cron_schedule *s, double t, const tz_zone *z)
{
    if (!z)
        return cron_next(s, t);
    double local = t + tz_offset(z, (int64_t)floor(t));
    for (int guard = 0; guard < 10000; guard++) {
        double m = cron_next(s, local); /* the next matching wall-clock time, as if it were UTC */
        if (m < 0)
            return -1;
        /* The instants u whose wall clock reads m: u = m - offset, for the offsets around m. */
        double best = -1;
        for (int k = -1; k <= 1; k++) {
            double u = m - tz_offset(z, (int64_t)m + k * 86400);
            if (u > t && u + tz_offset(z, (int64_t)u) == m && (best < 0 || u < best))
                best = u;
        }
        if (best >= 0)
            return best;
        local = m; /* skipped by a daylight-saving jump: look further */
    }
    return -1;
}
