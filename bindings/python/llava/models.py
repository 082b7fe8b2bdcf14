"""LM (language model + tokenizer), Session, Vision encoder, Projector."""
from __future__ import annotations

import array
import ctypes
import os
from typing import Any, Iterable, List, Optional, Union

from ._handle import Handle, byte_buffer, construct, copy_out, fspath, read_string
from ._lib import lib
from .media import Embedding, Image
from .params import ParamsLike, _Resolved

TOKENIZE_ADD_BOS = 1
TOKENIZE_PARSE_SPECIAL = 2
PIECE_SPECIAL = 1

PathLike = Union[str, "os.PathLike[str]"]


class LM(Handle):
    """A loaded language model (GGUF, llama architecture) and its tokenizer.

    ``LM("model.gguf", threads=4)``; read-only once loaded, so any number of
    :class:`Session` / :class:`llava.Chat` objects may share it.
    """

    _free_name = "llava_free_lm"

    def __init__(self, path: Optional[PathLike] = None, params: ParamsLike = None, *, _handle: Optional[int] = None,
                 _keep: Any = None, **kwargs: Any) -> None:
        if _handle is None:
            if path is None:
                raise TypeError("LM() needs a path (or use LM.from_memory)")
            with _Resolved(params, kwargs) as p:
                _handle = construct(lib.llava_load_lm, fspath(path), p.handle)
                _keep = p.keep
        super().__init__(_handle, keep=_keep)

    @classmethod
    def from_memory(cls, data: Any, params: ParamsLike = None, **kwargs: Any) -> "LM":
        """Load from a GGUF image in memory; the bytes are kept alive by the
        LM (the library may use them in place)."""
        addr, size, buf = byte_buffer(data)
        with _Resolved(params, kwargs) as p:
            h = construct(lib.llava_load_lm_from_memory, addr, size, p.handle)
            return cls(_handle=h, _keep=(buf, p.keep))

    n_vocab = property(lambda self: lib.llava_lm_n_vocab(self.handle), doc="Vocabulary size.")
    n_embd = property(lambda self: lib.llava_lm_n_embd(self.handle), doc="Embedding width.")
    n_ctx_train = property(lambda self: lib.llava_lm_n_ctx_train(self.handle), doc="Training context.")
    bos = property(lambda self: lib.llava_lm_token_bos(self.handle), doc="BOS id, -1 if none.")
    eos = property(lambda self: lib.llava_lm_token_eos(self.handle), doc="EOS id, -1 if none.")

    def meta(self, key: str) -> Optional[str]:
        """A metadata string (e.g. 'general.name'), None if absent."""
        h = self.handle
        try:
            raw = read_string(lambda b, n, ln: lib.llava_lm_meta_str(h, key.encode(), b, n, ln), self.errmsg)
        except Exception as exc:
            if getattr(exc, "code", None) == 1:  # E_INVALID_ARG: absent or not a string
                return None
            raise
        return raw.decode("utf-8", "replace")

    def tokenize(self, text: Union[str, bytes], add_bos: bool = True, parse_special: bool = False) -> List[int]:
        """Token ids of UTF-8 text."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        flags = (TOKENIZE_ADD_BOS if add_bos else 0) | (TOKENIZE_PARSE_SPECIAL if parse_special else 0)
        n = ctypes.c_size_t(0)
        cap = len(data) + 2
        while True:
            out = (ctypes.c_int32 * cap)()
            rc = lib.llava_tokenize(self.handle, data, len(data), flags, out, cap, ctypes.byref(n))
            if rc == 10 and n.value > cap:  # E_BUFFER_TOO_SMALL: n is the size needed
                cap = n.value
                continue
            self._check(rc)
            return list(out[: n.value])

    def token_to_piece(self, token: int, special: bool = False) -> bytes:
        """The bytes one token stands for (may be part of a UTF-8 character)."""
        h = self.handle
        flags = PIECE_SPECIAL if special else 0
        return read_string(lambda b, n, ln: lib.llava_token_to_piece(h, token, flags, b, n, ln), self.errmsg, 64)

    def detokenize(self, tokens: Iterable[int], special: bool = False) -> str:
        return b"".join(self.token_to_piece(t, special) for t in tokens).decode("utf-8", "replace")

    def session(self, params: ParamsLike = None, **kwargs: Any) -> "Session":
        return Session(self, params, **kwargs)

    def chat(self, params: ParamsLike = None, **kwargs: Any) -> Any:
        from .chat import Chat
        return Chat(self, params, **kwargs)

    def __repr__(self) -> str:
        return "<llava.LM closed>" if self.closed else f"<llava.LM vocab={self.n_vocab} embd={self.n_embd}>"


class Session(Handle):
    """One conversation state over an :class:`LM`: KV cache, position,
    sampler. The LM stays alive as long as the session does."""

    _free_name = "llava_free_session"

    def __init__(self, lm: LM, params: ParamsLike = None, *, _handle: Optional[int] = None, _owner: Any = None,
                 **kwargs: Any) -> None:
        if _handle is not None:  # borrowed from a Chat
            super().__init__(_handle, parents=(_owner,), owned=False)
            return
        with _Resolved(params, kwargs) as p:
            h = construct(lib.llava_new_session, lm.handle, p.handle)
            super().__init__(h, keep=p.keep, parents=(lm,))

    def set_params(self, params: ParamsLike = None, **kwargs: Any) -> None:
        """Replace the sampling/runtime values (N_CTX and KV_TYPE stay)."""
        with _Resolved(params, kwargs) as p:
            self._check(lib.llava_session_set_params(self.handle, p.handle))
            self._keep = p.keep

    def eval(self, tokens: Union[int, Iterable[int]]) -> None:
        """Evaluate token ids at the current position."""
        ids = [tokens] if isinstance(tokens, int) else list(tokens)
        arr = (ctypes.c_int32 * len(ids))(*ids)
        self._check(lib.llava_eval_tokens(self.handle, arr, len(ids)))

    eval_tokens = eval

    def eval_embed(self, embed: Embedding) -> None:
        """Evaluate an image embedding (one position per image token)."""
        self._check(lib.llava_eval_embed(self.handle, embed.handle))

    def logits(self) -> Optional["array.array[float]"]:
        """A copy of the last logits (n_vocab floats), None before any eval."""
        n = ctypes.c_int32(0)
        ptr = lib.llava_get_logits(self.handle, ctypes.byref(n))
        if not ptr:
            return None
        a = array.array("f")
        a.frombytes(ctypes.string_at(ptr, n.value * 4))
        return a

    def sample(self) -> int:
        """The next token (not evaluated: pass it to :meth:`eval`)."""
        t = ctypes.c_int32()
        self._check(lib.llava_sample(self.handle, ctypes.byref(t)))
        return t.value

    position = property(lambda self: lib.llava_session_position(self.handle), doc="Positions evaluated.")
    n_ctx = property(lambda self: lib.llava_session_n_ctx(self.handle), doc="Context size.")

    def rewind(self, position: int) -> None:
        self._check(lib.llava_session_rewind(self.handle, position))

    def save_state(self) -> bytes:
        h = self.handle
        return copy_out(lambda b, n, size: lib.llava_session_save(h, b, n, size), self.errmsg)

    def load_state(self, data: Any) -> None:
        addr, size, _keep = byte_buffer(data)
        self._check(lib.llava_session_load(self.handle, addr, size))

    def __repr__(self) -> str:
        return "<llava.Session closed>" if self.closed else f"<llava.Session {self.position}/{self.n_ctx}>"


class Vision(Handle):
    """The CLIP vision encoder of an mmproj GGUF file."""

    _free_name = "llava_free_vision"

    def __init__(self, path: Optional[PathLike] = None, params: ParamsLike = None, *, _handle: Optional[int] = None,
                 _keep: Any = None, **kwargs: Any) -> None:
        if _handle is None:
            if path is None:
                raise TypeError("Vision() needs a path (or use Vision.from_memory)")
            with _Resolved(params, kwargs) as p:
                _handle = construct(lib.llava_load_vision, fspath(path), p.handle)
                _keep = p.keep
        super().__init__(_handle, keep=_keep)

    @classmethod
    def from_memory(cls, data: Any, params: ParamsLike = None, **kwargs: Any) -> "Vision":
        addr, size, buf = byte_buffer(data)
        with _Resolved(params, kwargs) as p:
            h = construct(lib.llava_load_vision_from_memory, addr, size, p.handle)
            return cls(_handle=h, _keep=(buf, p.keep))

    image_size = property(lambda self: lib.llava_vision_image_size(self.handle), doc="Input side in pixels.")
    n_tokens = property(lambda self: lib.llava_vision_n_tokens(self.handle), doc="Tokens per image.")

    def n_tokens_for(self, projector: "Projector", width: int, height: int) -> int:
        """Image tokens an image of this size will produce (0 if it cannot be
        encoded), known before encoding: for budgeting the context."""
        return int(lib.llava_vision_n_tokens_for(self.handle, projector.handle, int(width), int(height)))

    def encode(self, image: Image, projector: "Projector", params: ParamsLike = None, **kwargs: Any) -> Embedding:
        """Preprocess, encode and project an image (see encode_image)."""
        return encode_image(self, projector, image, params, **kwargs)


class Projector(Handle):
    """The projector of an mmproj GGUF file (vision features -> LM width)."""

    _free_name = "llava_free_projector"

    def __init__(self, path: Optional[PathLike] = None, params: ParamsLike = None, *, _handle: Optional[int] = None,
                 _keep: Any = None, **kwargs: Any) -> None:
        if _handle is None:
            if path is None:
                raise TypeError("Projector() needs a path (or use Projector.from_memory)")
            with _Resolved(params, kwargs) as p:
                _handle = construct(lib.llava_load_projector, fspath(path), p.handle)
                _keep = p.keep
        super().__init__(_handle, keep=_keep)

    @classmethod
    def from_memory(cls, data: Any, params: ParamsLike = None, **kwargs: Any) -> "Projector":
        addr, size, buf = byte_buffer(data)
        with _Resolved(params, kwargs) as p:
            h = construct(lib.llava_load_projector_from_memory, addr, size, p.handle)
            return cls(_handle=h, _keep=(buf, p.keep))

    n_embd = property(lambda self: lib.llava_projector_n_embd(self.handle), doc="Output (LM) width.")


def encode_image(vision: Vision, projector: Projector, image: Image, params: ParamsLike = None,
                 **kwargs: Any) -> Embedding:
    """Run the vision tower and the projector on an image -> Embedding.
    Errors carry the image's message."""
    out = ctypes.c_void_p()
    with _Resolved(params, kwargs) as p:
        rc = lib.llava_encode_image(vision.handle, projector.handle, image.handle, p.handle, ctypes.byref(out))
    image._check(rc)
    return Embedding(out.value)  # type: ignore[arg-type]
