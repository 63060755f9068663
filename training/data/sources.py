"""Source parsers: turn a raw face dataset (UTKFace, FFHQ-Aging, CACD, folder + CSV) into labelled items.

Each parser only reads names and label files; decoding, face analysis and writing happen in
``training/prepare_data.py``. Anything a parser cannot use is counted by reason in
``SourceListing.skipped`` (with a few example names), never silently dropped, so the preparation
report can account for every input file.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ganime_age.conditions import AU_MAX, AU_NAMES, age_to_group, group_center, group_from_label
from ganime_age.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
MAX_EXAMPLES = 10

# UTKFace: AGE_GENDER_RACE_DATETIME.jpg.chip.jpg (aligned & cropped) or ...DATETIME.jpg (in the wild).
UTKFACE_NAME = re.compile(r"^(?P<age>\d{1,3})_(?P<gender>[01])_(?P<race>[0-4])_(?P<date>\d+)\.jpg(\.chip\.jpg)?$")
# CACD2000: AGE_First_Last_NNNN.jpg (names may hold several underscores, e.g. 53_Robert_De_Niro_0003.jpg).
CACD_NAME = re.compile(r"^(?P<age>\d{1,3})_(?P<name>[^\s]+?)_(?P<number>\d{4})\.jpe?g$", re.IGNORECASE)

CFEE_PERSON_PREFIX = "cfee-"  # identity hints read cfee-<person>-<category>: photos of one person pair up


@dataclass(frozen=True)
class SourceItem:
    """One labelled input photo."""

    path: Path  # absolute path of the photo
    rel: str  # path relative to the input folder (POSIX): the deterministic sort key
    age: float  # years; the group centre for sources that only label groups; NaN when age_known is False
    age_group: int  # FFHQ-Aging group index (-1 until an unknown age is estimated)
    identity_hint: str  # the file name stem: same-person grouping for sources that encode it
    aus: tuple[float, ...] | None = None  # FACS-coded AU intensities (17, 0..5) where the source has them
    age_known: bool = True  # False: prepare_data estimates the age and marks the row as estimated
    split_key: str | None = None  # photos with one key share a split (a person id); None: split per photo


@dataclass
class SourceListing:
    """What a parser found: usable items plus every skipped file, counted by reason."""

    items: list[SourceItem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, name: str) -> None:
        self.skipped[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < MAX_EXAMPLES:
            bucket.append(name)


@dataclass(frozen=True)
class SourceSpec:
    """A supported source: its parser and the facts its dataset card needs."""

    name: str
    title: str
    parse: Callable[[Path, Path | None, float], SourceListing]
    needs_labels: bool
    license: str  # Hub licence id
    license_note: str


def _stem(path: Path) -> str:
    """The file name without its image suffix (UTKFace's .jpg.chip.jpg counts as one)."""
    name = path.name
    if name.lower().endswith(".jpg.chip.jpg"):
        return name[: -len(".jpg.chip.jpg")]
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else name


def _image_files(root: Path) -> list[Path]:
    """Every image file under `root` (recursively, hidden folders excluded), in deterministic order."""
    if not root.is_dir():
        raise DatasetError(f"input folder not found: {root}")
    files = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _item(root: Path, path: Path, age: float, group: int | None = None) -> SourceItem:
    return SourceItem(
        path=Path(os.path.abspath(path)),
        rel=path.relative_to(root).as_posix(),
        age=float(age),
        age_group=age_to_group(age) if group is None else group,
        identity_hint=_stem(path),
    )


def _parse_by_name(root: Path, pattern: re.Pattern[str]) -> SourceListing:
    listing = SourceListing()
    for path in _image_files(root):
        match = pattern.match(path.name)
        if match is None:
            listing.skip("malformed_name", path.relative_to(root).as_posix())
            continue
        listing.items.append(_item(root, path, int(match.group("age"))))
    return listing


def parse_utkface(root: Path, labels: Path | None = None, min_confidence: float = 0.0) -> SourceListing:
    """UTKFace: the age is the first field of AGE_GENDER_RACE_DATETIME.jpg.chip.jpg."""
    return _parse_by_name(root, UTKFACE_NAME)


def parse_cacd(root: Path, labels: Path | None = None, min_confidence: float = 0.0) -> SourceListing:
    """CACD2000: the age is the first field of AGE_First_Last_NNNN.jpg."""
    return _parse_by_name(root, CACD_NAME)


def _read_csv(path: Path | None, required: tuple[str, ...], source: str) -> list[dict[str, str]]:
    if path is None:
        raise DatasetError(f"the {source} source needs a label file: pass --labels CSV")
    if not Path(path).is_file():
        raise DatasetError(f"label file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in required if c not in columns]
        if missing:
            raise DatasetError(f"{path} lacks column(s) {', '.join(missing)}; it has {', '.join(columns) or 'none'}")
        return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def parse_ffhq_aging(root: Path, labels: Path | None, min_confidence: float = 0.6) -> SourceListing:
    """FFHQ-Aging: images NNNNN.png (flat or in thousand-folders) + ffhq_aging_labels.csv.

    Only age groups are labelled; the age in years is the group centre. Rows whose
    age_group_confidence is below `min_confidence` are dropped (counted as low_confidence).
    """
    rows = _read_csv(labels, ("image_number", "age_group", "age_group_confidence"), "ffhq-aging")
    by_number: dict[int, Path] = {}
    for path in _image_files(root):
        stem = _stem(path)
        if stem.isdigit():
            by_number.setdefault(int(stem), path)
    listing = SourceListing()
    used: set[int] = set()
    for row in rows:
        name = row["image_number"]
        try:
            number = int(float(name))
            group = group_from_label(row["age_group"])
            confidence = float(row["age_group_confidence"])
        except ValueError:
            listing.skip("bad_label", f"image_number={name}")
            continue
        if number in used:
            listing.skip("duplicate_label", f"image_number={name}")
            continue
        used.add(number)
        if number not in by_number:
            listing.skip("missing_image", f"image_number={name}")
            continue
        if confidence < min_confidence:
            listing.skip("low_confidence", by_number[number].relative_to(root).as_posix())
            continue
        listing.items.append(_item(root, by_number[number], group_center(group), group))
    listing.notes["unlabelled_images"] = len(set(by_number) - used)
    listing.items.sort(key=lambda item: item.rel)
    return listing


def parse_csv(root: Path, labels: Path | None, min_confidence: float = 0.0) -> SourceListing:
    """Any folder of photos + a CSV with columns file_name (relative to the folder) and age (years)."""
    rows = _read_csv(labels, ("file_name", "age"), "csv")
    listing = SourceListing()
    seen: set[str] = set()
    base = Path(os.path.abspath(root))  # not resolve(): symlinked photos keep their place in the folder
    for row in rows:
        name = row["file_name"]
        path = Path(os.path.abspath(base / name))
        try:
            age = float(row["age"])
        except ValueError:
            listing.skip("bad_label", name)
            continue
        if not (0.0 <= age <= 150.0):
            listing.skip("bad_label", name)
            continue
        if name in seen:
            listing.skip("duplicate_label", name)
            continue
        seen.add(name)
        if not path.is_file() or not path.is_relative_to(base):
            listing.skip("missing_image", name)
            continue
        listing.items.append(SourceItem(path, path.relative_to(base).as_posix(), age, age_to_group(age), _stem(path)))
    listing.items.sort(key=lambda item: item.rel)
    return listing


# CFEE's FACS intensity letters (a = trace ... e = maximum) on the project's 0..5 scale.
FACS_LETTER_INTENSITY = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0}
# The coder marked these AUs present without a letter: the middle of the scale (c), the most common letter.
FACS_UNSCORED_INTENSITY = 3.0
# CFEE codes AU43 (eyes closed) but not AU45 (blink); both close the eyelids, which is what AU45 conditions.
CFEE_AU_ALIASES = {"AU43": "AU45"}
FACS_SIDED = re.compile(r"([LR])([a-e])")


def facs_intensity(code: str) -> float:
    """One FACS intensity code -> 0..5 for a bilateral AU.

    ``a``..``e`` -> 1..5; ``x`` (present, intensity not scored) -> 3; sided codes such as ``LcRb``
    (left c, right b) -> the mean of the two sides, a side that is not named counting 0 (``Lb``: a
    unilateral b reads 1), because the project's AUs are one intensity for both sides of the face.
    """
    code = code.strip()
    if code in FACS_LETTER_INTENSITY:
        return FACS_LETTER_INTENSITY[code]
    if code == "x":
        return FACS_UNSCORED_INTENSITY
    sides = FACS_SIDED.findall(code)
    if (
        not sides
        or "".join(side + letter for side, letter in sides) != code
        or len({s for s, _ in sides}) != len(sides)
    ):
        raise DatasetError(f"unknown FACS intensity code {code!r}")
    return sum(FACS_LETTER_INTENSITY[letter] for _, letter in sides) / 2.0


def read_cfee_codes(path: Path) -> dict[tuple[str, str], tuple[float, ...]]:
    """aus.csv (identity, emotion_cat, au, code) -> (identity, category) -> the 17 AUs on 0..5.

    AUs outside the project's 17 are ignored; AUs of the 17 that a category does not list are 0.
    """
    codes: dict[tuple[str, str], list[float]] = {}
    for row in _read_csv(path, ("identity", "emotion_cat", "au", "code"), "cfee"):
        name = CFEE_AU_ALIASES.get(f"AU{int(row['au']):02d}", f"AU{int(row['au']):02d}")
        vector = codes.setdefault((row["identity"], row["emotion_cat"]), [0.0] * len(AU_NAMES))
        if name in AU_NAMES:
            index = AU_NAMES.index(name)
            vector[index] = min(max(vector[index], facs_intensity(row["code"])), AU_MAX)
    return {key: tuple(vector) for key, vector in codes.items()}


def parse_cfee(root: Path, labels: Path | None = None, min_confidence: float = 0.0) -> SourceListing:
    """CFEE: images/NNNN.jpg + labels.csv (file_name, identity, emotion_cat) + aus.csv (FACS codes).

    Every photo gets its person's coded AUs for its category (Neutral: all 0). CFEE has no ages: items are
    marked ``age_known=False`` (prepare_data estimates them). The split key is the person, so one person's
    photos are all train or all test. `labels` defaults to ``root/labels.csv``; aus.csv is read beside it.
    """
    labels = Path(labels) if labels is not None else root / "labels.csv"
    codes = read_cfee_codes(labels.parent / "aus.csv")
    listing = SourceListing()
    base = Path(os.path.abspath(root))
    for row in _read_csv(labels, ("file_name", "identity", "emotion_cat"), "cfee"):
        name, identity, category = row["file_name"], row["identity"], row["emotion_cat"]
        path = Path(os.path.abspath(base / name))
        if not path.is_file() or not path.is_relative_to(base):
            listing.skip("missing_image", name)
            continue
        if category == "Neutral":
            aus = (0.0,) * len(AU_NAMES)
        elif (identity, category) in codes:
            aus = codes[(identity, category)]
        else:
            listing.skip("no_au_codes", name)
            continue
        listing.items.append(
            SourceItem(
                path=path,
                rel=path.relative_to(base).as_posix(),
                age=float("nan"),
                age_group=-1,
                identity_hint=f"{CFEE_PERSON_PREFIX}{identity}-{category.replace(' ', '_')}",
                aus=aus,
                age_known=False,
                split_key=f"{CFEE_PERSON_PREFIX}{identity}",
            )
        )
    listing.items.sort(key=lambda item: item.rel)
    return listing


def cfee_person(identity_hint: str) -> str | None:
    """The person of a CFEE photo's identity hint (``cfee-<person>-<category>``); None for other sources."""
    if not identity_hint.startswith(CFEE_PERSON_PREFIX) or identity_hint.count("-") < 2:
        return None
    return identity_hint.rsplit("-", 1)[0]


UTKFACE_LICENSE_NOTE = (
    "UTKFace is available for non-commercial research purposes only; the copyright of the photos "
    "belongs to their original owners. This prepared copy and any model trained on it inherit that restriction."
)

SOURCES: dict[str, SourceSpec] = {
    "utkface": SourceSpec("utkface", "UTKFace", parse_utkface, False, "other", UTKFACE_LICENSE_NOTE),
    "ffhq-aging": SourceSpec(
        "ffhq-aging",
        "FFHQ-Aging",
        parse_ffhq_aging,
        True,
        "cc-by-nc-sa-4.0",
        "FFHQ images are under their own Creative Commons licences (the FFHQ compilation is CC BY-NC-SA 4.0 by "
        "NVIDIA); the FFHQ-Aging labels are CC BY-NC-SA 4.0. Non-commercial use only.",
    ),
    "cacd": SourceSpec(
        "cacd",
        "CACD2000 (Cross-Age Celebrity Dataset)",
        parse_cacd,
        False,
        "other",
        "CACD2000 is released for research purposes only; the photos belong to their original owners.",
    ),
    "cfee": SourceSpec(
        "cfee",
        "CFEE (Compound Facial Expressions of Emotion)",
        parse_cfee,
        False,
        "other",
        "CFEE is a research dataset of the Ohio State University (Du, Tao & Martinez, PNAS 2014); no licence came "
        "with this copy: treat it as non-commercial research only. Its ages are estimated, not labelled.",
    ),
    "csv": SourceSpec(
        "csv",
        "a folder of photos with a file_name,age CSV",
        parse_csv,
        True,
        "other",
        "The licence of these photos is whatever their source grants; check it before sharing this dataset.",
    ),
}


def parse_source(source: str, root: Path, labels: Path | None = None, min_confidence: float = 0.6) -> SourceListing:
    """Parse `root` as `source` (one of SOURCES)."""
    if source not in SOURCES:
        raise DatasetError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return SOURCES[source].parse(Path(root), None if labels is None else Path(labels), min_confidence)
