"""Build the refiner's training data: the fitted engine's edits of real photos, beside the real photos they should match.

    python training/data/refiner.py --cfee ../shared/datasets/cfee --utkface ../shared/datasets/utkface \\
        --output data/refiner [--max-pairs N] [--max-people N] [--max-utkface N] [--no-progress]

The refiner (GANimation-age with ``refiner: true``, ``training/systems/refiner.py``) learns what to add to
the engine's edit, so its data is the engine's edits, made exactly as a user's edit is (``FaceEditor`` on the
photo file, at the photo's own resolution), then aligned to 128 px crops:

- **CFEE pairs** (training people only, prepare_data's person split): for every posed photo of a person who
  also has a Neutral photo, (a) the engine's edit of the Neutral photo to the posed photo's coded AUs (all 17
  given), whose ground truth is the posed photo, and (b) the engine's edit of the posed photo to all AUs 0,
  whose ground truth is the Neutral photo. Same person, same session, same light: the real photo is what the
  edit should have looked like.
- **UTKFace age edits** (training photos): the engine's edit of a photo to a random age in 5-80, without a
  ground truth (``has_target`` 0): for the critic's realism and the identity term.

Every crop is aligned by its own photo's detection (the edit is detected again, as a user's edited photo
would be). Work is cut into jobs (a few CFEE people, or a few hundred UTKFace photos) written as compressed
``.npz`` shards, each renamed into place when complete: an interrupted build resumes at the first missing
shard; a build with other options refuses the folder unless ``--overwrite``. The format is read by
``training.data.prepared.RefinerPairs``; ``manifest.json`` counts what is there and what was skipped, and why.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.conditions import AU_NAMES, NUM_AUS
from ganime_age.errors import DatasetError, GanimeAgeError
from training.data.prepared import REFINER_FORMAT_VERSION, REFINER_MANIFEST, REFINER_SHARDS
from training.data.sources import CFEE_PERSON_PREFIX, SourceItem, parse_source

log = logging.getLogger(__name__)

PLAN = "plan.json"  # the options a folder was built with: a resumed build must use the same
CFEE_TEST_FRACTION = 0.15  # prepare_data's / the gates' CFEE split: the gates' people never enter the refiner's data
UTKFACE_TEST_FRACTION = 0.1


class RefinerDataError(DatasetError):
    """The refiner's data cannot be built as asked (a missing source, a folder built with other options)."""


@dataclass
class RefinerDataConfig:
    """Options of one build (the CLI's flags)."""

    output: str
    cfee: str | None = None  # CFEE folder (images/, labels.csv, aus.csv); None: no pairs
    utkface: str | None = None  # UTKFace folder; None: no age edits
    max_pairs: int | None = None  # at most this many CFEE pairs (2 per posed photo), person by person
    max_people: int | None = None  # at most this many CFEE people (sorted by id)
    max_utkface: int | None = 3000  # UTKFace training photos edited (one random target age each); 0: none
    size: int = 128  # crop side in pixels
    people_per_shard: int = 6
    utkface_per_shard: int = 250
    min_age: float = 5.0  # UTKFace target ages are drawn uniformly from [min_age, max_age]
    max_age: float = 80.0
    seed: int = 0
    engine: str | None = None  # fitted engine folder or Hub id; None: the embedded one
    overwrite: bool = False
    progress: bool = True

    def plan(self) -> dict[str, Any]:
        """What decides the contents of the shards (not how the build is shown or resumed)."""
        keep = ("max_pairs", "max_people", "max_utkface", "size", "people_per_shard", "utkface_per_shard")
        plan: dict[str, Any] = {key: getattr(self, key) for key in keep}
        plan.update(
            version=REFINER_FORMAT_VERSION,
            cfee=bool(self.cfee),
            utkface=bool(self.utkface),
            ages=[self.min_age, self.max_age],
            seed=self.seed,
            engine=self.engine,
        )
        return plan


@dataclass
class PosedPhoto:
    path: Path
    category: str
    aus: np.ndarray  # (17,) the person's coded AUs for this category


@dataclass
class CfeePerson:
    person: str  # cfee-<identity>
    neutral: Path
    posed: list[PosedPhoto]


@dataclass
class Job:
    """One shard's worth of work: a few CFEE people, or a slice of UTKFace photos."""

    name: str  # the shard's file stem: cfee-00003 | utkface-00012
    people: list[CfeePerson] = field(default_factory=list)
    photos: list[SourceItem] = field(default_factory=list)

    @property
    def units(self) -> int:
        """Photos edited (for the progress bar)."""
        return sum(len(p.posed) for p in self.people) + len(self.photos)


# -- planning ---------------------------------------------------------------------------------------------


def person_split(person: str, test_fraction: float) -> str:
    """prepare_data's split of a CFEE person (split_for of the hash of its split key)."""
    from training.prepare_data import split_for

    return split_for(hashlib.sha1(person.encode()).hexdigest(), test_fraction)


def cfee_people(root: Path, max_people: int | None, max_pairs: int | None) -> tuple[list[CfeePerson], Counter[str]]:
    """CFEE's training people who have a Neutral photo, with their posed photos (capped as asked)."""
    if not (root / "labels.csv").is_file():
        raise RefinerDataError(f"CFEE folder not found or incomplete: {root} (expected images/, labels.csv, aus.csv)")
    listing = parse_source("cfee", root)
    skipped: Counter[str] = Counter({f"cfee_{k}": v for k, v in listing.skipped.items()})
    by_person: dict[str, list[SourceItem]] = {}
    for item in listing.items:
        by_person.setdefault(str(item.split_key), []).append(item)
    people: list[CfeePerson] = []
    pairs = 0
    for person in sorted(by_person, key=_person_order):
        items = by_person[person]
        if person_split(person, CFEE_TEST_FRACTION) != "train":
            skipped["cfee_test_person"] += 1
            continue
        neutral = [i for i in items if i.identity_hint.endswith("-Neutral")]
        if not neutral:
            skipped["cfee_no_neutral"] += 1
            continue
        posed = [
            PosedPhoto(i.path, i.identity_hint.rsplit("-", 1)[1].replace("_", " "), np.asarray(i.aus, np.float32))
            for i in items
            if not i.identity_hint.endswith("-Neutral")
        ]
        if max_pairs is not None:
            posed = posed[: max(0, (max_pairs - pairs) // 2)]
        if not posed:
            if max_pairs is not None and pairs >= max_pairs:
                break
            skipped["cfee_no_posed"] += 1
            continue
        pairs += 2 * len(posed)
        people.append(CfeePerson(person, neutral[0].path, posed))
        if max_people is not None and len(people) >= max_people:
            break
    return people, skipped


def _person_order(person: str) -> tuple[int, str]:
    """CFEE ids are numbers: sort 9 before 10."""
    identity = person.removeprefix(CFEE_PERSON_PREFIX)
    return (int(identity), "") if identity.isdigit() else (1 << 30, identity)


def utkface_photos(root: Path, limit: int, seed: int) -> tuple[list[SourceItem], Counter[str]]:
    """`limit` UTKFace training photos drawn reproducibly (prepare_data's content-hash split)."""
    from training.prepare_data import file_sha1, split_for

    if not root.is_dir():
        raise RefinerDataError(f"UTKFace folder not found: {root}")
    listing = parse_source("utkface", root)
    skipped: Counter[str] = Counter({f"utkface_{k}": v for k, v in listing.skipped.items()})
    order = np.random.default_rng(seed).permutation(len(listing.items))
    chosen: list[SourceItem] = []
    for index in order:
        if len(chosen) >= limit:
            break
        item = listing.items[int(index)]
        if split_for(file_sha1(item.path), UTKFACE_TEST_FRACTION) == "train":
            chosen.append(item)
    return sorted(chosen, key=lambda item: item.rel), skipped


def plan_jobs(config: RefinerDataConfig) -> tuple[list[Job], Counter[str]]:
    """The deterministic list of shards a build writes."""
    jobs: list[Job] = []
    skipped: Counter[str] = Counter()
    if config.cfee:
        people, why = cfee_people(Path(config.cfee), config.max_people, config.max_pairs)
        skipped.update(why)
        step = max(1, config.people_per_shard)
        for number, start in enumerate(range(0, len(people), step)):
            jobs.append(Job(f"cfee-{number:05d}", people=people[start : start + step]))
    if config.utkface and (config.max_utkface or 0) > 0:
        photos, why = utkface_photos(Path(config.utkface), int(config.max_utkface or 0), config.seed)
        skipped.update(why)
        step = max(1, config.utkface_per_shard)
        for number, start in enumerate(range(0, len(photos), step)):
            jobs.append(Job(f"utkface-{number:05d}", photos=photos[start : start + step]))
    return jobs, skipped


# -- one shard --------------------------------------------------------------------------------------------


class ShardWriter:
    """Collects one shard's crops: each real photo once (`photos`), each engine edit with its row of labels."""

    def __init__(self) -> None:
        self.photos: list[np.ndarray] = []
        self.photo_names: list[str] = []
        self.rows: dict[str, list[Any]] = {
            key: []
            for key in (
                "inputs",
                "source_index",
                "target_index",
                "target_aus",
                "target_age",
                "source_age",
                "person",
                "kind",
            )
        }

    def add_photo(self, crop: np.ndarray, name: str) -> int:
        self.photos.append(crop)
        self.photo_names.append(name)
        return len(self.photos) - 1

    def add_edit(
        self,
        crop: np.ndarray,
        *,
        source: int,
        target: int,
        aus: np.ndarray,
        target_age: float,
        source_age: float,
        person: str,
        kind: str,
    ) -> None:
        values = (crop, source, target, np.asarray(aus, np.float32), target_age, source_age, person, kind)
        for key, value in zip(self.rows, values, strict=True):
            self.rows[key].append(value)

    def save(self, path: Path, size: int) -> int:
        """Write the shard atomically (a temporary name, then a rename); returns its rows."""
        empty = np.zeros((0, size, size, 3), np.uint8)
        arrays = {
            "version": np.int32(REFINER_FORMAT_VERSION),
            "photos": np.stack(self.photos) if self.photos else empty,
            "photo_names": np.asarray(self.photo_names, dtype=str),
            "inputs": np.stack(self.rows["inputs"]) if self.rows["inputs"] else empty,
            "source_index": np.asarray(self.rows["source_index"], np.int32),
            "target_index": np.asarray(self.rows["target_index"], np.int32),
            "target_aus": np.asarray(self.rows["target_aus"], np.float32).reshape(-1, NUM_AUS),
            "target_age": np.asarray(self.rows["target_age"], np.float32),
            "source_age": np.asarray(self.rows["source_age"], np.float32),
            "person": np.asarray(self.rows["person"], dtype=str),
            "kind": np.asarray(self.rows["kind"], dtype=str),
        }
        arrays["has_target"] = (arrays["target_index"] >= 0).astype(np.uint8)
        partial = path.with_name(f".{path.stem}.partial.npz")
        np.savez_compressed(partial, **arrays)
        os.replace(partial, path)
        return len(self.rows["inputs"])


class EngineEdits:
    """The fitted engine through ``FaceEditor`` (as a user edits), plus the crops the refiner sees."""

    def __init__(self, engine: str | None, size: int) -> None:
        from ganime_age.editing import FaceEditor

        self.editor = FaceEditor.from_pretrained(engine, device="cpu")
        self.size = size

    def face(self, rgb: np.ndarray) -> tuple[int, np.ndarray]:
        """(index, 5 points) of the photo's main face (largest, most central); NoFaceError if none."""
        from training.prepare_data import pick_face

        chosen = pick_face(self.editor.analyze(rgb), rgb.shape[1], rgb.shape[0])
        return chosen.index, np.asarray(chosen.detection.points, np.float64)

    def crop(self, rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        from ganime_age.faces import align_face

        return align_face(rgb, points, self.size).image

    def edited_crop(self, edited: np.ndarray, fallback: np.ndarray) -> tuple[np.ndarray, bool]:
        """The edit aligned by its own detection (as the edited photo would be), else by the source's points."""
        from training.prepare_data import pick_face

        try:
            faces = self.editor.analyzer.analyze(edited, landmarks=False)
        except GanimeAgeError:
            return self.crop(edited, fallback), False
        chosen = pick_face(faces, edited.shape[1], edited.shape[0])
        return self.crop(edited, np.asarray(chosen.detection.points, np.float64)), True

    def edit(
        self, rgb: np.ndarray, face: int, *, age: float | None = None, aus: np.ndarray | None = None
    ) -> np.ndarray:
        named = None if aus is None else dict(zip(AU_NAMES, (float(v) for v in aus), strict=True))
        return np.asarray(self.editor.edit(rgb, age=age, aus=named, face=face))


def run_job(job: Job, config: RefinerDataConfig, engine: EngineEdits, tick: Any) -> dict[str, Any]:
    """Make one shard; returns its summary (rows per kind, skips per reason, seconds)."""
    from ganime_age.faces import load_image

    started = time.perf_counter()
    writer = ShardWriter()
    kinds: Counter[str] = Counter()
    skipped: Counter[str] = Counter()

    def analysed(path: Path) -> tuple[np.ndarray, int, np.ndarray, float] | None:
        try:
            rgb = load_image(path)
            index, points = engine.face(rgb)
            return rgb, index, points, float(engine.editor.estimate_age(rgb, face=index))
        except GanimeAgeError as error:
            skipped[f"no_face:{type(error).__name__}"] += 1
            return None

    def edited(rgb: np.ndarray, index: int, points: np.ndarray, **target: Any) -> np.ndarray | None:
        try:
            crop, detected = engine.edited_crop(engine.edit(rgb, index, **target), points)
        except GanimeAgeError as error:
            skipped[f"edit_failed:{type(error).__name__}"] += 1
            return None
        if not detected:
            skipped["edit_aligned_by_source_points"] += 1  # kept: counted, not dropped
        return crop

    for person in job.people:
        neutral = analysed(person.neutral)
        if neutral is None:
            skipped["person_without_neutral_face"] += 1
            tick(len(person.posed))
            continue
        n_rgb, n_index, n_points, n_age = neutral
        n_photo = writer.add_photo(engine.crop(n_rgb, n_points), _name(person.neutral))
        for posed in person.posed:
            tick(1)
            found = analysed(posed.path)
            if found is None:
                continue
            p_rgb, p_index, p_points, p_age = found
            p_photo = writer.add_photo(engine.crop(p_rgb, p_points), _name(posed.path))
            # forward: the Neutral photo to the posed AUs; reverse: the posed photo to all AUs 0
            for kind, (rgb, index, points, age), source, target, aus in (
                ("forward", (n_rgb, n_index, n_points, n_age), n_photo, p_photo, posed.aus),
                ("reverse", (p_rgb, p_index, p_points, p_age), p_photo, n_photo, np.zeros(NUM_AUS, np.float32)),
            ):
                crop = edited(rgb, index, points, aus=aus)
                if crop is not None:
                    writer.add_edit(
                        crop, source=source, target=target, aus=aus, target_age=age, source_age=age,
                        person=person.person, kind=kind,
                    )  # fmt: skip
                    kinds[kind] += 1
    for item in job.photos:
        tick(1)
        found = analysed(item.path)
        if found is None:
            continue
        rgb, index, points, age = found
        target_age = float(_target_age(item.rel, config))
        aus = np.asarray(engine.editor.analyze(rgb)[index].aus, np.float32)  # kept: an age-only edit
        crop = edited(rgb, index, points, age=target_age)
        if crop is None:
            continue
        photo = writer.add_photo(engine.crop(rgb, points), item.rel)
        writer.add_edit(
            crop, source=photo, target=-1, aus=aus, target_age=target_age, source_age=age,
            person=f"utkface-{item.rel}", kind="age",
        )  # fmt: skip
        kinds["age"] += 1
    rows = writer.save(shard_path(Path(config.output), job.name), config.size)
    return {
        "name": job.name,
        "rows": rows,
        "photos": len(writer.photos),
        "kinds": dict(kinds),
        "skipped": dict(skipped),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _target_age(rel: str, config: RefinerDataConfig) -> float:
    """A uniform age in [min_age, max_age], fixed by the photo's name and the seed (resumes draw the same)."""
    digest = hashlib.sha1(f"{config.seed}:{rel}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return round(config.min_age + unit * (config.max_age - config.min_age), 1)


def shard_path(output: Path, name: str) -> Path:
    return output / REFINER_SHARDS / f"{name}.npz"


def summary_path(output: Path, name: str) -> Path:
    return output / REFINER_SHARDS / f".{name}.json"


# -- the build ----------------------------------------------------------------------------------------------


def check_plan(config: RefinerDataConfig) -> None:
    """A folder holds one plan: resuming with other options would mix two datasets (refused, or --overwrite)."""
    output = Path(config.output)
    plan_file = output / PLAN
    if config.overwrite and output.exists():
        shutil.rmtree(output / REFINER_SHARDS, ignore_errors=True)
        for name in (PLAN, REFINER_MANIFEST):
            (output / name).unlink(missing_ok=True)
    if plan_file.is_file():
        stored = json.loads(plan_file.read_text(encoding="utf-8"))
        if stored != config.plan():
            changed = sorted(k for k in set(stored) | set(config.plan()) if stored.get(k) != config.plan().get(k))
            raise RefinerDataError(
                f"{output} was built with other options ({', '.join(changed)} differ); "
                "pass --overwrite to rebuild it, or choose another --output"
            )
    elif output.exists() and any(output.iterdir()) and not (output / REFINER_SHARDS).is_dir():
        raise RefinerDataError(f"{output} exists and is not a refiner dataset; choose another --output")
    (output / REFINER_SHARDS).mkdir(parents=True, exist_ok=True)
    plan_file.write_text(json.dumps(config.plan(), indent=1), encoding="utf-8")


def build(config: RefinerDataConfig) -> dict[str, Any]:
    """Build (or resume) the dataset; returns the manifest (also written to ``manifest.json``)."""
    if not config.cfee and not config.utkface:
        raise RefinerDataError("nothing to build: give --cfee and/or --utkface")
    if config.size < 16 or config.size % 4:
        raise RefinerDataError(f"--size must be a multiple of 4 and at least 16, got {config.size}")
    if not 0.0 <= config.min_age <= config.max_age <= 100.0:
        raise RefinerDataError("UTKFace target ages need 0 <= min_age <= max_age <= 100")
    started = time.perf_counter()
    jobs, planning_skips = plan_jobs(config)
    if not jobs:
        raise RefinerDataError("no photos to edit: no CFEE training person with a Neutral photo and no UTKFace photo")
    check_plan(config)
    output = Path(config.output)
    pending = [job for job in jobs if not shard_path(output, job.name).is_file()]
    if len(pending) < len(jobs):
        log.info("resuming: %d of %d shards already built", len(jobs) - len(pending), len(jobs))
    if pending:
        engine = EngineEdits(config.engine, config.size)
        with ProgressBar(sum(job.units for job in pending), config.progress) as tick:
            for job in pending:
                summary = run_job(job, config, engine, tick)
                summary_path(output, job.name).write_text(json.dumps(summary), encoding="utf-8")
    manifest = write_manifest(config, jobs, planning_skips, time.perf_counter() - started, built=len(pending))
    return manifest


def write_manifest(
    config: RefinerDataConfig, jobs: list[Job], planning_skips: Counter[str], seconds: float, built: int
) -> dict[str, Any]:
    output = Path(config.output)
    shards, kinds, skipped = [], Counter(), Counter(planning_skips)
    build_seconds = 0.0
    for job in jobs:
        summary_file = summary_path(output, job.name)
        summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else {}
        shards.append({"file": f"{REFINER_SHARDS}/{job.name}.npz", "rows": summary.get("rows")})
        kinds.update(summary.get("kinds", {}))
        skipped.update(summary.get("skipped", {}))
        build_seconds += float(summary.get("seconds", 0.0))
    people = {p.person for job in jobs for p in job.people}
    manifest = {
        "format_version": REFINER_FORMAT_VERSION,
        "size": config.size,
        "rows": int(sum(kinds.values())),
        "kinds": dict(sorted(kinds.items())),
        "cfee_people": len(people),
        "utkface_photos": sum(len(job.photos) for job in jobs),
        "shards": shards,
        "skipped": dict(sorted(skipped.items())),
        "edit_seconds": round(build_seconds, 1),  # all shards' build time, over every (resumed) invocation
        "this_run": {"shards_built": built, "seconds": round(seconds, 1)},
        "options": asdict(config) | {"overwrite": False, "progress": False},
        "sources": "CFEE training people (Neutral <-> posed pairs, coded AUs) and UTKFace training photos",
        "license_note": (
            "Made from CFEE (Ohio State University research dataset) and UTKFace (non-commercial research "
            "only): anything trained on it is for non-commercial research only."
        ),
    }
    partial = output / f".{REFINER_MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(partial, output / REFINER_MANIFEST)
    return manifest


class ProgressBar:
    """A tqdm bar over photos when asked for, else a no-op; yields its tick(n) function."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self) -> Any:
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="photo", desc="refiner data", dynamic_ncols=True)
            return self.bar.update
        return lambda n=1: None

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


# -- command line ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="training/data/refiner.py",
        description="Build the refiner's training pairs from the fitted engine's edits.",
    )
    parser.add_argument("--cfee", help="CFEE folder (images/, labels.csv, aus.csv)")
    parser.add_argument("--utkface", help="UTKFace folder")
    parser.add_argument("--output", required=True, help="dataset folder to write (resumed if it exists)")
    parser.add_argument("--max-pairs", type=int, default=None, help="at most N CFEE pairs (2 per posed photo)")
    parser.add_argument("--max-people", type=int, default=None, help="at most N CFEE people")
    parser.add_argument("--max-utkface", type=int, default=3000, help="UTKFace training photos to edit (0: none)")
    parser.add_argument("--size", type=int, default=128, help="crop side in pixels")
    parser.add_argument("--engine", default=None, help="fitted engine folder or Hub id (default: the embedded one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="rebuild a folder made with other options")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = RefinerDataConfig(**vars(args))
    try:
        manifest = build(config)
    except GanimeAgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    kinds = ", ".join(f"{v} {k}" for k, v in manifest["kinds"].items()) or "nothing"
    print(
        f"{manifest['rows']} edits ({kinds}) from {manifest['cfee_people']} CFEE people and "
        f"{manifest['utkface_photos']} UTKFace photos in {args.output}; skipped: {manifest['skipped'] or 'none'}; "
        f"{manifest['this_run']['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
