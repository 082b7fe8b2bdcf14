/*
 * fuzz_tokenizer.c - libFuzzer harness for the tokenizers on arbitrary
 * bytes (not necessarily UTF-8). Input: byte 0 picks the vocabulary, byte 1
 * the flags, the rest is the text.
 *   vocab 0: the built-in 380-token SPM vocabulary of llava-mkmodel
 *            (tests/fuzz/data/lm.gguf, always there);
 *   vocab 1: llama SPM (32000 tokens), vocab 2: GPT-2 BPE, vocab 3: phi-3
 *            SPM, from $LLAVA_TEST_DATA/vocab when present (else vocab 0).
 *
 * Properties: no crash or leak; asking for the size (capacity 0) and
 * tokenizing into a buffer of that size agree; ids are in range; too small a
 * buffer gives LLAVA_E_BUFFER_TOO_SMALL with the same count; every id
 * renders with token_to_piece, and the size query agrees with the copy.
 */
#include "fuzz.h"
#include "gguf.h"
#include "tokenizer.h"
#include "llava.h"

FUZZ_DEFINE_REJECTED

static llv_vocab *vocabs[4];

static llv_vocab *load_vocab(void *bytes, size_t size)
{
    if (!bytes)
        return NULL;
    llv_gguf *g = NULL;
    llv_vocab *v = NULL;
    llv_err err = { 0 };
    if (llv_gguf_open_memory(bytes, size, 0, &g, &err) == LLAVA_OK) {
        if (llv_vocab_load(g, &v, &err) != LLAVA_OK)
            v = NULL;
        llv_gguf_close(g);
    }
    free(bytes);
    return v;
}

static void init(void)
{
    static const char *const files[4] = { NULL, "ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf",
                                           "ggml-vocab-phi-3.gguf" };
    size_t size = 0;
    void *b = fuzz_read_data("lm.gguf", &size);
    vocabs[0] = load_vocab(b, size);
    if (!vocabs[0]) {
        fprintf(stderr, "fuzz_tokenizer: cannot load the vocabulary of %s/lm.gguf (set LLAVA_FUZZ_DATA)\n",
                FUZZ_DATA_DIR);
        abort();
    }
    const char *dir = getenv("LLAVA_TEST_DATA");
    for (int i = 1; i < 4; i++) {
        vocabs[i] = vocabs[0];
        if (!dir || !*dir)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/vocab/%s", dir, files[i]);
        llv_vocab *v = load_vocab(fuzz_read_file(path, &size), size);
        if (v)
            vocabs[i] = v;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vocabs[0])
        init();
    if (size < 2)
        return 0;
    const llv_vocab *v = vocabs[data[0] & 3];
    unsigned flags = data[1] & (LLAVA_TOKENIZE_ADD_BOS | LLAVA_TOKENIZE_PARSE_SPECIAL);
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    int32_t n_vocab = llv_vocab_n_tokens(v);

    size_t n = 0;
    int rc = llv_tokenize(v, text, len, flags, NULL, 0, &n);
    if (rc == LLAVA_E_NOMEM)
        return 0;
    FUZZ_CHECK(rc == LLAVA_OK || rc == LLAVA_E_BUFFER_TOO_SMALL);
    FUZZ_CHECK((rc == LLAVA_OK) == (n == 0));
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    if (!ids)
        return 0;
    size_t n2 = 0;
    rc = llv_tokenize(v, text, len, flags, ids, n + 1, &n2);
    FUZZ_CHECK(rc == LLAVA_OK && n2 == n);
    if (n > 1) {
        size_t n3 = 0;
        rc = llv_tokenize(v, text, len, flags, ids, n - 1, &n3);
        FUZZ_CHECK(rc == LLAVA_E_BUFFER_TOO_SMALL && n3 == n);
        FUZZ_CHECK(llv_tokenize(v, text, len, flags, ids, n, &n3) == LLAVA_OK && n3 == n);
    }
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < n_vocab);
        for (unsigned pf = 0; pf <= LLAVA_PIECE_SPECIAL; pf++) {
            char piece[8];
            size_t plen = 0, plen2 = 0;
            rc = llv_token_to_piece(v, ids[i], pf, piece, sizeof piece, &plen);
            FUZZ_CHECK(rc == LLAVA_OK || rc == LLAVA_E_BUFFER_TOO_SMALL);
            if (rc == LLAVA_OK) {
                FUZZ_CHECK(plen < sizeof piece && piece[plen] == '\0');
            } else {
                char *big = malloc(plen + 1);
                FUZZ_CHECK(big != NULL);
                FUZZ_CHECK(llv_token_to_piece(v, ids[i], pf, big, plen + 1, &plen2) == LLAVA_OK && plen2 == plen);
                free(big);
            }
        }
    }
    /* ids that did not come from the tokenizer: out of range must be refused */
    char piece[8];
    FUZZ_CHECK(llv_token_to_piece(v, -1, 0, piece, sizeof piece, NULL) == LLAVA_E_INVALID_ARG);
    FUZZ_CHECK(llv_token_to_piece(v, n_vocab, 0, piece, sizeof piece, NULL) == LLAVA_E_INVALID_ARG);
    free(ids);
    return 0;
}
