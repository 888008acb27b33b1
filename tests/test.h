/* test.h: the tiny test header every C test uses.
 * A failing check prints file:line, expected and actual, and the executable exits non-zero.
 *   int main(void) { CHECK_EQ_INT(2, 1 + 1); CHECK_NEAR(ref, got, 1e-6, 1e-5); return test_done(); }
 * TEST_SKIP("no GPU") exits with 77, which ctest reports as skipped (SKIP_RETURN_CODE). */
#ifndef KUBEFIT_TEST_H
#define KUBEFIT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_checks, test_failures;

#define TEST_FAIL_(...)                                                              \
    do {                                                                             \
        test_failures++;                                                             \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                        \
        fprintf(stderr, __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                         \
    } while (0)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        test_checks++;                                                               \
        if (!(cond))                                                                 \
            TEST_FAIL_("expected %s", #cond);                                        \
    } while (0)

#define CHECK_EQ_INT(expected, actual)                                               \
    do {                                                                             \
        long long e_ = (long long)(expected), a_ = (long long)(actual);              \
        test_checks++;                                                               \
        if (e_ != a_)                                                                \
            TEST_FAIL_("%s: expected %lld, actual %lld", #actual, e_, a_);           \
    } while (0)

#define CHECK_EQ_STR(expected, actual)                                               \
    do {                                                                             \
        const char *e_ = (expected), *a_ = (actual);                                 \
        test_checks++;                                                               \
        if (!e_ || !a_ || strcmp(e_, a_) != 0)                                       \
            TEST_FAIL_("%s: expected \"%s\", actual \"%s\"", #actual,                \
                       e_ ? e_ : "(null)", a_ ? a_ : "(null)");                      \
    } while (0)

/* |actual - expected| <= atol + rtol * |expected|; NaN never passes. */
#define CHECK_NEAR(expected, actual, atol, rtol)                                     \
    do {                                                                             \
        double e_ = (double)(expected), a_ = (double)(actual);                       \
        test_checks++;                                                               \
        if (!(fabs(a_ - e_) <= (atol) + (rtol) * fabs(e_)))                          \
            TEST_FAIL_("%s: expected %.9g, actual %.9g (atol %g, rtol %g)", #actual, \
                       e_, a_, (double)(atol), (double)(rtol));                      \
    } while (0)

/* Compares n floats; reports the worst element. Returns nothing; counts one check. */
#define CHECK_ALLCLOSE(expected, actual, n, atol, rtol)                              \
    do {                                                                             \
        const float *e_ = (expected), *a_ = (actual);                                \
        size_t n_ = (n), bad_ = (size_t)-1;                                          \
        double worst_ = -1;                                                          \
        test_checks++;                                                               \
        for (size_t i_ = 0; i_ < n_; i_++) {                                         \
            double d_ = fabs((double)a_[i_] - (double)e_[i_]);                       \
            double lim_ = (atol) + (rtol) * fabs((double)e_[i_]);                    \
            if (!(d_ <= lim_) && (bad_ == (size_t)-1 || !(d_ - lim_ <= worst_))) {   \
                worst_ = isnan(d_) ? INFINITY : d_ - lim_;                           \
                bad_ = i_;                                                           \
            }                                                                        \
        }                                                                            \
        if (bad_ != (size_t)-1)                                                      \
            TEST_FAIL_("%s[%zu]: expected %.9g, actual %.9g (atol %g, rtol %g)",     \
                       #actual, bad_, (double)e_[bad_], (double)a_[bad_],            \
                       (double)(atol), (double)(rtol));                              \
    } while (0)

#define TEST_SKIP(reason)                                                            \
    do {                                                                             \
        fprintf(stderr, "SKIP: %s\n", reason);                                       \
        exit(77);                                                                    \
    } while (0)

static inline int test_done(void)
{
    fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);
    return test_failures ? 1 : (test_checks ? 0 : 1); /* a test that checked nothing fails */
}

#endif
