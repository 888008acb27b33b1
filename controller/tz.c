/* tz: TZif (RFC 8536) reader and POSIX TZ rules. See tz.h. */
#include "tz.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fileio.h"

/* One end of a daylight-saving period: "Mm.w.d", "Jn" or "n", at time seconds after local midnight. */
typedef struct {
    char kind; /* 'M', 'J' or 'D' (zero-based day of year) */
    int month, week, day;
    int32_t time;
} tz_rule_date;

/* A POSIX TZ string: standard offset, and optionally DST with its start and end. */
typedef struct {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    tz_rule_date start, end;
} tz_rule;

struct tz_zone {
    int64_t *times;   /* transitions, ascending */
    uint8_t *idx;     /* type index of each transition */
    int32_t *offsets; /* utoff per type */
    uint32_t ntimes, ntypes;
    int has_rule;
    tz_rule rule;
};

void tz_free(tz_zone *z)
{
    if (!z)
        return;
    free(z->times);
    free(z->idx);
    free(z->offsets);
    free(z);
}

/* ---- POSIX TZ strings ---- */

static int parse_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (!e)
            return -1;
        *p = e + 1;
        return 0;
    }
    while (isalpha((unsigned char)**p))
        (*p)++;
    return *p - s >= 3 ? 0 : -1;
}

/* [+-]hh[:mm[:ss]] -> seconds; POSIX offsets count west, times count forward. */
static int parse_hms(const char **p, int32_t *out)
{
    int sign = 1;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)**p))
        return -1;
    long v[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        if (k && **p != ':')
            break;
        if (k)
            (*p)++;
        if (!isdigit((unsigned char)**p))
            return -1;
        while (isdigit((unsigned char)**p) && v[k] < 1000)
            v[k] = v[k] * 10 + (*(*p)++ - '0');
    }
    if (v[0] > 167 || v[1] > 59 || v[2] > 59)
        return -1;
    *out = (int32_t)(sign * (v[0] * 3600 + v[1] * 60 + v[2]));
    return 0;
}

static int parse_int(const char **p, int *out, int lo, int hi)
{
    if (!isdigit((unsigned char)**p))
        return -1;
    long v = 0;
    while (isdigit((unsigned char)**p) && v < 100000)
        v = v * 10 + (*(*p)++ - '0');
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_date(const char **p, tz_rule_date *d)
{
    d->time = 7200; /* 02:00 unless given */
    if (**p == 'M') {
        (*p)++;
        d->kind = 'M';
        if (parse_int(p, &d->month, 1, 12) || *(*p)++ != '.' || parse_int(p, &d->week, 1, 5) || *(*p)++ != '.' ||
            parse_int(p, &d->day, 0, 6))
            return -1;
    } else if (**p == 'J') {
        (*p)++;
        d->kind = 'J';
        if (parse_int(p, &d->day, 1, 365))
            return -1;
    } else {
        d->kind = 'D';
        if (parse_int(p, &d->day, 0, 365))
            return -1;
    }
    if (**p == '/') {
        (*p)++;
        if (parse_hms(p, &d->time))
            return -1;
    }
    return 0;
}

static int parse_rule(tz_rule *r, const char *s)
{
    const char *p = s;
    int32_t west;
    memset(r, 0, sizeof *r);
    if (parse_name(&p) || parse_hms(&p, &west))
        return -1;
    r->std_off = -west;
    if (!*p)
        return 0;
    if (parse_name(&p))
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (parse_hms(&p, &west))
            return -1;
        r->dst_off = -west;
    }
    if (*p++ != ',' || parse_date(&p, &r->start) || *p++ != ',' || parse_date(&p, &r->end) || *p)
        return -1;
    return 0;
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; m 1-12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t year_of(int64_t days)
{
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

/* Local seconds since 1970 of a rule date in year y. */
static int64_t rule_local(const tz_rule_date *d, int64_t y)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t day;
    if (d->kind == 'J') {
        day = days_from_civil(y, 1, 1) + d->day - 1 + (is_leap(y) && d->day >= 60);
    } else if (d->kind == 'D') {
        day = days_from_civil(y, 1, 1) + d->day;
    } else {
        int64_t first = days_from_civil(y, d->month, 1);
        int dow1 = (int)(((first % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
        int dom = 1 + (d->day - dow1 + 7) % 7 + (d->week - 1) * 7;
        int len = mdays[d->month - 1] + (d->month == 2 && is_leap(y));
        while (dom > len)
            dom -= 7;
        day = first + dom - 1;
    }
    return day * 86400 + d->time;
}

static int32_t rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y = year_of((t + r->std_off) / 86400 - ((t + r->std_off) % 86400 < 0));
    /* The start is given in standard time, the end in daylight time. */
    int64_t start = rule_local(&r->start, y) - r->std_off, end = rule_local(&r->end, y) - r->dst_off;
    int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

static int parse_tzif(tz_zone *z, const unsigned char *buf, size_t len, const char *name)
{
    if (len < 44 || memcmp(buf, "TZif", 4) != 0)
        return err_set(KF_EINVAL, "time zone %s: not a TZif file", name);
    int version = buf[4];
    const unsigned char *h = buf;
    size_t off = 0, tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28), timecnt = be32(h + 32),
                 typecnt = be32(h + 36), charcnt = be32(h + 40);
        if (timecnt > 100000 || typecnt == 0 || typecnt > 256 || leap > 100000 || charcnt > 100000 ||
            isut > typecnt || isstd > typecnt)
            return err_set(KF_EINVAL, "time zone %s: bad TZif header", name);
        size_t body = (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6 + charcnt + (size_t)leap * (tsize + 4) +
                      isstd + isut;
        off = (size_t)(h - buf) + 44;
        if (off + body > len)
            return err_set(KF_EINVAL, "time zone %s: truncated TZif file", name);
        if (pass == 0 && version >= '2') {
            h = buf + off + body; /* the 64-bit block follows */
            tsize = 8;
            if ((size_t)(h - buf) + 44 > len || memcmp(h, "TZif", 4) != 0)
                return err_set(KF_EINVAL, "time zone %s: bad second TZif header", name);
            continue;
        }
        const unsigned char *p = buf + off;
        z->ntimes = timecnt;
        z->ntypes = typecnt;
        z->times = calloc(timecnt ? timecnt : 1, sizeof *z->times);
        z->idx = calloc(timecnt ? timecnt : 1, 1);
        z->offsets = calloc(typecnt, sizeof *z->offsets);
        if (!z->times || !z->idx || !z->offsets)
            return err_set(KF_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < timecnt; i++)
            z->times[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        p += (size_t)timecnt * tsize;
        for (uint32_t i = 0; i < timecnt; i++) {
            if (p[i] >= typecnt)
                return err_set(KF_EINVAL, "time zone %s: bad transition type", name);
            z->idx[i] = p[i];
        }
        p += timecnt;
        for (uint32_t i = 0; i < typecnt; i++) {
            int32_t utoff = (int32_t)be32(p + i * 6);
            if (utoff < -89999 || utoff > 93599)
                return err_set(KF_EINVAL, "time zone %s: bad UTC offset", name);
            z->offsets[i] = utoff;
        }
        /* The footer (v2+): "\nTZ\n" after the 64-bit block. */
        const unsigned char *foot = buf + off + body;
        if (version >= '2' && foot < buf + len && *foot == '\n') {
            const unsigned char *e = memchr(foot + 1, '\n', (size_t)(buf + len - foot - 1));
            if (e && e > foot + 1) {
                char rule[128];
                size_t n = (size_t)(e - foot - 1);
                if (n >= sizeof rule)
                    return err_set(KF_EINVAL, "time zone %s: footer too long", name);
                memcpy(rule, foot + 1, n);
                rule[n] = 0;
                if (parse_rule(&z->rule, rule) < 0)
                    return err_set(KF_EINVAL, "time zone %s: bad TZ rule \"%s\"", name, rule);
                z->has_rule = 1;
            }
        }
        return 0;
    }
    return 0;
}

static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
        return 0;
    for (const char *p = name; *p; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '+' || *p == '/'))
            return 0;
        if (*p == '.')
            return 0;
    }
    return isalpha((unsigned char)name[0]);
}

int tz_load(tz_zone **out, const char *name)
{
    *out = NULL;
    if (!name || !name_ok(name))
        return err_set(KF_EINVAL, "time zone \"%s\" is not a zone name such as Europe/Paris", name ? name : "");
    const char *dir = getenv("ZONEINFO");
    char *path = NULL, *buf = NULL;
    size_t len = 0;
    tz_zone *z = calloc(1, sizeof *z);
    int rc = 0;
    if (!z || asprintf(&path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name) < 0) {
        path = NULL;
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    rc = file_read_max(&buf, &len, path, 1 << 20); /* zone files are a few KiB */
    if (rc == KF_ENOTFOUND || (rc == KF_EINVAL && strstr(err_msg(), "not a regular file")))
        rc = err_set(KF_ENOTFOUND, "time zone \"%s\" is not in the zone database (%s)", name, path);
    else if (rc < 0)
        rc = err_wrap(rc, "time zone \"%s\"", name);
    else
        rc = parse_tzif(z, (const unsigned char *)buf, len, name);
done:
    free(buf);
    free(path);
    if (rc < 0)
        tz_free(z);
    else
        *out = z;
    return rc;
}

int32_t tz_offset(const tz_zone *z, int64_t t)
{
    if (!z)
        return 0;
    if (z->ntimes == 0 || t < z->times[0]) {
        if (z->ntimes == 0 && z->has_rule)
            return rule_offset(&z->rule, t);
        return z->offsets[0];
    }
    if (t >= z->times[z->ntimes - 1] && z->has_rule)
        return rule_offset(&z->rule, t);
    uint32_t lo = 0, hi = z->ntimes - 1; /* times[lo] <= t */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (z->times[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return z->offsets[z->idx[lo]];
}
