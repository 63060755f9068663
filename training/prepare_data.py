"""Prepare a face dataset for training: detect, analyse, align and shard real photos into Parquet.

    python training/prepare_data.py --source utkface --input ../shared/datasets/utkface --output data/utkface128
    python training/prepare_data.py --source ffhq-aging --input ffhq --labels ffhq_aging_labels.csv \\
        --output data/ffhq256 --size 256 --workers 8

Every photo goes through the same path as at inference time (``ganime_age.faces``): load (EXIF,
modes), detect, 478 landmarks + blendshapes -> 17 AUs + head pose, similarity-align to the
model's template and resolution. The output folder is the "prepared dataset" format every
trainer reads (``training/data/prepared.py``) and ``datasets.load_dataset(folder)`` accepts:

    data/{train,test}-NNNNN.parquet   image (WebP q80, datasets Image), id, source, age, age_group,
                                      aus[17], pose[3], landmarks[478*2], identity_hint
    README.md                         dataset card (source, licence, counts)
    prepare_report.json               every input accounted for: rows per split, drops per reason, timing

Work is cut into fixed chunks of input files in a deterministic order. A finished chunk's shards
are renamed into place and then its marker (``.prepare/chunk-NNNNN.json``) is written, so an
interrupted run restarts where it stopped and produces the same rows as a clean run. The
train/test split hashes each photo's bytes, so it never depends on order, chunking or workers.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import math
import os
import shutil
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age import __version__
from ganime_age.conditions import AGE_GROUP_LABELS, MAX_AGE, NUM_AGE_GROUPS, NUM_AUS, age_to_group
from ganime_age.errors import (
    CorruptImageError,
    DatasetError,
    GanimeAgeError,
    ImageLoadError,
    ImageTooLargeError,
    ImageTooSmallError,
    NoFaceError,
    NotAnImageError,
)
from ganime_age.faces.aus import NUM_BLENDSHAPES, blendshape_vector
from ganime_age.faces.topology import NUM_LANDMARKS
from training.data.sources import SOURCES, SourceItem, SourceListing, parse_source

log = logging.getLogger(__name__)

STATE_DIR = ".prepare"
MANIFEST = "manifest.json"
HASH_CACHE = "hashes.json"
REPORT = "prepare_report.json"
WEBP_QUALITY = 80
# Landmarks are stored rounded to 1/64 pixel (far below the mesh's accuracy): rounded float32 values
# compress well, which nearly halves the shards (the landmarks are ~70% of the raw bytes).
LANDMARK_STEP = 1.0 / 64.0
FORMAT_VERSION = 2  # 2: blendshapes, au_source and age_estimated columns

# Why a photo produced no row; the report counts each one (image load errors by their typed class).
LOAD_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (NotAnImageError, "not_an_image"),
    (CorruptImageError, "corrupt_image"),
    (ImageTooSmallError, "image_too_small"),
    (ImageTooLargeError, "image_too_large"),
    (ImageLoadError, "unreadable"),
    (OSError, "unreadable"),
)


@dataclass
class PrepareConfig:
    """Everything that decides the prepared rows (and a few knobs that do not, such as workers)."""

    source: str = "utkface"
    input: str = ""
    output: str = ""
    labels: str | None = None
    size: int = 128
    test_fraction: float = 0.1
    min_confidence: float = 0.6
    chunk_size: int = 1000
    workers: int = 1
    relabel: str | None = None
    # fills in the ages of sources that have none (CFEE); None: the embedded estimator, when one is needed
    age_estimator: str | None = None
    max_items: int | None = None  # only the first N usable photos (quick trials)
    max_chunks: int | None = None  # process at most N pending chunks this run, then stop (debug/resume tests)
    overwrite: bool = False
    license: str | None = None  # override the source's licence id in the card
    push_to_hub: str | None = None
    private: bool = False
    progress: bool = True

    def manifest(self, items_digest: str) -> dict[str, Any]:
        """The settings a resumed run must share with the run that wrote the finished chunks."""
        return {
            "format": FORMAT_VERSION,
            "source": self.source,
            "size": self.size,
            "test_fraction": self.test_fraction,
            "min_confidence": self.min_confidence if self.source == "ffhq-aging" else None,
            "chunk_size": self.chunk_size,
            "relabel": self.relabel,
            "items": items_digest,
        }


@dataclass
class ChunkJob:
    """One fixed slice of the input list; a worker turns it into shards + a marker."""

    index: int
    items: list[tuple[SourceItem, str]]  # (item, sha1 of its bytes)
    output: str
    source: str
    size: int
    test_fraction: float
    schema: Any  # pyarrow.Schema with the datasets feature metadata


@dataclass
class ChunkResult:
    index: int
    items: int
    rows: dict[str, int] = field(default_factory=dict)
    age_groups: dict[str, list[int]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- splitting, hashing, schema ------------------------------------------------------------------------


def split_for(digest: str, test_fraction: float) -> str:
    """'test' for a stable `test_fraction` of photos, chosen by their content hash (order-free)."""
    return "test" if int(digest[:8], 16) / 2**32 < test_fraction else "train"


def split_key_digest(item: SourceItem, digest: str) -> str:
    """What decides a photo's split: its content hash, or the hash of its person where the source names one."""
    if item.split_key is None:
        return digest
    return hashlib.sha1(item.split_key.encode()).hexdigest()


def file_sha1(path: Path) -> str:
    sha = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


# The prepared columns: name -> (arrow value type, fixed list length or None). "image" is the datasets Image struct.
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("image", "image", None),
    ("id", "string", None),
    ("source", "string", None),
    ("age", "float32", None),
    ("age_group", "int64", None),
    ("aus", "float32", NUM_AUS),
    ("pose", "float32", 3),
    ("landmarks", "float32", NUM_LANDMARKS * 2),
    ("identity_hint", "string", None),
    ("blendshapes", "float32", NUM_BLENDSHAPES),  # raw MediaPipe scores: the AU read-out can be recalibrated
    ("au_source", "string", None),  # "facs": coded by people (CFEE); "blendshapes": estimated from the scores
    ("age_estimated", "int64", None),  # 1: the source has no age and `age` is the age estimator's reading
)
RELABEL_COLUMN = ("age_source_label", "float32", None)


def arrow_schema(relabel: bool = False) -> Any:
    """The Parquet schema, with the `huggingface` metadata that makes datasets decode `image` as an Image.

    Built by `datasets.Features` when it is installed (its own metadata format, whatever its version);
    without it (e.g. a GPU box) the same schema is written by hand in the datasets >= 4 format.
    """
    columns = (*COLUMNS, RELABEL_COLUMN) if relabel else COLUMNS
    try:
        import datasets
    except ImportError:
        return _handwritten_schema(columns)
    list_type = getattr(datasets, "List", None) or datasets.Sequence  # datasets < 4 has only Sequence

    def feature(kind: str, length: int | None) -> Any:
        if kind == "image":
            return datasets.Image()
        return datasets.Value(kind) if length is None else list_type(datasets.Value(kind), length=length)

    return datasets.Features({name: feature(kind, length) for name, kind, length in columns}).arrow_schema


def _handwritten_schema(columns: Sequence[tuple[str, str, int | None]]) -> Any:
    import pyarrow as pa

    fields, features = [], {}
    for name, kind, length in columns:
        if kind == "image":
            fields.append(pa.field(name, pa.struct([("bytes", pa.binary()), ("path", pa.string())])))
            features[name] = {"_type": "Image"}
            continue
        value = pa.float32() if kind == "float32" else pa.int64() if kind == "int64" else pa.string()
        fields.append(pa.field(name, value if length is None else pa.list_(value, length)))
        scalar = {"dtype": kind, "_type": "Value"}
        features[name] = scalar if length is None else {"feature": scalar, "length": length, "_type": "List"}
    metadata = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(fields, metadata=metadata)


def _hash_items(items: list[SourceItem], state: Path, progress: bool) -> list[str]:
    """sha1 of every photo's bytes, cached by (path, size, mtime) so a resumed run does not re-read them."""
    cache_path = state / HASH_CACHE
    cache: dict[str, list[Any]] = {}
    if cache_path.is_file():
        try:
            cache = json.loads(cache_path.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    digests: list[str] = []
    fresh: dict[str, list[Any]] = {}
    for item in _progress(items, progress, desc="hash", unit="file"):
        stat = item.path.stat()
        key = [stat.st_size, stat.st_mtime_ns]
        cached = cache.get(item.rel)
        digest = cached[2] if cached and cached[:2] == key else file_sha1(item.path)
        fresh[item.rel] = [*key, digest]
        digests.append(digest)
    _write_atomic(cache_path, json.dumps(fresh).encode())
    return digests


def _progress(iterable: Iterable[Any], enabled: bool, **kwargs: Any) -> Iterable[Any]:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a hidden temporary file beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# -- per-face work (runs in worker processes) ------------------------------------------------------------


def pick_face(faces: Sequence[Any], width: int, height: int) -> Any:
    """The largest, most central face: size and centre distance are both measured in short sides.

    A face twice as wide as another wins unless it is much farther from the centre, which keeps the
    subject of a portrait over a big face at the edge and over small faces in the background.
    """
    short = float(min(width, height))

    def score(face: Any) -> float:
        x, y, w, h = (float(v) for v in face.detection.box)
        distance = math.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2)
        return math.sqrt(max(w * h, 0.0)) / short - distance / short

    return max(faces, key=score)


def encode_webp(image: np.ndarray, quality: int = WEBP_QUALITY) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="WEBP", quality=quality)
    return buffer.getvalue()


class ChunkWorker:
    """Owns one FaceAnalyzer (and the AgeEstimator that relabels or fills in ages) for the life of a process.

    `relabel` replaces every age by the estimator's; `estimator` alone only fills in the ages a source lacks.
    """

    def __init__(self, size: int, relabel: str | None = None, estimator: str | None = None) -> None:
        from ganime_age.faces import FaceAnalyzer

        self.size = size
        self.analyzer = FaceAnalyzer(size=size)
        self.relabel_all = bool(relabel)
        self.estimator = None
        if relabel or estimator:
            from ganime_age.hub import load_pretrained

            self.estimator = load_pretrained(relabel or estimator).eval()

    def analyse(self, item: SourceItem, digest: str) -> dict[str, Any] | tuple[str, str]:
        """One photo -> a row dict, or (reason, detail) when it yields no usable face."""
        from ganime_age.faces import load_image, transform_points

        try:
            rgb = load_image(item.path)
        except Exception as error:
            for kind, reason in LOAD_REASONS:
                if isinstance(error, kind):
                    return reason, f"{item.rel}: {error}"
            raise
        try:
            faces = self.analyzer.analyze(rgb)
        except NoFaceError:
            return "no_face", item.rel
        if not faces:
            return "no_face", item.rel
        face = pick_face(faces, rgb.shape[1], rgb.shape[0])
        if face.landmarks is None:
            return "no_landmarks", item.rel
        aligned = face.aligned
        points = transform_points(np.asarray(face.landmarks.landmarks, np.float32)[:, :2], aligned.matrix)
        points = np.round(np.asarray(points, np.float64) / LANDMARK_STEP) * LANDMARK_STEP
        age = float(item.age)
        coded = item.aus is not None
        return {
            "image": {"bytes": encode_webp(np.ascontiguousarray(aligned.image)), "path": f"{digest}.webp"},
            "id": digest,
            "age": min(age, MAX_AGE),
            "age_group": int(item.age_group),
            "aus": np.clip(np.asarray(item.aus if coded else face.aus, np.float32).reshape(NUM_AUS), 0.0, 5.0),
            "blendshapes": blendshape_vector(face.landmarks.blendshapes),
            "au_source": "facs" if coded else "blendshapes",
            "age_estimated": int(not item.age_known),
            "_split": split_key_digest(item, digest),
            "pose": np.asarray(face.pose, np.float32).reshape(3),
            "landmarks": np.asarray(points, np.float32).reshape(NUM_LANDMARKS * 2),
            "identity_hint": item.identity_hint,
            "_faces": len(faces),
            "_aligned": aligned.image,
            "_clipped": age > MAX_AGE,
        }

    def relabel(self, rows: list[dict[str, Any]], batch_size: int = 64) -> None:
        """Replace each row's age by the estimator's prediction; keep the original in age_source_label.

        Without `relabel_all`, only the rows whose source has no age (age_estimated) get one.
        """
        import torch

        assert self.estimator is not None
        rows = rows if self.relabel_all else [row for row in rows if row["age_estimated"]]
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            images = np.stack([row["_aligned"] for row in batch]).astype(np.float32)
            tensor = torch.from_numpy(images).permute(0, 3, 1, 2) / 127.5 - 1.0
            with torch.no_grad():
                predicted = self.estimator.predict(tensor).float().cpu().numpy()
            for row, age in zip(batch, predicted, strict=True):
                row["age_source_label"] = row["age"]
                row["age"] = float(np.clip(age, 0.0, MAX_AGE))
                row["age_group"] = age_to_group(row["age"])

    def run(self, job: ChunkJob, on_item: Callable[[int], Any] | None = None) -> ChunkResult:
        """Analyse every photo of a chunk, write its shards atomically, then its marker."""
        start = time.perf_counter()
        output = Path(job.output)
        for split in ("train", "test"):  # leftovers of an interrupted attempt at this chunk
            shard_path(output, split, job.index).unlink(missing_ok=True)
        result = ChunkResult(index=job.index, items=len(job.items))
        dropped: Counter[str] = Counter()
        notes: Counter[str] = Counter()
        rows: list[dict[str, Any]] = []
        for item, digest in job.items:
            try:
                outcome = self.analyse(item, digest)
            except Exception as error:  # one broken photo must not end a 20-hour run; the report names it
                log.exception("analysis of %s failed", item.rel)
                outcome = "analysis_error", f"{item.rel}: {type(error).__name__}: {error}"
            if isinstance(outcome, tuple):
                reason, detail = outcome
                dropped[reason] += 1
                bucket = result.examples.setdefault(reason, [])
                if len(bucket) < 10:
                    bucket.append(detail)
            else:
                notes["multiple_faces"] += outcome["_faces"] > 1
                notes["age_clipped"] += outcome["_clipped"]
                rows.append(outcome)
            if on_item is not None:
                on_item(1)
        if self.estimator is not None and rows:
            self.relabel(rows)
        if any(not math.isfinite(row["age"]) for row in rows):
            raise DatasetError("a source without ages needs an age estimator (ChunkWorker estimator=...)")
        for row in rows:
            row["source"] = job.source
        for split in ("train", "test"):
            part = [row for row in rows if split_for(row["_split"], job.test_fraction) == split]
            result.rows[split] = len(part)
            result.age_groups[split] = np.bincount(
                [row["age_group"] for row in part], minlength=NUM_AGE_GROUPS
            ).tolist()
            if part:
                path = shard_path(output, split, job.index)
                write_shard(path, part, job.schema)
                result.shards.append(path.relative_to(output).as_posix())
        result.dropped = dict(dropped)
        result.notes = {k: int(v) for k, v in notes.items()}
        result.seconds = time.perf_counter() - start
        _write_atomic(marker_path(output, job.index), json.dumps(asdict(result), indent=1).encode())
        return result


def shard_path(output: Path, split: str, index: int) -> Path:
    return output / "data" / f"{split}-{index:05d}.parquet"


def marker_path(output: Path, index: int) -> Path:
    return output / STATE_DIR / f"chunk-{index:05d}.json"


def write_shard(path: Path, rows: list[dict[str, Any]], schema: Any) -> None:
    """Write rows as one Parquet file with the given schema, via a hidden temporary file + rename."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    for column in schema:
        values = [row.get(column.name) for row in rows]
        if pa.types.is_fixed_size_list(column.type):
            flat = np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in values])
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), column.type.list_size))
        else:
            arrays.append(pa.array(values, type=column.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


_WORKER: ChunkWorker | None = None
_WORKER_ERROR: BaseException | None = None


def _init_worker(size: int, relabel: str | None, estimator: str | None) -> None:
    """Process-pool initializer: one analyzer per process, one thread each (processes are the parallelism).

    A failure here (missing model file, bad estimator) is kept and raised by the first job: an
    initializer that raises makes multiprocessing respawn the worker forever instead of failing.
    """
    global _WORKER, _WORKER_ERROR
    try:
        import cv2
        import torch

        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        _WORKER = ChunkWorker(size, relabel, estimator)
    except Exception as error:
        _WORKER_ERROR = error


def _run_job(job: ChunkJob) -> ChunkResult:
    if _WORKER_ERROR is not None:
        raise _WORKER_ERROR
    assert _WORKER is not None, "worker process was not initialised"
    return _WORKER.run(job)


# -- the driver ------------------------------------------------------------------------------------------


def list_inputs(config: PrepareConfig, state: Path) -> tuple[SourceListing, list[tuple[SourceItem, str]]]:
    """Parse the source, hash every photo and drop exact duplicates (same bytes: the first name wins)."""
    listing = parse_source(config.source, Path(config.input), config.labels, config.min_confidence)
    digests = _hash_items(listing.items, state, config.progress)
    unique: list[tuple[SourceItem, str]] = []
    first: dict[str, str] = {}
    for item, digest in zip(listing.items, digests, strict=True):
        if digest in first:
            listing.skip("duplicate", f"{item.rel} (same bytes as {first[digest]})")
            continue
        first[digest] = item.rel
        unique.append((item, digest))
    if config.max_items is not None:
        unique = unique[: config.max_items]
    return listing, unique


def _items_digest(items: list[tuple[SourceItem, str]]) -> str:
    sha = hashlib.sha1()
    for item, digest in items:
        sha.update(f"{item.rel}\t{digest}\t{item.age:.4f}\t{item.age_group}\n".encode())
    return sha.hexdigest()


def _check_manifest(output: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """A resumed run must use the settings of the finished chunks; --overwrite starts again instead."""
    state = output / STATE_DIR
    path = state / MANIFEST
    if overwrite:
        shutil.rmtree(output / "data", ignore_errors=True)
        for marker in state.glob("chunk-*.json"):
            marker.unlink()
        for name in (REPORT, "README.md"):
            (output / name).unlink(missing_ok=True)
    elif path.is_file():
        previous = json.loads(path.read_text())
        changed = sorted(k for k in set(previous) | set(manifest) if previous.get(k) != manifest.get(k))
        if changed:
            raise DatasetError(
                f"{output} was prepared with different settings ({', '.join(changed)} changed); "
                "use a new --output folder or pass --overwrite"
            )
    elif (output / "data").is_dir() and any((output / "data").iterdir()):
        raise DatasetError(f"{output}/data exists but was not written by prepare_data; pick another --output folder")
    _write_atomic(path, json.dumps(manifest, indent=1).encode())


def prepare(config: PrepareConfig) -> dict[str, Any]:
    """Run (or resume) a preparation; returns the report that is also written to prepare_report.json."""
    if config.source not in SOURCES:
        raise DatasetError(f"unknown source {config.source!r}; choose one of {', '.join(SOURCES)}")
    if config.size < 32:
        raise DatasetError(f"--size must be at least 32 pixels, got {config.size}")
    if not 0.0 <= config.test_fraction < 1.0:
        raise DatasetError(f"--test-fraction must be in [0, 1), got {config.test_fraction}")
    if config.chunk_size < 1 or config.workers < 1:
        raise DatasetError("--chunk-size and --workers must be at least 1")
    if not config.output:
        raise DatasetError("--output is required")
    started = time.perf_counter()
    output = Path(config.output)
    state = output / STATE_DIR  # created by the first write, so a bad --input leaves no empty folder behind

    listing, items = list_inputs(config, state)
    listed_seconds = time.perf_counter() - started
    if not items:
        raise DatasetError(f"no usable photos in {config.input} (skipped: {dict(listing.skipped) or 'none found'})")
    for reason, count in sorted(listing.skipped.items()):
        shown = ", ".join(listing.examples.get(reason, [])[:3])
        warnings.warn(f"{config.source}: skipped {count} input(s) as {reason} (e.g. {shown})", stacklevel=2)
    _check_manifest(output, config.manifest(_items_digest(items)), config.overwrite)
    if config.age_estimator is None and any(not item.age_known for item, _ in items):
        from ganime_age.editing import DEFAULT_ESTIMATOR_DIR

        config.age_estimator = str(DEFAULT_ESTIMATOR_DIR)

    schema = arrow_schema(bool(config.relabel))
    jobs = [
        ChunkJob(index, items[start : start + config.chunk_size], str(output), config.source, config.size,
                 config.test_fraction, schema)
        for index, start in enumerate(range(0, len(items), config.chunk_size))
    ]  # fmt: skip
    done = {job.index for job in jobs if marker_path(output, job.index).is_file()}
    pending = [job for job in jobs if job.index not in done]
    if config.max_chunks is not None:
        pending = pending[: config.max_chunks]
    if done:
        log.info("resuming: %d of %d chunks already done", len(done), len(jobs))
    processed = _run_jobs(config, jobs, done, pending)
    seconds = time.perf_counter() - started

    report = _build_report(config, listing, items, jobs, done, processed, seconds, listed_seconds)
    report["timing_history"] = _timing_history(output / REPORT, report["timing"] if processed else None)
    _write_atomic(output / REPORT, json.dumps(report, indent=2).encode())
    if report["complete"]:
        write_card(output, config, report)
        if config.push_to_hub:
            push_to_hub(output, config.push_to_hub, private=config.private)
    return report


def _timing_history(path: Path, current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Timings of every run that processed chunks, so a resume (or a no-op rerun) keeps the earlier ones."""
    history: list[dict[str, Any]] = []
    if path.is_file():
        try:
            history = list(json.loads(path.read_text()).get("timing_history", []))
        except (OSError, json.JSONDecodeError):
            history = []
    if current is not None:
        history.append({**current, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return history


def _run_jobs(
    config: PrepareConfig, jobs: list[ChunkJob], done: set[int], pending: list[ChunkJob]
) -> list[ChunkResult]:
    total = sum(len(job.items) for job in jobs)
    initial = sum(len(job.items) for job in jobs if job.index in done)
    bar = None
    if config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=initial, unit="face", desc=f"prepare {config.source}", dynamic_ncols=True)
        if done:
            bar.write(f"resuming: skipping {len(done)} finished chunk(s) of {len(jobs)}")
    results: list[ChunkResult] = []
    try:
        if not pending:
            pass
        elif config.workers == 1:
            worker = ChunkWorker(config.size, config.relabel, config.age_estimator)
            for job in pending:
                results.append(worker.run(job, on_item=bar.update if bar is not None else None))
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn")  # no forked mediapipe/torch state
            processes = min(config.workers, len(pending))
            with context.Pool(
                processes, initializer=_init_worker, initargs=(config.size, config.relabel, config.age_estimator)
            ) as pool:
                for result in pool.imap_unordered(_run_job, pending):
                    results.append(result)
                    if bar is not None:
                        bar.update(result.items)
    finally:
        if bar is not None:
            bar.close()
    return results


def _build_report(
    config: PrepareConfig,
    listing: SourceListing,
    items: list[tuple[SourceItem, str]],
    jobs: list[ChunkJob],
    done_before: set[int],
    processed: list[ChunkResult],
    seconds: float,
    listed_seconds: float,
) -> dict[str, Any]:
    """Sum every finished chunk's marker (from this run and earlier ones) into one account."""
    output = Path(config.output)
    rows: Counter[str] = Counter()
    groups = {split: np.zeros(NUM_AGE_GROUPS, np.int64) for split in ("train", "test")}
    skipped: Counter[str] = Counter(listing.skipped)
    examples = {k: list(v) for k, v in listing.examples.items()}
    notes: Counter[str] = Counter({k: v for k, v in listing.notes.items() if v})
    chunk_seconds = 0.0
    finished = 0
    for job in jobs:
        path = marker_path(output, job.index)
        if not path.is_file():
            continue
        marker = json.loads(path.read_text())
        finished += 1
        chunk_seconds += marker["seconds"]
        rows.update(marker["rows"])
        for split, counts in marker["age_groups"].items():
            groups[split] += np.asarray(counts, np.int64)
        skipped.update(marker["dropped"])
        notes.update(marker["notes"])
        for reason, names in marker["examples"].items():
            bucket = examples.setdefault(reason, [])
            bucket.extend(names[: max(0, 10 - len(bucket))])
    this_run_items = sum(r.items for r in processed)
    this_run_seconds = sum(r.seconds for r in processed)
    complete = finished == len(jobs)
    return {
        "format": FORMAT_VERSION,
        "source": config.source,
        "input": str(Path(config.input).resolve()),
        "labels": config.labels,
        "size": config.size,
        "test_fraction": config.test_fraction,
        "min_confidence": config.min_confidence if config.source == "ffhq-aging" else None,
        "relabel": config.relabel,
        "complete": complete,
        "inputs": {
            # duplicates are both in listing.items and counted as skipped
            "candidates": len(listing.items) + sum(listing.skipped.values()) - listing.skipped["duplicate"],
            "unique_photos": len(items),
        },
        "rows": {"train": int(rows["train"]), "test": int(rows["test"]), "total": int(rows["train"] + rows["test"])},
        "skipped": dict(sorted(skipped.items())),
        "skipped_total": int(sum(skipped.values())),
        "examples": dict(sorted(examples.items())),
        "notes": dict(sorted((k, int(v)) for k, v in notes.items() if v)),
        "age_groups": {
            split: {label: int(n) for label, n in zip(AGE_GROUP_LABELS, counts, strict=True)}
            for split, counts in groups.items()
        },
        "chunks": {
            "chunk_size": config.chunk_size,
            "total": len(jobs),
            "finished": finished,
            "skipped_as_done": len(done_before),
            "processed_this_run": len(processed),
        },
        "timing": {
            "seconds_this_run": round(seconds, 2),
            "listing_seconds": round(listed_seconds, 2),
            "faces_this_run": this_run_items,
            "workers": config.workers,
            "faces_per_second": round(this_run_items / max(seconds - listed_seconds, 1e-9), 2) if processed else None,
            "faces_per_second_per_worker": round(this_run_items / this_run_seconds, 2) if this_run_seconds else None,
            "chunk_seconds_all_runs": round(chunk_seconds, 2),
        },
        "ganime_age_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# -- dataset card and Hub ----------------------------------------------------------------------------------


def write_card(output: Path, config: PrepareConfig, report: dict[str, Any]) -> None:
    """README.md: Hub front matter (licence, splits -> shard globs) and a human summary with every count."""
    import yaml

    spec = SOURCES[config.source]
    splits = [split for split in ("train", "test") if report["rows"][split]]
    total = report["rows"]["total"]
    size_category = next(
        (name for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")) if total < limit),
        "100K<n<1M",
    )
    front: dict[str, Any] = {
        "license": config.license or spec.license,
        "pretty_name": f"ganime-age prepared faces: {spec.title} at {config.size}px",
        "task_categories": ["image-to-image"],
        "tags": ["faces", "age", "facial-action-units", "ganime-age"],
        "size_categories": [size_category],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in splits],
            }
        ],
    }
    if front["license"] == "other":
        front["license_name"] = f"{config.source}-research-only"
    groups = "\n".join(
        f"| {label} | {report['age_groups']['train'][label]} | {report['age_groups']['test'][label]} |"
        for label in AGE_GROUP_LABELS
    )
    skipped = "\n".join(f"| {reason} | {count} |" for reason, count in report["skipped"].items()) or "| none | 0 |"
    relabel = (
        f"\nAges were re-estimated by the age estimator `{config.relabel}` on the aligned faces; the source "
        "label is kept in `age_source_label`.\n"
        if config.relabel
        else ""
    )
    body = f"""# {front["pretty_name"]}

Aligned face crops prepared by `python training/prepare_data.py --source {config.source} --size {config.size}` (ganime-age
{__version__}) from **{spec.title}**, for training the ganime-age ageing and expression models.

## Licence

{spec.license_note}

## Contents

{report["rows"]["train"]} training and {report["rows"]["test"]} test faces ({total} in all) out of
{report["inputs"]["candidates"]} input photos. Every photo went through the inference pipeline: YuNet face
detection (the largest, most central face when there are several), MediaPipe landmarks and blendshapes,
17 Action Unit intensities estimated from the blendshapes, head pose, and a similarity alignment to the
ganime-age template at {config.size}x{config.size} px. Images are WebP quality {WEBP_QUALITY}. The split is
by the SHA-1 of each source photo ({config.test_fraction:.0%} test), so it is stable across re-runs.
{relabel}
| column | meaning |
|---|---|
| image | aligned face, {config.size}x{config.size} RGB |
| id | SHA-1 of the source photo's bytes |
| source | `{config.source}` |
| age | age in years (float; 0..100){" - the centre of the labelled age group" if config.source == "ffhq-aging" else ""} |
| age_group | FFHQ-Aging group index 0..9 ({", ".join(AGE_GROUP_LABELS)}) |
| aus | 17 AU intensities 0..5 ({", ".join(("AU01", "AU02", "...", "AU45"))}, GANimation order) |
| pose | yaw, pitch, roll in degrees |
| landmarks | 478 MediaPipe landmarks as x, y pairs in aligned-image pixels (rounded to 1/64 px) |
| identity_hint | source file name stem |

### Faces per age group

| group | train | test |
|---|---|---|
{groups}

### Inputs without a row

| reason | count |
|---|---|
{skipped}

Details, examples and timing: `prepare_report.json`.
"""
    text = "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + body
    _write_atomic(output / "README.md", text.encode())


def push_to_hub(output: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload the folder as a Hub dataset repo: it already has the layout `datasets.push_to_hub` writes
    (data/{split}-*.parquet with Image metadata, a card with configs), and this keeps our card and report."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(output),
        repo_id=repo_id,
        repo_type="dataset",
        ignore_patterns=[f"{STATE_DIR}/*", "**/.*", ".*"],
        commit_message="Upload prepared faces (training/prepare_data.py)",
    )
    return str(getattr(info, "commit_url", info))


# -- command line ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python training/prepare_data.py``."""
    parser = argparse.ArgumentParser(
        prog="training/prepare_data.py", description="Detect, analyse and align faces into a prepared Parquet dataset."
    )
    parser.add_argument("--source", choices=sorted(SOURCES), required=True, help="dataset layout")
    parser.add_argument("--input", required=True, help="folder holding the photos")
    parser.add_argument("--output", required=True, help="prepared dataset folder (created; resumable)")
    parser.add_argument("--labels", help="label CSV (ffhq-aging: ffhq_aging_labels.csv; csv: file_name,age)")
    parser.add_argument("--size", type=int, default=128, help="aligned face size in pixels (128 or 256)")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="share of photos in the test split")
    parser.add_argument("--min-confidence", type=float, default=0.6, help="ffhq-aging: minimum age_group_confidence")
    parser.add_argument("--chunk-size", type=int, default=1000, help="photos per resumable chunk")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one face analyzer each)")
    parser.add_argument("--relabel", metavar="ESTIMATOR", help="AgeEstimator folder or Hub id: relabel ages")
    parser.add_argument("--max-items", type=int, help="only the first N photos (quick trials)")
    parser.add_argument("--max-chunks", type=int, help="stop after N more chunks (debugging; rerun to resume)")
    parser.add_argument("--overwrite", action="store_true", help="discard earlier results in --output")
    parser.add_argument("--license", help="licence id for the card (default: the source's)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="upload the finished dataset to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    names = {f for f in PrepareConfig.__dataclass_fields__}
    return PrepareConfig(**{k: v for k, v in vars(args).items() if k in names})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(args)


def run_cli(args: argparse.Namespace) -> int:
    """Run from parsed arguments; user mistakes become one clear line on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = prepare(config_from_args(args))
    except GanimeAgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished chunks are kept; run the same command again to resume", file=sys.stderr)
        return 130
    chunks = report["chunks"]
    status = "done" if report["complete"] else f"stopped after {chunks['finished']} of {chunks['total']} chunks"
    print(
        f"{status}: {report['rows']['train']} train + {report['rows']['test']} test faces in {args.output}; "
        f"skipped {report['skipped_total']} {report['skipped'] or ''}; "
        f"{chunks['skipped_as_done']} chunk(s) were already done"
        + (f"; {report['timing']['faces_per_second']} faces/s" if report["timing"]["faces_per_second"] else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
