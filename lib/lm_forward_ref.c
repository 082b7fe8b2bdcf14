/*
 * lm_forward_ref.c - a plain reference of the llama forward pass for tests:
 * one sequence from position 0, reference matmul (llv_matmul_ref), RoPE
 * angles from a fresh double pow per pair, attention in double over f32 K/V.
 * No cache, no batching, no threads: slow and obvious.
 */
#include "lm.h"

#include <math.h>
#include <string.h>

static void ref_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    double r = 1.0 / sqrt(ss / (double)n + (double)eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)(x[i] * r) * w[i];
}

static void ref_rope(const llava_lm *lm, float *x, int n_heads, int64_t pos)
{
    const llv_lm_hparams *hp = &lm->hp;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hp->n_rot / 2; i++) {
            double theta = (double)pos * hp->rope_freq_scale * pow(hp->rope_freq_base, -2.0 * i / hp->n_rot);
            if (lm->rope_freqs)
                theta /= lm->rope_freqs[i];
            float *p = x + (size_t)h * hp->head_dim + 2 * i;
            double a = p[0], b = p[1];
            p[0] = (float)(a * cos(theta) - b * sin(theta));
            p[1] = (float)(a * sin(theta) + b * cos(theta));
        }
}

int llv_lm_forward_ref(const llava_lm *lm, const float *x_in, int64_t n, float *logits, llv_err *err)
{
    const llv_lm_hparams *hp = &lm->hp;
    const int64_t E = hp->n_embd, QD = llv_lm_q_dim(hp), KVD = llv_lm_kv_dim(hp), F = hp->n_ff, hd = hp->head_dim;
    const int64_t group = hp->n_head / hp->n_head_kv;
    size_t sz, scn;
    if (n < 1 || llv_mul3_overflow((size_t)n, (size_t)(3 * E + 2 * QD + 2 * KVD + 2 * F), sizeof(float), &sz) ||
        llv_mul_overflow((size_t)n, sizeof(double), &scn))
        return llv_fail(err, LLAVA_E_INVALID_ARG, "reference forward: bad row count %lld", (long long)n);
    float *buf = llv_malloc(sz);
    double *sc = llv_malloc(scn);
    if (!buf || !sc) {
        llv_free(buf);
        llv_free(sc);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory");
    }
    float *x = buf, *xn = x + n * E, *q = xn + n * E, *k = q + n * QD, *v = k + n * KVD, *att = v + n * KVD,
          *tmp = att + n * QD, *gate = tmp + n * E, *up = gate + n * F;
    memcpy(x, x_in, (size_t)(n * E) * sizeof(float));

    for (int32_t il = 0; il < hp->n_layer; il++) {
        const llv_lm_layer *L = &lm->layers[il];
        for (int64_t i = 0; i < n; i++)
            ref_rmsnorm(xn + i * E, x + i * E, L->attn_norm, E, hp->rms_eps);
        llv_matmul_ref(&L->wq, xn, n, q, L->bq);
        llv_matmul_ref(&L->wk, xn, n, k, L->bk);
        llv_matmul_ref(&L->wv, xn, n, v, L->bv);
        for (int64_t i = 0; i < n; i++) {
            ref_rope(lm, q + i * QD, hp->n_head, i);
            ref_rope(lm, k + i * KVD, hp->n_head_kv, i);
        }
        for (int64_t i = 0; i < n; i++)
            for (int h = 0; h < hp->n_head; h++) {
                const float *qh = q + i * QD + h * hd;
                const int64_t kvh = h / group;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j <= i; j++) {
                    double d = 0.0;
                    for (int64_t c = 0; c < hd; c++)
                        d += (double)qh[c] * k[j * KVD + kvh * hd + c];
                    sc[j] = d / sqrt((double)hd);
                    if (sc[j] > mx)
                        mx = sc[j];
                }
                for (int64_t j = 0; j <= i; j++)
                    sum += (sc[j] = exp(sc[j] - mx));
                for (int64_t c = 0; c < hd; c++) {
                    double a = 0.0;
                    for (int64_t j = 0; j <= i; j++)
                        a += sc[j] * v[j * KVD + kvh * hd + c];
                    att[i * QD + h * hd + c] = (float)(a / sum);
                }
            }
        llv_matmul_ref(&L->wo, att, n, tmp, L->bo);
        for (int64_t i = 0; i < n * E; i++)
            x[i] += tmp[i];
        for (int64_t i = 0; i < n; i++)
            ref_rmsnorm(xn + i * E, x + i * E, L->ffn_norm, E, hp->rms_eps);
        llv_matmul_ref(&L->w_gate, xn, n, gate, L->b_gate);
        llv_matmul_ref(&L->w_up, xn, n, up, L->b_up);
        for (int64_t i = 0; i < n * F; i++) {
            double g = gate[i];
            gate[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
        }
        llv_matmul_ref(&L->w_down, gate, n, tmp, L->b_down);
        for (int64_t i = 0; i < n * E; i++)
            x[i] += tmp[i];
    }
    ref_rmsnorm(xn, x + (n - 1) * E, lm->output_norm, E, hp->rms_eps);
    llv_matmul_ref(&lm->output, xn, 1, logits, NULL);
    llv_free(buf);
    llv_free(sc);
    return LLAVA_OK;
}
