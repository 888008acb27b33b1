/* csv: an RFC 4180 reader over a memory buffer: quoted fields, doubled quotes, embedded
 * newlines, CRLF or LF line ends, a leading UTF-8 BOM, a last line with or without a line end.
 * No fixed-size buffers; each row's fields are owned by the reader until the next call. */
#ifndef KUBEFIT_TEXT_CSV_H
#define KUBEFIT_TEXT_CSV_H

#include <stddef.h>

typedef struct csv_reader {
    const char *buf;     /* borrowed */
    size_t len, pos;
    const char *name;    /* for messages (a path); borrowed */
    long line;           /* line of the next row (1-based) */
    long row_line;       /* line where the last returned row started */
    char **fields;       /* last row: NUL-terminated fields */
    size_t *lens;        /* their lengths (a field may hold NUL bytes) */
    size_t n_fields, cap_fields;
    char *scratch;       /* storage behind fields */
    size_t scratch_cap;
} csv_reader;

/* Starts reading buf[0..len); skips a UTF-8 BOM. name may be NULL ("<csv>"). */
void csv_init(csv_reader *r, const char *buf, size_t len, const char *name);
void csv_dispose(csv_reader *r);
/* Next row: 1 when a row was read (fields in r->fields / r->n_fields), 0 at end of input,
 * KF_EINVAL on malformed input ("name:line: unterminated quoted field", "... characters after
 * closing quote"); after an error the reader has skipped to the next line so a caller may go on
 * (r->fields is only meaningful after a return of 1).
 * KF_ENOMEM. */
int csv_next(csv_reader *r);

#endif
