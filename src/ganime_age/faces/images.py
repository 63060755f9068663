"""Turn whatever a user hands us (a path, bytes, a PIL image, an array) into one thing: uint8 RGB (H, W, 3).

Everything downstream (detector, landmarker, alignment, models) can then assume that one format.
Photos from phones carry their rotation in EXIF, scans may be CMYK or 16-bit, web images may be
palette or RGBA; each is converted here, and every input we cannot use gets a typed error
(:mod:`ganime_age.errors`) with a message a user can act on instead of a stack trace from PIL.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganime_age.errors import (
    CorruptImageError,
    ImageLoadError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
)

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray

MIN_SIDE = 32
"""Shortest side (pixels) a photo must have: below this no detector finds a face worth editing."""

MAX_PIXELS = 100_000_000
"""Pixel budget (100 MP): larger images are refused before decoding (decompression-bomb guard)."""

MAX_FILE_BYTES = 100_000_000
"""Encoded size cap (100 MB, one byte per pixel of MAX_PIXELS): checked before a file is read, so a huge or
endless file (``/dev/zero``) never fills the memory. JPEG and WebP photos take 0.1-0.5 bytes a pixel."""

# Leading bytes of formats PIL decodes: if these are present but decoding fails, the file is
# damaged (CorruptImageError) rather than "not an image" (NotAnImageError).
_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"GIF87a",
    b"GIF89a",
    b"BM",  # BMP
    b"II*\x00",  # TIFF little endian
    b"MM\x00*",  # TIFF big endian
    b"\x00\x00\x00\x0cjP  ",  # JPEG 2000
)

# What PIL raises for damaged data, on open, load or convert.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)

# JPEG markers: start of frame (the image's size; C9-CF code with arithmetic coding), start of scan, end of image.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_ARITHMETIC_SOF = frozenset(range(0xC9, 0xD0)) - {0xCC}
_SOS, _EOI = 0xDA, 0xD9
# inside entropy-coded data a 0xFF byte is followed by 0x00 (a stuffed byte) or a restart marker D0-D7
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True)
class ImageHeader:
    """What a photo's header says, read without decoding a pixel: enough to refuse it or budget its memory."""

    width: int
    height: int
    format: str  # PIL's name: "JPEG", "PNG", "WEBP", ...
    mode: str  # PIL's mode of the stored pixels: "RGB", "RGBA", "L", "CMYK", "P", ...
    orientation: int = 1  # EXIF orientation (1 = stored upright; 2-8 = the photo is shown flipped or turned)

    @property
    def pixels(self) -> int:
        return self.width * self.height


def load_image(
    source: ImageSource, *, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES
) -> np.ndarray:
    """Read a photo as uint8 RGB (H, W, 3), honouring EXIF orientation.

    `source` may be a file path, the encoded bytes of a file, a PIL image or a numpy array
    (uint8/uint16/bool, or float in [0, 1]; (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA).
    Transparency is composited on white; grayscale, palette, CMYK and 16-bit images become 8-bit RGB.

    Raises ImageNotFoundError (a FileNotFoundError) for a missing or unusable path, NotAnImageError (also a
    folder, a device, a FIFO or a socket: only regular files are read), CorruptImageError (truncated or empty
    data), ImageTooSmallError (a side below `min_side`) or ImageTooLargeError (more than `max_pixels` pixels,
    checked before anything is decoded or converted; or an encoded file or bytes above `max_bytes`, checked
    before the file is read).
    """
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_pixels((source.shape[1], source.shape[0]), max_pixels, "image array")
        rgb = _array_to_rgb(source)
    elif isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels)
        rgb = _pil_image_to_rgb(source, max_pixels)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if memoryview(source).nbytes > max_bytes:
            raise _file_too_large("the given bytes", memoryview(source).nbytes, max_bytes)
        rgb = _decode(bytes(source), "the given bytes", max_pixels)
    elif isinstance(source, (str, os.PathLike)):
        path, data = _read_file(source, max_bytes)
        rgb = _decode(data, str(path), max_pixels)
    else:
        raise NotAnImageError(
            f"cannot read an image from a {type(source).__name__}; pass a path, bytes, a PIL image or a numpy array"
        )
    height, width = rgb.shape[:2]
    _check_pixels((width, height), max_pixels)
    if min(height, width) < min_side:
        raise ImageTooSmallError(f"image is only {width}x{height} pixels; faces need at least {min_side} pixels a side")
    return np.ascontiguousarray(rgb)


def read_image_header(
    source: str | os.PathLike | bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES
) -> ImageHeader:
    """A photo file's size and format from its header, with the checks :func:`load_image` makes before decoding
    (regular file, byte cap, image format, pixel budget, a JPEG's data present): what a server needs to refuse
    a photo, or to know the memory its edit takes, before a pixel is decoded. Raises the same typed errors."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, data = "the given bytes", bytes(source)
        if len(data) > max_bytes:
            raise _file_too_large(name, len(data), max_bytes)
    else:
        path, data = _read_file(source, max_bytes)
        name = str(path)
    image = _open(data, name, max_pixels)
    try:
        orientation = int(image.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block: load_image shows such photos unrotated too
        orientation = 1
    return ImageHeader(image.size[0], image.size[1], image.format or "unknown", image.mode, orientation)


def _read_file(source: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> tuple[Path, bytes]:
    """The file's bytes; every way a path can fail becomes an ImageLoadError subclass.

    Only a regular file is read, and only up to `max_bytes`: ``/dev/zero`` would fill the memory, a FIFO
    would block forever, and a huge file would be read whole before any pixel check. The type is checked
    with stat() before opening (opening some devices has side effects), then again on the open descriptor
    (O_NONBLOCK: opening a FIFO swapped in meanwhile does not wait for a writer).
    """
    text = os.fsdecode(os.fspath(source))
    shown = text if len(text) <= 200 else f"{text[:100]}...{text[-60:]} ({len(text)} characters)"
    path = Path(text)
    try:
        _check_regular(os.stat(text), shown, max_bytes)
    except (OSError, ValueError) as error:
        if isinstance(error, ImageLoadError):
            raise
        raise _path_error(error, shown) from None
    try:
        handle = os.open(text, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as error:
        raise _path_error(error, shown) from None
    try:
        _check_regular(os.fstat(handle), shown, max_bytes)
        chunks: list[bytes] = []
        left = max_bytes + 1  # one byte more than allowed tells a file that grew past the cap
        while left > 0:
            chunk = os.read(handle, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as error:  # an I/O error on a damaged disk
        raise ImageLoadError(f"cannot read {shown}: {error.strerror or type(error).__name__}") from None
    finally:
        os.close(handle)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise _file_too_large(shown, len(data), max_bytes)
    return path, data


def _path_error(error: OSError | ValueError, shown: str) -> ImageLoadError:
    """stat()/open() failures as typed errors: missing, unusable (NUL byte, too long) or unreadable."""
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return ImageNotFoundError(f"no such image file: {shown}")
    if isinstance(error, ValueError):  # an embedded NUL byte
        return ImageNotFoundError(f"not a usable file path: {shown} ({error})")
    if error.errno == errno.ENAMETOOLONG:
        return ImageNotFoundError(f"not a usable file path: the name is too long ({shown})")
    return ImageLoadError(f"cannot read {shown}: {error.strerror or type(error).__name__}")  # permissions, a loop


def _check_regular(info: os.stat_result, shown: str, max_bytes: int) -> None:
    """A folder or a special file (device, FIFO, socket) is not an image file; a file above `max_bytes` is refused."""
    if stat.S_ISDIR(info.st_mode):
        raise NotAnImageError(f"{shown} is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a pipe (FIFO)"
            if stat.S_ISFIFO(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "a special file"
        )
        raise NotAnImageError(f"{shown} is {kind}, not an image file")
    if info.st_size > max_bytes:
        raise _file_too_large(shown, info.st_size, max_bytes)


def _file_too_large(name: str, size: int, max_bytes: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{name} is {size / 1e6:.0f} MB; image files are limited to {max_bytes / 1e6:.0f} MB — "
        "save it as a JPEG or downscale it first"
    )


def _reason(error: BaseException) -> str:
    """PIL's message without the object reprs it embeds ("<_io.BytesIO object at 0x7f...>")."""
    return re.sub(r"\s*<[^<>]* object at 0x[0-9a-fA-F]+>", "", str(error)).strip() or type(error).__name__


def _too_large(name: str, error: Image.DecompressionBombError, max_pixels: int) -> ImageTooLargeError:
    """A decompression bomb reported against the project's pixel budget, not PIL's own limit."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(found.group(1)) / 1e6:.1f} MP ({int(found.group(1)):,} pixels)" if found else "too large"
    return ImageTooLargeError(f"{name}: the image is {size}; the limit is {max_pixels:,} pixels — downscale it first")


def _pil_image_to_rgb(image: Image.Image, max_pixels: int) -> np.ndarray:
    """A caller's PIL image (possibly lazily opened, possibly truncated) -> uint8 RGB, typed errors only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image.load()
        except Image.DecompressionBombError as error:
            raise _too_large("the PIL image", error, max_pixels) from None
        except _DECODE_ERRORS as error:
            raise CorruptImageError(f"the PIL image's data is damaged or truncated ({_reason(error)})") from None
    try:
        return _pil_to_rgb(image)
    except ImageLoadError:
        raise  # our own verdict on its pixels (e.g. float data out of range)
    except _DECODE_ERRORS as error:
        raise NotAnImageError(f"cannot convert a PIL image of mode {image.mode!r} to RGB ({_reason(error)})") from None


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    return _pil_image_to_rgb(_open(data, name, max_pixels), max_pixels)


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """The lazily opened image (header read, no pixel decoded), refused if it is not an image, exceeds the pixel
    budget, or is a JPEG whose data stops short of its pixels."""
    if not data:
        raise CorruptImageError(f"{name}: the file is empty (0 bytes)")
    looks_like_image = data.startswith(_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    with warnings.catch_warnings():
        # We enforce our own pixel budget below; PIL's warning for big-but-legal images is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            raise _too_large(name, error, max_pixels) from None
        except _DECODE_ERRORS as error:  # UnidentifiedImageError too
            if looks_like_image or not isinstance(error, UnidentifiedImageError):
                raise CorruptImageError(f"{name}: the image data is damaged or truncated ({_reason(error)})") from None
            raise NotAnImageError(f"{name}: {_describe_non_image(data)}") from None
        _check_pixels(image.size, max_pixels, name)
    if image.format == "JPEG":
        _check_jpeg_data(data, name)
    return image


def _check_jpeg_data(data: bytes, name: str) -> None:
    """Refuse a JPEG whose compressed data cannot hold its pixels.

    libjpeg decodes a file that ends (or writes its end marker) right after the header as a grey picture
    of the size the header claims: a 629-byte file would become 100 MP of grey. Huffman-coded data holds at
    least one bit per 8x8 block of its first (DC) scan, so the scans together hold at least (blocks / 8)
    bytes; a file cut before its end marker is refused too. (Arithmetic coding has no such bound.)
    """
    position, scan_bytes, blocks, arithmetic = 2, 0, 0, False
    size = len(data)
    truncated = CorruptImageError(f"{name}: the JPEG file is truncated (it ends before its end-of-image marker)")
    while True:
        position = data.find(b"\xff", position)  # libjpeg skips stray bytes between segments too
        if position < 0 or position + 2 > size:
            raise truncated
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte before a marker
            position += 1
            continue
        if marker == _EOI:
            break
        if 0xD0 <= marker <= 0xD7 or marker in (0x00, 0x01):  # markers without a length (and stray stuffing)
            position += 2
            continue
        if position + 4 > size:
            raise truncated
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _SOF_MARKERS and position + 9 <= size:
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            blocks = max(blocks, -(-width // 8) * -(-height // 8))
            arithmetic = arithmetic or marker in _ARITHMETIC_SOF
        position += 2 + length
        if marker == _SOS:
            end = _SCAN_END.search(data, position)
            stop = end.start() if end is not None else size
            scan_bytes += max(0, stop - position)
            position = stop
    if not arithmetic and scan_bytes * 8 < blocks:
        raise CorruptImageError(
            f"{name}: the JPEG file is truncated: its {scan_bytes:,} bytes of image data cannot hold the "
            f"{blocks * 64 / 1e6:.1f} MP its header claims"
        )


def _describe_non_image(data: bytes) -> str:
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not an image format we can read (JPEG, PNG, WebP, BMP, TIFF, GIF)"
    return "this is a text file, not an image"


def _check_pixels(size: tuple[int, int], max_pixels: int, name: str = "image") -> None:
    """Refuse more than `max_pixels` pixels, saying both counts in full: rounded to whole megapixels, a photo of
    50,002,840 pixels (8660x5774) was "50 MP; the limit is 50 MP"."""
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width * height / 1e6:.1f} MP ({width}x{height} = {width * height:,} pixels); the limit is "
            f"{max_pixels:,} pixels — downscale it first"
        )


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Apply EXIF orientation and convert any PIL mode to uint8 RGB."""
    with contextlib.suppress(Exception):  # broken EXIF blocks are common; the pixels are still usable unrotated
        image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "F":  # 32-bit float files: 0..1 or 0..255 data, both seen in the wild; anything else is refused
        values = np.asarray(image, np.float32)
        top = float(np.nanmax(values, initial=0.0))
        return _array_to_rgb(values / 255.0 if 1.0 + 1e-3 < top <= 255.0 + 1e-3 else values)
    if mode.startswith("I;16") or mode == "I":
        return _array_to_rgb(np.asarray(image), sixteen_bit=mode.startswith("I;16"))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    if image.mode != "RGB":
        image = image.convert("RGB")  # L, CMYK, YCbCr, LAB, HSV
    return np.asarray(image, dtype=np.uint8)


def _array_to_rgb(array: np.ndarray, *, sixteen_bit: bool = False) -> np.ndarray:
    """Numpy image of any common dtype/layout -> uint8 RGB; floats must be in [0, 1]."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise NotAnImageError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {array.shape}")
    if array.dtype == np.uint8:
        values = array
    elif array.dtype == bool:
        values = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16 or sixteen_bit:
        values = np.round(array.astype(np.float32) / 257.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        # 32-bit "I" images: 16-bit data if it exceeds the 8-bit range, else plain 8-bit values.
        if np.issubdtype(array.dtype, np.signedinteger) and int(array.min(initial=0)) < 0:
            raise NotAnImageError(
                f"the {array.dtype} image array holds negative values; pass uint8 (0..255) or uint16 (0..65535) data"
            )
        top = int(array.max(initial=0))
        scale = 257.0 if top > 255 else 1.0
        values = np.clip(np.round(array.astype(np.float64) / scale), 0, 255).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise NotAnImageError("the float image array holds NaN or infinite values")
        low, high = float(array.min(initial=0.0)), float(array.max(initial=0.0))
        if low < -1e-3 or high > 1.0 + 1e-3:
            raise NotAnImageError(
                f"float image data must hold values in [0, 1]; got [{low:.3g}, {high:.3g}] "
                "(convert 0..255 data to uint8 first; -1..1 data to (x + 1) / 2)"
            )
        values = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise NotAnImageError(f"unsupported image array dtype {array.dtype}")
    if values.ndim == 2:
        return np.repeat(values[..., None], 3, axis=2)
    if values.shape[2] == 4:
        alpha = values[..., 3:4].astype(np.float32) / 255.0
        rgb = values[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.round(rgb).astype(np.uint8)
    return values
