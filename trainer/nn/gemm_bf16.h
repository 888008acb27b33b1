/* gemm_bf16: the BF16 products of gemm_cpu.c on AMX (Sapphire Rapids and later: GKE's C3): both
 * operands rounded to bfloat16 (round to nearest even), products summed in float32 - what the
 * GPU's bf16 mode (CUBLAS_COMPUTE_32F_FAST_16BF) does; weights, gradients and C stay float32.
 * Internal to gemm_cpu.c, which cuts C into parts (grid of 32 x 32 blocks) exactly as for float32
 * and hands each part here.
 * Tiles: C blocks of 32 x 32 in four 16 x 16 float32 tiles; A packed as bf16 rows (kc a row,
 * 32-multiple); B packed in AMX's pair layout: panels of 16 columns, each kc/2 rows of 16
 * column pairs (B[k][n], B[k+1][n]) - a 16 x 64-byte tile per 32 inner indices.
 * Pre-packed layout (nn_gemm_pack in bf16): blocks of kc inner indices (the last one rounded up
 * to 32, zero-filled), each a run of 16-column panels over N rounded up to 32.
 * Dimension legend: M rows, K inner, N columns. */
#ifndef KUBEFIT_NN_GEMM_BF16_H
#define KUBEFIT_NN_GEMM_BF16_H

#include <stdbool.h>
#include <stddef.h>

#include "gemm_kern.h"

/* The blocking (mr = nr = 32: a C block; kc, nc). kernel/pack NULL: not micro-kernel shaped. */
extern const struct nn_gemm_arch nn_gemm_bf16_arch;

/* Whether this process can run the AMX path: the CPU has AMX-BF16 and AVX512-BF16 and the
 * kernel grants the tile state (asked once, arch_prctl ARCH_REQ_XCOMP_PERM). */
bool nn_gemm_bf16_ready(void);

/* Floats of one part's workspace when it packs A blocks of mc rows. */
size_t nn_gemm_bf16_ws_floats(int mc);
/* Floats a pre-packed (K,N) operand takes (bf16: half a float each). */
size_t nn_gemm_bf16_packed_floats(int K, int N);
/* Packs the 16-column panels [q0, q1) of op(B)(K,N) into the pre-packed layout. */
void nn_gemm_bf16_pack(float *packed, const float *B, int ldb, bool trans_b, int K, int N, int q0,
                       int q1);
/* C's rows [r0,r1) x columns [n0,n1) of job j (pre-packed B when j->packed), A rounded in row
 * blocks of mc, ws a workspace of nn_gemm_bf16_ws_floats(mc). */
void nn_gemm_bf16_part(const nn_gemm_job *j, float *ws, int mc, int r0, int r1, int n0, int n1);

#endif
