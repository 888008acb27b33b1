/* libFuzzer target: serve/protocol.c's request parsers (outside input: HTTP bodies). The first
 * byte picks the protocol and the text limit; a parsed request is answered with a made-up model,
 * so the response writers run on whatever the parser let through. */
#include "protocol.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    proto_kind kind = (proto_kind)(data[0] % 3);
    size_t max = data[0] & 0x80 ? 4 : 0;
    proto_request r;
    if (proto_parse(&r, kind, (const char *)data + 1, size - 1, max) == 0) {
        const char *labels[] = {"a", "b"};
        proto_model m = {.name = "m", .version = "1", .labels = labels, .n_labels = 2};
        float *probs = calloc(r.n * 2, sizeof *probs);
        unsigned char *pred = calloc(r.n * 2, 1);
        size_t len = 0;
        for (size_t i = 0; probs && pred && i < r.n; i++) {
            probs[2 * i] = r.lens[i] ? (float)(unsigned char)r.texts[i][0] / 255.0f : 0.5f;
            pred[2 * i + 1] = 1;
        }
        if (probs && pred)
            free(proto_response(&r, &m, probs, pred, &len));
        free(probs);
        free(pred);
    }
    proto_request_dispose(&r);
    return 0;
}
