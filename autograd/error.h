// error.h — the error value every vlt function returns, and its message.
//
// Bad input from users is never a crash: a function that can fail returns a vlt_status and
// leaves a message (naming the op, file, key or sample) in a thread-local buffer that the caller
// reads with vlt_error_message(). Programming errors inside the library may abort via VLT_ASSERT.
#ifndef VLT_ERROR_H
#define VLT_ERROR_H

#include <stdio.h>
#include <stdlib.h>

typedef enum {
    VLT_OK = 0,
    VLT_ERR_ARG,          // a bad argument (value out of range, NULL where one is needed)
    VLT_ERR_SHAPE,        // shapes that do not fit the op
    VLT_ERR_DTYPE,        // a dtype the op does not take
    VLT_ERR_DEVICE,       // tensors on different devices, or a backend that lacks the op
    VLT_ERR_IO,           // a file that cannot be opened, read or written
    VLT_ERR_FORMAT,       // a file whose contents are malformed (corrupt image, bad JSON, …)
    VLT_ERR_NOMEM,        // an allocation or arena that ran out
    VLT_ERR_UNSUPPORTED,  // a feature that is not built in (no CUDA, no MPI)
    VLT_ERR_STATE,        // use at the wrong moment (a stale activation, a closed loader)
} vlt_status;

// Records a message for the calling thread and returns `code`, so call sites read
//   return vlt_error_set(VLT_ERR_SHAPE, "matmul: a is %dx%d, b is %dx%d", ...);
vlt_status vlt_error_set(vlt_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
// The calling thread's last message ("" when none).
const char *vlt_error_message(void);
// The calling thread's last status code (VLT_OK after vlt_error_clear).
vlt_status vlt_error_code(void);
void vlt_error_clear(void);
const char *vlt_status_name(vlt_status code);

// Propagates a non-OK status from a call: VLT_TRY(vlt_tensor_check(...));
#define VLT_TRY(expr)                       \
    do {                                    \
        vlt_status vlt_try_s_ = (expr);     \
        if (vlt_try_s_ != VLT_OK) return vlt_try_s_; \
    } while (0)

// For impossible states inside the library: prints where and why, then aborts.
#define VLT_ASSERT(cond, ...)                                                   \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "vlt: internal error at %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            abort();                                                            \
        }                                                                       \
    } while (0)

#endif
