/*
 * fuzz.h - shared helpers of the libFuzzer harnesses in tests/fuzz/.
 *
 * Each harness defines LLVMFuzzerTestOneInput(). It is built two ways:
 *  - `make fuzz` (tests/fuzz/build.sh): clang -fsanitize=fuzzer,address,undefined,
 *    the library sources compiled straight in;
 *  - `make check` (tests/fuzz/replay.c): with the normal compiler, linked with
 *    the library core, replaying the committed seeds and every past finding
 *    in tests/fuzz/regressions/<harness>/.
 * A harness states its properties with FUZZ_CHECK (abort: libFuzzer records
 * the input as a crash; the replay test fails).
 */
#ifndef LLV_FUZZ_H
#define LLV_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Set by a harness when the library rejected the input with a clean error
 * (defined by each harness with FUZZ_DEFINE_REJECTED). The replay driver
 * requires it for regression files named "reject-*". */
extern int fuzz_rejected;
#define FUZZ_DEFINE_REJECTED int fuzz_rejected;

#define FUZZ_CHECK(c) do { \
        if (!(c)) { \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            abort(); \
        } \
    } while (0)

#ifndef FUZZ_DATA_DIR
#define FUZZ_DATA_DIR "tests/fuzz/data"
#endif

/* Read a whole file (NULL if missing). The caller frees with free(). */
static inline void *fuzz_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *size = n;
    return buf;
}

/* A file of the harness data directory ($LLAVA_FUZZ_DATA or the built-in
 * FUZZ_DATA_DIR): the tiny models the harnesses need besides their input. */
static inline void *fuzz_read_data(const char *name, size_t *size)
{
    const char *dir = getenv("LLAVA_FUZZ_DATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : FUZZ_DATA_DIR, name);
    return fuzz_read_file(path, size);
}

/* Read the next little-endian integer of n bytes from the input (0 past its end). */
static inline uint64_t fuzz_take(const uint8_t **p, size_t *left, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = 0;
        if (*left) { b = **p; (*p)++; (*left)--; }
        v |= (uint64_t)b << (8 * i);
    }
    return v;
}

#endif /* LLV_FUZZ_H */
