/*
 * kernels.c - run-time ISA dispatch, weight views, and the row-wise ops:
 * norms, softmax, activations and RoPE (spec §4, §6.3).
 *
 * The row ops are O(n) per token and cheap next to the matmuls, so they are
 * plain C, written to follow llama.cpp's CPU numerics where the spec asks
 * (RMSNorm sum of squares in double, RoPE angles accumulated in f32).
 */
#include "kernels_impl.h"

#include <math.h>

/* ---- dispatch -------------------------------------------------------- */

/* The NEON table (kernels_neon.c); NULL unless built for aarch64. */
LLV_INTERNAL const llv_kernel_ops *llv_kernel_ops_neon(void);

static int force_ref;                         /* set by tests */
static const llv_kernel_ops *ops_detected;    /* lazily detected, then fixed */

#if LLV_HAVE_X86_SIMD
#include <cpuid.h>
/* CPUID.1:ECX bit 29. (clang 14 does not know __builtin_cpu_supports("f16c").) */
static bool cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}
#endif

static const llv_kernel_ops *select_ops(void)
{
#if LLV_HAVE_X86_SIMD
    __builtin_cpu_init();
    /* AVX-512 would be checked first here once kernels_avx512.c exists. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        cpu_has_f16c() && llv_kernel_ops_avx2() != NULL)
        return llv_kernel_ops_avx2();
#elif defined(__aarch64__)
    /* NEON is part of the AArch64 base: no feature check needed. */
    if (llv_kernel_ops_neon() != NULL)
        return llv_kernel_ops_neon();
#endif
    return llv_kernel_ops_ref();
}

const llv_kernel_ops *llv_ops(void)
{
    if (__atomic_load_n(&force_ref, __ATOMIC_RELAXED))
        return llv_kernel_ops_ref();
    const llv_kernel_ops *o = __atomic_load_n(&ops_detected, __ATOMIC_ACQUIRE);
    if (!o) { /* racing first calls compute the same value: harmless */
        o = select_ops();
        __atomic_store_n(&ops_detected, o, __ATOMIC_RELEASE);
    }
    return o;
}

const char *llv_kernels_isa(void) { return llv_ops()->isa; }

void llv_kernels_force_reference(int on) { __atomic_store_n(&force_ref, on ? 1 : 0, __ATOMIC_RELAXED); }

/* ---- weights --------------------------------------------------------- */

bool llv_weight_init(llv_weight *w, int type, int64_t n_in, int64_t n_out, const void *data)
{
    const llv_type_info *ti = llv_type_get(type);
    size_t rb, total;
    if (!w || !ti || !ti->weights || n_in <= 0 || n_out <= 0 || !data)
        return false;
    if (!llv_row_bytes(type, n_in, &rb) || llv_mul_overflow(rb, (size_t)n_out, &total))
        return false;
    w->type = type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = rb;
    w->data = data;
    return true;
}

/* ---- norms ----------------------------------------------------------- */

/* out = x / sqrt(mean(x^2) + eps) * weight (weight may be NULL). */
void llv_rmsnorm(float *out, const float *x, const float *weight, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf(llv_narrow_f64(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * scale * (weight ? weight[i] : 1.0f);
}

/* out = (x - mean)/sqrt(var + eps) * weight + bias, var biased; weight and
 * bias may be NULL. Mean and variance in double (two passes). */
void llv_layernorm(float *out, const float *x, const float *weight, const float *bias, int64_t n,
                   float eps)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += x[i];
    double mean = sum / (double)n, var = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double dv = x[i] - mean;
        var += dv * dv;
    }
    var /= (double)n;
    float scale = (float)(1.0 / sqrt(var + eps));
    float meanf = (float)mean;
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - meanf) * scale;
        if (weight) v *= weight[i];
        if (bias) v += bias[i];
        out[i] = v;
    }
}

/* The fixed-length inner loop lets the compiler vectorize: at -O2 it leaves
 * loops of unknown length scalar (that was 35% of the blocked attention's own
 * time). x*1 + b and x*a + 0 round as x + b and x*a do. */
void llv_affine_f32(float *x, int64_t n, float a, float b)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            x[i + l] = x[i + l] * a + b;
    for (; i < n; i++)
        x[i] = x[i] * a + b;
}

float llv_max_f32(const float *x, int64_t n)
{
    float m8[8]; /* 8 partial maxima: independent compares, not one chain */
    for (int l = 0; l < 8; l++)
        m8[l] = x[0];
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            m8[l] = x[i + l] > m8[l] ? x[i + l] : m8[l];
    float mx = m8[0];
    for (int l = 1; l < 8; l++)
        mx = m8[l] > mx ? m8[l] : mx;
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* In-place softmax; the normalising sum is accumulated in double. The
 * exponentials use the ISA's vector exp (<= 2 ulp from expf; the reference
 * table's is expf): scalar expf was 10% of a CLIP encode (576 x 577 scores
 * per head and layer). */
void llv_softmax(float *x, int64_t n)
{
    if (n <= 0)
        return;
    /* llv_max_f32 and 4 partial double sums: the single-accumulator loops
     * were one dependent add per element (3.9% of an image encode, 577-wide
     * rows); max is order-free, the sum stays in double. */
    const float mx = llv_max_f32(x, n);
    llv_affine_f32(x, n, 1.0f, -mx);
    llv_ops()->exp_f32(x, n);
    double s4[4] = { 0.0, 0.0, 0.0, 0.0 };
    int64_t i;
    for (i = 0; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++)
            s4[l] += x[i + l];
    double sum = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    for (; i < n; i++)
        sum += x[i];
    llv_ops()->scale_f32(x, (float)(1.0 / sum), n);
}

/* ---- activations ----------------------------------------------------- */
/* silu, quick_gelu, gelu_tanh and swiglu use the ISA's vector exp when it
 * has one (within ~3 ulp of these loops); gelu_erf stays on libm's erff. */

void llv_gelu_erf(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

/* 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))), computed directly (not via
 * ggml's F16 lookup table). */
void llv_gelu_tanh(float *x, int64_t n)
{
    const llv_kernel_ops *ops = llv_ops();
    if (ops->gelu_tanh) {
        ops->gelu_tanh(x, n);
        return;
    }
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
}

void llv_quick_gelu(float *x, int64_t n)
{
    const llv_kernel_ops *ops = llv_ops();
    if (ops->quick_gelu) {
        ops->quick_gelu(x, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void llv_silu(float *x, int64_t n)
{
    const llv_kernel_ops *ops = llv_ops();
    if (ops->silu) {
        ops->silu(x, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] / (1.0f + expf(-x[i]));
}

void llv_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    const llv_kernel_ops *ops = llv_ops();
    if (ops->swiglu) {
        ops->swiglu(out, gate, up, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* ---- RoPE ------------------------------------------------------------ */

/*
 * Normal (adjacent-pair) RoPE as llama.cpp's CPU ggml_rope_cache_init does
 * it: theta starts at pos and is multiplied by powf(base, -2/n_rot) in f32
 * per pair; the angle used is freq_scale*theta (ext_factor 0, attn_factor 1).
 * The angles are the same for every head; they are recomputed per head
 * (n_rot/2 cosf/sinf per head is negligible) to need no buffer.
 */
void llv_rope_norm(float *x, int n_heads, int head_dim, int n_rot, int64_t pos, float freq_base,
                   float freq_scale)
{
    if (n_rot > head_dim)
        n_rot = head_dim;
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        float theta = (float)pos;
        for (int i = 0; i < n_rot / 2; i++) {
            float a = freq_scale * theta;
            float c = cosf(a), s = sinf(a);
            float x0 = v[2 * i], x1 = v[2 * i + 1];
            v[2 * i] = x0 * c - x1 * s;
            v[2 * i + 1] = x0 * s + x1 * c;
            theta *= theta_scale;
        }
    }
}
