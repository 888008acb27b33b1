/* libFuzzer target: the watch stream decoder. The input is split into chunks at positions taken
 * from its first byte, so splits anywhere are explored along with the content. */
#include "watch.h"

#include <stddef.h>
#include <stdint.h>

static int on_event(void *ctx, const char *type, json_t *obj)
{
    (void)ctx;
    /* Touch what a real consumer would. */
    json_t *meta = json_object_get(obj, "metadata");
    (void)json_string_value(json_object_get(meta, "resourceVersion"));
    return type[0] == 'D' && json_object_size(obj) > 50; /* sometimes stop */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    data++, size--;
    watch_parser p = {.max_line = 1 << 16};
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0 && !p.stopped; off += step) {
        size_t n = size - off < step ? size - off : step;
        rc = watch_parser_feed(&p, (const char *)data + off, n, on_event, NULL);
    }
    if (rc == 0)
        watch_parser_finish(&p, on_event, NULL);
    watch_parser_dispose(&p);
    return 0;
}
