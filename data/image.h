// image.h — image codecs: decode JPEG / PNG / WebP bytes into 8-bit RGB, encode RGB to JPEG.
//
// Owns the vlt_image value (width x height x 3 bytes, HWC, row-major) and the conversions that
// make every input RGB the way PIL's Image.convert("RGB") does (open_clip feeds PIL images to its
// transforms, so matching PIL keeps vlt's pixels equal to open_clip's):
//   - grayscale (any bit depth) is replicated to R = G = B;
//   - alpha is DROPPED, not composited (PIL's RGBA -> RGB and LA -> RGB copy the colour channels);
//     palette transparency (tRNS) is ignored the same way;
//   - 16-bit PNG samples keep their high byte (PIL's "RGB;16B" unpacker). Exception: PIL opens a
//     16-bit grayscale PNG as mode "I;16" and its convert("RGB") clips values > 255 to 255; vlt
//     takes the high byte instead (a saturated white image is never what the data meant);
//   - CMYK / YCCK JPEG: the samples are taken as stored inverted (Adobe's convention, which PIL
//     assumes for every CMYK JPEG), then R = (255-C)(255-K)/255 with PIL's integer rounding;
//   - no gamma / ICC / EXIF orientation handling (PIL's convert does none either).
// Corrupt or truncated data returns VLT_ERR_FORMAT naming the sample; libjpeg / libpng errors
// never exit() or print. Decoders that "recover" from damaged data fill the rest with grey and
// only warn: every such warning is an error here (vlt_image_fault says which kind), since a
// half-grey picture trained on as if whole is silent bad data. For JPEG: premature end of the
// file or of a data segment (the usual "cut short, end marker appended") is TRUNCATED; bad
// Huffman / arithmetic codes, lost restart markers, inconsistent progression and extraneous bytes
// before a marker are CORRUPT; only warnings that leave the pixels alone (unknown JFIF revision
// or Adobe transform, a bad ICC marker) are ignored. For PNG: libpng's warnings about image data,
// compressed data or CRCs (libpng demotes "Too much image data", "Extra compressed data" and
// ancillary CRC errors to warnings; PIL refuses those) are CORRUPT.
#ifndef VLT_DATA_IMAGE_H
#define VLT_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"

typedef struct {
    int width, height;
    uint8_t *rgb;   // (height, width, 3), row-major, owned (free with vlt_image_free)
} vlt_image;

typedef enum {
    VLT_IMAGE_UNKNOWN = 0,
    VLT_IMAGE_JPEG,
    VLT_IMAGE_PNG,
    VLT_IMAGE_WEBP,
} vlt_image_format;

// Why a decode failed, for callers that count bad samples by reason.
typedef enum {
    VLT_IMAGE_FAULT_NONE = 0,
    VLT_IMAGE_FAULT_BAD,        // not an image, bad header, unsupported, too large, out of memory
    VLT_IMAGE_FAULT_TRUNCATED,  // the data ends before the picture does
    VLT_IMAGE_FAULT_CORRUPT,    // the decoder met garbled data (see above)
} vlt_image_fault;

const char *vlt_image_fault_name(vlt_image_fault f);   // "bad image", "truncated image", ...

// Images larger than this many pixels are refused (VLT_ERR_FORMAT), as decompression bombs.
#define VLT_IMAGE_MAX_PIXELS (1ll << 27)

// The format from the magic bytes (not the file extension).
vlt_image_format vlt_image_sniff(const uint8_t *buf, size_t len);

// Decodes JPEG/PNG/WebP (sniffed from magic bytes, not the extension). `min_side` > 0 is a hint:
// the decoder may return a smaller image (JPEG DCT scaling) as long as both sides stay >= min_side
// (or the original size if it is already smaller). DCT scaling is used only when the image's
// shorter side is at least 2 * min_side. `what` names the sample for error messages (may be NULL).
// On error *out is left empty ({0, 0, NULL}).
vlt_status vlt_image_decode(const uint8_t *buf, size_t len, int min_side, const char *what, vlt_image *out);
// The same, also saying why it failed (*fault = VLT_IMAGE_FAULT_NONE on success; fault may be NULL).
vlt_status vlt_image_decode_fault(const uint8_t *buf, size_t len, int min_side, const char *what, vlt_image *out,
                                  vlt_image_fault *fault);

// Reads only the header: the full (unscaled) size and format. Cheap.
vlt_status vlt_image_probe(const uint8_t *buf, size_t len, const char *what,
                           int *width, int *height, vlt_image_format *format);

// Allocates an uninitialised width x height RGB image.
vlt_status vlt_image_alloc(vlt_image *img, int width, int height);
void vlt_image_free(vlt_image *img);

// Encodes RGB to a baseline JPEG (4:2:0, quality 1..100) with TurboJPEG. *out is malloc'd
// (free() it); *out_len its size in bytes.
vlt_status vlt_image_encode_jpeg(const vlt_image *img, int quality, uint8_t **out, size_t *out_len);

#endif
