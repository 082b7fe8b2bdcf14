"""The common base of every object that owns a libllava handle."""
from __future__ import annotations

import ctypes
import os
import weakref
from typing import Any, Callable, List, Optional, Tuple

from ._errors import check, strerror
from ._lib import errbuf, lib, text


class Handle:
    """Owns one C handle: close() frees it (once), and so do ``with`` and
    garbage collection. Objects that depend on it (sessions on an LM, ...)
    hold a strong reference to it, so it cannot be collected before them;
    an explicit close() first closes those dependents."""

    _free_name = ""  # the llava_free_* function

    def __init__(self, h: int, keep: Any = None, parents: Tuple["Handle", ...] = (), owned: bool = True) -> None:
        self._h: Optional[int] = h
        self._keep = keep           # callbacks / buffers the C side points to
        self._parents = parents     # handles that must outlive this one
        self._owned = owned
        self._children: "weakref.WeakSet[Handle]" = weakref.WeakSet()
        for p in parents:
            p._children.add(self)

    @property
    def handle(self) -> int:
        """The raw C pointer (for interoperation); ValueError once closed."""
        if not self._h:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._h

    @property
    def closed(self) -> bool:
        return not self._h

    def close(self) -> None:
        """Free the handle now (and first every object that depends on it)."""
        for child in list(self._children):
            child.close()
        h, self._h = self._h, None
        if h and self._owned:
            getattr(lib, self._free_name)(h)
        self._keep = None
        self._parents = ()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: lib may be gone
            pass

    def errmsg(self) -> str:
        """The detailed message of the last failed call on this handle."""
        return text(lib.llava_errmsg(self._h))

    def _check(self, rc: int) -> None:
        check(rc, self.errmsg)


def construct(fn: Callable[..., int], *args: Any) -> int:
    """Call a constructor taking (..., out, errbuf, errbuf_size) and return
    the new handle or raise LlavaError with the errbuf message."""
    out = ctypes.c_void_p()
    eb = errbuf()
    rc = fn(*args, ctypes.byref(out), eb, len(eb))
    check(rc, lambda: text(eb.value) or strerror(rc))
    return out.value  # type: ignore[return-value]


def fspath(path: "os.PathLike[str] | str | bytes") -> bytes:
    return os.fsencode(path)


def byte_buffer(data: Any) -> Tuple[int, int, Any]:
    """(address, size, object to keep alive) for a bytes-like object; copies
    only when the object is not already a contiguous bytes buffer."""
    if isinstance(data, bytes):
        return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0, len(data), data
    mv = memoryview(data)
    if not mv.c_contiguous:
        b = mv.tobytes()
        return byte_buffer(b)
    if mv.readonly:
        b = bytes(mv)
        return byte_buffer(b)
    mv = mv.cast("B")
    arr = (ctypes.c_char * mv.nbytes).from_buffer(mv)
    return ctypes.addressof(arr), mv.nbytes, (arr, mv, data)


def copy_out(query: Callable[[Any, int, Any], int], on_fail: Callable[[], str]) -> bytes:
    """The size-query protocol of llava_*_save: ask with NULL/0 for the size
    (E_BUFFER_TOO_SMALL), then fill a buffer of that size."""
    size = ctypes.c_size_t(0)
    rc = query(None, 0, ctypes.byref(size))
    if rc not in (0, 10):  # LLAVA_E_BUFFER_TOO_SMALL = 10
        check(rc, on_fail)
    buf = ctypes.create_string_buffer(max(size.value, 1))
    check(query(buf, size.value, ctypes.byref(size)), on_fail)
    return buf.raw[: size.value]


def read_string(query: Callable[[Any, int, Any], int], on_fail: Callable[[], str], first: int = 256) -> bytes:
    """For llava_lm_meta_str / llava_token_to_piece: grow until it fits."""
    n = ctypes.c_size_t(0)
    buf = ctypes.create_string_buffer(first)
    rc = query(buf, len(buf), ctypes.byref(n))
    if rc == 10:
        buf = ctypes.create_string_buffer(n.value + 1)
        rc = query(buf, len(buf), ctypes.byref(n))
    check(rc, on_fail)
    return buf.raw[: n.value]


def keep_list(*items: Any) -> List[Any]:
    return [i for i in items if i is not None]
