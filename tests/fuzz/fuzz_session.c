/*
 * fuzz_session.c - libFuzzer harness for session state buffers
 * (llava_session_load), untrusted input by contract. The LM is the tiny
 * llava-mkmodel model tests/fuzz/data/lm.gguf; seeds
 * (tests/fuzz/corpus/session) are states saved from it after 0, 1 and
 * several evaluated tokens, with F16 and F32 KV caches. Byte 0 of the
 * input picks the KV type of the session that loads the rest.
 *
 * Properties: no crash or leak; a rejected buffer leaves the session exactly
 * as it was (same position and same saved state) and usable; an accepted
 * buffer gives a position within the context, and the session can then
 * sample (if it has logits) and evaluate a token.
 */
#include "fuzz.h"
#include "llava.h"

FUZZ_DEFINE_REJECTED

static llava_lm *lm;
static void *lm_bytes;

static void init(void)
{
    size_t size = 0;
    lm_bytes = fuzz_read_data("lm.gguf", &size);
    char errbuf[LLAVA_ERRBUF_SIZE];
    if (!lm_bytes || llava_load_lm_from_memory(lm_bytes, size, NULL, &lm, errbuf, sizeof errbuf) != LLAVA_OK) {
        fprintf(stderr, "fuzz_session: cannot load %s/lm.gguf (set LLAVA_FUZZ_DATA)\n", FUZZ_DATA_DIR);
        abort();
    }
}

static void *save(const llava_session *s, size_t *size)
{
    FUZZ_CHECK(llava_session_save(s, NULL, 0, size) == LLAVA_E_BUFFER_TOO_SMALL);
    void *b = malloc(*size);
    FUZZ_CHECK(b != NULL);
    FUZZ_CHECK(llava_session_save(s, b, *size, size) == LLAVA_OK);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!lm)
        init();
    fuzz_rejected = 1;
    if (size < 1)
        return 0;
    llava_params *p = llava_new_params();
    if (!p)
        return 0;
    llava_set_param_int(p, LLAVA_PARAM_N_THREADS, 1);
    llava_set_param_int(p, LLAVA_PARAM_N_CTX, 32);
    llava_set_param_int(p, LLAVA_PARAM_KV_TYPE, data[0] & 1);
    llava_set_param_float(p, LLAVA_PARAM_TEMPERATURE, 0.0);
    llava_session *s = NULL;
    if (llava_new_session(lm, p, &s, NULL, 0) != LLAVA_OK) {
        llava_free_params(p);
        return 0;
    }
    static const int32_t prompt[3] = { 1, 70, 71 };
    FUZZ_CHECK(llava_eval_tokens(s, prompt, 3) == LLAVA_OK);
    size_t before_size;
    void *before = save(s, &before_size);

    int rc = llava_session_load(s, data + 1, size - 1);
    fuzz_rejected = rc != LLAVA_OK;
    if (rc != LLAVA_OK) {
        FUZZ_CHECK(rc == LLAVA_E_FORMAT || rc == LLAVA_E_MISMATCH || rc == LLAVA_E_NOMEM ||
                   rc == LLAVA_E_CONTEXT_FULL);
        FUZZ_CHECK(llava_errmsg(s)[0] != '\0');
        FUZZ_CHECK(llava_session_position(s) == 3);
        size_t after_size;
        void *after = save(s, &after_size);
        FUZZ_CHECK(after_size == before_size && memcmp(after, before, before_size) == 0);
        free(after);
    } else {
        int32_t pos = llava_session_position(s);
        FUZZ_CHECK(pos >= 0 && pos <= llava_session_n_ctx(s));
        int32_t t = 0;
        if (llava_get_logits(s, NULL) != NULL) {
            FUZZ_CHECK(llava_sample(s, &t) == LLAVA_OK);
            FUZZ_CHECK(t >= 0 && t < llava_lm_n_vocab(lm));
        } else {
            FUZZ_CHECK(llava_sample(s, &t) == LLAVA_E_STATE);
        }
        rc = llava_eval_tokens(s, &t, 1);
        FUZZ_CHECK(rc == LLAVA_OK || (rc == LLAVA_E_CONTEXT_FULL && pos == llava_session_n_ctx(s)));
    }
    free(before);
    llava_free_session(s);
    llava_free_params(p);
    return 0;
}
