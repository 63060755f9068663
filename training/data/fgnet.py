"""FG-NET: the same people photographed from infancy to adulthood, with 68 landmarks, and its held-out split.

``images/PPPaNN.JPG`` (some ``.jpg``, a few ``PPPaNNa.JPG`` / ``PPPaNNb.JPG`` where a person has two photos at
one age) is person PPP at age NN; ``points/pppann.pts`` holds that photo's 68 landmarks (dlib / iBUG order) as
text: ``version: 1``, ``n_points: 68``, ``{``, 68 lines ``x y``, ``}``.

The split is by person, never by photo: :func:`fgnet_split` puts a fixed ~30% of people in "test" by a hash of
the person's split key (``fgnet-PPP``), the rule ``prepare_data`` applies to any source that names people
(:func:`training.prepare_data.split_for` on the SHA-1 of the key). It depends on nothing but the person's id, so
a person keeps their side when people are added to or taken from the copy; anything fitted on FG-NET (a growth
model of the face's shape) must fit on the "train" people only, and ``evaluate.py ages`` judges on the "test"
people.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganime_age.errors import DatasetError

FGNET_NAME = re.compile(r"^(?P<person>\d{3})A(?P<age>\d{2})(?P<copy>[a-z]?)\.jpe?g$", re.IGNORECASE)
FGNET_TEST_FRACTION = 0.3
FGNET_POINTS = 68


@dataclass(frozen=True)
class FgnetPhoto:
    path: Path
    person: str  # "001"
    age: int  # years, from the file name
    points_path: Path | None  # None where the copy has no .pts for it

    @property
    def split_key(self) -> str:
        return person_key(self.person)

    def points(self) -> np.ndarray:
        """(68, 2) float32 landmarks in the photo's pixels."""
        if self.points_path is None:
            raise DatasetError(f"FG-NET photo {self.path.name} has no landmarks file")
        return read_points(self.points_path)


@dataclass
class FgnetListing:
    photos: list[FgnetPhoto] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # file names that are not PPPaNN.JPG

    @property
    def people(self) -> list[str]:
        return sorted({p.person for p in self.photos})


def person_key(person: str) -> str:
    """What decides a person's split (as ``cfee-<identity>`` does for CFEE)."""
    return f"fgnet-{person}"


def fgnet_split(person: str, test_fraction: float = FGNET_TEST_FRACTION) -> str:
    """'test' or 'train' for an FG-NET person id ("001"), fixed by a hash of the id alone."""
    from training.prepare_data import split_for

    return split_for(hashlib.sha1(person_key(person).encode()).hexdigest(), test_fraction)


def read_points(path: Path) -> np.ndarray:
    """The 68 (x, y) landmarks of an FG-NET ``.pts`` file, float32."""
    text = Path(path).read_text(encoding="ascii", errors="replace")
    inside = text[text.find("{") + 1 : text.rfind("}")] if "{" in text and "}" in text else ""
    try:
        values = np.array([float(v) for v in inside.split()], np.float32)
    except ValueError as error:
        raise DatasetError(f"{path}: the landmarks are not numbers") from error
    if values.size != 2 * FGNET_POINTS:
        raise DatasetError(f"{path}: expected {FGNET_POINTS} points, found {values.size / 2:g}")
    return values.reshape(FGNET_POINTS, 2)


def parse_fgnet(root: Path) -> FgnetListing:
    """Every ``images/PPPaNN.JPG`` of an FG-NET folder with its person, age and landmarks file, sorted by name."""
    root = Path(root)
    images = root / "images"
    if not images.is_dir():
        raise DatasetError(f"FG-NET images folder not found: {images}")
    points = {p.stem.lower(): p for p in (root / "points").glob("*.pts")} if (root / "points").is_dir() else {}
    listing = FgnetListing()
    for path in sorted(images.iterdir(), key=lambda p: p.name.lower()):
        if not path.is_file():
            continue
        match = FGNET_NAME.match(path.name)
        if match is None:
            listing.skipped.append(path.name)
            continue
        stem = Path(path.name).stem.lower()
        listing.photos.append(FgnetPhoto(path, match.group("person"), int(match.group("age")), points.get(stem)))
    if not listing.photos:
        raise DatasetError(f"no FG-NET photos (PPPaNN.JPG) in {images}")
    return listing
