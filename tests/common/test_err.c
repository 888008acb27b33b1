#include "err.h"
#include "test.h"

static int fails_with_context(void) { return err_set(KF_ENOTFOUND, "object %s missing", "gs://b/o"); }

int main(void)
{
    CHECK_EQ_STR("", err_msg());
    CHECK_EQ_INT(KF_ENOTFOUND, fails_with_context());
    CHECK_EQ_STR("object gs://b/o missing", err_msg());
    CHECK_EQ_INT(KF_ENOTFOUND, err_wrap(KF_ENOTFOUND, "reading %s", "train.csv"));
    CHECK_EQ_STR("reading train.csv: object gs://b/o missing", err_msg());
    CHECK_EQ_STR("EGONE", err_name(KF_EGONE));
    CHECK_EQ_STR("EUNKNOWN", err_name(-999));
    err_clear();
    CHECK_EQ_STR("", err_msg());
    /* A message longer than the buffer is truncated, not overflowed. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    err_set(KF_EINVAL, "%s", big);
    CHECK(strlen(err_msg()) < sizeof big);
    return test_done();
}
