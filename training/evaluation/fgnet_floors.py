"""Identity floors: how often dlib verifies real photos of one FG-NET person across a span of years.

An edit across decades need not keep a face's identity better than the years themselves do: the floor of a span
(real photos of the same person, one at each end of it) is what an age edit's identity is judged against, not an
unedited copy of the photo. Shared by ``evaluate.py ages`` and ``evaluate.py gates``, in a module of its own because
ages imports gates (so gates cannot import ages); it imports neither.

FG-NET photos are scans of family photos: each is cut to a square of :data:`FGNET_CROP` times its 68 landmarks'
extent around them (within the photo), and a face the judge finds is the person's only where its box holds the
landmarks' centre. Where the judge finds no face, the descriptor is taken on the landmarks' box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from ganime_age.errors import GanimeAgeError
from training.evaluate import spread_indices
from training.evaluation.metrics import finite_mean, markdown_table, percent

FGNET_CROP = 2.0  # an FG-NET photo is cut to this many times its landmarks' extent
# identity floors: real photos of one FG-NET person, a photo in each span (years)
FLOOR_SPANS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((3, 8), (20, 45)),
    ((3, 8), (13, 19)),
    ((9, 12), (20, 45)),
    ((13, 19), (20, 45)),
    ((20, 30), (40, 69)),
)
FLOOR_AGES = (min(young[0] for young, _ in FLOOR_SPANS), max(old[1] for _, old in FLOOR_SPANS))  # 3-69

Box = tuple[int, int, int, int]  # x, y, w, h


class FaceReading(Protocol):
    """A judge's reading of a photo's face: the floors need only where it is."""

    @property
    def box(self) -> Box: ...


ReadingT = TypeVar("ReadingT", bound=FaceReading, covariant=True)


class Identity(Protocol):
    """A face descriptor (:class:`training.evaluation.judges.DlibIdentity` is one)."""

    def embed(self, rgb: np.ndarray, box: Box, /) -> np.ndarray: ...


class FaceJudge(Protocol[ReadingT]):
    """What the floors need of a judge (:class:`training.evaluation.gates.Judge` is one)."""

    identity: Identity

    def read(self, rgb: np.ndarray) -> ReadingT | None: ...


def span_label(span: tuple[tuple[int, int], tuple[int, int]]) -> str:
    (a, b), (c, d) = span
    return f"{a}-{b} vs {c}-{d}"


# -- photos ---------------------------------------------------------------------------------------------------
@dataclass
class Input:
    """A photo to edit: a UTKFace file, or an FG-NET photo cut around its landmarks."""

    path: Path
    age: float  # the true age (the file name's)
    person: str = ""
    points: np.ndarray | None = None  # FG-NET's 68 landmarks: cut the photo around them

    def image(self) -> np.ndarray:
        from ganime_age.faces import load_image

        rgb = load_image(self.path)
        if self.points is None:
            return rgb
        return fgnet_crop(rgb, self.points)[0]

    @property
    def centre(self) -> np.ndarray | None:
        """The landmarks' centre in the image :meth:`image` gives (None: any face found is the one)."""
        if self.points is None:
            return None
        return self.points.mean(axis=0) - fgnet_crop_origin(self.points)


def fgnet_crop_origin(points: np.ndarray) -> np.ndarray:
    """The top-left pixel of :func:`fgnet_crop`'s cut in the photo."""
    low, high = points.min(axis=0), points.max(axis=0)
    half = 0.5 * FGNET_CROP * float((high - low).max())
    origin = np.floor((low + high) / 2.0 - half)
    return np.maximum(origin, 0.0)


def fgnet_crop(rgb: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo cut to a square of FGNET_CROP times the landmarks' extent around them (within the photo), and the
    landmarks in the cut's pixels."""
    low, high = points.min(axis=0), points.max(axis=0)
    half = 0.5 * FGNET_CROP * float((high - low).max())
    left, top = (int(v) for v in fgnet_crop_origin(points))
    right = min(int(np.ceil((low[0] + high[0]) / 2.0 + half)), rgb.shape[1])
    bottom = min(int(np.ceil((low[1] + high[1]) / 2.0 + half)), rgb.shape[0])
    return np.ascontiguousarray(rgb[top:bottom, left:right]), points - np.array([left, top], np.float32)


def points_box(points: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the 68 landmarks (jaw, brows): about what dlib's detector boxes."""
    low, high = points.min(axis=0), points.max(axis=0)
    return round(float(low[0])), round(float(low[1])), round(float(high[0] - low[0])), round(float(high[1] - low[1]))


def read_at(judge: FaceJudge[ReadingT], rgb: np.ndarray, centre: np.ndarray | None) -> ReadingT | None:
    """The judge's reading of the photo's first face, where that face's box holds `centre` (if given)."""
    reading = judge.read(rgb)
    if reading is None or centre is None:
        return reading
    x, y, w, h = reading.box
    return reading if x <= centre[0] <= x + w and y <= centre[1] <= y + h else None


# -- the floors -----------------------------------------------------------------------------------------------
@dataclass
class FgnetFace:
    """A real FG-NET photo as the judges see it."""

    photo: Any  # training.data.fgnet.FgnetPhoto
    points: np.ndarray
    descriptor: np.ndarray | None
    found: bool  # the editor found the person's face (else the descriptor is on the landmarks' box)

    def input(self) -> Input:
        return Input(self.photo.path, float(self.photo.age), self.photo.person, self.points)


def describe_fgnet(judge: FaceJudge[FaceReading], photos: list[Any]) -> list[FgnetFace]:
    """dlib's descriptor of each photo's person (on the editor's face box, else on the landmarks' box)."""
    from ganime_age.faces import load_image

    faces = []
    for photo in photos:
        points = photo.points()
        inp = Input(photo.path, float(photo.age), photo.person, points)
        rgb, local = fgnet_crop(load_image(photo.path), points)
        reading = read_at(judge, rgb, inp.centre)
        box = reading.box if reading is not None else points_box(local)
        try:
            descriptor = judge.identity.embed(rgb, box)
        except GanimeAgeError:
            descriptor = None
        faces.append(FgnetFace(photo, points, descriptor, reading is not None))
    return faces


def identity_floors(faces: list[FgnetFace], verified: Callable[[np.ndarray, np.ndarray], bool]) -> list[dict]:
    """Verification of real pairs of one person across each span of FLOOR_SPANS."""
    by_person: dict[str, list[FgnetFace]] = {}
    for face in faces:
        if face.descriptor is not None:
            by_person.setdefault(face.photo.person, []).append(face)
    floors = []
    for span in FLOOR_SPANS:
        (a, b), (c, d) = span
        pairs, per_person = [], []
        for person_faces in by_person.values():
            young = [f for f in person_faces if a <= f.photo.age <= b]
            old = [f for f in person_faces if c <= f.photo.age <= d]
            mine = [float(verified(y.descriptor, o.descriptor)) for y in young for o in old if y is not o]
            pairs += mine
            if mine:
                per_person.append(float(np.mean(mine)))
        floors.append(
            {
                "span": span_label(span),
                "pairs": len(pairs),
                "people": len(per_person),
                "verified": finite_mean(pairs),
                "verified_per_person": finite_mean(per_person),
            }
        )
    return floors


def measure_floors(
    judge: FaceJudge[FaceReading],
    fgnet_root: Path,
    verified: Callable[[np.ndarray, np.ndarray], bool],
    max_people: int | None = None,
) -> list[dict]:
    """The floors of FLOOR_SPANS on every photo within their ages of `max_people` FG-NET people (spread over the
    sorted ids; all if None), verified as the caller verifies its edits."""
    from training.data.fgnet import parse_fgnet

    photos = parse_fgnet(Path(fgnet_root)).photos
    people = sorted({p.person for p in photos})
    chosen = {people[i] for i in spread_indices(len(people), max_people)}
    kept = [p for p in photos if p.person in chosen and FLOOR_AGES[0] <= p.age <= FLOOR_AGES[1]]
    return identity_floors(describe_fgnet(judge, kept), verified)


def floors_table(floors: list[dict], last_header: str, last_cell: Callable[[dict], str]) -> str:
    """The floors as a Markdown table: span, pairs, people, verified (all pairs and per person), and a last column
    of the caller's (`last_cell` of each floor)."""
    return markdown_table(
        ["span", "pairs", "people", "verified", "per person", last_header],
        [
            [
                f["span"],
                f["pairs"],
                f["people"],
                percent(f["verified"]),
                percent(f["verified_per_person"]),
                last_cell(f),
            ]
            for f in floors
        ],
    )
