// image.c — JPEG (TurboJPEG), PNG (libpng) and WebP (libwebp) decoding to RGB, JPEG encoding.
// The colour conversions follow PIL's convert("RGB"); see image.h for the exact rules.
#include "data/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include <jerror.h>
#include <jpeglib.h>
#include <webp/decode.h>

#define WHAT(w) ((w) ? (w) : "image")

vlt_image_format vlt_image_sniff(const uint8_t *buf, size_t len) {
    if (!buf) return VLT_IMAGE_UNKNOWN;
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return VLT_IMAGE_JPEG;
    if (len >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8)) return VLT_IMAGE_PNG;
    if (len >= 12 && !memcmp(buf, "RIFF", 4) && !memcmp(buf + 8, "WEBP", 4)) return VLT_IMAGE_WEBP;
    return VLT_IMAGE_UNKNOWN;
}

vlt_status vlt_image_alloc(vlt_image *img, int width, int height) {
    img->width = img->height = 0;
    img->rgb = NULL;
    if (width <= 0 || height <= 0 || (long long)width * height > VLT_IMAGE_MAX_PIXELS)
        return vlt_error_set(VLT_ERR_ARG, "image: cannot allocate %dx%d", width, height);
    img->rgb = malloc((size_t)width * height * 3);
    if (!img->rgb) return vlt_error_set(VLT_ERR_NOMEM, "image: out of memory for %dx%d", width, height);
    img->width = width;
    img->height = height;
    return VLT_OK;
}

void vlt_image_free(vlt_image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

static vlt_status check_size(int w, int h, const char *what, const char *fmt) {
    if (w <= 0 || h <= 0)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: %s image has an empty size %dx%d", WHAT(what), fmt, w, h);
    if ((long long)w * h > VLT_IMAGE_MAX_PIXELS)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: %s image of %dx%d pixels is larger than the limit (%lld)",
                             WHAT(what), fmt, w, h, VLT_IMAGE_MAX_PIXELS);
    return VLT_OK;
}

// --- JPEG ------------------------------------------------------------------------------------------

// PIL's cmyk2rgb: v = (255 - K) - round((C * (255 - K)) / 255), in its integer form.
static inline uint8_t cmyk_channel(int c, int nk) {
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// CMYK JPEG samples are taken as inverted (Adobe's convention, which PIL always assumes).
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n, int inverted) {
    for (size_t i = 0; i < n; i++) {
        int c = cmyk[4 * i], m = cmyk[4 * i + 1], y = cmyk[4 * i + 2], k = cmyk[4 * i + 3];
        if (inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        int nk = 255 - k;
        rgb[3 * i] = cmyk_channel(c, nk);
        rgb[3 * i + 1] = cmyk_channel(m, nk);
        rgb[3 * i + 2] = cmyk_channel(y, nk);
    }
}

// The smallest DCT scaling factor that keeps both sides >= min_side, used only when the shorter
// side is at least 2 * min_side; 1/1 otherwise.
static tjscalingfactor jpeg_pick_scale(int w, int h, int min_side) {
    tjscalingfactor best = {1, 1};
    int shorter = w < h ? w : h;
    if (min_side <= 0 || shorter < 2 * min_side) return best;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    long long best_area = (long long)w * h;
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num >= sf[i].denom) continue;
        int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
        if (sw < min_side || sh < min_side) continue;
        if ((long long)sw * sh < best_area) { best = sf[i]; best_area = (long long)sw * sh; }
    }
    return best;
}

// libjpeg's API rather than TurboJPEG's for decoding: TurboJPEG reports only the first warning
// and folds all of them into one error code, so a harmless first warning (an unknown JFIF
// revision, a bad ICC marker) would hide a later "premature end of data segment". Here every
// warning is seen by its code as it is emitted and the decode stops at the first one that means
// the pixels are not all there. The decode settings equal tjDecompress2's (islow IDCT, fancy
// upsampling, DCT scaling by scale_num/scale_denom, at most 500 progressive scans).
typedef struct {
    struct jpeg_error_mgr pub;
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    int in_body;           // the header was read: damage from here on is truncation or corruption
    vlt_image_fault fault;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    if (e->fault == VLT_IMAGE_FAULT_NONE) e->fault = VLT_IMAGE_FAULT_BAD;
    longjmp(e->jb, 1);
}

static void jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }   // never print

// Warnings that leave every pixel intact: the rest (premature end, bad Huffman or arithmetic
// codes, lost restart markers, bogus progression, bytes between the entropy data and the next
// marker) mean missing or garbled data, and the sample is bad, as PIL's "image file is truncated".
static int jpeg_warning_harmless(int code) {
    return code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR || code == JWRN_BOGUS_ICC ||
           code == JWRN_TOO_MUCH_DATA;
}

static void jpeg_emit_message(j_common_ptr cinfo, int level) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level >= 0) return;   // trace messages
    cinfo->err->num_warnings++;
    int code = cinfo->err->msg_code;
    if (jpeg_warning_harmless(code)) return;
    (*cinfo->err->format_message)(cinfo, e->msg);
    int early_end = code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER;
    e->fault = early_end && !e->in_body ? VLT_IMAGE_FAULT_BAD   // not even a whole header: not a picture
               : early_end             ? VLT_IMAGE_FAULT_TRUNCATED
                                       : VLT_IMAGE_FAULT_CORRUPT;
    longjmp(e->jb, 1);
}

// As TJFLAG_LIMITSCANS: a progressive JPEG of thousands of tiny scans is a decompression bomb.
static void jpeg_progress_cb(j_common_ptr cinfo) {
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > 500) {
        jpeg_err *e = (jpeg_err *)cinfo->err;
        snprintf(e->msg, sizeof e->msg, "progressive JPEG with more than 500 scans");
        e->fault = VLT_IMAGE_FAULT_BAD;
        longjmp(e->jb, 1);
    }
}

// Everything that must survive a longjmp lives in *c, not in this frame.
typedef struct {
    struct jpeg_decompress_struct d;
    jpeg_err err;
    vlt_image *out;
    uint8_t *tmp;       // CMYK rows before conversion
    int header_only;
    int min_side;
    const char *what;
    int w, h;           // full size from the header
} jpeg_ctx;

static int jpeg_decode_body(jpeg_ctx *c, const uint8_t *buf, size_t len) {
    if (setjmp(c->err.jb)) return 1;
    jpeg_create_decompress(&c->d);
    c->d.progress = &c->err.progress;
    jpeg_mem_src(&c->d, buf, (unsigned long)len);
    jpeg_read_header(&c->d, TRUE);
    c->err.in_body = 1;
    c->w = (int)c->d.image_width;
    c->h = (int)c->d.image_height;
    if (c->header_only) return 0;
    if (check_size(c->w, c->h, c->what, "JPEG") != VLT_OK) {
        snprintf(c->err.msg, sizeof c->err.msg, "%s", vlt_error_message());
        c->err.fault = VLT_IMAGE_FAULT_BAD;
        return 1;
    }
    int cmyk = c->d.jpeg_color_space == JCS_CMYK || c->d.jpeg_color_space == JCS_YCCK;
    c->d.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGB;
    tjscalingfactor sf = jpeg_pick_scale(c->w, c->h, c->min_side);
    c->d.scale_num = (unsigned)sf.num;
    c->d.scale_denom = (unsigned)sf.denom;
    jpeg_calc_output_dimensions(&c->d);
    int sw = (int)c->d.output_width, sh = (int)c->d.output_height;
    if (vlt_image_alloc(c->out, sw, sh) != VLT_OK) {
        snprintf(c->err.msg, sizeof c->err.msg, "out of memory for %dx%d", sw, sh);
        return 1;
    }
    if (cmyk && !(c->tmp = malloc((size_t)sw * 4))) {
        snprintf(c->err.msg, sizeof c->err.msg, "out of memory decoding a CMYK JPEG");
        return 1;
    }
    jpeg_start_decompress(&c->d);
    while (c->d.output_scanline < c->d.output_height) {
        uint8_t *row = c->out->rgb + (size_t)c->d.output_scanline * sw * 3;
        JSAMPROW rp = cmyk ? c->tmp : row;
        if (jpeg_read_scanlines(&c->d, &rp, 1) != 1) {   // a suspending source cannot happen with memory input
            snprintf(c->err.msg, sizeof c->err.msg, "decoder stopped at row %u", c->d.output_scanline);
            c->err.fault = VLT_IMAGE_FAULT_TRUNCATED;
            return 1;
        }
        if (cmyk) cmyk_to_rgb(c->tmp, row, (size_t)sw, 1);
    }
    jpeg_finish_decompress(&c->d);
    return 0;
}

static vlt_status jpeg_run(const uint8_t *buf, size_t len, int min_side, const char *what, int header_only,
                           vlt_image *out, int *w, int *h, vlt_image_fault *fault) {
    jpeg_ctx c;
    memset(&c, 0, sizeof c);
    c.d.err = jpeg_std_error(&c.err.pub);
    c.err.pub.error_exit = jpeg_error_exit;
    c.err.pub.emit_message = jpeg_emit_message;
    c.err.pub.output_message = jpeg_output_message;
    c.err.progress.progress_monitor = jpeg_progress_cb;
    c.out = out;
    c.header_only = header_only;
    c.min_side = min_side;
    c.what = what;
    int failed = jpeg_decode_body(&c, buf, len);
    jpeg_destroy_decompress(&c.d);
    free(c.tmp);
    if (w) *w = c.w;
    if (h) *h = c.h;
    if (!failed) return VLT_OK;
    if (out) vlt_image_free(out);
    vlt_image_fault f = c.err.fault == VLT_IMAGE_FAULT_NONE ? VLT_IMAGE_FAULT_BAD : c.err.fault;
    if (fault) *fault = f;
    const char *kind = f == VLT_IMAGE_FAULT_TRUNCATED ? "truncated JPEG"
                       : f == VLT_IMAGE_FAULT_CORRUPT ? "corrupt JPEG"
                                                      : "bad JPEG";
    return vlt_error_set(VLT_ERR_FORMAT, "%s: %s: %s", WHAT(what), kind, c.err.msg);
}

static vlt_status decode_jpeg(const uint8_t *buf, size_t len, int min_side, const char *what, vlt_image *out,
                              vlt_image_fault *fault) {
    return jpeg_run(buf, len, min_side, what, 0, out, NULL, NULL, fault);
}

// --- PNG -------------------------------------------------------------------------------------------

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    char msg[200];        // libpng's error message, set before it longjmps
    char warn[200];       // the first warning that means missing or garbled data
    vlt_image *out;       // filled by png_decode_body
    png_bytep *rows;
} png_ctx;

static void png_read_cb(png_structp png, png_bytep data, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "truncated PNG data");
    memcpy(data, c->buf + c->pos, n);
    c->pos += n;
}

static void png_error_cb(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

// libpng demotes some data errors to warnings ("Too much image data", "Extra compressed data",
// a CRC error in an ancillary chunk, which PIL refuses too): those make the sample bad. Other
// warnings (an sRGB profile libpng does not like, a bad gAMA value) leave the pixels intact.
static int png_warning_is_data(const char *msg) {
    static const char *const data_words[] = {"idat", "image data", "compressed data", "crc", "truncat",
                                             "damaged", "zlib", "decompress"};
    char low[200];
    size_t n = 0;
    for (; msg[n] && n + 1 < sizeof low; n++) low[n] = (char)((msg[n] >= 'A' && msg[n] <= 'Z') ? msg[n] + 32 : msg[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof data_words / sizeof *data_words; i++)
        if (strstr(low, data_words[i])) return 1;
    return 0;
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    if (msg && !c->warn[0] && png_warning_is_data(msg)) snprintf(c->warn, sizeof c->warn, "%s", msg);
}

// Everything between setjmp and the end lives in *c (not in this frame), so a longjmp back here
// leaves nothing indeterminate. Returns 0 on success, 1 on a libpng error (message in c->msg).
static int png_decode_body(png_structp png, png_infop info, png_ctx *c) {
    if (setjmp(png_jmpbuf(png))) return 1;
    png_set_read_fn(png, c, png_read_cb);
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if ((long long)w * h > VLT_IMAGE_MAX_PIXELS) png_error(png, "image larger than the pixel limit");
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((type & PNG_COLOR_MASK_COLOR) == 0 && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);                       // also drops tRNS expanded from a palette
    if ((type & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3)
        png_error(png, "unexpected PNG layout after conversion");
    if (vlt_image_alloc(c->out, (int)w, (int)h) != VLT_OK) png_error(png, "out of memory");
    c->rows = malloc(sizeof(png_bytep) * h);
    if (!c->rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) c->rows[y] = c->out->rgb + (size_t)y * w * 3;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    return c->warn[0] ? 2 : 0;
}

static vlt_status decode_png(const uint8_t *buf, size_t len, const char *what, vlt_image *out,
                             vlt_image_fault *fault) {
    png_ctx c = {.buf = buf, .len = len, .pos = 0, .msg = "", .warn = "", .out = out, .rows = NULL};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return vlt_error_set(VLT_ERR_NOMEM, "%s: cannot start the PNG decoder", WHAT(what));
    }
    int failed = png_decode_body(png, info, &c);
    png_destroy_read_struct(&png, &info, NULL);
    free(c.rows);
    if (failed) {
        vlt_image_free(out);
        // Our read callback's "truncated PNG data", and libpng's "Not enough image data" when the
        // IDAT chunks end early, are truncation; the rest is a bad header or garbled data.
        int trunc = failed == 1 && (strstr(c.msg, "truncated") || strstr(c.msg, "Not enough image data"));
        int corrupt = failed == 2 || (c.pos > 33 && !trunc);   // past the signature and IHDR
        *fault = trunc ? VLT_IMAGE_FAULT_TRUNCATED : corrupt ? VLT_IMAGE_FAULT_CORRUPT : VLT_IMAGE_FAULT_BAD;
        return vlt_error_set(VLT_ERR_FORMAT, "%s: %s PNG: %s", WHAT(what),
                             trunc ? "truncated" : corrupt ? "corrupt" : "bad", failed == 2 ? c.warn : c.msg);
    }
    return VLT_OK;
}

// --- WebP ------------------------------------------------------------------------------------------

static const char *webp_status_name(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated data";
    }
    return "unknown error";
}

static vlt_status decode_webp(const uint8_t *buf, size_t len, const char *what, vlt_image *out,
                              vlt_image_fault *fault) {
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) return vlt_error_set(VLT_ERR_STATE, "%s: libwebp version mismatch", WHAT(what));
    VP8StatusCode s = WebPGetFeatures(buf, len, &cfg.input);
    if (s != VP8_STATUS_OK) {
        if (s == VP8_STATUS_NOT_ENOUGH_DATA) *fault = VLT_IMAGE_FAULT_TRUNCATED;
        return vlt_error_set(VLT_ERR_FORMAT, "%s: bad WebP header: %s", WHAT(what), webp_status_name(s));
    }
    if (cfg.input.has_animation)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: animated WebP is not supported", WHAT(what));
    VLT_TRY(check_size(cfg.input.width, cfg.input.height, what, "WebP"));
    VLT_TRY(vlt_image_alloc(out, cfg.input.width, cfg.input.height));
    cfg.output.colorspace = MODE_RGB;               // alpha, if any, is dropped (as PIL's convert)
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = out->rgb;
    cfg.output.u.RGBA.stride = out->width * 3;
    cfg.output.u.RGBA.size = (size_t)out->width * out->height * 3;
    s = WebPDecode(buf, len, &cfg);
    WebPFreeDecBuffer(&cfg.output);
    if (s != VP8_STATUS_OK) {
        vlt_image_free(out);
        int trunc = s == VP8_STATUS_NOT_ENOUGH_DATA;
        *fault = trunc ? VLT_IMAGE_FAULT_TRUNCATED : VLT_IMAGE_FAULT_CORRUPT;
        return vlt_error_set(VLT_ERR_FORMAT, "%s: %s WebP: %s", WHAT(what), trunc ? "truncated" : "corrupt",
                             webp_status_name(s));
    }
    return VLT_OK;
}

// --- public ----------------------------------------------------------------------------------------

vlt_status vlt_image_decode_fault(const uint8_t *buf, size_t len, int min_side, const char *what, vlt_image *out,
                                  vlt_image_fault *fault) {
    vlt_image_fault dummy;
    if (!fault) fault = &dummy;
    *fault = VLT_IMAGE_FAULT_BAD;
    if (!out) return vlt_error_set(VLT_ERR_ARG, "vlt_image_decode: out is NULL");
    out->width = out->height = 0;
    out->rgb = NULL;
    if (!buf || len == 0) return vlt_error_set(VLT_ERR_FORMAT, "%s: empty image data", WHAT(what));
    vlt_status st;
    switch (vlt_image_sniff(buf, len)) {
    case VLT_IMAGE_JPEG: st = decode_jpeg(buf, len, min_side, what, out, fault); break;
    case VLT_IMAGE_PNG: st = decode_png(buf, len, what, out, fault); break;
    case VLT_IMAGE_WEBP: st = decode_webp(buf, len, what, out, fault); break;
    default:
        return vlt_error_set(VLT_ERR_FORMAT, "%s: not a JPEG, PNG or WebP image (%zu bytes, starts %02x %02x %02x %02x)",
                             WHAT(what), len, buf[0], len > 1 ? buf[1] : 0, len > 2 ? buf[2] : 0,
                             len > 3 ? buf[3] : 0);
    }
    if (st == VLT_OK) *fault = VLT_IMAGE_FAULT_NONE;
    return st;
}

vlt_status vlt_image_decode(const uint8_t *buf, size_t len, int min_side, const char *what, vlt_image *out) {
    return vlt_image_decode_fault(buf, len, min_side, what, out, NULL);
}

const char *vlt_image_fault_name(vlt_image_fault f) {
    switch (f) {
    case VLT_IMAGE_FAULT_NONE: return "ok";
    case VLT_IMAGE_FAULT_BAD: return "bad image";
    case VLT_IMAGE_FAULT_TRUNCATED: return "truncated image";
    case VLT_IMAGE_FAULT_CORRUPT: return "corrupt image";
    }
    return "?";
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

vlt_status vlt_image_probe(const uint8_t *buf, size_t len, const char *what,
                           int *width, int *height, vlt_image_format *format) {
    vlt_image_format f = vlt_image_sniff(buf, len);
    if (format) *format = f;
    int w = 0, h = 0;
    if (f == VLT_IMAGE_JPEG) {
        VLT_TRY(jpeg_run(buf, len, 0, what, 1, NULL, &w, &h, NULL));
        VLT_TRY(check_size(w, h, what, "JPEG"));
    } else if (f == VLT_IMAGE_PNG) {
        if (len < 24 || memcmp(buf + 12, "IHDR", 4))
            return vlt_error_set(VLT_ERR_FORMAT, "%s: bad PNG header", WHAT(what));
        uint32_t uw = be32(buf + 16), uh = be32(buf + 20);
        if (uw > 0x7fffffffu || uh > 0x7fffffffu)
            return vlt_error_set(VLT_ERR_FORMAT, "%s: bad PNG size", WHAT(what));
        w = (int)uw;
        h = (int)uh;
        VLT_TRY(check_size(w, h, what, "PNG"));
    } else if (f == VLT_IMAGE_WEBP) {
        if (!WebPGetInfo(buf, len, &w, &h)) return vlt_error_set(VLT_ERR_FORMAT, "%s: bad WebP header", WHAT(what));
    } else {
        return vlt_error_set(VLT_ERR_FORMAT, "%s: not a JPEG, PNG or WebP image", WHAT(what));
    }
    if (width) *width = w;
    if (height) *height = h;
    return VLT_OK;
}

vlt_status vlt_image_encode_jpeg(const vlt_image *img, int quality, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0 || quality < 1 || quality > 100)
        return vlt_error_set(VLT_ERR_ARG, "vlt_image_encode_jpeg: bad image or quality %d", quality);
    unsigned long cap = tjBufSize(img->width, img->height, TJSAMP_420);
    uint8_t *buf = malloc(cap);
    if (!buf) return vlt_error_set(VLT_ERR_NOMEM, "vlt_image_encode_jpeg: out of memory (%lu bytes)", cap);
    tjhandle tj = tjInitCompress();
    if (!tj) { free(buf); return vlt_error_set(VLT_ERR_NOMEM, "vlt_image_encode_jpeg: cannot start the encoder"); }
    unsigned long size = cap;
    unsigned char *p = buf;
    int rc = tjCompress2(tj, img->rgb, img->width, 0, img->height, TJPF_RGB, &p, &size, TJSAMP_420, quality,
                         TJFLAG_NOREALLOC);
    if (rc != 0) {
        vlt_status st = vlt_error_set(VLT_ERR_FORMAT, "vlt_image_encode_jpeg: %s", tjGetErrorStr2(tj));
        tjDestroy(tj);
        free(buf);
        return st;
    }
    tjDestroy(tj);
    uint8_t *shrunk = realloc(buf, size);
    *out = shrunk ? shrunk : buf;
    *out_len = size;
    return VLT_OK;
}
