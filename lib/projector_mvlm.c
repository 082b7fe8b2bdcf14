/*
 * projector_mvlm.c - the MobileVLM projectors (spec §3.3), which turn a
 * side x side grid of vision tokens into (side/2)^2 LM tokens. Structure as
 * in MobileVLM's LDPBlock / LDPNetV2Projector (torch modules named in the
 * tensor names of llama.cpp's converter):
 *
 * ldp (v1), tensors mm.model.mlp.{1,3}, mm.model.mb_block.{1,2}.block.*:
 *   y  = W3 · GELU(W1 x + b1) + b3                    [N][C]
 *   y  = y + ldp_block(y, stride 1)                   [side^2][C]
 *   y  = ldp_block(y, stride 2)                       [(side/2)^2][C]
 *   ldp_block (torchvision InvertedResidual, no expansion, LayerNorm):
 *     block.0: depthwise 3x3 conv (.0.weight, pad 1, no bias), LN (.1), hardswish
 *     block.1: squeeze-excite: s = hardsigmoid(fc2 · ReLU(fc1 · mean_tokens + b1) + b2),
 *              every token's channels scaled by s
 *     block.2: pointwise conv (.0.weight, no bias), LN (.1)
 *
 * ldpv2 (v2), tensors mm.model.mlp.{0,2}, mm.model.peg.0:
 *   y  = W2 · GELU(W0 x + b0) + b2
 *   y  = 2x2 average pool (the reference's AdaptiveAvgPool2d((12,12)) on the
 *        24x24 grid; here side/2 for any even side)
 *   y  = y + depthwise_conv3x3(y, pad 1) + bias         (PEG)
 *
 * GELU is the exact erf form (nn.GELU); LayerNorm eps is the file's vision
 * eps (1e-5 for CLIP-L, the LayerNormAct2d default too). Activations are
 * token-major [y*side + x][C] throughout, so per-pixel LayerNorms are rows.
 */
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- loading ------------------------------------------------------------ */

/* Shape equality ignoring size-1 dims (1x1 convs may be stored as
 * [1,1,Cin,Cout] or [Cin,Cout]; depthwise weights as [3,3,1,C] or [3,3,C]). */
static bool squeezed_equal(const llv_gguf_tensor *t, int n, const int64_t *want)
{
    int j = 0;
    for (int i = 0; i < LLV_GGUF_MAX_DIMS; i++) {
        if (t->ne[i] == 1)
            continue;
        while (j < n && want[j] == 1)
            j++;
        if (j >= n || t->ne[i] != want[j])
            return false;
        j++;
    }
    while (j < n && want[j] == 1)
        j++;
    return j == n;
}

static int find_shaped(const llv_gguf *g, const char *name, int n, const int64_t *want,
                       const llv_gguf_tensor **out, llv_err *err)
{
    const llv_gguf_tensor *t = llv_gguf_find_tensor(g, name);
    if (!t)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s is missing", name);
    if (!squeezed_equal(t, n, want)) {
        char have[96], exp[96];
        llv_vt_shape_str(have, sizeof have, (int)t->n_dims, t->ne);
        llv_vt_shape_str(exp, sizeof exp, n, want);
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s has shape %s, expected %s", name, have, exp);
    }
    *out = t;
    return LLAVA_OK;
}

/* Linear layer: weight [n_in, n_out] (n_in < 0: any), optional bias. */
static int load_lin(const llv_gguf *g, const char *wname, const char *bname, int64_t n_in, int64_t n_out,
                    llv_proj_layer *l, llv_err *err)
{
    const llv_gguf_tensor *t = llv_gguf_find_tensor(g, wname);
    if (!t)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s is missing", wname);
    /* Unknown sides come from the squeezed shape: the first dim that is
     * not 1 is n_in, the rest of the elements n_out. */
    int64_t first = 1;
    for (int i = 0; i < LLV_GGUF_MAX_DIMS && first == 1; i++)
        first = t->ne[i];
    int64_t want[2] = { n_in < 0 ? first : n_in, n_out };
    if (n_out < 0)
        want[1] = want[0] > 0 && t->n_elements % want[0] == 0 ? t->n_elements / want[0] : 0;
    if (want[0] < 1 || want[0] > LLV_PROJ_MAX_WIDTH || want[1] < 1 || want[1] > LLV_PROJ_MAX_WIDTH)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s has sides outside 1..%d", wname, LLV_PROJ_MAX_WIDTH);
    int rc = find_shaped(g, wname, 2, want, &t, err);
    if (rc == LLAVA_OK)
        rc = llv_vt_weight_of(t, want[0], want[1], &l->w, err);
    if (rc == LLAVA_OK && bname)
        rc = llv_vt_vector(g, bname, false, want[1], &l->b, err);
    return rc;
}

/* Depthwise 3x3 weight -> owned f32 [C][9] (F32/F16/BF16 only). */
static int load_dw(const llv_gguf *g, const char *name, int64_t C, float **out, llv_err *err)
{
    const int64_t want[4] = { 3, 3, 1, C };
    const llv_gguf_tensor *t;
    int rc = find_shaped(g, name, 4, want, &t, err);
    if (rc != LLAVA_OK)
        return rc;
    if (t->type != LLV_TYPE_F32 && t->type != LLV_TYPE_F16 && t->type != LLV_TYPE_BF16)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: tensor %s has type %s (expected f32/f16/bf16)", name,
                        llv_type_name(t->type));
    float *w = llv_malloc((size_t)C * 9 * sizeof(float));
    if (!w)
        return llv_fail(err, LLAVA_E_NOMEM, "mmproj: out of memory for %s", name);
    llv_dequantize_row(t->type, t->data, w, C * 9);
    for (int64_t i = 0; i < C * 9; i++)
        if (!isfinite(w[i])) {
            llv_free(w);
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s holds a non-finite value", name);
        }
    *out = w;
    return LLAVA_OK;
}

static int load_ldp_block(const llv_gguf *g, int idx, int64_t C, llv_ldp_block *b, llv_err *err)
{
    char w[80], bn[80];
#define NAME(buf, sub, suffix) (snprintf(buf, sizeof buf, "mm.model.mb_block.%d.block.%s.%s", idx, sub, suffix), buf)
    int rc;
    if ((rc = load_dw(g, NAME(w, "0", "0.weight"), C, &b->dw, err)) ||
        (rc = llv_vt_vector(g, NAME(w, "0", "1.weight"), true, C, &b->ln0_w, err)) ||
        (rc = llv_vt_vector(g, NAME(w, "0", "1.bias"), true, C, &b->ln0_b, err)) ||
        (rc = load_lin(g, NAME(w, "1", "fc1.weight"), NAME(bn, "1", "fc1.bias"), C, -1, &b->fc1, err)) ||
        (rc = load_lin(g, NAME(w, "1", "fc2.weight"), NAME(bn, "1", "fc2.bias"), b->fc1.w.n_out, C, &b->fc2, err)) ||
        (rc = load_lin(g, NAME(w, "2", "0.weight"), NULL, C, C, &b->pw, err)) ||
        (rc = llv_vt_vector(g, NAME(w, "2", "1.weight"), true, C, &b->ln1_w, err)) ||
        (rc = llv_vt_vector(g, NAME(w, "2", "1.bias"), true, C, &b->ln1_b, err)))
        return rc;
#undef NAME
    b->stride = idx == 1 ? 1 : 2;
    return LLAVA_OK;
}

int llv_mvlm_load(const llv_gguf *g, llava_projector *p, llv_err *err)
{
    const bool v2 = p->kind == LLV_PROJ_LDPV2;
    const int i0 = v2 ? 0 : 1, i1 = v2 ? 2 : 3;
    char w[48], b[48];
    int rc;
    snprintf(w, sizeof w, "mm.model.mlp.%d.weight", i0);
    snprintf(b, sizeof b, "mm.model.mlp.%d.bias", i0);
    if ((rc = load_lin(g, w, b, -1, -1, &p->layers[0], err)) != LLAVA_OK)
        return rc;
    snprintf(w, sizeof w, "mm.model.mlp.%d.weight", i1);
    snprintf(b, sizeof b, "mm.model.mlp.%d.bias", i1);
    if ((rc = load_lin(g, w, b, p->layers[0].w.n_out, -1, &p->layers[1], err)) != LLAVA_OK)
        return rc;
    p->n_layers = 2;
    p->n_in = (int32_t)p->layers[0].w.n_in;
    p->n_out = (int32_t)p->layers[1].w.n_out;
    const int64_t C = p->n_out;
    if (v2) {
        if ((rc = load_dw(g, "mm.model.peg.0.weight", C, &p->peg_w, err)) ||
            (rc = llv_vt_vector(g, "mm.model.peg.0.bias", true, C, &p->peg_b, err)))
            return rc;
        return LLAVA_OK;
    }
    for (int i = 0; i < 2; i++)
        if ((rc = load_ldp_block(g, i + 1, C, &p->ldp[i], err)) != LLAVA_OK)
            return rc;
    return LLAVA_OK;
}

void llv_mvlm_free(llava_projector *p)
{
    for (int i = 0; i < 2; i++) {
        llv_ldp_block *b = &p->ldp[i];
        float *v[] = { b->dw, b->ln0_w, b->ln0_b, b->fc1.b, b->fc2.b, b->pw.b, b->ln1_w, b->ln1_b };
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            llv_free(v[k]);
    }
    llv_free(p->peg_w);
    llv_free(p->peg_b);
}

/* ---- forward ------------------------------------------------------------ */

/* Depthwise 3x3 conv, zero padding 1, stride s:
 * out[oy][ox][c] = sum_{ky,kx} w[c][ky*3+kx] * in[oy*s+ky-1][ox*s+kx-1][c]. */
static void dwconv3x3(const float *in, int64_t side, int64_t C, const float *w, int stride, float *out,
                      int64_t so)
{
    for (int64_t oy = 0; oy < so; oy++)
        for (int64_t ox = 0; ox < so; ox++) {
            float *o = out + (oy * so + ox) * C;
            memset(o, 0, (size_t)C * sizeof(float));
            for (int ky = 0; ky < 3; ky++) {
                int64_t iy = oy * stride + ky - 1;
                if (iy < 0 || iy >= side)
                    continue;
                for (int kx = 0; kx < 3; kx++) {
                    int64_t ix = ox * stride + kx - 1;
                    if (ix < 0 || ix >= side)
                        continue;
                    const float *src = in + (iy * side + ix) * C;
                    for (int64_t c = 0; c < C; c++)
                        o[c] += w[c * 9 + ky * 3 + kx] * src[c];
                }
            }
        }
}

static float hardsigmoid(float x)
{
    float r = x + 3.0f;
    r = r < 0.0f ? 0.0f : r > 6.0f ? 6.0f : r;
    return r / 6.0f;
}

/* One LDP block: in [side^2][C] -> out [so^2][C]; tmp, t2: [so^2][C]. */
static void ldp_block(const llv_ldp_block *b, const float *in, int64_t side, int64_t C, float eps, float *out,
                      float *tmp, float *se, int nt)
{
    const int64_t so = (side - 1) / b->stride + 1, n = so * so;
    dwconv3x3(in, side, C, b->dw, b->stride, tmp, so);
    for (int64_t t = 0; t < n; t++) {
        float *r = tmp + t * C;
        llv_layernorm(r, r, b->ln0_w, b->ln0_b, C, eps);
        for (int64_t c = 0; c < C; c++)
            r[c] = r[c] * hardsigmoid(r[c]); /* hardswish */
    }
    /* squeeze-excite: se[0..C) = channel means, se[C..C+S) = hidden */
    const int64_t S = b->fc1.w.n_out;
    float *mean = se, *hid = se + C, *scale = se + C + S;
    for (int64_t c = 0; c < C; c++)
        mean[c] = 0.0f;
    for (int64_t t = 0; t < n; t++)
        for (int64_t c = 0; c < C; c++)
            mean[c] += tmp[t * C + c];
    for (int64_t c = 0; c < C; c++)
        mean[c] /= (float)n;
    llv_matmul(&b->fc1.w, mean, 1, hid, b->fc1.b, nt);
    for (int64_t k = 0; k < S; k++)
        hid[k] = hid[k] > 0.0f ? hid[k] : 0.0f;
    llv_matmul(&b->fc2.w, hid, 1, scale, b->fc2.b, nt);
    for (int64_t c = 0; c < C; c++)
        scale[c] = hardsigmoid(scale[c]);
    for (int64_t t = 0; t < n; t++)
        for (int64_t c = 0; c < C; c++)
            tmp[t * C + c] *= scale[c];
    llv_matmul(&b->pw.w, tmp, n, out, NULL, nt);
    for (int64_t t = 0; t < n; t++)
        llv_layernorm(out + t * C, out + t * C, b->ln1_w, b->ln1_b, C, eps);
    if (b->stride == 1) /* residual (same shape) */
        for (int64_t i = 0; i < n * C; i++)
            out[i] += in[i];
}

/* Buffers: h [N][max(H, C)], y [N][C], t [N][C], se [2C + S]; floats. */
static int mvlm_scratch_floats(const llava_projector *p, int64_t n_rows, size_t *nbig, size_t *nC, size_t *total,
                               llv_err *err)
{
    const int64_t H = p->layers[0].w.n_out, C = p->n_out;
    int64_t S = p->kind == LLV_PROJ_LDP ? LLV_MAX(p->ldp[0].fc1.w.n_out, p->ldp[1].fc1.w.n_out) : 0;
    size_t bytes;
    if (n_rows < 0 || llv_mul_overflow((size_t)n_rows, (size_t)LLV_MAX(H, C), nbig) ||
        llv_mul_overflow((size_t)n_rows, (size_t)C, nC) ||
        llv_add_overflow(*nbig, 2 * *nC, total) || llv_add_overflow(*total, (size_t)(2 * C + S), total) ||
        llv_mul_overflow(*total, sizeof(float), &bytes))
        return llv_fail(err, LLAVA_E_NOMEM, "projector: buffers are too large");
    return LLAVA_OK;
}

int llv_mvlm_scratch_bytes(const llava_projector *p, int64_t n_rows, size_t *bytes, llv_err *err)
{
    size_t nbig = 0, nC = 0, total = 0;
    int rc = mvlm_scratch_floats(p, n_rows, &nbig, &nC, &total, err);
    if (rc == LLAVA_OK)
        *bytes = total * sizeof(float); /* checked above */
    return rc;
}

int llv_mvlm_forward(const llava_projector *p, const float *in, int64_t n_rows, float *out, int n_threads,
                     void *scratch, llv_err *err)
{
    const int64_t n_out_rows = llv_projector_out_rows(p, n_rows);
    if (n_out_rows < 1)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "projector %s: %lld tokens are not a square grid with an even "
                        "side", p->type_name, (long long)n_rows);
    int64_t side = 2;
    while (side * side < n_rows)
        side++;
    const int64_t H = p->layers[0].w.n_out, C = p->n_out, half = side / 2;
    size_t nbig = 0, nC = 0, total = 0;
    int rc = mvlm_scratch_floats(p, n_rows, &nbig, &nC, &total, err);
    if (rc != LLAVA_OK)
        return rc;
    float *mem = scratch;
    if (!mem && !(mem = llv_malloc_aligned(total * sizeof(float))))
        return llv_fail(err, LLAVA_E_NOMEM, "projector: out of memory for %zu bytes", total * sizeof(float));
    float *h = mem, *y = h + nbig, *t = y + nC, *se = t + nC;

    llv_matmul(&p->layers[0].w, in, n_rows, h, p->layers[0].b, n_threads);
    llv_gelu_erf(h, n_rows * H);
    llv_matmul(&p->layers[1].w, h, n_rows, y, p->layers[1].b, n_threads);

    if (p->kind == LLV_PROJ_LDP) {
        ldp_block(&p->ldp[0], y, side, C, p->eps, h, t, se, n_threads);   /* h = y + block1(y) */
        ldp_block(&p->ldp[1], h, side, C, p->eps, out, t, se, n_threads); /* stride 2 */
    } else {
        /* 2x2 average pool: t [half^2][C] */
        for (int64_t oy = 0; oy < half; oy++)
            for (int64_t ox = 0; ox < half; ox++) {
                float *o = t + (oy * half + ox) * C;
                const float *a = y + ((2 * oy) * side + 2 * ox) * C, *b = a + C, *c = a + side * C, *d = c + C;
                for (int64_t k = 0; k < C; k++)
                    o[k] = (a[k] + b[k] + c[k] + d[k]) * 0.25f;
            }
        dwconv3x3(t, half, C, p->peg_w, 1, out, half);
        for (int64_t i = 0; i < half * half; i++)
            for (int64_t k = 0; k < C; k++)
                out[i * C + k] += p->peg_b[k] + t[i * C + k];
    }
    if (mem != scratch)
        llv_free_aligned(mem);
    return LLAVA_OK;
}
