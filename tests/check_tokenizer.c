/*
 * check_tokenizer.c - SentencePiece and byte-level BPE tokenizers.
 *
 * Expected values come from outside the code under test:
 *  - shared/data/vocab/ggml-vocab-NAME.gguf.inp/.out: llama.cpp's test vectors;
 *  - tests/data/tokenizer_pretok.txt: pre-tokenizer splits computed by
 *    Python's re engine (tests/gen_tokenizer_pretok.py);
 *  - slow reference tokenizers written here from the spec text (naive
 *    "scan all pairs" merging), compared on random strings;
 *  - ids and pieces worked out by hand from spec §8.
 */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer_internal.h"

LLV_INTERNAL void llv_alloc_fail_inject(long n);

/* ---- helpers ----------------------------------------------------------------- */

static const char *data_dir(void)
{
    const char *d = getenv("LLAVA_TEST_DATA");
    return d && *d ? d : LLAVA_TEST_DATA;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

typedef struct loaded {
    llv_gguf  *g;
    llv_vocab *v;
} loaded;

static loaded load_vocab(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/%s", data_dir(), name);
    loaded l = { NULL, NULL };
    llv_err err = { 0 };
    int rc = llv_gguf_open_file(path, 1, &l.g, &err);
    ck_assert_msg(rc == LLAVA_OK, "open %s: %s", path, err.msg);
    rc = llv_vocab_load(l.g, &l.v, &err);
    ck_assert_msg(rc == LLAVA_OK, "vocab %s: %s", path, err.msg);
    return l;
}

static void unload(loaded l)
{
    llv_vocab_free(l.v);
    llv_gguf_close(l.g);
}

/* Tokenize into a malloc'ed array (asks for the size first). */
static int32_t *tok(const llv_vocab *v, const char *s, size_t len, unsigned flags, size_t *n)
{
    size_t need = 0;
    int rc = llv_tokenize(v, s, len, flags, NULL, 0, &need);
    ck_assert(rc == LLAVA_OK || rc == LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert(rc == LLAVA_OK ? need == 0 : need > 0);
    int32_t *ids = malloc((need + 1) * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    rc = llv_tokenize(v, s, len, flags, ids, need, n);
    ck_assert_int_eq(rc, LLAVA_OK);
    ck_assert_uint_eq(*n, need);
    return ids;
}

static char *detok(const llv_vocab *v, const int32_t *ids, size_t n, unsigned flags, size_t *len)
{
    size_t need = 0;
    int rc = llv_detokenize(v, ids, n, flags, NULL, 0, &need);
    ck_assert_int_eq(rc, LLAVA_E_BUFFER_TOO_SMALL);
    char *buf = malloc(need + 1);
    ck_assert_ptr_nonnull(buf);
    rc = llv_detokenize(v, ids, n, flags, buf, need + 1, len);
    ck_assert_int_eq(rc, LLAVA_OK);
    ck_assert_uint_eq(*len, need);
    ck_assert_int_eq(buf[need], '\0');
    return buf;
}

static bool ids_eq(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
}

/* ---- golden vectors (spec §8.6) --------------------------------------------- */

static void run_golden(const char *name, int expect_cases)
{
    char path[1024];
    size_t inp_len, out_len;
    snprintf(path, sizeof path, "%s/vocab/%s.inp", data_dir(), name);
    char *inp = read_file(path, &inp_len);
    ck_assert_msg(inp != NULL, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/vocab/%s.out", data_dir(), name);
    char *out = read_file(path, &out_len);
    ck_assert_msg(out != NULL, "cannot read %s", path);
    loaded l = load_vocab(name);

    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    char *p = inp, *o = out;
    int cases = 0, pass = 0, roundtrip = 0;
    for (;;) {
        char *e = strstr(p, sep);
        if (!e)
            break;
        size_t len = (size_t)(e - p);
        char *nl = strchr(o, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        int32_t want[512];
        size_t nw = 0;
        for (char *q = o, *end; ; q = end) {
            long x = strtol(q, &end, 10);
            if (end == q)
                break;
            ck_assert_uint_lt(nw, 512);
            want[nw++] = (int32_t)x;
        }
        o = nl + 1;

        size_t n;
        int32_t *ids = tok(l.v, p, len, 0, &n);
        cases++;
        if (ids_eq(ids, n, want, nw)) {
            pass++;
        } else {
            fprintf(stderr, "%s case %d mismatch: \"%.*s\"\n", name, cases, (int)len, p);
            print_ids("want", want, nw);
            print_ids("got ", ids, n);
        }
        /* Detokenizing gives the input back (SPM: minus the prefix space). */
        size_t dl;
        char *back = detok(l.v, want, nw, 0, &dl);
        if (dl == len && memcmp(back, p, len) == 0)
            roundtrip++;
        else
            fprintf(stderr, "%s case %d: detokenized \"%s\"\n", name, cases, back);
        free(back);
        free(ids);
        p = e + sep_len;
    }
    printf("golden %s: %d/%d cases match, %d/%d round-trip\n", name, pass, cases, roundtrip, cases);
    ck_assert_int_eq(cases, expect_cases);
    ck_assert_int_eq(pass, cases);
    ck_assert_int_eq(roundtrip, cases);
    unload(l);
    free(inp);
    free(out);
}

START_TEST(test_golden_llama_spm) { run_golden("ggml-vocab-llama-spm.gguf", 46); }
END_TEST
START_TEST(test_golden_phi3) { run_golden("ggml-vocab-phi-3.gguf", 46); }
END_TEST
START_TEST(test_golden_gpt2) { run_golden("ggml-vocab-gpt-2.gguf", 46); }
END_TEST

/* ---- the LLaVA prompts of the golden tiny-dev model ------------------------ */

static size_t parse_csv_ids(const char *golden, const char *key, int32_t *out, size_t cap)
{
    const char *p = strstr(golden, key);
    ck_assert_msg(p != NULL, "golden.txt has no %s", key);
    p += strlen(key);
    size_t n = 0;
    for (;;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p)
            break;
        ck_assert_uint_lt(n, cap);
        out[n++] = (int32_t)x;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',')
            break;
    }
    return n;
}

START_TEST(test_llava_prompts)
{
    char path[1024];
    size_t glen;
    snprintf(path, sizeof path, "%s/golden/tiny-dev/golden.txt", data_dir());
    char *golden = read_file(path, &glen);
    ck_assert_msg(golden != NULL, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/golden/tiny-dev/model-lm.gguf", data_dir());
    llv_gguf *g;
    llv_vocab *v;
    llv_err err;
    ck_assert_msg(llv_gguf_open_file(path, 1, &g, &err) == LLAVA_OK, "%s", err.msg);
    ck_assert_msg(llv_vocab_load(g, &v, &err) == LLAVA_OK, "%s", err.msg);

    static const struct { const char *key, *text; unsigned flags; } cases[] = {
        { "text_prompt_ids: ", "The capital of France is", LLAVA_TOKENIZE_ADD_BOS },
        { "chat_prefix_ids: ", "A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions. USER: ",
          LLAVA_TOKENIZE_ADD_BOS },
        { "chat_suffix_ids: ", "\nWhat is in the picture? ASSISTANT:", 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t want[128];
        size_t nw = parse_csv_ids(golden, cases[c].key, want, 128), n;
        int32_t *ids = tok(v, cases[c].text, strlen(cases[c].text), cases[c].flags, &n);
        if (!ids_eq(ids, n, want, nw)) {
            print_ids("want", want, nw);
            print_ids("got ", ids, n);
        }
        ck_assert_msg(ids_eq(ids, n, want, nw), "%s", cases[c].key);
        free(ids);
    }
    llv_vocab_free(v);
    llv_gguf_close(g);
    free(golden);
}
END_TEST

/* ---- hand-checked SPM facts ----------------------------------------------- */

START_TEST(test_spm_hand)
{
    loaded l = load_vocab("ggml-vocab-llama-spm.gguf");
    const llv_vocab *v = l.v;
    size_t n;
    int32_t *ids;

    /* Spec §8.3: "Hello world" -> ▁Hello ▁world. */
    ids = tok(v, "Hello world", 11, 0, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 15043);
    ck_assert_int_eq(ids[1], 3186);
    free(ids);
    llv_str t = llv_vocab_token_text(v, 15043);
    ck_assert_uint_eq(t.len, 8);
    ck_assert(memcmp(t.ptr, "\xE2\x96\x81Hello", 8) == 0);
    ck_assert_int_eq(llv_vocab_find(v, "\xE2\x96\x81world", 8), 3186);
    ck_assert_int_eq(llv_vocab_find(v, "no such token", 13), -1);

    /* BOS only with the flag (add_bos_token = true in the file). */
    ck_assert(llv_vocab_add_bos(v));
    ck_assert_int_eq(llv_vocab_bos(v), 1);
    ck_assert_int_eq(llv_vocab_eos(v), 2);
    ck_assert_int_eq(llv_vocab_n_tokens(v), 32000);
    ids = tok(v, "Hello world", 11, LLAVA_TOKENIZE_ADD_BOS, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 15043);
    ck_assert_int_eq(ids[2], 3186);
    free(ids);
    ids = tok(v, "", 0, LLAVA_TOKENIZE_ADD_BOS, &n);   /* '' with BOS -> [1] */
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], 1);
    free(ids);
    ids = tok(v, "", 0, 0, &n);
    ck_assert_uint_eq(n, 0);
    free(ids);

    /* Special tokens: "</s>" is CONTROL -> only with PARSE_SPECIAL. */
    ids = tok(v, "</s>", 4, LLAVA_TOKENIZE_PARSE_SPECIAL, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], 2);
    free(ids);
    ids = tok(v, "</s>", 4, 0, &n);
    ck_assert_uint_gt(n, 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_ne(ids[i], 2);
    size_t dl;
    char *back = detok(v, ids, n, 0, &dl);
    ck_assert_str_eq(back, "</s>");
    free(back);
    free(ids);
    /* After a special token the next fragment gets the space prefix again:
     * "Hello</s>world" -> ▁Hello </s> ▁world. */
    ids = tok(v, "Hello</s>world", 14, LLAVA_TOKENIZE_PARSE_SPECIAL | LLAVA_TOKENIZE_ADD_BOS, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 15043);
    ck_assert_int_eq(ids[2], 2);
    ck_assert_int_eq(ids[3], 3186);
    free(ids);
    /* "<unk>" is UNKNOWN: matched only with PARSE_SPECIAL as well. */
    ids = tok(v, "<unk><s>", 8, LLAVA_TOKENIZE_PARSE_SPECIAL, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(ids[1], 1);
    free(ids);

    /* Byte fallback: U+0001 has no piece -> <0x01> = id 3 + 1 = 4 after "▁"
     * (the lone "▁" is 29871, spec golden README). */
    ids = tok(v, "\x01", 1, 0, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 29871);
    ck_assert_int_eq(ids[1], 4);
    free(ids);
    /* An invalid byte is a one-byte symbol -> its byte token (0xFF -> 3+255). */
    ids = tok(v, "a\xFF", 2, 0, &n);
    ck_assert_int_eq(ids[n - 1], 258);
    free(ids);
    unload(l);
}
END_TEST

START_TEST(test_buffer_contract)
{
    loaded l = load_vocab("ggml-vocab-llama-spm.gguf");
    int32_t ids[4] = { -7, -7, -7, -7 };
    size_t n = 99;
    ck_assert_int_eq(llv_tokenize(l.v, "Hello world", 11, 0, NULL, 0, &n), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 2);
    n = 99;
    ck_assert_int_eq(llv_tokenize(l.v, "Hello world", 11, 0, ids, 1, &n), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(llv_tokenize(l.v, "Hello world", 11, 0, ids, 2, &n), LLAVA_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 15043);
    ck_assert_int_eq(ids[1], 3186);
    ck_assert_int_eq(ids[2], -7);           /* nothing written past the count */
    /* Bad arguments. */
    ck_assert_int_eq(llv_tokenize(NULL, "a", 1, 0, ids, 4, &n), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_tokenize(l.v, NULL, 1, 0, ids, 4, &n), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_tokenize(l.v, "a", 1, 0, NULL, 4, &n), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_tokenize(l.v, "a", 1, 0, ids, 4, NULL), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_tokenize(l.v, NULL, 0, 0, NULL, 0, &n), LLAVA_OK);
    ck_assert_uint_eq(n, 0);

    /* Pieces: NUL-terminated, so buf_size must exceed the length. */
    char buf[16];
    size_t len = 99;
    ck_assert_int_eq(llv_token_to_piece(l.v, 15043, 0, buf, 6, &len), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(llv_token_to_piece(l.v, 15043, 0, NULL, 0, &len), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(llv_token_to_piece(l.v, 15043, 0, buf, 7, &len), LLAVA_OK);
    ck_assert_str_eq(buf, " Hello");
    ck_assert_int_eq(llv_token_to_piece(l.v, 32000, 0, buf, sizeof buf, &len), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_token_to_piece(l.v, -1, 0, buf, sizeof buf, &len), LLAVA_E_INVALID_ARG);
    /* Detokenize: the same contract. */
    int32_t hw[2] = { 15043, 3186 };
    ck_assert_int_eq(llv_detokenize(l.v, hw, 2, 0, buf, 11, &len), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 11);
    ck_assert_int_eq(llv_detokenize(l.v, hw, 2, 0, buf, 12, &len), LLAVA_OK);
    ck_assert_str_eq(buf, "Hello world");
    int32_t bad[1] = { 40000 };
    ck_assert_int_eq(llv_detokenize(l.v, bad, 1, 0, buf, sizeof buf, &len), LLAVA_E_INVALID_ARG);
    unload(l);
}
END_TEST

static void check_piece(const llv_vocab *v, int32_t id, unsigned flags, const char *want, size_t want_len)
{
    char buf[64];
    size_t len = 99;
    ck_assert_int_eq(llv_token_to_piece(v, id, flags, buf, sizeof buf, &len), LLAVA_OK);
    ck_assert_uint_eq(len, want_len);
    ck_assert(memcmp(buf, want, want_len) == 0);
    ck_assert_int_eq(buf[len], '\0');
}

START_TEST(test_pieces)
{
    loaded l = load_vocab("ggml-vocab-llama-spm.gguf");
    check_piece(l.v, 15043, 0, " Hello", 6);                        /* "▁Hello" */
    ck_assert_int_eq(llv_vocab_find(l.v, "<0x0A>", 6), 13);
    ck_assert_int_eq(llv_vocab_token_type(l.v, 13), LLV_TOKEN_BYTE);
    check_piece(l.v, 13, 0, "\n", 1);                               /* "<0x0A>" */
    check_piece(l.v, 3, 0, "\0", 1);                                /* "<0x00>": a NUL byte */
    check_piece(l.v, 2, 0, "", 0);                                  /* "</s>" CONTROL */
    check_piece(l.v, 2, LLAVA_PIECE_SPECIAL, "</s>", 4);
    check_piece(l.v, 1, 0, "", 0);
    check_piece(l.v, 0, 0, "", 0);                                  /* "<unk>" UNKNOWN */
    check_piece(l.v, 0, LLAVA_PIECE_SPECIAL, "<unk>", 5);
    check_piece(l.v, 29871, 0, " ", 1);                             /* lone "▁" */

    /* Detokenize: leading space of the first piece removed; BOS kept as ""
     * unless LLV_DETOK_REMOVE_SPECIAL, which then keeps the space. */
    int32_t ids[4] = { 1, 15043, 3186, 2 };
    size_t len;
    char *s = detok(l.v, ids, 4, 0, &len);
    ck_assert_str_eq(s, " Hello world");    /* first piece ("" of BOS) has no space to strip */
    free(s);
    s = detok(l.v, ids + 1, 2, 0, &len);
    ck_assert_str_eq(s, "Hello world");
    free(s);
    s = detok(l.v, ids, 4, LLAVA_PIECE_SPECIAL, &len);
    ck_assert_str_eq(s, "<s> Hello world</s>");
    free(s);
    s = detok(l.v, ids, 3, LLV_DETOK_REMOVE_SPECIAL, &len);
    ck_assert_str_eq(s, " Hello world");
    free(s);
    unload(l);

    l = load_vocab("ggml-vocab-gpt-2.gguf");
    int32_t world = llv_vocab_find(l.v, "\xC4\xA0world", 7);           /* "Ġworld" */
    ck_assert_int_ge(world, 0);
    check_piece(l.v, world, 0, " world", 6);
    int32_t nl = llv_vocab_find(l.v, "\xC4\x8A", 2);                   /* "Ċ" = byte 0x0A */
    ck_assert_int_ge(nl, 0);
    check_piece(l.v, nl, 0, "\n", 1);
    check_piece(l.v, 50256, 0, "", 0);                                  /* <|endoftext|> CONTROL */
    check_piece(l.v, 50256, LLAVA_PIECE_SPECIAL, "<|endoftext|>", 13);
    /* GPT-2: no BOS added (add_bos false), special text only with the flag. */
    ck_assert(!llv_vocab_add_bos(l.v));
    size_t n;
    int32_t *t = tok(l.v, "a<|endoftext|>", 14, LLAVA_TOKENIZE_ADD_BOS | LLAVA_TOKENIZE_PARSE_SPECIAL, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(t[0], llv_vocab_find(l.v, "a", 1));
    ck_assert_int_eq(t[1], 50256);
    free(t);
    t = tok(l.v, "a<|endoftext|>", 14, 0, &n);
    ck_assert_uint_gt(n, 2);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_ne(t[i], 50256);
    free(t);
    unload(l);
}
END_TEST

/* ---- a hand-made BPE vocabulary (worked out by hand, spec §8.5) ----------- */

START_TEST(test_bpe_hand)
{
    /* "Ġ" (C4 A0) is the GPT-2 image of the byte ' '. */
    static const char *const texts[] = { "a", "b", "c", "ab", "abc", "\xC4\xA0", "\xC4\xA0" "a" };
    static const char *const mtexts[] = { "a b", "\xC4\xA0 a", "nospace", "ab c d" };
    llv_str toks[7], merges[4];
    for (int i = 0; i < 7; i++)
        toks[i] = (llv_str){ texts[i], strlen(texts[i]) };
    for (int i = 0; i < 4; i++)
        merges[i] = (llv_str){ mtexts[i], strlen(mtexts[i]) };
    llv_vocab_desc d = { .model = LLV_VOCAB_BPE, .pre = LLV_PRE_GPT2, .n_tokens = 7, .tokens = toks,
                         .n_merges = 4, .merges = merges, .bos = 0, .eos = 1, .unk = -1,
                         .add_bos = true, .add_eos = true };
    llv_vocab *v;
    llv_err err;
    ck_assert_int_eq(llv_vocab_new(&d, &v, &err), LLAVA_OK);
    /* GPT-2 split: "abc" | " abc".
     *   "abc":  (a,b) rank 0 -> [ab][c]; "ab c" has no rank     -> 3 2
     *   " abc": (a,b) rank 0 before (Ġ,a) rank 1 -> [Ġ][ab][c]  -> 5 3 2 */
    size_t n;
    int32_t *ids = tok(v, "abc abc", 7, 0, &n);
    int32_t want1[] = { 3, 2, 5, 3, 2 };
    ck_assert(ids_eq(ids, n, want1, 5));
    free(ids);
    /* With ADD_BOS: BOS first, EOS last (add_bos/add_eos of the vocab). */
    ids = tok(v, "ab", 2, LLAVA_TOKENIZE_ADD_BOS, &n);
    int32_t want2[] = { 0, 3, 1 };
    ck_assert(ids_eq(ids, n, want2, 3));
    free(ids);
    /* A byte whose character is no token is dropped (llama.cpp does too). */
    ids = tok(v, "ad", 2, 0, &n);
    int32_t want3[] = { 0 };
    ck_assert(ids_eq(ids, n, want3, 1));
    free(ids);
    size_t len;
    int32_t back_ids[] = { 5, 3, 2 };
    char *back = detok(v, back_ids, 3, 0, &len);
    ck_assert_str_eq(back, " abc");         /* BPE: no prefix space to strip */
    free(back);
    llv_vocab_free(v);

    /* Llama-3: "abc" is a whole token -> emitted without merging
     * (ignore_merges); " abc" is not -> merges as above. */
    d.pre = LLV_PRE_LLAMA3;
    ck_assert_int_eq(llv_vocab_new(&d, &v, &err), LLAVA_OK);
    ids = tok(v, "abc abc", 7, 0, &n);
    int32_t want4[] = { 4, 5, 3, 2 };
    ck_assert(ids_eq(ids, n, want4, 4));
    free(ids);
    llv_vocab_free(v);

    /* Descriptor validation. */
    v = (llv_vocab *)&err;
    d.bos = 7;
    ck_assert_int_eq(llv_vocab_new(&d, &v, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_null(v);
    d.bos = -2;
    ck_assert_int_eq(llv_vocab_new(&d, &v, &err), LLAVA_E_FORMAT);
    d.bos = 0;
    d.pre = 99;
    ck_assert_int_eq(llv_vocab_new(&d, &v, &err), LLAVA_E_UNSUPPORTED);
    d.pre = LLV_PRE_GPT2;
    d.model = 7;
    ck_assert_int_eq(llv_vocab_new(&d, &v, &err), LLAVA_E_UNSUPPORTED);
    d.model = LLV_VOCAB_BPE;
    d.n_tokens = 0;
    ck_assert_int_eq(llv_vocab_new(&d, &v, &err), LLAVA_E_FORMAT);
    /* Empty token texts are renamed, duplicates map to the last id. */
    llv_str dup[3] = { { "x", 1 }, { "", 0 }, { "x", 1 } };
    llv_vocab_desc d2 = { .model = LLV_VOCAB_SPM, .n_tokens = 3, .tokens = dup, .bos = -1, .eos = -1, .unk = -1 };
    ck_assert_int_eq(llv_vocab_new(&d2, &v, &err), LLAVA_OK);
    ck_assert_int_eq(llv_vocab_find(v, "x", 1), 2);
    ck_assert_int_eq(llv_vocab_find(v, "[EMPTY_1]", 9), 1);
    ck_assert_int_eq(llv_vocab_bos(v), -1);
    ck_assert(!llv_vocab_add_bos(v));
    llv_vocab_free(v);
    llv_vocab_free(NULL);
}
END_TEST

/* ---- pre-tokenizer vectors from Python's re ---------------------------------- */

static size_t parse_offsets(const char *s, size_t *out, size_t cap)
{
    size_t n = 0;
    while (*s && *s != '\t' && *s != '\n') {
        char *end;
        unsigned long x = strtoul(s, &end, 10);
        ck_assert_ptr_ne(end, s);
        ck_assert_uint_lt(n, cap);
        out[n++] = x;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

START_TEST(test_pretokenizer_vectors)
{
    char path[1024];
    const char *src = getenv("LLAVA_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/data/tokenizer_pretok.txt", src && *src ? src : ".");
    size_t flen;
    char *text = read_file(path, &flen);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    int cases = 0, pass[2] = { 0, 0 };
    for (char *line = text; *line; ) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        char *t1 = strchr(line, '\t');
        ck_assert_ptr_nonnull(t1);
        char *t2 = strchr(t1 + 1, '\t');
        ck_assert_ptr_nonnull(t2);
        char s[1024];
        size_t sl = 0;
        for (char *h = line; h < t1; h += 2) {
            unsigned x;
            ck_assert_int_eq(sscanf(h, "%2x", &x), 1);
            s[sl++] = (char)x;
        }
        size_t want[2][512], nwant[2];
        nwant[0] = parse_offsets(t1 + 1, want[0], 512);
        nwant[1] = parse_offsets(t2 + 1, want[1], 512);
        static const int pres[2] = { LLV_PRE_GPT2, LLV_PRE_LLAMA3 };
        for (int k = 0; k < 2; k++) {
            size_t *b = NULL, nw = 0;
            ck_assert_int_eq(llv_bpe_pretokenize(pres[k], s, sl, &b, &nw), LLAVA_OK);
            bool ok = nw == nwant[k];
            for (size_t i = 0; ok && i < nw; i++)
                ok = b[i] == want[k][i];
            ok = ok && b[nw] == sl;
            if (ok) {
                pass[k]++;
            } else {
                fprintf(stderr, "pretok %s mismatch on \"%.*s\":", k ? "llama3" : "gpt2", (int)sl, s);
                for (size_t i = 0; i < nw; i++)
                    fprintf(stderr, " %zu", b[i]);
                fprintf(stderr, " | want");
                for (size_t i = 0; i < nwant[k]; i++)
                    fprintf(stderr, " %zu", want[k][i]);
                fprintf(stderr, "\n");
            }
            llv_free(b);
        }
        cases++;
        line = nl + 1;
    }
    printf("pre-tokenizer vectors: gpt2 %d/%d, llama3 %d/%d\n", pass[0], cases, pass[1], cases);
    ck_assert_int_gt(cases, 600);
    ck_assert_int_eq(pass[0], cases);
    ck_assert_int_eq(pass[1], cases);
    free(text);
}
END_TEST

/* ---- slow reference tokenizers (written from the spec, not from lib/) ---- */

/* UTF-8 character length per RFC 3629's table; 1 for an invalid byte. */
static size_t ref_char_len(const unsigned char *s, size_t n)
{
    static const struct { unsigned char lo0, hi0, lo1, hi1; size_t len; } rows[] = {
        { 0xC2, 0xDF, 0x80, 0xBF, 2 }, { 0xE0, 0xE0, 0xA0, 0xBF, 3 }, { 0xE1, 0xEC, 0x80, 0xBF, 3 },
        { 0xED, 0xED, 0x80, 0x9F, 3 }, { 0xEE, 0xEF, 0x80, 0xBF, 3 }, { 0xF0, 0xF0, 0x90, 0xBF, 4 },
        { 0xF1, 0xF3, 0x80, 0xBF, 4 }, { 0xF4, 0xF4, 0x80, 0x8F, 4 },
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (s[0] < rows[r].lo0 || s[0] > rows[r].hi0)
            continue;
        size_t L = rows[r].len;
        if (n < L || s[1] < rows[r].lo1 || s[1] > rows[r].hi1)
            return 1;
        for (size_t i = 2; i < L; i++)
            if (s[i] < 0x80 || s[i] > 0xBF)
                return 1;
        return L;
    }
    return 1;
}

typedef struct rsym { size_t off, len; } rsym;

/* SPM per §8.3 by brute force: repeatedly merge the best-scoring adjacent
 * pair (leftmost on ties); then tokens or <0xXX> bytes. */
static size_t ref_spm(const llv_vocab *v, const char *text, size_t len, int32_t *out)
{
    char *buf = malloc(3 * len + 4);
    size_t bl = 0, no = 0;
    memcpy(buf, "\xE2\x96\x81", 3);
    bl = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + bl, "\xE2\x96\x81", 3);
            bl += 3;
        } else {
            buf[bl++] = text[i];
        }
    }
    rsym *s = malloc(bl * sizeof *s);
    size_t ns = 0;
    for (size_t o = 0; o < bl;) {
        size_t cl = ref_char_len((const unsigned char *)buf + o, bl - o);
        s[ns].off = o;
        s[ns++].len = cl;
        o += cl;
    }
    for (;;) {
        long best = -1;
        float best_score = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            int32_t id = llv_vocab_find(v, buf + s[i].off, s[i].len + s[i + 1].len);
            if (id >= 0 && (best < 0 || llv_vocab_token_score(v, id) > best_score)) {
                best = (long)i;
                best_score = llv_vocab_token_score(v, id);
            }
        }
        if (best < 0)
            break;
        s[best].len += s[best + 1].len;
        memmove(s + best + 1, s + best + 2, (ns - (size_t)best - 2) * sizeof *s);
        ns--;
    }
    for (size_t i = 0; i < ns; i++) {
        int32_t id = llv_vocab_find(v, buf + s[i].off, s[i].len);
        if (id >= 0) {
            out[no++] = id;
            continue;
        }
        for (size_t k = 0; k < s[i].len; k++) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", (unsigned char)buf[s[i].off + k]);
            out[no++] = llv_vocab_find(v, hex, 6);
        }
    }
    free(s);
    free(buf);
    return no;
}

/* BPE merges as sorted "left right" strings for bsearch. */
typedef struct ref_merge { const char *s; size_t len; int32_t rank; } ref_merge;

static int cmp_merge(const void *a, const void *b)
{
    const ref_merge *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

typedef struct ref_bpe {
    ref_merge *m;
    size_t     n;
    uint32_t   byte_cp[256];
} ref_bpe;

static ref_bpe ref_bpe_new(const llv_gguf *g)
{
    ref_bpe r;
    uint64_t n;
    ck_assert_int_eq(llv_gguf_get_arr_str(g, "tokenizer.ggml.merges", &n, NULL), LLAVA_OK);
    int64_t ki = llv_gguf_find_key(g, "tokenizer.ggml.merges");
    r.m = malloc(n * sizeof *r.m);
    r.n = n;
    for (uint64_t i = 0; i < n; i++) {
        llv_str s = llv_gguf_arr_str(g, ki, i);
        r.m[i].s = s.ptr;
        r.m[i].len = s.len;
        r.m[i].rank = (int32_t)i;
    }
    qsort(r.m, n, sizeof *r.m, cmp_merge);
    /* bytes_to_unicode from the GPT-2 paper's encoder.py description. */
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        r.byte_cp[b] = printable ? (uint32_t)b : (uint32_t)(256 + extra++);
    }
    return r;
}

static int32_t ref_rank(const ref_bpe *r, const char *l, size_t nl, const char *rt, size_t nr)
{
    char key[512];
    if (nl + nr + 1 > sizeof key)
        return -1;
    memcpy(key, l, nl);
    key[nl] = ' ';
    memcpy(key + nl + 1, rt, nr);
    ref_merge k = { key, nl + nr + 1, 0 };
    ref_merge *hit = bsearch(&k, r->m, r->n, sizeof *r->m, cmp_merge);
    if (!hit)
        return -1;
    /* Duplicates: the lowest rank. */
    while (hit > r->m && cmp_merge(hit - 1, &k) == 0)
        hit--;
    int32_t best = hit->rank;
    for (; hit < r->m + r->n && cmp_merge(hit, &k) == 0; hit++)
        if (hit->rank < best)
            best = hit->rank;
    return best;
}

/* Byte-level BPE of one word by brute force (lowest rank, leftmost). */
static size_t ref_bpe_word(const llv_vocab *v, const ref_bpe *r, const unsigned char *w, size_t len, int32_t *out)
{
    char *buf = malloc(2 * len + 1);
    rsym *s = malloc(len * sizeof *s);
    size_t bl = 0, ns = 0, no = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = r->byte_cp[w[i]];
        s[ns].off = bl;
        if (cp < 0x80) {
            buf[bl++] = (char)cp;
        } else {
            buf[bl++] = (char)(0xC0 | (cp >> 6));
            buf[bl++] = (char)(0x80 | (cp & 0x3F));
        }
        s[ns].len = bl - s[ns].off;
        ns++;
    }
    for (;;) {
        long best = -1;
        int32_t best_rank = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            int32_t rk = ref_rank(r, buf + s[i].off, s[i].len, buf + s[i + 1].off, s[i + 1].len);
            if (rk >= 0 && (best < 0 || rk < best_rank)) {
                best = (long)i;
                best_rank = rk;
            }
        }
        if (best < 0)
            break;
        s[best].len += s[best + 1].len;
        memmove(s + best + 1, s + best + 2, (ns - (size_t)best - 2) * sizeof *s);
        ns--;
    }
    for (size_t i = 0; i < ns; i++) {
        int32_t id = llv_vocab_find(v, buf + s[i].off, s[i].len);
        ck_assert_int_ge(id, 0);    /* GPT-2: every merge result is a token */
        out[no++] = id;
    }
    free(s);
    free(buf);
    return no;
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Random text: pieces from an alphabet of interesting fragments, or raw bytes. */
static size_t random_text(char *buf, size_t cap, bool raw)
{
    static const char *const pieces[] = {
        "a", "e", "the", "Hello", " ", "  ", "\n", "\t", "'s", "'", "3", "42", ".", ",", "!",
        "\xC3\xA9", "\xE2\x96\x81", "\xE6\x88\x91", "\xF0\x9F\x98\x81", "\xE1\x9E\x80", "<", "</s>", "<s>",
        "s>", "\xE2", "\x96", "\xF0\x9F", "\xC3", "\x80", "\xFF", "\xED\xA0\x80", "\xC0\xAF", "ing", "\r\n",
        "<|endoftext|>", "\xD0\xBD\xD0\xB5",
    };
    size_t len = 0, target = rnd() % (cap / 16);
    while (len < target) {
        if (raw) {
            buf[len++] = (char)(rnd() & 0xFF);
        } else {
            const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (len + pl > cap)
                break;
            memcpy(buf + len, p, pl);
            len += pl;
        }
    }
    return len;
}

static bool has_type(const llv_vocab *v, const int32_t *ids, size_t n, int type)
{
    for (size_t i = 0; i < n; i++)
        if (llv_vocab_token_type(v, ids[i]) == type)
            return true;
    return false;
}

/* Fuzz: random strings (valid and invalid UTF-8) through every vocabulary
 * and flag combination: no crash (ASan), ids in range, the slow reference
 * agrees, and detokenizing gives the text back. */
START_TEST(test_fuzz_and_reference)
{
    static const char *const names[3] = { "ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf",
                                          "ggml-vocab-gpt-2.gguf" };
    for (int f = 0; f < 3; f++) {
        loaded l = load_vocab(names[f]);
        const llv_vocab *v = l.v;
        bool bpe = llv_vocab_model(v) == LLV_VOCAB_BPE;
        ref_bpe rb = { 0 };
        if (bpe)
            rb = ref_bpe_new(l.g);
        int ref_checked = 0, rt_checked = 0;
        char text[1024];
        for (int it = 0; it < 1500; it++) {
            size_t len = random_text(text, sizeof text, it % 3 == 2);
            unsigned flags = (unsigned)(it % 4);
            size_t n;
            int32_t *ids = tok(v, text, len, flags, &n);
            for (size_t i = 0; i < n; i++)
                ck_assert(ids[i] >= 0 && ids[i] < llv_vocab_n_tokens(v));
            /* Round trip unless a control token was formed (its piece is
             * empty by design). SPM is lossy by design in two more ways: a
             * literal "▁" reads back as ' ', and the text after any special
             * token gets a prefix space of its own. */
            if (!has_type(v, ids, n, LLV_TOKEN_CONTROL) && !has_type(v, ids, n, LLV_TOKEN_UNKNOWN) &&
                (bpe || (!memmem(text, len, "\xE2\x96\x81", 3) && !has_type(v, ids, n, LLV_TOKEN_USER_DEFINED)))) {
                size_t dl;
                char *back = detok(v, ids, n, LLV_DETOK_REMOVE_SPECIAL, &dl);
                if (!(dl == len && memcmp(back, text, len) == 0)) {
                    fprintf(stderr, "text: ");
                    for (size_t i = 0; i < len; i++)
                        fprintf(stderr, "%02x", (unsigned char)text[i]);
                    fprintf(stderr, "\nback: ");
                    for (size_t i = 0; i < dl; i++)
                        fprintf(stderr, "%02x", (unsigned char)back[i]);
                    fprintf(stderr, "\n");
                    print_ids("ids", ids, n);
                }
                ck_assert_msg(dl == len && memcmp(back, text, len) == 0, "%s: round trip failed (it %d)",
                              names[f], it);
                free(back);
                rt_checked++;
            }
            /* Slow reference on plain tokenization of text without specials. */
            if (flags == 0 && !has_type(v, ids, n, LLV_TOKEN_USER_DEFINED)) {
                int32_t *ref = malloc((4 * len + 8) * sizeof *ref);
                size_t nr = 0;
                if (!bpe) {
                    if (len > 0)
                        nr = ref_spm(v, text, len, ref);
                } else {
                    size_t *wb, nw;
                    ck_assert_int_eq(llv_bpe_pretokenize(LLV_PRE_GPT2, text, len, &wb, &nw), LLAVA_OK);
                    for (size_t k = 0; k < nw; k++)
                        nr += ref_bpe_word(v, &rb, (const unsigned char *)text + wb[k], wb[k + 1] - wb[k], ref + nr);
                    llv_free(wb);
                }
                if (!ids_eq(ids, n, ref, nr)) {
                    fprintf(stderr, "%s: reference mismatch on \"%.*s\"\n", names[f], (int)len, text);
                    print_ids("ref", ref, nr);
                    print_ids("got", ids, n);
                    ck_abort();
                }
                ref_checked++;
                free(ref);
            }
            free(ids);
        }
        printf("fuzz %s: 1500 strings, %d round trips, %d reference comparisons\n", names[f], rt_checked,
               ref_checked);
        ck_assert_int_gt(ref_checked, 200);
        ck_assert_int_gt(rt_checked, 400);
        free(rb.m);
        unload(l);
    }
}
END_TEST

/* Random small vocabularies (random byte texts, all token types, NaN and
 * infinite scores, random merges) against random texts: no crash, ids in
 * range, every id renders. */
START_TEST(test_random_vocabs)
{
    static const char alpha[] = "ab <>/s\xE2\x96\x81\xC4\xA0\xFF\x80";
    const size_t na = sizeof alpha - 1;
    for (int it = 0; it < 300; it++) {
        int32_t nt = 1 + (int32_t)(rnd() % 40), nm = (int32_t)(rnd() % 30);
        char store[80][8];
        llv_str toks[40], merges[30];
        float scores[40];
        int32_t types[40];
        for (int32_t i = 0; i < nt; i++) {
            size_t l = rnd() % 5;
            for (size_t k = 0; k < l; k++)
                store[i][k] = alpha[rnd() % na];
            toks[i] = (llv_str){ store[i], l };
            uint32_t r = rnd() % 8;
            scores[i] = r == 0 ? __builtin_nanf("") : r == 1 ? __builtin_inff() : -(float)(rnd() % 100);
            types[i] = (int32_t)(rnd() % 7);
        }
        for (int32_t i = 0; i < nm; i++) {
            size_t l = rnd() % 6;
            for (size_t k = 0; k < l; k++)
                store[40 + i][k] = alpha[rnd() % na];
            merges[i] = (llv_str){ store[40 + i], l };
        }
        llv_vocab_desc d = { .model = it % 2 ? LLV_VOCAB_BPE : LLV_VOCAB_SPM,
                             .pre = it % 4 == 1 ? LLV_PRE_LLAMA3 : LLV_PRE_GPT2, .n_tokens = nt,
                             .tokens = toks, .scores = scores, .types = types, .n_merges = nm, .merges = merges,
                             .bos = (int32_t)(rnd() % (uint32_t)nt), .eos = -1,
                             .unk = rnd() % 2 ? 0 : -1, .add_bos = true, .add_eos = it % 3 == 0,
                             .add_space_prefix = it % 5 != 0 };
        llv_vocab *v;
        llv_err err;
        ck_assert_int_eq(llv_vocab_new(&d, &v, &err), LLAVA_OK);
        for (int t = 0; t < 20; t++) {
            char text[64];
            size_t len = rnd() % sizeof text;
            for (size_t k = 0; k < len; k++)
                text[k] = alpha[rnd() % na];
            size_t n;
            int32_t *ids = tok(v, text, len, (unsigned)(t % 4), &n);
            for (size_t i = 0; i < n; i++) {
                ck_assert(ids[i] >= 0 && ids[i] < nt);
                char piece[64];
                size_t pl;
                ck_assert_int_eq(llv_token_to_piece(v, ids[i], LLAVA_PIECE_SPECIAL, piece, sizeof piece, &pl),
                                 LLAVA_OK);
            }
            size_t dl;
            free(detok(v, ids, n, (unsigned)(t % 2) * LLV_DETOK_REMOVE_SPECIAL, &dl));
            free(ids);
        }
        llv_vocab_free(v);
    }
}
END_TEST

/* ---- UTF-8 helpers ---------------------------------------------------------- */

START_TEST(test_utf8_complete_prefix)
{
    static const struct { const char *s; size_t len, want; } cases[] = {
        { "", 0, 0 }, { "abc", 3, 3 },
        { "a\xE2\x96", 3, 1 }, { "a\xE2", 2, 1 }, { "\xE2\x96\x81", 3, 3 },
        { "a\xF0\x9F\x98", 4, 1 }, { "a\xF0\x9F\x98\x81", 5, 5 }, { "\xF0", 1, 0 },
        { "a\xC3", 2, 1 }, { "a\xC3\xA9", 3, 3 },
        { "a\x80", 2, 2 },          /* stray continuation: complete (invalid) */
        { "a\xE2\x41", 3, 3 },      /* broken sequence: nothing can complete it */
        { "\xED\xA0", 2, 2 },       /* surrogate prefix: invalid */
        { "\xF4\x90", 2, 2 },       /* > U+10FFFF prefix: invalid */
        { "\xE0\x80", 2, 2 },       /* overlong prefix: invalid */
        { "\xC0", 1, 1 }, { "\xFF", 1, 1 },
        { "\x80\x80\x80\x80", 4, 4 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(llv_utf8_complete_prefix(cases[i].s, cases[i].len) == cases[i].want,
                      "case %zu: got %zu want %zu", i, llv_utf8_complete_prefix(cases[i].s, cases[i].len),
                      cases[i].want);
    ck_assert_uint_eq(llv_utf8_complete_prefix(NULL, 0), 0);

    /* Streaming: emoji and CJK through SPM byte tokens, piece by piece;
     * every emitted chunk ends on a character boundary and the chunks
     * add up to the text. */
    loaded l = load_vocab("ggml-vocab-llama-spm.gguf");
    const char *text = "\xF0\x9F\xA6\x99 llama \xE6\x88\x91\xE6\x83\xB3 \xF0\x9F\x98\x81!";
    size_t n;
    int32_t *ids = tok(l.v, text, strlen(text), 0, &n);
    char pending[64], out[256];
    size_t np = 0, no = 0;
    for (size_t i = 0; i < n; i++) {
        char piece[32];
        size_t pl;
        ck_assert_int_eq(llv_token_to_piece(l.v, ids[i], 0, piece, sizeof piece, &pl), LLAVA_OK);
        memcpy(pending + np, piece, pl);
        np += pl;
        size_t ok = llv_utf8_complete_prefix(pending, np);
        for (size_t k = 0; k < ok;) {    /* the chunk decodes as whole characters */
            uint32_t cp;
            size_t cl = llv_utf8_decode((const unsigned char *)pending + k, ok - k, &cp);
            ck_assert(cp != LLV_CP_INVALID);
            k += cl;
        }
        memcpy(out + no, pending, ok);
        no += ok;
        memmove(pending, pending + ok, np - ok);
        np -= ok;
    }
    ck_assert_uint_eq(np, 0);
    ck_assert_uint_eq(no, strlen(text) + 1);          /* plus the prefix space */
    ck_assert(memcmp(out + 1, text, strlen(text)) == 0);
    free(ids);
    unload(l);
}
END_TEST

START_TEST(test_cp_class)
{
    ck_assert_int_eq(llv_cp_class('a'), LLV_CC_LETTER);
    ck_assert_int_eq(llv_cp_class(0x00E9), LLV_CC_LETTER);  /* é */
    ck_assert_int_eq(llv_cp_class(0x6211), LLV_CC_LETTER);  /* 我 (Lo) */
    ck_assert_int_eq(llv_cp_class(0x1780), LLV_CC_LETTER);  /* ក */
    ck_assert_int_eq(llv_cp_class(0x17B6), LLV_CC_OTHER);   /* Khmer vowel sign (Mc) */
    ck_assert_int_eq(llv_cp_class('7'), LLV_CC_NUMBER);
    ck_assert_int_eq(llv_cp_class(0x00B2), LLV_CC_NUMBER);  /* ² (No) */
    ck_assert_int_eq(llv_cp_class(0x216B), LLV_CC_NUMBER);  /* Ⅻ (Nl) */
    ck_assert_int_eq(llv_cp_class(0x0661), LLV_CC_NUMBER);  /* Arabic-Indic 1 */
    ck_assert_int_eq(llv_cp_class(0x00A0), LLV_CC_SPACE);
    ck_assert_int_eq(llv_cp_class(0x3000), LLV_CC_SPACE);
    ck_assert_int_eq(llv_cp_class(0x200B), LLV_CC_OTHER);   /* zero width space: not White_Space */
    ck_assert_int_eq(llv_cp_class(0x1C), LLV_CC_OTHER);     /* Python isspace() differs here */
    ck_assert_int_eq(llv_cp_class(0x1F601), LLV_CC_OTHER);  /* emoji */
    ck_assert_int_eq(llv_cp_class(0x10FFFF), LLV_CC_OTHER);
    ck_assert_int_eq(llv_cp_class(LLV_CP_INVALID), LLV_CC_OTHER);
}
END_TEST

/* ---- loader validation ----------------------------------------------------- */

/* A minimal SPM vocabulary in a GGUF writer; `bad` breaks one thing. */
enum { BAD_NONE, BAD_SCORES_TYPE, BAD_TYPES_TYPE, BAD_SCORES_COUNT, BAD_TYPES_COUNT, BAD_BOS, BAD_EOS_NEG,
       BAD_MODEL, BAD_TOKENS_TYPE, BAD_TOKEN_TYPE_VALUE, BAD_BPE_NO_MERGES, BAD_PRE, BAD_NO_TOKENS,
       BAD_BOS_TYPE, BAD_COUNT };

static int load_tiny_inject(int bad, long inject, llv_vocab **out, llv_err *err)
{
    static const char *const toks[] = { "<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "ab",
                                        "\xE2\x96\x81" "ab", "<0x41>" };
    const int32_t nt = (int32_t)(sizeof toks / sizeof toks[0]);
    float scores[16] = { 0, 0, 0, -1, -2, -2, -1.5f, -0.5f, 0 };
    int32_t types[16] = { 2, 3, 3, 1, 1, 1, 1, 1, 6 };
    llv_gguf_writer *w = llv_gguf_writer_new();
    ck_assert_ptr_nonnull(w);
    llv_gguf_add_str(w, "tokenizer.ggml.model", bad == BAD_MODEL ? "bert" : bad == BAD_BPE_NO_MERGES ||
                     bad == BAD_PRE ? "gpt2" : "llama");
    if (bad == BAD_PRE)
        llv_gguf_add_str(w, "tokenizer.ggml.pre", "made-up");
    if (bad == BAD_TOKENS_TYPE)
        llv_gguf_add_arr(w, "tokenizer.ggml.tokens", LLV_GGUF_INT32, types, (uint64_t)nt);
    else if (bad != BAD_NO_TOKENS)
        llv_gguf_add_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)nt);
    if (bad == BAD_SCORES_TYPE)         /* int32 array where float32 is expected */
        llv_gguf_add_arr(w, "tokenizer.ggml.scores", LLV_GGUF_INT32, types, (uint64_t)nt);
    else
        llv_gguf_add_arr(w, "tokenizer.ggml.scores", LLV_GGUF_FLOAT32, scores,
                         (uint64_t)(bad == BAD_SCORES_COUNT ? nt + 5 : nt));
    if (bad == BAD_TYPES_TYPE)          /* a uint8 array: 1 byte per element */
        llv_gguf_add_arr(w, "tokenizer.ggml.token_type", LLV_GGUF_UINT8, types, (uint64_t)nt);
    else {
        if (bad == BAD_TOKEN_TYPE_VALUE)
            types[4] = 9;
        llv_gguf_add_arr(w, "tokenizer.ggml.token_type", LLV_GGUF_INT32, types,
                         (uint64_t)(bad == BAD_TYPES_COUNT ? nt - 1 : nt));
    }
    if (bad == BAD_BOS)
        llv_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)nt);
    else if (bad == BAD_BOS_TYPE)
        llv_gguf_add_str(w, "tokenizer.ggml.bos_token_id", "1");
    else
        llv_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (bad == BAD_EOS_NEG)
        llv_gguf_add_i32(w, "tokenizer.ggml.eos_token_id", -5);
    void *mem;
    size_t size;
    ck_assert_int_eq(llv_gguf_write_memory(w, &mem, &size, err), LLAVA_OK);
    llv_gguf_writer_free(w);
    llv_gguf *g;
    ck_assert_int_eq(llv_gguf_open_memory(mem, size, 1, &g, err), LLAVA_OK);
    llv_free(mem);
    llv_alloc_fail_inject(inject);          /* -1: off */
    int rc = llv_vocab_load(g, out, err);
    llv_alloc_fail_inject(-1);
    llv_gguf_close(g);
    return rc;
}

static int load_tiny(int bad, llv_vocab **out, llv_err *err)
{
    return load_tiny_inject(bad, -1, out, err);
}

START_TEST(test_loader_validation)
{
    llv_err err = { 0 };
    llv_vocab *v = NULL;
    ck_assert_int_eq(load_tiny(BAD_NONE, &v, &err), LLAVA_OK);
    /* Hand-worked SPM on the tiny vocab: " ab" -> "▁▁ab": pairs "▁▁" (none),
     * "▁a" (none), "ab" (-1.5) -> [▁][▁][ab] -> "▁ab" (-0.5) -> [▁][▁ab]. */
    size_t n;
    int32_t *ids = tok(v, " ab", 3, 0, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 3);
    ck_assert_int_eq(ids[1], 7);
    free(ids);
    /* "A" has a byte token <0x41>; "c" has none and no unk fallback is
     * needed for 'A' but "c" -> unk (id 0) since <0x63> is missing. */
    ids = tok(v, "Ac", 2, LLAVA_TOKENIZE_ADD_BOS, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 3);
    ck_assert_int_eq(ids[2], 8);
    ck_assert_int_eq(ids[3], 0);
    free(ids);
    llv_vocab_free(v);

    static const int expect[BAD_COUNT] = {
        [BAD_SCORES_TYPE] = LLAVA_E_FORMAT, [BAD_TYPES_TYPE] = LLAVA_E_FORMAT,
        [BAD_SCORES_COUNT] = LLAVA_E_FORMAT, [BAD_TYPES_COUNT] = LLAVA_E_FORMAT,
        [BAD_BOS] = LLAVA_E_FORMAT, [BAD_EOS_NEG] = LLAVA_E_FORMAT, [BAD_MODEL] = LLAVA_E_UNSUPPORTED,
        [BAD_TOKENS_TYPE] = LLAVA_E_FORMAT, [BAD_TOKEN_TYPE_VALUE] = LLAVA_E_FORMAT,
        [BAD_BPE_NO_MERGES] = LLAVA_E_FORMAT, [BAD_PRE] = LLAVA_E_UNSUPPORTED,
        [BAD_NO_TOKENS] = LLAVA_E_FORMAT, [BAD_BOS_TYPE] = LLAVA_E_FORMAT,
    };
    for (int bad = BAD_NONE + 1; bad < BAD_COUNT; bad++) {
        v = (llv_vocab *)&err;              /* must be reset to NULL */
        err.msg[0] = '\0';
        int rc = load_tiny(bad, &v, &err);
        ck_assert_msg(rc == expect[bad], "case %d: rc %d (%s)", bad, rc, err.msg);
        ck_assert_ptr_null(v);
        ck_assert_msg(err.msg[0] != '\0', "case %d: no message", bad);
    }

    /* The real vocabulary with its scores replaced by an int32 array of the
     * same count (the array-type-confusion attack): rejected. */
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", data_dir());
    llv_gguf *g;
    ck_assert_int_eq(llv_gguf_open_file(path, 1, &g, &err), LLAVA_OK);
    llv_gguf_writer *w = llv_gguf_writer_new();
    ck_assert_int_eq(llv_gguf_copy_kv(w, g, NULL), LLAVA_OK);
    int32_t *fake = calloc(32000, sizeof *fake);
    ck_assert_int_eq(llv_gguf_add_arr(w, "tokenizer.ggml.scores", LLV_GGUF_INT32, fake, 32000), LLAVA_OK);
    free(fake);
    void *mem;
    size_t size;
    ck_assert_int_eq(llv_gguf_write_memory(w, &mem, &size, &err), LLAVA_OK);
    llv_gguf_writer_free(w);
    llv_gguf_close(g);
    ck_assert_int_eq(llv_gguf_open_memory(mem, size, 1, &g, &err), LLAVA_OK);
    llv_free(mem);
    v = NULL;
    ck_assert_int_eq(llv_vocab_load(g, &v, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_null(v);
    llv_gguf_close(g);
}
END_TEST

/* Every allocation failing in turn: clean errors, no leaks (ASan). */
START_TEST(test_alloc_failures)
{
    llv_err err;
    int ok_at = -1;
    for (long k = 0; k < 200 && ok_at < 0; k++) {
        llv_vocab *v = NULL;
        int rc = load_tiny_inject(BAD_NONE, k, &v, &err);
        if (rc == LLAVA_OK) {
            ck_assert_ptr_nonnull(v);
            llv_vocab_free(v);
            ok_at = (int)k;
        } else {
            ck_assert_ptr_null(v);
        }
    }
    ck_assert_int_ge(ok_at, 0);

    llv_vocab *v = NULL;
    ck_assert_int_eq(load_tiny(BAD_NONE, &v, &err), LLAVA_OK);
    const char *text = "ab ab ba <s> aab";
    int32_t ids[64];
    for (long k = 0; k < 100; k++) {
        size_t n;
        llv_alloc_fail_inject(k);
        int rc = llv_tokenize(v, text, strlen(text), LLAVA_TOKENIZE_PARSE_SPECIAL, ids, 64, &n);
        llv_alloc_fail_inject(-1);
        ck_assert(rc == LLAVA_OK || rc == LLAVA_E_NOMEM);
        if (rc == LLAVA_OK)
            break;
    }
    llv_vocab_free(v);
}
END_TEST

/* ---- speed (reported, not asserted) -------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

START_TEST(test_speed_100k)
{
    static const char *const names[3] = { "ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf",
                                          "ggml-vocab-gpt-2.gguf" };
    const char *para = "The quick brown fox jumps over the lazy dog. \xE6\x88\x91\xE6\x83\xB3 caf\xC3\xA9 "
                       "12345 \xF0\x9F\xA6\x99 llama.cpp, y'all!\n";
    size_t pl = strlen(para), len = 0, cap = 100 * 1024;
    char *text = malloc(cap);
    while (len + pl <= cap) {
        memcpy(text + len, para, pl);
        len += pl;
    }
    for (int f = 0; f < 3; f++) {
        loaded l = load_vocab(names[f]);
        double t0 = now();
        size_t n;
        int32_t *ids = tok(l.v, text, len, LLAVA_TOKENIZE_ADD_BOS | LLAVA_TOKENIZE_PARSE_SPECIAL, &n);
        double t1 = now();
        printf("speed %s: %zu bytes -> %zu tokens in %.1f ms (2 calls)\n", names[f], len, n, (t1 - t0) * 1e3);
        /* One long line without spaces (a single SPM fragment / BPE word). */
        char *one = malloc(len);
        for (size_t i = 0; i < len; i++)
            one[i] = "abcdefgh"[i % 8];
        t0 = now();
        int32_t *ids2 = tok(l.v, one, len, 0, &n);
        t1 = now();
        printf("speed %s: %zu bytes without spaces -> %zu tokens in %.1f ms (2 calls)\n", names[f], len, n,
               (t1 - t0) * 1e3);
        free(ids2);
        free(one);
        free(ids);
        unload(l);
    }
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("tokenizer");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_golden_llama_spm);
    tcase_add_test(tc, test_golden_phi3);
    tcase_add_test(tc, test_golden_gpt2);
    tcase_add_test(tc, test_llava_prompts);
    tcase_add_test(tc, test_spm_hand);
    tcase_add_test(tc, test_buffer_contract);
    tcase_add_test(tc, test_pieces);
    tcase_add_test(tc, test_bpe_hand);
    tcase_add_test(tc, test_pretokenizer_vectors);
    tcase_add_test(tc, test_fuzz_and_reference);
    tcase_add_test(tc, test_random_vocabs);
    tcase_add_test(tc, test_utf8_complete_prefix);
    tcase_add_test(tc, test_cp_class);
    tcase_add_test(tc, test_loader_validation);
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_test(tc, test_speed_100k);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
