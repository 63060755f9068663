"""A photo being edited: decoded once, its faces analysed once, and kept for the next slider move.

A :class:`PhotoSession` is one analysed photo: its pixels, its faces left to right (detection, landmarks, AUs,
pose, aligned crop), each face's estimated age and the engine's per-face preparation, each made on first use.
:class:`SessionCache` opens sessions and keeps the recent ones, so that moving a slider re-runs only the engine's
render and the refiner. A request is checked once, here at the edge (:meth:`PhotoSession.plans`), and travels
as one :class:`FacePlan` per face.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ganime_age.conditions import aus_to_array
from ganime_age.errors import FaceIndexError, ModelFileNotFoundError, NoFaceError
from ganime_age.faces.landmarks import UNMEASURED
from ganime_age.validation import check_face

ImageInput = Any  # str | Path | bytes | PIL.Image.Image | np.ndarray; validated by faces.load_image
AgeReader = Callable[[np.ndarray, Any], float]  # (the photo, a FaceAnalysis of it) -> the face's estimated age
FacePreparer = Callable[
    [np.ndarray, Any, Sequence[np.ndarray]], Any
]  # (photo, a FaceAnalysis, the other faces' landmarks) -> EngineFace
UNKNOWN_AGE = 30.0  # stands in for both ages of an expression-only edit when no estimator is loaded (no age change)


@dataclass(frozen=True)
class FacePlan:
    """One face of a checked request: which face, and from what to what."""

    face: Any  # faces.FaceAnalysis
    source_age: float
    target_age: float
    source_aus: np.ndarray
    target_aus: np.ndarray
    age_known: bool = True  # False: an expression-only edit without an age estimator (both ages UNKNOWN_AGE)


@dataclass
class PhotoSession:
    """One analysed photo and what has been worked out about its faces so far."""

    rgb: np.ndarray
    faces: list[Any]  # list[faces.FaceAnalysis], left to right
    read_age: AgeReader | None
    prepare: FacePreparer
    ages: dict[int, float] = field(default_factory=dict)
    engine_faces: dict[int, Any] = field(default_factory=dict)
    heads: dict[int, Any] = field(default_factory=dict)

    def held_bytes(self) -> int:
        """The bytes of the arrays this photo holds: its pixels, and each face's engine preparation and 3-D head
        once made (a 12 MP photo's hair, beard and forehead changes and its person's weight at the photo's
        resolution are about 85 MB beside its 36 MB of pixels). The analysis is small beside them."""
        seen: set[int] = set()
        return _array_bytes(self.rgb, seen) + _array_bytes([self.engine_faces, self.heads], seen)

    def selected(self, face: int | None) -> list[Any]:
        """Every face (None) or face `face`, refused with the photo's face count where it has no such face."""
        face = check_face(face)
        if face is None:
            return self.faces
        if not 0 <= face < len(self.faces):
            raise FaceIndexError(
                f"face {face} asked for, but the photo has {len(self.faces)} face(s) "
                f"(indices 0..{len(self.faces) - 1}, left to right)"
            )
        return [self.faces[face]]

    def age(self, face: Any) -> float:
        """The face's estimated age (estimated once)."""
        if face.index not in self.ages:
            if self.read_age is None:
                raise ModelFileNotFoundError(
                    "no age estimator is loaded, so the face's current age is unknown and an age edit (which "
                    "moves a face from its age to the target) cannot be made; load an editor with one "
                    "(its editor.json's age_estimator, or age_estimator=...)"
                )
            self.ages[face.index] = self.read_age(self.rgb, face)
        return self.ages[face.index]

    def engine_face(self, face: Any) -> Any:
        """The engine's per-face preparation (mesh raster, detail bands, ...), made once per photo."""
        prepared = self.engine_faces.get(face.index)
        if prepared is None:
            if face.landmarks is None:
                raise NoFaceError(f"face {face.index}: {UNMEASURED}")
            others = [f.landmarks.landmarks for f in self.faces if f is not face and f.landmarks is not None]
            prepared = self.prepare(self.rgb, face, others)
            self.engine_faces[face.index] = prepared
        return prepared

    def turnable_head(self, face: Any) -> Any:
        """The face's head ready to turn in 3-D (:class:`~ganime_age.engine.turning.TurnableHead`), made once per
        photo: a reenacted video's frames share it."""
        head = self.heads.get(face.index)
        if head is None:
            from ganime_age.engine.turning import TurnableHead

            self.engine_face(face)  # the same refusal where the landmarks are missing
            head = TurnableHead(self.rgb, face.landmarks.landmarks)
            self.heads[face.index] = head
        return head

    def plans(self, age: float | None, aus: Any, face: int | None, source_age: float | None = None) -> list[FacePlan]:
        """The checked request (`age`, `aus` and `source_age` already validated) as one plan per face to edit:
        every face, or one; with every face, those whose landmarks could not be measured stay as they are.
        `source_age`: the faces' current age as the user knows it, instead of the estimator's reading."""
        faces = self.selected(face)
        if face is None:
            faces = [f for f in faces if f.landmarks is not None] or faces
        # an expression-only edit keeps the age, so it needs no estimate of it when no estimator is loaded
        known = age is not None or self.read_age is not None or source_age is not None
        plans = []
        for f in faces:
            current = source_age if source_age is not None else self.age(f) if known else UNKNOWN_AGE
            source_aus = np.asarray(f.aus, np.float32)
            target_age = age if age is not None else current
            plans.append(FacePlan(f, current, target_age, source_aus, aus_to_array(aus, base=source_aus), known))
        return plans


def _array_bytes(value: Any, seen: set[int]) -> int:
    """The bytes of the numpy arrays `value` holds, followed through dataclasses, dicts, lists, tuples and the
    package's own objects (never a torch module: a shared model's caches are not one photo's); each array, or the
    array a view is of, counted once (`seen`: the ids already counted)."""
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        base = value
        while isinstance(base.base, np.ndarray):
            base = base.base
        if base is value:
            return value.nbytes
        return _array_bytes(base, seen)
    if isinstance(value, dict):
        return sum(_array_bytes(item, seen) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(item, seen) for item in value)
    if dataclasses.is_dataclass(value) or type(value).__module__.startswith("ganime_age."):
        if isinstance(value, (type, torch.nn.Module)) or not hasattr(value, "__dict__"):
            return 0
        return sum(_array_bytes(item, seen) for item in vars(value).values())
    return 0


def _file_key(image: ImageInput) -> tuple[str, int, int] | None:
    """(real path, size, modification time) of a photo given as a path to a regular file, else None."""
    if not isinstance(image, (str, os.PathLike)):
        return None
    try:
        path = os.path.realpath(os.fspath(image))
        info = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None  # load_image says what is wrong with it
    return (path, info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None


class SessionCache:
    """Opens photo sessions and keeps the most recent ones (at most `size` photos and `megabytes` of pixels)."""

    def __init__(
        self,
        analyzer: Callable[[], Any],
        read_age: AgeReader | None,
        prepare: FacePreparer,
        *,
        size: int = 8,
        megabytes: float = 256.0,
    ) -> None:
        self._analyzer = analyzer
        self._read_age = read_age
        self._prepare = prepare
        self.size = size
        self.megabytes = megabytes
        self._sessions: OrderedDict[str, PhotoSession] = OrderedDict()
        self._files: dict[tuple[str, int, int], str] = {}  # (real path, size, mtime) -> the photo's key

    def open(self, image: ImageInput) -> PhotoSession:
        """The session of a photo: a cached one, or a new one (decoded and analysed now)."""
        from ganime_age.faces import load_image

        # a file seen before (same path, size and modification time: the Space's uploads never change) is
        # neither decoded nor hashed again on a slider move: a 12 MP JPEG costs ~0.1 s to decode
        file_key = _file_key(image)
        if file_key is not None and self._files.get(file_key) in self._sessions:
            key = self._files[file_key]
            self._sessions.move_to_end(key)
            return self._sessions[key]
        rgb = load_image(image)
        # sha1 straight from the array's buffer: rgb.tobytes() copied the whole photo on every slider move
        digest = hashlib.sha1(rgb)  # load_image returns a C-contiguous array
        digest.update(str(rgb.shape).encode())
        key = digest.hexdigest()
        if file_key is not None:
            self._files[file_key] = key
            while len(self._files) > 4 * max(self.size, 1):
                self._files.pop(next(iter(self._files)))
        session = self._sessions.get(key)
        if session is not None:
            self._sessions.move_to_end(key)
            return session
        session = PhotoSession(rgb, self._analyzer().analyze(rgb), self._read_age, self._prepare)
        self._sessions[key] = session
        self._trim()
        return session

    def clear(self) -> None:
        self._sessions.clear()
        self._files.clear()

    def __len__(self) -> int:
        return len(self._sessions)

    def held_bytes(self) -> int:
        """The memory the cached photos hold: their pixels and what has been worked out about their faces."""
        return sum(s.held_bytes() for s in self._sessions.values())

    def _trim(self) -> None:
        """Drop the least recently used photos beyond the limits (the newest always stays: the edit in progress
        needs it)."""
        budget = self.megabytes * 1e6
        held = {key: session.held_bytes() for key, session in self._sessions.items()}
        total = sum(held.values())
        while len(self._sessions) > 1 and (len(self._sessions) > self.size or total > budget):
            key, _ = self._sessions.popitem(last=False)
            total -= held[key]


def stack_plans(plans: Sequence[FacePlan]) -> dict[str, list[Any]]:
    """The plans as the engine's parallel arguments (source and target ages and AUs, in face order)."""
    return {
        "source_ages": [p.source_age for p in plans],
        "target_ages": [p.target_age for p in plans],
        "source_aus": [p.source_aus for p in plans],
        "target_aus": [p.target_aus for p in plans],
    }
