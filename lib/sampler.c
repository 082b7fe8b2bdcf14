/*
 * sampler.c - penalties, greedy / top-k / top-p / min-p / temperature and a
 * draw with our own PRNG (xoshiro256** seeded by splitmix64), so a seed
 * gives the same tokens on every platform and libc: candidates are ordered
 * by a total order (logit descending, then id ascending) and the draw uses
 * a 53-bit double uniform and a double-precision softmax.
 */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- PRNG ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void llv_rng_seed(llv_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* splitmix64 output is a bijection of distinct inputs, so the state
     * cannot be all zero; keep the guard for clarity. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t llv_rng_next(llv_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double llv_rng_uniform(llv_rng *r)
{
    return (double)(llv_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t llv_rng_time_seed(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    static int salt; /* its address differs between processes with ASLR */
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)(uintptr_t)&salt;
    return splitmix64(&x);
}

/* ---- params and work buffers ------------------------------------------------ */

void llv_sampler_params_from(llv_sampler_params *sp, const llava_params *p)
{
    sp->temperature = (float)llv_param_float(p, LLAVA_PARAM_TEMPERATURE);
    sp->top_k = (int32_t)llv_param_int(p, LLAVA_PARAM_TOP_K);
    sp->top_p = (float)llv_param_float(p, LLAVA_PARAM_TOP_P);
    sp->min_p = (float)llv_param_float(p, LLAVA_PARAM_MIN_P);
    sp->repeat_penalty = (float)llv_param_float(p, LLAVA_PARAM_REPEAT_PENALTY);
    sp->repeat_last_n = (int32_t)llv_param_int(p, LLAVA_PARAM_REPEAT_LAST_N);
    sp->frequency_penalty = (float)llv_param_float(p, LLAVA_PARAM_FREQUENCY_PENALTY);
    sp->presence_penalty = (float)llv_param_float(p, LLAVA_PARAM_PRESENCE_PENALTY);
    sp->seed = llv_param_int(p, LLAVA_PARAM_SEED);
}

int llv_sampler_work_init(llv_sampler_work *w, int32_t n_vocab, size_t n_recent_max, llv_err *err)
{
    memset(w, 0, sizeof *w);
    w->n_vocab = n_vocab;
    w->n_recent_max = n_recent_max;
    w->logit = llv_malloc((size_t)n_vocab * sizeof *w->logit);
    w->id = llv_malloc((size_t)n_vocab * sizeof *w->id);
    w->prob = llv_malloc((size_t)n_vocab * sizeof *w->prob);
    size_t nr;
    if (!llv_mul_overflow(n_recent_max ? n_recent_max : 1, sizeof *w->recent, &nr))
        w->recent = llv_malloc(nr);
    if (!w->logit || !w->id || !w->prob || !w->recent) {
        llv_sampler_work_free(w);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for the sampler");
    }
    return LLAVA_OK;
}

void llv_sampler_work_free(llv_sampler_work *w)
{
    llv_free(w->logit);
    llv_free(w->id);
    llv_free(w->prob);
    llv_free(w->recent);
    memset(w, 0, sizeof *w);
}

/* ---- penalties ---------------------------------------------------------- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void llv_sampler_penalize(const llv_sampler_params *sp, float *logits, int32_t n_vocab, const int32_t *recent,
                          size_t n_recent, llv_sampler_work *w)
{
    const bool rep = sp->repeat_penalty != 1.0f, freq = sp->frequency_penalty != 0.0f,
               pres = sp->presence_penalty != 0.0f;
    if (!(rep || freq || pres) || n_recent == 0)
        return;
    if (n_recent > w->n_recent_max)
        n_recent = w->n_recent_max;
    memcpy(w->recent, recent, n_recent * sizeof *recent);
    qsort(w->recent, n_recent, sizeof *w->recent, cmp_i32);
    for (size_t i = 0; i < n_recent;) {
        size_t j = i;
        while (j < n_recent && w->recent[j] == w->recent[i])
            j++;
        const int32_t id = w->recent[i];
        const size_t count = j - i;
        i = j;
        if (id < 0 || id >= n_vocab)
            continue; /* image positions and the like */
        float l = logits[id];
        if (rep)
            l = l > 0.0f ? l / sp->repeat_penalty : l * sp->repeat_penalty;
        l -= (float)count * sp->frequency_penalty + sp->presence_penalty;
        logits[id] = l == l ? l : -INFINITY; /* e.g. -inf * a penalty of 0 */
    }
}

/* ---- the chain ------------------------------------------------------------- */

/* Total order of candidates: larger logit first, then smaller id. NaN logits
 * were replaced by -inf before, so comparisons are well defined. */
static bool better(const float *logit, int32_t a, int32_t b)
{
    return logit[a] > logit[b] || (logit[a] == logit[b] && a < b);
}

/* qsort has no context argument in C11; per thread, so sessions on
 * different threads can sample at once. */
static _Thread_local const float *tl_cmp_logits;

static int cmp_cand(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (better(tl_cmp_logits, a, b))
        return -1;
    return better(tl_cmp_logits, b, a) ? 1 : 0;
}

static void sort_candidates(const float *logit, int32_t *id, size_t n)
{
    tl_cmp_logits = logit;
    qsort(id, n, sizeof *id, cmp_cand);
}

/* Keep the k best of id[0..n) in id[0..k), sorted best first: a min-heap
 * (worst candidate at the root) of size k over all n, then a sort. */
static void top_k_select(const float *logit, int32_t *id, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++) {
        int32_t c = id[i];
        size_t pos;
        if (i < k) {
            pos = i; /* sift up */
            while (pos > 0) {
                size_t parent = (pos - 1) / 2;
                if (!better(logit, id[parent], c))
                    break;
                id[pos] = id[parent];
                pos = parent;
            }
            id[pos] = c;
        } else if (better(logit, c, id[0])) {
            pos = 0; /* replace the root, sift down */
            for (;;) {
                size_t l = 2 * pos + 1, r = l + 1, w = pos;
                int32_t wv = c;
                if (l < k && better(logit, wv, id[l]))
                    w = l, wv = id[l];
                if (r < k && better(logit, wv, id[r]))
                    w = r;
                if (w == pos)
                    break;
                id[pos] = id[w];
                pos = w;
            }
            id[pos] = c;
        }
    }
    sort_candidates(logit, id, k);
}

int32_t llv_sample(const llv_sampler_params *sp, const float *logits, int32_t n_vocab, const int32_t *recent,
                   size_t n_recent, llv_rng *rng, llv_sampler_work *w)
{
    /* Work on a copy with NaN mapped to -inf (the penalties do the same). */
    float *logit = w->logit;
    for (int32_t i = 0; i < n_vocab; i++) {
        float l = logits[i];
        logit[i] = l == l ? l : -INFINITY;
    }
    llv_sampler_penalize(sp, logit, n_vocab, recent, n_recent, w);

    if (!(sp->temperature > 0.0f)) {
        int32_t best = 0; /* ascending scan with a strict >: ties go to the lowest id */
        for (int32_t i = 1; i < n_vocab; i++)
            if (logit[i] > logit[best])
                best = i;
        return best;
    }

    /* top-k (all candidates when off), sorted best first */
    int32_t *id = w->id;
    for (int32_t i = 0; i < n_vocab; i++)
        id[i] = i;
    size_t n = (size_t)n_vocab;
    if (sp->top_k > 0 && (size_t)sp->top_k < n) {
        top_k_select(logit, id, n, (size_t)sp->top_k);
        n = (size_t)sp->top_k;
    } else {
        sort_candidates(logit, id, n);
    }
    const double max_l = logit[id[0]];
    if (max_l == -INFINITY)
        return id[0];

    /* top-p: smallest prefix whose softmax mass reaches top_p */
    double *prob = w->prob;
    if (sp->top_p < 1.0f) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += (prob[i] = exp((double)logit[id[i]] - max_l));
        double cum = 0.0;
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            cum += prob[i] / sum;
            if (cum >= (double)sp->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }

    /* min-p: keep logits >= max + ln(min_p), i.e. p >= min_p * p_max */
    if (sp->min_p > 0.0f) {
        const double thr = max_l + log((double)sp->min_p);
        size_t keep = 1;
        while (keep < n && (double)logit[id[keep]] >= thr)
            keep++;
        n = keep;
    }

    /* temperature, softmax in double, draw */
    const double inv_t = 1.0 / (double)sp->temperature;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (prob[i] = exp(((double)logit[id[i]] - max_l) * inv_t));
    const double target = llv_rng_uniform(rng) * sum;
    double cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cum += prob[i];
        if (target < cum)
            return id[i];
    }
    return id[n - 1]; /* rounding: the target fell past the last sum */
}
