#include "backoff.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static _Thread_local unsigned int seed;

long backoff_delay_ms(int attempt, long initial_ms, long max_ms)
{
    if (!seed)
        seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)&seed;
    long base = initial_ms > 0 ? initial_ms : 1;
    for (int i = 1; i < attempt && base < max_ms; i++)
        base *= 2;
    if (base > max_ms)
        base = max_ms;
    /* Full jitter over the upper half keeps a floor, so a restarting server gets time to return. */
    return base / 2 + (long)(rand_r(&seed) % (unsigned long)(base / 2 + 1));
}

void backoff_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int backoff_retryable_status(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}
