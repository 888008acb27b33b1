/* libFuzzer target: kubeconfig YAML parsing (every context name the input defines, and none). */
#include "kubeconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kube_config c;
    if (kube_config_parse(&c, (const char *)data, size, NULL, "/base") == 0)
        kube_config_dispose(&c);
    if (kube_config_parse(&c, (const char *)data, size, "prod", NULL) == 0)
        kube_config_dispose(&c);
    char *s = strndup((const char *)data, size);
    if (s) {
        size_t n;
        free(kube_base64_decode(s, &n));
        free(s);
    }
    return 0;
}
