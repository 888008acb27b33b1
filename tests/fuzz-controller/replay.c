/* Runs a fuzz target without libFuzzer: every file in the corpus folder, then deterministic
 * random mutations of them (byte flips, truncations, splices), so regular builds exercise the
 * targets under the sanitizers too. Usage: replay CORPUS_DIR [ITERATIONS] */
#include "test.h"

#include <dirent.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long long rng = 0x9E3779B97F4A7C15ULL;
static unsigned next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)rng;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    long iters = argc > 2 ? atol(argv[2]) : 2000;
    DIR *d = opendir(argv[1]);
    CHECK(d != NULL);
    if (!d)
        return test_done();
    uint8_t *seeds[64];
    size_t lens[64], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 20);
        size_t len = fread(buf, 1, 1 << 20, f);
        fclose(f);
        seeds[n] = buf, lens[n] = len, n++;
        LLVMFuzzerTestOneInput(buf, len);
    }
    closedir(d);
    CHECK(n > 0);
    for (long i = 0; i < iters && n; i++) {
        size_t s = next_rand() % n, len = lens[s];
        uint8_t *m = malloc(len + 64);
        memcpy(m, seeds[s], len);
        int kind = next_rand() % 4;
        if (kind == 0 && len) /* flip some bytes */
            for (int j = 0; j < 4; j++)
                m[next_rand() % len] = (uint8_t)next_rand();
        else if (kind == 1 && len) /* truncate */
            len = next_rand() % len;
        else if (kind == 2 && len) { /* splice another seed's tail */
            size_t o = next_rand() % n, cut = next_rand() % len, take = lens[o] < 64 ? lens[o] : 64;
            memcpy(m + cut, seeds[o], take);
            len = cut + take;
        } else if (len) /* insert special bytes */
            m[next_rand() % len] = "\n\"{}[]:\\\0"[next_rand() % 9];
        LLVMFuzzerTestOneInput(m, len);
        free(m);
    }
    for (size_t i = 0; i < n; i++)
        free(seeds[i]);
    fprintf(stderr, "replayed %zu seeds and %ld mutations\n", n, iters);
    test_checks++; /* reaching here without a sanitizer report is the check */
    return test_done();
}
