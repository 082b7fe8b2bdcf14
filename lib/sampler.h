/*
 * sampler.h - the sampling chain of llava_sample (llava.h, spec §9) and a
 * portable PRNG, so the same seed gives the same tokens on every platform.
 */
#ifndef LLV_SAMPLER_H
#define LLV_SAMPLER_H

#include "common.h"
#include "params.h"

/* xoshiro256** (Blackman & Vigna), seeded through splitmix64. */
typedef struct llv_rng {
    uint64_t s[4];
} llv_rng;

LLV_INTERNAL void     llv_rng_seed(llv_rng *r, uint64_t seed);
LLV_INTERNAL uint64_t llv_rng_next(llv_rng *r);
/* Uniform double in [0, 1) from the top 53 bits of the next output. */
LLV_INTERNAL double   llv_rng_uniform(llv_rng *r);
/* A seed from the clock (SEED = -1). */
LLV_INTERNAL uint64_t llv_rng_time_seed(void);

typedef struct llv_sampler_params {
    float   temperature;      /* <= 0: greedy */
    int32_t top_k;            /* <= 0: off */
    float   top_p;            /* >= 1: off */
    float   min_p;            /* <= 0: off */
    float   repeat_penalty;   /* 1: off */
    int32_t repeat_last_n;
    float   frequency_penalty;
    float   presence_penalty;
    int64_t seed;             /* -1: from the clock */
} llv_sampler_params;

/* Read the sampling keys of params (NULL: defaults). */
LLV_INTERNAL void llv_sampler_params_from(llv_sampler_params *sp, const llava_params *params);

/* Work buffers for n_vocab candidates and a penalty window of n_recent
 * tokens; allocated once per session. */
typedef struct llv_sampler_work {
    int32_t  n_vocab;
    size_t   n_recent_max;
    float   *logit;   /* [n_vocab] penalised logits */
    int32_t *id;      /* [n_vocab] candidate ids */
    double  *prob;    /* [n_vocab] */
    int32_t *recent;  /* [n_recent_max] sorted copy of the window */
} llv_sampler_work;

LLV_INTERNAL int  llv_sampler_work_init(llv_sampler_work *w, int32_t n_vocab, size_t n_recent_max, llv_err *err);
LLV_INTERNAL void llv_sampler_work_free(llv_sampler_work *w);

/* Apply the repetition / frequency / presence penalties for the tokens of
 * recent[0..n_recent) (the window; ids outside [0, n_vocab) are ignored) to
 * logits in place. recent is copied into w->recent, n_recent <= n_recent_max. */
LLV_INTERNAL void llv_sampler_penalize(const llv_sampler_params *sp, float *logits, int32_t n_vocab,
                                       const int32_t *recent, size_t n_recent, llv_sampler_work *w);

/* The whole chain: penalties, then greedy or top-k, top-p, min-p,
 * temperature, draw. Never fails; returns the token id. */
LLV_INTERNAL int32_t llv_sample(const llv_sampler_params *sp, const float *logits, int32_t n_vocab,
                                const int32_t *recent, size_t n_recent, llv_rng *rng, llv_sampler_work *w);

#endif /* LLV_SAMPLER_H */
