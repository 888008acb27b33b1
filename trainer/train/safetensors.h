/* safetensors: read and write the safetensors format (https://huggingface.co/docs/safetensors).
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON header (may end in spaces),
 * then the data buffer. The header maps each tensor name to {"dtype","shape","data_offsets":
 * [begin,end]} (offsets relative to the data buffer) and may hold "__metadata__" (string->string).
 * Reading validates everything before any data is touched: offsets in bounds, size equal to
 * dtype size * prod(shape), tensors contiguous and non-overlapping, covering the whole buffer.
 * Reading converts F32, F16, BF16 and F64 to float32; other dtypes are recognised (for the size
 * checks) but not convertible. Writing produces F32 tensors, header padded to 8 bytes. */
#ifndef KUBEFIT_SAFETENSORS_H
#define KUBEFIT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64,
} st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t begin, end; /* byte offsets into the data buffer */
} st_tensor;

typedef struct st_file st_file;

/* Parses a whole file image (copied). Caller frees with st_free. KF_EINVAL on a malformed file. */
int st_parse(st_file **out, const void *buf, size_t len);
/* Reads and parses a local file. */
int st_load(st_file **out, const char *path);
void st_free(st_file *f);

size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);      /* in data-offset order */
const st_tensor *st_find(const st_file *f, const char *name);
/* The __metadata__ value for key, or NULL. Valid until st_free. */
const char *st_metadata(const st_file *f, const char *key);

/* Copies tensor `name` into out (float32), converting from F32/F16/BF16/F64. When shape is not
 * NULL the tensor's shape must equal shape[0..ndim); otherwise only numel must equal n.
 * KF_ENOTFOUND when missing, KF_EINVAL on a shape or dtype mismatch (message names the tensor). */
int st_read_f32(float *out, size_t n, const st_file *f, const char *name,
                const int64_t *shape, int ndim);

/* KF_EINVAL 'tensor "NAME" holds NaN (element I of N)' (or infinity) for the first floating-point
 * tensor (F32, F64, F16, BF16) in data order that holds a non-finite value; 0 when none does. */
int st_check_finite(const st_file *f);

const char *st_dtype_name(st_dtype dt);
size_t st_dtype_size(st_dtype dt);

/* Writer: collects F32 tensors (data borrowed until st_writer_save) and metadata. */
typedef struct st_writer st_writer;
int st_writer_new(st_writer **out);
void st_writer_free(st_writer *w);
int st_writer_add(st_writer *w, const char *name, const float *data, const int64_t *shape, int ndim);
int st_writer_meta(st_writer *w, const char *key, const char *value);
/* Writes the file atomically (path.tmp then rename). */
int st_writer_save(st_writer *w, const char *path);
/* Serialises to memory; caller frees *buf with free(). */
int st_writer_bytes(st_writer *w, unsigned char **buf, size_t *len);

#endif
