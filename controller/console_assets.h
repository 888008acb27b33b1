/* console_assets: the console's static files, embedded in the binary at build time from
 * controller/console/ (console/embed.cmake writes console_assets.c into the build folder). */
#ifndef KUBEFIT_CONSOLE_ASSETS_H
#define KUBEFIT_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;          /* "/", "/console.js" */
    const char *type;          /* Content-Type */
    const unsigned char *data;
    size_t len;
} console_asset;

extern const console_asset console_assets[];
extern const size_t console_nassets;

#endif
