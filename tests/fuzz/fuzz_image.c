// fuzz_image.c — JPEG / PNG / WebP decoding through vlt's own checks (vlt_image_decode_fault,
// vlt_image_probe): any input decodes to a whole image or fails with a reason, never reads or
// writes out of bounds. The first byte picks the DCT-scaling hint (min_side).
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int min_side = data[0] & 0x3f;
    data++;
    size--;
    int w = 0, h = 0;
    vlt_image_format f;
    vlt_status ps = vlt_image_probe(data, size, "fuzz", &w, &h, &f);
    // Skip pictures whose decode alone would take long (the pixel limit is 2^27): the fuzzer's
    // time goes to the parsers, not to filling a big buffer.
    if (ps == VLT_OK && (long long)w * h > (1ll << 22)) return 0;
    vlt_image img;
    vlt_image_fault fault = VLT_IMAGE_FAULT_BAD;
    vlt_status s = vlt_image_decode_fault(data, size, min_side, "fuzz", &img, &fault);
    if (s == VLT_OK) {
        if (!img.rgb || img.width <= 0 || img.height <= 0 || fault != VLT_IMAGE_FAULT_NONE) abort();
        volatile uint8_t sink = img.rgb[0] ^ img.rgb[(size_t)img.width * img.height * 3 - 1];
        (void)sink;
        vlt_image_free(&img);
    } else if (img.rgb || fault == VLT_IMAGE_FAULT_NONE) {
        abort();   // a failure leaves nothing allocated and says why
    }
    return 0;
}
