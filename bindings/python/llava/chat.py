"""Chat: the prompt-format helper (llava_chat_*), pull-based replies."""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Iterator, NamedTuple, Optional, Union, overload

from . import _errors
from ._handle import Handle, construct
from ._lib import TOKEN_FN, lib
from .media import Embedding
from .models import LM, Session
from .params import ParamsLike, Template, _Resolved


class Step(NamedTuple):
    """One llava_chat_step: the token (-1 when done without one), its text
    (complete UTF-8 characters only; may be empty) and whether the reply ended."""
    token: int
    text: str
    done: bool


class Token(NamedTuple):
    id: int
    text: str


class Chat(Handle):
    """A conversation in a prompt format over an :class:`LM`.

    >>> chat = Chat(lm, temperature=0, template="llava-1.5")
    >>> chat.add_image(embedding); chat.add_text("What is in the picture?")
    >>> for piece in chat.generate(): print(piece, end="")

    The reply is pulled token by token (:meth:`step`, :meth:`generate`), so
    it can run from an iterator or a game loop; the KV cache stays between
    turns, and the next add_* starts a new turn.
    """

    _free_name = "llava_free_chat"

    def __init__(self, lm: LM, params: ParamsLike = None, **kwargs: Any) -> None:
        with _Resolved(params, kwargs) as p:
            h = construct(lib.llava_new_chat, lm.handle, p.handle)
            super().__init__(h, keep=p.keep, parents=(lm,))
        self._session: Optional[Session] = None

    @property
    def template(self) -> Template:
        """The prompt format in use (never AUTO)."""
        return Template(lib.llava_chat_template(self.handle))

    @property
    def session(self) -> Session:
        """The chat's own session (borrowed: closed with the chat)."""
        if self._session is None or self._session.closed:
            self._session = Session(None, _handle=lib.llava_chat_session(self.handle), _owner=self)  # type: ignore[arg-type]
        return self._session

    def set_system(self, text: Optional[str]) -> None:
        """Replace the system prompt (None: the template's); first turn only."""
        self._check(lib.llava_chat_set_system(self.handle, None if text is None else text.encode("utf-8")))

    def add_text(self, text: str) -> "Chat":
        """Append text to the pending user turn."""
        self._check(lib.llava_chat_add_text(self.handle, text.encode("utf-8")))
        return self

    def add_image(self, embed: Embedding) -> "Chat":
        """Append an image (evaluated now) to the pending user turn."""
        self._check(lib.llava_chat_add_image(self.handle, embed.handle))
        return self

    def step(self) -> Step:
        """Generate one token of the reply (the first call closes the turn
        and evaluates it)."""
        tok = ctypes.c_int32(-1)
        piece = ctypes.POINTER(ctypes.c_char)()
        n = ctypes.c_size_t(0)
        done = ctypes.c_int(0)
        self._check(lib.llava_chat_step(self.handle, ctypes.byref(tok), ctypes.byref(piece), ctypes.byref(n),
                                        ctypes.byref(done)))
        text = ctypes.string_at(piece, n.value).decode("utf-8", "replace") if n.value else ""
        return Step(tok.value, text, bool(done.value))

    def tokens(self) -> Iterator[Token]:
        """Iterate over the reply's tokens (id and text)."""
        while True:
            s = self.step()
            if s.done:
                return
            yield Token(s.token, s.text)

    def generate(self) -> Iterator[str]:
        """Iterate over the reply's text pieces (empty pieces skipped)."""
        for t in self.tokens():
            if t.text:
                yield t.text

    def reply(self, on_token: Optional[Callable[[int, str], Any]] = None) -> str:
        """Generate the whole reply in one call (llava_chat_generate) and
        return its text; ``on_token(id, text)`` may return True to stop."""
        parts = []

        def cb(token: int, piece: Any, n: int, _ud: Optional[int]) -> int:
            try:
                text = ctypes.string_at(piece, n).decode("utf-8", "replace") if n else ""
                parts.append(text)
                return 1 if on_token is not None and on_token(token, text) else 0
            except BaseException as exc:
                _errors.park_exception(exc)
                return 1

        thunk = TOKEN_FN(cb)
        rc = lib.llava_chat_generate(self.handle, thunk, None)
        pending = getattr(_errors._pending, "exc", None)
        if pending is not None:  # the callback failed: re-raise its exception
            _errors._pending.exc = None
            raise pending
        self._check(rc)
        return "".join(parts)

    def ask(self, question: str, image: Optional[Embedding] = None) -> str:
        """One turn: [image,] question, then the whole reply."""
        if image is not None:
            self.add_image(image)
        self.add_text(question)
        return self.reply()

    def __repr__(self) -> str:
        return "<llava.Chat closed>" if self.closed else f"<llava.Chat {self.template.name}>"
