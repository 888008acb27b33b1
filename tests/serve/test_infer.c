/* test_infer: trainer/train/infer.c (what kubefit-serve runs) against `kubefit-trainer predict`
 * (run_main with RUN_PREDICT, the same process) on a small random classifier written the way the
 * trainer writes one (modelio + metadata), single- and multi-label:
 *   - batched answers (texts of 1..70 tokens, BPTT 8: several chunks, pad-first padding) equal
 *     the same texts answered one at a time, |diff| <= 1e-6;
 *   - they equal predict's JSON lines (probabilities rounded to 4 decimals: |diff| <= 5.1e-5) and
 *     its labels, tokenised with the model's language (en contractions);
 *   - bad models and calls are refused with messages. */
#include "test.h"

#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classifier.h"
#include "err.h"
#include "infer.h"
#include "modelio.h"
#include "nn.h"
#include "rules.h"
#include "run.h"
#include "safetensors.h"
#include "vocab.h"

#define E 16
#define H 24
#define NL 2
#define L 5
#define BPTT 8

static const char *const WORDS[] = {"the", "a", "cat", "dog", "do", "n't", "it", "'s", "library", "perl", "game",
                                    "graphics", "network", "server", "client", "for", "with", "and", ".", ",",
                                    "python", "editor", "text", "3d", "é", "naïve"};
static const char *const LABELS[L] = {"devel", "games", "net", "text", "x11"};

static char dir[256];

static void mkdirs(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0700);
            *p = '/';
        }
    mkdir(tmp, 0700);
}

/* Writes DIR/models/en/JOB/1/{model.safetensors,vocab.txt}: a random classifier. */
static int write_model(const char *job, int multi, uint64_t seed)
{
    const size_t nw = sizeof WORDS / sizeof *WORDS;
    const char *toks[64];
    size_t n = 0;
    for (int i = 0; i < TOK_N_SPECIALS; i++)
        toks[n++] = tok_specials[i];
    for (size_t i = 0; i < nw; i++)
        toks[n++] = WORDS[i];
    while (n % 8)
        toks[n++] = TOK_FAKE;
    char folder[512], path[600];
    snprintf(folder, sizeof folder, "%s/models/en/%s/1", dir, job);
    mkdirs(folder);
    vocab *v = NULL;
    nn_backend *be = NULL;
    nn_model *m = NULL;
    head_clf *head = NULL;
    st_writer *w = NULL;
    float *h1 = NULL, *h2 = NULL;
    int rc = vocab_from_tokens(&v, toks, n, "test vocab");
    snprintf(path, sizeof path, "%s/vocab.txt", folder);
    if (rc == 0)
        rc = vocab_write(v, path);
    nn_config cfg = nn_config_clas((int)n, 0.5f);
    cfg.emb = E, cfg.hidden = H, cfg.layers = NL;
    if (rc == 0)
        rc = nn_backend_cpu_new(&be, 2);
    if (rc == 0 && (rc = nn_model_new(&m, &cfg, be)) == 0)
        rc = nn_model_init(m, seed);
    head_config hc = head_config_default(E, L, multi, 0.5f);
    hc.bptt = BPTT;
    if (rc == 0 && (rc = head_clf_new(&head, &hc, be, NULL, 4)) == 0)
        rc = head_clf_init(head, seed + 1);
    if (rc == 0) { /* running statistics away from 0/1, so that eval BatchNorm matters */
        float *buf = head_buffers(head);
        for (size_t i = 0; i < head_num_buffers(head); i++)
            buf[i] = (i % 2 ? 0.5f : -0.2f) + 0.01f * (float)(i % 7);
        const nn_tensor *bt = head_buffer_tensors(head);
        for (int k = 0; k < head_buffer_count(head); k++)
            if (strstr(bt[k].name, "running_var"))
                for (size_t i = 0; i < bt[k].numel; i++)
                    buf[bt[k].offset + i] = 0.5f + 0.1f * (float)(i % 5);
    }
    char labels[256], config[256];
    snprintf(labels, sizeof labels, "[\"%s\",\"%s\",\"%s\",\"%s\",\"%s\"]", LABELS[0], LABELS[1], LABELS[2], LABELS[3],
             LABELS[4]);
    snprintf(config, sizeof config, "{\"lang\":\"en\",\"batchSize\":4,\"bptt\":%d,\"job\":\"%s\",\"run\":\"1\"}",
             BPTT, job);
    if (rc == 0)
        rc = st_writer_new(&w);
    if (rc == 0)
        rc = modelio_add_nn(w, m, 1, &h1);
    if (rc == 0)
        rc = modelio_add_head(w, head, be, &h2);
    if (rc == 0)
        rc = st_writer_meta(w, "kubefit.labels", labels);
    if (rc == 0)
        rc = st_writer_meta(w, "kubefit.multi_label", multi ? "1" : "0");
    if (rc == 0)
        rc = st_writer_meta(w, "kubefit.threshold", "0.45");
    if (rc == 0)
        rc = st_writer_meta(w, "kubefit.config", config);
    snprintf(path, sizeof path, "%s/model.safetensors", folder);
    if (rc == 0)
        rc = st_writer_save(w, path);
    if (rc)
        fprintf(stderr, "write_model: %s\n", err_msg());
    st_writer_free(w);
    free(h1);
    free(h2);
    head_clf_free(head);
    nn_model_free(m);
    if (be)
        be->destroy(be);
    vocab_free(v);
    return rc;
}

/* Texts of 1 to ~70 tokens built from the vocabulary (and words it lacks). */
static char *make_text(int i)
{
    const size_t nw = sizeof WORDS / sizeof *WORDS;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    int words = 1 + (i * 37) % 70;
    s[0] = 0;
    for (int k = 0; k < words; k++) {
        const char *wd = k % 11 == 5 ? "Don't" : k % 13 == 7 ? "unknownword" : WORDS[(size_t)(i * 7 + k * 3) % nw];
        len += (size_t)snprintf(s + len, cap - len, "%s%s", k ? " " : "", wd);
    }
    if (i % 3 == 0)
        len += (size_t)snprintf(s + len, cap - len, " it's PERL!");
    return s;
}

#define NTEXTS 13

static void check_model(const char *job, int multi)
{
    char folder[512], mpath[600], vpath[600];
    snprintf(folder, sizeof folder, "%s/models/en/%s/1", dir, job);
    snprintf(mpath, sizeof mpath, "%s/model.safetensors", folder);
    snprintf(vpath, sizeof vpath, "%s/vocab.txt", folder);
    char *texts[NTEXTS];
    size_t lens[NTEXTS];
    for (int i = 0; i < NTEXTS; i++) {
        texts[i] = make_text(i);
        lens[i] = strlen(texts[i]);
    }
    /* predict: one JSON line per input line. */
    char *in_buf = NULL, *out_buf = NULL;
    size_t in_len = 0, out_len = 0;
    FILE *in = open_memstream(&in_buf, &in_len);
    for (int i = 0; i < NTEXTS; i++)
        fprintf(in, "%s\n", texts[i]);
    fclose(in);
    in = fmemopen(in_buf, in_len, "r");
    FILE *out = open_memstream(&out_buf, &out_len);
    run_opts o = run_opts_default();
    o.command = RUN_PREDICT;
    o.lang = "en", o.bucket = dir, o.model_dir = "models", o.job = job, o.run = "1", o.device = "cpu";
    o.threads = 2, o.in = in, o.out = out;
    int rc = run_main(&o);
    fclose(in);
    fclose(out);
    CHECK_EQ_INT(0, rc);
    if (rc)
        fprintf(stderr, "predict: %s\n", err_msg());

    infer_model *m = NULL;
    rc = infer_model_load(&m, &(infer_options){.model_path = mpath, .vocab_path = vpath, .device = "cpu",
                                               .threads = 2, .max_batch = 8});
    CHECK_EQ_INT(0, rc);
    if (rc) {
        fprintf(stderr, "infer_model_load: %s\n", err_msg());
        goto done;
    }
    CHECK_EQ_INT(L, infer_n_labels(m));
    CHECK_EQ_INT(multi, infer_multi_label(m));
    CHECK_EQ_STR("en", infer_lang(m));
    CHECK_NEAR(0.45, infer_threshold(m), 0, 0);
    CHECK_EQ_STR("games", infer_label(m, 1));
    CHECK(infer_label(m, L) == NULL);

    float batched[NTEXTS * L], single[NTEXTS * L];
    size_t tokens = 0;
    /* batches of 8 and 5 */
    CHECK_EQ_INT(0, infer_predict(m, batched, (const char *const *)texts, lens, 8, &tokens));
    CHECK(tokens > 8);
    CHECK_EQ_INT(0, infer_predict(m, batched + 8 * L, (const char *const *)texts + 8, lens + 8, NTEXTS - 8, NULL));
    for (int i = 0; i < NTEXTS; i++)
        CHECK_EQ_INT(0, infer_predict(m, single + i * L, (const char *const *)texts + i, lens + i, 1, NULL));
    CHECK_ALLCLOSE(single, batched, (size_t)NTEXTS * L, 1e-6, 0);
    /* against predict's lines */
    FILE *lines = fmemopen(out_buf, out_len, "r");
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (lines && getline(&line, &cap, lines) > 0 && n < NTEXTS) {
        json_t *j = json_loads(line, 0, NULL), *labels = json_object_get(j, "labels");
        CHECK(j != NULL);
        unsigned char pred[L];
        infer_decide(m, pred, batched + n * L);
        int npred = 0;
        for (int l = 0; l < L; l++) {
            double p = json_real_value(json_object_get(json_object_get(j, "probabilities"), LABELS[l]));
            CHECK_NEAR(p, batched[n * L + l], 5.1e-5, 0);
            int listed = 0;
            size_t k;
            json_t *x;
            json_array_foreach(labels, k, x) listed |= strcmp(json_string_value(x), LABELS[l]) == 0;
            CHECK_EQ_INT(listed, pred[l]);
            npred += pred[l];
        }
        if (!multi)
            CHECK_EQ_INT(1, npred);
        json_decref(j);
        n++;
    }
    free(line);
    if (lines)
        fclose(lines);
    CHECK_EQ_INT(NTEXTS, n);
    /* refusals */
    CHECK_EQ_INT(KF_EINVAL, infer_predict(m, batched, (const char *const *)texts, lens, 9, NULL));
    CHECK(strstr(err_msg(), "at most 8") != NULL);
done:
    infer_model_free(m);
    for (int i = 0; i < NTEXTS; i++)
        free(texts[i]);
    free(in_buf);
    free(out_buf);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/kubefit-test-infer-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    CHECK_EQ_INT(0, write_model("multi", 1, 11));
    CHECK_EQ_INT(0, write_model("single", 0, 21));
    check_model("multi", 1);
    check_model("single", 0);

    /* Bad models: the wrong vocabulary, no labels metadata, a missing file. */
    char mpath[600], vpath[600], bad[600];
    snprintf(mpath, sizeof mpath, "%s/models/en/multi/1/model.safetensors", dir);
    snprintf(vpath, sizeof vpath, "%s/short-vocab.txt", dir);
    FILE *f = fopen(vpath, "w");
    for (int i = 0; i < TOK_N_SPECIALS; i++)
        fprintf(f, "%s\n", tok_specials[i]);
    fputs("xxfake\nxxfake\nxxfake\nxxfake\nxxfake\nxxfake\nxxfake\n", f);
    fclose(f);
    infer_model *m = NULL;
    CHECK_EQ_INT(KF_EINVAL, infer_model_load(&m, &(infer_options){.model_path = mpath, .vocab_path = vpath,
                                                                   .device = "cpu", .threads = 1}));
    CHECK(strstr(err_msg(), "embedding rows but the vocabulary has 16 tokens") != NULL);
    CHECK(m == NULL);
    snprintf(bad, sizeof bad, "%s/nolabels.safetensors", dir);
    st_writer *w = NULL;
    float x[4] = {1, 2, 3, 4};
    int64_t shape[1] = {4};
    if (st_writer_new(&w) == 0 && st_writer_add(w, "0.module.encoder.weight", x, shape, 1) == 0)
        st_writer_save(w, bad);
    st_writer_free(w);
    CHECK_EQ_INT(KF_EINVAL, infer_model_load(&m, &(infer_options){.model_path = bad, .vocab_path = vpath,
                                                                   .device = "cpu", .threads = 1}));
    CHECK(strstr(err_msg(), "no kubefit.labels metadata") != NULL);
    snprintf(bad, sizeof bad, "%s/missing.safetensors", dir);
    CHECK(infer_model_load(&m, &(infer_options){.model_path = bad, .vocab_path = vpath, .device = "cpu"}) < 0);
    CHECK(strstr(err_msg(), "missing.safetensors") != NULL);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_done();
}
