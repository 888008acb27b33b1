#include "local.h"

#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What a path that is not a regular file is, for "not a regular file (a folder)". */
static const char *kind_of(mode_t m)
{
    return S_ISDIR(m) ? "a folder" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : S_ISFIFO(m) ? "a pipe" : "not a file";
}

static int errno_code(int e) { return e == ENOENT || e == ENOTDIR ? KF_ENOTFOUND : e == EACCES || e == EPERM ? KF_EAUTH : KF_EIO; }

int local_mkdirs_for(const char *path)
{
    char *p = strdup(path);
    int rc = 0;
    if (!p)
        return err_set(KF_ENOMEM, "storage: out of memory");
    char *slash = strrchr(p, '/');
    if (!slash || slash == p)
        goto done;
    *slash = '\0';
    for (char *q = p + 1; ; q++) {
        if (*q == '/' || *q == '\0') {
            char c = *q;
            *q = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                rc = err_set(errno_code(errno), "storage: %s: cannot create folder %s: %s", path, p, strerror(errno));
                goto done;
            }
            *q = c;
            if (!c)
                break;
        }
    }
done:
    free(p);
    return rc;
}

int local_temp_for(const char *path, FILE **f, char **tmp)
{
    *f = NULL;
    *tmp = NULL;
    int rc = local_mkdirs_for(path);
    if (rc)
        return rc;
    if (asprintf(tmp, "%s.tmp-XXXXXX", path) < 0) {
        *tmp = NULL;
        return err_set(KF_ENOMEM, "storage: out of memory");
    }
    int fd = mkstemp(*tmp);
    if (fd < 0 || !(*f = fdopen(fd, "w+b"))) {
        rc = err_set(errno_code(errno), "storage: %s: cannot create a temporary file: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(*tmp);
        }
        free(*tmp);
        *tmp = NULL;
    }
    return rc;
}

int local_commit(FILE *f, const char *tmp, const char *path)
{
    int rc = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = err_set(KF_EIO, "storage: %s: writing failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && !rc)
        rc = err_set(KF_EIO, "storage: %s: writing failed: %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = err_set(errno_code(errno), "storage: %s: cannot replace it: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

int local_copy_range(FILE *dst, const char *src, const storage_range *range)
{
    int rc = 0;
    char *buf = NULL;
    struct stat st;
    /* stat before opening: opening a FIFO would wait for a writer */
    if (stat(src, &st) != 0)
        return err_set(errno_code(errno), "storage: %s: %s", src, errno == ENOENT ? "no such file" : strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(KF_EINVAL, "storage: %s: not a regular file (%s)", src, kind_of(st.st_mode));
    FILE *in = fopen(src, "rb");
    if (!in)
        return err_set(errno_code(errno), "storage: %s: %s", src, errno == ENOENT ? "no such file" : strerror(errno));
    if (fstat(fileno(in), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = err_set(KF_EINVAL, "storage: %s: not a regular file (%s)", src, kind_of(st.st_mode));
        goto done;
    }
    int64_t off = range ? range->offset : 0, left = range && range->length >= 0 ? range->length : INT64_MAX;
    if (off < 0 || (range && range->length == 0) || (range && range->length < -1) || (range && off >= st.st_size)) {
        rc = err_set(KF_EINVAL, "storage: %s: byte range starts at %lld, beyond the %lld-byte file", src,
                     (long long)off, (long long)st.st_size);
        goto done;
    }
    if (fseeko(in, off, SEEK_SET) != 0) {
        rc = err_set(KF_EIO, "storage: %s: seek failed", src);
        goto done;
    }
    if (!(buf = malloc(1 << 20))) {
        rc = err_set(KF_ENOMEM, "storage: out of memory");
        goto done;
    }
    while (left > 0) {
        size_t want = left < (1 << 20) ? (size_t)left : (1 << 20);
        size_t n = fread(buf, 1, want, in);
        if (n == 0)
            break;
        if (fwrite(buf, 1, n, dst) != n) {
            rc = err_set(KF_EIO, "storage: writing a copy of %s failed", src);
            goto done;
        }
        left -= (int64_t)n;
    }
    if (ferror(in))
        rc = err_set(KF_EIO, "storage: %s: read error", src);
    else if (fflush(dst) != 0)
        rc = err_set(KF_EIO, "storage: writing a copy of %s failed", src);
done:
    free(buf);
    fclose(in);
    return rc;
}

static int fill_object(storage_object *o, const char *path, const struct stat *st)
{
    memset(o, 0, sizeof *o);
    struct tm tm;
    char ts[32];
    gmtime_r(&st->st_mtime, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    o->uri = strdup(path);
    o->updated = strdup(ts);
    o->size = st->st_size;
    if (!o->uri || !o->updated) {
        storage_object_dispose(o);
        return err_set(KF_ENOMEM, "storage: out of memory");
    }
    return 0;
}

int local_stat(const char *path, storage_object *out)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set(errno_code(errno), "storage: %s: %s", path, errno == ENOENT ? "no such file" : strerror(errno));
    if (!S_ISREG(st.st_mode)) /* exists, but cannot be read as an object: not "not found" */
        return err_set(KF_EINVAL, "storage: %s: not a regular file (%s)", path, kind_of(st.st_mode));
    return fill_object(out, path, &st);
}

typedef struct {
    storage_object *items;
    size_t n, cap;
    const char *prefix;
} listing;

static int walk(listing *l, const char *dir, int depth)
{
    if (depth > 64)
        return err_set(KF_EIO, "storage: %s: folders nested too deep", dir);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : err_set(KF_EIO, "storage: %s: %s", dir, strerror(errno));
    int rc = 0;
    size_t plen = strlen(l->prefix);
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = NULL;
        if (asprintf(&p, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name) < 0) {
            rc = err_set(KF_ENOMEM, "storage: out of memory");
            break;
        }
        struct stat st;
        size_t n = strlen(p);
        /* Descend only where the prefix can still match below. */
        int could = strncmp(p, l->prefix, n < plen ? n : plen) == 0;
        if (could && lstat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                rc = walk(l, p, depth + 1);
            } else if (S_ISREG(st.st_mode) && n >= plen && strstr(p, ".tmp-") == NULL) {
                if (l->n == l->cap) {
                    size_t nc = l->cap ? l->cap * 2 : 64;
                    storage_object *q = realloc(l->items, nc * sizeof *q);
                    if (!q)
                        rc = err_set(KF_ENOMEM, "storage: out of memory");
                    else
                        l->items = q, l->cap = nc;
                }
                if (!rc && !(rc = fill_object(&l->items[l->n], p, &st)))
                    l->n++;
            }
        }
        free(p);
        if (rc)
            break;
    }
    closedir(d);
    return rc;
}

static int by_uri(const void *a, const void *b)
{
    return strcmp(((const storage_object *)a)->uri, ((const storage_object *)b)->uri);
}

int local_list(const char *prefix, storage_object **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* A prefix without a folder lists the current folder: "x" matches "./x..." */
    char *dot = NULL, *dir = NULL;
    if (!strchr(prefix, '/') && asprintf(&dot, "./%s", prefix) < 0)
        return err_set(KF_ENOMEM, "storage: out of memory");
    listing l = {.prefix = dot ? dot : prefix};
    if (!(dir = strdup(l.prefix))) {
        free(dot);
        return err_set(KF_ENOMEM, "storage: out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int rc = walk(&l, dir, 0);
    free(dir);
    free(dot);
    if (rc) {
        storage_list_free(l.items, l.n);
        return rc;
    }
    if (l.n)
        qsort(l.items, l.n, sizeof *l.items, by_uri);
    *out = l.items;
    *n = l.n;
    return 0;
}

int local_delete(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return err_set(KF_EINVAL, "storage: %s: is a folder; delete its files instead", path);
    if (unlink(path) != 0)
        return err_set(errno_code(errno), "storage: %s: %s", path, errno == ENOENT ? "no such file" : strerror(errno));
    return 0;
}
