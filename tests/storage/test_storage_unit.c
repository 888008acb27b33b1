/* Storage pieces without a server: CRC32C (RFC 3720 vectors + a bit-at-a-time reference), base64,
 * URIs, the run layout, the JSON parsers, and the file:// backend through the public API. */
#include "b64.h"
#include "crc32c.h"
#include "err.h"
#include "gcs_json.h"
#include "layout.h"
#include "storage.h"
#include "test.h"
#include "uri.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bit-at-a-time CRC-32C straight from the definition; the library uses slicing-by-8 tables. */
static uint32_t crc32c_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static void test_crc32c(void)
{
    unsigned char buf[32];
    memset(buf, 0, 32);
    CHECK_EQ_INT(0x8A9136AAu, crc32c_update(0, buf, 32)); /* RFC 3720 B.4 */
    memset(buf, 0xFF, 32);
    CHECK_EQ_INT(0x62A8AB43u, crc32c_update(0, buf, 32));
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    CHECK_EQ_INT(0x46DD794Eu, crc32c_update(0, buf, 32));
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    CHECK_EQ_INT(0x113FDB5Cu, crc32c_update(0, buf, 32));
    CHECK_EQ_INT(0xE3069283u, crc32c_update(0, "123456789", 9));
    char b[9];
    crc32c_to_b64(crc32c_update(0, "hello world", 11), b); /* GCS documents "yZRlqg==" */
    CHECK_EQ_STR("yZRlqg==", b);
    crc32c_to_b64(0, b);
    CHECK_EQ_STR("AAAAAA==", b);

    /* Random data of every length up to 300, whole and split at a random point. */
    unsigned seed = 12345;
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)rand_r(&seed);
    int bad = 0;
    for (size_t n = 0; n <= sizeof data; n++) {
        uint32_t ref = crc32c_bitwise(data, n);
        size_t cut = n ? (size_t)rand_r(&seed) % n : 0;
        uint32_t inc = crc32c_update(crc32c_update(0, data, cut), data + cut, n - cut);
        bad += crc32c_update(0, data, n) != ref || inc != ref;
    }
    CHECK_EQ_INT(0, bad);
}

static void test_b64(void)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *s = b64_encode(in[i], strlen(in[i]), 0), *u = b64_encode(in[i], strlen(in[i]), 1);
        CHECK_EQ_STR(std[i], s);
        CHECK_EQ_STR(url[i], u);
        size_t n = 99;
        unsigned char *d = b64_decode(u, strlen(u), &n);
        CHECK(d && n == strlen(in[i]) && memcmp(d, in[i], n) == 0);
        free(s), free(u), free(d);
    }
    unsigned char bin[] = {0xfb, 0xff, 0xfe};
    char *s = b64_encode(bin, 3, 0), *u = b64_encode(bin, 3, 1);
    CHECK_EQ_STR("+//+", s);
    CHECK_EQ_STR("-__-", u);
    free(s), free(u);
    size_t n;
    CHECK(b64_decode("ab$d", 4, &n) == NULL);
    CHECK(b64_decode("a", 1, &n) == NULL);
}

static void test_uri(void)
{
    storage_uri u;
    CHECK_EQ_INT(0, storage_uri_parse(&u, "gs://my-bucket/fr/data/train.csv"));
    CHECK_EQ_INT(STORAGE_URI_GS, u.kind);
    CHECK_EQ_STR("my-bucket", u.bucket);
    CHECK_EQ_STR("fr/data/train.csv", u.path);
    char *back = storage_uri_format(&u);
    CHECK_EQ_STR("gs://my-bucket/fr/data/train.csv", back);
    free(back);
    storage_uri_dispose(&u);
    CHECK_EQ_INT(0, storage_uri_parse(&u, "gs://bkt"));
    CHECK_EQ_STR("", u.path);
    storage_uri_dispose(&u);
    CHECK_EQ_INT(0, storage_uri_parse(&u, "file:///tmp/x.csv"));
    CHECK_EQ_INT(STORAGE_URI_FILE, u.kind);
    CHECK_EQ_STR("/tmp/x.csv", u.path);
    storage_uri_dispose(&u);
    CHECK_EQ_INT(0, storage_uri_parse(&u, "data/x.csv"));
    CHECK_EQ_STR("data/x.csv", u.path);
    storage_uri_dispose(&u);
    const char *bad[] = {"", "s3://b/k", "gs://", "gs://ab/x", "gs://Upper/x", "gs://-bad/x", "file://host/x",
                         "gs://b@d/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = storage_uri_parse(&u, bad[i]);
        CHECK_EQ_INT(KF_EINVAL, rc);
        if (*bad[i])
            CHECK(strstr(err_msg(), bad[i]) != NULL); /* the message names the URI */
    }
}

static void test_layout(void)
{
    storage_layout l;
    CHECK_EQ_INT(0, storage_layout_init(&l, &(storage_layout_options){.bucket = "b9x", .lang = "fr",
                                                                     .model_dir = "models/v2", .job = "nightly",
                                                                     .run = "7"}));
    CHECK_EQ_STR("gs://b9x", l.root);
    CHECK_EQ_STR("gs://b9x/fr/pretrained/lm.safetensors", l.lm);
    CHECK_EQ_STR("gs://b9x/fr/pretrained/vocab.txt", l.vocab_in);
    CHECK_EQ_STR("gs://b9x/fr/data/train.csv", l.train);
    CHECK_EQ_STR("gs://b9x/fr/data/valid.csv", l.valid);
    CHECK_EQ_STR("gs://b9x/fr/data/corpus.txt", l.corpus);
    CHECK_EQ_STR("gs://b9x/models/v2/fr/nightly/7/", l.output_dir);
    CHECK_EQ_STR("gs://b9x/models/v2/fr/nightly/7/model.safetensors", l.model);
    CHECK_EQ_STR("gs://b9x/models/v2/fr/nightly/7/vocab.txt", l.vocab);
    CHECK_EQ_STR("gs://b9x/models/v2/fr/nightly/7/config.json", l.config);
    CHECK_EQ_STR("gs://b9x/models/v2/fr/nightly/7/metrics.json", l.metrics);
    CHECK_EQ_STR("gs://b9x/models/v2/fr/nightly/7/history.csv", l.history);
    CHECK_EQ_STR("gs://b9x/models/v2/fr/nightly/7/curves.svg", l.curves);
    char *ck = storage_layout_output(&l, "checkpoint.safetensors");
    CHECK_EQ_STR("gs://b9x/models/v2/fr/nightly/7/checkpoint.safetensors", ck);
    free(ck);
    storage_layout_dispose(&l);

    CHECK_EQ_INT(0, storage_layout_init(&l, &(storage_layout_options){.bucket = "gs://bkt/", .lang = "en",
                                                                     .model_dir = "out/"}));
    CHECK_EQ_STR("gs://bkt", l.root);
    CHECK_EQ_STR("gs://bkt/out/en/default/1/metrics.json", l.metrics);
    storage_layout_dispose(&l);

    CHECK_EQ_INT(0, storage_layout_init(&l, &(storage_layout_options){.bucket = "file:///srv/data", .lang = "pt-BR",
                                                                     .model_dir = "m", .train = "/tmp/t.csv",
                                                                     .output_dir = "/tmp/out"}));
    CHECK_EQ_STR("file:///srv/data/pt-BR/data/valid.csv", l.valid);
    CHECK_EQ_STR("/tmp/t.csv", l.train);
    CHECK_EQ_STR("/tmp/out/", l.output_dir);
    CHECK_EQ_STR("/tmp/out/model.safetensors", l.model);
    storage_layout_dispose(&l);

    CHECK_EQ_INT(0, storage_layout_init(&l, &(storage_layout_options){.bucket = "./local", .lang = "en",
                                                                     .model_dir = "m", .data_dir = "/data/en"}));
    CHECK_EQ_STR("/data/en/data/train.csv", l.train);
    CHECK_EQ_STR("/data/en/pretrained/lm.safetensors", l.lm);
    CHECK_EQ_STR("./local/m/en/default/1/model.safetensors", l.model);
    storage_layout_dispose(&l);

    struct {
        storage_layout_options o;
        const char *word;
    } bad[] = {
        {{.bucket = "b12", .lang = "FR", .model_dir = "m"}, "language"},
        {{.bucket = "b12", .lang = "", .model_dir = "m"}, "language"},
        {{.bucket = "b12", .lang = "fr/x", .model_dir = "m"}, "language"},
        {{.bucket = "b12", .lang = "pt-br", .model_dir = "m"}, "language"},
        {{.bucket = "b12", .lang = "fr", .model_dir = "../m"}, "model dir"},
        {{.bucket = "b12", .lang = "fr", .model_dir = "/abs"}, "model dir"},
        {{.bucket = "b12", .lang = "fr", .model_dir = "a//b"}, "model dir"},
        {{.bucket = "b12", .lang = "fr", .model_dir = "m", .job = "a/b"}, "job"},
        {{.bucket = "b12", .lang = "fr", .model_dir = "m", .run = ".."}, "run"},
        {{.bucket = "", .lang = "fr", .model_dir = "m"}, "bucket"},
        {{.bucket = "Bad_Bucket!", .lang = "fr", .model_dir = "m"}, "Bad_Bucket!"},
        {{.bucket = "s3://x/y", .lang = "fr", .model_dir = "m"}, "unsupported scheme"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(KF_EINVAL, storage_layout_init(&l, &bad[i].o));
        if (!strstr(err_msg(), bad[i].word))
            TEST_FAIL_("layout case %zu: \"%s\" does not mention \"%s\"", i, err_msg(), bad[i].word);
    }
}

static void test_json(void)
{
    const char *obj = "{\"kind\":\"storage#object\",\"name\":\"fr/data/train.csv\",\"bucket\":\"b1\","
                      "\"size\":\"1234567890123\",\"generation\":\"1700000000000001\",\"crc32c\":\"yZRlqg==\","
                      "\"md5Hash\":\"XrY7u+Ae7tCTyyK7j1rNww==\",\"contentType\":\"text/csv\","
                      "\"updated\":\"2026-11-26T15:00:00.000Z\"}";
    storage_object o;
    CHECK_EQ_INT(0, gcs_json_object(&o, obj, strlen(obj)));
    CHECK_EQ_STR("gs://b1/fr/data/train.csv", o.uri);
    CHECK_EQ_INT(1234567890123LL, o.size);
    CHECK_EQ_INT(1700000000000001LL, o.generation);
    CHECK_EQ_STR("yZRlqg==", o.crc32c);
    CHECK_EQ_STR("XrY7u+Ae7tCTyyK7j1rNww==", o.md5);
    CHECK_EQ_STR("text/csv", o.content_type);
    storage_object_dispose(&o);

    const char *bad[] = {"", "[]", "{\"name\":\"x\"}", "{\"name\":\"x\",\"bucket\":\"b\",\"size\":\"-1\"}",
                         "{\"name\":\"x\",\"bucket\":\"b\",\"size\":\"12a\"}",
                         "{\"name\":\"x\",\"bucket\":\"b\",\"size\":\"99999999999999999999\"}",
                         "{\"name\":7,\"bucket\":\"b\"}", "{\"name\":\"x\",\"bucket\":\"b\",\"crc32c\":[]}",
                         "{\"name\":\"x\",\"name\":\"y\",\"bucket\":\"b\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(KF_EINVAL, gcs_json_object(&o, bad[i], strlen(bad[i])));

    storage_object *items = NULL;
    size_t n = 0, cap = 0;
    char *tok = NULL;
    const char *p1 = "{\"items\":[{\"name\":\"a\",\"bucket\":\"b\",\"size\":\"1\"},{\"name\":\"b\",\"bucket\":\"b\","
                     "\"size\":2}],\"nextPageToken\":\"tok/1=\"}";
    const char *p2 = "{\"kind\":\"storage#objects\"}";
    CHECK_EQ_INT(0, gcs_json_list_page(&items, &n, &cap, &tok, p1, strlen(p1)));
    CHECK_EQ_STR("tok/1=", tok);
    free(tok);
    CHECK_EQ_INT(0, gcs_json_list_page(&items, &n, &cap, &tok, p2, strlen(p2)));
    CHECK(tok == NULL);
    CHECK_EQ_INT(2, n);
    CHECK_EQ_STR("gs://b/b", items[1].uri);
    CHECK_EQ_INT(2, items[1].size);
    const char *p3 = "{\"items\":{}}";
    CHECK_EQ_INT(KF_EINVAL, gcs_json_list_page(&items, &n, &cap, &tok, p3, strlen(p3)));
    storage_list_free(items, n);

    char *msg = gcs_json_error_message("{\"error\":{\"code\":404,\"message\":\"No such object: b/x\"}}", 54);
    CHECK_EQ_STR("No such object: b/x", msg);
    free(msg);
    const char *oe = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}";
    msg = gcs_json_error_message(oe, strlen(oe));
    CHECK_EQ_STR("invalid_grant: Invalid JWT Signature.", msg);
    free(msg);
    CHECK(gcs_json_error_message("not json", 8) == NULL);

    char *token;
    long exp;
    const char *t = "{\"access_token\":\"ya29.abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
    CHECK_EQ_INT(0, gcs_json_token(&token, &exp, t, strlen(t)));
    CHECK_EQ_STR("ya29.abc", token);
    CHECK_EQ_INT(3599, exp);
    free(token);
    const char *badt[] = {"{\"access_token\":\"x\"}", "{\"access_token\":\"x\",\"expires_in\":0}",
                          "{\"access_token\":\"a b\",\"expires_in\":10}", "{\"access_token\":\"a\\r\\nX: y\",\"expires_in\":10}",
                          "{\"access_token\":\"\",\"expires_in\":10}", "{\"expires_in\":10}"};
    for (size_t i = 0; i < sizeof badt / sizeof badt[0]; i++)
        CHECK_EQ_INT(KF_EINVAL, gcs_json_token(&token, &exp, badt[i], strlen(badt[i])));

    gcs_key k;
    const char *key = "{\"type\":\"service_account\",\"client_email\":\"sa@p.iam.gserviceaccount.com\","
                      "\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nx\\n-----END PRIVATE KEY-----\\n\"}";
    CHECK_EQ_INT(0, gcs_json_key(&k, key, strlen(key), "k.json"));
    CHECK_EQ_STR("sa@p.iam.gserviceaccount.com", k.client_email);
    CHECK_EQ_STR("https://oauth2.googleapis.com/token", k.token_uri);
    gcs_key_dispose(&k);
    const char *user = "{\"type\":\"authorized_user\",\"client_id\":\"x\"}";
    CHECK_EQ_INT(KF_EINVAL, gcs_json_key(&k, user, strlen(user), "k.json"));
    CHECK(strstr(err_msg(), "k.json") && strstr(err_msg(), "authorized_user"));
    const char *nokey = "{\"type\":\"service_account\",\"client_email\":\"a@b\"}";
    CHECK_EQ_INT(KF_EINVAL, gcs_json_key(&k, nokey, strlen(nokey), "k.json"));
    CHECK(strstr(err_msg(), "private_key") != NULL);
}

static void test_local(void)
{
    char dir[] = "/tmp/kubefit-storage-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    storage *s = NULL;
    CHECK_EQ_INT(0, storage_new(&s, NULL));
    char a[256], b[256], c[256], uri[300], pre[300];
    snprintf(a, sizeof a, "%s/in/a.txt", dir);
    snprintf(b, sizeof b, "%s/deep/er/b.txt", dir);
    snprintf(c, sizeof c, "%s/c.bin", dir);
    snprintf(uri, sizeof uri, "file://%s/deep/er/b.txt", dir);

    CHECK_EQ_INT(0, storage_write(s, a, "hello, storage", 14)); /* creates in/ */
    CHECK_EQ_INT(0, storage_put(s, a, uri));                     /* file:// URI, creates deep/er/ */
    char *data = NULL;
    size_t len = 0;
    CHECK_EQ_INT(0, storage_read(s, b, &data, &len));
    CHECK_EQ_INT(14, len);
    CHECK_EQ_STR("hello, storage", data);
    free(data);
    CHECK_EQ_INT(0, storage_get(s, uri, c, &(storage_range){.offset = 7, .length = 4}));
    CHECK_EQ_INT(0, storage_read(s, c, &data, &len));
    CHECK_EQ_STR("stor", data);
    free(data);
    CHECK_EQ_INT(0, storage_get(s, uri, c, &(storage_range){.offset = 7, .length = -1}));
    CHECK_EQ_INT(0, storage_read(s, c, &data, &len));
    CHECK_EQ_STR("storage", data);
    free(data);
    CHECK_EQ_INT(KF_EINVAL, storage_get(s, uri, c, &(storage_range){.offset = 99, .length = 1}));

    storage_object o;
    CHECK_EQ_INT(0, storage_stat(s, b, &o));
    CHECK_EQ_INT(14, o.size);
    CHECK(o.updated && strlen(o.updated) == 20);
    storage_object_dispose(&o);
    int ex = -1;
    CHECK_EQ_INT(0, storage_exists(s, b, &ex));
    CHECK_EQ_INT(1, ex);
    snprintf(pre, sizeof pre, "%s/nope.txt", dir);
    CHECK_EQ_INT(0, storage_exists(s, pre, &ex));
    CHECK_EQ_INT(0, ex);
    CHECK_EQ_INT(KF_ENOTFOUND, storage_stat(s, pre, &o));
    CHECK(strstr(err_msg(), "nope.txt") != NULL);
    CHECK_EQ_INT(KF_ENOTFOUND, storage_get(s, pre, c, NULL));
    CHECK(strstr(err_msg(), "nope.txt") != NULL);
    /* a folder or a device is there but is no object: "not a regular file", an error (not absent) */
    snprintf(pre, sizeof pre, "%s/in", dir);
    CHECK_EQ_INT(KF_EINVAL, storage_exists(s, pre, &ex));
    CHECK(strstr(err_msg(), "/in: not a regular file (a folder)") != NULL);
    CHECK_EQ_INT(KF_EINVAL, storage_stat(s, "file:///dev/null", &o));
    CHECK(strstr(err_msg(), "/dev/null: not a regular file (a device)") != NULL);
    CHECK_EQ_INT(KF_EINVAL, storage_get(s, "/dev/zero", c, NULL));
    CHECK(strstr(err_msg(), "/dev/zero: not a regular file (a device)") != NULL);

    storage_object *objs = NULL;
    size_t n = 0;
    snprintf(pre, sizeof pre, "%s/", dir);
    CHECK_EQ_INT(0, storage_list(s, pre, &objs, &n));
    CHECK_EQ_INT(3, n);
    if (n == 3) {
        CHECK_EQ_STR(c, objs[0].uri); /* sorted: c.bin, deep/er/b.txt, in/a.txt */
        CHECK_EQ_STR(b, objs[1].uri);
        CHECK_EQ_STR(a, objs[2].uri);
    }
    storage_list_free(objs, n);
    snprintf(pre, sizeof pre, "file://%s/de", dir);
    CHECK_EQ_INT(0, storage_list(s, pre, &objs, &n));
    CHECK_EQ_INT(1, n);
    if (n == 1)
        CHECK_EQ_STR(uri, objs[0].uri); /* file:// in, file:// out */
    storage_list_free(objs, n);

    CHECK_EQ_INT(0, storage_delete(s, a));
    CHECK_EQ_INT(0, storage_delete(s, b));
    CHECK_EQ_INT(0, storage_delete(s, c));
    CHECK_EQ_INT(KF_ENOTFOUND, storage_delete(s, c));
    CHECK_EQ_INT(KF_EINVAL, storage_read(s, "s3://x/y", &data, &len));
    CHECK_EQ_INT(KF_EINVAL, storage_stat(s, "gs://bkt/dir/", &o)); /* a folder, not an object */
    storage_free(s);
    rmdir(b), rmdir(a); /* best effort: the folders */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ_INT(0, system(cmd));
}

int main(void)
{
    test_crc32c();
    test_b64();
    test_uri();
    test_layout();
    test_json();
    test_local();
    return test_done();
}
