"""Source faces for the augmentation: a prepared dataset split, or a folder of photos (with or without ages).

A source is listed cheaply (ids and labels only) so that every process computes the same work list and
resumption can skip finished faces before any image is decoded; :meth:`SourceFace.load` decodes on demand.

Only one split is augmented (``train`` by default): a prepared dataset's shards of that split, or of a photo
folder the photos that ``training/prepare_data.py`` puts in it (a hash of each photo's bytes, or of its person
for CFEE, with the test shares of ``training.data.face_records.TEST_FRACTIONS``), so held-out test faces are never
turned into training data.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganime_age.errors import DatasetError
from training.data.sources import SourceItem, _image_files, parse_source
from training.data.sources import _stem as strip_suffixes

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class SourceFace:
    """One source photo: a stable id (used in output names), its age label (None if unknown) and a loader."""

    source_id: str
    origin: str  # where it came from (prepared id / relative path), recorded in the metadata
    age: float | None
    loader: Callable[[], np.ndarray | bytes | Path]

    def load(self) -> np.ndarray:
        from ganime_age.faces import load_image

        return load_image(self.loader())


def is_prepared(folder: str | Path) -> bool:
    return any((Path(folder) / "data").glob("*-*.parquet"))


def safe_id(name: str, unique: str | None = None, *, max_length: int = 64) -> str:
    """A file-name-safe id: `name` cleaned and cut, plus a short hash of `unique` (default `name`) so that
    distinct sources stay distinct after cleaning."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "face"
    digest = hashlib.sha1((unique or name).encode("utf-8")).hexdigest()[:8]
    return f"{cleaned[:max_length]}-{digest}"


def _stem(rel: str) -> str:
    """The file name without its image suffixes (UTKFace names end in .jpg.chip.jpg)."""
    return strip_suffixes(Path(rel))


def prepared_sources(folder: str | Path, split: str = "train") -> list[SourceFace]:
    """The faces of a prepared dataset split ("all": both), ``training/prepare_data.py`` output, read with pyarrow."""
    faces = []
    for part in ("train", "test") if split == "all" else (split,):
        faces += _prepared_split(folder, part, missing_ok=split == "all")
    if not faces:
        raise DatasetError(f"{folder} has no {split!r} shards (data/{split}-*.parquet)")
    return faces


def _prepared_split(folder: str | Path, split: str, *, missing_ok: bool) -> list[SourceFace]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.data.prepared import shard_files

    files = shard_files(folder, split)
    if not files:
        if missing_ok:
            return []
        raise DatasetError(f"{folder} has no {split!r} shards (data/{split}-*.parquet)")
    table = pa.concat_tables([pq.read_table(path, columns=["image", "id", "age"]) for path in files])
    images = table.column("image").combine_chunks().field("bytes")
    ids = table.column("id").to_pylist()
    ages = table.column("age").to_pylist()
    faces = []
    for index, (face_id, age) in enumerate(zip(ids, ages, strict=True)):
        faces.append(
            SourceFace(
                source_id=safe_id(str(face_id), max_length=40),  # prepared ids are content hashes already
                origin=f"{split}:{face_id}",
                age=None if age is None else float(age),
                loader=lambda i=index: images[i].as_py(),
            )
        )
    return faces


def in_split(item: SourceItem, source: str, split: str) -> bool:
    """Whether prepare_data puts this photo in `split` ("all": always): the repository's one train/test split."""
    if split == "all":
        return True
    from training.data.face_records import TEST_FRACTIONS
    from training.prepare_data import file_sha1, split_for, split_key_digest

    return split_for(split_key_digest(item, file_sha1(item.path)), TEST_FRACTIONS.get(source, 0.1)) == split


def folder_sources(
    folder: str | Path, source: str = "folder", labels: str | Path | None = None, *, split: str = "train"
) -> list[SourceFace]:
    """Photos in a folder of `split` (see the module docstring): ``folder`` (no ages: an estimator must provide
    them) or a layout of :mod:`training.data.sources`."""
    root = Path(folder)
    if source == "folder":
        items = [
            SourceItem(path, path.relative_to(root).as_posix(), math.nan, -1, path.stem) for path in _image_files(root)
        ]
    else:
        items = parse_source(source, root, None if labels is None else Path(labels)).items
    return [
        SourceFace(
            safe_id(_stem(item.rel), item.rel), item.rel, None if source == "folder" else item.age, _loader(item.path)
        )
        for item in items
        if in_split(item, source, split)
    ]


def _loader(path: Path) -> Callable[[], Path]:
    return lambda: path


def list_sources(
    folder: str | Path, source: str = "auto", *, split: str = "train", labels: str | Path | None = None
) -> list[SourceFace]:
    """Source faces of `folder` in a deterministic order; `source` auto-detects a prepared dataset."""
    path = Path(folder)
    if not path.is_dir():
        raise DatasetError(f"input folder not found: {path}")
    if source == "auto":
        source = "prepared" if is_prepared(path) else "folder"
    prepared = source == "prepared"
    faces = prepared_sources(path, split) if prepared else folder_sources(path, source, labels, split=split)
    if not faces:
        raise DatasetError(f"no source faces found in {path} (source {source!r}, split {split!r})")
    ids = [face.source_id for face in faces]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: source ids are not unique; cannot name outputs reliably")
    return faces


def encode_image(image: np.ndarray, fmt: str = "png") -> bytes:
    """Encode uint8 RGB as png / webp (lossless) / jpg (q95)."""
    from PIL import Image

    buffer = io.BytesIO()
    pil = Image.fromarray(np.ascontiguousarray(image))
    if fmt == "png":
        pil.save(buffer, format="PNG")
    elif fmt == "webp":
        pil.save(buffer, format="WEBP", lossless=True)
    elif fmt in ("jpg", "jpeg"):
        pil.save(buffer, format="JPEG", quality=95)
    else:
        raise ValueError(f"unknown image format {fmt!r}; choose png, webp or jpg")
    return buffer.getvalue()
