/* crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as GCS reports it.
 * Incremental: crc = crc32c_update(0, a, n); crc = crc32c_update(crc, b, m); */
#ifndef KUBEFIT_STORAGE_CRC32C_H
#define KUBEFIT_STORAGE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
/* GCS encoding: base64 of the 4 bytes in big-endian order, e.g. "yZRlqg==" (9 chars incl. NUL). */
void crc32c_to_b64(uint32_t crc, char out[9]);

#endif
