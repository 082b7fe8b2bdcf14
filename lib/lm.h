/*
 * lm.h - the llama-architecture language model (spec §6): hyperparameters,
 * weight views into the GGUF mapping, loading and the batched forward pass
 * over a session's KV cache.
 *
 * A loaded llava_lm is never written after llv_lm_load returns, so any number
 * of sessions on any number of threads may share it. Everything mutable
 * (KV cache, scratch, logits, sampler state) lives in the session.
 */
#ifndef LLV_LM_H
#define LLV_LM_H

#include "handle.h"
#include "gguf.h"
#include "kernels.h"
#include "params.h"
#include "tokenizer.h"

/* Sanity limits on hyperparameters: far above every real llama model, low
 * enough that no size computed from them can overflow 64-bit arithmetic. */
#define LLV_LM_MAX_EMBD     65536
#define LLV_LM_MAX_LAYERS   1024
#define LLV_LM_MAX_HEADS    4096
#define LLV_LM_MAX_HEAD_DIM 1024
#define LLV_LM_MAX_FF       (1 << 20)
#define LLV_LM_MAX_CTX      (1 << 24)
#define LLV_LM_MAX_VOCAB    (1 << 24)
/* A session with N_CTX = 0 gets the training context, but at most this many
 * positions (a 128k-context model would otherwise ask for tens of GB). */
#define LLV_LM_DEFAULT_CTX_CAP 8192

typedef struct llv_lm_hparams {
    int32_t n_ctx_train;  /* llama.context_length */
    int32_t n_embd;       /* E */
    int32_t n_layer;
    int32_t n_ff;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;     /* key_length, default E / n_head */
    int32_t n_rot;        /* rope.dimension_count, default head_dim */
    int32_t n_vocab;      /* token_embd rows */
    float   rms_eps;
    float   rope_freq_base;
    float   rope_freq_scale; /* 1 / rope.scaling.factor for "linear" */
} llv_lm_hparams;

/* One decoder block. 1-D tensors (norms, biases) are f32 copies owned by the
 * LM; matrices are views into the mapping in their stored type. A fused
 * attn_qkv tensor is split into three views over consecutive row ranges. */
typedef struct llv_lm_layer {
    const float *attn_norm;              /* [E] */
    llv_weight   wq, wk, wv, wo;         /* [E -> n_head*hd], [E -> Hk] x2, [n_head*hd -> E] */
    const float *bq, *bk, *bv, *bo;      /* optional biases, NULL if absent */
    const float *ffn_norm;               /* [E] */
    llv_weight   w_gate, w_up, w_down;   /* [E -> F] x2, [F -> E] */
    const float *b_gate, *b_up, *b_down; /* optional */
} llv_lm_layer;

struct llava_lm {
    llv_handle      hdr;
    llv_gguf       *gguf;      /* owns the mapping the weight views point into */
    llv_vocab      *vocab;
    llv_lm_hparams  hp;
    llv_weight      tok_embd;  /* [E x V] (one row per token) */
    const float    *output_norm;
    llv_weight      output;    /* token_embd when output.weight is absent (tied) */
    const float    *rope_freqs; /* optional [n_rot/2] Llama-3 factors, NULL if absent */
    llv_lm_layer   *layers;    /* n_layer */
    float         **owned;     /* f32 copies of 1-D tensors */
    size_t          n_owned, cap_owned;
};

/* Read hyperparameters and bind every tensor of an open GGUF (which the LM
 * takes over on success only). cb: progress reporting (may be NULL). */
LLV_INTERNAL int llv_lm_load(llv_gguf *g, const llv_callbacks *cb, llava_lm **out, llv_err *err);
LLV_INTERNAL void llv_lm_free(llava_lm *lm);

/* Width of one K (or V) row: n_head_kv * head_dim. */
static inline int64_t llv_lm_kv_dim(const llv_lm_hparams *hp) { return (int64_t)hp->n_head_kv * hp->head_dim; }
/* Width of the attention block: n_head * head_dim. */
static inline int64_t llv_lm_q_dim(const llv_lm_hparams *hp) { return (int64_t)hp->n_head * hp->head_dim; }

/* ---- forward pass ----------------------------------------------------- */

/* Per-session scratch for up to n_batch rows (allocated once per session). */
typedef struct llv_lm_scratch {
    int64_t n_batch;
    float *x;      /* [n_batch][E]   residual stream */
    float *xn;     /* [n_batch][E]   normed input of a sublayer */
    float *q;      /* [n_batch][qd] */
    float *k, *v;  /* [n_batch][kvd] */
    float *att;    /* [n_batch][qd] */
    float *tmp;    /* [n_batch][E]   sublayer output */
    float *gate;   /* [n_batch][F] */
    float *up;     /* [n_batch][F] */
} llv_lm_scratch;

LLV_INTERNAL int  llv_lm_scratch_init(llv_lm_scratch *s, const llv_lm_hparams *hp, int64_t n_batch, llv_err *err);
LLV_INTERNAL void llv_lm_scratch_free(llv_lm_scratch *s);

/* The KV cache: per layer, K and V for n_ctx positions, rows of kv_dim
 * elements stored as kv_type (LLV_TYPE_F32 or LLV_TYPE_F16). */
typedef struct llv_kv_cache {
    int     kv_type;
    size_t  elt;        /* bytes per element */
    int64_t n_ctx;
    int64_t kv_dim;
    int32_t n_layer;
    void   *k;          /* [n_layer][n_ctx][kv_dim] */
    void   *v;
} llv_kv_cache;

LLV_INTERNAL int  llv_kv_init(llv_kv_cache *kv, const llv_lm_hparams *hp, int kv_type, int64_t n_ctx, llv_err *err);
LLV_INTERNAL void llv_kv_free(llv_kv_cache *kv);
/* Start of row `pos` of layer `layer` in the K or V array. */
static inline void *llv_kv_row(const llv_kv_cache *kv, void *base, int32_t layer, int64_t pos) {
    return (char *)base + (((size_t)layer * (size_t)kv->n_ctx + (size_t)pos) * (size_t)kv->kv_dim) * kv->elt;
}

/* Put the input vectors of n tokens into scratch->x (ids must be valid). */
LLV_INTERNAL void llv_lm_embed_tokens(const llava_lm *lm, const int32_t *tokens, int64_t n, float *x);

/* Run every layer over the n rows already in s->x (n <= s->n_batch) at
 * positions pos..pos+n-1, writing their K/V into the cache. The abort
 * callback is polled before each layer (LLAVA_E_ABORTED; the cache rows at
 * >= pos may then hold partial data, which the caller ignores by not
 * advancing its position). If logits != NULL, the logits of the last row are
 * written there (n_vocab floats). */
LLV_INTERNAL int llv_lm_forward(const llava_lm *lm, llv_kv_cache *kv, llv_lm_scratch *s, int64_t n, int64_t pos,
                                float *logits, const llv_callbacks *cb, int n_threads, llv_err *err);

/* The same computation, straightforward and without the cache layout
 * tricks: plain f32 attention over an f32 copy of the cache built from
 * scratch for one sequence of token inputs. Used by tests to check the fast
 * path (it recomputes all n rows from position 0). */
LLV_INTERNAL int llv_lm_forward_ref(const llava_lm *lm, const float *x_in, int64_t n, float *logits, llv_err *err);

#endif /* LLV_LM_H */
