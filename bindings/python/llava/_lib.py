"""Low-level ctypes layer: finds libllava and declares every C prototype.

Nothing here is public API; use the classes of the ``llava`` package.
The table ``PROTOTYPES`` lists every function of include/llava.h with its
result and argument types, so ctypes converts (and checks) every call.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int32,
                    c_int64, c_size_t, c_uint, c_void_p)
from typing import Dict, List, Optional, Tuple

# Handles are opaque: every handle type is a plain void pointer here.
handle = c_void_p
handle_out = POINTER(c_void_p)

PROGRESS_FN = CFUNCTYPE(c_int, c_float, c_void_p)
ABORT_FN = CFUNCTYPE(c_int, c_void_p)
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)
TOKEN_FN = CFUNCTYPE(c_int, c_int32, POINTER(c_char), c_size_t, c_void_p)

_ERRBUF = [c_char_p, c_size_t]

# name: (restype, [argtypes])  -- keep in the order of include/llava.h.
PROTOTYPES: Dict[str, Tuple[object, List[object]]] = {
    # versions, errors
    "llava_version_number": (c_int, []),
    "llava_version_string": (c_char_p, []),
    "llava_strerror": (c_char_p, [c_int]),
    "llava_errmsg": (c_char_p, [c_void_p]),
    # params
    "llava_new_params": (handle, []),
    "llava_free_params": (None, [handle]),
    "llava_dup_params": (handle, [handle]),
    "llava_set_param_int": (c_int, [handle, c_int, c_int64]),
    "llava_set_param_float": (c_int, [handle, c_int, c_double]),
    "llava_get_param_int": (c_int, [handle, c_int, POINTER(c_int64)]),
    "llava_get_param_float": (c_int, [handle, c_int, POINTER(c_double)]),
    "llava_get_param_info": (c_int, [c_int, POINTER(c_int), POINTER(c_double), POINTER(c_double),
                                     POINTER(c_double)]),
    "llava_set_progress_callback": (c_int, [handle, PROGRESS_FN, c_void_p]),
    "llava_set_abort_callback": (c_int, [handle, ABORT_FN, c_void_p]),
    "llava_set_log_callback": (c_int, [handle, LOG_FN, c_void_p]),
    # language model
    "llava_load_lm": (c_int, [c_char_p, handle, handle_out] + _ERRBUF),
    "llava_load_lm_from_memory": (c_int, [c_void_p, c_size_t, handle, handle_out] + _ERRBUF),
    "llava_free_lm": (None, [handle]),
    "llava_lm_n_vocab": (c_int32, [handle]),
    "llava_lm_n_embd": (c_int32, [handle]),
    "llava_lm_n_ctx_train": (c_int32, [handle]),
    "llava_lm_token_bos": (c_int32, [handle]),
    "llava_lm_token_eos": (c_int32, [handle]),
    "llava_lm_meta_str": (c_int, [handle, c_char_p, c_void_p, c_size_t, POINTER(c_size_t)]),
    "llava_tokenize": (c_int, [handle, c_char_p, c_size_t, c_uint, POINTER(c_int32), c_size_t,
                               POINTER(c_size_t)]),
    "llava_token_to_piece": (c_int, [handle, c_int32, c_uint, c_void_p, c_size_t, POINTER(c_size_t)]),
    # sessions
    "llava_new_session": (c_int, [handle, handle, handle_out] + _ERRBUF),
    "llava_free_session": (None, [handle]),
    "llava_session_set_params": (c_int, [handle, handle]),
    "llava_eval_tokens": (c_int, [handle, POINTER(c_int32), c_size_t]),
    "llava_eval_embed": (c_int, [handle, handle]),
    "llava_get_logits": (POINTER(c_float), [handle, POINTER(c_int32)]),
    "llava_sample": (c_int, [handle, POINTER(c_int32)]),
    "llava_session_position": (c_int32, [handle]),
    "llava_session_n_ctx": (c_int32, [handle]),
    "llava_session_rewind": (c_int, [handle, c_int32]),
    "llava_session_save": (c_int, [handle, c_void_p, c_size_t, POINTER(c_size_t)]),
    "llava_session_load": (c_int, [handle, c_void_p, c_size_t]),
    # images
    "llava_load_image": (c_int, [c_char_p, handle, handle_out] + _ERRBUF),
    "llava_new_image_from_bytes": (c_int, [c_void_p, c_size_t, handle, handle_out] + _ERRBUF),
    "llava_new_image_from_pixels": (c_int, [c_void_p, c_int32, c_int32, c_size_t, c_int, c_uint, handle,
                                            handle_out] + _ERRBUF),
    "llava_free_image": (None, [handle]),
    "llava_image_width": (c_int32, [handle]),
    "llava_image_height": (c_int32, [handle]),
    "llava_image_rgb": (c_void_p, [handle]),
    # vision encoder and projector
    "llava_load_vision": (c_int, [c_char_p, handle, handle_out] + _ERRBUF),
    "llava_load_vision_from_memory": (c_int, [c_void_p, c_size_t, handle, handle_out] + _ERRBUF),
    "llava_free_vision": (None, [handle]),
    "llava_load_projector": (c_int, [c_char_p, handle, handle_out] + _ERRBUF),
    "llava_load_projector_from_memory": (c_int, [c_void_p, c_size_t, handle, handle_out] + _ERRBUF),
    "llava_free_projector": (None, [handle]),
    "llava_vision_image_size": (c_int32, [handle]),
    "llava_vision_n_tokens": (c_int32, [handle]),
    "llava_vision_n_tokens_for": (c_int32, [handle, handle, c_int32, c_int32]),
    "llava_projector_n_embd": (c_int32, [handle]),
    "llava_encode_image": (c_int, [handle, handle, handle, handle, handle_out]),
    # embeddings
    "llava_new_embed": (c_int, [POINTER(c_float), c_int32, c_int32, handle_out] + _ERRBUF),
    "llava_free_embed": (None, [handle]),
    "llava_embed_n_tokens": (c_int32, [handle]),
    "llava_embed_n_embd": (c_int32, [handle]),
    "llava_embed_data": (POINTER(c_float), [handle]),
    "llava_embed_save": (c_int, [handle, c_void_p, c_size_t, POINTER(c_size_t)]),
    "llava_embed_save_file": (c_int, [handle, c_char_p]),
    "llava_embed_load": (c_int, [c_void_p, c_size_t, handle_out] + _ERRBUF),
    "llava_embed_load_file": (c_int, [c_char_p, handle_out] + _ERRBUF),
    # chat helper
    "llava_new_chat": (c_int, [handle, handle, handle_out] + _ERRBUF),
    "llava_free_chat": (None, [handle]),
    "llava_chat_set_system": (c_int, [handle, c_char_p]),
    "llava_chat_add_text": (c_int, [handle, c_char_p]),
    "llava_chat_add_image": (c_int, [handle, handle]),
    "llava_chat_step": (c_int, [handle, POINTER(c_int32), POINTER(POINTER(c_char)), POINTER(c_size_t),
                                POINTER(c_int)]),
    "llava_chat_generate": (c_int, [handle, TOKEN_FN, c_void_p]),
    "llava_chat_session": (handle, [handle]),
    "llava_chat_template": (c_int, [handle]),
}

# Functions of llava.h deliberately not offered by this binding, with the
# reason (read by bindings/check_bound.py). Every function is bound now.
UNBOUND: Dict[str, str] = {}

ERRBUF_SIZE = 256  # LLAVA_ERRBUF_SIZE


def _candidates() -> List[str]:
    names = []
    env = os.environ.get("LLAVA_LIBRARY")
    if env:
        return [env]  # an explicit choice must not silently fall back
    found = ctypes.util.find_library("llava")
    if found:
        names.append(found)
    names.append("libllava.so.0")
    return names


def _load() -> ctypes.CDLL:
    errors = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        missing = [fn for fn in PROTOTYPES if not hasattr(lib, fn)]
        if missing:
            errors.append(f"{name}: lacks {', '.join(missing[:5])}")
            continue
        for fn, (restype, argtypes) in PROTOTYPES.items():
            f = getattr(lib, fn)
            f.restype = restype
            f.argtypes = argtypes
        return lib
    raise ImportError("libllava not found (set LLAVA_LIBRARY to the full path of libllava.so): "
                      + "; ".join(errors))


lib = _load()


def errbuf() -> ctypes.Array:
    """A fresh constructor error buffer."""
    return ctypes.create_string_buffer(ERRBUF_SIZE)


def text(b: Optional[bytes]) -> str:
    return "" if b is None else b.decode("utf-8", "replace")
