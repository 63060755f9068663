"""Face records for fitting the edit engine: every photo of a source analysed once, at its own resolution.

The engine is fitted on the original photos (not on the 128 px training crops), so it needs what the
analyser measures on each photo: 478 3-D landmarks in photo pixels, the 52 blendshapes and 17 AUs, the
head pose, plus the source's labels (age and sex for UTKFace; person, category and FACS codes for CFEE).
One pass over 22k photos takes minutes, so the records are kept in an ``.npz`` file beside the fit and
extended, not redone, when more photos are asked for. The train/test split is ``prepare_data``'s (a
content hash, or the person for CFEE), so the engine's held-out faces are the training pipeline's.
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.conditions import NUM_AUS
from ganime_age.faces.aus import NUM_BLENDSHAPES, blendshape_vector
from ganime_age.faces.topology import NUM_LANDMARKS
from training.data.sources import UTKFACE_NAME, SourceItem, parse_source
from training.prepare_data import file_sha1, pick_face, split_for, split_key_digest

log = logging.getLogger(__name__)

TEST_FRACTIONS = {"utkface": 0.1, "cfee": 0.15}  # prepare_data's defaults for these sources
RECORDS_VERSION = 1


@dataclass
class FaceRecords:
    """Column arrays, one row per analysed photo (photos without a usable face are left out)."""

    paths: np.ndarray  # (N,) str: photo path relative to the source folder
    split: np.ndarray  # (N,) str: "train" | "test"
    landmarks: np.ndarray  # (N, 478, 3) float32 photo pixels (z in the same scale, smaller = nearer)
    points5: np.ndarray  # (N, 5, 2) float32 YuNet's eyes, nose, mouth corners
    blendshapes: np.ndarray  # (N, 52) float32
    aus: np.ndarray  # (N, 17) float32: measured (calibrated blendshape read-out)
    coded_aus: np.ndarray  # (N, 17) float32: FACS codes (CFEE); NaN where the source has none
    pose: np.ndarray  # (N, 3) float32 yaw, pitch, roll
    ages: np.ndarray  # (N,) float32 years; NaN where unknown
    sex: np.ndarray  # (N,) float32 1 = female, 0 = male (UTKFace's label); NaN where unknown
    identity: np.ndarray  # (N,) str: the person (CFEE) or the photo itself
    category: np.ndarray  # (N,) str: CFEE's expression category, "" elsewhere
    image_size: np.ndarray  # (N, 2) int32 width, height

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, rows: np.ndarray | Sequence[int]) -> FaceRecords:
        rows = np.asarray(rows)
        return FaceRecords(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez_compressed(partial, version=RECORDS_VERSION, **{f.name: getattr(self, f.name) for f in fields(self)})
        os.replace(partial, path)

    @classmethod
    def load(cls, path: str | Path) -> FaceRecords:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != RECORDS_VERSION:
                raise ValueError(f"{path}: records version {int(data['version'])}, expected {RECORDS_VERSION}")
            return cls(**{f.name: data[f.name] for f in fields(cls)})

    @classmethod
    def concatenate(cls, parts: Sequence[FaceRecords]) -> FaceRecords:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def _empty_row() -> dict[str, Any]:
    return {
        "landmarks": np.zeros((NUM_LANDMARKS, 3), np.float32),
        "points5": np.zeros((5, 2), np.float32),
        "blendshapes": np.zeros(NUM_BLENDSHAPES, np.float32),
        "aus": np.zeros(NUM_AUS, np.float32),
        "pose": np.zeros(3, np.float32),
    }


_ANALYZER: Any = None


def _analyse(job: tuple[str, str]) -> tuple[str, dict[str, Any] | None]:
    """One photo -> its measurements (None when no face with landmarks is found). Runs in a worker."""
    global _ANALYZER
    from ganime_age.errors import GanimeAgeError
    from ganime_age.faces import FaceAnalyzer, load_image

    rel, path = job
    if _ANALYZER is None:
        _ANALYZER = FaceAnalyzer(size=128)
    try:
        rgb = load_image(path)
        faces = _ANALYZER.analyze(rgb)
    except GanimeAgeError:
        return rel, None
    face = pick_face(faces, rgb.shape[1], rgb.shape[0])
    if face.landmarks is None:
        return rel, None
    row = _empty_row()
    row["landmarks"] = np.asarray(face.landmarks.landmarks, np.float32)
    row["points5"] = np.asarray(face.detection.points, np.float32).reshape(5, 2)
    row["blendshapes"] = blendshape_vector(face.landmarks.blendshapes)
    row["aus"] = np.asarray(face.aus, np.float32)
    row["pose"] = np.asarray(face.pose, np.float32)
    row["image_size"] = np.array([rgb.shape[1], rgb.shape[0]], np.int32)
    return rel, row


def _labels(source: str, item: SourceItem) -> dict[str, Any]:
    name = Path(item.rel).name
    sex = math.nan
    if source == "utkface":
        match = UTKFACE_NAME.match(name)
        sex = float(match.group("gender")) if match else math.nan
    person, category = item.identity_hint, ""
    if source == "cfee":
        _, person, category = item.identity_hint.split("-", 2)
        category = category.replace("_", " ")
    return {
        "ages": float(item.age) if item.age_known else math.nan,
        "sex": sex,
        "identity": person,
        "category": category,
        "coded_aus": np.asarray(item.aus, np.float32) if item.aus is not None else np.full(NUM_AUS, np.nan, np.float32),
    }


def spread_items(items: list[SourceItem], limit: int | None, seed: int = 0) -> list[SourceItem]:
    """At most `limit` items drawn reproducibly (files are in name = age order, so a prefix would be biased)."""
    if limit is None or len(items) <= limit:
        return items
    picks = np.sort(np.random.default_rng(seed).choice(len(items), limit, replace=False))
    return [items[i] for i in picks]


def neutral_pairs(records: FaceRecords, split: str = "train") -> list[tuple[int, int]]:
    """(neutral row, posed row) of every CFEE person in `split` who has a Neutral photo."""
    neutral = {p: i for i, (p, c) in enumerate(zip(records.identity, records.category, strict=True)) if c == "Neutral"}
    return [
        (neutral[p], i)
        for i, (p, c, s) in enumerate(zip(records.identity, records.category, records.split, strict=True))
        if c != "Neutral" and p in neutral and s == split
    ]


def collect(
    source: str,
    root: str | Path,
    cache: str | Path | None = None,
    *,
    max_photos: int | None = None,
    workers: int = 2,
    progress: bool = True,
) -> FaceRecords:
    """Analyse the photos of `source` (utkface | cfee) under `root`; reuse and extend `cache` if given."""
    root = Path(root)
    listing = parse_source(source, root)
    items = spread_items(listing.items, max_photos)
    done: FaceRecords | None = None
    if cache is not None and Path(cache).is_file():
        done = FaceRecords.load(cache)
    known = set(done.paths.tolist()) if done is not None else set()
    failed_marker = Path(str(cache) + ".failed") if cache is not None else None
    failed = set(failed_marker.read_text().split("\n")) if failed_marker and failed_marker.is_file() else set()
    todo = [item for item in items if item.rel not in known and item.rel not in failed]
    rows: dict[str, dict[str, Any]] = {}
    if todo:
        jobs = [(item.rel, str(item.path)) for item in todo]
        log.info("analysing %d %s photos with %d worker(s)", len(jobs), source, workers)
        iterator: Any
        if workers > 1:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            iterator = pool.imap_unordered(_analyse, jobs, chunksize=16)
        else:
            pool = None
            iterator = map(_analyse, jobs)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, total=len(jobs), desc=f"analyse {source}", unit="photo")
        for rel, row in iterator:
            if row is None:
                failed.add(rel)
            else:
                rows[rel] = row
        if pool is not None:
            pool.close()
            pool.join()
    by_rel = {item.rel: item for item in items}
    new_items = [by_rel[rel] for rel in sorted(rows)]
    fresh = None
    if new_items:
        test_fraction = TEST_FRACTIONS.get(source, 0.1)
        columns: dict[str, list[Any]] = {f.name: [] for f in fields(FaceRecords)}
        for item in new_items:
            row = rows[item.rel]
            digest = split_key_digest(item, file_sha1(item.path))
            columns["paths"].append(item.rel)
            columns["split"].append(split_for(digest, test_fraction))
            for key in ("landmarks", "points5", "blendshapes", "aus", "pose", "image_size"):
                columns[key].append(row[key])
            for key, value in _labels(source, item).items():
                columns[key].append(value)
        fresh = FaceRecords(**{name: np.asarray(values) for name, values in columns.items()})
    parts = [p for p in (done, fresh) if p is not None]
    if not parts:
        raise ValueError(f"no face could be analysed in {root} ({source})")
    records = FaceRecords.concatenate(parts) if len(parts) > 1 else parts[0]
    if cache is not None and fresh is not None:
        records.save(cache)
    if failed_marker is not None and failed:
        failed_marker.write_text("\n".join(sorted(failed)))
    wanted = {item.rel for item in items}
    keep = np.array([p in wanted for p in records.paths])
    return records.subset(np.flatnonzero(keep))


def digest_of(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def utkface_split(root: Path, split: str) -> list[tuple[Path, float]]:
    """(photo, age) of UTKFace's `split` ("train" or "test") as prepare_data splits it (content hash), sorted."""
    chosen = []
    for item in parse_source("utkface", Path(root)).items:
        if split_for(split_key_digest(item, file_sha1(item.path)), TEST_FRACTIONS["utkface"]) == split:
            chosen.append((item.path, float(item.age)))
    return chosen
