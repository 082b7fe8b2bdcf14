/*
 * api_vision.c - public entry points for the vision encoder, the projector
 * and image encoding. (Embedding functions: embed.c.)
 */
#include "embed.h"
#include "image.h"
#include "vision.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- loading ------------------------------------------------------------ */

typedef int (*from_gguf_fn)(llv_gguf *g, const llava_params *params, void **out, llv_err *err);

static int vision_from(llv_gguf *g, const llava_params *params, void **out, llv_err *err)
{
    return llv_vision_from_gguf(g, params, (llava_vision **)out, err);
}

static int projector_from(llv_gguf *g, const llava_params *params, void **out, llv_err *err)
{
    return llv_projector_from_gguf(g, params, (llava_projector **)out, err);
}

/* Open a GGUF from a path or memory and build an object from it. */
static int load_common(const char *path, const void *data, size_t size, const llava_params *params,
                       from_gguf_fn build, void **out, char *errbuf, size_t errbuf_size)
{
    llv_err err;
    llv_err_clear(&err);
    llv_gguf *g = NULL;
    int rc;
    if (out)
        *out = NULL;
    if (!out || (path == NULL && data == NULL)) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "%s is NULL", !out ? "out" : path ? "data" : "path/data");
        goto done;
    }
    if (params && !llv_handle_is(params, LLV_MAGIC_PARAMS)) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "params is not a llava_params handle");
        goto done;
    }
    int use_mmap = (int)llv_param_int(params, LLAVA_PARAM_USE_MMAP);
    rc = path ? llv_gguf_open_file(path, use_mmap, &g, &err)
              : llv_gguf_open_memory(data, size, !use_mmap, &g, &err);
    if (rc != LLAVA_OK)
        goto done;
    if ((rc = build(g, params, out, &err)) != LLAVA_OK)
        llv_gguf_close(g);
done:
    if (rc != LLAVA_OK)
        llv_err_to_buf(&err, errbuf, errbuf_size);
    else if (errbuf && errbuf_size)
        errbuf[0] = '\0';
    return rc;
}

LLAVA_API int llava_load_vision(const char *path, const llava_params *params, llava_vision **out, char *errbuf,
                                size_t errbuf_size)
{
    if (!path) {
        if (out)
            *out = NULL;
        llv_err e;
        llv_fail(&e, LLAVA_E_INVALID_ARG, "path is NULL");
        llv_err_to_buf(&e, errbuf, errbuf_size);
        return LLAVA_E_INVALID_ARG;
    }
    return load_common(path, NULL, 0, params, vision_from, (void **)out, errbuf, errbuf_size);
}

LLAVA_API int llava_load_vision_from_memory(const void *data, size_t size, const llava_params *params,
                                            llava_vision **out, char *errbuf, size_t errbuf_size)
{
    return load_common(NULL, data, size, params, vision_from, (void **)out, errbuf, errbuf_size);
}

LLAVA_API void llava_free_vision(llava_vision *v)
{
    if (llv_handle_is(v, LLV_MAGIC_VISION))
        llv_vision_destroy(v);
}

LLAVA_API int llava_load_projector(const char *path, const llava_params *params, llava_projector **out,
                                   char *errbuf, size_t errbuf_size)
{
    if (!path) {
        if (out)
            *out = NULL;
        llv_err e;
        llv_fail(&e, LLAVA_E_INVALID_ARG, "path is NULL");
        llv_err_to_buf(&e, errbuf, errbuf_size);
        return LLAVA_E_INVALID_ARG;
    }
    return load_common(path, NULL, 0, params, projector_from, (void **)out, errbuf, errbuf_size);
}

LLAVA_API int llava_load_projector_from_memory(const void *data, size_t size, const llava_params *params,
                                               llava_projector **out, char *errbuf, size_t errbuf_size)
{
    return load_common(NULL, data, size, params, projector_from, (void **)out, errbuf, errbuf_size);
}

LLAVA_API void llava_free_projector(llava_projector *p)
{
    if (llv_handle_is(p, LLV_MAGIC_PROJECTOR))
        llv_projector_destroy(p);
}

/* ---- facts -------------------------------------------------------------- */

LLAVA_API int32_t llava_vision_image_size(const llava_vision *v)
{
    return llv_handle_is(v, LLV_MAGIC_VISION) ? v->hp.image_size : 0;
}

LLAVA_API int32_t llava_vision_n_tokens(const llava_vision *v)
{
    return llv_handle_is(v, LLV_MAGIC_VISION) ? v->hp.n_patches : 0;
}

LLAVA_API int32_t llava_projector_n_embd(const llava_projector *p)
{
    return llv_handle_is(p, LLV_MAGIC_PROJECTOR) ? p->n_out : 0;
}

/* ---- encoding ----------------------------------------------------------- */

/* image -> square RGB (pad + Pillow bicubic), S x S x 3 bytes in a new
 * buffer (*square, llv_free); normalized to planar floats after. */
static int preprocess_square(const llava_vision *v, const llava_image *image, uint8_t **square, llv_err *err)
{
    const int32_t S = v->hp.image_size;
    size_t bytes;
    *square = NULL;
    if (llv_mul3_overflow((size_t)S, (size_t)S, 3, &bytes))
        return llv_fail(err, LLAVA_E_INTERNAL, "vision: image size overflow");
    uint8_t *sq = llv_malloc(bytes);
    if (!sq)
        return llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for the %dx%d input", S, S);
    uint8_t pad[3];
    llv_vision_pad_colour(v, pad);
    int rc = llv_preprocess_pad_resize(image->rgb, image->width, image->height, pad, S, sq, err);
    if (rc != LLAVA_OK) {
        llv_free(sq);
        return rc;
    }
    *square = sq;
    return LLAVA_OK;
}

/* Fail if any output value is not finite (broken weights). */
static int check_finite(const llava_embed *e, llv_err *err)
{
    size_t n = (size_t)e->n_tokens * (size_t)e->n_embd;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(e->data[i]))
            return llv_fail(err, LLAVA_E_FORMAT, "vision: the encoder produced a non-finite value at token %zu "
                            "(broken weights?)", i / (size_t)e->n_embd);
    return LLAVA_OK;
}

/* LLaVA-1.5 path: one square image (pad + resize), tower, projector.
 *
 * Memory: besides the embedding, the encode uses one scratch block,
 *   [ feat: n_patches x width | tower workspace (the planar input inside it) ]
 *                             | projector scratch (after the tower)        ]
 * (without feat when the features are the tower's last hidden state: they
 * are then read in place from its workspace, the projector's scratch after
 * them), which is most of its peak RSS next to the mapped weights; the resize's own
 * scratch (preprocess.c) comes and goes before the block exists. (Why
 * llv_malloc_aligned avoids posix_memalign, which grew the heap by a block
 * per encode: lib/error.c.) */
static int encode_single(const llava_vision *v, const llava_projector *p, const llava_image *image, int n_threads,
                         const llv_callbacks *cb, llava_embed **out, llv_err *err)
{
    const llv_vision_hparams *hp = &v->hp;
    const int32_t width = llv_vision_out_width(v);
    const int64_t n_out_rows = llv_projector_out_rows(p, hp->n_patches);
    if (n_out_rows < 1 || n_out_rows > INT32_MAX)
        return llv_fail(err, LLAVA_E_MISMATCH, "projector %s cannot take the %d tokens of this vision encoder "
                        "(it needs a square grid with an even side)", p->type_name, hp->n_patches);

    /* feat: a separate part of the block, or the tower's own last hidden
     * state in its workspace; proj_off: where the projector's scratch starts */
    size_t feat_bytes = 0, feat_off = 0, proj_off = 0, ws_bytes, proj_bytes, bytes;
    int rc;
    if ((rc = llv_vision_workspace_bytes(v, 1, n_threads, &ws_bytes, err)) != LLAVA_OK ||
        (rc = llv_projector_scratch_bytes(p, hp->n_patches, &proj_bytes, err)) != LLAVA_OK)
        return rc;
    bool in_place = llv_vision_features_in_workspace(v, &feat_off, &proj_off);
    if (!in_place && (llv_mul3_overflow((size_t)hp->n_patches, (size_t)width, sizeof(float), &feat_bytes) ||
                      llv_add_overflow(feat_bytes, 63, &feat_bytes)))
        return llv_fail(err, LLAVA_E_NOMEM, "vision: buffers are too large");
    feat_bytes = feat_bytes / 64 * 64; /* the workspace stays 64-byte aligned */
    if (llv_add_overflow(proj_off, proj_bytes, &proj_bytes) ||
        llv_add_overflow(feat_bytes, LLV_MAX(ws_bytes, proj_bytes), &bytes))
        return llv_fail(err, LLAVA_E_NOMEM, "vision: buffers are too large");

    llava_embed *e = NULL;
    unsigned char *mem = NULL;
    uint8_t *square = NULL;
    if ((rc = preprocess_square(v, image, &square, err)) != LLAVA_OK)
        goto done;
    if (!(mem = llv_malloc_aligned(bytes))) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for %zu bytes of encoder buffers", bytes);
        goto done;
    }
    unsigned char *ws = mem + feat_bytes; /* 64-byte aligned */
    float *feat = (float *)(in_place ? ws + feat_off : ws - feat_bytes);
    float *planar = llv_vision_workspace_planar(v, 1, n_threads, ws);
    if (!planar) { /* cannot happen: the workspace size was computed */
        rc = llv_fail(err, LLAVA_E_INTERNAL, "vision: no room for the input image");
        goto done;
    }
    llv_normalize_planar(square, hp->image_size, hp->mean, hp->std, planar);
    llv_free(square);
    square = NULL;
    if ((rc = llv_vision_forward_ws(v, planar, 1, feat, n_threads, cb, 0.0f, 1.0f, ws, err)) != LLAVA_OK)
        goto done;
    if (llv_should_abort(cb)) {
        rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the abort callback before the projector");
        goto done;
    }
    /* the tower's workspace (but feat) is free now: the projector's scratch */
    if ((rc = llv_embed_new((int32_t)n_out_rows, p->n_out, &e, err)) != LLAVA_OK ||
        (rc = llv_projector_forward_ws(p, feat, hp->n_patches, e->data, n_threads, ws + proj_off, err)) != LLAVA_OK ||
        (rc = check_finite(e, err)) != LLAVA_OK)
        goto done;
    *out = e;
    e = NULL;
done:
    llv_free(square);
    llv_free_aligned(mem);
    llava_free_embed(e);
    return rc;
}

/* Tiles per batched tower pass: as many as fit this much scratch memory. */
#define LLV_ANYRES_BATCH_BYTES ((size_t)256 << 20)
static int forced_batch; /* tests: > 0 forces this many images per pass */

void llv_anyres_force_batch(int n)
{
    __atomic_store_n(&forced_batch, n > 0 ? n : 0, __ATOMIC_RELAXED);
}

/* LLaVA-1.6 path (anyres.c): base + tiles through the tower in batches,
 * one projector pass over all tokens, then the reference token layout. */
static int encode_anyres(const llava_vision *v, const llava_projector *p, const llava_image *image, int n_threads,
                         const llv_callbacks *cb, llava_embed **out, llv_err *err)
{
    const llv_vision_hparams *hp = &v->hp;
    const int32_t width = llv_vision_out_width(v);
    if (!llv_projector_rowwise(p))
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "any-resolution images (image_grid_pinpoints) with the "
                        "token-reducing projector '%s' are not supported", p->type_name);
    if (v->anyres.merge == LLV_MERGE_SPATIAL_UNPAD && v->anyres.newline_len != p->n_out)
        return llv_fail(err, LLAVA_E_MISMATCH, "image_newline has %d values but the projector produces %d",
                        v->anyres.newline_len, p->n_out);
    llv_anyres_plan plan;
    int rc = llv_anyres_layout(v, image->width, image->height, &plan, err);
    if (rc != LLAVA_OK)
        return rc;
    const int32_t n_img = 1 + plan.grid_w * plan.grid_h;
    const size_t plane3 = 3 * (size_t)hp->image_size * (size_t)hp->image_size;
    const size_t tok = (size_t)hp->n_patches;
    size_t planar_bytes, feat_bytes, proj_bytes;
    if (llv_mul3_overflow((size_t)n_img, plane3, sizeof(float), &planar_bytes) ||
        llv_mul3_overflow((size_t)n_img * tok, (size_t)width, sizeof(float), &feat_bytes) ||
        llv_mul3_overflow((size_t)n_img * tok, (size_t)p->n_out, sizeof(float), &proj_bytes))
        return llv_fail(err, LLAVA_E_NOMEM, "vision: buffers for %d tiles are too large", n_img - 1);

    llava_embed *e = NULL;
    float *feat = NULL, *proj = NULL;
    float *planar = llv_malloc_aligned(planar_bytes);
    if (!planar) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for %d input images", n_img);
        goto done;
    }
    if ((rc = llv_anyres_preprocess(v, image->rgb, image->width, image->height, &plan, planar, err)) != LLAVA_OK)
        goto done;
    if (!(feat = llv_malloc_aligned(feat_bytes))) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for the features");
        goto done;
    }
    size_t per = llv_vision_bytes_per_image(v);
    int32_t batch = (int32_t)LLV_MAX((size_t)1, LLV_MIN((size_t)n_img, LLV_ANYRES_BATCH_BYTES / LLV_MAX(per, 1)));
    int forced = __atomic_load_n(&forced_batch, __ATOMIC_RELAXED);
    if (forced > 0)
        batch = LLV_MIN(forced, n_img);
    /* Progress: the tower gets 95%, split by images. */
    for (int32_t i = 0; i < n_img; i += batch) {
        int32_t nb = LLV_MIN(batch, n_img - i);
        if (llv_should_abort(cb)) {
            rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the abort callback before tile %d", i);
            goto done;
        }
        rc = llv_vision_forward_batch(v, planar + (size_t)i * plane3, nb, feat + (size_t)i * tok * (size_t)width,
                                      n_threads, cb, 0.95f * (float)i / (float)n_img,
                                      0.95f * (float)nb / (float)n_img, err);
        if (rc != LLAVA_OK)
            goto done;
    }
    llv_free_aligned(planar);
    planar = NULL;
    if (llv_should_abort(cb)) {
        rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the abort callback before the projector");
        goto done;
    }
    if (!(proj = llv_malloc_aligned(proj_bytes))) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for the projected tiles");
        goto done;
    }
    if ((rc = llv_projector_forward(p, feat, (int64_t)n_img * (int64_t)tok, proj, n_threads, err)) != LLAVA_OK ||
        (rc = llv_embed_new(plan.n_tokens, p->n_out, &e, err)) != LLAVA_OK)
        goto done;
    llv_anyres_merge(v, &plan, proj, p->n_out, e->data);
    if ((rc = check_finite(e, err)) != LLAVA_OK)
        goto done;
    *out = e;
    e = NULL;
done:
    llava_free_embed(e);
    llv_free_aligned(proj);
    llv_free_aligned(feat);
    llv_free_aligned(planar);
    return rc;
}

static int encode(const llava_vision *v, const llava_projector *p, const llava_image *image,
                  const llava_params *params, llava_embed **out, llv_err *err)
{
    const int32_t width = llv_vision_out_width(v);
    if (p->n_in != width)
        return llv_fail(err, LLAVA_E_MISMATCH, "projector input width %d does not match the vision encoder's "
                        "output width %d", p->n_in, width);
    if (!image->rgb || image->width < 1 || image->height < 1)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "image has no pixels");

    int n_threads = params ? llv_resolve_threads(llv_param_int(params, LLAVA_PARAM_N_THREADS)) : v->n_threads;
    llv_callbacks cb = params ? llv_param_callbacks(params) : v->cb;
    int rc = v->anyres.n_pinpoints > 0 ? encode_anyres(v, p, image, n_threads, &cb, out, err)
                                       : encode_single(v, p, image, n_threads, &cb, out, err);
    if (rc == LLAVA_OK && llv_report_progress(&cb, 1.0f)) {
        llava_free_embed(*out);
        *out = NULL;
        rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the progress callback");
    }
    return rc;
}

LLAVA_API int32_t llava_vision_n_tokens_for(const llava_vision *v, const llava_projector *p, int32_t width,
                                            int32_t height)
{
    if (!llv_handle_is(v, LLV_MAGIC_VISION) || !llv_handle_is(p, LLV_MAGIC_PROJECTOR) || width < 1 || height < 1)
        return 0;
    if (p->n_in != llv_vision_out_width(v))
        return 0;
    if (v->anyres.n_pinpoints == 0) {
        int64_t n = llv_projector_out_rows(p, v->hp.n_patches);
        return n > 0 && n <= INT32_MAX ? (int32_t)n : 0;
    }
    if (!llv_projector_rowwise(p))
        return 0;
    llv_anyres_plan plan;
    llv_err err;
    llv_err_clear(&err);
    return llv_anyres_layout(v, width, height, &plan, &err) == LLAVA_OK ? plan.n_tokens : 0;
}

LLAVA_API int llava_encode_image(const llava_vision *v, const llava_projector *p, llava_image *image,
                                 const llava_params *params, llava_embed **out)
{
    if (out)
        *out = NULL;
    if (!llv_handle_is(image, LLV_MAGIC_IMAGE))
        return LLAVA_E_INVALID_ARG;
    llv_err *err = &image->hdr.err;
    llv_err_clear(err);
    if (!out)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "llava_encode_image: out is NULL");
    if (!llv_handle_is(v, LLV_MAGIC_VISION))
        return llv_fail(err, LLAVA_E_INVALID_ARG, "llava_encode_image: vision is not a loaded vision encoder");
    if (!llv_handle_is(p, LLV_MAGIC_PROJECTOR))
        return llv_fail(err, LLAVA_E_INVALID_ARG, "llava_encode_image: projector is not a loaded projector");
    if (params && !llv_handle_is(params, LLV_MAGIC_PARAMS))
        return llv_fail(err, LLAVA_E_INVALID_ARG, "llava_encode_image: params is not a llava_params handle");
    return encode(v, p, image, params, out, err);
}
