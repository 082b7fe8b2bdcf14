"""llava_c.py - a thin ctypes wrapper over the public C API of libllava (include/llava.h),
for tests that compare the C library with the independent reference (llava_ref.py).
Only what those tests need; every call checks its status and raises CError with
llava_errmsg / the errbuf text."""
import ctypes as C
import os

import numpy as np

LLAVA_PARAM_N_THREADS = 100
LLAVA_PARAM_N_CTX = 102
LLAVA_PARAM_KV_TYPE = 103
LLAVA_PARAM_N_BATCH = 104
LLAVA_PARAM_TEMPERATURE = 201

_vp = C.c_void_p


class CError(Exception):
    pass


def find_library(builddir):
    for p in (os.path.join(builddir, ".libs", "libllava.so"), os.path.join(builddir, "libllava.so")):
        if os.path.exists(p):
            return p
    return None


class Lib:
    def __init__(self, path):
        L = self.L = C.CDLL(path)
        sig = {
            "llava_new_params": (_vp, []),
            "llava_free_params": (None, [_vp]),
            "llava_set_param_int": (C.c_int, [_vp, C.c_int, C.c_int64]),
            "llava_set_param_float": (C.c_int, [_vp, C.c_int, C.c_double]),
            "llava_strerror": (C.c_char_p, [C.c_int]),
            "llava_errmsg": (C.c_char_p, [_vp]),
            "llava_load_lm": (C.c_int, [C.c_char_p, _vp, C.POINTER(_vp), C.c_char_p, C.c_size_t]),
            "llava_free_lm": (None, [_vp]),
            "llava_lm_n_vocab": (C.c_int32, [_vp]),
            "llava_lm_n_embd": (C.c_int32, [_vp]),
            "llava_new_session": (C.c_int, [_vp, _vp, C.POINTER(_vp), C.c_char_p, C.c_size_t]),
            "llava_free_session": (None, [_vp]),
            "llava_eval_tokens": (C.c_int, [_vp, C.POINTER(C.c_int32), C.c_size_t]),
            "llava_eval_embed": (C.c_int, [_vp, _vp]),
            "llava_get_logits": (C.POINTER(C.c_float), [_vp, C.POINTER(C.c_int32)]),
            "llava_load_image": (C.c_int, [C.c_char_p, _vp, C.POINTER(_vp), C.c_char_p, C.c_size_t]),
            "llava_free_image": (None, [_vp]),
            "llava_load_vision": (C.c_int, [C.c_char_p, _vp, C.POINTER(_vp), C.c_char_p, C.c_size_t]),
            "llava_free_vision": (None, [_vp]),
            "llava_load_projector": (C.c_int, [C.c_char_p, _vp, C.POINTER(_vp), C.c_char_p, C.c_size_t]),
            "llava_free_projector": (None, [_vp]),
            "llava_encode_image": (C.c_int, [_vp, _vp, _vp, _vp, C.POINTER(_vp)]),
            "llava_new_embed": (C.c_int, [C.POINTER(C.c_float), C.c_int32, C.c_int32, C.POINTER(_vp),
                                          C.c_char_p, C.c_size_t]),
            "llava_free_embed": (None, [_vp]),
            "llava_embed_n_tokens": (C.c_int32, [_vp]),
            "llava_embed_n_embd": (C.c_int32, [_vp]),
            "llava_embed_data": (C.POINTER(C.c_float), [_vp]),
        }
        for name, (res, args) in sig.items():
            f = getattr(L, name)
            f.restype, f.argtypes = res, args

    def _check(self, rc, what, msg=""):
        if rc != 0:
            raise CError("%s: %s (%s)" % (what, self.L.llava_strerror(rc).decode(), msg))

    def params(self, **ints):
        p = self.L.llava_new_params()
        for key, val in ints.items():
            if isinstance(val, float):
                self._check(self.L.llava_set_param_float(p, key_id(key), val), "set " + key)
            else:
                self._check(self.L.llava_set_param_int(p, key_id(key), val), "set " + key)
        return p

    def _load(self, fn, path, params):
        out, buf = _vp(), C.create_string_buffer(256)
        rc = fn(path.encode(), params, C.byref(out), buf, 256)
        self._check(rc, "load %s" % path, buf.value.decode(errors="replace"))
        return out

    def load_lm(self, path, params=None):
        return self._load(self.L.llava_load_lm, path, params)

    def load_vision(self, path, params=None):
        return self._load(self.L.llava_load_vision, path, params)

    def load_projector(self, path, params=None):
        return self._load(self.L.llava_load_projector, path, params)

    def load_image(self, path, params=None):
        return self._load(self.L.llava_load_image, path, params)

    def new_session(self, lm, params=None):
        out, buf = _vp(), C.create_string_buffer(256)
        self._check(self.L.llava_new_session(lm, params, C.byref(out), buf, 256), "new_session",
                    buf.value.decode(errors="replace"))
        return out

    def encode_image(self, vision, proj, image, params=None):
        out = _vp()
        rc = self.L.llava_encode_image(vision, proj, image, params, C.byref(out))
        self._check(rc, "encode_image", (self.L.llava_errmsg(image) or b"").decode(errors="replace"))
        arr = self.embed_array(out)
        return out, arr

    def embed_array(self, e):
        n, d = self.L.llava_embed_n_tokens(e), self.L.llava_embed_n_embd(e)
        return np.ctypeslib.as_array(self.L.llava_embed_data(e), shape=(n, d)).copy()

    def new_embed(self, arr):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        out, buf = _vp(), C.create_string_buffer(256)
        rc = self.L.llava_new_embed(arr.ctypes.data_as(C.POINTER(C.c_float)), arr.shape[0], arr.shape[1],
                                    C.byref(out), buf, 256)
        self._check(rc, "new_embed", buf.value.decode(errors="replace"))
        return out

    def eval_tokens(self, sess, ids):
        a = (C.c_int32 * len(ids))(*ids)
        self._check(self.L.llava_eval_tokens(sess, a, len(ids)), "eval_tokens",
                    (self.L.llava_errmsg(sess) or b"").decode(errors="replace"))

    def eval_embed(self, sess, e):
        self._check(self.L.llava_eval_embed(sess, e), "eval_embed",
                    (self.L.llava_errmsg(sess) or b"").decode(errors="replace"))

    def logits(self, sess):
        n = C.c_int32()
        p = self.L.llava_get_logits(sess, C.byref(n))
        if not p:
            raise CError("no logits")
        return np.ctypeslib.as_array(p, shape=(n.value,)).copy()


def key_id(name):
    return {"n_threads": LLAVA_PARAM_N_THREADS, "n_ctx": LLAVA_PARAM_N_CTX, "kv_type": LLAVA_PARAM_KV_TYPE,
            "n_batch": LLAVA_PARAM_N_BATCH, "temperature": LLAVA_PARAM_TEMPERATURE}[name]
