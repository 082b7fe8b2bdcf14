/*
 * kernels_ref.c - the plain C micro-kernels (reference for every fast
 * path, and the fallback on CPUs without one). Dots accumulate in double.
 */
#include "kernels_impl.h"

#include <math.h>

static float ref_dot_f32(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return llv_narrow_f64(s);
}

static float ref_dot_f16(const uint16_t *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)llv_fp16_to_fp32(a[i]) * b[i];
    return llv_narrow_f64(s);
}

static float ref_dot_bf16(const uint16_t *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)llv_bf16_to_fp32(a[i]) * b[i];
    return llv_narrow_f64(s);
}

static void ref_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void ref_axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * llv_fp16_to_fp32(x[i]);
}

static void ref_scale_f32(float *y, float a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] *= a;
}

static void ref_gemm_packed(const float *x, int64_t ldx, int mr, const float *wp, int64_t ldw, int64_t kc,
                            float *y, int64_t ldy, int nr)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < kc; k++)
                s += (double)x[i * ldx + k] * wp[k * ldw + j];
            y[i * ldy + j] += llv_narrow_f64(s);
        }
}

static void ref_pack_strip(const float *src, int64_t lds, int nr, int64_t kc, float *dst)
{
    for (int64_t k = 0; k < kc; k++)
        for (int j = 0; j < LLV_GEMM_PNR; j++)
            dst[k * LLV_GEMM_PNR + j] = j < nr ? src[j * lds + k] : 0.0f;
}

static void ref_exp_f32(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = expf(x[i]);
}

static const llv_kernel_ops ops_ref = {
    .isa = "scalar",
    .dot_f32 = ref_dot_f32,
    .dot_f16 = ref_dot_f16,
    .dot_bf16 = ref_dot_bf16,
    .axpy_f32 = ref_axpy_f32,
    .axpy_f16 = ref_axpy_f16,
    .scale_f32 = ref_scale_f32,
    .to_f32 = llv_dequantize_row,
    .gemm_packed = ref_gemm_packed,
    .pack_strip = ref_pack_strip,
    .exp_f32 = ref_exp_f32,
};

const llv_kernel_ops *llv_kernel_ops_ref(void) { return &ops_ref; }
