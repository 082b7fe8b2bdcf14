"""libllava for Python: run LLaVA vision-language models (GGUF) on the CPU.

A pure-Python ctypes binding of the C library. It finds the shared library
through the LLAVA_LIBRARY environment variable (a full path), then
ctypes.util.find_library("llava"), then "libllava.so.0".

>>> import llava
>>> with llava.LM("model-lm.gguf") as lm, llava.Vision("mmproj.gguf") as vis, \\
...      llava.Projector("mmproj.gguf") as proj, llava.Image.open("cat.png") as img:
...     emb = vis.encode(img, proj)
...     chat = llava.Chat(lm, temperature=0)
...     chat.add_image(emb).add_text("What is in the picture?")
...     print("".join(chat.generate()))

Every object has close(), works as a context manager and is freed by the
garbage collector; failures raise :class:`LlavaError` (``.code``, ``.message``).
"""
from ._errors import LlavaError, Status, strerror
from ._lib import lib as _lib
from .chat import Chat, Step, Token
from .media import Embedding, Image, PixelFormat
from .models import LM, Projector, Session, Vision, encode_image
from .params import Param, ParamInfo, Params, Template, param_info

__all__ = ["LlavaError", "Status", "strerror", "Chat", "Step", "Token", "Embedding", "Image", "PixelFormat",
           "LM", "Projector", "Session", "Vision", "encode_image", "Param", "ParamInfo", "Params", "Template",
           "param_info", "version", "version_number", "__version__"]

__version__ = "0.1.0"


def version() -> str:
    """The version string of the libllava actually loaded."""
    return (_lib.llava_version_string() or b"").decode()


def version_number() -> int:
    """MAJOR*10000 + MINOR*100 + PATCH of the loaded libllava."""
    return int(_lib.llava_version_number())
