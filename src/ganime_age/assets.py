"""Where third-party model files come from, first match wins:

1. an explicit path (``EditorConfig.detector`` / ``landmarker``, ``resolve_asset(name, path)``);
2. the per-file environment variable named in :data:`ASSETS` (``GANIME_AGE_YUNET``, ...);
3. a folder in ``GANIME_AGE_ASSETS`` (one variable for every file: tests and CI point it at ``../shared/models``);
4. the copy shipped inside the package (``weights/face-models``: YuNet, the MediaPipe landmarker and selfie
   segmenter, the BiSeNetV2 face parser),
   used only when its sha256 matches, so a plain ``pip install`` edits photos offline;
5. the user cache (``$GANIME_AGE_CACHE``, else ``$XDG_CACHE_HOME/ganime-age``);
6. a download from the official source into that cache — with an error naming ``GANIME_AGE_ASSETS`` when
   none of these works.

Variables come before the packaged copy so that a user can swap in other files without touching the install.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ganime_age.errors import ModelFileNotFoundError

logger = logging.getLogger(__name__)

ASSETS_DIR_ENV = "GANIME_AGE_ASSETS"
PACKAGED_DIR = Path(__file__).resolve().parent / "weights" / "face-models"


@dataclass(frozen=True)
class Asset:
    filename: str
    env: str
    url: str | None
    sha256: str | None
    licence: str
    packaged: bool = False  # shipped in weights/face-models (permissive licence)


ASSETS: dict[str, Asset] = {
    "yunet": Asset(
        "face_detection_yunet_2023mar.onnx",
        "GANIME_AGE_YUNET",
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        "MIT (OpenCV Zoo)",
        packaged=True,
    ),
    "face_landmarker": Asset(
        "face_landmarker.task",
        "GANIME_AGE_FACE_LANDMARKER",
        "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
        "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        "Apache-2.0 (MediaPipe)",
        packaged=True,
    ),
    "selfie_segmenter": Asset(
        "selfie_segmentation.tflite",
        "GANIME_AGE_SELFIE_SEGMENTER",
        "https://cdn.jsdelivr.net/npm/@mediapipe/selfie_segmentation@0.1.1675465747/selfie_segmentation.tflite",
        "8d13b7fae74af625c641226813616a2117bd6bca19eb3b75574621fc08557f27",
        "Apache-2.0 (MediaPipe)",
        packaged=True,
    ),
    "face_parser": Asset(
        "bisenetv2_celebamaskhq_448x448_integer_quant.tflite",
        "GANIME_AGE_FACE_PARSER",
        "https://github.com/terryky/tflite_gles_app/raw/master/gl2face_segmentation/model/"
        "bisenetv2_celebamaskhq_448x448_integer_quant.tflite",
        "d0c1fc479bbd40084283043abf01d11a5c3a54b2ecc4bc812cde6f36989ad22a",
        "MIT (bisenetv2-tensorflow, PINTO model zoo); trained on CelebAMask-HQ (non-commercial research)",
        packaged=True,
    ),
    # Research-only weights without a public download URL: must be given locally.
    "mobilefacenet": Asset(
        "mobilefacenet_casia.safetensors", "GANIME_AGE_MOBILEFACENET", None, None, "research use (CASIA-WebFace)"
    ),
}


def cache_dir() -> Path:
    root = os.environ.get("GANIME_AGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ganime-age"
    )
    return Path(root)


def resolve_asset(name: str, explicit: str | os.PathLike[str] | None = None, *, download: bool = True) -> Path:
    """Path of asset `name`, searched in the order of this module's docstring."""
    try:
        asset = ASSETS[name]
    except KeyError:
        raise ModelFileNotFoundError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}") from None
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ModelFileNotFoundError(f"{asset.filename}: no file at {path}")
        return path
    looked_at = []
    if os.environ.get(asset.env):
        looked_at.append(Path(os.environ[asset.env]))
    if os.environ.get(ASSETS_DIR_ENV):
        looked_at.append(Path(os.environ[ASSETS_DIR_ENV]) / asset.filename)
    for path in looked_at:
        if path.is_file():
            return path
    packaged = packaged_copy(asset)
    if packaged is not None:
        return packaged
    cached = cache_dir() / asset.filename
    if cached.is_file():
        return cached
    looked_at += [PACKAGED_DIR / asset.filename, cached] if asset.packaged else [cached]
    if download and asset.url:
        return _download(asset)
    source = f"download it from {asset.url}" if asset.url else "it has no public download; get it from its authors"
    raise ModelFileNotFoundError(
        f"{asset.filename} not found. {fix_hint(asset)} ({source}). Looked at: {', '.join(str(p) for p in looked_at)}."
    )


def fix_hint(asset: Asset) -> str:
    """The one fix for any missing model file: a folder in GANIME_AGE_ASSETS (the per-file variable also works)."""
    return (
        f"Set {ASSETS_DIR_ENV} to a folder that holds {asset.filename} "
        f"(one folder can hold every model file), or {asset.env} to the file itself"
    )


def packaged_copy(asset: Asset) -> Path | None:
    """The copy shipped in ``weights/face-models``, if present and byte-identical to the upstream file."""
    path = PACKAGED_DIR / asset.filename
    if not asset.packaged or asset.sha256 is None or not path.is_file():
        return None
    stat = path.stat()
    if _sha256_cached(path, stat.st_size, stat.st_mtime_ns) != asset.sha256:
        logger.warning("ignoring the packaged %s: its sha256 does not match (damaged install?)", path)
        return None
    return path


@functools.lru_cache(maxsize=8)
def _sha256_cached(path: Path, size: int, mtime_ns: int) -> str:
    """sha256 of a packaged file, hashed once per process (size and mtime key out a changed file)."""
    return sha256_file(path)


def _download(asset: Asset) -> Path:
    target = cache_dir() / asset.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(asset.url, timeout=30) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ModelFileNotFoundError(
            f"{asset.filename} is neither packaged nor cached, and could not be downloaded. {fix_hint(asset)}. "
            f"(Download from {asset.url} failed: {error}.)"
        ) from error
    if asset.sha256 and sha256_file(partial) != asset.sha256:
        partial.unlink(missing_ok=True)
        raise ModelFileNotFoundError(
            f"{asset.filename} downloaded from {asset.url} has the wrong checksum. {fix_hint(asset)}."
        )
    partial.replace(target)
    return target


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
