"""Params: the options object (llava_params) with typed, bounded keys."""
from __future__ import annotations

import ctypes
import enum
from typing import Any, Callable, Dict, Iterator, Mapping, NamedTuple, Optional, Tuple, Union

from . import _errors
from ._errors import LlavaError, Status, check
from ._lib import ABORT_FN, LOG_FN, PROGRESS_FN, lib, text


class Param(enum.IntEnum):
    """enum llava_param of llava.h."""
    N_THREADS = 100
    USE_MMAP = 101
    N_CTX = 102
    KV_TYPE = 103
    N_BATCH = 104
    SEED = 200
    TEMPERATURE = 201
    TOP_K = 202
    TOP_P = 203
    MIN_P = 204
    REPEAT_PENALTY = 205
    REPEAT_LAST_N = 206
    FREQUENCY_PENALTY = 207
    PRESENCE_PENALTY = 208
    IMAGE_MAX_PIXELS = 300
    IMAGE_EXIF_ORIENT = 301
    CHAT_TEMPLATE = 400
    MAX_TOKENS = 401


class Template(enum.IntEnum):
    """enum llava_template (prompt formats of the chat helper)."""
    AUTO = 0
    LLAVA_1_5 = 1
    MISTRAL = 2
    CHATML = 3


# Keyword names accepted by Params(**kwargs); each maps to one key.
NAMES: Dict[str, Param] = {p.name.lower(): p for p in Param}
NAMES.update(threads=Param.N_THREADS, mmap=Param.USE_MMAP, template=Param.CHAT_TEMPLATE)

_TEMPLATE_NAMES = {"auto": Template.AUTO, "llava-1.5": Template.LLAVA_1_5, "llava_1_5": Template.LLAVA_1_5,
                   "vicuna": Template.LLAVA_1_5, "mistral": Template.MISTRAL, "chatml": Template.CHATML}
_KV_NAMES = {"f32": 0, "f16": 1}

TYPE_INT = 1
TYPE_FLOAT = 2


class ParamInfo(NamedTuple):
    """Type (int or float), inclusive bounds and default of a key."""
    type: type
    min: float
    max: float
    default: Union[int, float]


def param_info(key: Union[int, str]) -> ParamInfo:
    """Describe a key (a Param, its int value or a keyword name)."""
    k = _key(key)
    t = ctypes.c_int()
    lo, hi, de = ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
    rc = lib.llava_get_param_info(k, ctypes.byref(t), ctypes.byref(lo), ctypes.byref(hi), ctypes.byref(de))
    check(rc, lambda: f"unknown parameter key {k}")
    if t.value == TYPE_INT:
        return ParamInfo(int, lo.value, hi.value, int(de.value))
    return ParamInfo(float, lo.value, hi.value, de.value)


def _key(key: Union[int, str]) -> int:
    if isinstance(key, str):
        try:
            return int(NAMES[key.lower()])
        except KeyError:
            raise KeyError(f"unknown parameter name {key!r}; known: {', '.join(sorted(NAMES))}") from None
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"parameter key must be a name or an int, not {type(key).__name__}")
    return int(key)


def _coerce(key: int, value: Any) -> Any:
    """Friendly spellings: template names, 'f16'/'f32', booleans."""
    if isinstance(value, str):
        table = _TEMPLATE_NAMES if key == Param.CHAT_TEMPLATE else _KV_NAMES if key == Param.KV_TYPE else None
        if table is None or value.lower() not in table:
            raise ValueError(f"parameter {key}: unknown value {value!r}")
        return int(table[value.lower()])
    if isinstance(value, bool):
        return int(value)
    return value


class Params:
    """Options for loading, sessions, sampling, images and chats.

    ``Params(threads=2, temperature=0, n_ctx=2048, template="llava-1.5")``.
    Keys may be given by keyword name (see ``llava.params.NAMES``), as
    :class:`Param` members or as ints (``p[Param.TOP_K] = 20``). Values are
    checked by the library against the bounds of :func:`param_info`; an
    out-of-range value raises :class:`LlavaError` (E_INVALID_ARG).
    """

    def __init__(self, _handle: Optional[int] = None, **kwargs: Any) -> None:
        self._h: Optional[int] = _handle if _handle is not None else lib.llava_new_params()
        if not self._h:
            raise MemoryError("llava_new_params: out of memory")
        # Python callables and their ctypes thunks; handles made with these
        # params keep a reference (the library keeps the C pointers).
        self._callbacks: Dict[str, Any] = {}
        for name, value in kwargs.items():
            self.set(name, value)

    # -- lifetime -------------------------------------------------------
    def close(self) -> None:
        """Free the C object (handles already created keep their copies)."""
        h, self._h = self._h, None
        if h:
            lib.llava_free_params(h)

    def __enter__(self) -> "Params":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def handle(self) -> int:
        if not self._h:
            raise ValueError("Params is closed")
        return self._h

    def _fail(self) -> str:
        return text(lib.llava_errmsg(self._h))

    # -- values ---------------------------------------------------------
    def set(self, key: Union[int, str], value: Any) -> "Params":
        """Set one key; returns self so calls can be chained."""
        k = _key(key)
        value = _coerce(k, value)
        rc = lib.llava_get_param_info(k, None, None, None, None)
        check(rc, lambda: f"unknown parameter key {k}")
        if param_info(k).type is int:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise TypeError(f"parameter {k} takes an int, not {type(value).__name__}")
            if not -(1 << 63) <= value < (1 << 63):
                raise LlavaError(Status.E_INVALID_ARG, f"parameter {k}: {value} does not fit in int64")
            rc = lib.llava_set_param_int(self.handle, k, value)
        else:
            if not isinstance(value, (int, float)):
                raise TypeError(f"parameter {k} takes a float, not {type(value).__name__}")
            rc = lib.llava_set_param_float(self.handle, k, float(value))
        check(rc, self._fail)
        return self

    def get(self, key: Union[int, str]) -> Union[int, float]:
        """Read one key back (an int or a float, by the key's type)."""
        k = _key(key)
        if param_info(k).type is int:
            v = ctypes.c_int64()
            check(lib.llava_get_param_int(self.handle, k, ctypes.byref(v)), self._fail)
            return v.value
        d = ctypes.c_double()
        check(lib.llava_get_param_float(self.handle, k, ctypes.byref(d)), self._fail)
        return d.value

    __getitem__ = get

    def __setitem__(self, key: Union[int, str], value: Any) -> None:
        self.set(key, value)

    def update(self, values: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> "Params":
        for name, value in dict(values or {}, **kwargs).items():
            self.set(name, value)
        return self

    def items(self) -> Iterator[Tuple[str, Union[int, float]]]:
        """(name, value) of every key the library knows."""
        for p in Param:
            if lib.llava_get_param_info(int(p), None, None, None, None) == 0:
                yield p.name.lower(), self.get(p)

    def as_dict(self) -> Dict[str, Union[int, float]]:
        return dict(self.items())

    def copy(self) -> "Params":
        """An independent copy (llava_dup_params), with the same callbacks."""
        h = lib.llava_dup_params(self.handle)
        if not h:
            raise MemoryError("llava_dup_params: out of memory")
        p = Params(_handle=h)
        p._callbacks = dict(self._callbacks)
        return p

    def __repr__(self) -> str:
        if not self._h:
            return "<llava.Params closed>"
        return "llava.Params(" + ", ".join(f"{k}={v!r}" for k, v in self.items()) + ")"

    # -- callbacks ------------------------------------------------------
    def set_progress_callback(self, fn: Optional[Callable[[float], Any]]) -> None:
        """``fn(progress)`` in [0, 1]; return True to abort (E_ABORTED)."""
        thunk = None
        if fn is not None:
            def thunk_fn(progress: float, _ud: Optional[int]) -> int:
                try:
                    return 1 if fn(progress) else 0
                except BaseException as exc:  # parked, re-raised by the failed call
                    _errors.park_exception(exc)
                    return 1
            thunk = PROGRESS_FN(thunk_fn)
        check(lib.llava_set_progress_callback(self.handle, thunk or PROGRESS_FN(), None), self._fail)
        self._callbacks["progress"] = (fn, thunk)

    def set_abort_callback(self, fn: Optional[Callable[[], Any]]) -> None:
        """``fn()`` is polled during long operations; return True to stop."""
        thunk = None
        if fn is not None:
            def thunk_fn(_ud: Optional[int]) -> int:
                try:
                    return 1 if fn() else 0
                except BaseException as exc:
                    _errors.park_exception(exc)
                    return 1
            thunk = ABORT_FN(thunk_fn)
        check(lib.llava_set_abort_callback(self.handle, thunk or ABORT_FN(), None), self._fail)
        self._callbacks["abort"] = (fn, thunk)

    def set_log_callback(self, fn: Optional[Callable[[int, str], None]]) -> None:
        """``fn(level, message)``; level 0 error, 1 warning, 2 info, 3 debug."""
        thunk = None
        if fn is not None:
            def thunk_fn(level: int, message: Optional[bytes], _ud: Optional[int]) -> None:
                try:
                    fn(level, text(message))
                except BaseException:
                    pass  # a log line cannot fail an operation
            thunk = LOG_FN(thunk_fn)
        check(lib.llava_set_log_callback(self.handle, thunk or LOG_FN(), None), self._fail)
        self._callbacks["log"] = (fn, thunk)


ParamsLike = Union[Params, Mapping[str, Any], None]


class _Resolved:
    """A Params for one call: the caller's, or a temporary one built from a
    mapping / keyword arguments. ``keep`` holds what a new handle must keep."""

    def __init__(self, params: ParamsLike, kwargs: Mapping[str, Any]) -> None:
        self._own: Optional[Params] = None
        if params is None and not kwargs:
            self.params: Optional[Params] = None
        elif isinstance(params, Params) and not kwargs:
            self.params = params
        else:
            if isinstance(params, Params):
                self._own = params.copy()
            else:
                self._own = Params(**dict(params or {}))
            self._own.update(kwargs)
            self.params = self._own

    @property
    def handle(self) -> Optional[int]:
        return self.params.handle if self.params is not None else None

    @property
    def keep(self) -> Dict[str, Any]:
        return dict(self.params._callbacks) if self.params is not None else {}

    def __enter__(self) -> "_Resolved":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()
