/*
 * handle.h - the common header every public handle starts with, so that
 * llava_errmsg(const void *) can check what it was given.
 */
#ifndef LLV_HANDLE_H
#define LLV_HANDLE_H

#include "common.h"

enum {
    LLV_MAGIC_PARAMS    = 0x4c565041u, /* "LVPA" */
    LLV_MAGIC_LM        = 0x4c564c4du, /* "LVLM" */
    LLV_MAGIC_VISION    = 0x4c565649u, /* "LVVI" */
    LLV_MAGIC_PROJECTOR = 0x4c565052u, /* "LVPR" */
    LLV_MAGIC_SESSION   = 0x4c565345u, /* "LVSE" */
    LLV_MAGIC_IMAGE     = 0x4c56494du, /* "LVIM" */
    LLV_MAGIC_EMBED     = 0x4c56454du, /* "LVEM" */
    LLV_MAGIC_CHAT      = 0x4c564348u, /* "LVCH" */
    LLV_MAGIC_DEAD      = 0xdeadbeefu
};

typedef struct llv_handle {
    uint32_t magic;
    llv_err  err;
} llv_handle;

static inline void llv_handle_init(llv_handle *h, uint32_t magic) { h->magic = magic; llv_err_clear(&h->err); }
/* Call right before freeing, so a stale pointer is recognised. */
static inline void llv_handle_kill(llv_handle *h) { h->magic = LLV_MAGIC_DEAD; }
static inline bool llv_handle_is(const void *p, uint32_t magic) {
    return p != NULL && ((const llv_handle *)p)->magic == magic;
}

#endif /* LLV_HANDLE_H */
