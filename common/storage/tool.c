/* kubefit-storage: a small CLI over the storage layer, for scripts, tests and debugging.
 *   kubefit-storage cp SRC DST      any of gs://, file:// or a path on either side
 *   kubefit-storage cat URI         object bytes to stdout
 *   kubefit-storage ls PREFIX       one "SIZE URI" line per object
 *   kubefit-storage stat URI        the object's metadata as JSON
 *   kubefit-storage rm URI
 * Exit status: 0 ok, 2 bad input / not found / denied, 3 transient (retry), 1 other. */
#include "err.h"
#include "log.h"
#include "storage.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(void)
{
    fputs("usage: kubefit-storage cp SRC DST | cat URI | ls PREFIX | stat URI | rm URI\n", stderr);
    return 2;
}

static int is_gs(const char *s) { return strncmp(s, "gs://", 5) == 0; }

static int cmd_cp(storage *s, const char *src, const char *dst)
{
    if (!is_gs(dst))
        return storage_get(s, src, strncmp(dst, "file://", 7) == 0 ? dst + 7 : dst, NULL);
    if (!is_gs(src))
        return storage_put(s, strncmp(src, "file://", 7) == 0 ? src + 7 : src, dst);
    char tmp[] = "/tmp/kubefit-storage-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        return err_set(KF_EIO, "kubefit-storage: cannot create a temporary file");
    close(fd);
    int rc = storage_get(s, src, tmp, NULL);
    if (!rc)
        rc = storage_put(s, tmp, dst);
    unlink(tmp);
    return rc;
}

static int cmd_cat(storage *s, const char *uri)
{
    char *data = NULL;
    size_t len = 0;
    int rc = storage_read(s, uri, &data, &len);
    if (!rc && fwrite(data, 1, len, stdout) != len)
        rc = err_set(KF_EIO, "kubefit-storage: writing stdout failed");
    free(data);
    return rc;
}

static int cmd_ls(storage *s, const char *prefix)
{
    storage_object *objs = NULL;
    size_t n = 0;
    int rc = storage_list(s, prefix, &objs, &n);
    for (size_t i = 0; !rc && i < n; i++)
        printf("%lld %s\n", (long long)objs[i].size, objs[i].uri);
    storage_list_free(objs, n);
    return rc;
}

static int cmd_stat(storage *s, const char *uri)
{
    storage_object o;
    int rc = storage_stat(s, uri, &o);
    if (rc)
        return rc;
    json_t *j = json_pack("{s:s,s:I,s:s?,s:s?,s:I,s:s?,s:s?}", "uri", o.uri, "size", (json_int_t)o.size, "crc32c",
                          o.crc32c, "md5", o.md5, "generation", (json_int_t)o.generation, "contentType",
                          o.content_type, "updated", o.updated);
    char *text = j ? json_dumps(j, JSON_SORT_KEYS) : NULL;
    if (text)
        puts(text);
    else
        rc = err_set(KF_ENOMEM, "kubefit-storage: out of memory");
    free(text);
    json_decref(j);
    storage_object_dispose(&o);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *cmd = argv[1];
    storage *s = NULL;
    int rc = storage_new(&s, NULL);
    if (!rc) {
        if (!strcmp(cmd, "cp") && argc == 4)
            rc = cmd_cp(s, argv[2], argv[3]);
        else if (!strcmp(cmd, "cat") && argc == 3)
            rc = cmd_cat(s, argv[2]);
        else if (!strcmp(cmd, "ls") && argc == 3)
            rc = cmd_ls(s, argv[2]);
        else if (!strcmp(cmd, "stat") && argc == 3)
            rc = cmd_stat(s, argv[2]);
        else if (!strcmp(cmd, "rm") && argc >= 3)
            for (int i = 2; i < argc && !rc; i++)
                rc = storage_delete(s, argv[i]);
        else {
            storage_free(s);
            return usage();
        }
    }
    storage_free(s);
    if (fflush(stdout) != 0 && !rc)
        rc = err_set(KF_EIO, "kubefit-storage: writing stdout failed");
    if (!rc)
        return 0;
    log_error("storage", "command failed", "{s:s,s:s,s:s}", "command", cmd, "code", err_name(rc), "error", err_msg());
    return rc == KF_ERETRY ? 3 : (rc == KF_EINVAL || rc == KF_ENOTFOUND || rc == KF_EAUTH) ? 2 : 1;
}
