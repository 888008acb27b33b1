/* backend: the compute table the model code calls for every operation on tensor memory.
 * The CPU backend (backend_cpu.c) uses OpenBLAS + OpenMP; a CUDA backend fills the same table.
 * All tensor pointers passed to these ops are backend memory (from be->alloc); on the CPU that is
 * plain host memory. Matrices are row-major. Shapes are given in the comments.
 *
 * Dimension legend: N rows, D columns, B batch, T time, H hidden size of one LSTM layer, V vocab,
 * E embedding size. Activations are TIME-MAJOR: a (T,B,D) tensor holds row t*B+b. */
#ifndef KUBEFIT_NN_BACKEND_H
#define KUBEFIT_NN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nn_backend nn_backend;

/* One tensor of an optimizer op (adam_set/adam_queue, clip_queue below): (n) floats each, backend
 * memory. fastai's Adam as trainer/train/optim.h: p *= 1-lr*wd (when wd != 0); avg, sqr moving
 * averages; p -= lr/(1-mom^step) * avg / (sqrt(sqr/(1-sqr_mom^step)) + eps). */
typedef struct nn_opt_tensor {
    float *param, *grad, *avg, *sqr;
    size_t n;
    double lr;   /* learning rate of the tensor's group */
    double wd;   /* decoupled weight decay; 0: none (biases, BatchNorm) */
    double step; /* the tensor's step count including this update (1 on the first) */
} nn_opt_tensor;
struct head_kernels; /* trainer/head/kernels.h */

struct nn_backend {
    const char *name; /* "cpu", "cuda" */
    void *ctx;        /* backend private */
    int threads;      /* worker threads (CPU) */
    void (*destroy)(nn_backend *be);

    /* Memory. alloc returns zeroed memory, 64-byte aligned, or NULL. */
    void *(*alloc)(nn_backend *be, size_t bytes);
    void (*release)(nn_backend *be, void *p);
    void (*upload)(nn_backend *be, void *dst, const void *host_src, size_t bytes);
    void (*download)(nn_backend *be, void *host_dst, const void *src, size_t bytes);
    void (*copy)(nn_backend *be, void *dst, const void *src, size_t bytes);
    void (*fill)(nn_backend *be, float *x, float value, size_t n);

    /* Runs fn(arg, lo, hi) over [0,n) split across the workers (CPU kernels use it; a GPU
     * backend may leave it NULL). */
    void (*parallel_for)(nn_backend *be, size_t n, void (*fn)(void *arg, size_t lo, size_t hi),
                         void *arg);

    /* C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C; op(X) = X^T when trans_x. */
    void (*sgemm)(nn_backend *be, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

    /* mask(n) = keep ? 1/(1-p) : 0 with keep ~ Bernoulli(1-p), from a counter-based hash of
     * (seed, stream, index): the same on every backend. p == 0 gives all ones. */
    void (*dropout_mask)(nn_backend *be, float *mask, size_t n, float p, uint64_t seed,
                         uint64_t stream);
    /* y(n) = x(n) * m(n); y may alias x. */
    void (*mul)(nn_backend *be, float *y, const float *x, const float *m, size_t n);
    /* y(R,B,D) = x(R,B,D) * m(B,D), the mask broadcast over R (time); y may alias x. */
    void (*mul_bcast)(nn_backend *be, float *y, const float *x, const float *m, int R, int B,
                      int D);
    /* y(n) += a * x(n) */
    void (*axpy)(nn_backend *be, float *y, float a, const float *x, size_t n);

    /* out(T,B,E) = w[tok[b,t]] * rowmask[tok[b,t]] (rowmask(V) or NULL); tok is (B,T) int32.
     * Token ids must be in [0,V) (checked by the caller). */
    void (*embedding_fwd)(nn_backend *be, float *out, const int32_t *tok, const float *w,
                          const float *rowmask, int B, int T, int E);
    /* dw(V,E)[tok] += dout(T,B,E) * rowmask[tok], skipping tokens == pad (padding_idx). */
    void (*embedding_bwd)(nn_backend *be, float *dw, const float *dout, const int32_t *tok,
                          const float *rowmask, int pad, int B, int T, int E);

    /* y(N,D) += b1(D) + b2(D); b2 may be NULL. */
    void (*add_bias)(nn_backend *be, float *y, const float *b1, const float *b2, int N, int D);
    /* db(D) += sum over rows of dy(N,D). */
    void (*bias_grad)(nn_backend *be, float *db, const float *dy, int N, int D);

    /* One LSTM step, PyTorch gate order i,f,g,o. gates(B,4H): in pre-activations, out activated
     * gates; c(B,H) = f*c_prev + i*g; h(B,H) = o*tanh(c). */
    void (*lstm_cell_fwd)(nn_backend *be, float *gates, float *c, float *h, const float *c_prev,
                          int B, int H);
    /* Backward of one step. dh(B,H): total dL/dh_t; dc(B,H): in dL/dc_t from step t+1, out
     * dL/dc_{t-1}; dgates(B,4H): out, gradient w.r.t. the pre-activations. */
    void (*lstm_cell_bwd)(nn_backend *be, float *dgates, const float *dh, float *dc,
                          const float *gates, const float *c, const float *c_prev, int B, int H);

    /* logits(N,V) -> probs in place (softmax); loss(N) = -log prob[target]. */
    void (*softmax_xent_fwd)(nn_backend *be, float *loss, float *probs, const int32_t *targets,
                             int N, int V);
    /* dlogits(N,V) = scale * (probs - onehot(target)); may alias probs. */
    void (*softmax_xent_bwd)(nn_backend *be, float *dlogits, const float *probs,
                             const int32_t *targets, float scale, int N, int V);

    /* Sum of x(n) in double. */
    double (*sum)(nn_backend *be, const float *x, size_t n);
    /* Sum of x(n)^2 in double. */
    double (*sumsq)(nn_backend *be, const float *x, size_t n);
    /* sum over t<R-1 of (x[t+1]-x[t])^2 for x(R,M), in double (TAR). */
    double (*sumsq_tdiff)(nn_backend *be, const float *x, int R, int M);
    /* dx(R,M) += scale * d/dx of sumsq_tdiff(x). */
    void (*sumsq_tdiff_grad)(nn_backend *be, float *dx, const float *x, float scale, int R, int M);
    /* *dst (one double, backend memory) = the sum, sum of squares or (NN_RED_TDIFF) sum of
     * (x[i+M] - x[i])^2 over i < n of x, as sum, sumsq, sumsq_tdiff above (which take
     * n = (R-1)*M), left in backend memory: a GPU backend does not wait for it. */
    void (*reduce_to)(nn_backend *be, double *dst, int kind, const float *x, size_t n, int M);

    /* Optional (NULL: the model uses sgemm instead): products with a right operand packed once
     * and reused, for the recurrent weight of a chunk (one small product per time step).
     * packed_floats: floats of a packed (K,N) operand. pack_b: packed = op(B)(K,N), op(B) = B^T
     * when trans_b (B row-major, leading dimension ldb). sgemm_packed: C(M,N) = A(M,K) packed
     * + beta * C. */
    size_t (*packed_floats)(nn_backend *be, int K, int N);
    void (*pack_b)(nn_backend *be, float *packed, const float *B, int ldb, bool trans_b, int K,
                   int N);
    void (*sgemm_packed)(nn_backend *be, int M, int N, int K, const float *A, int lda,
                         const float *packed, float beta, float *C, int ldc);

    /* Optional trainer ops. NULL (the CPU backend): the trainer (trainer/train optim.c, fit.c)
     * does this arithmetic on the host, reading backend memory directly, which only a backend
     * whose memory is host memory allows; any other backend must fill them all.
     * The optimizer in pieces that a recorded graph can hold (an eager step is set + queue):
     * adam_set hands over the constants of this step for the count listed tensors (lr, wd, step
     * per tensor, the momenta, eps; host only, never inside a recording; 0 or KF_EINVAL);
     * adam_queue queues one Adam update of the same list (a replay uses what adam_set gave
     * last); clip_queue queues torch's clip_grad_norm_: the L2 norm (in double) of the listed
     * grads and, when max_norm > 0 and max_norm/(norm+1e-6) < 1, their scaling by that factor
     * (computed on the device); clip_norm reads the norm of the last clip_queue (waits). */
    int (*adam_set)(nn_backend *be, const nn_opt_tensor *t, int count, double mom,
                    double sqr_mom, double eps);
    void (*adam_queue)(nn_backend *be, const nn_opt_tensor *t, int count);
    void (*clip_queue)(nn_backend *be, const nn_opt_tensor *t, int count, double max_norm);
    double (*clip_norm)(nn_backend *be);
    /* hits(N) = 1 where the first index of row i's maximum of x(N,V) equals targets(N), else 0
     * (next-token accuracy: sum hits with be->sum). */
    void (*argmax_hits)(nn_backend *be, float *hits, const float *x, const int32_t *targets,
                        int N, int V);

    const struct head_kernels *head; /* the head's ops on this backend (NULL: head_kernels_cpu()) */

    /* Optional: the pieces that make a whole training step replayable as one graph (CUDA).
     * capture_begin: from here on, queued ops are recorded, not run (no op in between may wait
     * for the device: no upload/download/sum); capture_end: the recording as a replayable graph;
     * graph_launch queues a replay; graph_free frees it. Return 0 or a negative KF_E* code. */
    int (*capture_begin)(nn_backend *be);
    int (*capture_end)(nn_backend *be, void **graph);
    int (*graph_launch)(nn_backend *be, void *graph);
    void (*graph_free)(nn_backend *be, void *graph);
};

enum { NN_RED_SUM = 0, NN_RED_SUMSQ = 1, NN_RED_TDIFF = 2 };

/* CPU backend: gemm_cpu.h products + pthread-pool kernels on `threads` threads (<= 0: all
 * cores). Caller frees with be->destroy(be). Returns 0 or a negative KF_E* code. */
int nn_backend_cpu_new(nn_backend **out, int threads);
/* The CPU backend's product kernels: "avx512", "avx2", "c", "amx-bf16" or "openblas"
 * (KUBEFIT_GEMM); NULL for another backend. */
const char *nn_backend_cpu_gemm(const nn_backend *be);
/* on: the CPU backend's products round both operands to bfloat16 and sum in float32 (AMX;
 * weights, gradients, activations stay float32 - the GPU's bf16 mode); off: float32. Call it
 * before making models on be (packed operands differ in size). Returns 0, KF_EUNSUPPORTED (no
 * AMX-BF16 for this process: be unchanged) or KF_EINVAL (not the CPU backend). */
int nn_backend_cpu_set_bf16(nn_backend *be, bool on);

#endif
