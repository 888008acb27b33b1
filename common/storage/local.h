/* local: the file:// side of the storage layer (plain files, atomic replace by rename). */
#ifndef KUBEFIT_STORAGE_LOCAL_H
#define KUBEFIT_STORAGE_LOCAL_H

#include "storage.h"

#include <stdio.h>

/* Creates path's parent folders (mkdir -p of its dirname). */
int local_mkdirs_for(const char *path);
/* Opens a new temporary file next to path (creating the folders); *tmp: its name, caller frees. */
int local_temp_for(const char *path, FILE **f, char **tmp);
/* Flushes and closes f and renames tmp over path; on any failure removes tmp. Always closes f. */
int local_commit(FILE *f, const char *tmp, const char *path);
/* Copies [offset, offset+length) (length -1: to the end) of the file at src into dst. */
int local_copy_range(FILE *dst, const char *src, const storage_range *range);
int local_stat(const char *path, storage_object *out);
/* Regular files whose path starts with prefix, sorted. */
int local_list(const char *prefix, storage_object **out, size_t *n);
int local_delete(const char *path);

#endif
