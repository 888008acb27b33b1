/* test_head_reserve: after head_sentence_reserve / head_clf_reserve for the longest text, the
 * classifier's forward and backward on batches no longer than it allocate no backend memory (the
 * trainer reserves this way before its epochs). The backend is the CPU one behind a table whose
 * alloc counts calls. Without the reserve, the same batches do allocate (the count is a real
 * measurement). */
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "sentence.h"
#include "test.h"

static nn_backend *inner;
static int allocs;

static void *counting_alloc(nn_backend *be, size_t bytes)
{
    (void)be;
    allocs++;
    return inner->alloc(inner, bytes);
}

/* A backend that is the CPU one with counted allocations. */
static nn_backend counted(void)
{
    nn_backend b = *inner;
    b.alloc = counting_alloc;
    return b;
}

enum { V = 97, E = 12, H = 16, B = 4, BPTT = 8, MAXLEN = 24, L = 5 };

/* Pad-first batch of B rows, row r of length len[r] (longest first), tokens in [2, V). */
static int32_t *batch(const int *len, int S)
{
    int32_t *tok = malloc(sizeof *tok * B * S);
    for (int r = 0; r < B; r++)
        for (int t = 0; t < S; t++)
            tok[r * S + t] = t < S - len[r] ? 1 : 2 + (r * 31 + t * 7) % (V - 2);
    return tok;
}

/* One training forward + backward; returns the allocations it made. */
static int step(head_sentence *s, head_clf *c, const int *len, int S)
{
    int before = allocs, T;
    int32_t *tok = batch(len, S);
    head_forward_opts o = {.training = true, .seed = 3, .step = 1};
    CHECK(head_sentence_forward(s, tok, B, S, &o) == 0);
    const float *enc = head_sentence_output(s, &T);
    head_clf_masks_sample(c, B, 3, 1);
    CHECK(head_clf_forward(c, enc, head_sentence_pad(s), B, T, true) == 0);
    float y[B * L];
    for (int i = 0; i < B * L; i++)
        y[i] = (float)(i % 3 == 0);
    double loss = 0;
    CHECK(head_clf_loss(c, &loss, &(head_targets){.multi = y}, 1.0f) == 0);
    CHECK(head_clf_backward(c, head_sentence_dout(s)) == 0);
    CHECK(head_sentence_backward(s) == 0);
    free(tok);
    return allocs - before;
}

static void run(bool reserve, int *first_allocs, int *later_allocs)
{
    nn_backend be = counted();
    nn_model *m = NULL;
    head_sentence *s = NULL;
    head_clf *c = NULL;
    nn_config cfg = nn_config_clas(V, 0.5f);
    cfg.emb = E, cfg.hidden = H, cfg.layers = 2;
    head_sentence_config sc = head_sentence_config_default();
    sc.bptt = BPTT, sc.max_len = MAXLEN;
    head_config hc = head_config_default(E, L, true, 0.5f);
    CHECK(nn_model_new(&m, &cfg, &be) == 0 && nn_model_init(m, 1) == 0);
    CHECK(head_sentence_new(&s, m, &sc, B) == 0);
    CHECK(head_clf_new(&c, &hc, &be, NULL, B) == 0 && head_clf_init(c, 2) == 0);
    const int longest = 37; /* beyond max_len: chunks are dropped too */
    if (reserve) {
        CHECK(head_sentence_reserve(s, B, longest) == 0);
        CHECK(head_clf_reserve(c, B, head_sentence_kept_len(s, longest)) == 0);
    }
    const int short_len[B] = {9, 7, 5, 3}, long_len[B] = {37, 30, 20, 2};
    *first_allocs = step(s, c, short_len, 9);
    *later_allocs = step(s, c, long_len, longest);
    head_clf_free(c);
    head_sentence_free(s);
    nn_model_free(m);
}

int main(void)
{
    CHECK(nn_backend_cpu_new(&inner, 1) == 0);
    int a1, a2;
    run(true, &a1, &a2);
    fprintf(stderr, "reserved: %d allocations in the short step, %d in the longest\n", a1, a2);
    CHECK(a1 == 0);
    CHECK(a2 == 0);
    run(false, &a1, &a2);
    fprintf(stderr, "not reserved: %d allocations in the short step, %d in the longest\n", a1, a2);
    CHECK(a1 + a2 > 0);
    inner->destroy(inner);
    return test_done();
}
