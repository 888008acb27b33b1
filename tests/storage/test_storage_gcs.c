/* The GCS client against a real fake-gcs-server (tests/cluster/with-gcs, bucket kubefit-test):
 * every operation, a 64 MiB resumable upload, an upload interrupted by stopping the server and
 * finished after it restarts, a listing of several pages, missing object / bucket errors, and a
 * corrupted object caught on download. */
#include "crc32c.h"
#include "err.h"
#include "log.h"
#include "storage.h"
#include "test.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUCKET "kubefit-test"

static const char *gcs_dir, *src_dir;

/* Deterministic pseudo-random bytes (xorshift64*), so content can be regenerated to compare. */
static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        p[i] = (unsigned char)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

static int write_local(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static unsigned char *read_local(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *p = malloc((size_t)len + 1);
    *n = p ? fread(p, 1, (size_t)len, f) : 0;
    fclose(f);
    return p;
}

static void test_operations(storage *s, const char *tmp)
{
    const char *text = "id,text,labels\n1,bonjour,greeting\n";
    CHECK_EQ_INT(0, storage_write(s, "gs://" BUCKET "/fr/data/train.csv", text, strlen(text)));
    storage_object o;
    CHECK_EQ_INT(0, storage_stat(s, "gs://" BUCKET "/fr/data/train.csv", &o));
    CHECK_EQ_STR("gs://" BUCKET "/fr/data/train.csv", o.uri);
    CHECK_EQ_INT((long long)strlen(text), o.size);
    char want[9];
    crc32c_to_b64(crc32c_update(0, text, strlen(text)), want);
    CHECK_EQ_STR(want, o.crc32c);
    CHECK(o.md5 != NULL);
    CHECK_EQ_STR("text/csv", o.content_type);
    storage_object_dispose(&o);

    int ex = -1;
    CHECK_EQ_INT(0, storage_exists(s, "gs://" BUCKET "/fr/data/train.csv", &ex));
    CHECK_EQ_INT(1, ex);
    CHECK_EQ_INT(0, storage_exists(s, "gs://" BUCKET "/fr/data/nope.csv", &ex));
    CHECK_EQ_INT(0, ex);

    char *data = NULL;
    size_t len = 0;
    CHECK_EQ_INT(0, storage_read(s, "gs://" BUCKET "/fr/data/train.csv", &data, &len));
    CHECK_EQ_STR(text, data);
    free(data);

    char path[300];
    snprintf(path, sizeof path, "%s/sub/train.csv", tmp);
    CHECK_EQ_INT(0, storage_get(s, "gs://" BUCKET "/fr/data/train.csv", path, NULL));
    unsigned char *got = read_local(path, &len);
    CHECK(got && len == strlen(text) && memcmp(got, text, len) == 0);
    free(got);
    CHECK_EQ_INT(0, storage_get(s, "gs://" BUCKET "/fr/data/train.csv", path, &(storage_range){.offset = 15, .length = 9}));
    got = read_local(path, &len);
    CHECK(got && len == 9 && memcmp(got, "1,bonjour", 9) == 0);
    free(got);
    CHECK_EQ_INT(0, storage_get(s, "gs://" BUCKET "/fr/data/train.csv", path, &(storage_range){.offset = 24, .length = -1}));
    got = read_local(path, &len);
    CHECK(got && len == strlen(text) - 24 && memcmp(got, text + 24, len) == 0);
    free(got);

    /* put from a file (names with spaces and unicode are escaped) and an empty object */
    CHECK_EQ_INT(0, storage_put(s, path, "gs://" BUCKET "/odd names/été 1.txt"));
    CHECK_EQ_INT(0, storage_read(s, "gs://" BUCKET "/odd names/été 1.txt", &data, &len));
    CHECK_EQ_INT(strlen(text) - 24, len);
    free(data);
    CHECK_EQ_INT(0, storage_write(s, "gs://" BUCKET "/empty.json", "", 0));
    CHECK_EQ_INT(0, storage_read(s, "gs://" BUCKET "/empty.json", &data, &len));
    CHECK_EQ_INT(0, len);
    free(data);

    storage_object *objs = NULL;
    size_t n = 0;
    CHECK_EQ_INT(0, storage_list(s, "gs://" BUCKET "/fr/", &objs, &n));
    CHECK_EQ_INT(1, n);
    if (n == 1)
        CHECK_EQ_STR("gs://" BUCKET "/fr/data/train.csv", objs[0].uri);
    storage_list_free(objs, n);

    CHECK_EQ_INT(0, storage_delete(s, "gs://" BUCKET "/odd names/été 1.txt"));
    CHECK_EQ_INT(0, storage_exists(s, "gs://" BUCKET "/odd names/été 1.txt", &ex));
    CHECK_EQ_INT(0, ex);
    CHECK_EQ_INT(KF_ENOTFOUND, storage_delete(s, "gs://" BUCKET "/odd names/été 1.txt"));
}

static void test_errors(storage *s, const char *tmp)
{
    storage_object o;
    char path[300];
    snprintf(path, sizeof path, "%s/never.txt", tmp);
    CHECK_EQ_INT(KF_ENOTFOUND, storage_stat(s, "gs://" BUCKET "/no/such/object.csv", &o));
    CHECK(strstr(err_msg(), "gs://" BUCKET "/no/such/object.csv") && strstr(err_msg(), "no such object"));
    CHECK_EQ_INT(KF_ENOTFOUND, storage_get(s, "gs://" BUCKET "/no/such/object.csv", path, NULL));
    CHECK(strstr(err_msg(), "no such object") != NULL);
    CHECK(access(path, F_OK) != 0); /* nothing left behind */

    CHECK_EQ_INT(KF_ENOTFOUND, storage_stat(s, "gs://no-such-bucket-kf/x.csv", &o));
    CHECK(strstr(err_msg(), "gs://no-such-bucket-kf/x.csv") && strstr(err_msg(), "bucket no-such-bucket-kf does not exist"));
    int ex = -1;
    CHECK_EQ_INT(KF_ENOTFOUND, storage_exists(s, "gs://no-such-bucket-kf/x.csv", &ex));
    CHECK_EQ_INT(KF_ENOTFOUND, storage_write(s, "gs://no-such-bucket-kf/x.csv", "x", 1));
    CHECK(strstr(err_msg(), "does not exist") != NULL);
    storage_object *objs = NULL;
    size_t n = 0;
    CHECK_EQ_INT(KF_ENOTFOUND, storage_list(s, "gs://no-such-bucket-kf/", &objs, &n));
    CHECK(strstr(err_msg(), "bucket no-such-bucket-kf does not exist") != NULL);
}

static void test_pages(const char *emu)
{
    storage *s = NULL;
    CHECK_EQ_INT(0, storage_new(&s, &(storage_options){.emulator_host = emu, .list_page_size = 4}));
    char uri[100];
    for (int i = 0; i < 11; i++) {
        snprintf(uri, sizeof uri, "gs://" BUCKET "/pages/obj-%02d.txt", i);
        CHECK_EQ_INT(0, storage_write(s, uri, uri, strlen(uri)));
    }
    FILE *logs = tmpfile();
    setenv("KUBEFIT_LOG_LEVEL", "debug", 1);
    log_set_stream(logs);
    storage_object *objs = NULL;
    size_t n = 0;
    CHECK_EQ_INT(0, storage_list(s, "gs://" BUCKET "/pages/", &objs, &n));
    log_set_stream(NULL);
    CHECK_EQ_INT(11, n);
    for (size_t i = 0; i < n && n == 11; i++) {
        snprintf(uri, sizeof uri, "gs://" BUCKET "/pages/obj-%02zu.txt", i);
        CHECK_EQ_STR(uri, objs[i].uri);
        CHECK_EQ_INT((long long)strlen(uri), objs[i].size);
    }
    storage_list_free(objs, n);
    /* 11 objects, 4 per page: the client followed nextPageToken over 3 pages. */
    char line[2048];
    int pages = 0;
    rewind(logs);
    while (fgets(line, sizeof line, logs))
        pages += strstr(line, "\"list page\"") != NULL;
    CHECK_EQ_INT(3, pages);
    fclose(logs);
    storage_free(s);
}

static void test_big(storage *s, const char *tmp)
{
    size_t n = 64u << 20;
    unsigned char *p = malloc(n);
    fill(p, n, 64);
    char path[300], back[300];
    snprintf(path, sizeof path, "%s/big.bin", tmp);
    snprintf(back, sizeof back, "%s/big-back.bin", tmp);
    CHECK_EQ_INT(0, write_local(path, p, n));
    CHECK_EQ_INT(0, storage_put(s, path, "gs://" BUCKET "/big/model.safetensors"));
    storage_object o;
    CHECK_EQ_INT(0, storage_stat(s, "gs://" BUCKET "/big/model.safetensors", &o));
    CHECK_EQ_INT((long long)n, o.size);
    char want[9];
    crc32c_to_b64(crc32c_update(0, p, n), want);
    CHECK_EQ_STR(want, o.crc32c);
    storage_object_dispose(&o);
    CHECK_EQ_INT(0, storage_get(s, "gs://" BUCKET "/big/model.safetensors", back, NULL));
    size_t m = 0;
    unsigned char *q = read_local(back, &m);
    CHECK(q && m == n && memcmp(p, q, n) == 0);
    free(q), free(p);
    unlink(path), unlink(back);
}

typedef struct {
    int stopped, restarted;
    int64_t max_seen, min_after_stop;
    pthread_t restarter;
} interrupt_ctx;

static int run_script(const char *name)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/tests/cluster/%s' '%s' >/dev/null 2>&1", src_dir, name, gcs_dir);
    return system(cmd);
}

static void *restart_later(void *u)
{
    interrupt_ctx *c = u;
    usleep(1500 * 1000);
    c->restarted = run_script("gcs-start") == 0;
    return NULL;
}

/* After 3 acknowledged chunks the server goes away; it comes back 1.5 s later (same port, same
 * data, but the upload session is gone). */
static void on_chunk(void *u, int64_t done, int64_t total)
{
    interrupt_ctx *c = u;
    (void)total;
    if (c->stopped && done < c->min_after_stop)
        c->min_after_stop = done;
    if (done > c->max_seen)
        c->max_seen = done;
    if (!c->stopped && done >= 3 * (2 << 20)) {
        c->stopped = run_script("gcs-stop") == 0 ? 1 : -1;
        pthread_create(&c->restarter, NULL, restart_later, c);
    }
}

static void test_interrupted(const char *emu, const char *tmp)
{
    interrupt_ctx c = {.min_after_stop = INT64_MAX};
    storage *s = NULL;
    CHECK_EQ_INT(0, storage_new(&s, &(storage_options){.emulator_host = emu, .chunk_size = 2u << 20,
                                                       .resumable_threshold = 1u << 20, .on_chunk = on_chunk,
                                                       .on_chunk_ctx = &c, .backoff_initial_ms = 200}));
    size_t n = 20u << 20;
    unsigned char *p = malloc(n);
    fill(p, n, 20);
    char path[300];
    snprintf(path, sizeof path, "%s/interrupted.bin", tmp);
    CHECK_EQ_INT(0, write_local(path, p, n));
    int rc = storage_put(s, path, "gs://" BUCKET "/interrupted.bin");
    CHECK_EQ_INT(0, rc);
    if (rc)
        fprintf(stderr, "put: %s\n", err_msg());
    if (c.stopped)
        pthread_join(c.restarter, NULL);
    CHECK_EQ_INT(1, c.stopped);
    CHECK_EQ_INT(1, c.restarted);
    CHECK(c.min_after_stop < c.max_seen); /* a new session started again from the beginning */
    char *data = NULL;
    size_t len = 0;
    CHECK_EQ_INT(0, storage_read(s, "gs://" BUCKET "/interrupted.bin", &data, &len));
    CHECK(data && len == n && memcmp(data, p, n) == 0);
    free(data), free(p);
    unlink(path);
    storage_free(s);
}

/* Finds the file fake-gcs-server keeps the object's bytes in (filesystem backend under DIR/data):
 * the one whose content equals `content`. */
static int find_blob(const char *dir, const char *content, size_t n, char *out, size_t out_len, int depth)
{
    DIR *d = opendir(dir);
    if (!d || depth > 8)
        return d ? closedir(d), -1 : -1;
    int found = -1;
    for (struct dirent *e; found && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            found = find_blob(p, content, n, out, out_len, depth + 1);
        } else if ((size_t)st.st_size == n) {
            size_t m = 0;
            unsigned char *q = read_local(p, &m);
            if (q && m == n && memcmp(q, content, n) == 0) {
                snprintf(out, out_len, "%s", p);
                found = 0;
            }
            free(q);
        }
    }
    closedir(d);
    return found;
}

static void test_corrupted(storage *s)
{
    const char *text = "weights that must arrive intact 0123456789";
    CHECK_EQ_INT(0, storage_write(s, "gs://" BUCKET "/corrupt/lm.safetensors", text, strlen(text)));
    char root[600], blob[1024];
    snprintf(root, sizeof root, "%s/data", gcs_dir);
    int found = find_blob(root, text, strlen(text), blob, sizeof blob, 0);
    CHECK_EQ_INT(0, found);
    if (found)
        return;
    /* Flip one byte on disk, behind the server's back (the stored crc32c/md5 stay the old ones). */
    FILE *f = fopen(blob, "r+b");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, 8, SEEK_SET);
    fputc('W', f);
    fclose(f);
    char *data = NULL;
    size_t len = 0;
    int rc = storage_read(s, "gs://" BUCKET "/corrupt/lm.safetensors", &data, &len);
    CHECK_EQ_INT(KF_EIO, rc);
    CHECK(strstr(err_msg(), "mismatch") && strstr(err_msg(), "gs://" BUCKET "/corrupt/lm.safetensors"));
    free(data);
}

int main(void)
{
    const char *emu = getenv("STORAGE_EMULATOR_HOST");
    gcs_dir = getenv("GCS_DIR");
    src_dir = getenv("KUBEFIT_SOURCE_DIR");
    if (!emu || !gcs_dir || !src_dir) {
        fprintf(stderr, "run me under tests/cluster/with-gcs (STORAGE_EMULATOR_HOST, GCS_DIR) from ctest\n");
        return 1;
    }
    char tmp[] = "/tmp/kubefit-storage-gcs-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    storage *s = NULL;
    CHECK_EQ_INT(0, storage_new(&s, NULL)); /* STORAGE_EMULATOR_HOST from the environment */
    test_operations(s, tmp);
    test_errors(s, tmp);
    test_pages(emu);
    test_big(s, tmp);
    test_corrupted(s);
    test_interrupted(emu, tmp);
    storage_free(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK_EQ_INT(0, system(cmd));
    return test_done();
}
