/* libFuzzer target: every parser of what GCS, token endpoints and key files send back.
 * The first byte picks the parser; the rest is the document. Build with -DKUBEFIT_FUZZ=ON (clang):
 *   build-fuzz/tests/fuzz-storage/fuzz_gcs_json -max_total_time=120 tests/fuzz-storage/corpus */
#include "gcs_json.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *doc = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 5) {
    case 0: {
        storage_object o;
        if (gcs_json_object(&o, doc, len) == 0)
            storage_object_dispose(&o);
        break;
    }
    case 1: {
        storage_object *items = NULL;
        size_t n = 0, cap = 0;
        char *tok = NULL;
        /* Two pages into the same list, as the client does. */
        if (gcs_json_list_page(&items, &n, &cap, &tok, doc, len) == 0) {
            free(tok);
            tok = NULL;
            gcs_json_list_page(&items, &n, &cap, &tok, doc, len);
        }
        free(tok);
        storage_list_free(items, n);
        break;
    }
    case 2:
        free(gcs_json_error_message(doc, len));
        break;
    case 3: {
        char *token = NULL;
        long exp = 0;
        if (gcs_json_token(&token, &exp, doc, len) == 0)
            free(token);
        break;
    }
    case 4: {
        gcs_key k;
        if (gcs_json_key(&k, doc, len, "fuzz.json") == 0)
            gcs_key_dispose(&k);
        break;
    }
    }
    return 0;
}
