/* cuda_metrics: the trainer's metric kernels on the GPU (the nn_backend op argmax_hits).
 *   cuda_argmax_hits(stream, hits, probs, targets, N, V);  then be->sum(hits, N) = right answers
 * Dimension legend: N rows (tokens), V columns (vocabulary). */
#ifndef KUBEFIT_CUDA_METRICS_H
#define KUBEFIT_CUDA_METRICS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* hits(N) = 1.0f where the first index of the maximum of row i of x(N,V) is targets[i], else 0,
 * exactly as the host loop `if (x[v] > x[best]) best = v` picks it. Queued on stream; N or
 * V <= 0 does nothing. */
void cuda_argmax_hits(cudaStream_t stream, float *hits, const float *x, const int32_t *targets,
                      int N, int V);

#ifdef __cplusplus
}
#endif

#endif
