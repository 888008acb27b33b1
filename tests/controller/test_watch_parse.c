/* watch stream decoder: every split point, bookmarks, ERROR events, malformed input, limits. */
#include "err.h"
#include "test.h"
#include "watch.h"

typedef struct {
    int n;
    char types[16][16];
    char names[16][32];
    int stop_after;
} seen;

static int collect(void *u, const char *type, json_t *obj)
{
    seen *s = u;
    if (s->n < 16) {
        snprintf(s->types[s->n], sizeof s->types[0], "%s", type);
        const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
        const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        snprintf(s->names[s->n], sizeof s->names[0], "%s", name ? name : rv ? rv : "");
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static const char STREAM[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"10\"}}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\\n\\u00e9\",\"resourceVersion\":\"11\"}}}\r\n"
    "\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}\n"
    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\",\"resourceVersion\":\"13\"}}}\n";

static void check_stream(seen *s)
{
    CHECK_EQ_INT(4, s->n);
    CHECK_EQ_STR("ADDED", s->types[0]);
    CHECK_EQ_STR("a", s->names[0]);
    CHECK_EQ_STR("MODIFIED", s->types[1]);
    CHECK_EQ_STR("b\n\xc3\xa9", s->names[1]);
    CHECK_EQ_STR("BOOKMARK", s->types[2]);
    CHECK_EQ_STR("12", s->names[2]);
    CHECK_EQ_STR("DELETED", s->types[3]);
}

int main(void)
{
    size_t len = strlen(STREAM);
    /* One split at every position. */
    for (size_t cut = 0; cut <= len; cut++) {
        watch_parser p = {0};
        seen s = {0};
        CHECK_EQ_INT(0, watch_parser_feed(&p, STREAM, cut, collect, &s));
        CHECK_EQ_INT(0, watch_parser_feed(&p, STREAM + cut, len - cut, collect, &s));
        CHECK_EQ_INT(0, watch_parser_finish(&p, collect, &s));
        check_stream(&s);
        watch_parser_dispose(&p);
    }
    /* Byte by byte. */
    {
        watch_parser p = {0};
        seen s = {0};
        for (size_t i = 0; i < len; i++)
            CHECK_EQ_INT(0, watch_parser_feed(&p, STREAM + i, 1, collect, &s));
        check_stream(&s);
        watch_parser_dispose(&p);
    }
    /* An unterminated last event is decoded at end of stream. */
    {
        watch_parser p = {0};
        seen s = {0};
        const char *t = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"z\"}}}";
        CHECK_EQ_INT(0, watch_parser_feed(&p, t, strlen(t), collect, &s));
        CHECK_EQ_INT(0, s.n);
        CHECK_EQ_INT(0, watch_parser_finish(&p, collect, &s));
        CHECK_EQ_INT(1, s.n);
        CHECK_EQ_STR("z", s.names[0]);
        watch_parser_dispose(&p);
    }
    /* ERROR 410 -> KF_EGONE with the server's message; other codes -> KF_ERETRY. */
    {
        watch_parser p = {0};
        seen s = {0};
        const char *t = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n"
                        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\","
                        "\"message\":\"too old resource version: 5 (90)\"}}\n";
        CHECK_EQ_INT(KF_EGONE, watch_parser_feed(&p, t, strlen(t), collect, &s));
        CHECK_EQ_INT(1, s.n);
        CHECK(strstr(err_msg(), "too old resource version: 5 (90)") != NULL);
        watch_parser_dispose(&p);
        const char *u = "{\"type\":\"ERROR\",\"object\":{\"code\":500,\"message\":\"etcd down\"}}\n";
        CHECK_EQ_INT(KF_ERETRY, watch_parser_feed(&p, u, strlen(u), collect, &s));
        CHECK(strstr(err_msg(), "etcd down") != NULL);
        watch_parser_dispose(&p);
    }
    /* Malformed input: clear errors, never a crash. */
    {
        const char *bad[] = {"{not json}\n", "{\"type\":\"ADDED\"}\n", "{\"type\":\"ADDED\",\"object\":[]}\n",
                             "{\"type\":\"WHAT\",\"object\":{}}\n", "[1,2]\n", "{\"type\":7,\"object\":{}}\n"};
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            watch_parser p = {0};
            seen s = {0};
            CHECK_EQ_INT(KF_EINVAL, watch_parser_feed(&p, bad[i], strlen(bad[i]), collect, &s));
            CHECK_EQ_INT(0, s.n);
            CHECK(strncmp(err_msg(), "watch:", 6) == 0);
            watch_parser_dispose(&p);
        }
    }
    /* A line over the limit is refused, whether whole or in pieces. */
    {
        watch_parser p = {.max_line = 64};
        seen s = {0};
        char big[200];
        memset(big, 'x', sizeof big);
        CHECK_EQ_INT(0, watch_parser_feed(&p, big, 60, collect, &s));
        CHECK_EQ_INT(KF_EINVAL, watch_parser_feed(&p, big, 60, collect, &s));
        CHECK(strstr(err_msg(), "over 64 bytes") != NULL);
        watch_parser_dispose(&p);
        watch_parser q = {.max_line = 64};
        big[150] = '\n';
        CHECK_EQ_INT(KF_EINVAL, watch_parser_feed(&q, big, 151, collect, &s));
        watch_parser_dispose(&q);
    }
    /* The callback can stop the stream; later events are not delivered. */
    {
        watch_parser p = {0};
        seen s = {.stop_after = 2};
        CHECK_EQ_INT(0, watch_parser_feed(&p, STREAM, len, collect, &s));
        CHECK_EQ_INT(2, s.n);
        CHECK(p.stopped);
        watch_parser_dispose(&p);
    }
    return test_done();
}
