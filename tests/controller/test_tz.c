/* tz: offsets from the TZif reader against the C library's own reading of the same zone files
 * (localtime_r with TZ set), hourly-ish over 1900-2100 (past the files' transitions, where the
 * POSIX footer rules apply); and cron schedules in a time zone around daylight-saving changes. */
#include <stdlib.h>
#include <time.h>

#include "cron.h"
#include "err.h"
#include "kubetime.h"
#include "test.h"
#include "tz.h"

static void compare_with_libc(const char *name)
{
    tz_zone *z = NULL;
    int rc = tz_load(&z, name);
    CHECK_EQ_INT(0, rc);
    if (rc) {
        fprintf(stderr, "%s: %s\n", name, err_msg());
        return;
    }
    setenv("TZ", name, 1);
    tzset();
    int bad = 0;
    /* Every 7 hours 13 minutes from 1901 to 2099: crosses every transition day at some hour. */
    for (int64_t t = -2177452800LL; t < 4102444800LL && bad < 5; t += 7 * 3600 + 13 * 60) {
        time_t tt = (time_t)t;
        struct tm tm;
        localtime_r(&tt, &tm);
        int32_t got = tz_offset(z, t);
        if (got != tm.tm_gmtoff) {
            TEST_FAIL_("%s at %lld: offset %d, the C library says %ld", name, (long long)t, got, tm.tm_gmtoff);
            bad++;
        }
    }
    test_checks++;
    tz_free(z);
}

static void next_in(const char *expr, const char *zone, const char *from, const char *want)
{
    cron_schedule s;
    tz_zone *z = NULL;
    double t = 0, n;
    char buf[32];
    CHECK_EQ_INT(0, cron_parse(&s, expr));
    CHECK_EQ_INT(0, tz_load(&z, zone));
    kube_time_parse(from, &t);
    n = cron_next_in(&s, t, z);
    const char *got = n < 0 ? "never" : kube_time_format(n, 0, buf);
    CHECK_EQ_STR(want, got);
    tz_free(z);
}

int main(void)
{
    const char *zones[] = {"UTC", "Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
                           "America/Sao_Paulo", "Pacific/Chatham", "Africa/Casablanca", "America/St_Johns"};
    for (size_t i = 0; i < sizeof zones / sizeof *zones; i++)
        compare_with_libc(zones[i]);

    tz_zone *z = NULL;
    CHECK_EQ_INT(KF_ENOTFOUND, tz_load(&z, "Mars/Olympus_Mons"));
    CHECK(strstr(err_msg(), "not in the zone database") != NULL);
    CHECK_EQ_INT(KF_EINVAL, tz_load(&z, "../etc/passwd"));
    CHECK_EQ_INT(KF_EINVAL, tz_load(&z, "Europe/../../etc"));
    CHECK_EQ_INT(KF_EINVAL, tz_load(&z, ""));
    CHECK(z == NULL);
    CHECK_EQ_INT(0, tz_offset(NULL, 123456));

    /* 03:00 in Paris: 02:00Z in winter, 01:00Z in summer. */
    next_in("0 3 * * *", "Europe/Paris", "2026-12-07T12:00:00Z", "2026-12-08T02:00:00Z");
    next_in("0 3 * * *", "Europe/Paris", "2027-06-01T12:00:00Z", "2027-06-02T01:00:00Z");
    /* 02:30 does not exist on 2027-03-28 in Paris (02:00 -> 03:00): that day is skipped. */
    next_in("30 2 * * *", "Europe/Paris", "2027-03-27T12:00:00Z", "2027-03-29T00:30:00Z");
    /* 02:30 happens twice on 2026-10-25 (03:00 -> 02:00): it fires once, at the first. */
    next_in("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z");
    next_in("30 2 * * *", "Europe/Paris", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
    /* Half-hour zones and the southern hemisphere. */
    next_in("0 9 * * 1", "Asia/Kolkata", "2026-12-07T00:00:00Z", "2026-12-07T03:30:00Z"); /* a Monday */
    next_in("0 9 * * 1", "Asia/Kolkata", "2026-12-07T03:30:00Z", "2026-12-14T03:30:00Z");
    next_in("0 0 1 1 *", "Australia/Sydney", "2026-12-07T00:00:00Z", "2026-12-31T13:00:00Z");
    next_in("0 3 31 2 *", "Europe/Paris", "2026-12-07T00:00:00Z", "never");
    return test_done();
}
