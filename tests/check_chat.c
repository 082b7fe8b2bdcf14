/*
 * check_chat.c - the chat helper end to end on the tiny-dev golden pair,
 * through the public API only:
 *  - the LLaVA-1.5 prompt with the golden image embedding reproduces the
 *    golden greedy ids (an independent PyTorch implementation made them);
 *  - a two-turn chat gives the same tokens as one evaluation of the
 *    concatenated prompt;
 *  - an embedding saved and loaded back gives the same tokens as the
 *    freshly encoded one, and both give the golden ids.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llava.h"
#include "gguf.h"

static char data_dir[768];
static const char *QUESTION = "What is in the picture?";
static const char *SYSTEM = "A chat between a curious human and an artificial intelligence assistant. "
                            "The assistant gives helpful, detailed, and polite answers to the human's questions.";

static void path_of(char *buf, size_t n, const char *rel)
{
    snprintf(buf, n, "%s/%s", data_dir, rel);
}

/* Reads "key: 1,2,3" from golden.txt into ids; returns the count. */
static size_t golden_ids(const char *key, int32_t *ids, size_t cap)
{
    char path[1200], line[8192];
    path_of(path, sizeof path, "golden/tiny-dev/golden.txt");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t n = 0, klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) || line[klen] != ':')
            continue;
        for (char *s = line + klen + 1; *s && n < cap;) {
            char *end;
            long v = strtol(s, &end, 10);
            if (end == s)
                break;
            ids[n++] = (int32_t)v;
            s = *end == ',' ? end + 1 : end;
        }
        break;
    }
    fclose(f);
    ck_assert_msg(n > 0, "no %s in golden.txt", key);
    return n;
}

static float *read_f32(const char *rel, size_t n)
{
    char path[1200];
    path_of(path, sizeof path, rel);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    float *v = malloc(n * sizeof *v);
    ck_assert_uint_eq(fread(v, sizeof *v, n, f), n);
    fclose(f);
    return v;
}

static llava_lm *load_golden_lm(void)
{
    char path[1200], err[LLAVA_ERRBUF_SIZE];
    path_of(path, sizeof path, "golden/tiny-dev/model-lm.gguf");
    llava_lm *lm = NULL;
    ck_assert_msg(llava_load_lm(path, NULL, &lm, err, sizeof err) == LLAVA_OK, "load lm: %s", err);
    return lm;
}

static llava_params *greedy_params(int max_tokens)
{
    llava_params *p = llava_new_params();
    ck_assert_int_eq(llava_set_param_float(p, LLAVA_PARAM_TEMPERATURE, 0.0), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_MAX_TOKENS, max_tokens), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_CHAT_TEMPLATE, LLAVA_TEMPLATE_LLAVA_1_5), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_N_CTX, 2048), LLAVA_OK);
    return p;
}

typedef struct collected {
    int32_t ids[256];
    size_t n;
} collected;

static int collect(int32_t token, const char *piece, size_t len, void *ud)
{
    collected *c = ud;
    if (c->n < 256)
        c->ids[c->n++] = token;
    return 0;
}

static llava_embed *golden_embed(const char *image)
{
    char rel[256], err[LLAVA_ERRBUF_SIZE];
    snprintf(rel, sizeof rel, "golden/tiny-dev/%s.embd.f32", image);
    float *v = read_f32(rel, 576 * 128);
    llava_embed *e = NULL;
    ck_assert_msg(llava_new_embed(v, 576, 128, &e, err, sizeof err) == LLAVA_OK, "new_embed: %s", err);
    free(v);
    return e;
}

/* One user turn: image then question; returns the generated ids. */
static void chat_image_question(llava_lm *lm, const llava_embed *e, collected *out)
{
    llava_params *p = greedy_params(32);
    llava_chat *chat = NULL;
    char err[LLAVA_ERRBUF_SIZE];
    ck_assert_msg(llava_new_chat(lm, p, &chat, err, sizeof err) == LLAVA_OK, "new_chat: %s", err);
    ck_assert_int_eq(llava_chat_template(chat), LLAVA_TEMPLATE_LLAVA_1_5);
    ck_assert_msg(llava_chat_add_image(chat, e) == LLAVA_OK, "%s", llava_errmsg(chat));
    ck_assert_int_eq(llava_chat_add_text(chat, QUESTION), LLAVA_OK);
    out->n = 0;
    ck_assert_msg(llava_chat_generate(chat, collect, out) == LLAVA_OK, "%s", llava_errmsg(chat));
    llava_free_chat(chat);
    llava_free_params(p);
}

static void assert_ids_equal(const int32_t *got, size_t n_got, const int32_t *want, size_t n_want)
{
    ck_assert_uint_eq(n_got, n_want);
    for (size_t i = 0; i < n_want; i++)
        ck_assert_msg(got[i] == want[i], "token %zu: got %d, want %d", i, got[i], want[i]);
}

START_TEST(test_golden_chat)
{
    static const char *images[] = { "shapes336.png", "test-1.jpeg" };
    const char *image = images[_i];
    llava_lm *lm = load_golden_lm();
    llava_embed *e = golden_embed(image);
    collected got;
    chat_image_question(lm, e, &got);
    char key[64];
    int32_t want[64];
    snprintf(key, sizeof key, "chat_greedy32[%s]", image);
    size_t n = golden_ids(key, want, 64);
    assert_ids_equal(got.ids, got.n, want, n);
    llava_free_embed(e);
    llava_free_lm(lm);
}
END_TEST

/* The chat's prompt must be exactly the golden prefix / suffix ids. */
START_TEST(test_prompt_tokens)
{
    llava_lm *lm = load_golden_lm();
    int32_t want[128], got[128];
    size_t n_want, n_got;
    char text[1024];
    snprintf(text, sizeof text, "%s USER: ", SYSTEM);
    n_want = golden_ids("chat_prefix_ids", want, 128);
    ck_assert_int_eq(llava_tokenize(lm, text, strlen(text), LLAVA_TOKENIZE_ADD_BOS | LLAVA_TOKENIZE_PARSE_SPECIAL,
                                    got, 128, &n_got), LLAVA_OK);
    assert_ids_equal(got, n_got, want, n_want);
    snprintf(text, sizeof text, "\n%s ASSISTANT:", QUESTION);
    n_want = golden_ids("chat_suffix_ids", want, 128);
    ck_assert_int_eq(llava_tokenize(lm, text, strlen(text), LLAVA_TOKENIZE_PARSE_SPECIAL, got, 128, &n_got), LLAVA_OK);
    assert_ids_equal(got, n_got, want, n_want);
    llava_free_lm(lm);
}
END_TEST

static size_t tokenize_append(llava_lm *lm, const char *text, unsigned flags, int32_t *buf, size_t at, size_t cap)
{
    size_t n = 0;
    ck_assert_int_eq(llava_tokenize(lm, text, strlen(text), flags, buf + at, cap - at, &n), LLAVA_OK);
    return at + n;
}

START_TEST(test_two_turns_equal_concatenation)
{
    llava_lm *lm = load_golden_lm();
    llava_embed *e = golden_embed("shapes336.png");
    llava_params *p = greedy_params(12);
    char err[LLAVA_ERRBUF_SIZE];

    /* Two turns through the chat helper. */
    llava_chat *chat = NULL;
    ck_assert_msg(llava_new_chat(lm, p, &chat, err, sizeof err) == LLAVA_OK, "%s", err);
    collected r1 = { .n = 0 }, r2 = { .n = 0 };
    ck_assert_int_eq(llava_chat_add_image(chat, e), LLAVA_OK);
    ck_assert_int_eq(llava_chat_add_text(chat, QUESTION), LLAVA_OK);
    ck_assert_int_eq(llava_chat_generate(chat, collect, &r1), LLAVA_OK);
    ck_assert_int_eq(llava_chat_add_text(chat, "And what colour is it?"), LLAVA_OK);
    ck_assert_int_eq(llava_chat_generate(chat, collect, &r2), LLAVA_OK);
    ck_assert_uint_gt(r1.n, 0);
    ck_assert_uint_gt(r2.n, 0);
    int32_t chat_pos = llava_session_position(llava_chat_session(chat));
    llava_free_chat(chat);

    /* The same conversation as one concatenated prompt on a fresh session. */
    llava_session *s = NULL;
    ck_assert_msg(llava_new_session(lm, p, &s, err, sizeof err) == LLAVA_OK, "%s", err);
    int32_t toks[1024];
    char text[1024];
    snprintf(text, sizeof text, "%s USER: ", SYSTEM);
    size_t n = tokenize_append(lm, text, LLAVA_TOKENIZE_ADD_BOS | LLAVA_TOKENIZE_PARSE_SPECIAL, toks, 0, 1024);
    ck_assert_int_eq(llava_eval_tokens(s, toks, n), LLAVA_OK);
    ck_assert_int_eq(llava_eval_embed(s, e), LLAVA_OK);
    snprintf(text, sizeof text, "\n%s ASSISTANT:", QUESTION);
    n = tokenize_append(lm, text, LLAVA_TOKENIZE_PARSE_SPECIAL, toks, 0, 1024);
    /* the first reply is evaluated up to (not including) an EOS */
    size_t r1_eval = r1.n;
    memcpy(toks + n, r1.ids, r1_eval * sizeof *toks);
    n += r1_eval;
    n = tokenize_append(lm, "</s>USER: And what colour is it? ASSISTANT:", LLAVA_TOKENIZE_PARSE_SPECIAL, toks, n, 1024);
    ck_assert_int_eq(llava_eval_tokens(s, toks, n), LLAVA_OK);
    int32_t got[64];
    size_t n_got = 0;
    for (; n_got < r2.n; n_got++) {
        ck_assert_int_eq(llava_sample(s, &got[n_got]), LLAVA_OK);
        if (got[n_got] == llava_lm_token_eos(lm))
            break;
        ck_assert_int_eq(llava_eval_tokens(s, &got[n_got], 1), LLAVA_OK);
    }
    assert_ids_equal(got, n_got, r2.ids, r2.n);
    ck_assert_int_eq(llava_session_position(s), chat_pos);
    llava_free_session(s);
    llava_free_params(p);
    llava_free_embed(e);
    llava_free_lm(lm);
}
END_TEST

START_TEST(test_embed_save_load_tokens)
{
    char path[1200], err[LLAVA_ERRBUF_SIZE];
    llava_lm *lm = load_golden_lm();
    llava_vision *vis = NULL;
    llava_projector *proj = NULL;
    path_of(path, sizeof path, "golden/tiny-dev/model-mmproj.gguf");
    ck_assert_msg(llava_load_vision(path, NULL, &vis, err, sizeof err) == LLAVA_OK, "%s", err);
    ck_assert_msg(llava_load_projector(path, NULL, &proj, err, sizeof err) == LLAVA_OK, "%s", err);
    llava_image *img = NULL;
    path_of(path, sizeof path, "images/shapes336.png");
    ck_assert_msg(llava_load_image(path, NULL, &img, err, sizeof err) == LLAVA_OK, "%s", err);
    llava_embed *fresh = NULL;
    ck_assert_msg(llava_encode_image(vis, proj, img, NULL, &fresh) == LLAVA_OK, "%s", llava_errmsg(img));

    /* save -> bytes -> load */
    size_t size = 0;
    ck_assert_int_eq(llava_embed_save(fresh, NULL, 0, &size), LLAVA_E_BUFFER_TOO_SMALL);
    void *buf = malloc(size);
    ck_assert_int_eq(llava_embed_save(fresh, buf, size, &size), LLAVA_OK);
    llava_embed *loaded = NULL;
    ck_assert_msg(llava_embed_load(buf, size, &loaded, err, sizeof err) == LLAVA_OK, "%s", err);
    free(buf);

    collected a, b;
    chat_image_question(lm, fresh, &a);
    chat_image_question(lm, loaded, &b);
    assert_ids_equal(b.ids, b.n, a.ids, a.n);
    int32_t want[64];
    size_t n = golden_ids("chat_greedy32[shapes336.png]", want, 64);
    assert_ids_equal(a.ids, a.n, want, n);

    llava_free_embed(loaded);
    llava_free_embed(fresh);
    llava_free_image(img);
    llava_free_projector(proj);
    llava_free_vision(vis);
    llava_free_lm(lm);
}
END_TEST

START_TEST(test_chat_misuse)
{
    llava_lm *lm = load_golden_lm();
    llava_params *p = greedy_params(4);
    llava_chat *chat = NULL;
    char err[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(llava_new_chat(lm, p, NULL, err, sizeof err), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_chat(lm, p, &chat, err, sizeof err), LLAVA_OK);
    /* stepping with no turn: done at once, no token */
    int32_t tok = 7;
    int done = 0;
    ck_assert_int_eq(llava_chat_step(chat, &tok, NULL, NULL, &done), LLAVA_OK);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(tok, -1);
    ck_assert_int_eq(llava_chat_add_text(chat, NULL), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_chat_add_image(chat, NULL), LLAVA_E_INVALID_ARG);
    /* a 64-wide embedding on a 128-wide LM: mismatch naming both */
    float zeros[64 * 2] = { 0 };
    llava_embed *narrow = NULL;
    ck_assert_int_eq(llava_new_embed(zeros, 2, 64, &narrow, err, sizeof err), LLAVA_OK);
    ck_assert_int_eq(llava_chat_add_image(chat, narrow), LLAVA_E_MISMATCH);
    ck_assert_ptr_nonnull(strstr(llava_errmsg(chat), "64"));
    ck_assert_ptr_nonnull(strstr(llava_errmsg(chat), "128"));
    llava_free_embed(narrow);
    /* system prompt only before the first turn */
    ck_assert_int_eq(llava_chat_set_system(chat, "Be brief."), LLAVA_OK);
    ck_assert_int_eq(llava_chat_add_text(chat, "Hi"), LLAVA_OK);
    ck_assert_int_eq(llava_chat_generate(chat, NULL, NULL), LLAVA_OK);
    ck_assert_int_eq(llava_chat_set_system(chat, "Too late."), LLAVA_E_STATE);
    ck_assert_int_le(llava_session_position(llava_chat_session(chat)), 2048);
    llava_free_chat(chat);
    llava_free_chat(NULL);
    llava_free_params(p);
    llava_free_lm(lm);
}
END_TEST

/* The golden LM in memory with a tokenizer.chat_template added (tmpl not
 * NULL) and/or llama.rope.freq_base replaced (rope_base > 0). */
static void *lm_edited(const char *tmpl, float rope_base, size_t *size)
{
    char path[1200];
    path_of(path, sizeof path, "golden/tiny-dev/model-lm.gguf");
    llv_gguf *g = NULL;
    llv_err err;
    ck_assert_msg(llv_gguf_open_file(path, 1, &g, &err) == LLAVA_OK, "%s", err.msg);
    llv_gguf_writer *w = llv_gguf_writer_new();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(llv_gguf_copy_kv(w, g, rope_base > 0 ? "llama.rope.freq_base" : NULL), LLAVA_OK);
    if (tmpl)
        ck_assert_int_eq(llv_gguf_add_str(w, "tokenizer.chat_template", tmpl), LLAVA_OK);
    if (rope_base > 0)
        ck_assert_int_eq(llv_gguf_add_f32(w, "llama.rope.freq_base", rope_base), LLAVA_OK);
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        ck_assert_int_eq(llv_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes), LLAVA_OK);
    }
    void *buf = NULL;
    ck_assert_int_eq(llv_gguf_write_memory(w, &buf, size, &err), LLAVA_OK);
    llv_gguf_writer_free(w);
    llv_gguf_close(g);
    return buf;
}

/* LLAVA_TEMPLATE_AUTO follows the GGUF's chat template when it says; the
 * Mistral and ChatML formats produce the prompts they are documented to. */
START_TEST(test_template_auto)
{
    static const struct { const char *tmpl; int want; const char *first_turn; } cases[] = {
        { "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}",
          LLAVA_TEMPLATE_MISTRAL, "[INST] Hi [/INST]" },
        { "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
          LLAVA_TEMPLATE_CHATML,
          "<|im_start|>system\nAnswer the questions.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" },
        { "{{ something else }}", LLAVA_TEMPLATE_LLAVA_1_5, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size = 0;
        void *buf = lm_edited(cases[i].tmpl, 0.0f, &size);
        llava_params *p = greedy_params(1);
        ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_CHAT_TEMPLATE, LLAVA_TEMPLATE_AUTO), LLAVA_OK);
        llava_lm *lm = NULL;
        char err[LLAVA_ERRBUF_SIZE];
        ck_assert_msg(llava_load_lm_from_memory(buf, size, p, &lm, err, sizeof err) == LLAVA_OK, "%s", err);
        llava_chat *chat = NULL;
        ck_assert_int_eq(llava_new_chat(lm, p, &chat, err, sizeof err), LLAVA_OK);
        ck_assert_int_eq(llava_chat_template(chat), cases[i].want);
        if (cases[i].first_turn) {
            /* the chat's first turn evaluates exactly BOS + the documented
             * prompt: same length, and the same greedy token as a session
             * given those tokens directly */
            int32_t chat_tok = -1;
            ck_assert_int_eq(llava_chat_add_text(chat, "Hi"), LLAVA_OK);
            ck_assert_int_eq(llava_chat_step(chat, &chat_tok, NULL, NULL, NULL), LLAVA_OK);
            size_t n = 0;
            int32_t toks[256];
            ck_assert_int_eq(llava_tokenize(lm, cases[i].first_turn, strlen(cases[i].first_turn),
                                            LLAVA_TOKENIZE_ADD_BOS | LLAVA_TOKENIZE_PARSE_SPECIAL, toks, 256, &n), LLAVA_OK);
            ck_assert_int_eq(llava_session_position(llava_chat_session(chat)), (int32_t)n + 1);
            llava_session *s = NULL;
            ck_assert_int_eq(llava_new_session(lm, p, &s, err, sizeof err), LLAVA_OK);
            ck_assert_int_eq(llava_eval_tokens(s, toks, n), LLAVA_OK);
            int32_t direct_tok = -1;
            ck_assert_int_eq(llava_sample(s, &direct_tok), LLAVA_OK);
            ck_assert_int_eq(chat_tok, direct_tok);
            llava_free_session(s);
        }
        llava_free_chat(chat);
        llava_free_lm(lm);
        llava_free_params(p);
        llv_free(buf);
    }
}
END_TEST

/* The chat's first turn evaluates exactly BOS + want (same position, same
 * greedy token as a session given those tokens). */
static void assert_first_turn(llava_lm *lm, llava_params *p, llava_chat *chat, const char *user, const char *want)
{
    char err[LLAVA_ERRBUF_SIZE];
    int32_t chat_tok = -1, direct_tok = -1, toks[256];
    size_t n = 0;
    ck_assert_int_eq(llava_chat_add_text(chat, user), LLAVA_OK);
    ck_assert_int_eq(llava_chat_step(chat, &chat_tok, NULL, NULL, NULL), LLAVA_OK);
    ck_assert_int_eq(llava_tokenize(lm, want, strlen(want), LLAVA_TOKENIZE_ADD_BOS | LLAVA_TOKENIZE_PARSE_SPECIAL,
                                    toks, 256, &n), LLAVA_OK);
    ck_assert_int_eq(llava_session_position(llava_chat_session(chat)), (int32_t)n + 1);
    llava_session *s = NULL;
    ck_assert_int_eq(llava_new_session(lm, p, &s, err, sizeof err), LLAVA_OK);
    ck_assert_int_eq(llava_eval_tokens(s, toks, n), LLAVA_OK);
    ck_assert_int_eq(llava_sample(s, &direct_tok), LLAVA_OK);
    ck_assert_int_eq(chat_tok, direct_tok);
    llava_free_session(s);
}

/* LLaVA-1.6-Mistral (reference template mistral_instruct, LLAMA_2 style): a
 * system prompt, when there is one, goes inside the first [INST] as
 * "<<SYS>>\n...\n<</SYS>>\n\n". */
START_TEST(test_mistral_system_prompt)
{
    llava_lm *lm = load_golden_lm();
    llava_params *p = greedy_params(1);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_CHAT_TEMPLATE, LLAVA_TEMPLATE_MISTRAL), LLAVA_OK);
    llava_chat *chat = NULL;
    char err[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(llava_new_chat(lm, p, &chat, err, sizeof err), LLAVA_OK);
    ck_assert_int_eq(llava_chat_set_system(chat, "Be brief."), LLAVA_OK);
    assert_first_turn(lm, p, chat, "Hi", "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    llava_free_chat(chat);
    llava_free_params(p);
    llava_free_lm(lm);
}
END_TEST

/* AUTO without a chat template: an LM with GQA and RoPE base 1e6 is
 * Mistral-7B-Instruct-v0.2 (LLaVA-1.6-Mistral), one with base 1e4 stays
 * vicuna_v1 (BakLLaVA has GQA too), a ChatML template still wins. */
START_TEST(test_template_auto_without_template)
{
    static const struct { const char *tmpl; float base; int want; } cases[] = {
        { NULL, 1e6f, LLAVA_TEMPLATE_MISTRAL },
        { NULL, 1e4f, LLAVA_TEMPLATE_LLAVA_1_5 },
        { NULL, 5e5f, LLAVA_TEMPLATE_LLAVA_1_5 },
        { "<|im_start|>{{ m }}", 1e6f, LLAVA_TEMPLATE_CHATML },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size = 0;
        void *buf = lm_edited(cases[i].tmpl, cases[i].base, &size);
        llava_params *p = greedy_params(1);
        ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_CHAT_TEMPLATE, LLAVA_TEMPLATE_AUTO), LLAVA_OK);
        llava_lm *lm = NULL;
        char err[LLAVA_ERRBUF_SIZE];
        ck_assert_msg(llava_load_lm_from_memory(buf, size, p, &lm, err, sizeof err) == LLAVA_OK, "%s", err);
        llava_chat *chat = NULL;
        ck_assert_int_eq(llava_new_chat(lm, p, &chat, err, sizeof err), LLAVA_OK);
        ck_assert_msg(llava_chat_template(chat) == cases[i].want, "case %zu: template %d, want %d", i,
                      llava_chat_template(chat), cases[i].want);
        if (cases[i].want == LLAVA_TEMPLATE_MISTRAL)
            assert_first_turn(lm, p, chat, "Hi", "[INST] Hi [/INST]");
        llava_free_chat(chat);
        llava_free_lm(lm);
        llava_free_params(p);
        llv_free(buf);
    }
}
END_TEST

int main(void)
{
    const char *d = getenv("LLAVA_TEST_DATA");
    snprintf(data_dir, sizeof data_dir, "%s", d ? d : LLAVA_TEST_DATA);
    Suite *s = suite_create("chat");
    TCase *tc = tcase_create("chat");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_prompt_tokens);
    tcase_add_loop_test(tc, test_golden_chat, 0, 2);
    tcase_add_test(tc, test_two_turns_equal_concatenation);
    tcase_add_test(tc, test_embed_save_load_tokens);
    tcase_add_test(tc, test_chat_misuse);
    tcase_add_test(tc, test_template_auto);
    tcase_add_test(tc, test_mistral_system_prompt);
    tcase_add_test(tc, test_template_auto_without_template);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
