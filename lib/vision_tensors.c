/*
 * vision_tensors.c - shape-checked access to the tensors of an mmproj file,
 * shared by the vision loader and the projector loader.
 *
 * Small tensors (biases, norms, class and position embeddings) are copied to
 * owned f32 arrays, so the forward pass never touches odd types or unaligned
 * floats; matrices stay in the mapping as llv_weight views.
 */
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void llv_vt_shape_str(char *buf, size_t size, int n_dims, const int64_t *ne)
{
    size_t used = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n_dims && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)ne[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

int llv_vt_find(const llv_gguf *g, const char *name, bool required, int n_dims, const int64_t *ne_want,
                const llv_gguf_tensor **out, llv_err *err)
{
    *out = NULL;
    const llv_gguf_tensor *t = llv_gguf_find_tensor(g, name);
    if (!t) {
        if (required)
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s is missing", name);
        return LLAVA_OK;
    }
    /* Compare all four dims (trailing 1s are equivalent, e.g. [64] = [64,1]). */
    bool ok = true;
    for (int i = 0; ok && i < LLV_GGUF_MAX_DIMS; i++) {
        int64_t want = i < n_dims ? ne_want[i] : 1;
        if (t->ne[i] != want)
            ok = false;
    }
    if (!ok) {
        char have[96], want[96];
        llv_vt_shape_str(have, sizeof have, (int)t->n_dims, t->ne);
        llv_vt_shape_str(want, sizeof want, n_dims, ne_want);
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s has shape %s, expected %s", name, have, want);
    }
    *out = t;
    return LLAVA_OK;
}

int llv_vt_vector(const llv_gguf *g, const char *name, bool required, int64_t n, float **out, llv_err *err)
{
    *out = NULL;
    const llv_gguf_tensor *t;
    int rc = llv_vt_find(g, name, required, 1, &n, &t, err);
    if (rc != LLAVA_OK || !t)
        return rc;
    const llv_type_info *ti = llv_type_get(t->type);
    if (!ti || !ti->weights || n % ti->blck != 0)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: tensor %s has unsupported type %s", name,
                        llv_type_name(t->type));
    size_t bytes;
    if (llv_mul_overflow((size_t)n, sizeof(float), &bytes))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s is too large", name);
    float *v = llv_malloc(bytes);
    if (!v)
        return llv_fail(err, LLAVA_E_NOMEM, "mmproj: out of memory for tensor %s", name);
    if (t->type == LLV_TYPE_F32)
        memcpy(v, t->data, bytes);
    else
        llv_dequantize_row(t->type, t->data, v, n);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            llv_free(v);
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s holds a non-finite value at %lld", name,
                            (long long)i);
        }
    }
    *out = v;
    return LLAVA_OK;
}

int llv_vt_weight_of(const llv_gguf_tensor *t, int64_t n_in, int64_t n_out, llv_weight *out, llv_err *err)
{
    const llv_type_info *ti = llv_type_get(t->type);
    if (!ti || !ti->weights)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: tensor %s has type %s, which cannot be used as weights",
                        t->name, llv_type_name(t->type));
    if (!llv_weight_init(out, t->type, n_in, n_out, t->data))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s: rows of %lld values do not fit type %s",
                        t->name, (long long)n_in, llv_type_name(t->type));
    return LLAVA_OK;
}

int llv_vt_matrix(const llv_gguf *g, const char *name, bool required, int64_t n_in, int64_t n_out,
                  llv_weight *out, bool *present, llv_err *err)
{
    const int64_t ne[2] = { n_in, n_out };
    const llv_gguf_tensor *t;
    memset(out, 0, sizeof *out);
    if (present)
        *present = false;
    int rc = llv_vt_find(g, name, required, 2, ne, &t, err);
    if (rc != LLAVA_OK || !t)
        return rc;
    rc = llv_vt_weight_of(t, n_in, n_out, out, err);
    if (rc == LLAVA_OK && present)
        *present = true;
    return rc;
}
