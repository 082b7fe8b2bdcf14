/*
 * check_lm.c - the language model against the golden data of an independent
 * PyTorch implementation (shared/data/golden/tiny-dev): first-step logits,
 * greedy continuations (text and chat with spliced image embeddings), the
 * plain reference forward, the tokenizer API, and malformed model files
 * rebuilt from the golden one with the GGUF writer.
 */
#include "check_lm_util.h"

#include "embed.h"
#include "gguf.h"
#include "lm.h"
#include "quant.h"
#include "session.h"

#define NV 32000
#define E 128
#define N_IMG 576

/* ---- golden: text ------------------------------------------------------- */

START_TEST(test_text_golden)
{
    const int kv_type = _i; /* 0 = F32, 1 = F16 */
    int32_t ids[64], want[32];
    int n = tu_golden_ids("text_prompt_ids", ids, 64);
    ck_assert_int_eq(n, 6);
    ck_assert_int_eq(tu_golden_ids("text_greedy32", want, 32), 32);
    size_t gsize;
    float *golden = tu_read_file(tu_golden("text_prompt.logits0.f32"), &gsize);
    ck_assert_ptr_nonnull(golden);
    ck_assert_uint_eq(gsize, NV * sizeof(float));

    llava_lm *lm = tu_load_lm();
    ck_assert_int_eq(llava_lm_n_vocab(lm), NV);
    ck_assert_int_eq(llava_lm_n_embd(lm), E);
    ck_assert_int_eq(llava_lm_n_ctx_train(lm), 2048);
    llava_params *p = tu_params(2, kv_type, 512, 0);
    llava_session *s = tu_session(lm, p);
    ck_assert_int_eq(llava_session_n_ctx(s), 2048);
    ck_assert_ptr_null(llava_get_logits(s, NULL));
    ck_assert_int_eq(llava_eval_tokens(s, ids, (size_t)n), LLAVA_OK);
    ck_assert_int_eq(llava_session_position(s), n);
    int32_t nv = 0;
    const float *lg = llava_get_logits(s, &nv);
    ck_assert_int_eq(nv, NV);
    double err = tu_rel_err(lg, golden, NV);
    printf("text prompt logits0 rel err (KV %s): %.3g\n", kv_type ? "F16" : "F32", err);
    ck_assert_msg(err < (kv_type ? 1e-3 : 1e-4), "rel err %g", err);

    int32_t got[32];
    tu_greedy(s, 32, got);
    int match = 0;
    while (match < 32 && got[match] == want[match])
        match++;
    printf("text greedy32 (KV %s): %d/32 match\n", kv_type ? "F16" : "F32", match);
    ck_assert_int_eq(match, 32);

    llava_free_session(s);
    llava_free_params(p);
    llava_free_lm(lm);
    free(golden);
}
END_TEST

/* The library's own greedy sampler gives the same path. */
START_TEST(test_text_greedy_sampler)
{
    int32_t ids[64], want[32];
    int n = tu_golden_ids("text_prompt_ids", ids, 64);
    tu_golden_ids("text_greedy32", want, 32);
    llava_lm *lm = tu_load_lm();
    llava_params *p = tu_params(2, 1, 512, 64);
    /* penalties off, temperature 0: pure argmax */
    llava_session *s = tu_session(lm, p);
    int32_t tok = -1;
    ck_assert_int_eq(llava_sample(s, &tok), LLAVA_E_STATE);
    ck_assert_int_eq(llava_eval_tokens(s, ids, (size_t)n), LLAVA_OK);
    for (int i = 0; i < 32; i++) {
        ck_assert_int_eq(llava_sample(s, &tok), LLAVA_OK);
        ck_assert_int_eq(tok, want[i]);
        ck_assert_int_eq(llava_eval_tokens(s, &tok, 1), LLAVA_OK);
    }
    llava_free_session(s);
    llava_free_params(p);
    llava_free_lm(lm);
}
END_TEST

/* ---- golden: chat with image embeddings --------------------------------- */

static llava_embed *golden_embed(const char *image)
{
    char name[256];
    snprintf(name, sizeof name, "%s.embd.f32", image);
    size_t size;
    float *data = tu_read_file(tu_golden(name), &size);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(size, (size_t)N_IMG * E * sizeof(float));
    llava_embed *e = NULL;
    char err[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_new_embed(data, N_IMG, E, &e, err, sizeof err);
    ck_assert_msg(rc == LLAVA_OK, "llava_new_embed: %d %s", rc, err);
    free(data);
    return e;
}

static const char *const chat_images[] = { "shapes336.png", "test-1.jpeg" };

START_TEST(test_chat_golden)
{
    const char *image = chat_images[_i / 2];
    const int kv_type = _i % 2;
    int32_t prefix[64], suffix[64], want[32];
    int np = tu_golden_ids("chat_prefix_ids", prefix, 64), ns = tu_golden_ids("chat_suffix_ids", suffix, 64);
    ck_assert_int_eq(np, 35);
    ck_assert_int_eq(ns, 13);
    char key[128];
    snprintf(key, sizeof key, "chat_greedy32[%s]", image);
    ck_assert_int_eq(tu_golden_ids(key, want, 32), 32);

    llava_lm *lm = tu_load_lm();
    llava_params *p = tu_params(2, kv_type, 512, 0);
    llava_session *s = tu_session(lm, p);
    llava_embed *e = golden_embed(image);
    ck_assert_int_eq(llava_eval_tokens(s, prefix, (size_t)np), LLAVA_OK);
    ck_assert_int_eq(llava_eval_embed(s, e), LLAVA_OK);
    ck_assert_int_eq(llava_session_position(s), np + N_IMG);
    ck_assert_int_eq(llava_eval_tokens(s, suffix, (size_t)ns), LLAVA_OK);

    char lname[256];
    snprintf(lname, sizeof lname, "chat_%s.logits0.f32", image);
    float *golden = tu_read_file(tu_golden(lname), NULL);
    if (golden) {
        double err = tu_rel_err(llava_get_logits(s, NULL), golden, NV);
        printf("chat %s logits0 rel err (KV %s): %.3g\n", image, kv_type ? "F16" : "F32", err);
        ck_assert_msg(err < (kv_type ? 1e-3 : 1e-4), "rel err %g", err);
        free(golden);
    }
    int32_t got[32];
    tu_greedy(s, 32, got);
    int match = 0;
    while (match < 32 && got[match] == want[match])
        match++;
    printf("chat %s greedy32 (KV %s): %d/32 match\n", image, kv_type ? "F16" : "F32", match);
    ck_assert_int_eq(match, 32);

    llava_free_embed(e);
    llava_free_session(s);
    llava_free_params(p);
    llava_free_lm(lm);
}
END_TEST

START_TEST(test_embed_mismatch)
{
    llava_lm *lm = tu_load_lm();
    llava_session *s = tu_session(lm, NULL);
    float data[2 * 64] = { 0 };
    llava_embed *e = NULL;
    ck_assert_int_eq(llava_new_embed(data, 2, 64, &e, NULL, 0), LLAVA_OK);
    ck_assert_int_eq(llava_eval_embed(s, e), LLAVA_E_MISMATCH);
    const char *msg = llava_errmsg(s);
    ck_assert_msg(strstr(msg, "64") && strstr(msg, "128"), "message: %s", msg);
    ck_assert_int_eq(llava_session_position(s), 0);
    ck_assert_int_eq(llava_eval_embed(s, NULL), LLAVA_E_INVALID_ARG);
    llava_free_embed(e);
    llava_free_session(s);
    llava_free_lm(lm);
}
END_TEST

/* ---- the fast forward against the plain reference ---------------------- */

START_TEST(test_forward_vs_reference)
{
    int32_t ids[64];
    int n = tu_golden_ids("chat_prefix_ids", ids, 64);
    llava_lm *lm = tu_load_lm();
    float *x = malloc((size_t)n * E * sizeof(float)), *ref = malloc(NV * sizeof(float));
    llv_lm_embed_tokens(lm, ids, n, x);
    llv_err err;
    ck_assert_int_eq(llv_lm_forward_ref(lm, x, n, ref, &err), LLAVA_OK);

    llava_params *p = tu_params(2, 0, 7, 0); /* chunks of 7 rows: 5 batches */
    llava_session *s = tu_session(lm, p);
    ck_assert_int_eq(llava_eval_tokens(s, ids, (size_t)n), LLAVA_OK);
    double e = tu_rel_err(llava_get_logits(s, NULL), ref, NV);
    printf("fast vs reference forward (35 tokens, KV F32, batch 7): rel err %.3g\n", e);
    ck_assert_msg(e < 1e-5, "rel err %g", e);

    /* and the reference itself against the golden text logits */
    int32_t tids[16];
    int tn = tu_golden_ids("text_prompt_ids", tids, 16);
    float *golden = tu_read_file(tu_golden("text_prompt.logits0.f32"), NULL);
    llv_lm_embed_tokens(lm, tids, tn, x);
    ck_assert_int_eq(llv_lm_forward_ref(lm, x, tn, ref, &err), LLAVA_OK);
    e = tu_rel_err(ref, golden, NV);
    printf("reference forward vs golden text logits0: rel err %.3g\n", e);
    ck_assert_msg(e < 1e-4, "rel err %g", e);

    free(golden);
    free(x);
    free(ref);
    llava_free_session(s);
    llava_free_params(p);
    llava_free_lm(lm);
}
END_TEST

/* ---- tokenizer and metadata API ------------------------------------------ */

static void check_tokenize(const llava_lm *lm, const char *text, unsigned flags, const char *key)
{
    int32_t want[64], got[64];
    int n = tu_golden_ids(key, want, 64);
    ck_assert_int_gt(n, 0);
    size_t cnt = 0;
    ck_assert_int_eq(llava_tokenize(lm, text, strlen(text), flags, NULL, 0, &cnt), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(cnt, (size_t)n);
    ck_assert_int_eq(llava_tokenize(lm, text, strlen(text), flags, got, 64, &cnt), LLAVA_OK);
    ck_assert_uint_eq(cnt, (size_t)n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(got[i], want[i]);
}

START_TEST(test_tokenizer_api)
{
    llava_lm *lm = tu_load_lm();
    ck_assert_int_eq(llava_lm_token_bos(lm), 1);
    ck_assert_int_eq(llava_lm_token_eos(lm), 2);
    check_tokenize(lm, "The capital of France is", LLAVA_TOKENIZE_ADD_BOS, "text_prompt_ids");
    check_tokenize(lm, "A chat between a curious human and an artificial intelligence assistant. The assistant "
                       "gives helpful, detailed, and polite answers to the human's questions. USER: ",
                   LLAVA_TOKENIZE_ADD_BOS, "chat_prefix_ids");
    check_tokenize(lm, "\nWhat is in the picture? ASSISTANT:", 0, "chat_suffix_ids");

    char buf[64];
    size_t len = 99;
    ck_assert_int_eq(llava_token_to_piece(lm, 450, 0, buf, sizeof buf, &len), LLAVA_OK);
    ck_assert_str_eq(buf, " The");
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(llava_token_to_piece(lm, 2, LLAVA_PIECE_SPECIAL, buf, sizeof buf, &len), LLAVA_OK);
    ck_assert_str_eq(buf, "</s>");
    ck_assert_int_eq(llava_token_to_piece(lm, NV, 0, buf, sizeof buf, &len), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_token_to_piece(lm, -1, 0, buf, sizeof buf, &len), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_token_to_piece(NULL, 450, 0, buf, sizeof buf, &len), LLAVA_E_INVALID_ARG);

    ck_assert_int_eq(llava_lm_meta_str(lm, "general.name", buf, sizeof buf, &len), LLAVA_OK);
    ck_assert_str_eq(buf, "tiny-llava-ref-lm");
    ck_assert_uint_eq(len, 17);
    ck_assert_int_eq(llava_lm_meta_str(lm, "general.name", buf, 17, &len), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 17);
    ck_assert_int_eq(llava_lm_meta_str(lm, "general.name", NULL, 0, &len), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_int_eq(llava_lm_meta_str(lm, "general.nope", buf, sizeof buf, &len), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_lm_meta_str(lm, "llama.context_length", buf, sizeof buf, &len), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_lm_n_vocab(NULL), 0);
    ck_assert_int_eq(llava_lm_token_bos(NULL), -1);
    llava_free_lm(lm);
    llava_free_lm(NULL);
}
END_TEST

/* ---- malformed models ------------------------------------------------------ */

enum edit_kind {
    EDIT_NONE, EDIT_U32, EDIT_F32, EDIT_STR, EDIT_ARR_I32, EDIT_DROP, EDIT_RESHAPE, EDIT_RETYPE,
    EDIT_FUSE_QKV, EDIT_ZERO_BIAS, EDIT_Q8_LAYER0, EDIT_ROPE_FREQS,
};

typedef struct variant {
    const char    *what;
    enum edit_kind kind;
    const char    *key;     /* key or tensor name */
    double         value;   /* u32/f32 value; for RESHAPE the new ne[1]; for RETYPE the type */
    const char    *str;     /* string value */
    int32_t        arr[2];
    int            expect;  /* status */
    const char    *needle;  /* must appear in the message */
} variant;

static const variant variants[] = {
    { "head_count 3", EDIT_U32, "llama.attention.head_count", 3, NULL, {0}, LLAVA_E_FORMAT, "head_count" },
    { "head_count 0", EDIT_U32, "llama.attention.head_count", 0, NULL, {0}, LLAVA_E_FORMAT, "head_count" },
    { "head_count_kv 3", EDIT_U32, "llama.attention.head_count_kv", 3, NULL, {0}, LLAVA_E_FORMAT, "head_count_kv" },
    { "head_count_kv 0", EDIT_U32, "llama.attention.head_count_kv", 0, NULL, {0}, LLAVA_E_FORMAT, "head_count_kv" },
    { "block_count 5", EDIT_U32, "llama.block_count", 5, NULL, {0}, LLAVA_E_FORMAT, "blk.2.attn_norm.weight" },
    { "block_count 1", EDIT_U32, "llama.block_count", 1, NULL, {0}, LLAVA_E_FORMAT, "blk.1." },
    { "block_count 2^31", EDIT_U32, "llama.block_count", 2147483648.0, NULL, {0}, LLAVA_E_FORMAT, "block_count" },
    { "embedding_length 0", EDIT_U32, "llama.embedding_length", 0, NULL, {0}, LLAVA_E_FORMAT, "embedding_length" },
    { "embedding_length 256", EDIT_U32, "llama.embedding_length", 256, NULL, {0}, LLAVA_E_FORMAT, "token_embd.weight" },
    { "context_length huge", EDIT_U32, "llama.context_length", 4294967295.0, NULL, {0}, LLAVA_E_FORMAT, "context_length" },
    { "context_length 0", EDIT_U32, "llama.context_length", 0, NULL, {0}, LLAVA_E_FORMAT, "context_length" },
    { "feed_forward_length 512", EDIT_U32, "llama.feed_forward_length", 512, NULL, {0}, LLAVA_E_FORMAT, "blk.0.ffn_gate.weight" },
    { "vocab_size lies", EDIT_U32, "llama.vocab_size", 32001, NULL, {0}, LLAVA_E_FORMAT, "vocab_size" },
    { "rope dims odd", EDIT_U32, "llama.rope.dimension_count", 31, NULL, {0}, LLAVA_E_FORMAT, "dimension_count" },
    { "rms eps 0", EDIT_F32, "llama.attention.layer_norm_rms_epsilon", 0, NULL, {0}, LLAVA_E_FORMAT, "epsilon" },
    { "rms eps missing type", EDIT_STR, "llama.attention.layer_norm_rms_epsilon", 0, "x", {0}, LLAVA_E_FORMAT, "epsilon" },
    { "arch gpt2", EDIT_STR, "general.architecture", 0, "gpt2", {0}, LLAVA_E_UNSUPPORTED, "gpt2" },
    { "MoE", EDIT_U32, "llama.expert_count", 8, NULL, {0}, LLAVA_E_UNSUPPORTED, "expert_count" },
    { "rope yarn", EDIT_STR, "llama.rope.scaling.type", 0, "yarn", {0}, LLAVA_E_UNSUPPORTED, "yarn" },
    { "head_count per-layer differs", EDIT_ARR_I32, "llama.attention.head_count", 0, NULL, {4, 2}, LLAVA_E_UNSUPPORTED, "head_count" },
    { "missing ffn_up", EDIT_DROP, "blk.1.ffn_up.weight", 0, NULL, {0}, LLAVA_E_FORMAT, "blk.1.ffn_up.weight" },
    { "missing token_embd", EDIT_DROP, "token_embd.weight", 0, NULL, {0}, LLAVA_E_FORMAT, "token_embd.weight" },
    { "missing output_norm", EDIT_DROP, "output_norm.weight", 0, NULL, {0}, LLAVA_E_FORMAT, "output_norm.weight" },
    { "attn_k wrong shape", EDIT_RESHAPE, "blk.0.attn_k.weight", 32, NULL, {0}, LLAVA_E_FORMAT, "blk.0.attn_k.weight has shape [128,32], expected [128,64]" },
    { "attn_q wrong shape", EDIT_RESHAPE, "blk.1.attn_q.weight", 64, NULL, {0}, LLAVA_E_FORMAT, "[128,64], expected [128,128]" },
    { "ffn_gate I32", EDIT_RETYPE, "blk.0.ffn_gate.weight", 26, NULL, {0}, LLAVA_E_UNSUPPORTED, "blk.0.ffn_gate.weight" },
    /* accepted variants */
    { "unchanged", EDIT_NONE, NULL, 0, NULL, {0}, LLAVA_OK, NULL },
    { "tied output", EDIT_DROP, "output.weight", 0, NULL, {0}, LLAVA_OK, NULL },
    { "head_count per-layer equal", EDIT_ARR_I32, "llama.attention.head_count", 0, NULL, {4, 4}, LLAVA_OK, NULL },
    { "fused qkv", EDIT_FUSE_QKV, NULL, 0, NULL, {0}, LLAVA_OK, NULL },
    { "zero biases", EDIT_ZERO_BIAS, NULL, 0, NULL, {0}, LLAVA_OK, NULL },
    { "Q8_0 layer 0", EDIT_Q8_LAYER0, NULL, 0, NULL, {0}, LLAVA_OK, NULL },
    { "rope linear x2 (old key)", EDIT_F32, "llama.rope.scale_linear", 2.0, NULL, {0}, LLAVA_OK, NULL },
    { "rope_freqs all 1", EDIT_ROPE_FREQS, NULL, 0, NULL, {0}, LLAVA_OK, NULL },
    { "rope_freqs ramp", EDIT_ROPE_FREQS, NULL, 1, NULL, {0}, LLAVA_OK, NULL },
    { "rope_freqs zero", EDIT_ROPE_FREQS, NULL, 2, NULL, {0}, LLAVA_E_FORMAT, "rope_freqs.weight" },
    { "context_length 100000", EDIT_U32, "llama.context_length", 100000, NULL, {0}, LLAVA_OK, NULL },
};

static int warnings;
static void count_warnings(int level, const char *msg, void *ud)
{
    (void)msg;
    (void)ud;
    warnings += level == 1;
}

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Rebuild the golden LM with one edit; returns a buffer from the writer. */
static void *build_variant(const variant *v, size_t *size)
{
    llv_err err;
    llv_gguf *g = NULL;
    ck_assert_int_eq(llv_gguf_open_file(tu_golden("model-lm.gguf"), 1, &g, &err), LLAVA_OK);
    llv_gguf_writer *w = llv_gguf_writer_new();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(llv_gguf_copy_kv(w, g, NULL), LLAVA_OK);
    switch (v->kind) {
    case EDIT_U32: ck_assert_int_eq(llv_gguf_add_u32(w, v->key, (uint32_t)v->value), LLAVA_OK); break;
    case EDIT_F32: ck_assert_int_eq(llv_gguf_add_f32(w, v->key, (float)v->value), LLAVA_OK); break;
    case EDIT_STR: ck_assert_int_eq(llv_gguf_add_str(w, v->key, v->str), LLAVA_OK); break;
    case EDIT_ARR_I32: ck_assert_int_eq(llv_gguf_add_arr(w, v->key, LLV_GGUF_INT32, v->arr, 2), LLAVA_OK); break;
    default: break;
    }
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        bool is_target = v->key && strcmp(t->name, v->key) == 0;
        if (v->kind == EDIT_DROP && is_target)
            continue;
        if (v->kind == EDIT_RESHAPE && is_target) {
            ne[1] = (int64_t)v->value; /* keep the leading bytes */
            size_t nb = (size_t)(ne[0] * ne[1]) * 2;
            ck_assert_int_eq(llv_gguf_add_tensor(w, t->name, t->type, 2, ne, t->data, nb), LLAVA_OK);
            continue;
        }
        if (v->kind == EDIT_RETYPE && is_target) {
            size_t nb = (size_t)(ne[0] * ne[1]) * 4;
            void *zeros = calloc(1, nb);
            ck_assert_int_eq(llv_gguf_add_tensor(w, t->name, (int)v->value, 2, ne, zeros, nb), LLAVA_OK);
            free(zeros);
            continue;
        }
        if (v->kind == EDIT_FUSE_QKV && strstr(t->name, ".attn_k.weight"))
            continue; /* folded into attn_qkv below */
        if (v->kind == EDIT_FUSE_QKV && strstr(t->name, ".attn_v.weight"))
            continue;
        if (v->kind == EDIT_FUSE_QKV && strstr(t->name, ".attn_q.weight")) {
            char base[64], name[80];
            snprintf(base, sizeof base, "%.*s", (int)(strstr(t->name, ".attn_q") - t->name), t->name);
            snprintf(name, sizeof name, "%s.attn_k.weight", base);
            const llv_gguf_tensor *tk = llv_gguf_find_tensor(g, name);
            snprintf(name, sizeof name, "%s.attn_v.weight", base);
            const llv_gguf_tensor *tv = llv_gguf_find_tensor(g, name);
            size_t nb = t->nbytes + tk->nbytes + tv->nbytes;
            char *cat = malloc(nb);
            memcpy(cat, t->data, t->nbytes);
            memcpy(cat + t->nbytes, tk->data, tk->nbytes);
            memcpy(cat + t->nbytes + tk->nbytes, tv->data, tv->nbytes);
            int64_t qne[2] = { t->ne[0], t->ne[1] + tk->ne[1] + tv->ne[1] };
            snprintf(name, sizeof name, "%s.attn_qkv.weight", base);
            ck_assert_int_eq(llv_gguf_add_tensor(w, name, t->type, 2, qne, cat, nb), LLAVA_OK);
            free(cat);
            continue;
        }
        if (v->kind == EDIT_Q8_LAYER0 && starts_with(t->name, "blk.0.") && t->n_dims == 2) {
            size_t rb;
            ck_assert(llv_row_bytes(LLV_TYPE_Q8_0, ne[0], &rb));
            char *q = malloc(rb * (size_t)ne[1]);
            float *row = malloc((size_t)ne[0] * sizeof(float));
            for (int64_t r = 0; r < ne[1]; r++) {
                llv_dequantize_row(t->type, (const char *)t->data + (size_t)r * (size_t)ne[0] * 2, row, ne[0]);
                ck_assert_int_eq(llv_quantize_row(LLV_TYPE_Q8_0, row, q + (size_t)r * rb, ne[0]), LLAVA_OK);
            }
            ck_assert_int_eq(llv_gguf_add_tensor(w, t->name, LLV_TYPE_Q8_0, 2, ne, q, rb * (size_t)ne[1]), LLAVA_OK);
            free(q);
            free(row);
            continue;
        }
        ck_assert_int_eq(llv_gguf_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data, t->nbytes), LLAVA_OK);
        if (v->kind == EDIT_ZERO_BIAS && strstr(t->name, ".attn_norm.weight")) {
            static const char *const parts[] = { "attn_q", "attn_output", "ffn_down" };
            for (int k = 0; k < 3; k++) {
                char name[80];
                snprintf(name, sizeof name, "%.*s.%s.bias", (int)(strstr(t->name, ".attn_norm") - t->name), t->name,
                         parts[k]);
                float zeros[E] = { 0 };
                int64_t bne[1] = { E };
                ck_assert_int_eq(llv_gguf_add_tensor(w, name, LLV_TYPE_F32, 1, bne, zeros, sizeof zeros), LLAVA_OK);
            }
        }
    }
    if (v->kind == EDIT_ROPE_FREQS) { /* Llama-3 style factors over the 16 rotated pairs */
        float f[16];
        for (int i = 0; i < 16; i++)
            f[i] = v->value == 0 ? 1.0f : v->value == 1 ? 1.0f + (float)i / 4.0f : (i == 5 ? 0.0f : 1.0f);
        int64_t fne[1] = { 16 };
        ck_assert_int_eq(llv_gguf_add_tensor(w, "rope_freqs.weight", LLV_TYPE_F32, 1, fne, f, sizeof f), LLAVA_OK);
    }
    void *out = NULL;
    ck_assert_int_eq(llv_gguf_write_memory(w, &out, size, &err), LLAVA_OK);
    llv_gguf_writer_free(w);
    llv_gguf_close(g);
    return out;
}

START_TEST(test_malformed)
{
    const variant *v = &variants[_i];
    size_t size;
    void *buf = build_variant(v, &size);
    char err[LLAVA_ERRBUF_SIZE] = "";
    llava_lm *lm = (llava_lm *)(uintptr_t)1;
    int rc = llava_load_lm_from_memory(buf, size, NULL, &lm, err, sizeof err);
    printf("variant %-28s -> %d %s\n", v->what, rc, err);
    ck_assert_msg(rc == v->expect, "%s: got %d (%s), expected %d", v->what, rc, err, v->expect);
    if (rc != LLAVA_OK) {
        ck_assert_ptr_null(lm);
        ck_assert_msg(strstr(err, v->needle) != NULL, "%s: message \"%s\" lacks \"%s\"", v->what, err, v->needle);
    } else {
        /* The accepted variants compute the same function as the golden
         * model (except the tied output and the quantized layer). */
        int32_t ids[16];
        int n = tu_golden_ids("text_prompt_ids", ids, 16);
        float *golden = tu_read_file(tu_golden("text_prompt.logits0.f32"), NULL);
        llava_params *p = tu_params(1, 0, 512, 64);
        llava_session *s = tu_session(lm, p);
        ck_assert_int_eq(llava_eval_tokens(s, ids, (size_t)n), LLAVA_OK);
        const float *lg = llava_get_logits(s, NULL);
        double e = tu_rel_err(lg, golden, NV);
        printf("variant %-28s logits rel err vs golden %.3g\n", v->what, e);
        if (v->kind == EDIT_Q8_LAYER0)
            ck_assert_msg(e < 5e-2, "rel err %g", e);
        else if (!(v->kind == EDIT_DROP || v->kind == EDIT_F32 || v->kind == EDIT_U32 ||
                   (v->kind == EDIT_ROPE_FREQS && v->value != 0)))
            ck_assert_msg(e < 1e-4, "rel err %g", e);
        else
            for (int i = 0; i < NV; i++)
                ck_assert(isfinite(lg[i]));
        if (v->kind == EDIT_F32)
            ck_assert(lm->hp.rope_freq_scale == 0.5f);
        if (v->kind == EDIT_DROP)
            ck_assert_ptr_eq(lm->output.data, lm->tok_embd.data);
        if (v->kind == EDIT_ROPE_FREQS) { /* the factor RoPE against the reference forward */
            ck_assert_ptr_nonnull(lm->rope_freqs);
            float *x = malloc((size_t)n * E * sizeof(float)), *ref = malloc(NV * sizeof(float));
            llv_err e2;
            llv_lm_embed_tokens(lm, ids, n, x);
            ck_assert_int_eq(llv_lm_forward_ref(lm, x, n, ref, &e2), LLAVA_OK);
            double er = tu_rel_err(lg, ref, NV);
            printf("variant %-28s fast vs reference forward: rel err %.3g\n", v->what, er);
            ck_assert_msg(er < 1e-5, "rel err %g", er);
            if (v->value == 1)
                ck_assert_msg(e > 1e-3, "the factors had no effect");
            free(x);
            free(ref);
        }
        if (v->kind == EDIT_U32) { /* the long context: N_CTX = 0 is capped, with a warning */
            llava_params *lp = llava_new_params();
            llava_set_log_callback(lp, count_warnings, NULL);
            llava_session *ls = NULL;
            warnings = 0;
            ck_assert_int_eq(llava_new_session(lm, lp, &ls, NULL, 0), LLAVA_OK);
            ck_assert_int_eq(llava_session_n_ctx(ls), LLV_LM_DEFAULT_CTX_CAP);
            ck_assert_int_eq(llava_lm_n_ctx_train(lm), 100000);
            ck_assert_int_eq(warnings, 1);
            llava_free_session(ls);
            llava_free_params(lp);
        }
        llava_free_session(s);
        llava_free_params(p);
        llava_free_lm(lm);
        free(golden);
    }
    llv_free(buf);
}
END_TEST

START_TEST(test_load_errors)
{
    char err[LLAVA_ERRBUF_SIZE] = "";
    llava_lm *lm = NULL;
    ck_assert_int_eq(llava_load_lm(NULL, NULL, &lm, err, sizeof err), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_load_lm(tu_golden("model-lm.gguf"), NULL, NULL, err, sizeof err), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_load_lm("/nonexistent/x.gguf", NULL, &lm, err, sizeof err), LLAVA_E_IO);
    ck_assert_ptr_null(lm);
    /* the mmproj file is a CLIP model: unknown architecture, named */
    ck_assert_int_eq(llava_load_lm(tu_golden("model-mmproj.gguf"), NULL, &lm, err, sizeof err), LLAVA_E_UNSUPPORTED);
    ck_assert_msg(strstr(err, "clip") != NULL, "%s", err);
    /* copy mode (USE_MMAP = 0) from memory: the buffer may go away */
    size_t size = 0;
    void *bytes = tu_read_file(tu_golden("model-lm.gguf"), &size);
    llava_params *p = llava_new_params();
    llava_set_param_int(p, LLAVA_PARAM_USE_MMAP, 0);
    ck_assert_int_eq(llava_load_lm_from_memory(bytes, size, p, &lm, err, sizeof err), LLAVA_OK);
    memset(bytes, 0, size);
    free(bytes);
    ck_assert_int_eq(llava_lm_n_embd(lm), E);
    llava_session *s = tu_session(lm, NULL);
    int32_t t = 1;
    ck_assert_int_eq(llava_eval_tokens(s, &t, 1), LLAVA_OK);
    llava_free_session(s);
    llava_free_lm(lm);
    llava_free_params(p);
}
END_TEST

static int progress_calls;
static int stop_at_progress(float f, void *ud)
{
    (void)f;
    progress_calls++;
    return progress_calls >= *(int *)ud;
}

START_TEST(test_load_progress)
{
    llava_params *p = llava_new_params();
    int stop = 1000;
    llava_set_progress_callback(p, stop_at_progress, &stop);
    llava_lm *lm = NULL;
    progress_calls = 0;
    ck_assert_int_eq(llava_load_lm(tu_golden("model-lm.gguf"), p, &lm, NULL, 0), LLAVA_OK);
    ck_assert_int_ge(progress_calls, 2);
    llava_free_lm(lm);
    stop = 2;
    progress_calls = 0;
    char err[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(llava_load_lm(tu_golden("model-lm.gguf"), p, &lm, err, sizeof err), LLAVA_E_ABORTED);
    ck_assert_ptr_null(lm);
    llava_free_params(p);
}
END_TEST

/* ---- random mutations ------------------------------------------------------- */

/* Random byte edits in the hyperparameter keys and the tensor infos: the
 * load either fails cleanly or gives a model that evaluates without
 * crashing (ASan watches the memory accesses). */
START_TEST(test_mutations)
{
    size_t size;
    unsigned char *orig = tu_read_file(tu_golden("model-lm.gguf"), &size);
    ck_assert_ptr_nonnull(orig);
    llv_gguf *g = NULL;
    llv_err err;
    ck_assert_int_eq(llv_gguf_open_memory(orig, size, 0, &g, &err), LLAVA_OK);
    size_t data_off = llv_gguf_data_offset(g);
    llv_gguf_close(g);
    unsigned char *buf = malloc(size);
    uint64_t rng = 0x1234567;
    int loaded = 0, rejected = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(buf, orig, size);
        for (int e = 0; e < 1 + it % 3; e++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t r = rng >> 33;
            size_t off = (r & 1) ? (size_t)(r >> 1) % 640 : data_off - 1 - (size_t)(r >> 1) % 1400;
            static const unsigned char vals[] = { 0x00, 0xff, 0x7f, 0x80, 0x01, 0x02, 0x10, 0x40 };
            buf[off] = (r >> 20) & 1 ? vals[(r >> 12) % 8] : (unsigned char)(r >> 24);
        }
        llava_lm *lm = NULL;
        char msg[LLAVA_ERRBUF_SIZE];
        int rc = llava_load_lm_from_memory(buf, size, NULL, &lm, msg, sizeof msg);
        if (rc != LLAVA_OK) {
            ck_assert_ptr_null(lm);
            ck_assert_msg(rc == LLAVA_E_FORMAT || rc == LLAVA_E_UNSUPPORTED || rc == LLAVA_E_NOMEM, "%d %s", rc, msg);
            ck_assert(strlen(msg) > 0);
            rejected++;
            continue;
        }
        loaded++;
        llava_params *p = tu_params(1, 1, 512, 16);
        llava_session *s = NULL;
        if (llava_new_session(lm, p, &s, NULL, 0) == LLAVA_OK) {
            int32_t t[3] = { 1, 2, llava_lm_n_vocab(lm) - 1 };
            ck_assert_int_eq(llava_eval_tokens(s, t, 3), LLAVA_OK);
            int32_t next;
            ck_assert_int_eq(llava_sample(s, &next), LLAVA_OK);
            ck_assert(next >= 0 && next < llava_lm_n_vocab(lm));
        }
        llava_free_session(s);
        llava_free_params(p);
        llava_free_lm(lm);
    }
    printf("mutations: %d rejected, %d loaded and evaluated\n", rejected, loaded);
    free(buf);
    free(orig);
}
END_TEST

/* ---- allocation failures ---------------------------------------------------- */

void llv_alloc_fail_inject(long n); /* error.c, test hook */

/* Load, make a session, evaluate, sample, save and restore, with the n-th
 * allocation failing: every step either works or reports LLAVA_E_NOMEM, and
 * nothing leaks (checked by the ASan build). Returns true if all steps
 * succeeded (n was past the last allocation). */
static bool alloc_scenario(long n)
{
    const int32_t toks[3] = { 1, 450, 7483 };
    llava_lm *lm = NULL;
    llava_session *s = NULL, *t = NULL;
    void *state = NULL;
    bool ok = false;
    llv_alloc_fail_inject(n);
    int rc = llava_load_lm(tu_golden("model-lm.gguf"), NULL, &lm, NULL, 0);
    if (rc == LLAVA_OK)
        rc = llava_new_session(lm, NULL, &s, NULL, 0);
    if (rc == LLAVA_OK)
        rc = llava_eval_tokens(s, toks, 3);
    int32_t tok;
    if (rc == LLAVA_OK)
        rc = llava_sample(s, &tok);
    size_t size = 0;
    if (rc == LLAVA_OK) {
        llava_session_save(s, NULL, 0, &size);
        state = malloc(size);
        rc = llava_session_save(s, state, size, &size);
    }
    if (rc == LLAVA_OK)
        rc = llava_new_session(lm, NULL, &t, NULL, 0);
    if (rc == LLAVA_OK)
        rc = llava_session_load(t, state, size);
    llv_alloc_fail_inject(-1);
    ck_assert_msg(rc == LLAVA_OK || rc == LLAVA_E_NOMEM, "allocation %ld: status %d", n, rc);
    if (rc == LLAVA_OK) {
        ok = true;
        ck_assert_int_eq(llava_session_position(t), 3);
    }
    free(state);
    llava_free_session(s);
    llava_free_session(t);
    llava_free_lm(lm);
    return ok;
}

START_TEST(test_alloc_failures)
{
    long n, tried = 0;
    /* every early allocation, then a sample of the later (vocabulary) ones */
    for (n = 0; n < 100000; n += n < 300 ? 1 : 211, tried++)
        if (alloc_scenario(n))
            break;
    printf("allocation failure injection: %ld points tried, all clean; %ld+ allocations\n", tried, n);
    ck_assert_int_gt(n, 10);
}
END_TEST

int main(void)
{
    if (!tu_have_golden()) {
        fprintf(stderr, "golden data not found under %s: skipping\n", tu_data_dir());
        return 77;
    }
    Suite *su = suite_create("lm");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_text_golden, 0, 2);
    tcase_add_test(tc, test_text_greedy_sampler);
    tcase_add_loop_test(tc, test_chat_golden, 0, 4);
    tcase_add_test(tc, test_embed_mismatch);
    tcase_add_test(tc, test_forward_vs_reference);
    tcase_add_test(tc, test_tokenizer_api);
    suite_add_tcase(su, tc);
    TCase *tm = tcase_create("malformed");
    tcase_set_timeout(tm, 600);
    tcase_add_loop_test(tm, test_malformed, 0, (int)(sizeof variants / sizeof variants[0]));
    tcase_add_test(tm, test_load_errors);
    tcase_add_test(tm, test_load_progress);
    tcase_add_test(tm, test_alloc_failures);
    tcase_add_test(tm, test_mutations);
    suite_add_tcase(su, tm);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
