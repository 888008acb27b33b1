/* libFuzzer target: what a progress report or a console request brings from outside before any
 * check - the /progress/<ns>/<job>/<run> path and a bearer token's JWT claims (base64url + JSON,
 * read for their exp). The first byte picks the parser. */
#include "ingest.h"
#include "review.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (data[0] & 1) {
        char *ns = NULL, *job = NULL;
        int run = 0;
        if (ingest_parse_path(s, &ns, &job, &run) == 0 && (!ns || !job || run < 1))
            abort(); /* a parsed path always has all three */
        free(ns);
        free(job);
    } else {
        double exp = review_jwt_expiry(s);
        if (exp != exp)
            abort(); /* never NaN */
    }
    free(s);
    return 0;
}
