/*
 * vision.h - the CLIP vision tower and the LLaVA projector loaded from an
 * mmproj GGUF file (shared/spec/llava-format.md §3, §4).
 *
 * Files:
 *   vision_tensors.c  shape-checked access to mmproj tensors (shared helpers)
 *   vision_load.c     hyperparameters + tower tensors -> struct llava_vision
 *   vision_forward.c  the tower's forward pass (patches -> features)
 *   projector.c       projector loading and forward (features -> LM width)
 *   projector_mvlm.c  MobileVLM projectors ldp / ldpv2 (token-reducing)
 *   anyres.c          LLaVA-1.6 any-resolution layout, tiles and merge
 *   embed.c           the embedding object and its blob format
 *   api_vision.c      the public llava_* entry points
 *
 * Semantics follow the reference LLaVA (spec "Decisions"): class token first
 * with position row 0, every stored block is run (or up to
 * clip.vision.feature_layer), quick-GELU unless clip.use_gelu, CLS dropped.
 */
#ifndef LLV_VISION_H
#define LLV_VISION_H

#include "gguf.h"
#include "kernels.h"
#include "params.h"

/* Sanity caps on hyperparameters, checked before anything is allocated. They
 * are far above every real CLIP/SigLIP tower (336 px, D=1024, 16 heads, FFN
 * 4096, 24 blocks) but keep every size computation small. */
#define LLV_VISION_MAX_IMAGE     4096    /* image side in pixels */
#define LLV_VISION_MAX_PATCHES   65536   /* (image/patch)^2 */
#define LLV_VISION_MAX_EMBD      16384   /* D */
#define LLV_VISION_MAX_FF        262144  /* FFN width */
#define LLV_VISION_MAX_LAYERS    1024    /* block_count */
#define LLV_VISION_MAX_HEAD_DIM  1024
#define LLV_VISION_MAX_FEATURES  16      /* entries of clip.vision.feature_layer */
#define LLV_PROJ_MAX_LAYERS      8       /* linear layers mm.0, mm.2, mm.4, ... */
#define LLV_PROJ_MAX_WIDTH       262144  /* any projector layer width */
#define LLV_ANYRES_MAX_PINPOINTS 64      /* (w,h) candidates of image_grid_pinpoints */
#define LLV_ANYRES_MAX_TILES     64      /* tiles of one pinpoint (grid_w * grid_h) */

enum llv_act {
    LLV_ACT_QUICK_GELU = 0, /* x*sigmoid(1.702x): CLIP (default) */
    LLV_ACT_GELU       = 1, /* clip.use_gelu: exact erf GELU (HF "gelu"; RC uses the tanh form) */
    LLV_ACT_SILU       = 2  /* clip.use_silu */
};

typedef struct llv_vision_hparams {
    int32_t image_size;    /* side of the square input, pixels */
    int32_t patch_size;
    int32_t grid;          /* image_size / patch_size */
    int32_t n_patches;     /* grid^2 = image tokens per image */
    int32_t n_pos;         /* sequence length: n_patches + has_cls */
    bool    has_cls;       /* v.class_embd present (CLIP) */
    int32_t n_embd;        /* D */
    int32_t n_ff;
    int32_t n_layer;       /* stored blocks */
    int32_t n_head;
    int32_t head_dim;
    int32_t n_run;         /* blocks actually run */
    float   eps;
    float   mean[3], std[3];
    int     act;           /* enum llv_act */
    /* Hidden-state indices concatenated (along the width) as the output:
     * 0 = encoder input after pre-LN, k = output of block k-1. Without
     * clip.vision.feature_layer: one entry, n_layer. A stored post-LN is
     * applied to the last computed state (n_run) only. */
    int32_t n_feature;
    int32_t feature[LLV_VISION_MAX_FEATURES];
    bool    explicit_features; /* came from clip.vision.feature_layer */
} llv_vision_hparams;

/* One pre-norm transformer block. Vectors are owned f32 copies (NULL = no
 * bias); matrices point into the GGUF mapping. */
typedef struct llv_vision_block {
    float     *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    llv_weight q, k, v, o;
    float     *q_b, *k_b, *v_b, *o_b;
    llv_weight fc1, fc2;       /* fc1: D -> F (up), fc2: F -> D (down) */
    float     *fc1_b, *fc2_b;
} llv_vision_block;

/* clip.vision.mm_patch_merge_type (spec §5.3 step 6). */
enum llv_merge {
    LLV_MERGE_FLAT          = 0, /* base then tiles, tile by tile, nothing added */
    LLV_MERGE_SPATIAL       = 1, /* base then the tiles' patches in raster order */
    LLV_MERGE_SPATIAL_UNPAD = 2  /* raster order, unpadded, image_newline after each row */
};

/* LLaVA-1.6 any-resolution settings; n_pinpoints == 0: not an anyres file. */
typedef struct llv_anyres {
    int32_t n_pinpoints;
    int32_t pinpoints[LLV_ANYRES_MAX_PINPOINTS][2]; /* (w, h), multiples of image_size */
    int     merge;                                  /* enum llv_merge */
    float  *newline;                                /* owned [newline_len], or NULL */
    int32_t newline_len;
} llv_anyres;

/* Where the tokens of one image go (llv_anyres_layout). Feature-map units
 * are patches: the full tiled map is (grid_h*G) x (grid_w*G), G = grid. */
typedef struct llv_anyres_plan {
    int32_t best_w, best_h;     /* chosen pinpoint, pixels */
    int32_t grid_w, grid_h;     /* tiles */
    int32_t row0, rows;         /* kept rows of the full map (unpad) */
    int32_t col0, cols;         /* kept columns */
    int32_t n_tokens;           /* base + merged grid (+ newlines) */
} llv_anyres_plan;

struct llava_vision {
    llv_handle         hdr;
    llv_gguf          *gguf;        /* owns the mapping the weights point into */
    llv_vision_hparams hp;
    llv_weight         patch_w;     /* n_in = 3*P*P in (c, ky, kx) order, n_out = D */
    float             *patch_b;     /* optional */
    float             *cls;         /* [D] or NULL */
    float             *pos;         /* [n_pos][D] */
    float             *pre_ln_w, *pre_ln_b;
    float             *post_ln_w, *post_ln_b;
    llv_vision_block  *blocks;      /* n_layer */
    llv_anyres         anyres;      /* LLaVA-1.6 settings (n_pinpoints 0 = none) */
    int                n_threads;   /* from the load params, used when encode gets NULL params */
    llv_callbacks      cb;
};

enum llv_proj_kind {
    LLV_PROJ_MLP      = 0, /* mm.0 -> GELU(erf) -> mm.2 [-> GELU -> mm.4 ...] */
    LLV_PROJ_LINEAR   = 1, /* mm.0 only, no activation (LLaVA-1) */
    LLV_PROJ_MLP_NORM = 2, /* Yi-VL: mm.0 -> LN(mm.1) -> GELU -> mm.3 -> LN(mm.4) */
    LLV_PROJ_LDP      = 3, /* MobileVLM v1 (projector_mvlm.c) */
    LLV_PROJ_LDPV2    = 4  /* MobileVLM v2 (projector_mvlm.c) */
};


typedef struct llv_proj_layer {
    llv_weight w;
    float     *b;          /* owned, may be NULL */
} llv_proj_layer;

/* MobileVLM LDP block (torchvision-style inverted residual without
 * expansion): depthwise 3x3 conv (stride s, pad 1, no bias) -> LN ->
 * hardswish -> squeeze-excite (mean -> fc1 -> ReLU -> fc2 -> hardsigmoid,
 * scales channels) -> pointwise conv (no bias) -> LN [-> + input if s == 1]. */
typedef struct llv_ldp_block {
    float         *dw;             /* [C][3][3] */
    float         *ln0_w, *ln0_b;  /* [C] */
    llv_proj_layer fc1, fc2;       /* C -> S, S -> C (with biases) */
    llv_proj_layer pw;             /* C -> C, no bias */
    float         *ln1_w, *ln1_b;
    int            stride;
} llv_ldp_block;

struct llava_projector {
    llv_handle     hdr;
    llv_gguf      *gguf;
    int            kind;   /* enum llv_proj_kind */
    char           type_name[32];
    int32_t        n_layers;
    llv_proj_layer layers[LLV_PROJ_MAX_LAYERS];
    float         *ln_w[2], *ln_b[2]; /* MLP_NORM: LN after layers 0 and 1 (mm.1, mm.4) */
    float          eps;    /* LayerNorm epsilon (the file's vision eps, default 1e-5) */
    llv_ldp_block  ldp[2]; /* LDP: the two blocks after the MLP */
    float         *peg_w, *peg_b; /* LDPv2: depthwise 3x3 PEG [C][3][3] and bias [C] */
    int32_t        n_in;   /* vision width it expects */
    int32_t        n_out;  /* LM width it produces */
    int            n_threads;
    llv_callbacks  cb;
};

/* ---- shared tensor helpers (vision_tensors.c) ---- */

/* Find `name`, check its shape against ne_want[0..n_dims-1] (dims beyond the
 * file's n_dims count as 1). required=false: *out = NULL and LLAVA_OK when
 * absent. Errors name the tensor and both shapes (LLAVA_E_FORMAT). */
LLV_INTERNAL int llv_vt_find(const llv_gguf *g, const char *name, bool required, int n_dims,
                             const int64_t *ne_want, const llv_gguf_tensor **out, llv_err *err);
/* A 1-D tensor of n values as an owned f32 copy (llv_malloc; NULL if absent
 * and not required). Any float or weight-capable type; must be finite. */
LLV_INTERNAL int llv_vt_vector(const llv_gguf *g, const char *name, bool required, int64_t n,
                               float **out, llv_err *err);
/* A 2-D matrix [n_in, n_out] as a weight view into the mapping. */
LLV_INTERNAL int llv_vt_matrix(const llv_gguf *g, const char *name, bool required, int64_t n_in,
                               int64_t n_out, llv_weight *out, bool *present, llv_err *err);
/* Weight view of an already found tensor with n_in = ne0*ne1*.. up to
 * dims_in and n_out = the rest (e.g. the 4-D patch conv). */
LLV_INTERNAL int llv_vt_weight_of(const llv_gguf_tensor *t, int64_t n_in, int64_t n_out,
                                  llv_weight *out, llv_err *err);
/* Format a shape "[a,b,c]" into buf. */
LLV_INTERNAL void llv_vt_shape_str(char *buf, size_t size, int n_dims, const int64_t *ne);

/* ---- vision tower ---- */

/* Build a vision encoder from an open mmproj. On success the encoder owns g;
 * on failure g is left open (the caller closes it). */
LLV_INTERNAL int llv_vision_from_gguf(llv_gguf *g, const llava_params *params, llava_vision **out, llv_err *err);
LLV_INTERNAL void llv_vision_destroy(llava_vision *v);
/* Width of the tower output per image token (D times the number of
 * requested hidden states). */
LLV_INTERNAL int32_t llv_vision_out_width(const llava_vision *v);
/* Forward pass: planar normalized image [3][S][S] (S = image_size) ->
 * features [n_patches][out_width]. Checks the abort callback before every
 * block and reports progress after each one, both on the calling thread. */
LLV_INTERNAL int llv_vision_forward(const llava_vision *v, const float *planar, float *features,
                                    int n_threads, const llv_callbacks *cb, llv_err *err);
/* The same for n_images images at once ([n][3][S][S] -> [n][n_patches][W]):
 * every GEMM runs over all images' rows, attention per image. Abort is
 * checked before every block; progress reported as prog0 + prog_span *
 * (fraction of this call). */
LLV_INTERNAL int llv_vision_forward_batch(const llava_vision *v, const float *planar, int32_t n_images,
                                          float *features, int n_threads, const llv_callbacks *cb, float prog0,
                                          float prog_span, llv_err *err);
/* The same with a caller-provided workspace of llv_vision_workspace_bytes
 * (64-byte aligned; NULL: allocated and freed inside). */
LLV_INTERNAL int llv_vision_forward_ws(const llava_vision *v, const float *planar, int32_t n_images, float *features,
                                       int n_threads, const llv_callbacks *cb, float prog0, float prog_span,
                                       void *ws, llv_err *err);
/* Bytes of the workspace of a forward over n_images images on n_threads
 * threads (LLAVA_E_NOMEM if too large to count). */
LLV_INTERNAL int llv_vision_workspace_bytes(const llava_vision *v, int32_t n_images, int n_threads, size_t *bytes,
                                            llv_err *err);
/* Where in such a workspace the planar input ([n][3][S][S]) may be written
 * before llv_vision_forward_ws (it is read before that memory is reused),
 * so that the input costs no memory of its own; NULL if too large. */
LLV_INTERNAL float *llv_vision_workspace_planar(const llava_vision *v, int32_t n_images, int n_threads, void *ws);
/* Whether the features of a one-image llv_vision_forward_ws may be read in
 * place from its workspace (one requested hidden state, the last): then they
 * are at byte *feat_offset of it (pass that as features), and the memory
 * from byte *feat_end on is free once the forward has returned. */
LLV_INTERNAL bool llv_vision_features_in_workspace(const llava_vision *v, size_t *feat_offset, size_t *feat_end);
/* Scratch bytes one image needs in a batched forward (for batch sizing). */
LLV_INTERNAL size_t llv_vision_bytes_per_image(const llava_vision *v);

/* ---- projector ---- */

LLV_INTERNAL int llv_projector_from_gguf(llv_gguf *g, const llava_params *params, llava_projector **out,
                                         llv_err *err);
LLV_INTERNAL void llv_projector_destroy(llava_projector *p);
/* in [n_rows][n_in] -> out [llv_projector_out_rows(p, n_rows)][n_out].
 * Row-wise projectors (mlp, linear, Yi-VL) take any rows; ldp/ldpv2 take
 * one image: a square grid of n_rows tokens with an even side. */
LLV_INTERNAL int llv_projector_forward(const llava_projector *p, const float *in, int64_t n_rows, float *out,
                                       int n_threads, llv_err *err);
/* The same with caller-provided scratch of llv_projector_scratch_bytes
 * (64-byte aligned, may be NULL when that is 0; NULL otherwise: allocated inside). */
LLV_INTERNAL int llv_projector_forward_ws(const llava_projector *p, const float *in, int64_t n_rows, float *out,
                                          int n_threads, void *scratch, llv_err *err);
/* Scratch bytes of a projector forward over n_rows rows (LLAVA_E_NOMEM if too large). */
LLV_INTERNAL int llv_projector_scratch_bytes(const llava_projector *p, int64_t n_rows, size_t *bytes, llv_err *err);
/* Output tokens for n_rows input tokens (one image); 0 if not a valid input. */
LLV_INTERNAL int64_t llv_projector_out_rows(const llava_projector *p, int64_t n_rows);
/* Whether the projector maps each token on its own (true for mlp/linear/Yi-VL). */
LLV_INTERNAL bool llv_projector_rowwise(const llava_projector *p);

/* ---- MobileVLM projectors (projector_mvlm.c) ---- */
LLV_INTERNAL int llv_mvlm_load(const llv_gguf *g, llava_projector *p, llv_err *err);
LLV_INTERNAL void llv_mvlm_free(llava_projector *p);
/* scratch: llv_mvlm_scratch_bytes bytes (NULL: allocated inside). */
LLV_INTERNAL int llv_mvlm_forward(const llava_projector *p, const float *in, int64_t n_rows, float *out,
                                  int n_threads, void *scratch, llv_err *err);
LLV_INTERNAL int llv_mvlm_scratch_bytes(const llava_projector *p, int64_t n_rows, size_t *bytes, llv_err *err);

/* ---- LLaVA-1.6 any resolution (anyres.c) ---- */

/* Read image_grid_pinpoints, mm_patch_merge_type and the image_newline
 * tensor (model.image_newline or v.image_newline) into v->anyres. */
LLV_INTERNAL int llv_anyres_load(const llv_gguf *g, llava_vision *v, llv_err *err);
/* Reference select_best_resolution: index of the chosen pinpoint. */
LLV_INTERNAL int llv_anyres_select(const llv_anyres *a, int32_t width, int32_t height);
/* Token layout of a width x height image (v must have pinpoints). */
LLV_INTERNAL int llv_anyres_layout(const llava_vision *v, int32_t width, int32_t height, llv_anyres_plan *plan,
                                   llv_err *err);
/* Preprocess: planar normalized images [1 + tiles][3][S][S], base first,
 * tiles in raster order (spec §5.3 steps 1-5). */
LLV_INTERNAL int llv_anyres_preprocess(const llava_vision *v, const uint8_t *rgb, int32_t width, int32_t height,
                                       const llv_anyres_plan *plan, float *planar, llv_err *err);
/* Merge projected features [1 + tiles][G*G][C] into out [plan->n_tokens][C]
 * (step 6); spatial_unpad appends v->anyres.newline (C values, checked by
 * the caller) after every row. */
LLV_INTERNAL void llv_anyres_merge(const llava_vision *v, const llv_anyres_plan *plan, const float *feat,
                                   int32_t C, float *out);

/* Tests: 1 = run attention with the streaming llv_attention (the reference)
 * instead of the per-head GEMMs; 0 = automatic. */
LLV_INTERNAL void llv_vision_force_reference_attention(int on);

/* Tests: > 0 forces this many images per batched tower pass in the
 * any-resolution encoder (0 = automatic, by memory). */
LLV_INTERNAL void llv_anyres_force_batch(int n);

/* Pixel-wise helpers for the encoder (api_vision.c): reference pad colour
 * int(mean*255) per channel. */
LLV_INTERNAL void llv_vision_pad_colour(const llava_vision *v, uint8_t rgb[3]);

#endif /* LLV_VISION_H */
