/*
 * vision.h - the CLIP vision tower and the LLaVA projector loaded from an
 * mmproj GGUF file (shared/spec/llava-format.md §3, §4).
 *
 * Files:
 *   vision_tensors.c  shape-checked access to mmproj tensors (shared helpers)
 *   vision_load.c     hyperparameters + tower tensors -> struct llava_vision
 *   vision_forward.c  the tower's forward pass (patches -> features)
 *   projector.c       projector loading and forward (features -> LM width)
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
    int                n_threads;   /* from the load params, used when encode gets NULL params */
    llv_callbacks      cb;
};

enum llv_proj_kind {
    LLV_PROJ_MLP    = 0, /* mm.0 -> GELU(erf) -> mm.2 [-> GELU -> mm.4 ...] */
    LLV_PROJ_LINEAR = 1  /* mm.0 only, no activation (LLaVA-1) */
};

typedef struct llv_proj_layer {
    llv_weight w;
    float     *b;          /* owned, may be NULL */
} llv_proj_layer;

struct llava_projector {
    llv_handle     hdr;
    llv_gguf      *gguf;
    int            kind;   /* enum llv_proj_kind */
    char           type_name[32];
    int32_t        n_layers;
    llv_proj_layer layers[LLV_PROJ_MAX_LAYERS];
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

/* ---- projector ---- */

LLV_INTERNAL int llv_projector_from_gguf(llv_gguf *g, const llava_params *params, llava_projector **out,
                                         llv_err *err);
LLV_INTERNAL void llv_projector_destroy(llava_projector *p);
/* in [n_rows][n_in] -> out [n_rows][n_out]. */
LLV_INTERNAL int llv_projector_forward(const llava_projector *p, const float *in, int64_t n_rows, float *out,
                                       int n_threads, llv_err *err);

/* Tests: 1 = run attention with the streaming llv_attention (the reference)
 * instead of the per-head GEMMs; 0 = automatic. */
LLV_INTERNAL void llv_vision_force_reference_attention(int on);

/* Pixel-wise helpers for the encoder (api_vision.c): reference pad colour
 * int(mean*255) per channel. */
LLV_INTERNAL void llv_vision_pad_colour(const llava_vision *v, uint8_t rgb[3]);

#endif /* LLV_VISION_H */
