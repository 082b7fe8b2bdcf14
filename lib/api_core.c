/*
 * api_core.c - version, status text and per-handle messages.
 */
#include "handle.h"

LLAVA_API int llava_version_number(void)
{
    return LLAVA_VERSION_NUMBER;
}

LLAVA_API const char *llava_version_string(void)
{
    return LLAVA_VERSION_STRING;
}

LLAVA_API const char *llava_strerror(int status)
{
    switch (status) {
    case LLAVA_OK:                 return "success";
    case LLAVA_E_INVALID_ARG:      return "invalid argument";
    case LLAVA_E_NOMEM:            return "out of memory";
    case LLAVA_E_IO:               return "input/output error";
    case LLAVA_E_FORMAT:           return "malformed or inconsistent data";
    case LLAVA_E_UNSUPPORTED:      return "unsupported";
    case LLAVA_E_IMAGE:            return "image could not be decoded";
    case LLAVA_E_MISMATCH:         return "dimensions do not match";
    case LLAVA_E_CONTEXT_FULL:     return "context is full";
    case LLAVA_E_ABORTED:          return "aborted";
    case LLAVA_E_BUFFER_TOO_SMALL: return "buffer too small";
    case LLAVA_E_STATE:            return "call out of order";
    case LLAVA_E_INTERNAL:         return "internal error";
    default:                       return "unknown status";
    }
}

LLAVA_API const char *llava_errmsg(const void *handle)
{
    if (!handle)
        return "no handle (NULL)";
    const llv_handle *h = handle;
    switch (h->magic) {
    case LLV_MAGIC_PARAMS: case LLV_MAGIC_LM: case LLV_MAGIC_VISION: case LLV_MAGIC_PROJECTOR:
    case LLV_MAGIC_SESSION: case LLV_MAGIC_IMAGE: case LLV_MAGIC_EMBED: case LLV_MAGIC_CHAT:
        return h->err.msg;
    default:
        return "not a live libllava handle";
    }
}
