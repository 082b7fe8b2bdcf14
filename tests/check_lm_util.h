/*
 * check_lm_util.h - shared helpers of the LM / session tests: golden data
 * paths, golden.txt parsing, file reading, error measures.
 */
#ifndef CHECK_LM_UTIL_H
#define CHECK_LM_UTIL_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llava.h"

#ifndef LLAVA_TEST_DATA
#define LLAVA_TEST_DATA "../shared/data"
#endif

static inline const char *tu_data_dir(void)
{
    const char *d = getenv("LLAVA_TEST_DATA");
    return d && *d ? d : LLAVA_TEST_DATA;
}

/* Path of a file under golden/tiny-dev (static buffer, one at a time). */
static inline const char *tu_golden(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/golden/tiny-dev/%s", tu_data_dir(), name);
    return path;
}

static inline void *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && size)
        *size = (size_t)n;
    return buf;
}

/* Read the comma-separated ids of `key` from golden.txt; returns the count
 * (0 if absent). */
static inline int tu_golden_ids(const char *key, int32_t *out, int cap)
{
    size_t size;
    char *text = tu_read_file(tu_golden("golden.txt"), &size);
    if (!text)
        return 0;
    text = realloc(text, size + 1);
    text[size] = '\0';
    int n = 0;
    size_t klen = strlen(key);
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *p = line + klen + 1;
            while (*p && n < cap) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p)
                    break;
                out[n++] = (int32_t)v;
                p = end;
                while (*p == ',' || *p == ' ')
                    p++;
            }
            break;
        }
        line = next;
    }
    free(text);
    return n;
}

/* max|a - ref| / max|ref| */
static inline double tu_rel_err(const float *a, const float *ref, size_t n)
{
    double md = 0.0, mr = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= md))
            md = d; /* also catches NaN */
        if (fabs(ref[i]) > mr)
            mr = fabs(ref[i]);
    }
    return mr > 0 ? md / mr : md;
}

/* Argmax, ties to the lowest id (independent of the library's sampler). */
static inline int32_t tu_argmax(const float *x, int32_t n)
{
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

static inline llava_params *tu_params(int n_threads, int kv_type, int n_batch, int n_ctx)
{
    llava_params *p = llava_new_params();
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_N_THREADS, n_threads), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_KV_TYPE, kv_type), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_N_BATCH, n_batch), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_N_CTX, n_ctx), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_float(p, LLAVA_PARAM_TEMPERATURE, 0.0), LLAVA_OK);
    return p;
}

static inline llava_lm *tu_load_lm(void)
{
    char err[LLAVA_ERRBUF_SIZE] = "";
    llava_lm *lm = NULL;
    int rc = llava_load_lm(tu_golden("model-lm.gguf"), NULL, &lm, err, sizeof err);
    ck_assert_msg(rc == LLAVA_OK, "load: %d %s", rc, err);
    return lm;
}

static inline llava_session *tu_session(const llava_lm *lm, const llava_params *p)
{
    char err[LLAVA_ERRBUF_SIZE] = "";
    llava_session *s = NULL;
    int rc = llava_new_session(lm, p, &s, err, sizeof err);
    ck_assert_msg(rc == LLAVA_OK, "new_session: %d %s", rc, err);
    return s;
}

/* Greedy continuation: n tokens by argmax of the current logits, each
 * evaluated in turn (the last one is evaluated too). */
static inline void tu_greedy(llava_session *s, int n, int32_t *out)
{
    for (int i = 0; i < n; i++) {
        int32_t nv;
        const float *lg = llava_get_logits(s, &nv);
        ck_assert_ptr_nonnull(lg);
        out[i] = tu_argmax(lg, nv);
        int rc = llava_eval_tokens(s, &out[i], 1);
        ck_assert_msg(rc == LLAVA_OK, "eval: %d %s", rc, llava_errmsg(s));
    }
}

static inline int tu_have_golden(void)
{
    FILE *f = fopen(tu_golden("model-lm.gguf"), "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

#endif /* CHECK_LM_UTIL_H */
