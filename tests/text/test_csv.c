/* Unit tests of the RFC 4180 reader: quoting, doubled quotes, embedded newlines, CRLF, BOM,
 * empty fields, errors with file:line and recovery. */
#include <string.h>

#include "csv.h"
#include "err.h"
#include "test.h"

/* Reads one row and checks its fields ("|"-joined; fields hold no '|' here). */
static void row(int line, csv_reader *r, int want_rc, long want_line, const char *want)
{
    int rc = csv_next(r);
    char got[512] = "";
    for (size_t i = 0; rc == 1 && i < r->n_fields; i++) {
        if (i)
            strcat(got, "|");
        strncat(got, r->fields[i], sizeof got - strlen(got) - 1);
    }
    test_checks++;
    if (rc != want_rc || (rc == 1 && (strcmp(got, want) != 0 || r->row_line != want_line))) {
        test_failures++;
        fprintf(stderr, "test_csv.c:%d: expected rc %d line %ld \"%s\", actual rc %d line %ld \"%s\" (%s)\n",
                line, want_rc, want_line, want, rc, r->row_line, got, err_msg());
    }
}
#define ROW(r, rc, ln, want) row(__LINE__, r, rc, ln, want)

int main(void)
{
    csv_reader r;
    const char *a = "\xef\xbb\xbftext,labels\r\n"
                    "\"hello, world\",a;b\r\n"
                    "\"say \"\"hi\"\"\",c\r\n"
                    "\"two\nlines\",d\n"
                    ",\n"
                    "plain,\"\"\n"
                    "last,e";
    csv_init(&r, a, strlen(a), "a.csv");
    ROW(&r, 1, 1, "text|labels");           /* BOM skipped */
    ROW(&r, 1, 2, "hello, world|a;b");
    ROW(&r, 1, 3, "say \"hi\"|c");
    ROW(&r, 1, 4, "two\nlines|d");
    ROW(&r, 1, 6, "|");                     /* line count includes the embedded newline */
    ROW(&r, 1, 7, "plain|");
    ROW(&r, 1, 8, "last|e");                /* no final newline */
    ROW(&r, 0, 0, "");
    ROW(&r, 0, 0, "");
    csv_dispose(&r);

    const char *b = "x\n\ny,\"z\"\r\n\"quoted\"\"\",\"\"\"\"\n";
    csv_init(&r, b, strlen(b), "b.csv");
    ROW(&r, 1, 1, "x");
    ROW(&r, 1, 2, "");                      /* blank line: one empty field */
    ROW(&r, 1, 3, "y|z");
    ROW(&r, 1, 4, "quoted\"|\"");
    ROW(&r, 0, 0, "");
    csv_dispose(&r);

    /* characters after a closing quote: error with file:line, then the reader goes on */
    const char *c = "a,b\n\"x\"y,1\nok,2\n";
    csv_init(&r, c, strlen(c), "c.csv");
    ROW(&r, 1, 1, "a|b");
    CHECK_EQ_INT(KF_EINVAL, csv_next(&r));
    CHECK_EQ_STR("c.csv:2: characters after the closing quote of field 1", err_msg());
    ROW(&r, 1, 3, "ok|2");
    csv_dispose(&r);

    /* unterminated quote: error naming the line where the quote opened */
    const char *d = "a,b\nok,\"never\nclosed\n";
    csv_init(&r, d, strlen(d), "d.csv");
    ROW(&r, 1, 1, "a|b");
    CHECK_EQ_INT(KF_EINVAL, csv_next(&r));
    CHECK_EQ_STR("d.csv:2: unterminated quoted field", err_msg());
    ROW(&r, 0, 0, "");
    csv_dispose(&r);

    /* embedded NUL and a lone CR are data; empty input has no rows */
    const char e[] = "a\0b,c\rd\n";
    csv_init(&r, e, sizeof e - 1, NULL);
    CHECK_EQ_INT(1, csv_next(&r));
    CHECK_EQ_INT(2, (long long)r.n_fields);
    CHECK_EQ_INT(3, (long long)r.lens[0]);
    CHECK_EQ_STR("c\rd", r.fields[1]);
    csv_dispose(&r);
    csv_init(&r, "", 0, NULL);
    CHECK_EQ_INT(0, csv_next(&r));
    csv_dispose(&r);
    csv_init(&r, "\xef\xbb\xbf", 3, NULL);
    CHECK_EQ_INT(0, csv_next(&r));
    csv_dispose(&r);
    return test_done();
}
