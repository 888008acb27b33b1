/* fuzz_safetensors: any byte string through st_parse; when it parses, every tensor is read
 * (conversion of every dtype path) and looked up, so an offset bug shows as an ASan report. */
#include <stdint.h>
#include <stdlib.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file *f = NULL;
    if (st_parse(&f, data, size) < 0)
        return 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (t->numel > (1u << 20))
            continue;
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (out) {
            st_read_f32(out, t->numel, f, t->name, t->shape, t->ndim);
            free(out);
        }
        (void)st_find(f, t->name);
    }
    (void)st_metadata(f, "format");
    st_free(f);
    return 0;
}
