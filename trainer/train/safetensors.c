/* safetensors: reader with full header validation, F32 writer. See safetensors.h. */
#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fileio.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER (100u * 1024 * 1024) /* as the reference implementation */

struct st_file {
    unsigned char *image; /* whole file */
    size_t len;
    const unsigned char *data; /* image + 8 + header length */
    size_t data_len;
    st_tensor *tensors; /* sorted by begin */
    size_t n;
    json_t *metadata; /* object or NULL */
};

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_I16] = {"I16", 2},   [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},   [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(st_dtype dt)
{
    return (size_t)dt < sizeof dtypes / sizeof dtypes[0] ? dtypes[dt].name : "?";
}

size_t st_dtype_size(st_dtype dt)
{
    return (size_t)dt < sizeof dtypes / sizeof dtypes[0] ? dtypes[dt].size : 0;
}

static int dtype_parse(st_dtype *out, const char *s)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, s) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    return -1;
}

void st_free(st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    json_decref(f->metadata);
    free(f->image);
    free(f);
}

static int cmp_begin(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Parses one tensor entry `val` named `name` into t. */
static int parse_entry(st_tensor *t, const char *name, json_t *val)
{
    if (!json_is_object(val))
        return err_set(KF_EINVAL, "tensor '%s': entry is not an object", name);
    json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
           *jo = json_object_get(val, "data_offsets");
    if (!json_is_string(jd))
        return err_set(KF_EINVAL, "tensor '%s': missing or non-string \"dtype\"", name);
    if (dtype_parse(&t->dtype, json_string_value(jd)) < 0)
        return err_set(KF_EINVAL, "tensor '%s': unknown dtype \"%s\"", name, json_string_value(jd));
    if (!json_is_array(js))
        return err_set(KF_EINVAL, "tensor '%s': missing or non-array \"shape\"", name);
    if (json_array_size(js) > ST_MAX_DIMS)
        return err_set(KF_EINVAL, "tensor '%s': %zu dimensions (at most %d supported)", name,
                       json_array_size(js), ST_MAX_DIMS);
    t->ndim = (int)json_array_size(js);
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *x = json_array_get(js, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return err_set(KF_EINVAL, "tensor '%s': shape[%d] is not a non-negative integer", name, d);
        uint64_t dim = (uint64_t)json_integer_value(x);
        if (dim != 0 && numel > SIZE_MAX / dim)
            return err_set(KF_EINVAL, "tensor '%s': shape overflows", name);
        numel *= (size_t)dim;
        t->shape[d] = (int64_t)dim;
    }
    t->numel = numel;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return err_set(KF_EINVAL, "tensor '%s': \"data_offsets\" must be [begin, end]", name);
    json_int_t b = json_integer_value(json_array_get(jo, 0)), e = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e < b)
        return err_set(KF_EINVAL, "tensor '%s': bad data_offsets [%lld, %lld]", name, (long long)b,
                       (long long)e);
    t->begin = (size_t)b;
    t->end = (size_t)e;
    size_t esz = st_dtype_size(t->dtype);
    if (numel > SIZE_MAX / esz)
        return err_set(KF_EINVAL, "tensor '%s': byte size overflows", name);
    if (t->end - t->begin != numel * esz)
        return err_set(KF_EINVAL, "tensor '%s': data_offsets span %zu bytes, dtype %s x shape needs %zu",
                       name, t->end - t->begin, st_dtype_name(t->dtype), numel * esz);
    return 0;
}

static int parse_header(st_file *f, const char *hdr, size_t hlen)
{
    int rc = 0;
    json_error_t jerr;
    json_t *root = NULL;
    if (hlen == 0 || hdr[0] != '{')
        return err_set(KF_EINVAL, "header does not start with '{'");
    root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = err_set(KF_EINVAL, "header is not valid JSON: %s (at byte %d)", jerr.text, jerr.position);
        goto done;
    }
    if (!json_is_object(root)) {
        rc = err_set(KF_EINVAL, "header is not a JSON object");
        goto done;
    }
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                rc = err_set(KF_EINVAL, "\"__metadata__\" is not an object");
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    rc = err_set(KF_EINVAL, "\"__metadata__\".\"%s\" is not a string", mk);
                    goto done;
                }
            }
            f->metadata = json_incref(val);
            continue;
        }
        st_tensor *t = &f->tensors[f->n];
        if ((rc = parse_entry(t, key, val)) < 0)
            goto done;
        if (!(t->name = strdup(key))) {
            rc = err_set(KF_ENOMEM, "out of memory");
            goto done;
        }
        f->n++;
    }
    qsort(f->tensors, f->n, sizeof *f->tensors, cmp_begin);
    size_t expect = 0;
    for (size_t i = 0; i < f->n; i++) {
        const st_tensor *t = &f->tensors[i];
        if (t->begin != expect) {
            rc = err_set(KF_EINVAL, "tensor '%s': data starts at %zu, expected %zu (%s)", t->name,
                         t->begin, expect, t->begin < expect ? "overlaps the previous tensor" : "gap");
            goto done;
        }
        expect = t->end;
    }
    if (expect != f->data_len) {
        rc = err_set(KF_EINVAL, "tensors cover %zu bytes of a %zu-byte data buffer", expect, f->data_len);
        goto done;
    }
done:
    json_decref(root);
    return rc;
}

int st_parse(st_file **out, const void *buf, size_t len)
{
    int rc = 0;
    st_file *f = NULL;
    *out = NULL;
    if (len < 8)
        return err_set(KF_EINVAL, "safetensors: file of %zu bytes is too short for the header length", len);
    const unsigned char *p = buf;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | p[i];
    if (hlen > ST_MAX_HEADER)
        return err_set(KF_EINVAL, "safetensors: header length %llu exceeds the %u-byte limit",
                       (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return err_set(KF_EINVAL, "safetensors: header length %llu exceeds the file (%zu bytes)",
                       (unsigned long long)hlen, len);
    if (!(f = calloc(1, sizeof *f)) || !(f->image = malloc(len))) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(f->image, buf, len);
    f->len = len;
    f->data = f->image + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;
    if ((rc = parse_header(f, (const char *)f->image + 8, (size_t)hlen)) < 0) {
        err_wrap(rc, "safetensors");
        goto done;
    }
    *out = f;
    f = NULL;
done:
    st_free(f);
    return rc;
}

int st_load(st_file **out, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = file_read_all(&buf, &len, path);
    if (rc == 0 && (rc = st_parse(out, buf, len)) < 0)
        err_wrap(rc, "%s", path);
    free(buf);
    return rc;
}

size_t st_count(const st_file *f) { return f ? f->n : 0; }

const st_tensor *st_at(const st_file *f, size_t i) { return f && i < f->n ? &f->tensors[i] : NULL; }

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key)
{
    return f && f->metadata ? json_string_value(json_object_get(f->metadata, key)) : NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

int st_read_f32(float *out, size_t n, const st_file *f, const char *name, const int64_t *shape, int ndim)
{
    const st_tensor *t = st_find(f, name);
    if (!t)
        return err_set(KF_ENOTFOUND, "safetensors: tensor '%s' not found", name);
    if (shape) {
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++)
            same = t->shape[d] == shape[d];
        if (!same)
            return err_set(KF_EINVAL, "safetensors: tensor '%s' has shape %dD [%lld,...], expected %dD [%lld,...]",
                           name, t->ndim, t->ndim ? (long long)t->shape[0] : 0LL, ndim,
                           ndim ? (long long)shape[0] : 0LL);
    }
    if (t->numel != n)
        return err_set(KF_EINVAL, "safetensors: tensor '%s' has %zu elements, expected %zu", name, t->numel, n);
    const unsigned char *src = f->data + t->begin;
    switch (t->dtype) {
    case ST_F32:
        memcpy(out, src, n * 4);
        break;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double x;
            memcpy(&x, src + 8 * i, 8);
            out[i] = (float)x;
        }
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&out[i], &bits, 4);
        }
        break;
    default:
        return err_set(KF_EINVAL, "safetensors: tensor '%s' has dtype %s (need F32, F16, BF16 or F64)", name,
                       st_dtype_name(t->dtype));
    }
    return 0;
}

/* Index of the first NaN or infinity of n values of dtype dt at src (n when none); *nan says which. */
static size_t first_non_finite(const unsigned char *src, size_t n, st_dtype dt, int *nan)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = 0, exp_mask, man_mask;
        switch (dt) {
        case ST_F32:
            bits = (uint64_t)src[4 * i] | (uint64_t)src[4 * i + 1] << 8 | (uint64_t)src[4 * i + 2] << 16 |
                   (uint64_t)src[4 * i + 3] << 24;
            exp_mask = 0x7f800000u, man_mask = 0x007fffffu;
            break;
        case ST_F64:
            for (int k = 0; k < 8; k++)
                bits |= (uint64_t)src[8 * i + (size_t)k] << (8 * k);
            exp_mask = 0x7ff0000000000000ull, man_mask = 0x000fffffffffffffull;
            break;
        case ST_F16:
            bits = (uint64_t)src[2 * i] | (uint64_t)src[2 * i + 1] << 8;
            exp_mask = 0x7c00u, man_mask = 0x03ffu;
            break;
        case ST_BF16:
            bits = (uint64_t)src[2 * i] | (uint64_t)src[2 * i + 1] << 8;
            exp_mask = 0x7f80u, man_mask = 0x007fu;
            break;
        default:
            return n;
        }
        if ((bits & exp_mask) == exp_mask) {
            *nan = (bits & man_mask) != 0;
            return i;
        }
    }
    return n;
}

int st_check_finite(const st_file *f)
{
    for (size_t t = 0; f && t < f->n; t++) {
        const st_tensor *x = &f->tensors[t];
        int nan = 0;
        size_t i = first_non_finite(f->data + x->begin, x->numel, x->dtype, &nan);
        if (i < x->numel)
            return err_set(KF_EINVAL, "tensor \"%s\" holds %s (element %zu of %zu)", x->name,
                           nan ? "NaN" : "infinity", i, x->numel);
    }
    return 0;
}

/* ---- writer ---- */

typedef struct {
    char *name;
    const float *data;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
} st_entry;

struct st_writer {
    st_entry *e;
    size_t n, cap;
    json_t *meta;
};

int st_writer_new(st_writer **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out || !((*out)->meta = json_object())) {
        free(*out);
        *out = NULL;
        return err_set(KF_ENOMEM, "out of memory");
    }
    return 0;
}

void st_writer_free(st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->e[i].name);
    free(w->e);
    json_decref(w->meta);
    free(w);
}

int st_writer_add(st_writer *w, const char *name, const float *data, const int64_t *shape, int ndim)
{
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return err_set(KF_EINVAL, "safetensors: tensor '%s': %d dimensions", name, ndim);
    if (strcmp(name, "__metadata__") == 0)
        return err_set(KF_EINVAL, "safetensors: '__metadata__' is not a tensor name");
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return err_set(KF_EEXISTS, "safetensors: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        st_entry *e = realloc(w->e, cap * sizeof *e);
        if (!e)
            return err_set(KF_ENOMEM, "out of memory");
        w->e = e;
        w->cap = cap;
    }
    st_entry *e = &w->e[w->n];
    e->numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return err_set(KF_EINVAL, "safetensors: tensor '%s': negative dimension", name);
        e->shape[d] = shape[d];
        e->numel *= (size_t)shape[d];
    }
    if (!(e->name = strdup(name)))
        return err_set(KF_ENOMEM, "out of memory");
    e->data = data;
    e->ndim = ndim;
    w->n++;
    return 0;
}

int st_writer_meta(st_writer *w, const char *key, const char *value)
{
    if (json_object_set_new(w->meta, key, json_string(value)) != 0)
        return err_set(KF_EINVAL, "safetensors: bad metadata '%s' (not UTF-8?)", key);
    return 0;
}

int st_writer_bytes(st_writer *w, unsigned char **buf, size_t *len)
{
    int rc = 0;
    char *hdr = NULL;
    json_t *root = json_object();
    *buf = NULL;
    *len = 0;
    if (!root)
        return err_set(KF_ENOMEM, "out of memory");
    if (json_object_size(w->meta))
        json_object_set(root, "__metadata__", w->meta);
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_entry *e = &w->e[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++)
            json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *t = json_pack("{s:s,s:o,s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + 4 * e->numel));
        if (!t || json_object_set_new(root, e->name, t) != 0) {
            rc = err_set(KF_EINVAL, "safetensors: cannot encode tensor '%s'", e->name);
            goto done;
        }
        off += 4 * e->numel;
    }
    if (!(hdr = json_dumps(root, JSON_COMPACT))) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    if (!(*buf = malloc(8 + padded + off))) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < 8; i++)
        (*buf)[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(*buf + 8, hdr, hl);
    memset(*buf + 8 + hl, ' ', padded - hl);
    unsigned char *p = *buf + 8 + padded;
    for (size_t i = 0; i < w->n; i++) {
        if (w->e[i].numel)
            memcpy(p, w->e[i].data, 4 * w->e[i].numel);
        p += 4 * w->e[i].numel;
    }
    *len = 8 + padded + off;
done:
    free(hdr);
    json_decref(root);
    return rc;
}

int st_writer_save(st_writer *w, const char *path)
{
    int rc = 0;
    unsigned char *buf = NULL;
    size_t len = 0;
    char *tmp = NULL;
    FILE *fp = NULL;
    if ((rc = st_writer_bytes(w, &buf, &len)) < 0)
        goto done;
    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        tmp = NULL;
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if (!(fp = fopen(tmp, "wb"))) {
        rc = err_set(KF_EIO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (fwrite(buf, 1, len, fp) != len || fflush(fp) != 0) {
        rc = err_set(KF_EIO, "%s: write failed: %s", tmp, strerror(errno));
        goto done;
    }
    if (fclose(fp) != 0) {
        fp = NULL;
        rc = err_set(KF_EIO, "%s: close failed: %s", tmp, strerror(errno));
        goto done;
    }
    fp = NULL;
    if (rename(tmp, path) != 0)
        rc = err_set(KF_EIO, "rename %s -> %s: %s", tmp, path, strerror(errno));
done:
    if (fp)
        fclose(fp);
    if (rc < 0 && tmp)
        remove(tmp);
    free(tmp);
    free(buf);
    return rc;
}
