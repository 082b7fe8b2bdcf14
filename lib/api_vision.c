/*
 * api_vision.c - public entry points for the vision encoder, the projector
 * and image encoding. (Embedding functions: embed.c.)
 */
#include "embed.h"
#include "image.h"
#include "vision.h"

#include <math.h>
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

/* image -> square RGB (pad + Pillow bicubic) -> planar normalized floats. */
static int preprocess(const llava_vision *v, const llava_image *image, float *planar, llv_err *err)
{
    const int32_t S = v->hp.image_size;
    size_t bytes;
    if (llv_mul3_overflow((size_t)S, (size_t)S, 3, &bytes))
        return llv_fail(err, LLAVA_E_INTERNAL, "vision: image size overflow");
    uint8_t *square = llv_malloc(bytes);
    if (!square)
        return llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for the %dx%d input", S, S);
    uint8_t pad[3];
    llv_vision_pad_colour(v, pad);
    int rc = llv_preprocess_pad_resize(image->rgb, image->width, image->height, pad, S, square, err);
    if (rc == LLAVA_OK)
        llv_normalize_planar(square, S, v->hp.mean, v->hp.std, planar);
    llv_free(square);
    return rc;
}

static int encode(const llava_vision *v, const llava_projector *p, const llava_image *image,
                  const llava_params *params, llava_embed **out, llv_err *err)
{
    const llv_vision_hparams *hp = &v->hp;
    const int32_t width = llv_vision_out_width(v);
    if (p->n_in != width)
        return llv_fail(err, LLAVA_E_MISMATCH, "projector input width %d does not match the vision encoder's "
                        "output width %d", p->n_in, width);
    if (!image->rgb || image->width < 1 || image->height < 1)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "image has no pixels");

    int n_threads = params ? llv_resolve_threads(llv_param_int(params, LLAVA_PARAM_N_THREADS)) : v->n_threads;
    llv_callbacks cb = params ? llv_param_callbacks(params) : v->cb;

    size_t planar_bytes, feat_bytes;
    if (llv_mul3_overflow(3 * (size_t)hp->image_size, (size_t)hp->image_size, sizeof(float), &planar_bytes) ||
        llv_mul3_overflow((size_t)hp->n_patches, (size_t)width, sizeof(float), &feat_bytes))
        return llv_fail(err, LLAVA_E_NOMEM, "vision: buffers are too large");

    llava_embed *e = NULL;
    float *feat = NULL;
    float *planar = llv_malloc_aligned(planar_bytes);
    int rc;
    if (!planar) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for the input image");
        goto done;
    }
    if ((rc = preprocess(v, image, planar, err)) != LLAVA_OK)
        goto done;
    if (!(feat = llv_malloc_aligned(feat_bytes))) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for the features");
        goto done;
    }
    if ((rc = llv_vision_forward(v, planar, feat, n_threads, &cb, err)) != LLAVA_OK)
        goto done;
    llv_free_aligned(planar);
    planar = NULL;
    if (llv_should_abort(&cb)) {
        rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the abort callback before the projector");
        goto done;
    }
    if ((rc = llv_embed_new(hp->n_patches, p->n_out, &e, err)) != LLAVA_OK ||
        (rc = llv_projector_forward(p, feat, hp->n_patches, e->data, n_threads, err)) != LLAVA_OK)
        goto done;
    size_t n = (size_t)e->n_tokens * (size_t)e->n_embd;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(e->data[i])) {
            rc = llv_fail(err, LLAVA_E_FORMAT, "vision: the encoder produced a non-finite value at token %zu "
                          "(broken weights?)", i / (size_t)e->n_embd);
            goto done;
        }
    if (llv_report_progress(&cb, 1.0f)) {
        rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the progress callback");
        goto done;
    }
    *out = e;
    e = NULL;
    rc = LLAVA_OK;
done:
    llava_free_embed(e);
    llv_free_aligned(feat);
    llv_free_aligned(planar);
    return rc;
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
