"""Image (decoded RGB pixels) and Embedding (image features for the LM)."""
from __future__ import annotations

import array
import ctypes
import enum
import os
from typing import Any, Optional, Tuple, Union

from ._handle import Handle, byte_buffer, construct, copy_out, fspath
from ._lib import lib
from .params import ParamsLike, _Resolved


class PixelFormat(enum.IntEnum):
    """enum llava_pixel_format."""
    RGB = 1
    RGBA = 2
    BGRA = 3


_BPP = {PixelFormat.RGB: 3, PixelFormat.RGBA: 4, PixelFormat.BGRA: 4}
PIXELS_BOTTOM_UP = 1


def _pixel_format(fmt: Union[str, int]) -> PixelFormat:
    if isinstance(fmt, str):
        try:
            return PixelFormat[fmt.upper()]
        except KeyError:
            raise ValueError(f"unknown pixel format {fmt!r} (RGB, RGBA or BGRA)") from None
    return PixelFormat(fmt)


class Image(Handle):
    """Decoded 8-bit RGB pixels (llava_image).

    Make one with :meth:`open` (a path, encoded PNG/JPEG bytes, a numpy
    array or a PIL image), or the specific :meth:`load`, :meth:`from_bytes`,
    :meth:`from_pixels`, :meth:`from_array`, :meth:`from_pil`.
    """

    _free_name = "llava_free_image"

    @classmethod
    def open(cls, source: Any, params: ParamsLike = None, **kwargs: Any) -> "Image":
        """Dispatch on the type of ``source``."""
        if isinstance(source, (str, os.PathLike)):
            return cls.load(source, params, **kwargs)
        if isinstance(source, (bytes, bytearray, memoryview)):
            return cls.from_bytes(source, params, **kwargs)
        if hasattr(source, "__array_interface__") and not hasattr(source, "getbands"):
            return cls.from_array(source, params, **kwargs)
        if hasattr(source, "getbands") and hasattr(source, "tobytes"):
            return cls.from_pil(source, params, **kwargs)
        raise TypeError(f"cannot make an image from {type(source).__name__}")

    @classmethod
    def load(cls, path: "Union[str, os.PathLike[str]]", params: ParamsLike = None, **kwargs: Any) -> "Image":
        """Decode a PNG or JPEG file."""
        with _Resolved(params, kwargs) as p:
            return cls(construct(lib.llava_load_image, fspath(path), p.handle))

    @classmethod
    def from_bytes(cls, data: Any, params: ParamsLike = None, **kwargs: Any) -> "Image":
        """Decode a PNG or JPEG held in a bytes-like object."""
        addr, size, _keep = byte_buffer(data)
        with _Resolved(params, kwargs) as p:
            return cls(construct(lib.llava_new_image_from_bytes, addr, size, p.handle))

    @classmethod
    def from_pixels(cls, data: Any, width: int, height: int, format: Union[str, int] = "RGB",
                    stride: Optional[int] = None, bottom_up: bool = False,
                    params: ParamsLike = None, **kwargs: Any) -> "Image":
        """Copy raw 8-bit pixels (rows ``stride`` bytes apart, default tight)."""
        fmt = _pixel_format(format)
        if stride is None:
            stride = width * _BPP[fmt]
        addr, size, _keep = byte_buffer(data)
        if width > 0 and height > 0 and size < stride * (height - 1) + width * _BPP[fmt]:
            raise ValueError(f"{size} bytes are too few for {width}x{height} {fmt.name} pixels, stride {stride}")
        flags = PIXELS_BOTTOM_UP if bottom_up else 0
        with _Resolved(params, kwargs) as p:
            return cls(construct(lib.llava_new_image_from_pixels, addr, width, height, stride, int(fmt), flags,
                                 p.handle))

    @classmethod
    def from_array(cls, arr: Any, params: ParamsLike = None, format: Optional[str] = None,
                   **kwargs: Any) -> "Image":
        """A numpy uint8 array: HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA, or
        ``format='BGRA'``). Padded rows are used in place."""
        import numpy as np  # only needed here
        a = np.asarray(arr)
        if a.dtype != np.uint8:
            raise TypeError(f"pixel arrays must be uint8, not {a.dtype}")
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise ValueError(f"expected an HxW, HxWx3 or HxWx4 array, got shape {a.shape}")
        if not (a.strides[2] == 1 and a.strides[1] == a.shape[2] and a.strides[0] >= a.shape[1] * a.shape[2]):
            a = np.ascontiguousarray(a)
        fmt = format or ("RGB" if a.shape[2] == 3 else "RGBA")
        h, w = a.shape[0], a.shape[1]
        with _Resolved(params, kwargs) as p:
            return cls(construct(lib.llava_new_image_from_pixels, a.ctypes.data, w, h, a.strides[0],
                                 int(_pixel_format(fmt)), 0, p.handle))

    @classmethod
    def from_pil(cls, img: Any, params: ParamsLike = None, **kwargs: Any) -> "Image":
        """A PIL.Image (any mode; converted to RGB as PIL does)."""
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGB")
        return cls.from_pixels(img.tobytes(), img.width, img.height, img.mode, params=params, **kwargs)

    @property
    def width(self) -> int:
        return lib.llava_image_width(self.handle)

    @property
    def height(self) -> int:
        return lib.llava_image_height(self.handle)

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height) in pixels, as PIL."""
        return self.width, self.height

    @property
    def rgb(self) -> bytes:
        """A copy of the pixels: width*3 bytes per row, top row first."""
        ptr = lib.llava_image_rgb(self.handle)
        n = self.width * self.height * 3
        return ctypes.string_at(ptr, n) if ptr and n else b""

    def to_numpy(self) -> Any:
        """An HxWx3 uint8 numpy array (a copy)."""
        import numpy as np
        return np.frombuffer(self.rgb, dtype=np.uint8).reshape(self.height, self.width, 3).copy()

    def to_pil(self) -> Any:
        from PIL import Image as PILImage
        return PILImage.frombytes("RGB", self.size, self.rgb)

    def __repr__(self) -> str:
        return "<llava.Image closed>" if self.closed else f"<llava.Image {self.width}x{self.height}>"


class Embedding(Handle):
    """An image embedding: ``n_tokens`` rows of ``n_embd`` floats.

    From :meth:`llava.Vision.encode`, :meth:`from_floats`, :meth:`load` (a
    file written by :meth:`save`) or :meth:`from_bytes`.
    """

    _free_name = "llava_free_embed"

    def __init__(self, h: int) -> None:
        super().__init__(h)
        self._data: Optional[memoryview] = None

    @classmethod
    def from_floats(cls, data: Any, n_tokens: Optional[int] = None, n_embd: Optional[int] = None) -> "Embedding":
        """Copy floats: a 2-D numpy array, or any float sequence / buffer with
        n_tokens and n_embd given."""
        if hasattr(data, "__array_interface__"):
            import numpy as np
            a = np.ascontiguousarray(data, dtype=np.float32)
            if a.ndim == 2 and n_tokens is None and n_embd is None:
                n_tokens, n_embd = a.shape
            buf: Any = a
            addr = a.ctypes.data
            count = a.size
        else:
            if isinstance(data, memoryview) and data.format == "f":
                data = data.cast("B").cast("f")
            buf = array.array("f", data)
            addr, count = buf.buffer_info()
        if n_tokens is None or n_embd is None:
            raise ValueError("n_tokens and n_embd are needed for a flat sequence")
        if count != n_tokens * n_embd:
            raise ValueError(f"{count} floats given for {n_tokens} x {n_embd}")
        ptr = ctypes.cast(addr, ctypes.POINTER(ctypes.c_float))
        return cls(construct(lib.llava_new_embed, ptr, n_tokens, n_embd))

    @classmethod
    def load(cls, path: "Union[str, os.PathLike[str]]") -> "Embedding":
        """Read a file written by :meth:`save` (validated)."""
        return cls(construct(lib.llava_embed_load_file, fspath(path)))

    @classmethod
    def from_bytes(cls, data: Any) -> "Embedding":
        """Read a blob made by :meth:`to_bytes` (validated)."""
        addr, size, _keep = byte_buffer(data)
        return cls(construct(lib.llava_embed_load, addr, size))

    def save(self, path: "Union[str, os.PathLike[str]]") -> None:
        self._check(lib.llava_embed_save_file(self.handle, fspath(path)))

    def to_bytes(self) -> bytes:
        h = self.handle
        return copy_out(lambda buf, n, size: lib.llava_embed_save(h, buf, n, size), self.errmsg)

    @property
    def n_tokens(self) -> int:
        return lib.llava_embed_n_tokens(self.handle)

    @property
    def n_embd(self) -> int:
        return lib.llava_embed_n_embd(self.handle)

    @property
    def shape(self) -> Tuple[int, int]:
        return self.n_tokens, self.n_embd

    @property
    def data(self) -> memoryview:
        """A read-only float32 memoryview of shape (n_tokens, n_embd) over a
        copy of the data (so it stays valid after close())."""
        if self._data is None:
            n_tokens, n_embd = self.shape
            ptr = lib.llava_embed_data(self.handle)
            raw = ctypes.string_at(ptr, n_tokens * n_embd * 4) if ptr and n_tokens * n_embd else b""
            self._data = memoryview(raw).cast("f", (n_tokens, n_embd)) if raw else memoryview(raw)
        return self._data

    def to_array(self) -> "array.array[float]":
        """The floats as a flat array('f'), token-major."""
        a = array.array("f")
        a.frombytes(self.data.tobytes())
        return a

    def to_numpy(self) -> Any:
        import numpy as np
        return np.frombuffer(self.data.tobytes(), dtype=np.float32).reshape(self.shape)

    def __repr__(self) -> str:
        return "<llava.Embedding closed>" if self.closed else f"<llava.Embedding {self.n_tokens}x{self.n_embd}>"

