/*
 * chat.c - the chat helper: prompt formats, turns made of text and images,
 * token-by-token replies, KV cache kept between turns. Built on the public
 * verbs (tokenize, eval, sample, token_to_piece), so it doubles as their
 * first user; only the AUTO template detection reads the LM's metadata and
 * hyperparameters directly.
 */
#include <string.h>

#include "handle.h"
#include "lm.h"
#include "params.h"
#include "tokenizer.h"

/* One prompt format: what opens the first and later user turns, and what
 * closes a user turn (the assistant's cue). The system prompt goes into the
 * first opening at "%s", inside system_wrap's "%s" if it is not empty.
 * The reference LLaVA's conversation templates (llava/conversation.py):
 *  - vicuna_v1 (LLaVA-1.5, LLaVA-1.6-Vicuna, ShareGPT4V, BakLLaVA-1):
 *    "{system} USER: <image>\n{question} ASSISTANT:", replies end in "</s>";
 *  - mistral_instruct (LLaVA-1.6-Mistral; separator style LLAMA_2, empty
 *    system): "[INST] <image>\n{question} [/INST]", replies end in "</s>"; a
 *    non-empty system prompt is wrapped as "<<SYS>>\n{system}\n<</SYS>>\n\n"
 *    at the start of the first [INST];
 *  - chatml_direct (LLaVA-1.6-34B). */
typedef struct chat_format {
    const char *first_open;    /* printf-style with one %s for the system prompt */
    const char *next_open;     /* opens turn 2, 3, ...: closes the previous reply too */
    const char *close;         /* ends the user turn */
    const char *default_system;
    const char *system_wrap;   /* one %s; used around a non-empty system prompt (NULL: as is) */
} chat_format;

static const chat_format formats[] = {
    [LLAVA_TEMPLATE_LLAVA_1_5] = {
        "%s USER: ", "</s>USER: ", " ASSISTANT:",
        "A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions.", NULL },
    [LLAVA_TEMPLATE_MISTRAL] = {
        "[INST] %s", "</s>[INST] ", " [/INST]", "", "<<SYS>>\n%s\n<</SYS>>\n\n" },
    [LLAVA_TEMPLATE_CHATML] = {
        "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n", "<|im_end|>\n<|im_start|>user\n",
        "<|im_end|>\n<|im_start|>assistant\n", "Answer the questions.", NULL },
};

struct llava_chat {
    llv_handle     hdr;
    const llava_lm *lm;
    llava_session *session;
    int            format;
    char          *system;          /* NULL: the format's default */
    int64_t        max_tokens;      /* 0: unlimited */
    int            n_turns;         /* user turns opened so far */
    bool           in_turn;         /* a user turn is being built */
    bool           replying;        /* a reply is being generated */
    bool           after_image;     /* the last part of the turn was an image */
    bool           evaluated_any;   /* anything evaluated yet (BOS goes first) */
    int64_t        n_generated;
    char          *text;            /* pending text of the current chunk */
    size_t         text_len, text_cap;
    int32_t       *tokens;          /* tokenizer output scratch */
    size_t         tokens_cap;
    char           utf8_tail[8];    /* bytes of an incomplete UTF-8 character */
    size_t         utf8_tail_len;
    char           piece[256];      /* the text returned by the last step */
};

/* LLaVA-1.6-Mistral's LM without a chat template: Mistral-7B-Instruct-v0.2
 * is the only LM of the LLaVA family with grouped-query attention and RoPE
 * base 1e6 (spec §6.1: head_count_kv 8 of 32, freq_base 1e6). BakLLaVA-1
 * (Mistral-7B-v0.1: GQA, base 1e4) was trained with vicuna_v1, as were the
 * LLaMA/Vicuna-based models (no GQA). */
static bool is_mistral_v02_lm(const llava_lm *lm)
{
    char arch[32];
    if (llava_lm_meta_str(lm, "general.architecture", arch, sizeof arch, NULL) != LLAVA_OK || strcmp(arch, "llama"))
        return false;
    const llv_lm_hparams *hp = &lm->hp;
    return hp->n_head_kv < hp->n_head && hp->rope_freq_base > 0.999e6f && hp->rope_freq_base < 1.001e6f;
}

static bool str_contains(llv_str s, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.len; i++)
        if (memcmp(s.ptr + i, needle, n) == 0)
            return true;
    return false;
}

static int chat_format_from_lm(const llava_lm *lm)
{
    int64_t i = llv_gguf_find_key(lm->gguf, "tokenizer.chat_template");
    if (i >= 0 && llv_gguf_kv_type(lm->gguf, i) == LLV_GGUF_STRING) {
        llv_str tmpl = llv_gguf_kv_str(lm->gguf, i);
        if (str_contains(tmpl, "[INST]"))
            return LLAVA_TEMPLATE_MISTRAL;
        if (str_contains(tmpl, "<|im_start|>"))
            return LLAVA_TEMPLATE_CHATML;
    }
    /* No template we know: legacy LLaVA LMs carry none (spec §8.1). */
    return is_mistral_v02_lm(lm) ? LLAVA_TEMPLATE_MISTRAL : LLAVA_TEMPLATE_LLAVA_1_5;
}

LLAVA_API int llava_new_chat(const llava_lm *lm, const llava_params *params, llava_chat **out,
                             char *errbuf, size_t errbuf_size)
{
    llv_err err;
    llv_err_clear(&err);
    if (!out) {
        llv_fail(&err, LLAVA_E_INVALID_ARG, "llava_new_chat: out is NULL");
        llv_err_to_buf(&err, errbuf, errbuf_size);
        return LLAVA_E_INVALID_ARG;
    }
    *out = NULL;
    llava_chat *c = llv_calloc(1, sizeof *c);
    if (!c) {
        llv_fail(&err, LLAVA_E_NOMEM, "llava_new_chat: out of memory");
        llv_err_to_buf(&err, errbuf, errbuf_size);
        return LLAVA_E_NOMEM;
    }
    int rc = llava_new_session(lm, params, &c->session, errbuf, errbuf_size);
    if (rc != LLAVA_OK) {
        llv_free(c);
        return rc;
    }
    llv_handle_init(&c->hdr, LLV_MAGIC_CHAT);
    c->lm = lm;
    c->format = (int)llv_param_int(params, LLAVA_PARAM_CHAT_TEMPLATE);
    if (c->format == LLAVA_TEMPLATE_AUTO)
        c->format = chat_format_from_lm(lm);
    c->max_tokens = llv_param_int(params, LLAVA_PARAM_MAX_TOKENS);
    *out = c;
    return LLAVA_OK;
}

LLAVA_API void llava_free_chat(llava_chat *c)
{
    if (!llv_handle_is(c, LLV_MAGIC_CHAT))
        return;
    llv_handle_kill(&c->hdr);
    llava_free_session(c->session);
    llv_free(c->system);
    llv_free(c->text);
    llv_free(c->tokens);
    llv_free(c);
}

LLAVA_API llava_session *llava_chat_session(llava_chat *c)
{
    return llv_handle_is(c, LLV_MAGIC_CHAT) ? c->session : NULL;
}

LLAVA_API int llava_chat_template(const llava_chat *c)
{
    return llv_handle_is(c, LLV_MAGIC_CHAT) ? c->format : LLAVA_TEMPLATE_AUTO;
}

LLAVA_API int llava_chat_set_system(llava_chat *c, const char *text)
{
    if (!llv_handle_is(c, LLV_MAGIC_CHAT))
        return LLAVA_E_INVALID_ARG;
    if (c->n_turns > 0)
        return llv_fail(&c->hdr.err, LLAVA_E_STATE, "the system prompt can only be set before the first turn");
    char *copy = NULL;
    if (text && !(copy = llv_strdup(text)))
        return llv_fail(&c->hdr.err, LLAVA_E_NOMEM, "out of memory");
    llv_free(c->system);
    c->system = copy;
    llv_err_clear(&c->hdr.err);
    return LLAVA_OK;
}

/* Append n bytes to the pending chunk text. */
static int text_append(llava_chat *c, const char *s, size_t n)
{
    size_t need;
    if (llv_add_overflow(c->text_len, n + 1, &need))
        return llv_fail(&c->hdr.err, LLAVA_E_NOMEM, "text too long");
    if (need > c->text_cap) {
        size_t cap = LLV_MAX(need, c->text_cap * 2);
        char *t = llv_realloc(c->text, cap);
        if (!t)
            return llv_fail(&c->hdr.err, LLAVA_E_NOMEM, "out of memory for %zu bytes of text", cap);
        c->text = t;
        c->text_cap = cap;
    }
    memcpy(c->text + c->text_len, s, n);
    c->text_len += n;
    c->text[c->text_len] = '\0';
    return LLAVA_OK;
}

/* Append tmpl with its one "%s" replaced by text. */
static int text_append_around(llava_chat *c, const char *tmpl, const char *text)
{
    const char *mark = strstr(tmpl, "%s");
    int rc = text_append(c, tmpl, (size_t)(mark - tmpl));
    if (rc == LLAVA_OK)
        rc = text_append(c, text, strlen(text));
    if (rc == LLAVA_OK)
        rc = text_append(c, mark + 2, strlen(mark + 2));
    return rc;
}

/* The session's failure becomes the chat's. */
static int session_fail(llava_chat *c, int rc)
{
    return llv_fail(&c->hdr.err, rc, "%s", llava_errmsg(c->session));
}

/* Tokenize and evaluate the pending text as one chunk (BOS only before the
 * very first chunk of the conversation). */
static int flush_text(llava_chat *c)
{
    if (c->text_len == 0)
        return LLAVA_OK;
    unsigned flags = LLAVA_TOKENIZE_PARSE_SPECIAL | (c->evaluated_any ? 0u : LLAVA_TOKENIZE_ADD_BOS);
    size_t n = 0;
    int rc = llava_tokenize(c->lm, c->text, c->text_len, flags, c->tokens, c->tokens_cap, &n);
    if (rc == LLAVA_E_BUFFER_TOO_SMALL) {
        int32_t *t = llv_realloc(c->tokens, n * sizeof *t);
        if (!t)
            return llv_fail(&c->hdr.err, LLAVA_E_NOMEM, "out of memory for %zu tokens", n);
        c->tokens = t;
        c->tokens_cap = n;
        rc = llava_tokenize(c->lm, c->text, c->text_len, flags, c->tokens, c->tokens_cap, &n);
    }
    if (rc != LLAVA_OK)
        return llv_fail(&c->hdr.err, rc, "tokenizing the prompt failed: %s", llava_strerror(rc));
    if (n > 0) {
        rc = llava_eval_tokens(c->session, c->tokens, n);
        if (rc != LLAVA_OK)
            return session_fail(c, rc);
        c->evaluated_any = true;
    }
    c->text_len = 0;
    return LLAVA_OK;
}

/* Open a user turn if none is being built: ends a reply in progress, then
 * writes the format's opening. */
static int open_turn(llava_chat *c)
{
    if (c->in_turn)
        return LLAVA_OK;
    const chat_format *f = &formats[c->format];
    int rc;
    if (c->n_turns == 0) {
        const char *sys = c->system ? c->system : f->default_system;
        const char *mark = strstr(f->first_open, "%s");
        rc = text_append(c, f->first_open, (size_t)(mark - f->first_open));
        if (rc == LLAVA_OK)
            rc = sys[0] && f->system_wrap ? text_append_around(c, f->system_wrap, sys)
                                          : text_append(c, sys, strlen(sys));
        if (rc == LLAVA_OK)
            rc = text_append(c, mark + 2, strlen(mark + 2));
    } else {
        rc = text_append(c, f->next_open, strlen(f->next_open));
    }
    if (rc != LLAVA_OK)
        return rc;
    c->in_turn = true;
    c->replying = false;
    c->after_image = false;
    c->n_turns++;
    return LLAVA_OK;
}

LLAVA_API int llava_chat_add_text(llava_chat *c, const char *text)
{
    if (!llv_handle_is(c, LLV_MAGIC_CHAT))
        return LLAVA_E_INVALID_ARG;
    if (!text)
        return llv_fail(&c->hdr.err, LLAVA_E_INVALID_ARG, "text is NULL");
    size_t saved = c->text_len;
    bool was_in_turn = c->in_turn;
    int rc = open_turn(c);
    /* LLaVA puts the question on the line after the image ("<image>\n..."). */
    if (rc == LLAVA_OK && c->after_image)
        rc = text_append(c, "\n", 1);
    if (rc == LLAVA_OK)
        rc = text_append(c, text, strlen(text));
    if (rc != LLAVA_OK) {
        c->text_len = saved;
        if (!was_in_turn && c->in_turn) {
            c->in_turn = false;
            c->n_turns--;
        }
        return rc;
    }
    c->after_image = false;
    llv_err_clear(&c->hdr.err);
    return LLAVA_OK;
}

LLAVA_API int llava_chat_add_image(llava_chat *c, const llava_embed *embed)
{
    if (!llv_handle_is(c, LLV_MAGIC_CHAT))
        return LLAVA_E_INVALID_ARG;
    if (!embed)
        return llv_fail(&c->hdr.err, LLAVA_E_INVALID_ARG, "embed is NULL");
    if (llava_embed_n_embd(embed) != llava_lm_n_embd(c->lm))
        return llv_fail(&c->hdr.err, LLAVA_E_MISMATCH, "the image embedding is %d wide but the LM is %d wide",
                        (int)llava_embed_n_embd(embed), (int)llava_lm_n_embd(c->lm));
    int rc = open_turn(c);
    if (rc == LLAVA_OK)
        rc = flush_text(c);
    if (rc != LLAVA_OK)
        return rc;
    rc = llava_eval_embed(c->session, embed);
    if (rc != LLAVA_OK)
        return session_fail(c, rc);
    c->evaluated_any = true;
    c->after_image = true;
    llv_err_clear(&c->hdr.err);
    return LLAVA_OK;
}

/* Render a token into c->piece, holding back an incomplete UTF-8 tail. */
static void render_piece(llava_chat *c, int32_t token, size_t *len)
{
    char buf[sizeof c->piece - sizeof c->utf8_tail];
    size_t n = 0;
    if (llava_token_to_piece(c->lm, token, 0, buf, sizeof buf, &n) != LLAVA_OK)
        n = 0;
    size_t total = c->utf8_tail_len + n;
    memcpy(c->piece, c->utf8_tail, c->utf8_tail_len);
    memcpy(c->piece + c->utf8_tail_len, buf, n);
    size_t done = llv_utf8_complete_prefix(c->piece, total);
    c->utf8_tail_len = LLV_MIN(total - done, sizeof c->utf8_tail);
    memcpy(c->utf8_tail, c->piece + done, c->utf8_tail_len);
    c->piece[done] = '\0';
    *len = done;
}

static void end_reply(llava_chat *c)
{
    c->replying = false;
    c->utf8_tail_len = 0;
}

LLAVA_API int llava_chat_step(llava_chat *c, int32_t *token, const char **piece, size_t *piece_len, int *done)
{
    int32_t tok = -1;
    size_t len = 0;
    int finished = 1, rc = LLAVA_OK;
    if (!llv_handle_is(c, LLV_MAGIC_CHAT))
        return LLAVA_E_INVALID_ARG;
    c->piece[0] = '\0';
    if (c->in_turn) {
        const chat_format *f = &formats[c->format];
        rc = text_append(c, f->close, strlen(f->close));
        if (rc == LLAVA_OK)
            rc = flush_text(c);
        if (rc != LLAVA_OK)
            goto out;
        c->in_turn = false;
        c->replying = true;
        c->n_generated = 0;
        c->utf8_tail_len = 0;
    }
    if (!c->replying)
        goto out; /* nothing to answer: done */
    if ((c->max_tokens > 0 && c->n_generated >= c->max_tokens) ||
        llava_session_position(c->session) >= llava_session_n_ctx(c->session)) {
        end_reply(c);
        goto out;
    }
    rc = llava_sample(c->session, &tok);
    if (rc != LLAVA_OK) {
        rc = session_fail(c, rc);
        tok = -1;
        goto out;
    }
    if (tok == llava_lm_token_eos(c->lm)) {
        end_reply(c); /* the next turn's opening writes the separator */
        tok = -1;
        goto out;
    }
    rc = llava_eval_tokens(c->session, &tok, 1);
    if (rc == LLAVA_E_CONTEXT_FULL) {
        end_reply(c);
        rc = LLAVA_OK;
        goto out;
    }
    if (rc != LLAVA_OK) {
        rc = session_fail(c, rc);
        tok = -1;
        goto out;
    }
    c->n_generated++;
    render_piece(c, tok, &len);
    finished = 0;
out:
    if (rc == LLAVA_OK)
        llv_err_clear(&c->hdr.err);
    if (token)
        *token = rc == LLAVA_OK ? tok : -1;
    if (piece)
        *piece = c->piece;
    if (piece_len)
        *piece_len = rc == LLAVA_OK ? len : 0;
    if (done)
        *done = rc == LLAVA_OK ? finished : 1;
    return rc;
}

LLAVA_API int llava_chat_generate(llava_chat *c, llava_token_fn fn, void *ud)
{
    for (;;) {
        int32_t tok;
        const char *piece;
        size_t len;
        int done;
        int rc = llava_chat_step(c, &tok, &piece, &len, &done);
        if (rc != LLAVA_OK || done)
            return rc;
        if (fn && fn(tok, piece, len, ud) != 0) {
            end_reply(c);
            return LLAVA_OK;
        }
    }
}
