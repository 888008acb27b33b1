/* cron schedules: parsing (with clear errors) and the next matching time. */
#include "cron.h"
#include "err.h"
#include "kubetime.h"
#include "test.h"

static double at(const char *s)
{
    double t = 0;
    if (kube_time_parse(s, &t) != 0)
        fprintf(stderr, "bad time %s\n", s);
    return t;
}

static void next_is(const char *expr, const char *from, const char *want)
{
    cron_schedule s;
    test_checks++;
    if (cron_parse(&s, expr) != 0) {
        TEST_FAIL_("\"%s\": %s", expr, err_msg());
        return;
    }
    double n = cron_next(&s, at(from));
    char buf[32];
    const char *got = n < 0 ? "never" : kube_time_format(n, 0, buf);
    if (strcmp(got, want) != 0)
        TEST_FAIL_("\"%s\" after %s: expected %s, actual %s", expr, from, want, got);
}

int main(void)
{
    next_is("0 3 * * 1", "2026-11-25T10:00:00Z", "2026-11-30T03:00:00Z"); /* Wednesday -> Monday */
    next_is("*/15 * * * *", "2026-11-25T10:07:30Z", "2026-11-25T10:15:00Z");
    next_is("5/20 * * * *", "2026-11-25T10:06:00Z", "2026-11-25T10:25:00Z");
    next_is("0 0 1,15 * *", "2026-11-02T00:00:00Z", "2026-11-15T00:00:00Z");
    next_is("30 2 * feb SUN", "2026-11-25T00:00:00Z", "2027-02-07T02:30:00Z");
    next_is("0 0 13 * 5", "2026-11-01T00:00:00Z", "2026-11-06T00:00:00Z"); /* Friday before the 13th */
    next_is("0 0 13 * 5", "2026-11-07T00:00:00Z", "2026-11-13T00:00:00Z");
    next_is("@hourly", "2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z"); /* strictly after */
    next_is("@weekly", "2026-11-25T10:00:00Z", "2026-11-29T00:00:00Z");
    next_is("0 12 * * 7", "2026-11-25T10:00:00Z", "2026-11-29T12:00:00Z"); /* 7 is Sunday */
    next_is("59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z");
    next_is("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z");
    next_is("0 0 30 2 *", "2026-01-01T00:00:00Z", "never");
    next_is("1-3/2 0 * * *", "2026-11-25T00:01:00Z", "2026-11-25T00:03:00Z");

    struct {
        const char *expr, *want;
    } bad[] = {
        {"60 * * * *", "bad minute field \"60\""}, {"* * *", "has 3 fields"}, {"* * * * * *", "more than 5"},
        {"a b c d e", "bad minute field"}, {"1- * * * *", "bad minute"}, {"*/0 * * * *", "bad minute"},
        {"5-1 * * * *", "bad minute"}, {"* 24 * * *", "bad hour"}, {"* * 0 * *", "bad day-of-month"},
        {"* * * 13 *", "bad month"}, {"* * * * 8", "bad day-of-week"}, {"", "has 0 fields"},
        {"* * * * MON,", "bad day-of-week"}, {"@reboot", "bad minute field \"@reboot\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cron_schedule s;
        CHECK_EQ_INT(KF_EINVAL, cron_parse(&s, bad[i].expr));
        if (!strstr(err_msg(), bad[i].want))
            TEST_FAIL_("\"%s\": message \"%s\" lacks \"%s\"", bad[i].expr, err_msg(), bad[i].want);
    }
    return test_done();
}
