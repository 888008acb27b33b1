/* test_data: the batchers. LM batches as fastai's LMDataLoader (one stream cut into B rows,
 * targets shifted by one); classifier batches as SortedDL + pad_input_chunk (pad-first by chunks
 * of seq_len, the remainder after the text); the training order keeps every document once. */
#include "data.h"
#include "err.h"
#include "test.h"

static data_doc doc(int32_t *ids, size_t n) { return (data_doc){.ids = ids, .n = n}; }

int main(void)
{
    /* LM: docs 0..9, 10..14, 15..24 concatenated = 0..24 (25 tokens); B 3 -> m = 8 per row. */
    int32_t a[10], b[5], c[10];
    for (int i = 0; i < 10; i++) a[i] = i, c[i] = 15 + i;
    for (int i = 0; i < 5; i++) b[i] = 10 + i;
    data_doc dv[3] = {doc(a, 10), doc(b, 5), doc(c, 10)};
    data_docs docs = {.v = dv, .n = 3};
    data_lm lm;
    CHECK_EQ_INT(0, data_lm_build(&lm, &docs, 3, 0));
    CHECK_EQ_INT(8, lm.m);
    CHECK_EQ_INT(2, data_lm_chunks(&lm, 5));
    int32_t x[15], y[15];
    CHECK_EQ_INT(5, data_lm_chunk(&lm, 0, 5, x, y));
    CHECK_EQ_INT(8, x[5]);   /* row 1 starts at token 8 */
    CHECK_EQ_INT(9, y[5]);
    CHECK_EQ_INT(16, x[10]); /* row 2 starts at 16 */
    CHECK_EQ_INT(3, data_lm_chunk(&lm, 1, 5, x, y)); /* the short last chunk: t = 3, stride 3 */
    CHECK_EQ_INT(5, x[0]);
    CHECK_EQ_INT(13, x[3]);
    CHECK_EQ_INT(24, y[8]);  /* last target = last token */
    CHECK_EQ_INT(0, data_lm_chunk(&lm, 2, 5, x, y));
    data_lm_dispose(&lm);
    /* Shuffled: same tokens, other document order, deterministic in the seed. */
    data_lm s1, s2;
    CHECK_EQ_INT(0, data_lm_build(&s1, &docs, 1, 99));
    CHECK_EQ_INT(0, data_lm_build(&s2, &docs, 1, 99));
    CHECK(memcmp(s1.stream, s2.stream, 25 * sizeof(int32_t)) == 0);
    long sum = 0;
    for (int i = 0; i < 25; i++)
        sum += s1.stream[i];
    CHECK_EQ_INT(300, sum);
    data_lm_dispose(&s1);
    data_lm_dispose(&s2);
    CHECK_EQ_INT(KF_EINVAL, data_lm_build(&s1, &docs, 30, 0)); /* fewer tokens than rows */

    /* Classifier batch: lengths 10, 5, 3 with seq_len 4 -> S 10; doc of 5: l = 5 -> 4 pads
     * before, 1 after; doc of 3: l = 7 -> 4 before, 3 after. Rows sorted longest first. */
    int32_t d3[3] = {101, 102, 103};
    data_doc cv[3] = {doc(b, 5), doc(d3, 3), doc(a, 10)};
    data_docs cd = {.v = cv, .n = 3};
    size_t idx[3] = {0, 1, 2}, perm[3];
    int32_t *tok = NULL;
    uint8_t *pad = NULL;
    int S = 0;
    CHECK_EQ_INT(0, data_clf_batch(&tok, &pad, &S, perm, &cd, idx, 3, 4, 1));
    CHECK_EQ_INT(10, S);
    CHECK_EQ_INT(2, perm[0]);
    CHECK_EQ_INT(0, perm[1]);
    CHECK_EQ_INT(1, perm[2]);
    static const int32_t row1[10] = {1, 1, 1, 1, 10, 11, 12, 13, 14, 1};
    static const int32_t row2[10] = {1, 1, 1, 1, 101, 102, 103, 1, 1, 1};
    CHECK(memcmp(tok, a, sizeof a) == 0);
    CHECK(memcmp(tok + 10, row1, sizeof row1) == 0);
    CHECK(memcmp(tok + 20, row2, sizeof row2) == 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(0, pad[i]); /* the longest row has no pad (its token 1 is a word here) */
    for (int i = 10; i < 30; i++)
        if (pad[i] != (tok[i] == 1))
            TEST_FAIL_("pad mask [%d] = %d for token %d", i, pad[i], tok[i]);
    free(tok);
    free(pad);

    /* Orders: validation longest first; training a permutation, seeded. */
    size_t order[3], o2[3];
    CHECK_EQ_INT(0, data_clf_order(order, &cd, 2, 0));
    CHECK_EQ_INT(2, order[0]);
    CHECK_EQ_INT(0, order[1]);
    CHECK_EQ_INT(1, order[2]);
    CHECK_EQ_INT(0, data_clf_order(order, &cd, 2, 5));
    CHECK_EQ_INT(0, data_clf_order(o2, &cd, 2, 5));
    CHECK(memcmp(order, o2, sizeof order) == 0);
    CHECK_EQ_INT(3, order[0] + order[1] + order[2]);
    CHECK(order[0] != order[1] && order[1] != order[2] && order[0] != order[2]);
    return test_done();
}
