/*
 * common.h - internal helpers shared by every libllava source file:
 * visibility, error records, allocation wrappers and checked arithmetic.
 * Internal cross-file names start with llv_ so the export list (llava_*)
 * can never match them.
 */
#ifndef LLV_COMMON_H
#define LLV_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llava.h"

#if defined(__GNUC__)
#  define LLV_INTERNAL __attribute__((visibility("hidden")))
#  define LLV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define LLV_INTERNAL
#  define LLV_PRINTF(f, a)
#endif

#define LLV_ERRMSG_SIZE LLAVA_ERRBUF_SIZE

/* An error record: a status and its detailed message. Modules below the API
 * take an `llv_err *` (which may be NULL) and fill it on failure. */
typedef struct llv_err {
    int  code;
    char msg[LLV_ERRMSG_SIZE];
} llv_err;

/* Record code + formatted message in e (if non-NULL); returns code, so error
 * paths read `return llv_fail(err, LLAVA_E_FORMAT, "tensor %s: ...", n);`. */
LLV_INTERNAL int llv_fail(llv_err *e, int code, const char *fmt, ...) LLV_PRINTF(3, 4);
LLV_INTERNAL int llv_vfail(llv_err *e, int code, const char *fmt, va_list ap);
/* Prefix an existing message: "what: old message". Returns e->code. */
LLV_INTERNAL int llv_err_prefix(llv_err *e, const char *fmt, ...) LLV_PRINTF(2, 3);
LLV_INTERNAL void llv_err_clear(llv_err *e);
/* Copy e's message into a caller errbuf (NUL-terminated, truncated). */
LLV_INTERNAL void llv_err_to_buf(const llv_err *e, char *buf, size_t size);

/* Allocation goes through these so a test build can inject failures. */
LLV_INTERNAL void *llv_malloc(size_t n);
LLV_INTERNAL void *llv_calloc(size_t count, size_t size);
LLV_INTERNAL void *llv_realloc(void *p, size_t n);
LLV_INTERNAL void  llv_free(void *p);
LLV_INTERNAL char *llv_strdup(const char *s);
/* Aligned (64-byte) allocation for hot buffers; free with llv_free_aligned. */
LLV_INTERNAL void *llv_malloc_aligned(size_t n);
LLV_INTERNAL void  llv_free_aligned(void *p);

/* Checked arithmetic: return true on overflow (then *r is unspecified). */
/* double -> float without undefined behaviour: C leaves the conversion of a
 * finite value outside float's range undefined (hostile weights reach it in
 * double-accumulated dots); such values become +-inf, NaN stays NaN. */
static inline float llv_narrow_f64(double v)
{
    if (v > 3.4028234663852886e38)
        return __builtin_inff();
    if (v < -3.4028234663852886e38)
        return -__builtin_inff();
    return (float)v;
}

static inline bool llv_mul_overflow(size_t a, size_t b, size_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline bool llv_add_overflow(size_t a, size_t b, size_t *r) { return __builtin_add_overflow(a, b, r); }
/* a*b*c, all size_t. */
static inline bool llv_mul3_overflow(size_t a, size_t b, size_t c, size_t *r) {
    size_t t;
    return __builtin_mul_overflow(a, b, &t) || __builtin_mul_overflow(t, c, r);
}

/* Thread count from a params value: 0 means all cores. */
LLV_INTERNAL int llv_resolve_threads(int64_t n);

#define LLV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LLV_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* LLV_COMMON_H */
