/*
 * fuzz_lm.c - libFuzzer harness: an LM GGUF file loaded from memory, then
 * used. Seeds (tests/fuzz/corpus/lm) are tiny llava-mkmodel LMs, so mutations
 * give files that parse but lie about hyperparameters, shapes and types.
 *
 * Properties: loading never crashes or leaks; a rejected file gives *out
 * NULL and a message; an accepted file has sane facts and can tokenize,
 * evaluate a few tokens, sample, save and restore its state without any
 * out-of-bounds access (sanitizers) or an error other than the documented ones.
 */
#include "fuzz.h"
#include "llava.h"

FUZZ_DEFINE_REJECTED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llava_params *p = llava_new_params();
    if (!p)
        return 0;
    llava_set_param_int(p, LLAVA_PARAM_N_THREADS, 1);
    llava_set_param_int(p, LLAVA_PARAM_USE_MMAP, 1);  /* in place: data outlives the handle */
    llava_set_param_int(p, LLAVA_PARAM_N_CTX, 8);     /* whatever the file says */
    llava_set_param_int(p, LLAVA_PARAM_N_BATCH, 4);
    llava_set_param_float(p, LLAVA_PARAM_TEMPERATURE, 0.0);

    char errbuf[LLAVA_ERRBUF_SIZE] = "";
    llava_lm *lm = (llava_lm *)&errbuf; /* must be overwritten */
    int rc = llava_load_lm_from_memory(data, size, p, &lm, errbuf, sizeof errbuf);
    fuzz_rejected = rc != LLAVA_OK;
    if (rc != LLAVA_OK) {
        FUZZ_CHECK(lm == NULL && errbuf[0] != '\0');
        llava_free_params(p);
        return 0;
    }
    int32_t n_vocab = llava_lm_n_vocab(lm);
    FUZZ_CHECK(n_vocab > 0 && llava_lm_n_embd(lm) > 0);
    FUZZ_CHECK(llava_lm_token_bos(lm) >= -1 && llava_lm_token_bos(lm) < n_vocab);
    FUZZ_CHECK(llava_lm_token_eos(lm) >= -1 && llava_lm_token_eos(lm) < n_vocab);

    char name[64];
    (void)llava_lm_meta_str(lm, "general.name", name, sizeof name, NULL);

    int32_t toks[8];
    size_t n = 0;
    rc = llava_tokenize(lm, "Hi!\n", 4, LLAVA_TOKENIZE_ADD_BOS, toks, 8, &n);
    FUZZ_CHECK(rc == LLAVA_OK || rc == LLAVA_E_BUFFER_TOO_SMALL);
    if (rc != LLAVA_OK)
        n = 0;
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(toks[i] >= 0 && toks[i] < n_vocab);
    for (int32_t id = 0; id < n_vocab && id < 32; id++) {
        char piece[32];
        rc = llava_token_to_piece(lm, id, LLAVA_PIECE_SPECIAL, piece, sizeof piece, NULL);
        FUZZ_CHECK(rc == LLAVA_OK || rc == LLAVA_E_BUFFER_TOO_SMALL);
    }

    llava_session *s = NULL;
    rc = llava_new_session(lm, p, &s, errbuf, sizeof errbuf);
    if (rc == LLAVA_OK) {
        if (n == 0) {
            toks[0] = 0;
            n = 1;
        }
        rc = llava_eval_tokens(s, toks, n);
        FUZZ_CHECK(rc == LLAVA_OK || rc == LLAVA_E_CONTEXT_FULL);
        if (rc == LLAVA_OK) {
            int32_t nv = 0;
            FUZZ_CHECK(llava_get_logits(s, &nv) != NULL && nv == n_vocab);
            int32_t t = -1;
            FUZZ_CHECK(llava_sample(s, &t) == LLAVA_OK && t >= 0 && t < n_vocab);
            rc = llava_eval_tokens(s, &t, 1);
            FUZZ_CHECK(rc == LLAVA_OK || rc == LLAVA_E_CONTEXT_FULL);
        }
        size_t need = 0;
        FUZZ_CHECK(llava_session_save(s, NULL, 0, &need) == LLAVA_E_BUFFER_TOO_SMALL && need > 0);
        void *state = malloc(need);
        if (state) {
            FUZZ_CHECK(llava_session_save(s, state, need, &need) == LLAVA_OK);
            int32_t pos = llava_session_position(s);
            FUZZ_CHECK(llava_session_rewind(s, 0) == LLAVA_OK);
            FUZZ_CHECK(llava_session_load(s, state, need) == LLAVA_OK);
            FUZZ_CHECK(llava_session_position(s) == pos);
            free(state);
        }
        llava_free_session(s);
    } else {
        FUZZ_CHECK(s == NULL && rc != LLAVA_E_INTERNAL);
    }
    llava_free_lm(lm);
    llava_free_params(p);
    return 0;
}
