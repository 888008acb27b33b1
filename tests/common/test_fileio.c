/* test_fileio: file_read_all / file_read_max - contents, the terminating NUL, files that grow past
 * their stat size (/proc), and each refusal with its code and message. */
#include "err.h"
#include "fileio.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void expect_fail(int line, int code, const char *path, size_t max, const char *msg)
{
    char *buf = (char *)"x";
    size_t len = 7;
    int rc = file_read_max(&buf, &len, path, max);
    test_checks++;
    if (rc != code || !strstr(err_msg(), msg) || buf || len) {
        test_failures++;
        fprintf(stderr, "%s:%d: FAIL: file_read_max(%s): expected %d with \"%s\", actual %d \"%s\"\n", __FILE__, line,
                path, code, msg, rc, err_msg());
    }
}

int main(void)
{
    char dir[] = "/tmp/kubefit-fileio-XXXXXX", path[64], *buf = NULL;
    size_t len = 0;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/f.bin", dir);
    FILE *f = fopen(path, "wb");
    static const char data[] = "ab\0cd\n";
    CHECK(f && fwrite(data, 1, 6, f) == 6);
    fclose(f);

    CHECK_EQ_INT(0, file_read_all(&buf, &len, path));
    CHECK_EQ_INT(6, len);
    CHECK(buf && memcmp(buf, data, 6) == 0 && buf[6] == 0);
    free(buf);
    CHECK_EQ_INT(0, file_read_max(&buf, &len, path, 6)); /* exactly the limit */
    free(buf);
    expect_fail(__LINE__, KF_EINVAL, path, 5, "f.bin: larger than 5 bytes");

    snprintf(path, sizeof path, "%s/empty", dir);
    f = fopen(path, "wb");
    fclose(f);
    CHECK_EQ_INT(0, file_read_all(&buf, &len, path));
    CHECK(buf && len == 0 && buf[0] == 0);
    free(buf);
    unlink(path);

    /* /proc files say size 0 and still have content */
    CHECK_EQ_INT(0, file_read_all(&buf, &len, "/proc/self/status"));
    CHECK(buf && len > 20 && strstr(buf, "Name:") == buf && strlen(buf) == len);
    free(buf);

    expect_fail(__LINE__, KF_ENOTFOUND, "/nonexistent/kubefit/x", 100, "/nonexistent/kubefit/x: no such file");
    expect_fail(__LINE__, KF_EINVAL, dir, 100, ": not a regular file (a folder)");
    expect_fail(__LINE__, KF_EINVAL, "/dev/null", 100, "/dev/null: not a regular file (a device)");

    snprintf(path, sizeof path, "%s/f.bin", dir);
    unlink(path);
    rmdir(dir);
    return test_done();
}
