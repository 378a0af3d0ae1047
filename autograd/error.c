// error.c — thread-local error messages (see error.h).
#include "autograd/error.h"

#include <stdarg.h>

static _Thread_local char tl_message[1024];
static _Thread_local vlt_status tl_code;

vlt_status vlt_error_set(vlt_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_message, sizeof tl_message, fmt, ap);
    va_end(ap);
    tl_code = code;
    return code;
}

const char *vlt_error_message(void) { return tl_message; }
vlt_status vlt_error_code(void) { return tl_code; }

void vlt_error_clear(void) {
    tl_message[0] = '\0';
    tl_code = VLT_OK;
}

const char *vlt_status_name(vlt_status code) {
    switch (code) {
    case VLT_OK: return "ok";
    case VLT_ERR_ARG: return "bad argument";
    case VLT_ERR_SHAPE: return "shape mismatch";
    case VLT_ERR_DTYPE: return "dtype mismatch";
    case VLT_ERR_DEVICE: return "device error";
    case VLT_ERR_IO: return "I/O error";
    case VLT_ERR_FORMAT: return "malformed input";
    case VLT_ERR_NOMEM: return "out of memory";
    case VLT_ERR_UNSUPPORTED: return "unsupported";
    case VLT_ERR_STATE: return "invalid state";
    }
    return "unknown error";
}
