// sha256.h — SHA-256 (FIPS 180-4) of memory and of files, for the evaluation report's record of
// every input it read.
#ifndef VLT_EVAL_SHA256_H
#define VLT_EVAL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"

typedef struct {
    uint32_t h[8];
    uint64_t len;       // bytes so far
    uint8_t buf[64];
    size_t fill;
} vlt_sha256;

void vlt_sha256_init(vlt_sha256 *s);
void vlt_sha256_update(vlt_sha256 *s, const void *data, size_t n);
// The digest as 64 lower-case hex digits and a NUL.
void vlt_sha256_hex(vlt_sha256 *s, char hex[65]);

// SHA-256 of a whole file; *bytes (may be NULL) its size. Errors name the file.
vlt_status vlt_sha256_file(const char *path, char hex[65], long long *bytes);

#endif
