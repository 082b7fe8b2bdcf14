/*
 * anyres.c - LLaVA-1.6 (NeXT) any-resolution images, following the
 * reference LLaVA-NeXT code step by step (spec §5.3, Decision 5), not
 * llama.cpp's variant (§5.2: tiles first, no unpad, no newline):
 *
 *   1. best pinpoint (w,h) = select_best_resolution(W,H)
 *   2. resize the image (Pillow bicubic) to fit (w,h), keeping the aspect
 *      ratio, and paste it centred on a BLACK w x h canvas
 *   3. S x S tiles of the canvas in raster order (S = image_size)
 *   4. base image = the original resized straight to S x S (no padding)
 *   5. [base, tiles...] -> tower -> projector: G*G tokens each (G = S/P)
 *   6. merge (spatial_unpad): the tiles' tokens as one (gh*G) x (gw*G) map
 *      in raster order of the canvas, rows/columns that only hold padding
 *      removed (unpad with the ORIGINAL size), image_newline after every
 *      row; output = base tokens, then the map row by row.
 *      "spatial": the same map without unpad/newline; "flat": base, then
 *      each tile's tokens tile after tile.
 *
 * Floating-point expressions follow the Python reference in the same order
 * (double precision, truncation by int()), so edge cases land identically.
 */
#include "image.h"
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- loading ------------------------------------------------------------ */

static bool str_is(llv_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static int read_pinpoints(const llv_gguf *g, const llava_vision *v, llv_anyres *a, llv_err *err)
{
    const char *key = "clip.vision.image_grid_pinpoints";
    const int32_t S = v->hp.image_size;
    int64_t idx = llv_gguf_find_key(g, key);
    if (idx < 0)
        return LLAVA_OK;
    int et = llv_gguf_kv_type(g, idx) == LLV_GGUF_ARRAY ? llv_gguf_arr_type(g, idx) : -1;
    if (et != LLV_GGUF_INT32 && et != LLV_GGUF_UINT32 && et != LLV_GGUF_INT64 && et != LLV_GGUF_UINT64 &&
        et != LLV_GGUF_INT16 && et != LLV_GGUF_UINT16)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s must be an array of integers", key);
    uint64_t n = llv_gguf_arr_n(g, idx);
    if (n == 0)
        return LLAVA_OK; /* empty = absent */
    if (n % 2 != 0 || n / 2 > LLV_ANYRES_MAX_PINPOINTS)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s has %llu values; expected (width, height) pairs, at most "
                        "%d of them", key, (unsigned long long)n, LLV_ANYRES_MAX_PINPOINTS);
    for (uint64_t i = 0; i < n / 2; i++) {
        int64_t w = llv_gguf_arr_get_int(g, idx, 2 * i), h = llv_gguf_arr_get_int(g, idx, 2 * i + 1);
        /* Tiles are whole S x S crops: the grid is (w/S, h/S) (reference
         * get_anyres_image_grid_shape), so other sizes would lose pixels. */
        if (w < S || h < S || w % S != 0 || h % S != 0 || (w / S) * (h / S) > LLV_ANYRES_MAX_TILES)
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s entry %llu is %lldx%lld; expected multiples of the "
                            "image size %d with at most %d tiles", key, (unsigned long long)i, (long long)w,
                            (long long)h, S, LLV_ANYRES_MAX_TILES);
        a->pinpoints[i][0] = (int32_t)w;
        a->pinpoints[i][1] = (int32_t)h;
    }
    a->n_pinpoints = (int32_t)(n / 2);
    return LLAVA_OK;
}

int llv_anyres_load(const llv_gguf *g, llava_vision *v, llv_err *err)
{
    llv_anyres *a = &v->anyres;
    memset(a, 0, sizeof *a);
    int rc = read_pinpoints(g, v, a, err);
    if (rc != LLAVA_OK || a->n_pinpoints == 0)
        return rc;

    /* image_newline: llama.cpp's legacy converter writes model.image_newline,
     * newer code looks for v.image_newline; accept both. */
    const char *names[] = { "model.image_newline", "v.image_newline" };
    for (int i = 0; i < 2 && !a->newline; i++) {
        const llv_gguf_tensor *t = llv_gguf_find_tensor(g, names[i]);
        if (!t)
            continue;
        if (t->n_dims != 1 || t->ne[0] < 1 || t->ne[0] > LLV_PROJ_MAX_WIDTH)
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s must be a vector of 1..%d values", names[i],
                            LLV_PROJ_MAX_WIDTH);
        if ((rc = llv_vt_vector(g, names[i], true, t->ne[0], &a->newline, err)) != LLAVA_OK)
            return rc;
        a->newline_len = (int32_t)t->ne[0];
    }

    llv_str s;
    if ((rc = llv_gguf_get_str_opt(g, "clip.vision.mm_patch_merge_type", &s, err)) != LLAVA_OK)
        return llv_err_prefix(err, "mmproj");
    if (!s.ptr) {
        /* Absent: every LLaVA-NeXT checkpoint uses spatial_unpad and ships
         * image_newline; without the vector the reference default is flat. */
        a->merge = a->newline ? LLV_MERGE_SPATIAL_UNPAD : LLV_MERGE_FLAT;
    } else if (str_is(s, "spatial_unpad")) {
        a->merge = LLV_MERGE_SPATIAL_UNPAD;
    } else if (str_is(s, "spatial")) {
        a->merge = LLV_MERGE_SPATIAL;
    } else if (str_is(s, "flat")) {
        a->merge = LLV_MERGE_FLAT;
    } else {
        char name[40];
        size_t n = LLV_MIN(s.len, sizeof name - 1);
        for (size_t i = 0; i < n; i++)
            name[i] = (s.ptr[i] >= 0x20 && s.ptr[i] < 0x7f) ? s.ptr[i] : '?';
        name[n] = '\0';
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: mm_patch_merge_type '%s' is not supported (flat, "
                        "spatial, spatial_unpad)", name);
    }
    if (a->merge == LLV_MERGE_SPATIAL_UNPAD && !a->newline)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: mm_patch_merge_type spatial_unpad needs the image_newline "
                        "tensor (model.image_newline), which is missing");
    return LLAVA_OK;
}

/* ---- layout ------------------------------------------------------------- */

int llv_anyres_select(const llv_anyres *a, int32_t width, int32_t height)
{
    /* select_best_resolution: most effective pixels, then least waste,
     * then the first. */
    int best = 0;
    int64_t max_eff = -1, min_waste = 0;
    const double W = width, H = height;
    for (int i = 0; i < a->n_pinpoints; i++) {
        const int64_t w = a->pinpoints[i][0], h = a->pinpoints[i][1];
        double sw = (double)w / W, sh = (double)h / H;
        double scale = sw < sh ? sw : sh;
        int64_t dw = (int64_t)(W * scale), dh = (int64_t)(H * scale);
        int64_t eff = LLV_MIN(dw * dh, (int64_t)width * height);
        int64_t waste = w * h - eff;
        /* The reference starts from max 0 / waste inf: eff 0 still wins
         * over nothing, exactly as max_eff = -1 does here. */
        if (eff > max_eff || (eff == max_eff && waste < min_waste)) {
            best = i;
            max_eff = eff;
            min_waste = waste;
        }
    }
    return best;
}

int llv_anyres_layout(const llava_vision *v, int32_t width, int32_t height, llv_anyres_plan *plan, llv_err *err)
{
    const llv_anyres *a = &v->anyres;
    const int64_t G = v->hp.grid, S = v->hp.image_size;
    memset(plan, 0, sizeof *plan);
    if (a->n_pinpoints < 1)
        return llv_fail(err, LLAVA_E_INTERNAL, "anyres: the mmproj has no image_grid_pinpoints");
    if (width < 1 || height < 1)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "anyres: image size %dx%d", width, height);
    int best = llv_anyres_select(a, width, height);
    plan->best_w = a->pinpoints[best][0];
    plan->best_h = a->pinpoints[best][1];
    plan->grid_w = (int32_t)(plan->best_w / S);
    plan->grid_h = (int32_t)(plan->best_h / S);
    const int64_t cur_w = plan->grid_w * G, cur_h = plan->grid_h * G; /* <= 64 * 256 */
    plan->row0 = 0;
    plan->rows = (int32_t)cur_h;
    plan->col0 = 0;
    plan->cols = (int32_t)cur_w;
    int64_t n = G * G;
    if (a->merge == LLV_MERGE_SPATIAL_UNPAD) {
        /* unpad_image(tensor, original_size) with the reference's float
         * arithmetic; the slice [pad, cur - pad) keeps one extra row/column
         * when the difference is odd. */
        double orig_ratio = (double)width / (double)height, cur_ratio = (double)cur_w / (double)cur_h;
        if (orig_ratio > cur_ratio) {
            double scale = (double)cur_w / (double)width;
            int64_t new_h = (int64_t)((double)height * scale);
            int64_t pad = (cur_h - new_h) / 2; /* new_h <= cur_h here, so >= 0 */
            plan->row0 = (int32_t)pad;
            plan->rows = (int32_t)(cur_h - 2 * pad);
        } else {
            double scale = (double)cur_h / (double)height;
            int64_t new_w = (int64_t)((double)width * scale);
            int64_t pad = (cur_w - new_w) / 2;
            plan->col0 = (int32_t)pad;
            plan->cols = (int32_t)(cur_w - 2 * pad);
        }
        if (plan->rows < 0 || plan->cols < 0) /* only if the float maths went beyond the map */
            return llv_fail(err, LLAVA_E_INTERNAL, "anyres: unpad of %dx%d gave %dx%d", width, height, plan->cols,
                            plan->rows);
        n += (int64_t)plan->rows * (plan->cols + 1);
    } else {
        n += (int64_t)plan->grid_w * plan->grid_h * G * G;
    }
    if (n > INT32_MAX)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "anyres: %lld tokens for one image", (long long)n);
    plan->n_tokens = (int32_t)n;
    return LLAVA_OK;
}

/* ---- preprocessing ------------------------------------------------------ */

int llv_anyres_preprocess(const llava_vision *v, const uint8_t *rgb, int32_t width, int32_t height,
                          const llv_anyres_plan *plan, float *planar, llv_err *err)
{
    const int32_t S = v->hp.image_size;
    const size_t tile_px = (size_t)S * (size_t)S, plane3 = 3 * tile_px;
    const int32_t tw = plan->best_w, th = plan->best_h;

    /* Step 2: resize to fit (reference resize_and_pad_image). */
    double scale_w = (double)tw / width, scale_h = (double)th / height;
    int32_t nw, nh;
    if (scale_w < scale_h) {
        nw = tw;
        nh = (int32_t)LLV_MIN((int64_t)ceil((double)height * scale_w), (int64_t)th);
    } else {
        nh = th;
        nw = (int32_t)LLV_MIN((int64_t)ceil((double)width * scale_h), (int64_t)tw);
    }
    const int32_t px = (tw - nw) / 2, py = (th - nh) / 2;

    size_t fit_bytes;
    if (llv_mul3_overflow((size_t)nw, (size_t)nh, 3, &fit_bytes))
        return llv_fail(err, LLAVA_E_NOMEM, "anyres: resized image too large");
    uint8_t *tile = llv_malloc(plane3);
    uint8_t *fit = llv_malloc(fit_bytes);
    int rc;
    if (!tile || !fit) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "anyres: out of memory for the %dx%d resized image", nw, nh);
        goto done;
    }

    /* Step 4: base image, a plain S x S resize (aspect ratio not kept). */
    if ((rc = llv_resize_bicubic(rgb, width, height, tile, S, S, err)) != LLAVA_OK)
        goto done;
    llv_normalize_planar(tile, S, v->hp.mean, v->hp.std, planar);

    if ((rc = llv_resize_bicubic(rgb, width, height, fit, nw, nh, err)) != LLAVA_OK)
        goto done;
    /* Step 3: tile (tx, ty) = canvas [tx*S, tx*S+S) x [ty*S, ty*S+S); the
     * canvas is black except the resized image at (px, py). */
    for (int32_t ty = 0; ty < plan->grid_h; ty++)
        for (int32_t tx = 0; tx < plan->grid_w; tx++) {
            memset(tile, 0, plane3);
            for (int32_t y = 0; y < S; y++) {
                int32_t fy = ty * S + y - py; /* row in fit */
                if (fy < 0 || fy >= nh)
                    continue;
                int32_t x0 = LLV_MAX(tx * S, px), x1 = LLV_MIN(tx * S + S, px + nw); /* canvas columns */
                if (x0 >= x1)
                    continue;
                memcpy(tile + ((size_t)y * S + (size_t)(x0 - tx * S)) * 3,
                       fit + ((size_t)fy * nw + (size_t)(x0 - px)) * 3, (size_t)(x1 - x0) * 3);
            }
            size_t k = 1 + (size_t)ty * (size_t)plan->grid_w + (size_t)tx;
            llv_normalize_planar(tile, S, v->hp.mean, v->hp.std, planar + k * plane3);
        }
    rc = LLAVA_OK;
done:
    llv_free(tile);
    llv_free(fit);
    return rc;
}

/* ---- merge -------------------------------------------------------------- */

void llv_anyres_merge(const llava_vision *v, const llv_anyres_plan *plan, const float *feat, int32_t C, float *out)
{
    const int64_t G = v->hp.grid, GG = G * G;
    const size_t row_bytes = (size_t)C * sizeof(float);
    const int64_t n_tiles = (int64_t)plan->grid_w * plan->grid_h;

    /* base image first (all merge types) */
    memcpy(out, feat, (size_t)GG * row_bytes);
    float *o = out + GG * C;
    if (v->anyres.merge == LLV_MERGE_FLAT) {
        memcpy(o, feat + GG * C, (size_t)(n_tiles * GG) * row_bytes);
        return;
    }
    /* Map position (r, c) of the full (grid_h*G) x (grid_w*G) map is token
     * (r % G) * G + (c % G) of tile (r / G) * grid_w + c / G. */
    const bool newline = v->anyres.merge == LLV_MERGE_SPATIAL_UNPAD;
    for (int64_t r = plan->row0; r < (int64_t)plan->row0 + plan->rows; r++) {
        for (int64_t c = plan->col0; c < (int64_t)plan->col0 + plan->cols; c++) {
            int64_t tile = (r / G) * plan->grid_w + c / G;
            int64_t tok = (r % G) * G + c % G;
            memcpy(o, feat + ((1 + tile) * GG + tok) * C, row_bytes);
            o += C;
        }
        if (newline) {
            memcpy(o, v->anyres.newline, row_bytes);
            o += C;
        }
    }
}
