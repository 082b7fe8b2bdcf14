/*
 * gguf_get.c - lookups and typed getters on an opened GGUF file.
 *
 * Getters never abort (RC's gguf_get_val_* do): a missing key or a value of
 * an unacceptable type returns LLAVA_E_FORMAT with a message naming the key.
 * Index-based accessors take an index from llv_gguf_find_key and return a
 * neutral value (0, NULL string) for an out-of-range index.
 */
#include "gguf_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- file-level ---- */

uint32_t llv_gguf_version(const llv_gguf *g) { return g->version; }
size_t llv_gguf_alignment(const llv_gguf *g) { return g->alignment; }
size_t llv_gguf_data_offset(const llv_gguf *g) { return g->data_offset; }
size_t llv_gguf_file_size(const llv_gguf *g) { return g->size; }
int64_t llv_gguf_n_kv(const llv_gguf *g) { return g->n_kv; }
int64_t llv_gguf_n_tensors(const llv_gguf *g) { return g->n_tensors; }

/* ---- keys ---- */

int64_t llv_gguf_find_key(const llv_gguf *g, const char *key)
{
    if (!g || !key)
        return -1;
    return llv_gguf_name_find(g->kv_sorted, g->n_kv, key, strlen(key));
}

static const llv_gguf_kv *kv_at(const llv_gguf *g, int64_t i)
{
    return (g && i >= 0 && i < g->n_kv) ? &g->kv[i] : NULL;
}

llv_str llv_gguf_key(const llv_gguf *g, int64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, i);
    return kv ? (llv_str){ kv->key, kv->key_len } : (llv_str){ NULL, 0 };
}

int llv_gguf_kv_type(const llv_gguf *g, int64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : -1;
}

int llv_gguf_arr_type(const llv_gguf *g, int64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, i);
    return kv ? kv->arr_type : -1;
}

uint64_t llv_gguf_arr_n(const llv_gguf *g, int64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, i);
    return (kv && kv->type == LLV_GGUF_ARRAY) ? kv->arr_n : 0;
}

/* ---- decoding one value ---- */

/* An integer (or bool) value as sign + magnitude so every type converts
 * exactly: *neg set means the value is *s (< 0), else it is *u. */
static bool decode_int(int type, const uint8_t *p, bool *neg, int64_t *s, uint64_t *u)
{
    *neg = false;
    *s = 0;
    *u = 0;
    switch (type) {
    case LLV_GGUF_UINT8: *u = p[0]; return true;
    case LLV_GGUF_BOOL: *u = p[0] != 0; return true;
    case LLV_GGUF_UINT16: *u = llv_le16(p); return true;
    case LLV_GGUF_UINT32: *u = llv_le32(p); return true;
    case LLV_GGUF_UINT64: *u = llv_le64(p); return true;
    case LLV_GGUF_INT8: *s = (int8_t)p[0]; break;
    case LLV_GGUF_INT16: *s = (int16_t)llv_le16(p); break;
    case LLV_GGUF_INT32: *s = (int32_t)llv_le32(p); break;
    case LLV_GGUF_INT64: *s = (int64_t)llv_le64(p); break;
    default: return false;
    }
    if (*s < 0)
        *neg = true;
    else
        *u = (uint64_t)*s;
    return true;
}

static bool decode_float(int type, const uint8_t *p, double *out)
{
    if (type == LLV_GGUF_FLOAT32) {
        uint32_t b = llv_le32(p);
        float f;
        memcpy(&f, &b, 4);
        *out = f;
        return true;
    }
    if (type == LLV_GGUF_FLOAT64) {
        uint64_t b = llv_le64(p);
        memcpy(out, &b, 8);
        return true;
    }
    return false;
}

/* Any numeric value as double (integers, bool, floats). */
static bool decode_number(int type, const uint8_t *p, double *out)
{
    bool neg;
    int64_t s;
    uint64_t u;
    if (decode_float(type, p, out))
        return true;
    if (!decode_int(type, p, &neg, &s, &u))
        return false;
    *out = neg ? (double)s : (double)u;
    return true;
}

/* ---- scalar getters ---- */

static int absent(const char *key, llv_err *err)
{
    return llv_fail(err, LLAVA_E_FORMAT, "key '%s' not found", key);
}

static int wrong_type(const char *key, const llv_gguf_kv *kv, const char *expected, llv_err *err)
{
    if (kv->type == LLV_GGUF_ARRAY)
        return llv_fail(err, LLAVA_E_FORMAT, "key '%s' has type array of %s, expected %s", key,
                        llv_gguf_type_name(kv->arr_type), expected);
    return llv_fail(err, LLAVA_E_FORMAT, "key '%s' has type %s, expected %s", key,
                    llv_gguf_type_name(kv->type), expected);
}

static const llv_gguf_kv *lookup(const llv_gguf *g, const char *key)
{
    return kv_at(g, llv_gguf_find_key(g, key));
}

/* Integer in [lo, hi] (hi as unsigned, lo <= 0). */
static int get_int_range(const llv_gguf_kv *kv, const char *key, int64_t lo, uint64_t hi,
                         const char *tname, bool *neg, int64_t *s, uint64_t *u, llv_err *err)
{
    if (kv->type == LLV_GGUF_ARRAY || !decode_int(kv->type, kv->val, neg, s, u))
        return wrong_type(key, kv, "an integer", err);
    if (*neg ? *s < lo : *u > hi) {
        if (*neg)
            return llv_fail(err, LLAVA_E_FORMAT, "key '%s' = %lld is out of range for %s", key, (long long)*s, tname);
        return llv_fail(err, LLAVA_E_FORMAT, "key '%s' = %llu is out of range for %s", key,
                        (unsigned long long)*u, tname);
    }
    return LLAVA_OK;
}

int llv_gguf_get_u32(const llv_gguf *g, const char *key, uint32_t *out, llv_err *err)
{
    const llv_gguf_kv *kv = lookup(g, key);
    bool neg;
    int64_t s;
    uint64_t u;
    if (!kv)
        return absent(key, err);
    int rc = get_int_range(kv, key, 0, UINT32_MAX, "uint32", &neg, &s, &u, err);
    if (rc == LLAVA_OK)
        *out = (uint32_t)u;
    return rc;
}

int llv_gguf_get_i64(const llv_gguf *g, const char *key, int64_t *out, llv_err *err)
{
    const llv_gguf_kv *kv = lookup(g, key);
    bool neg;
    int64_t s;
    uint64_t u;
    if (!kv)
        return absent(key, err);
    int rc = get_int_range(kv, key, INT64_MIN, INT64_MAX, "int64", &neg, &s, &u, err);
    if (rc == LLAVA_OK)
        *out = neg ? s : (int64_t)u;
    return rc;
}

int llv_gguf_get_f32(const llv_gguf *g, const char *key, float *out, llv_err *err)
{
    const llv_gguf_kv *kv = lookup(g, key);
    double d;
    if (!kv)
        return absent(key, err);
    if (kv->type == LLV_GGUF_ARRAY || !decode_float(kv->type, kv->val, &d))
        return wrong_type(key, kv, "float32", err);
    if (isfinite(d) && fabs(d) > FLT_MAX)
        return llv_fail(err, LLAVA_E_FORMAT, "key '%s' = %g is out of range for float32", key, d);
    *out = (float)d;
    return LLAVA_OK;
}

int llv_gguf_get_bool(const llv_gguf *g, const char *key, bool *out, llv_err *err)
{
    const llv_gguf_kv *kv = lookup(g, key);
    if (!kv)
        return absent(key, err);
    if (kv->type != LLV_GGUF_BOOL)
        return wrong_type(key, kv, "bool", err);
    *out = kv->val[0] != 0;
    return LLAVA_OK;
}

int llv_gguf_get_str(const llv_gguf *g, const char *key, llv_str *out, llv_err *err)
{
    const llv_gguf_kv *kv = lookup(g, key);
    if (!kv)
        return absent(key, err);
    if (kv->type != LLV_GGUF_STRING)
        return wrong_type(key, kv, "string", err);
    *out = (llv_str){ (const char *)kv->val, (size_t)kv->str_len };
    return LLAVA_OK;
}

int llv_gguf_get_u32_opt(const llv_gguf *g, const char *key, uint32_t def, uint32_t *out, llv_err *err)
{
    if (llv_gguf_find_key(g, key) < 0) {
        *out = def;
        return LLAVA_OK;
    }
    return llv_gguf_get_u32(g, key, out, err);
}

int llv_gguf_get_f32_opt(const llv_gguf *g, const char *key, float def, float *out, llv_err *err)
{
    if (llv_gguf_find_key(g, key) < 0) {
        *out = def;
        return LLAVA_OK;
    }
    return llv_gguf_get_f32(g, key, out, err);
}

int llv_gguf_get_bool_opt(const llv_gguf *g, const char *key, bool def, bool *out, llv_err *err)
{
    if (llv_gguf_find_key(g, key) < 0) {
        *out = def;
        return LLAVA_OK;
    }
    return llv_gguf_get_bool(g, key, out, err);
}

int llv_gguf_get_str_opt(const llv_gguf *g, const char *key, llv_str *out, llv_err *err)
{
    if (llv_gguf_find_key(g, key) < 0) {
        *out = (llv_str){ NULL, 0 };
        return LLAVA_OK;
    }
    return llv_gguf_get_str(g, key, out, err);
}

/* ---- arrays ---- */

int llv_gguf_get_arr(const llv_gguf *g, const char *key, int elem_type, const void **data, uint64_t *count,
                     llv_err *err)
{
    const llv_gguf_kv *kv = lookup(g, key);
    if (!kv)
        return absent(key, err);
    if (kv->type != LLV_GGUF_ARRAY || (elem_type >= 0 && kv->arr_type != elem_type)) {
        char want[40];
        if (elem_type >= 0)
            snprintf(want, sizeof want, "array of %s", llv_gguf_type_name(elem_type));
        else
            snprintf(want, sizeof want, "an array");
        return wrong_type(key, kv, want, err);
    }
    *data = kv->val;
    *count = kv->arr_n;
    return LLAVA_OK;
}

int64_t llv_gguf_arr_get_int(const llv_gguf *g, int64_t kv_index, uint64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, kv_index);
    if (!kv || kv->type != LLV_GGUF_ARRAY || i >= kv->arr_n)
        return 0;
    size_t es = llv_gguf_scalar_size(kv->arr_type);
    if (es == 0)
        return 0;
    const uint8_t *p = kv->val + i * es;
    bool neg;
    int64_t s;
    uint64_t u;
    if (decode_int(kv->arr_type, p, &neg, &s, &u))
        return neg ? s : (u > INT64_MAX ? INT64_MAX : (int64_t)u);
    double d;
    decode_float(kv->arr_type, p, &d);
    if (!(d == d))
        return 0;
    if (d >= 9.2233720368547758e18)
        return INT64_MAX;
    if (d <= -9.2233720368547758e18)
        return INT64_MIN;
    return (int64_t)d;
}

double llv_gguf_arr_get_float(const llv_gguf *g, int64_t kv_index, uint64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, kv_index);
    if (!kv || kv->type != LLV_GGUF_ARRAY || i >= kv->arr_n)
        return 0.0;
    size_t es = llv_gguf_scalar_size(kv->arr_type);
    double d = 0.0;
    if (es == 0 || !decode_number(kv->arr_type, kv->val + i * es, &d))
        return 0.0;
    return d;
}

int llv_gguf_get_arr_str(const llv_gguf *g, const char *key, uint64_t *count, llv_err *err)
{
    const llv_gguf_kv *kv = lookup(g, key);
    if (!kv)
        return absent(key, err);
    if (kv->type != LLV_GGUF_ARRAY || kv->arr_type != LLV_GGUF_STRING)
        return wrong_type(key, kv, "array of string", err);
    *count = kv->arr_n;
    return LLAVA_OK;
}

llv_str llv_gguf_arr_str(const llv_gguf *g, int64_t kv_index, uint64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, kv_index);
    if (!kv || kv->type != LLV_GGUF_ARRAY || kv->arr_type != LLV_GGUF_STRING || i >= kv->arr_n)
        return (llv_str){ NULL, 0 };
    return g->strs[kv->str_first + i];
}

/* ---- scalar values by index (printing) ---- */

int64_t llv_gguf_kv_int(const llv_gguf *g, int64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, i);
    bool neg;
    int64_t s;
    uint64_t u;
    if (!kv || kv->type == LLV_GGUF_ARRAY || !decode_int(kv->type, kv->val, &neg, &s, &u))
        return 0;
    return neg ? s : (int64_t)u; /* UINT64 above INT64_MAX wraps: use kv_uint */
}

uint64_t llv_gguf_kv_uint(const llv_gguf *g, int64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, i);
    bool neg;
    int64_t s;
    uint64_t u;
    if (!kv || kv->type == LLV_GGUF_ARRAY || !decode_int(kv->type, kv->val, &neg, &s, &u) || neg)
        return 0;
    return u;
}

double llv_gguf_kv_float(const llv_gguf *g, int64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, i);
    double d = 0.0;
    if (!kv || kv->type == LLV_GGUF_ARRAY || !decode_number(kv->type, kv->val, &d))
        return 0.0;
    return d;
}

llv_str llv_gguf_kv_str(const llv_gguf *g, int64_t i)
{
    const llv_gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != LLV_GGUF_STRING)
        return (llv_str){ NULL, 0 };
    return (llv_str){ (const char *)kv->val, (size_t)kv->str_len };
}

/* ---- tensors ---- */

const llv_gguf_tensor *llv_gguf_tensor_at(const llv_gguf *g, int64_t i)
{
    return (g && i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const llv_gguf_tensor *llv_gguf_find_tensor(const llv_gguf *g, const char *name)
{
    if (!g || !name)
        return NULL;
    int64_t i = llv_gguf_name_find(g->t_sorted, g->n_tensors, name, strlen(name));
    return i < 0 ? NULL : &g->tensors[i];
}
