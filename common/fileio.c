/* fileio: whole-file reads. See fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"

static int open_code(int e)
{
    return e == ENOENT || e == ENOTDIR ? KF_ENOTFOUND : e == EACCES || e == EPERM ? KF_EAUTH : KF_EIO;
}

int file_read_max(char **buf, size_t *len, const char *path, size_t max)
{
    int rc = 0;
    char *b = NULL;
    size_t n = 0, cap;
    struct stat st;
    *buf = NULL;
    *len = 0;
    if (max > SIZE_MAX - 1)
        max = SIZE_MAX - 1;
    /* stat first: opening a FIFO for reading would wait for a writer */
    if (stat(path, &st) != 0)
        return err_set(open_code(errno), "%s: %s", path, errno == ENOENT ? "no such file" : strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(KF_EINVAL, "%s: not a regular file (%s)", path,
                       S_ISDIR(st.st_mode) ? "a folder" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                                                     : "not a file");
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(open_code(errno), "%s: %s", path, strerror(errno));
    if (st.st_size < 0 || (uint64_t)st.st_size > max) {
        rc = err_set(KF_EINVAL, "%s: larger than %zu bytes", path, max);
        goto done;
    }
    cap = (size_t)st.st_size + 1; /* the file may still grow: the loop below grows with it */
    if (!(b = malloc(cap))) {
        rc = err_set(KF_ENOMEM, "%s: out of memory (%zu bytes)", path, cap);
        goto done;
    }
    for (;;) {
        n += fread(b + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        int c = fgetc(f);
        if (c == EOF)
            break;
        if (n + 1 > max) {
            rc = err_set(KF_EINVAL, "%s: larger than %zu bytes", path, max);
            goto done;
        }
        if (cap > PTRDIFF_MAX / 2) {
            rc = err_set(KF_ENOMEM, "%s: out of memory (more than %zu bytes)", path, cap);
            goto done;
        }
        size_t ncap = cap * 2;
        char *nb = realloc(b, ncap);
        if (!nb) {
            rc = err_set(KF_ENOMEM, "%s: out of memory (%zu bytes)", path, ncap);
            goto done;
        }
        b = nb;
        cap = ncap;
        b[n++] = (char)c;
    }
    if (ferror(f)) {
        rc = err_set(KF_EIO, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
done:
    free(b);
    fclose(f);
    return rc;
}

int file_read_all(char **buf, size_t *len, const char *path) { return file_read_max(buf, len, path, SIZE_MAX - 1); }
