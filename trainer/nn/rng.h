/* rng: counter-based random numbers, so that every backend (and a test) draws the same values
 * from (seed, stream, index) without shared state. */
#ifndef KUBEFIT_NN_RNG_H
#define KUBEFIT_NN_RNG_H

#include <stdint.h>

/* splitmix64 finaliser: a bijective 64-bit mix. */
static inline uint64_t nn_rng_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Uniform in [0,1) with 24 random bits (exact in float) for element `index` of `stream`. */
static inline float nn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t h = nn_rng_mix(nn_rng_mix(seed ^ nn_rng_mix(stream)) + index);
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

#endif
