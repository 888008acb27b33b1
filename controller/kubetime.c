#include "kubetime.h"

#include "err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int kube_time_parse(const char *s, double *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return err_set(KF_EINVAL, "time \"%s\": not RFC 3339", s ? s : "(null)");
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return err_set(KF_EINVAL, "time \"%s\": out of range", s);
    const char *p = s + n;
    double frac = 0, scale = 0.1;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return err_set(KF_EINVAL, "time \"%s\": bad fraction", s);
        for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
            return err_set(KF_EINVAL, "time \"%s\": bad offset", s);
        off = (oh * 3600L + om * 60L) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return err_set(KF_EINVAL, "time \"%s\": missing zone", s);
    }
    if (*p)
        return err_set(KF_EINVAL, "time \"%s\": trailing text", s);
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    *out = (double)t - (double)off + frac;
    return KF_OK;
}

const char *kube_time_format(double t, int micro, char *buf)
{
    time_t s = (time_t)floor(t);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, 32, micro ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (micro) {
        long us = (long)((t - (double)s) * 1e6);
        size_t n = strlen(buf);
        snprintf(buf + n, 32 - n, ".%06ldZ", us < 0 ? 0 : us > 999999 ? 999999 : us);
    }
    return buf;
}

double kube_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
