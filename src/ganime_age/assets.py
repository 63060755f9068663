"""Where third-party model files come from: an explicit path, else an environment variable, else a
download into the user's cache from the official source — with a clear error when none works.

Set ``GANIME_AGE_ASSETS`` to a folder holding the files (tests and CI point it at ``../shared/models``),
or the per-file variable named in :data:`ASSETS`.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ganime_age.errors import ModelFileNotFoundError

ASSETS_DIR_ENV = "GANIME_AGE_ASSETS"


@dataclass(frozen=True)
class Asset:
    filename: str
    env: str
    url: str | None
    sha256: str | None
    licence: str


ASSETS: dict[str, Asset] = {
    "yunet": Asset(
        "face_detection_yunet_2023mar.onnx",
        "GANIME_AGE_YUNET",
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        "MIT (OpenCV Zoo)",
    ),
    "face_landmarker": Asset(
        "face_landmarker.task",
        "GANIME_AGE_FACE_LANDMARKER",
        "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
        "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        "Apache-2.0 (MediaPipe)",
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
    """Path of asset `name`: explicit path > per-file env var > $GANIME_AGE_ASSETS > cache > download."""
    try:
        asset = ASSETS[name]
    except KeyError:
        raise ModelFileNotFoundError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}") from None
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ModelFileNotFoundError(f"{asset.filename}: no file at {path}")
        return path
    candidates = []
    if os.environ.get(asset.env):
        candidates.append(Path(os.environ[asset.env]))
    if os.environ.get(ASSETS_DIR_ENV):
        candidates.append(Path(os.environ[ASSETS_DIR_ENV]) / asset.filename)
    candidates.append(cache_dir() / asset.filename)
    for path in candidates:
        if path.is_file():
            return path
    if download and asset.url:
        return _download(asset)
    hint = f"download it from {asset.url}" if asset.url else "this file has no public download; get it from its authors"
    raise ModelFileNotFoundError(
        f"{asset.filename} not found (looked at: {', '.join(str(p) for p in candidates)}). "
        f"Pass its path, set {asset.env} or {ASSETS_DIR_ENV}, or {hint}."
    )


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
            f"{asset.filename} is not cached and could not be downloaded from {asset.url} ({error}). "
            f"If you are offline, pass its path or set {asset.env}."
        ) from error
    if asset.sha256 and sha256_file(partial) != asset.sha256:
        partial.unlink(missing_ok=True)
        raise ModelFileNotFoundError(f"{asset.filename} downloaded from {asset.url} has the wrong checksum")
    partial.replace(target)
    return target


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
