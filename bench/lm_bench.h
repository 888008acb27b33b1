/* lm_bench: what the LM benchmarks (bench/trainer-cpu bench_lm, tests/gpu-backend bench_lm_gpu
 * and profile_lm_gpu) share: a monotonic clock and the LM shape and step-count flags
 *   --vocab V --emb E --hidden H --layers NL --batch B --bptt T --steps N --warmup W
 * Each program keeps its defaults in the struct and its own flags in its loop:
 *   for (int i = 1; i < argc; i++) {
 *       int r = lm_args_take(&a, "bench_lm", argc, argv, &i);
 *       if (r < 0) return 2; if (r) continue;
 *       ... the program's own flags ...
 *   } */
#ifndef KUBEFIT_BENCH_LM_BENCH_H
#define KUBEFIT_BENCH_LM_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic seconds. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct lm_args {
    int vocab, emb, hidden, layers, batch, bptt, steps, warmup;
} lm_args;

/* *out = the integer in s, in [lo, 2^24]; else a message naming flag and -1. */
static inline int lm_args_int(const char *prog, const char *flag, const char *s, int lo, int *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || v < lo || v > 1 << 24) {
        fprintf(stderr, "%s: %s needs an integer >= %d\n", prog, flag, lo);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* When argv[*i] is one of the flags above, reads its value into a, moves *i past it and returns
 * 1; returns 0 for any other argument and -1 for a bad value (message printed). */
static inline int lm_args_take(lm_args *a, const char *prog, int argc, char **argv, int *i)
{
    const char *f = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    int *dst = !strcmp(f, "--vocab")    ? &a->vocab
               : !strcmp(f, "--emb")    ? &a->emb
               : !strcmp(f, "--hidden") ? &a->hidden
               : !strcmp(f, "--layers") ? &a->layers
               : !strcmp(f, "--batch")  ? &a->batch
               : !strcmp(f, "--bptt")   ? &a->bptt
               : !strcmp(f, "--steps")  ? &a->steps
               : !strcmp(f, "--warmup") ? &a->warmup
                                        : NULL;
    if (!dst)
        return 0;
    if (lm_args_int(prog, f, v, dst == &a->warmup ? 0 : 1, dst) < 0)
        return -1;
    (*i)++;
    return 1;
}

#endif
