/*
 * params.c - the options object: one table row per key with its type,
 * bounds and default (zstd's setParameter/getBounds pattern).
 */
#include "params.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct param_row {
    int    key;
    int    type;  /* LLAVA_PARAM_TYPE_* */
    double min, max, def;
} param_row;

#define I LLAVA_PARAM_TYPE_INT
#define F LLAVA_PARAM_TYPE_FLOAT
/* Keep in step with enum llava_param in llava.h; the order here is the index
 * into llava_params.values and may change freely (it is not ABI). */
static const param_row param_table[LLV_N_PARAMS] = {
    { LLAVA_PARAM_N_THREADS,         I, 0, 1024, 0 },
    { LLAVA_PARAM_USE_MMAP,          I, 0, 1, 1 },
    { LLAVA_PARAM_N_CTX,             I, 0, 1 << 20, 0 },
    { LLAVA_PARAM_KV_TYPE,           I, 0, 1, 1 },
    { LLAVA_PARAM_N_BATCH,           I, 1, 1 << 16, 512 },
    { LLAVA_PARAM_SEED,              I, -1, 9007199254740991.0 /* 2^53-1 */, -1 },
    { LLAVA_PARAM_TEMPERATURE,       F, -1e9, 1e9, 0.8 },
    { LLAVA_PARAM_TOP_K,             I, -1, 1 << 30, 40 },
    { LLAVA_PARAM_TOP_P,             F, 0, 1, 0.95 },
    { LLAVA_PARAM_MIN_P,             F, 0, 1, 0.05 },
    { LLAVA_PARAM_REPEAT_PENALTY,    F, 0, 1e9, 1.0 },
    { LLAVA_PARAM_REPEAT_LAST_N,     I, 0, 1 << 20, 64 },
    { LLAVA_PARAM_FREQUENCY_PENALTY, F, -1e9, 1e9, 0.0 },
    { LLAVA_PARAM_PRESENCE_PENALTY,  F, -1e9, 1e9, 0.0 },
    { LLAVA_PARAM_IMAGE_MAX_PIXELS,  I, 1, 4294967296.0 /* 2^32 */, 67108864 /* 2^26 */ },
    { LLAVA_PARAM_IMAGE_EXIF_ORIENT, I, 0, 1, 0 },
    { LLAVA_PARAM_CHAT_TEMPLATE,     I, 0, 3, 0 },
    { LLAVA_PARAM_MAX_TOKENS,        I, 0, 1 << 30, 0 },
};
#undef I
#undef F

static int param_index(int key)
{
    for (int i = 0; i < LLV_N_PARAMS; i++)
        if (param_table[i].key == key)
            return i;
    return -1;
}

static void params_defaults(llava_params *p)
{
    for (int i = 0; i < LLV_N_PARAMS; i++) {
        p->values[i] = param_table[i].def;
        p->ivalues[i] = (int64_t)param_table[i].def;
    }
}

LLAVA_API llava_params *llava_new_params(void)
{
    llava_params *p = llv_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    llv_handle_init(&p->hdr, LLV_MAGIC_PARAMS);
    params_defaults(p);
    return p;
}

LLAVA_API void llava_free_params(llava_params *p)
{
    if (!llv_handle_is(p, LLV_MAGIC_PARAMS))
        return;
    llv_handle_kill(&p->hdr);
    llv_free(p);
}

LLAVA_API llava_params *llava_dup_params(const llava_params *p)
{
    if (!llv_handle_is(p, LLV_MAGIC_PARAMS))
        return NULL;
    llava_params *d = llv_malloc(sizeof *d);
    if (d) {
        memcpy(d, p, sizeof *d);
        llv_err_clear(&d->hdr.err);
    }
    return d;
}

/* Common checks of the setters: handle, key, type. Returns the row index or
 * a negative status. */
static int setter_row(llava_params *p, int key, int type, int *status)
{
    if (!llv_handle_is(p, LLV_MAGIC_PARAMS)) {
        *status = LLAVA_E_INVALID_ARG;
        return -1;
    }
    int i = param_index(key);
    if (i < 0) {
        *status = llv_fail(&p->hdr.err, LLAVA_E_UNSUPPORTED, "unknown parameter key %d", key);
        return -1;
    }
    if (param_table[i].type != type) {
        *status = llv_fail(&p->hdr.err, LLAVA_E_INVALID_ARG, "parameter %d is %s, not %s", key,
                           param_table[i].type == LLAVA_PARAM_TYPE_INT ? "an int" : "a float",
                           type == LLAVA_PARAM_TYPE_INT ? "an int" : "a float");
        return -1;
    }
    return i;
}

LLAVA_API int llava_set_param_int(llava_params *p, int key, int64_t value)
{
    int status, i = setter_row(p, key, LLAVA_PARAM_TYPE_INT, &status);
    if (i < 0)
        return status;
    if ((double)value < param_table[i].min || (double)value > param_table[i].max)
        return llv_fail(&p->hdr.err, LLAVA_E_INVALID_ARG, "parameter %d: %lld is outside [%.17g, %.17g]",
                        key, (long long)value, param_table[i].min, param_table[i].max);
    p->ivalues[i] = value;
    p->values[i] = (double)value;
    llv_err_clear(&p->hdr.err);
    return LLAVA_OK;
}

LLAVA_API int llava_set_param_float(llava_params *p, int key, double value)
{
    int status, i = setter_row(p, key, LLAVA_PARAM_TYPE_FLOAT, &status);
    if (i < 0)
        return status;
    if (isnan(value) || value < param_table[i].min || value > param_table[i].max)
        return llv_fail(&p->hdr.err, LLAVA_E_INVALID_ARG, "parameter %d: %g is outside [%g, %g]",
                        key, value, param_table[i].min, param_table[i].max);
    p->values[i] = value;
    p->ivalues[i] = (int64_t)value;
    llv_err_clear(&p->hdr.err);
    return LLAVA_OK;
}

LLAVA_API int llava_get_param_int(const llava_params *p, int key, int64_t *value)
{
    if (!llv_handle_is(p, LLV_MAGIC_PARAMS) || !value)
        return LLAVA_E_INVALID_ARG;
    int i = param_index(key);
    if (i < 0)
        return LLAVA_E_UNSUPPORTED;
    *value = p->ivalues[i];
    return LLAVA_OK;
}

LLAVA_API int llava_get_param_float(const llava_params *p, int key, double *value)
{
    if (!llv_handle_is(p, LLV_MAGIC_PARAMS) || !value)
        return LLAVA_E_INVALID_ARG;
    int i = param_index(key);
    if (i < 0)
        return LLAVA_E_UNSUPPORTED;
    *value = p->values[i];
    return LLAVA_OK;
}

LLAVA_API int llava_get_param_info(int key, int *type, double *min_value, double *max_value,
                                   double *default_value)
{
    int i = param_index(key);
    if (i < 0)
        return LLAVA_E_UNSUPPORTED;
    if (type)
        *type = param_table[i].type;
    if (min_value)
        *min_value = param_table[i].min;
    if (max_value)
        *max_value = param_table[i].max;
    if (default_value)
        *default_value = param_table[i].def;
    return LLAVA_OK;
}

static int set_callback_check(llava_params *p)
{
    if (!llv_handle_is(p, LLV_MAGIC_PARAMS))
        return LLAVA_E_INVALID_ARG;
    llv_err_clear(&p->hdr.err);
    return LLAVA_OK;
}

LLAVA_API int llava_set_progress_callback(llava_params *p, llava_progress_fn fn, void *ud)
{
    int rc = set_callback_check(p);
    if (rc == LLAVA_OK) {
        p->progress = fn;
        p->progress_ud = ud;
    }
    return rc;
}

LLAVA_API int llava_set_abort_callback(llava_params *p, llava_abort_fn fn, void *ud)
{
    int rc = set_callback_check(p);
    if (rc == LLAVA_OK) {
        p->abort = fn;
        p->abort_ud = ud;
    }
    return rc;
}

LLAVA_API int llava_set_log_callback(llava_params *p, llava_log_fn fn, void *ud)
{
    int rc = set_callback_check(p);
    if (rc == LLAVA_OK) {
        p->log = fn;
        p->log_ud = ud;
    }
    return rc;
}

/* ---- internal readers ---- */

int64_t llv_param_int(const llava_params *p, int key)
{
    int i = param_index(key);
    if (i < 0)
        return 0;
    if (!llv_handle_is(p, LLV_MAGIC_PARAMS))
        return (int64_t)param_table[i].def;
    return p->ivalues[i];
}

double llv_param_float(const llava_params *p, int key)
{
    int i = param_index(key);
    if (i < 0)
        return 0;
    if (!llv_handle_is(p, LLV_MAGIC_PARAMS))
        return param_table[i].def;
    return p->values[i];
}

llv_callbacks llv_param_callbacks(const llava_params *p)
{
    llv_callbacks cb = { 0 };
    if (llv_handle_is(p, LLV_MAGIC_PARAMS)) {
        cb.progress = p->progress;
        cb.progress_ud = p->progress_ud;
        cb.abort = p->abort;
        cb.abort_ud = p->abort_ud;
        cb.log = p->log;
        cb.log_ud = p->log_ud;
    }
    return cb;
}

void llv_log(const llv_callbacks *cb, int level, const char *fmt, ...)
{
    if (!cb || !cb->log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cb->log(level, msg, cb->log_ud);
}
