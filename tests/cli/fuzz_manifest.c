/* Fuzz target: YAML manifests (manifest_parse), the CRD's defaults and checks on what they hold
 * (crd_default, crd_validate), and the YAML writer's round trip: every value parsed, written back
 * with yamlout and parsed again must be the same JSON (abort otherwise, so the fuzzer reports it). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crd.h"
#include "manifest.h"
#include "yamlout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static crd *c;
    if (!c && crd_load(&c) < 0)
        abort();
    json_t *docs = NULL;
    if (manifest_parse(&docs, (const char *)data, size, "fuzz.yaml") < 0)
        return 0;
    size_t i;
    json_t *v;
    json_array_foreach(docs, i, v) {
        char *y = yamlout_string(v);
        json_t *back = NULL;
        if (!y || manifest_parse(&back, y, strlen(y), "out.yaml") < 0 || json_array_size(back) != 1 ||
            !json_equal(v, json_array_get(back, 0)))
            abort();
        free(y);
        json_decref(back);
        json_t *copy = json_deep_copy(v);
        if (crd_default(c, copy) == 0)
            crd_validate(c, copy);
        json_decref(copy);
    }
    json_decref(docs);
    return 0;
}
