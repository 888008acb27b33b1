/* fuzz_csv: the CSV reader, dataset loading (CSV and JSON lines, several options) and vocab
 * parsing on arbitrary bytes. Byte 0 picks the options; the rest is the file. Invariants:
 * no crash, fields/lines consistent, loaded datasets well formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "dataset.h"
#include "err.h"
#include "log.h"
#include "utf8.h"
#include "vocab.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (!devnull) {
        devnull = fopen("/dev/null", "w");
        log_set_stream(devnull);
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    csv_reader r;
    csv_init(&r, buf, len, "fuzz.csv");
    long last = 0;
    for (int rc, guard = 0; (rc = csv_next(&r)) != 0 && guard < 100000; guard++) {
        if (rc < 0)
            continue;
        REQUIRE(r.n_fields >= 1);
        REQUIRE(r.row_line > last);
        last = r.row_line;
        for (size_t i = 0; i < r.n_fields; i++)
            REQUIRE(r.fields[i][r.lens[i]] == 0);
    }
    csv_dispose(&r);

    static const char *const cols[] = {"a", "labels", NULL};
    ds_opts o = {
        .format = mode & 1 ? DS_FORMAT_JSONL : DS_FORMAT_CSV,
        .skip_bad_rows = mode & 2,
        .allow_unlabelled = mode & 4,
        .label_cols = mode & 8 ? cols : NULL,
        .label_sep = mode & 16 ? ',' : 0,
    };
    ds_dataset d;
    if (ds_load_buffer(&d, buf, len, "fuzz", &o) == 0) {
        REQUIRE(d.n > 0);
        for (size_t l = 0; l < d.n_label_names; l++) { /* label names: UTF-8, no control characters */
            const char *nm = d.label_names[l];
            REQUIRE(nm[0] && utf8_valid(nm, strlen(nm), NULL));
            for (const unsigned char *c = (const unsigned char *)nm; *c; c++)
                REQUIRE(*c >= 0x20 && *c != 0x7f && !(*c == 0xc2 && c[1] < 0xa0));
        }
        for (size_t i = 0; i < d.n; i++) {
            REQUIRE(d.ex[i].text && d.ex[i].text[0]);
            for (size_t k = 0; k < d.ex[i].n_labels; k++) {
                REQUIRE(d.ex[i].labels[k] < d.n_label_names);
                REQUIRE(k == 0 || d.ex[i].labels[k - 1] < d.ex[i].labels[k]);
            }
        }
        ds_dataset tr, va;
        if (ds_split(&tr, &va, &d, 0.25, mode) == 0) {
            REQUIRE(tr.n + va.n == d.n);
            /* valid mapped onto the labels of the first half of train's: unseen ones counted */
            ds_unseen un = {0};
            size_t before = va.n;
            if (ds_relabel(&va, tr.label_names, tr.n_label_names / 2, &un) == 0) {
                REQUIRE(un.n_names <= un.labels && un.rows <= before);
                for (size_t i = 0; i < va.n; i++)
                    for (size_t k = 0; k < va.ex[i].n_labels; k++)
                        REQUIRE(va.ex[i].labels[k] < va.n_label_names);
                REQUIRE(ds_drop_unlabelled(&va) <= before);
                ds_unseen_dispose(&un);
            }
            ds_dispose(&tr);
            ds_dispose(&va);
        }
    } else {
        REQUIRE(err_msg()[0] != 0);
    }
    ds_dispose(&d);

    vocab *v = NULL;
    if (vocab_parse(&v, buf, len, "fuzz.vocab") == 0) {
        REQUIRE(vocab_size(v) >= 9);
        for (size_t i = 0; i < vocab_size(v); i++) {
            const char *t = vocab_token(v, (int32_t)i);
            int32_t id = vocab_id(v, t);
            REQUIRE(id == (int32_t)i || strcmp(t, "xxfake") == 0 || id < (int32_t)i);
        }
        vocab_free(v);
    }
    return 0;
}
