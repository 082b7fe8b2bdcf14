/*
 * projector.c - the LLaVA projector of an mmproj file: vision features ->
 * LM embedding width (spec §3.3, §4 step 8).
 *
 * How a file selects the projector (documented decision):
 *  - clip.projector_type (or clip.vision.projector_type), absent = "mlp".
 *  - "mlp": linear layers mm.0, mm.2, mm.4, ... (as many as are stored, at
 *    least mm.0), with the exact erf GELU between consecutive layers, as the
 *    reference LLaVA builder's mlpNx_gelu (nn.Linear, nn.GELU, nn.Linear...).
 *    A file with only mm.0 is therefore the LLaVA-1 linear projector (no
 *    activation; RC would still apply GELU there).
 *  - "linear": mm.0 only, no activation; a stored mm.2 is an error.
 *  - "mlp" with mm.3.weight stored: Yi-VL's MLP with LayerNorms (RC's
 *    internal MLP_NORM): mm.0 -> LN(mm.1) -> GELU(erf) -> mm.3 -> LN(mm.4),
 *    LN eps = clip.vision.attention.layer_norm_epsilon (default 1e-5, as
 *    nn.LayerNorm); mm.2 must then be absent.
 *  - "ldp" / "ldpv2": MobileVLM v1/v2 (projector_mvlm.c), 4x fewer tokens.
 *  - every other type string (resampler, ...): LLAVA_E_UNSUPPORTED naming it.
 */
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Type names of spec §3.3 that are known but not implemented. */
static const char *const known_other[] = {
    "resampler", "adapter", "cogvlm", "qwen2vl_merger", "qwen2.5vl_merger",
    "qwen3vl_merger", "gemma3", "idefics3", "pixtral", "internvl", "llama4", "phi4", "lfm2",
    "kimivl", "glm4v", "janus_pro", "ultravox", "qwen2a", "voxtral",
};

/* Copy an untrusted GGUF string for messages: printable ASCII only. */
static void safe_copy(char *dst, size_t size, llv_str s)
{
    size_t n = LLV_MIN(s.len, size - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[n] = '\0';
}

static bool str_is(llv_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static int read_type(const llv_gguf *g, llava_projector *p, llv_err *err)
{
    llv_str s;
    int rc = llv_gguf_get_str_opt(g, "clip.projector_type", &s, err);
    if (rc == LLAVA_OK && !s.ptr)
        rc = llv_gguf_get_str_opt(g, "clip.vision.projector_type", &s, err);
    if (rc != LLAVA_OK)
        return llv_err_prefix(err, "mmproj");
    if (!s.ptr) {
        s.ptr = "mlp";
        s.len = 3;
    }
    safe_copy(p->type_name, sizeof p->type_name, s);
    if (str_is(s, "mlp")) {
        p->kind = LLV_PROJ_MLP;
        return LLAVA_OK;
    }
    if (str_is(s, "linear")) {
        p->kind = LLV_PROJ_LINEAR;
        return LLAVA_OK;
    }
    if (str_is(s, "ldp") || str_is(s, "ldpv2")) {
        p->kind = s.len == 3 ? LLV_PROJ_LDP : LLV_PROJ_LDPV2;
        return LLAVA_OK;
    }
    for (size_t i = 0; i < sizeof known_other / sizeof known_other[0]; i++)
        if (str_is(s, known_other[i]))
            return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: projector type '%s' is not supported (only mlp, linear, ldp, "
                            "ldpv2)",
                            p->type_name);
    return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: unknown projector type '%s'%s", p->type_name,
                    s.len >= sizeof p->type_name ? " (truncated)" : "");
}

/* Layer `idx` ("mm.<idx>") with n_in inputs (or any width if n_in < 0). */
static int load_layer(const llv_gguf *g, int idx, int64_t n_in, llv_proj_layer *layer, bool *present, llv_err *err)
{
    char name[32];
    snprintf(name, sizeof name, "mm.%d.weight", idx);
    const llv_gguf_tensor *t = llv_gguf_find_tensor(g, name);
    *present = false;
    if (!t)
        return idx == 0 ? llv_fail(err, LLAVA_E_FORMAT, "mmproj: projector tensor %s is missing", name) : LLAVA_OK;
    if (t->n_dims != 2 || t->ne[0] < 1 || t->ne[0] > LLV_PROJ_MAX_WIDTH || t->ne[1] < 1 ||
        t->ne[1] > LLV_PROJ_MAX_WIDTH) {
        char have[96];
        llv_vt_shape_str(have, sizeof have, (int)t->n_dims, t->ne);
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: tensor %s has shape %s, expected a matrix [n_in, n_out] "
                        "with sides in 1..%d", name, have, LLV_PROJ_MAX_WIDTH);
    }
    int64_t want_in = n_in < 0 ? t->ne[0] : n_in;
    int rc = llv_vt_matrix(g, name, true, want_in, t->ne[1], &layer->w, NULL, err);
    if (rc != LLAVA_OK)
        return rc;
    snprintf(name, sizeof name, "mm.%d.bias", idx);
    if ((rc = llv_vt_vector(g, name, false, t->ne[1], &layer->b, err)) != LLAVA_OK)
        return rc;
    *present = true;
    return LLAVA_OK;
}

/* mlp / linear: mm.0, mm.2, mm.4, ... without gaps. */
static int load_mlp(const llv_gguf *g, llava_projector *p, llv_err *err)
{
    int rc = LLAVA_OK;
    if (llv_gguf_find_tensor(g, "mm.1.weight"))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: mm.1.weight (a Yi-VL LayerNorm) is stored but mm.3.weight "
                        "is missing");
    int max_layers = p->kind == LLV_PROJ_LINEAR ? 1 : LLV_PROJ_MAX_LAYERS;
    int64_t width = -1;
    for (int i = 0; rc == LLAVA_OK && i < max_layers; i++) {
        bool present;
        rc = load_layer(g, 2 * i, width, &p->layers[i], &present, err);
        if (rc != LLAVA_OK || !present)
            break;
        if (i == 0)
            p->n_in = (int32_t)p->layers[0].w.n_in;
        width = p->layers[i].w.n_out;
        p->n_layers = i + 1;
    }
    if (rc == LLAVA_OK && p->kind == LLV_PROJ_LINEAR && llv_gguf_find_tensor(g, "mm.2.weight"))
        rc = llv_fail(err, LLAVA_E_FORMAT, "mmproj: projector type 'linear' but mm.2.weight is stored");
    if (rc == LLAVA_OK && p->kind == LLV_PROJ_MLP) {
        /* A gap in the chain (mm.4 without mm.2) would silently drop layers. */
        char name[32];
        for (int i = p->n_layers + 1; rc == LLAVA_OK && i <= LLV_PROJ_MAX_LAYERS; i++) {
            snprintf(name, sizeof name, "mm.%d.weight", 2 * i);
            if (llv_gguf_find_tensor(g, name))
                rc = i == LLV_PROJ_MAX_LAYERS
                         ? llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: more than %d projector layers",
                                    LLV_PROJ_MAX_LAYERS)
                         : llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s is stored but mm.%d.weight is missing", name,
                                    2 * p->n_layers);
        }
    }
    p->n_out = (int32_t)width;
    return rc;
}

/* Yi-VL: mm.0 (linear), mm.1 (LayerNorm), mm.3 (linear), mm.4 (LayerNorm). */
static int load_mlp_norm(const llv_gguf *g, llava_projector *p, llv_err *err)
{
    bool present;
    int rc;
    if (llv_gguf_find_tensor(g, "mm.2.weight"))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: both mm.2.weight and mm.3.weight are stored (neither a "
                        "plain mlp nor Yi-VL's mm.0/mm.1/mm.3/mm.4)");
    if ((rc = load_layer(g, 0, -1, &p->layers[0], &present, err)) != LLAVA_OK ||
        (rc = load_layer(g, 3, p->layers[0].w.n_out, &p->layers[1], &present, err)) != LLAVA_OK)
        return rc;
    p->n_layers = 2;
    p->n_in = (int32_t)p->layers[0].w.n_in;
    p->n_out = (int32_t)p->layers[1].w.n_out;
    const char *ln[2] = { "mm.1", "mm.4" };
    for (int i = 0; i < 2; i++) {
        char name[32];
        int64_t n = p->layers[i].w.n_out;
        snprintf(name, sizeof name, "%s.weight", ln[i]);
        if ((rc = llv_vt_vector(g, name, true, n, &p->ln_w[i], err)) != LLAVA_OK)
            return rc;
        snprintf(name, sizeof name, "%s.bias", ln[i]);
        if ((rc = llv_vt_vector(g, name, false, n, &p->ln_b[i], err)) != LLAVA_OK)
            return rc;
    }
    if (llv_gguf_find_tensor(g, "mm.5.weight") || llv_gguf_find_tensor(g, "mm.6.weight"))
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: Yi-VL style projector with more than mm.0..mm.4");
    return LLAVA_OK;
}

/* LayerNorm epsilon for the projector's norms: the file's vision eps. */
static int read_eps(const llv_gguf *g, llava_projector *p, llv_err *err)
{
    p->eps = 1e-5f;
    if (llv_gguf_find_key(g, "clip.vision.attention.layer_norm_epsilon") < 0)
        return LLAVA_OK;
    if (llv_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &p->eps, err) != LLAVA_OK)
        return llv_err_prefix(err, "mmproj");
    if (!(p->eps > 0.0f && p->eps <= 1.0f))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: layer_norm_epsilon %g is not in (0, 1]", (double)p->eps);
    return LLAVA_OK;
}

void llv_projector_destroy(llava_projector *p)
{
    if (!p)
        return;
    for (int i = 0; i < LLV_PROJ_MAX_LAYERS; i++)
        llv_free(p->layers[i].b);
    for (int i = 0; i < 2; i++) {
        llv_free(p->ln_w[i]);
        llv_free(p->ln_b[i]);
    }
    llv_mvlm_free(p);
    llv_gguf_close(p->gguf);
    llv_handle_kill(&p->hdr);
    llv_free(p);
}

int llv_projector_from_gguf(llv_gguf *g, const llava_params *params, llava_projector **out, llv_err *err)
{
    *out = NULL;
    llava_projector *p = llv_calloc(1, sizeof *p);
    if (!p)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for the projector");
    llv_handle_init(&p->hdr, LLV_MAGIC_PROJECTOR);
    p->n_threads = llv_resolve_threads(llv_param_int(params, LLAVA_PARAM_N_THREADS));
    p->cb = llv_param_callbacks(params);

    int rc = read_type(g, p, err);
    if (rc == LLAVA_OK && p->kind == LLV_PROJ_MLP && llv_gguf_find_tensor(g, "mm.3.weight"))
        p->kind = LLV_PROJ_MLP_NORM;
    if (rc == LLAVA_OK && (p->kind == LLV_PROJ_MLP_NORM || p->kind == LLV_PROJ_LDP)) /* they have LayerNorms */
        rc = read_eps(g, p, err);
    if (rc == LLAVA_OK) {
        switch (p->kind) {
        case LLV_PROJ_MLP_NORM: rc = load_mlp_norm(g, p, err); break;
        case LLV_PROJ_LDP:
        case LLV_PROJ_LDPV2:    rc = llv_mvlm_load(g, p, err); break;
        default:                rc = load_mlp(g, p, err); break;
        }
    }
    if (rc != LLAVA_OK) {
        llv_projector_destroy(p);
        return rc;
    }
    p->gguf = g;
    llv_log(&p->cb, 2, "projector: %s%s, %d linear layer(s), %d -> %d", p->type_name,
            p->kind == LLV_PROJ_MLP_NORM ? " with LayerNorms (Yi-VL)" : "", p->n_layers, p->n_in, p->n_out);
    *out = p;
    return LLAVA_OK;
}

int64_t llv_projector_out_rows(const llava_projector *p, int64_t n_rows)
{
    if (llv_projector_rowwise(p))
        return n_rows;
    /* ldp/ldpv2: a square grid with an even side, halved per side */
    int64_t side = (int64_t)sqrt((double)n_rows);
    while (side * side > n_rows)
        side--;
    while ((side + 1) * (side + 1) <= n_rows)
        side++;
    if (side * side != n_rows || side % 2 != 0 || side < 2)
        return 0;
    return (side / 2) * (side / 2);
}

bool llv_projector_rowwise(const llava_projector *p)
{
    return p->kind != LLV_PROJ_LDP && p->kind != LLV_PROJ_LDPV2;
}

/* Scratch floats of the row-wise projectors: Yi-VL one hidden buffer
 * [n_rows][H]; mlp two ping-pong buffers for the hidden layers (one for two
 * layers, none for one), each [n_rows][widest hidden], 16-float aligned. */
static int rowwise_scratch(const llava_projector *p, int64_t n_rows, size_t *per_buf, int *n_bufs, llv_err *err)
{
    int64_t widest = 0;
    *n_bufs = 0;
    if (p->kind == LLV_PROJ_MLP_NORM) {
        widest = p->layers[0].w.n_out;
        *n_bufs = 1;
    } else if (p->n_layers > 1) {
        for (int i = 0; i + 1 < p->n_layers; i++)
            widest = LLV_MAX(widest, p->layers[i].w.n_out);
        *n_bufs = p->n_layers > 2 ? 2 : 1;
    }
    size_t n, total;
    if (n_rows < 0 || llv_mul_overflow((size_t)n_rows, (size_t)widest, &n) || llv_add_overflow(n, 15, &n) ||
        llv_mul3_overflow(n / 16 * 16, (size_t)*n_bufs, sizeof(float), &total))
        return llv_fail(err, LLAVA_E_NOMEM, "projector: buffers are too large");
    *per_buf = n / 16 * 16;
    return LLAVA_OK;
}

int llv_projector_scratch_bytes(const llava_projector *p, int64_t n_rows, size_t *bytes, llv_err *err)
{
    if (p->kind == LLV_PROJ_LDP || p->kind == LLV_PROJ_LDPV2)
        return llv_mvlm_scratch_bytes(p, n_rows, bytes, err);
    size_t per_buf;
    int n_bufs;
    int rc = rowwise_scratch(p, n_rows, &per_buf, &n_bufs, err);
    if (rc == LLAVA_OK)
        *bytes = per_buf * (size_t)n_bufs * sizeof(float); /* checked above */
    return rc;
}

/* Yi-VL: y = LN4(W3 · GELU(LN1(W0 x + b0)) + b3); h: [n_rows][H]. */
static void forward_mlp_norm(const llava_projector *p, const float *in, int64_t n_rows, float *out, float *h,
                             int n_threads)
{
    const int64_t H = p->layers[0].w.n_out, O = p->n_out;
    llv_matmul(&p->layers[0].w, in, n_rows, h, p->layers[0].b, n_threads);
    for (int64_t r = 0; r < n_rows; r++)
        llv_layernorm(h + r * H, h + r * H, p->ln_w[0], p->ln_b[0], H, p->eps);
    llv_gelu_erf(h, n_rows * H);
    llv_matmul(&p->layers[1].w, h, n_rows, out, p->layers[1].b, n_threads);
    for (int64_t r = 0; r < n_rows; r++)
        llv_layernorm(out + r * O, out + r * O, p->ln_w[1], p->ln_b[1], O, p->eps);
}

int llv_projector_forward(const llava_projector *p, const float *in, int64_t n_rows, float *out, int n_threads,
                          llv_err *err)
{
    return llv_projector_forward_ws(p, in, n_rows, out, n_threads, NULL, err);
}

int llv_projector_forward_ws(const llava_projector *p, const float *in, int64_t n_rows, float *out, int n_threads,
                             void *scratch, llv_err *err)
{
    if (p->kind == LLV_PROJ_LDP || p->kind == LLV_PROJ_LDPV2)
        return llv_mvlm_forward(p, in, n_rows, out, n_threads, scratch, err);
    size_t per_buf;
    int n_bufs;
    int rc = rowwise_scratch(p, n_rows, &per_buf, &n_bufs, err);
    if (rc != LLAVA_OK)
        return rc;
    float *mem = scratch;
    if (n_bufs > 0 && !mem && !(mem = llv_malloc_aligned(per_buf * (size_t)n_bufs * sizeof(float))))
        return llv_fail(err, LLAVA_E_NOMEM, "projector: out of memory for %zu bytes",
                        per_buf * (size_t)n_bufs * sizeof(float));
    if (p->kind == LLV_PROJ_MLP_NORM) {
        forward_mlp_norm(p, in, n_rows, out, mem, n_threads);
    } else {
        /* ping-pong between the hidden buffers, the last layer into out */
        float *buf[2] = { mem, n_bufs > 1 ? mem + per_buf : NULL };
        const float *x = in;
        for (int i = 0; i < p->n_layers; i++) {
            const llv_proj_layer *l = &p->layers[i];
            bool last = i + 1 == p->n_layers;
            float *y = last ? out : buf[i % 2];
            llv_matmul(&l->w, x, n_rows, y, l->b, n_threads);
            if (!last)
                llv_gelu_erf(y, n_rows * l->w.n_out);
            x = y;
        }
    }
    if (mem != scratch)
        llv_free_aligned(mem);
    return LLAVA_OK;
}
