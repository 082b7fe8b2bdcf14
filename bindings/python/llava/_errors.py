"""Status codes and the LlavaError exception."""
from __future__ import annotations

import enum
import threading
from typing import Callable, Optional

from ._lib import lib, text


class Status(enum.IntEnum):
    """enum llava_status of llava.h (values never change)."""
    OK = 0
    E_INVALID_ARG = 1
    E_NOMEM = 2
    E_IO = 3
    E_FORMAT = 4
    E_UNSUPPORTED = 5
    E_IMAGE = 6
    E_MISMATCH = 7
    E_CONTEXT_FULL = 8
    E_ABORTED = 9
    E_BUFFER_TOO_SMALL = 10
    E_STATE = 11
    E_INTERNAL = 12


def strerror(code: int) -> str:
    """Static English text for a status code."""
    return text(lib.llava_strerror(code))


class LlavaError(Exception):
    """A libllava call failed.

    ``code`` is the status (a :class:`Status` when known, else the int) and
    ``message`` the detailed message of the handle or constructor.
    """

    def __init__(self, code: int, message: str = "") -> None:
        try:
            code = Status(code)
        except ValueError:
            pass
        self.code = code
        self.message = message or strerror(code)
        super().__init__(code, self.message)

    def __str__(self) -> str:
        name = self.code.name if isinstance(self.code, Status) else str(self.code)
        return f"{self.message} [{name}]"


# An exception raised inside a Python callback cannot cross the C frames: the
# callback asks libllava to abort instead and parks the exception here; the
# failed call then re-raises it.
_pending = threading.local()


def park_exception(exc: BaseException) -> None:
    _pending.exc = exc


def raise_status(code: int, message: str) -> None:
    exc: Optional[BaseException] = getattr(_pending, "exc", None)
    _pending.exc = None
    if exc is not None and code == Status.E_ABORTED:
        raise exc
    err = LlavaError(code, message)
    if exc is not None:
        raise err from exc
    raise err


def check(code: int, message: Callable[[], str]) -> None:
    """Raise for a non-zero status; ``message`` is evaluated only then."""
    if code != 0:
        raise_status(code, message())
    _pending.exc = None
