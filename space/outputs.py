"""What the Space writes to disk: each output once, compact, in gradio's cache where `delete_cache` removes it.

An event returns file paths, not PIL images: gradio would encode a PIL image itself (as PNG, several times the
upload for a photo) and copy a file from elsewhere into its cache, while a file already in its cache is served
as it is and tracked for deletion. So every output is encoded here, once:

- photos as JPEG at quality 95 (4:2:0 chroma, as cameras write them), or as PNG when the upload was a PNG
  (a lossless photo asks for a lossless result); ``GANIME_AGE_OUTPUT_FORMAT`` (jpeg, webp or png) sets one
  format for every output instead;
- the "before" photo is the upload itself wherever a browser shows it as the edit sees it (a JPEG, PNG or WebP
  stored upright, without transparency): no byte is written for it;
- each file goes to ``<cache>/<sha256 of its bytes>/<name>``, written under a temporary name and renamed, so a
  visitor downloading one never sees it half-written, and the same picture is stored once.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ganime_age.faces import ImageHeader, load_image

FORMATS = {"jpeg": ("JPEG", "jpg"), "webp": ("WEBP", "webp"), "png": ("PNG", "png")}
JPEG_QUALITY = 95
WEBP_QUALITY = 92
SHOWN_AS_IS = ("JPEG", "PNG", "WEBP")  # formats every browser shows; with EXIF orientation 1 and no alpha


def cache_folder() -> Path:
    """gradio's upload and output cache ($GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def output_format(photo: ImageHeader | None = None) -> str:
    """'jpeg', 'webp' or 'png': the setting, else PNG for a PNG upload and JPEG for everything else."""
    chosen = os.environ.get("GANIME_AGE_OUTPUT_FORMAT", "").strip().lower()
    if chosen in FORMATS:
        return chosen
    return "png" if photo is not None and photo.format == "PNG" else "jpeg"


def encode(image: Image.Image | np.ndarray, fmt: str) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    pil_format = FORMATS[fmt][0]
    buffer = io.BytesIO()
    if pil_format == "JPEG":
        picture.convert("RGB" if picture.mode not in ("L", "RGB") else picture.mode).save(
            buffer, "JPEG", quality=JPEG_QUALITY
        )
    elif pil_format == "WEBP":
        picture.save(buffer, "WEBP", quality=WEBP_QUALITY, method=4)
    else:
        picture.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def save_output(image: Image.Image | np.ndarray, name: str, fmt: str = "jpeg") -> str:
    """Write `image` once into gradio's cache as `name` in `fmt`; returns the path an event hands to gradio."""
    data = encode(image, fmt)
    folder = cache_folder() / hashlib.sha256(data).hexdigest()
    target = folder / f"{name}.{FORMATS[fmt][1]}"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return str(target)


def shown_photo(path: str, header: ImageHeader) -> str:
    """The "before" picture: the upload itself where a browser shows it as the edit sees it, else a copy."""
    if header.format in SHOWN_AS_IS and header.orientation == 1 and header.mode in ("RGB", "L"):
        return path
    return save_output(load_image(path), "photo", output_format(header))
