/* fileio: a whole local file in memory - the one reader the trainer (data, vocabularies,
 * weights), the storage layer (credentials) and the controller (kubeconfig) share.
 *   char *buf; size_t len; if ((rc = file_read_all(&buf, &len, path)) < 0) ...; free(buf);
 * Errors name the path: KF_ENOTFOUND "no such file", KF_EINVAL "not a regular file" (a folder,
 * a device, a pipe) or "larger than N bytes", KF_EAUTH permission denied, KF_EIO read errors,
 * KF_ENOMEM. */
#ifndef KUBEFIT_FILEIO_H
#define KUBEFIT_FILEIO_H

#include <stddef.h>

/* *buf gets the bytes plus a terminating NUL (not counted in *len); the caller frees it. On error
 * *buf is NULL and *len 0. */
int file_read_all(char **buf, size_t *len, const char *path);
/* Same, refusing files of more than max bytes (KF_EINVAL). */
int file_read_max(char **buf, size_t *len, const char *path, size_t max);

#endif
