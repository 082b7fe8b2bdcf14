/*
 * llava.h - the public API of libllava, an embeddable C library that runs
 * LLaVA vision-language models (llama.cpp-compatible GGUF files) on the CPU.
 *
 * Copyright (c) 2026 The libllava authors. MIT licence, see COPYING.
 *
 * This header is the whole contract: anything not declared here is not API
 * and may change without notice.
 *
 * Conventions
 * -----------
 * - Every object is an opaque handle created by a llava_load_* / llava_new_*
 *   function and destroyed by the matching llava_free_*; freeing NULL is a
 *   harmless no-op.
 * - Functions that can fail return an int status (enum llava_status).
 *   LLAVA_OK is 0. New codes may be added in later versions: treat any
 *   unknown non-zero code as an error. Codes are never renumbered.
 * - llava_strerror(code) gives static text for a code. Functions that work
 *   on a handle record a detailed message in that handle, read with
 *   llava_errmsg(handle). Constructors, which have no handle yet, write the
 *   detail into an optional caller buffer (errbuf, errbuf_size; NULL/0 to
 *   skip it), like curl's CURLOPT_ERRORBUFFER. LLAVA_ERRBUF_SIZE is enough.
 * - On failure, output pointers are set to NULL / 0, nothing leaks and the
 *   handles passed in stay usable.
 * - The caller owns what it passes in; the library copies what it keeps.
 *   Returned "const" pointers are borrowed: they stay valid until the next
 *   mutating call on the same handle or until it is freed.
 * - Options go through an opaque llava_params object with typed setters
 *   keyed by enum llava_param (never a public struct).
 * - No function prints, exits or aborts. Logging goes only to the log
 *   callback set in the params.
 *
 * Thread-safety tags (one per function):
 *   [thread: any]       callable from any thread at any time.
 *   [thread: handle]    one handle may be used by one thread at a time;
 *                       different handles may be used in parallel.
 *   [thread: shared-ro] read-only use of a loaded model: any number of
 *                       threads may call these on the same handle at once.
 * Compute threads: the calling thread plus workers of a pool the library
 * starts on first use and keeps, sleeping when idle, with every signal
 * blocked. The caller never waits for a worker that has not started its
 * share, so a descheduled worker does not stall a busy host. The pool runs
 * one computation at a time: a second host thread computing at the same
 * moment runs its computation on its own thread. Built with
 * --with-threads=openmp it uses OpenMP num_threads clauses instead. Either
 * way the library never changes the host's OpenMP state and never calls a
 * user callback from a worker or inside a parallel loop.
 */
#ifndef LLAVA_H
#define LLAVA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Export macros                                                           */

#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(LLAVA_BUILDING_DLL)
#    define LLAVA_API __declspec(dllexport)
#  elif defined(LLAVA_USING_DLL)
#    define LLAVA_API __declspec(dllimport)
#  else
#    define LLAVA_API
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define LLAVA_API __attribute__((visibility("default")))
#else
#  define LLAVA_API
#endif

#if defined(__GNUC__)
#  define LLAVA_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#  define LLAVA_DEPRECATED(msg)
#endif

/* ---------------------------------------------------------------------- */
/* Versions                                                                */

#define LLAVA_VERSION_MAJOR 0
#define LLAVA_VERSION_MINOR 1
#define LLAVA_VERSION_PATCH 0
/** MAJOR*10000 + MINOR*100 + PATCH, e.g. 100 for 0.1.0. */
#define LLAVA_VERSION_NUMBER \
    (LLAVA_VERSION_MAJOR * 10000 + LLAVA_VERSION_MINOR * 100 + LLAVA_VERSION_PATCH)
#define LLAVA_VERSION_STRING "0.1.0"

/** Version of the library actually linked (compare with LLAVA_VERSION_NUMBER
 *  to detect a header/library mismatch). [thread: any] Since 0.1. */
LLAVA_API int llava_version_number(void);
/** Same as a static string "X.Y.Z". [thread: any] Since 0.1. */
LLAVA_API const char *llava_version_string(void);

/* ---------------------------------------------------------------------- */
/* Status codes (explicit values, never renumbered or reused)              */

enum llava_status {
    LLAVA_OK                 = 0,  /* success */
    LLAVA_E_INVALID_ARG      = 1,  /* NULL where not allowed, value out of range, wrong setter type */
    LLAVA_E_NOMEM            = 2,  /* an allocation failed */
    LLAVA_E_IO               = 3,  /* a file could not be opened, read, mapped or written */
    LLAVA_E_FORMAT           = 4,  /* malformed or inconsistent GGUF / embedding / state data */
    LLAVA_E_UNSUPPORTED      = 5,  /* unknown architecture, tensor type, param key; not built in */
    LLAVA_E_IMAGE            = 6,  /* the image could not be decoded or is too large */
    LLAVA_E_MISMATCH         = 7,  /* encoder, projector, LM or embedding dimensions disagree */
    LLAVA_E_CONTEXT_FULL     = 8,  /* the session's context has no room for the input */
    LLAVA_E_ABORTED          = 9,  /* the abort callback asked to stop */
    LLAVA_E_BUFFER_TOO_SMALL = 10, /* output buffer too small; the needed size was reported */
    LLAVA_E_STATE            = 11, /* call out of order (e.g. sample before any eval) */
    LLAVA_E_INTERNAL         = 12  /* a bug in libllava: please report it */
};

/** Static English text for a status code; never NULL (unknown codes give
 *  "unknown status"). [thread: any] Since 0.1. */
LLAVA_API const char *llava_strerror(int status);

/** The detailed message of the last failed call on a handle (any libllava
 *  handle: params, lm, vision, projector, session, image, embed, chat). Returns ""
 *  if the last call succeeded, and a fixed text for NULL or a pointer that
 *  is not a live libllava handle. The string is owned by the handle and
 *  valid until the next call on it. [thread: handle] Since 0.1. */
LLAVA_API const char *llava_errmsg(const void *handle);

/** A buffer of this size holds every message a constructor writes. */
#define LLAVA_ERRBUF_SIZE 256

/* ---------------------------------------------------------------------- */
/* Opaque handles                                                          */

typedef struct llava_params    llava_params;    /* options (keys below) */
typedef struct llava_lm        llava_lm;        /* a loaded language model, read-only once loaded */
typedef struct llava_vision    llava_vision;    /* a loaded CLIP vision encoder (from an mmproj file) */
typedef struct llava_projector llava_projector; /* a loaded projector (from an mmproj file) */
typedef struct llava_session   llava_session;   /* one conversation over an LM: KV cache, position, sampler */
typedef struct llava_image     llava_image;     /* decoded 8-bit RGB pixels */
typedef struct llava_embed     llava_embed;     /* image embedding: n_tokens x n_embd floats */

/* ---------------------------------------------------------------------- */
/* Parameters                                                              */

/** Parameter keys. Values are explicit and never reused. Each key has one
 *  type (int or float; LLAVA_PARAM_TYPE_*) and bounds, see
 *  llava_get_param_info(). A key a library does not know gives
 *  LLAVA_E_UNSUPPORTED, so an older library rejects a newer option cleanly.
 *  Ranges: 100s loading and runtime, 200s sampling, 300s images. */
enum llava_param {
    /* --- loading / runtime --- */
    LLAVA_PARAM_N_THREADS         = 100, /* int, threads for compute; 0 = the CPUs this process may use (default 0) */
    LLAVA_PARAM_USE_MMAP          = 101, /* int 0/1, map model files instead of reading them (default 1) */
    LLAVA_PARAM_N_CTX             = 102, /* int, session context in tokens; 0 = the model's training context, at most 8192 (default 0) */
    LLAVA_PARAM_KV_TYPE           = 103, /* int, KV cache storage: 0 = F32, 1 = F16 (default 1) */
    LLAVA_PARAM_N_BATCH           = 104, /* int, max tokens evaluated per internal batch (default 512) */
    /* --- sampling (see llava_sample for the order of the chain) --- */
    LLAVA_PARAM_SEED              = 200, /* int, 0..2^63-1; -1 = a seed from the clock (default -1) */
    LLAVA_PARAM_TEMPERATURE       = 201, /* float, <= 0 means greedy (default 0.8) */
    LLAVA_PARAM_TOP_K             = 202, /* int, <= 0 disables (default 40) */
    LLAVA_PARAM_TOP_P             = 203, /* float, 1.0 disables (default 0.95) */
    LLAVA_PARAM_MIN_P             = 204, /* float, 0.0 disables (default 0.05) */
    LLAVA_PARAM_REPEAT_PENALTY    = 205, /* float, 1.0 disables (default 1.0) */
    LLAVA_PARAM_REPEAT_LAST_N     = 206, /* int, penalty window in tokens (default 64) */
    LLAVA_PARAM_FREQUENCY_PENALTY = 207, /* float, 0.0 disables (default 0.0) */
    LLAVA_PARAM_PRESENCE_PENALTY  = 208, /* float, 0.0 disables (default 0.0) */
    /* --- images --- */
    LLAVA_PARAM_IMAGE_MAX_PIXELS  = 300, /* int, largest width*height accepted, checked before decoding (default 2^26) */
    LLAVA_PARAM_IMAGE_EXIF_ORIENT = 301, /* int 0/1, apply EXIF orientation (JPEG APP1, PNG eXIf) (default 0, as the reference) */
    /* --- chat helper --- */
    LLAVA_PARAM_CHAT_TEMPLATE     = 400, /* int, enum llava_template (default LLAVA_TEMPLATE_AUTO) */
    LLAVA_PARAM_MAX_TOKENS        = 401  /* int, most tokens per reply; 0 = until EOS or the context is full (default 0) */
};

enum llava_param_type {
    LLAVA_PARAM_TYPE_INT   = 1,
    LLAVA_PARAM_TYPE_FLOAT = 2
};

/** Create a params object holding every default. Returns NULL only when out
 *  of memory. Free with llava_free_params(). [thread: any] Since 0.1. */
LLAVA_API llava_params *llava_new_params(void);
/** Free a params object; NULL is a no-op. [thread: handle] Since 0.1. */
LLAVA_API void llava_free_params(llava_params *params);
/** Copy of a params object (NULL if out of memory). [thread: handle] */
LLAVA_API llava_params *llava_dup_params(const llava_params *params);

/** Set an int (or 0/1 flag) parameter. LLAVA_E_UNSUPPORTED for an unknown
 *  key, LLAVA_E_INVALID_ARG for a float key or a value out of bounds (the
 *  value is then unchanged). [thread: handle] Since 0.1. */
LLAVA_API int llava_set_param_int(llava_params *params, int key, int64_t value);
/** Set a float parameter; int keys give LLAVA_E_INVALID_ARG, as do NaN and
 *  out-of-bounds values. [thread: handle] Since 0.1. */
LLAVA_API int llava_set_param_float(llava_params *params, int key, double value);
/** Read a parameter back (int or float key as stored). [thread: handle] */
LLAVA_API int llava_get_param_int(const llava_params *params, int key, int64_t *value);
LLAVA_API int llava_get_param_float(const llava_params *params, int key, double *value);

/** Describe a key: its type (LLAVA_PARAM_TYPE_*), inclusive bounds and
 *  default. Any output pointer may be NULL. LLAVA_E_UNSUPPORTED for an
 *  unknown key. [thread: any] Since 0.1. */
LLAVA_API int llava_get_param_info(int key, int *type, double *min_value,
                                   double *max_value, double *default_value);

/** Progress callback: progress in [0,1] for the current stage (loading a
 *  model, encoding an image, evaluating a batch). Return 0 to continue,
 *  non-zero to abort the operation with LLAVA_E_ABORTED. Called on the
 *  thread that made the call, never inside a parallel region. */
typedef int (*llava_progress_fn)(float progress, void *user_data);
/** Abort callback: polled during long operations (between layers, vision
 *  blocks and batches). Return non-zero to stop with LLAVA_E_ABORTED. It may
 *  read a flag set by another thread. */
typedef int (*llava_abort_fn)(void *user_data);
/** Log callback: level 0 = error, 1 = warning, 2 = info, 3 = debug. The
 *  message is valid only during the call. */
typedef void (*llava_log_fn)(int level, const char *message, void *user_data);

/** Set (or clear with fn = NULL) a callback; the user_data pointer is
 *  stored, not dereferenced. Handles created with these params keep the
 *  callbacks. [thread: handle] Since 0.1. */
LLAVA_API int llava_set_progress_callback(llava_params *params, llava_progress_fn fn, void *user_data);
LLAVA_API int llava_set_abort_callback(llava_params *params, llava_abort_fn fn, void *user_data);
LLAVA_API int llava_set_log_callback(llava_params *params, llava_log_fn fn, void *user_data);

/* ---------------------------------------------------------------------- */
/* Language model                                                          */

/** Load a llama-architecture LM GGUF file. params may be NULL (defaults;
 *  uses N_THREADS, USE_MMAP and the callbacks). On success *out is the new
 *  handle; on failure *out is NULL and errbuf (if given) says why.
 *  [thread: any] Since 0.1. */
LLAVA_API int llava_load_lm(const char *path, const llava_params *params,
                            llava_lm **out, char *errbuf, size_t errbuf_size);
/** Same from a GGUF image in memory. The bytes are copied unless the
 *  caller keeps them alive: with LLAVA_PARAM_USE_MMAP = 1 (the default) the
 *  buffer is used in place and must outlive the handle; with 0 it is copied.
 *  [thread: any] Since 0.1. */
LLAVA_API int llava_load_lm_from_memory(const void *data, size_t size, const llava_params *params,
                                        llava_lm **out, char *errbuf, size_t errbuf_size);
/** Free an LM; NULL is a no-op. Every session on it must be freed first.
 *  [thread: handle] Since 0.1. */
LLAVA_API void llava_free_lm(llava_lm *lm);

/** Model facts. Each returns 0 for a NULL lm. [thread: shared-ro] */
LLAVA_API int32_t llava_lm_n_vocab(const llava_lm *lm);
LLAVA_API int32_t llava_lm_n_embd(const llava_lm *lm);
LLAVA_API int32_t llava_lm_n_ctx_train(const llava_lm *lm);
/** Special token ids; -1 if the vocabulary has none. [thread: shared-ro] */
LLAVA_API int32_t llava_lm_token_bos(const llava_lm *lm);
LLAVA_API int32_t llava_lm_token_eos(const llava_lm *lm);
/** Copy a metadata string value (e.g. "general.name",
 *  "tokenizer.chat_template") into buf, NUL-terminated. *len (optional)
 *  receives the length without the NUL. LLAVA_E_BUFFER_TOO_SMALL if it does
 *  not fit (*len is then still set), LLAVA_E_INVALID_ARG if the key is
 *  absent or not a string. [thread: shared-ro] Since 0.1. */
LLAVA_API int llava_lm_meta_str(const llava_lm *lm, const char *key, char *buf, size_t buf_size, size_t *len);

/* --- Tokenizer ---------------------------------------------------------- */

/** Flags for llava_tokenize. */
#define LLAVA_TOKENIZE_ADD_BOS       1u /* prepend BOS if the vocabulary asks for it */
#define LLAVA_TOKENIZE_PARSE_SPECIAL 2u /* turn control-token texts like "</s>" into their ids */

/** Tokenize len bytes of UTF-8 text (need not be NUL-terminated). Writes
 *  at most capacity ids to tokens and the count to *n_tokens. If capacity is
 *  too small, returns LLAVA_E_BUFFER_TOO_SMALL with *n_tokens = the count
 *  needed (call again with a larger buffer; tokens may be NULL with
 *  capacity 0 to ask for the size). [thread: shared-ro] Since 0.1. */
LLAVA_API int llava_tokenize(const llava_lm *lm, const char *text, size_t len, unsigned flags,
                             int32_t *tokens, size_t capacity, size_t *n_tokens);

/** Flags for llava_token_to_piece. */
#define LLAVA_PIECE_SPECIAL 1u /* render control tokens (e.g. "</s>") as their text instead of "" */

/** The bytes one token stands for (SentencePiece "▁" becomes a space; a
 *  byte token gives that single byte, possibly part of a UTF-8 character).
 *  Writes a NUL-terminated string if it fits; *len (optional) gets the
 *  length. LLAVA_E_BUFFER_TOO_SMALL as for llava_lm_meta_str;
 *  LLAVA_E_INVALID_ARG for an id out of range. [thread: shared-ro] */
LLAVA_API int llava_token_to_piece(const llava_lm *lm, int32_t token, unsigned flags,
                                   char *buf, size_t buf_size, size_t *len);

/* --- Sessions ----------------------------------------------------------- */

/** Create a session (KV cache, position, sampler state) over an LM. The LM
 *  must outlive the session. params may be NULL; the session copies the
 *  values it uses (N_CTX, KV_TYPE, N_BATCH, N_THREADS, sampling keys,
 *  callbacks). Any number of sessions may share one LM, each used by one
 *  thread at a time. [thread: shared-ro on lm] Since 0.1. */
LLAVA_API int llava_new_session(const llava_lm *lm, const llava_params *params,
                                llava_session **out, char *errbuf, size_t errbuf_size);
/** Free a session; NULL is a no-op. [thread: handle] Since 0.1. */
LLAVA_API void llava_free_session(llava_session *session);
/** Replace the session's sampling and runtime values with those of params
 *  (N_CTX and KV_TYPE are fixed at creation and ignored here). The sampler's
 *  PRNG is re-seeded from SEED.
 *  [thread: handle] Since 0.1. */
LLAVA_API int llava_session_set_params(llava_session *session, const llava_params *params);

/** Evaluate n tokens at the current position (prefill or one decoded
 *  token), append them to the KV cache and compute the logits of the last
 *  one. LLAVA_E_CONTEXT_FULL if position + n > n_ctx (nothing is
 *  evaluated), LLAVA_E_ABORTED if the abort callback stopped it (the
 *  position then stays where it was before the call).
 *  [thread: handle] Since 0.1. */
LLAVA_API int llava_eval_tokens(llava_session *session, const int32_t *tokens, size_t n);
/** Evaluate an image embedding (its n_tokens rows, one position each) at
 *  the current position, as the reference splices image features into the
 *  prompt. LLAVA_E_MISMATCH if the embedding width is not the LM's
 *  (the message gives both). Otherwise as llava_eval_tokens.
 *  [thread: handle on session, shared-ro on embed] Since 0.1. */
LLAVA_API int llava_eval_embed(llava_session *session, const llava_embed *embed);

/** Logits of the last evaluated position (n_vocab floats; *n_vocab
 *  optional). NULL before the first eval. Borrowed: valid until the next
 *  eval, sample, rewind or load on this session. [thread: handle] */
LLAVA_API const float *llava_get_logits(llava_session *session, int32_t *n_vocab);

/** Sample the next token from the last logits with the session's sampling
 *  params. The chain, in order: repetition / frequency / presence
 *  penalties over the last REPEAT_LAST_N evaluated text tokens; then, if
 *  TEMPERATURE <= 0, the argmax (greedy; ties to the lowest id); else
 *  top-k, top-p, min-p, temperature, and a draw from the softmax with the
 *  session's own PRNG (seeded by SEED; the same seed gives the same tokens
 *  on every platform). The token is not evaluated: pass it to
 *  llava_eval_tokens. LLAVA_E_STATE before the first eval.
 *  [thread: handle] Since 0.1. */
LLAVA_API int llava_sample(llava_session *session, int32_t *token);

/** Number of positions evaluated so far. [thread: handle] */
LLAVA_API int32_t llava_session_position(const llava_session *session);
/** The session's context size in positions. [thread: handle] */
LLAVA_API int32_t llava_session_n_ctx(const llava_session *session);
/** Go back to an earlier position (0 <= position <= current): later
 *  positions are forgotten, e.g. to regenerate or edit the last turn.
 *  Logits become unavailable until the next eval. [thread: handle] */
LLAVA_API int llava_session_rewind(llava_session *session, int32_t position);

/** Save the session's state (position, KV cache, token history, sampler
 *  RNG) into buf. With buf NULL or too small: LLAVA_E_BUFFER_TOO_SMALL and
 *  *size = bytes needed. [thread: handle] Since 0.1. */
LLAVA_API int llava_session_save(const llava_session *session, void *buf, size_t buf_size, size_t *size);
/** Restore a state saved by llava_session_save on a session over the same
 *  LM with the same KV type and at least that context. The buffer is
 *  untrusted input: it is fully validated (LLAVA_E_FORMAT, LLAVA_E_MISMATCH)
 *  and on failure the session is left as it was. [thread: handle] */
LLAVA_API int llava_session_load(llava_session *session, const void *buf, size_t size);

/* ---------------------------------------------------------------------- */
/* Images                                                                  */

/** Raw pixel formats for llava_new_image_from_pixels. */
enum llava_pixel_format {
    LLAVA_PIXEL_RGB  = 1, /* 3 bytes per pixel */
    LLAVA_PIXEL_RGBA = 2, /* 4 bytes per pixel, alpha dropped */
    LLAVA_PIXEL_BGRA = 3  /* 4 bytes per pixel, alpha dropped (common in game engines) */
};
/** Flags for llava_new_image_from_pixels. */
#define LLAVA_PIXELS_BOTTOM_UP 1u /* the first row in memory is the bottom row (OpenGL framebuffers) */

/** Decode a PNG or JPEG file. params may be NULL (uses IMAGE_MAX_PIXELS,
 *  IMAGE_EXIF_ORIENT). Alpha is dropped, gray is expanded to RGB, 16-bit is
 *  reduced to 8. LLAVA_E_IMAGE for a corrupt, truncated, unknown or
 *  too-large image, with the decoder's message. [thread: any] Since 0.1. */
LLAVA_API int llava_load_image(const char *path, const llava_params *params,
                               llava_image **out, char *errbuf, size_t errbuf_size);
/** Decode a PNG or JPEG held in memory (copied as needed). */
LLAVA_API int llava_new_image_from_bytes(const void *data, size_t size, const llava_params *params,
                                         llava_image **out, char *errbuf, size_t errbuf_size);
/** Copy raw 8-bit pixels: width x height pixels, rows stride bytes apart
 *  (stride >= width * bytes per pixel). [thread: any] Since 0.1. */
LLAVA_API int llava_new_image_from_pixels(const void *pixels, int32_t width, int32_t height, size_t stride,
                                          int format, unsigned flags, const llava_params *params,
                                          llava_image **out, char *errbuf, size_t errbuf_size);
/** Free an image; NULL is a no-op. [thread: handle] */
LLAVA_API void llava_free_image(llava_image *image);
/** Size in pixels (0 for NULL). [thread: handle] */
LLAVA_API int32_t llava_image_width(const llava_image *image);
LLAVA_API int32_t llava_image_height(const llava_image *image);
/** The decoded RGB bytes (width*3 per row, rows top to bottom). Borrowed.
 *  [thread: handle] */
LLAVA_API const uint8_t *llava_image_rgb(const llava_image *image);

/* ---------------------------------------------------------------------- */
/* Vision encoder and projector                                            */

/** Load the CLIP vision tower of an mmproj GGUF file. params may be NULL.
 *  The _from_memory variants follow llava_load_lm_from_memory: with
 *  LLAVA_PARAM_USE_MMAP = 1 (the default) the buffer is used in place and
 *  must outlive the handle; with 0 it is copied. [thread: any] Since 0.1. */
LLAVA_API int llava_load_vision(const char *path, const llava_params *params,
                                llava_vision **out, char *errbuf, size_t errbuf_size);
LLAVA_API int llava_load_vision_from_memory(const void *data, size_t size, const llava_params *params,
                                            llava_vision **out, char *errbuf, size_t errbuf_size);
/** Free a vision encoder; NULL is a no-op. [thread: handle] */
LLAVA_API void llava_free_vision(llava_vision *vision);

/** Load the projector of an mmproj GGUF file ("mlp" for LLaVA-1.5, the
 *  linear one for LLaVA-1). It may be the same file as the vision encoder's.
 *  Memory buffers: as for llava_load_vision_from_memory. [thread: any] */
LLAVA_API int llava_load_projector(const char *path, const llava_params *params,
                                   llava_projector **out, char *errbuf, size_t errbuf_size);
LLAVA_API int llava_load_projector_from_memory(const void *data, size_t size, const llava_params *params,
                                               llava_projector **out, char *errbuf, size_t errbuf_size);
/** Free a projector; NULL is a no-op. [thread: handle] */
LLAVA_API void llava_free_projector(llava_projector *projector);

/** Facts: image side in pixels, tokens per image, output width (the LM
 *  width the projector produces). 0 for NULL. [thread: shared-ro] */
LLAVA_API int32_t llava_vision_image_size(const llava_vision *vision);
LLAVA_API int32_t llava_vision_n_tokens(const llava_vision *vision);
LLAVA_API int32_t llava_projector_n_embd(const llava_projector *projector);

/** Preprocess an image as the reference does (pad to square, Pillow-exact
 *  bicubic resize, normalise), run the vision tower and the projector, and
 *  return a new embedding. LLaVA-1.6 files (clip.vision.image_grid_pinpoints)
 *  follow the reference LLaVA-NeXT: base image, then the tile grid unpadded
 *  to the image's aspect ratio with an image_newline after every row; see
 *  llava_vision_n_tokens_for for the count. params may be NULL (uses N_THREADS and the
 *  callbacks). Errors are recorded in the image's message
 *  (llava_errmsg(image)), since the encoder and projector may be shared.
 *  [thread: shared-ro on vision and projector, handle on image] Since 0.1. */
LLAVA_API int llava_encode_image(const llava_vision *vision, const llava_projector *projector,
                                 llava_image *image, const llava_params *params, llava_embed **out);
/** Number of image tokens llava_encode_image produces for a width x height
 *  image with this encoder and projector, before encoding (to budget the
 *  context). It depends on the size only for LLaVA-1.6 any-resolution files
 *  (base image + unpadded tile grid + one image_newline per row); otherwise
 *  it is the fixed count (576 for LLaVA-1.5, 144 for MobileVLM). 0 if a
 *  handle is NULL/invalid, a size is < 1, or the pair cannot encode.
 *  [thread: shared-ro] Since 0.1. */
LLAVA_API int32_t llava_vision_n_tokens_for(const llava_vision *vision, const llava_projector *projector,
                                           int32_t width, int32_t height);

/* ---------------------------------------------------------------------- */
/* Image embeddings                                                        */

/** Make an embedding from caller floats (n_tokens x n_embd, token-major),
 *  e.g. from another encoder. The data is copied. [thread: any] */
LLAVA_API int llava_new_embed(const float *data, int32_t n_tokens, int32_t n_embd,
                              llava_embed **out, char *errbuf, size_t errbuf_size);
/** Free an embedding; NULL is a no-op. [thread: handle] */
LLAVA_API void llava_free_embed(llava_embed *embed);
/** Shape and data (row t = image token t). Borrowed. [thread: shared-ro] */
LLAVA_API int32_t llava_embed_n_tokens(const llava_embed *embed);
LLAVA_API int32_t llava_embed_n_embd(const llava_embed *embed);
LLAVA_API const float *llava_embed_data(const llava_embed *embed);

/** Serialise to a versioned little-endian blob (header + floats); with buf
 *  NULL or too small: LLAVA_E_BUFFER_TOO_SMALL and *size = bytes needed.
 *  [thread: shared-ro] Since 0.1. */
LLAVA_API int llava_embed_save(const llava_embed *embed, void *buf, size_t buf_size, size_t *size);
/** Write the same blob to a file. [thread: shared-ro] */
LLAVA_API int llava_embed_save_file(const llava_embed *embed, const char *path);
/** Read a blob back; it is untrusted input and fully validated
 *  (LLAVA_E_FORMAT). [thread: any] Since 0.1. */
LLAVA_API int llava_embed_load(const void *data, size_t size, llava_embed **out,
                               char *errbuf, size_t errbuf_size);
LLAVA_API int llava_embed_load_file(const char *path, llava_embed **out,
                                    char *errbuf, size_t errbuf_size);

/* ---------------------------------------------------------------------- */
/* Chat helper                                                             */
/*
 * A conversation in a prompt format, on top of the verbs above (which stay
 * available through llava_chat_session). A user turn is built from text and
 * images in order; the reply is generated token by token (pull with
 * llava_chat_step, convenient from game loops and iterators, or push with
 * llava_chat_generate). The KV cache is kept between turns.
 *
 * Text around images is tokenized per chunk, as the reference LLaVA does:
 * an image is evaluated as soon as it is added, after the text before it.
 * For LLaVA-1.5 the first turn is
 *   BOS + system + " USER: " + [image] + "\n" + question + " ASSISTANT:"
 * and later turns "</s>USER: " + ... + " ASSISTANT:".
 */

typedef struct llava_chat llava_chat;

/** Prompt formats for LLAVA_PARAM_CHAT_TEMPLATE. */
enum llava_template {
    LLAVA_TEMPLATE_AUTO      = 0, /* from the LM's tokenizer.chat_template if it says, else LLaVA-1.5 */
    LLAVA_TEMPLATE_LLAVA_1_5 = 1, /* vicuna_v1, as the reference LLaVA-1.5 */
    LLAVA_TEMPLATE_MISTRAL   = 2, /* [INST] ... [/INST] (LLaVA-1.6-Mistral) */
    LLAVA_TEMPLATE_CHATML    = 3  /* <|im_start|>role ... <|im_end|> */
};

/** Called for every generated token with its text (complete UTF-8
 *  characters only: a piece may be empty while a character is incomplete).
 *  Return non-zero to stop the reply. */
typedef int (*llava_token_fn)(int32_t token, const char *piece, size_t piece_len, void *user_data);

/** Start a conversation over lm with its own session (params: as
 *  llava_new_session, plus CHAT_TEMPLATE and MAX_TOKENS). The LM must outlive
 *  the chat. [thread: shared-ro on lm] Since 0.1. */
LLAVA_API int llava_new_chat(const llava_lm *lm, const llava_params *params,
                             llava_chat **out, char *errbuf, size_t errbuf_size);
/** Free a chat and its session; NULL is a no-op. [thread: handle] */
LLAVA_API void llava_free_chat(llava_chat *chat);
/** Replace the template's default system prompt (copied). Only before the
 *  first turn: LLAVA_E_STATE afterwards. NULL restores the default.
 *  [thread: handle] */
LLAVA_API int llava_chat_set_system(llava_chat *chat, const char *text);
/** Append UTF-8 text to the pending user turn (copied). [thread: handle] */
LLAVA_API int llava_chat_add_text(llava_chat *chat, const char *text);
/** Append an image to the pending user turn. The text before it and the
 *  image are evaluated now, so the embedding need not outlive the call.
 *  LLAVA_E_MISMATCH if its width is not the LM's. [thread: handle] */
LLAVA_API int llava_chat_add_image(llava_chat *chat, const llava_embed *embed);
/** Generate the next token of the reply. The first call after the user
 *  turn closes it (template suffix) and evaluates it. On LLAVA_OK, *token
 *  is the token (-1 when *done is set without a new token) and *piece /
 *  *piece_len its text (borrowed until the next call); *done becomes 1 when
 *  the reply ended (EOS, MAX_TOKENS, or a full context); the next add_*
 *  starts a new turn. Any output pointer may be NULL. [thread: handle] */
LLAVA_API int llava_chat_step(llava_chat *chat, int32_t *token, const char **piece,
                              size_t *piece_len, int *done);
/** Generate the whole reply, calling fn (may be NULL) for every token.
 *  [thread: handle] */
LLAVA_API int llava_chat_generate(llava_chat *chat, llava_token_fn fn, void *user_data);
/** The chat's session (borrowed; valid until llava_free_chat), e.g. to
 *  save its state or read the logits. [thread: handle] */
LLAVA_API llava_session *llava_chat_session(llava_chat *chat);
/** The template in use (never LLAVA_TEMPLATE_AUTO). [thread: handle] */
LLAVA_API int llava_chat_template(const llava_chat *chat);

#ifdef __cplusplus
}
#endif

#endif /* LLAVA_H */
