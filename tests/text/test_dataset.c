/* Unit tests of dataset loading (CSV, JSON lines), label handling, errors with file:line,
 * skip_bad_rows, relabel and the seeded split. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "err.h"
#include "test.h"

static int load(ds_dataset *d, const char *buf, const char *name, const ds_opts *o)
{
    return ds_load_buffer(d, buf, strlen(buf), name, o);
}

static const char *label(const ds_dataset *d, size_t ex, size_t k)
{
    return d->label_names[d->ex[ex].labels[k]];
}

static void expect_error(int line, const char *buf, const char *name, const ds_opts *o, const char *msg)
{
    ds_dataset d;
    int rc = load(&d, buf, name, o);
    test_checks++;
    if (rc != KF_EINVAL || !strstr(err_msg(), msg) || d.n != 0) {
        test_failures++;
        fprintf(stderr, "test_dataset.c:%d: expected KF_EINVAL with \"%s\", got %d \"%s\"\n", line, msg,
                rc, err_msg());
    }
    ds_dispose(&d);
}
#define ERR(buf, name, o, msg) expect_error(__LINE__, buf, name, o, msg)

int main(void)
{
    ds_dataset d;
    /* one label column, ';'-separated; labels sorted by name; duplicates and blanks dropped */
    CHECK_EQ_INT(0, load(&d, "id,text,labels\n1,\"Hello, world\",\"z; a;;a\"\n2,second,b\n\n3,third,a\n",
                         "x.csv", NULL));
    CHECK_EQ_INT(3, (long long)d.n);
    CHECK_EQ_INT(3, (long long)d.n_label_names);
    CHECK_EQ_STR("a", d.label_names[0]);
    CHECK_EQ_STR("z", d.label_names[2]);
    CHECK_EQ_STR("Hello, world", d.ex[0].text);
    CHECK_EQ_INT(2, (long long)d.ex[0].n_labels);
    CHECK_EQ_STR("a", label(&d, 0, 0));
    CHECK_EQ_STR("z", label(&d, 0, 1));
    CHECK_EQ_INT(5, d.ex[2].line);
    CHECK(!ds_single_label(&d));
    ds_dispose(&d);

    /* custom column names and separator */
    ds_opts o = {.text_col = "body", .label_col = "tags", .label_sep = '|'};
    CHECK_EQ_INT(0, load(&d, "tags,body\nx|y,one\nx,two\n", "y.csv", &o));
    CHECK_EQ_INT(2, (long long)d.ex[0].n_labels);
    CHECK_EQ_STR("two", d.ex[1].text);
    ds_dispose(&d);

    /* one 0/1 column per label: implicit (every other column) and named */
    CHECK_EQ_INT(0, load(&d, "text,toxic,spam\nbad,1,0\nok,0,0\nboth,1,1\n", "f.csv",
                         &(ds_opts){.allow_unlabelled = true}));
    CHECK_EQ_INT(3, (long long)d.n);
    CHECK_EQ_STR("spam", d.label_names[0]);
    CHECK_EQ_INT(0, (long long)d.ex[1].n_labels);
    CHECK_EQ_INT(2, (long long)d.ex[2].n_labels);
    ds_dispose(&d);
    const char *cols[] = {"spam", NULL};
    CHECK_EQ_INT(0, load(&d, "text,toxic,spam\nbad,1,1\n", "f.csv", &(ds_opts){.label_cols = cols}));
    CHECK_EQ_INT(1, (long long)d.n_label_names);
    CHECK(ds_single_label(&d));
    ds_dispose(&d);

    /* errors name file:line */
    ERR("", "e.csv", NULL, "e.csv: empty file");
    ERR("body,labels\nx,y\n", "e.csv", NULL, "e.csv:1: no column \"text\"");
    ERR("text,labels\nx,a\ny\n", "e.csv", NULL, "e.csv:3: expected 2 fields (as in the header), found 1");
    ERR("text,labels\n\"x\nx\",a\n\"y\"z,b\n", "e.csv", NULL, "e.csv:4: characters after the closing quote");
    ERR("text,labels\nx,a\n\"open,b\n", "e.csv", NULL, "e.csv:3: unterminated quoted field");
    ERR("text,labels\nx,\n", "e.csv", NULL, "e.csv:2: no labels");
    ERR("text,labels\n,a\n", "e.csv", NULL, "e.csv:2: empty text");
    ERR("text,toxic\nx,2\n", "e.csv", NULL, "e.csv:2: column \"toxic\": expected 0 or 1, found \"2\"");
    ERR("text,labels\n", "e.csv", NULL, "e.csv: no examples");
    ERR("text,labels\nx,a\n", "e.csv", &(ds_opts){.label_col = "tags"}, "e.csv:1: no label column \"tags\"");
    ERR("text\nx\n", "e.csv", NULL, "no label column");
    ERR("{\"text\":\"a\",\"labels\":[\"x\"]}\n{\"text\":1}\n", "e.jsonl", NULL, "e.jsonl:2: \"text\" missing or not a string");
    ERR("{\"text\":\"a\",\"labels\":[\"x\"]}\n\n{bad json\n", "e.jsonl", NULL, "e.jsonl:3: invalid JSON");
    ERR("[1,2]\n", "e.jsonl", NULL, "e.jsonl:1: expected a JSON object");
    ERR("{\"text\":\"a\",\"labels\":[1]}\n", "e.jsonl", NULL, "e.jsonl:1: key \"labels\"[0] is not a string");
    ERR("{\"text\":\"a\",\"labels\":{}}\n", "e.jsonl", NULL, "e.jsonl:1: \"labels\" must be an array");

    /* skip_bad_rows: bad rows are counted, good ones kept */
    ds_opts skip = {.skip_bad_rows = true};
    CHECK_EQ_INT(0, load(&d, "text,labels\nx,a\ny\n\"q\"z,b\n,c\nw,b\n", "s.csv", &skip));
    CHECK_EQ_INT(2, (long long)d.n);
    CHECK_EQ_INT(3, (long long)d.skipped);
    CHECK_EQ_STR("w", d.ex[1].text);
    ds_dispose(&d);
    ERR("text,labels\ny\n", "s.csv", &skip, "s.csv: no examples (all rows were bad)");

    /* JSON lines: arrays or a separated string; NUL inside text becomes U+FFFD (as in CSV) */
    CHECK_EQ_INT(0, load(&d, "{\"text\":\"caf\\u00e9 \\ud83d\\ude00\",\"labels\":[\"b\",\"a\"]}\r\n"
                             "  \n{\"labels\":\"c;a\",\"text\":\"two\",\"extra\":1}",
                         "j.jsonl", NULL));
    CHECK_EQ_INT(2, (long long)d.n);
    CHECK_EQ_STR("caf\xc3\xa9 \xf0\x9f\x98\x80", d.ex[0].text);
    CHECK_EQ_INT(3, d.ex[1].line);
    CHECK_EQ_STR("c", label(&d, 1, 1));
    ds_dispose(&d);
    CHECK_EQ_INT(0, load(&d, "{\"text\":\"a\\u0000b\",\"labels\":[\"x\"]}\n", "n.jsonl", NULL));
    CHECK_EQ_STR("a\xef\xbf\xbd" "b", d.ex[0].text);
    ds_dispose(&d);
    static const char nul_csv[] = "text,labels\nx\0y\0,a\n";
    CHECK_EQ_INT(0, ds_load_buffer(&d, nul_csv, sizeof nul_csv - 1, "n.csv", NULL));
    CHECK_EQ_STR("x\xef\xbf\xbdy\xef\xbf\xbd", d.ex[0].text);
    ds_dispose(&d);

    /* relabel a valid set into the train set's labels */
    CHECK_EQ_INT(0, load(&d, "text,labels\nx,b;new\ny,a\n", "v.csv", NULL));
    char *names[] = {"a", "b", "c"};
    ds_unseen un = {0};
    CHECK_EQ_INT(0, ds_relabel(&d, names, 3, &un));
    CHECK_EQ_INT(1, (long long)un.rows);
    CHECK_EQ_INT(1, (long long)un.labels);
    CHECK_EQ_INT(1, (long long)un.n_names);
    CHECK_EQ_STR("new", un.n_names ? un.names[0] : NULL);
    CHECK_EQ_INT(3, (long long)d.n_label_names);
    CHECK_EQ_INT(1, (long long)d.ex[0].n_labels);
    CHECK_EQ_INT(1, d.ex[0].labels[0]);
    CHECK_EQ_INT(0, d.ex[1].labels[0]);
    CHECK_EQ_INT(0, (long long)ds_drop_unlabelled(&d)); /* every row still has a label */
    ds_dispose(&d);
    ds_unseen_dispose(&un);
    /* rows left with no label (single-label: nothing to score) are what ds_drop_unlabelled removes;
     * unseen names are listed in order of first use, each once */
    CHECK_EQ_INT(0, load(&d, "text,labels\nx,zz\ny,a\nw,q;zz\nv,zz\n", "v.csv", NULL));
    CHECK_EQ_INT(0, ds_relabel(&d, names, 3, &un));
    CHECK_EQ_INT(3, (long long)un.rows);
    CHECK_EQ_INT(4, (long long)un.labels);
    CHECK_EQ_INT(2, (long long)un.n_names);
    CHECK_EQ_STR("zz", un.n_names > 0 ? un.names[0] : NULL);
    CHECK_EQ_STR("q", un.n_names > 1 ? un.names[1] : NULL);
    CHECK_EQ_INT(3, (long long)ds_drop_unlabelled(&d));
    CHECK_EQ_INT(1, (long long)d.n);
    CHECK_EQ_STR("y", d.ex[0].text);
    ds_dispose(&d);
    ds_unseen_dispose(&un);

    /* the common text,label header: "label" holds label names like "labels" */
    CHECK_EQ_INT(0, load(&d, "text,label\nhello,spam\nhi,ham;other\n", "l.csv", NULL));
    CHECK_EQ_INT(2, (long long)d.n);
    CHECK_EQ_INT(3, (long long)d.n_label_names);
    CHECK_EQ_STR("spam", label(&d, 0, 0));
    ds_dispose(&d);
    CHECK_EQ_INT(0, load(&d, "label,text,labels\nx,hello,b\n", "l2.csv", NULL)); /* "labels" wins */
    CHECK_EQ_STR("b", label(&d, 0, 0));
    ds_dispose(&d);
    CHECK_EQ_INT(0, load(&d, "{\"text\":\"hello\",\"label\":\"spam\"}\n", "l.jsonl", NULL));
    CHECK_EQ_STR("spam", label(&d, 0, 0));
    ds_dispose(&d);
    ERR("text,label\nx,a\n", "same.csv", &(ds_opts){.text_col = "label"},
        "same.csv:1: the text and the label column are the same column \"label\"");

    /* label names: valid UTF-8 without control characters, else a bad row naming file:line and the
     * column or key (the bytes shown as \\xNN); skip_bad_rows skips the row */
    ERR("text,labels\nok,a\nx,\"b\xff\"\n", "u.csv", NULL,
        "u.csv:3: column 2 (\"labels\"): label \"b\\xff\" is not valid UTF-8");
    ERR("text,label\nx,\"a\x01" "b\"\n", "c.csv", NULL, "c.csv:2: column 2 (\"label\"): label \"a\\x01b\" holds a control character");
    ERR("text,labels\nx,\"a\nb\"\n", "n.csv", NULL, "n.csv:2: column 2 (\"labels\"): label \"a\\x0ab\" holds a control character");
    ERR("text,labels\nx,\"a;\xc2\x85\"\n", "c1.csv", NULL, "c1.csv:2: column 2 (\"labels\"): label \"\\u0085\" holds a control character");
    ERR("{\"text\":\"x\",\"labels\":[\"a\",\"\"]}\n", "e.jsonl", NULL, "e.jsonl:1: key \"labels\"[1]: label \"\" is empty");
    ERR("{\"text\":\"x\",\"labels\":[\"a\",\"b\\u0007\"]}\n", "b.jsonl", NULL,
        "b.jsonl:1: key \"labels\"[1]: label \"b\\x07\" holds a control character");
    ERR("{\"text\":\"x\",\"labels\":\"a;b\\u0000\"}\n", "z.jsonl", NULL,
        "z.jsonl:1: key \"labels\": label \"b\\x00\" is not valid UTF-8");
    ERR("text,\"sp\xff" "am\"\nx,1\n", "h.csv", NULL, "h.csv:1: column 2: label name \"sp\\xffam\" (a 0/1 label column) is not valid UTF-8");
    ERR("text,\"\"\nx,1\n", "h2.csv", NULL, "h2.csv:1: column 2: label name \"\" (a 0/1 label column) is empty");
    CHECK_EQ_INT(0, load(&d, "text,labels\nok,a\nx,\"b\xff\"\ny,c\n", "u.csv", &skip));
    CHECK_EQ_INT(2, (long long)d.n);
    CHECK_EQ_INT(1, (long long)d.skipped);
    CHECK_EQ_INT(2, (long long)d.n_label_names);
    ds_dispose(&d);

    /* split: deterministic, seeded, about the asked fraction, independent of row order */
    size_t n = 2000;
    char *buf = malloc(n * 32 + 32), *p = buf;
    p += sprintf(p, "text,labels\n");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "document %zu,l%zu\n", i, i % 7);
    ds_dataset all, tr, va, tr2, va2;
    CHECK_EQ_INT(0, load(&all, buf, "big.csv", NULL));
    CHECK_EQ_INT(0, ds_split(&tr, &va, &all, 0.2, 42));
    CHECK_EQ_INT((long long)n, (long long)(tr.n + va.n));
    CHECK(va.n > n * 0.2 - 60 && va.n < n * 0.2 + 60);
    CHECK_EQ_INT(7, (long long)va.n_label_names);
    CHECK_EQ_INT(0, ds_split(&tr2, &va2, &all, 0.2, 42));
    CHECK_EQ_INT((long long)va.n, (long long)va2.n);
    int same = 1;
    for (size_t i = 0; i < va.n; i++)
        same &= strcmp(va.ex[i].text, va2.ex[i].text) == 0;
    CHECK(same);
    ds_dispose(&tr2);
    ds_dispose(&va2);
    CHECK_EQ_INT(0, ds_split(&tr2, &va2, &all, 0.2, 43));   /* another seed, another split */
    same = va.n == va2.n;
    for (size_t i = 0; same && i < va.n; i++)
        same &= strcmp(va.ex[i].text, va2.ex[i].text) == 0;
    CHECK(!same);
    /* membership depends on the text only: a document goes where its hash says */
    for (size_t i = 0; i < va.n; i++) {
        double u = (double)(ds_hash(va.ex[i].text, strlen(va.ex[i].text), 42) >> 11) * 0x1p-53;
        if (!(u < 0.2)) {
            TEST_FAIL_("%s in valid with u=%g", va.ex[i].text, u);
            break;
        }
    }
    CHECK(ds_hash("abc", 3, 1) != ds_hash("abc", 3, 2));
    CHECK_EQ_INT((long long)ds_hash("abc", 3, 7), (long long)ds_hash("abc", 3, 7));
    ds_dispose(&tr);
    ds_dispose(&va);
    ds_dispose(&tr2);
    ds_dispose(&va2);
    CHECK_EQ_INT(KF_EINVAL, ds_split(&tr, &va, &all, 1.5, 1));
    CHECK_EQ_INT(0, ds_split(&tr, &va, &all, 0.0, 1));
    CHECK_EQ_INT(0, (long long)va.n);
    ds_dispose(&tr);
    ds_dispose(&va);
    ds_dispose(&all);
    free(buf);

    /* files */
    char path[] = "/tmp/kubefit-ds-XXXXXX.jsonl";
    int fd = mkstemps(path, 6);
    CHECK(write(fd, "{\"text\":\"t\",\"labels\":[\"a\"]}\n", 28) == 28);
    close(fd);
    CHECK_EQ_INT(0, ds_load(&d, path, NULL));
    CHECK_EQ_INT(1, (long long)d.n);
    ds_dispose(&d);
    unlink(path);
    CHECK_EQ_INT(KF_ENOTFOUND, ds_load(&d, path, NULL));
    CHECK(strstr(err_msg(), path) != NULL);
    CHECK_EQ_INT(KF_EINVAL, ds_load(&d, "/tmp", NULL)); /* a folder */
    CHECK(strstr(err_msg(), "/tmp: not a regular file") != NULL);
    return test_done();
}
