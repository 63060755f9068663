"""A person's own photos across ages, which edits of their face take their features from (:mod:`..engine.own_photos`).

``person = editor.person([("me_at_6.jpg", 6), ("me_at_14.jpg", None)])`` reads each photo once (its face, drawn
into the engine's template as the bank's faces are, and its age: as given, or estimated where None) and keeps
nothing else of it but its landmarks' shape; ``editor.edit(photo, age=8, person=person)`` then takes the person's
own faces near age 8 in the bank's place, and moves part of the way to their own shape at 8. A :class:`Person` is
saved without pickle: its faces as a small bank of age exemplars (``model.safetensors`` and ``config.json``,
:mod:`ganime_age.hub`'s conventions, checksums included), their shapes (``shapes.safetensors``) and where their
glasses are (``glasses.safetensors``; each file's sha256 in ``person.json``) and ``person.json`` (each photo's name,
age, whether the age was given, how frontal it is, how much its glasses cover; the notes).

A photo with no usable face is skipped with a note (:attr:`Person.notes`, and a warning), never refused: a
family's scans are what they are. One that looks like someone else is kept with a warning: face descriptors
verify a child against an adult rarely (FG-NET: 16% of real 3-8s against their 20-45s, ``shared/README.md``), so
each photo is compared only with the person's photos within IDENTITY_SPAN years of its age, and only where a
face recogniser is at hand (the ``mobilefacenet`` asset, or `identity=` a callable of your own). One plainly
someone else's (like none of two or more of the person's photos within PLAIN_SPAN years of its age) is left out
with a note and a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age import __version__
from ganime_age.engine.exemplars import AgeExemplars, AgeExemplarsConfig, turn_share
from ganime_age.engine.own_glasses import glasses_cover
from ganime_age.engine.own_photos import draw_face, neutral_shape
from ganime_age.errors import ConfigError, InvalidArgumentError, ModelFileNotFoundError, NoFaceError, WeightsError
from ganime_age.face_model import canonical_face, head_similarity
from ganime_age.faces.topology import NUM_LANDMARKS
from ganime_age.hub import check_written_version, file_sha256, read_safetensors_header
from ganime_age.validation import check_optional_age

PERSON_FILE = "person.json"
SHAPES_FILE = "shapes.safetensors"  # the own faces' landmarks (:func:`.own_photos.neutral_shape`)
GLASSES_FILE = "glasses.safetensors"  # where each own face's glasses are (:func:`.own_glasses.glasses_view`)
MAX_PERSON_BYTES = 1_000_000  # person.json is a few kB; a larger one is not ours (and is not read whole)
MAX_PHOTOS = 200  # photos a person is made of at most (each ~10 kB in the bank)
IDENTITY_SPAN = 6.0  # years: a photo is compared only with the person's photos this near its age
# MobileFaceNet (CASIA-WebFace) cosine similarity of aligned crops below which two faces read as different people,
# each photo against its best match among the person's photos within IDENTITY_SPAN years. On FG-NET's 37 people
# with an adult and a child photo (each person's 446 photos, 465 photos of the next three people as strangers):
# at 0.2 it called 0.9% of own photos someone else and caught 36% of strangers; at 0.3 (a note, never a refusal)
# 1.8% and 60%; at 0.35, 2.9% and 72%, but two photos of FG-NET 029 at 4 and 10 (similarity 0.32) were each
# called someone else
IDENTITY_FLOOR = 0.3
# a photo whose best similarity to at least two of the person's photos within PLAIN_SPAN years of its age is under
# PLAIN_FLOOR is plainly someone else's, and left out. FG-NET: none of 470 own photos with another within 2 years
# is under 0.15 (4 under 0.2); 29% of strangers (the next person's photos) are
PLAIN_SPAN, PLAIN_FLOOR = 2.0, 0.15
Identity = Callable[[np.ndarray, Any], np.ndarray]  # (photo, its FaceAnalysis) -> an embedding (cosine-compared)


@dataclass(frozen=True)
class OwnPhoto:
    """One photo a person was made of: what it was called, the face's age, whether that age was given (else
    estimated), how frontal the face is (1 frontal .. 0 turned past use) and how much of its eyes' surround
    glasses cover (:func:`~ganime_age.engine.own_glasses.glasses_cover`; 0 for a person saved before it was read)."""

    name: str
    age: float
    age_given: bool
    frontal: float
    glasses: float = 0.0


@dataclass
class Person:
    """A person's own faces across ages (a small bank, :class:`~ganime_age.engine.exemplars.AgeExemplars`), the
    photos they came from, and what was noticed making them (skipped photos, a photo unlike the others)."""

    faces: AgeExemplars
    photos: list[OwnPhoto]
    notes: list[str] = field(default_factory=list)
    shapes: np.ndarray | None = None  # (N, 478, 3) float32 each face's shape; None: a person saved before them
    # (N, R, R) uint8 where each face's glasses are in the template (255: surely); None: a person saved before them
    glasses_maps: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.photos) != int(self.faces.config.count):
            raise ConfigError(
                f"a person of {len(self.photos)} photos needs as many faces, not {self.faces.config.count}"
            )
        if self.shapes is not None:
            self.shapes = np.asarray(self.shapes, np.float32)
            if self.shapes.shape != (len(self.photos), NUM_LANDMARKS, 3) or not np.isfinite(self.shapes).all():
                raise ConfigError(
                    f"a person of {len(self.photos)} photos needs ({len(self.photos)}, 478, 3) finite shapes"
                )
        if self.glasses_maps is not None:
            self.glasses_maps = np.asarray(self.glasses_maps)
            size = int(self.faces.config.template_size)
            if self.glasses_maps.shape != (len(self.photos), size, size) or self.glasses_maps.dtype != np.uint8:
                raise ConfigError(
                    f"a person of {len(self.photos)} photos needs ({len(self.photos)}, {size}, {size}) "
                    "uint8 glasses maps"
                )

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def ages(self) -> np.ndarray:
        """(N,) the age of each face, years."""
        return np.array([p.age for p in self.photos], np.float64)

    @property
    def frontal(self) -> np.ndarray:
        return np.array([p.frontal for p in self.photos], np.float64)

    @property
    def glasses(self) -> np.ndarray:
        return np.array([p.glasses for p in self.photos], np.float64)

    @property
    def key(self) -> str:
        """What a prepared face keeps this person's match under: the faces and ages themselves (a person saved
        and loaded again is the same person)."""
        digest = hashlib.sha1(self.faces.encoded.numpy().tobytes())
        digest.update(np.asarray([self.ages, self.frontal, self.glasses]).tobytes())
        for part in (self.shapes, self.glasses_maps):
            if part is not None:
                digest.update(part.tobytes())
        return digest.hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Person):
            return NotImplemented
        return (
            self.photos == other.photos
            and self.notes == other.notes
            and self.key == other.key
            and bool(torch_equal(self.faces.descriptors, other.faces.descriptors))
        )

    __hash__ = None  # type: ignore[assignment]

    def select(self, keep: Sequence[int]) -> Person:
        """This person with only the photos `keep` (indices): a smaller set without reading the photos again."""
        keep = [int(i) for i in keep]
        if not keep or any(not 0 <= i < len(self) for i in keep):
            raise InvalidArgumentError(f"select needs indices of the person's {len(self)} photos, not {keep}")
        import torch

        offsets = self.faces.offsets.numpy()
        pieces = [self.faces.encoded[int(offsets[i]) : int(offsets[i + 1])] for i in keep]
        config = AgeExemplarsConfig(**{**vars(self.faces.config), "count": len(keep)})
        config.encoded_bytes = int(sum(len(p) for p in pieces))
        faces = AgeExemplars(config)
        with torch.no_grad():
            faces.encoded.copy_(torch.cat(pieces))
            faces.offsets.copy_(torch.from_numpy(np.cumsum([0, *[len(p) for p in pieces]])))
            faces.ages.copy_(self.faces.ages[keep])
            faces.descriptors.copy_(self.faces.descriptors[keep])
        shapes = None if self.shapes is None else self.shapes[keep]
        maps = None if self.glasses_maps is None else self.glasses_maps[keep]
        return Person(faces, [self.photos[i] for i in keep], list(self.notes), shapes, maps)

    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        """Write the person as a folder: the faces' bank (``model.safetensors``, ``config.json``, a card) and
        ``person.json``. No pickle: a person's folder is as safe to load as a model's."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        self.faces.save_pretrained(
            target, model_card_kwargs={"note": "A person's own photos: private, for that person's edits only."}
        )
        record: dict[str, Any] = {
            "ganime_age_version": __version__,
            "photos": [vars(p) for p in self.photos],
            "notes": list(self.notes),
        }
        for name, key, part in ((SHAPES_FILE, "shapes", self.shapes), (GLASSES_FILE, "glasses", self.glasses_maps)):
            if part is not None:
                from safetensors.numpy import save_file

                save_file({key: np.ascontiguousarray(part)}, str(target / name))
                record[f"{key}_sha256"] = file_sha256(target / name)
        (target / PERSON_FILE).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        return target

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> Person:
        """A person written by :meth:`save_pretrained` (a local folder); what cannot be one is a WeightsError."""
        where = Path(folder)
        path = where / PERSON_FILE
        if not path.is_file():
            raise ModelFileNotFoundError(f"{where} holds no {PERSON_FILE}: it is not a saved person")
        if path.stat().st_size > MAX_PERSON_BYTES:
            raise WeightsError(f"{path} is larger than {MAX_PERSON_BYTES:,} bytes; it is not a person.json")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            photos = [_own_photo(item) for item in record["photos"]]
            notes = [str(n) for n in record.get("notes", [])]
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            raise WeightsError(f"{path} is not a readable person.json: {type(error).__name__}: {error}") from None
        check_written_version(record.get("ganime_age_version"), str(path))
        faces = AgeExemplars.from_pretrained(str(where))
        if len(photos) != int(faces.config.count):
            raise WeightsError(f"{path} names {len(photos)} photos, but its bank holds {faces.config.count} faces")
        if not np.allclose(faces.ages.numpy(), [p.age for p in photos]):
            raise WeightsError(f"{path}: the photos' ages are not its bank's")
        count, size = len(photos), int(faces.config.template_size)
        shapes = _read_part(where, SHAPES_FILE, "shapes", record.get("shapes_sha256"), "F32", [count, NUM_LANDMARKS, 3])
        maps = _read_part(where, GLASSES_FILE, "glasses", record.get("glasses_sha256"), "U8", [count, size, size])
        return cls(faces, photos, notes, shapes, maps)


def _read_part(folder: Path, name: str, key: str, digest: Any, dtype: str, shape: list[int]) -> np.ndarray | None:
    """One array a saved person holds in its file `name` (None for a person saved before it), checked against
    its sha256, its dtype and its shape (the person's photos) before a byte is read as numbers."""
    if digest is None:
        return None
    path = folder / name
    if not path.is_file():
        raise ModelFileNotFoundError(f"{folder} names {name} in its {PERSON_FILE} but holds none")
    table = read_safetensors_header(path)
    entry = table.get(key)
    if set(table) != {key} or entry["dtype"] != dtype or entry["shape"] != shape:
        raise WeightsError(f"{path} is not the {key} of {shape[0]} faces ({dtype}, {' x '.join(map(str, shape))})")
    if file_sha256(path) != digest:
        raise WeightsError(f"{path} does not match the sha256 in its {PERSON_FILE}")
    from safetensors.numpy import load_file

    part = load_file(str(path))[key]
    if not np.isfinite(part).all():
        raise WeightsError(f"{path} holds {key} that are not finite numbers")
    return part


def check_person(person: Any) -> Person | None:
    """None or a :class:`Person`; anything else is refused where it is given."""
    if person is not None and not isinstance(person, Person):
        raise InvalidArgumentError(f"person must be a Person (editor.person(...)), not {type(person).__name__}")
    return person


def personal(face: Any, person: Person | None) -> Any:
    """A prepared face matched to `person`'s own faces too (the face itself without a person)."""
    if person is None:
        return face
    from ganime_age.engine.own_photos import personal_face

    return personal_face(
        face, person.faces, person.frontal, person.key, person.shapes, person.glasses, person.glasses_maps
    )


def torch_equal(a: Any, b: Any) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


def _own_photo(item: Any) -> OwnPhoto:
    if not isinstance(item, dict):
        raise TypeError("each photo must be a JSON object")
    age = float(item["age"])
    frontal = float(item["frontal"])
    glasses = float(item.get("glasses", 0.0))
    if not (0.0 <= age <= 100.0 and 0.0 <= frontal <= 1.0 and 0.0 <= glasses <= 1.0):
        raise ValueError(f"age {age}, frontal {frontal} or glasses {glasses} out of range")
    return OwnPhoto(str(item["name"]), age, bool(item["age_given"]), frontal, glasses)


def _photo_name(photo: Any, index: int) -> str:
    return Path(os.fspath(photo)).name if isinstance(photo, (str, os.PathLike)) else f"photo {index}"


def check_photos(photos: Any) -> list[tuple[Any, float | None]]:
    """`photos` as (photo, age or None) pairs: a photo alone is one whose age is to be estimated."""
    if isinstance(photos, (str, bytes, os.PathLike)) or not isinstance(photos, Sequence) or not len(photos):
        raise InvalidArgumentError("a person is made of a non-empty list of (photo, age) pairs, age None to estimate")
    if len(photos) > MAX_PHOTOS:
        raise InvalidArgumentError(f"a person is made of at most {MAX_PHOTOS} photos, not {len(photos)}")
    pairs = []
    for n, item in enumerate(photos):
        photo, age = item if isinstance(item, tuple) else (item, None)
        if isinstance(item, tuple) and len(item) != 2:
            raise InvalidArgumentError(f"photos[{n}] must be a (photo, age) pair, not a tuple of {len(item)}")
        pairs.append((photo, check_optional_age(age, f"photos[{n}]'s age")))
    return pairs


def default_identity() -> Identity | None:
    """MobileFaceNet's embedding of a face's aligned crop, where its weights are at hand (research-only, never
    downloaded: the ``mobilefacenet`` asset); else None, and photos are not compared."""
    from ganime_age.assets import resolve_asset

    try:
        weights = resolve_asset("mobilefacenet", download=False)
    except ModelFileNotFoundError:
        return None
    import torch

    from ganime_age.models.mobilefacenet import FaceRecognizer

    recogniser = FaceRecognizer(weights)

    def embed(rgb: np.ndarray, face: Any) -> np.ndarray:
        crop = torch.from_numpy(np.asarray(face.aligned.image, np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0
        with torch.no_grad():
            return recogniser.embed(crop)[0].numpy()

    return embed


def unlike_photos(
    ages: np.ndarray,
    embeddings: list[np.ndarray | None],
    span: float = IDENTITY_SPAN,
    floor: float = IDENTITY_FLOOR,
    neighbours: int = 1,
) -> list[tuple[int, float]]:
    """(index, best similarity) of each photo that looks like none of the person's other photos within `span`
    years of its age (under `floor`; photos with fewer than `neighbours` that near are not judged)."""
    found = []
    for i, mine in enumerate(embeddings):
        if mine is None:
            continue
        near = [
            float(np.dot(mine, other) / max(np.linalg.norm(mine) * np.linalg.norm(other), 1e-12))
            for j, other in enumerate(embeddings)
            if j != i and other is not None and abs(ages[j] - ages[i]) <= span
        ]
        if len(near) >= neighbours and max(near) < floor:
            found.append((i, max(near)))
    return found


def build_person(
    editor: Any,
    photos: Any,
    identity: Identity | str | None = "auto",
    progress: Callable[[int, int], Any] | None = None,
) -> Person:
    """A :class:`Person` from (photo, age) pairs, read with `editor`'s analysis, estimators and engine template.

    Each photo's largest face is taken. A photo with no face (or no measurable landmarks), one whose age is None
    without an age estimator, or one turned too far to draw is skipped with a note; a photo unlike the person's
    others of about its age (`identity`: ``"auto"`` for :func:`default_identity`, a callable, or None for no
    check) is kept with a note, and one plainly someone else's is left out with a note. With no usable face at all,
    NoFaceError."""
    from ganime_age.faces import load_image

    pairs = check_photos(photos)
    if identity == "auto":
        identity = default_identity()
    elif identity is not None and not callable(identity):
        raise InvalidArgumentError(f"identity must be 'auto', None or a callable, not {identity!r}")
    engine = editor.engine
    template = engine.template
    parser = editor.analyzer.parser  # an own photo's glasses keep only their coarse part (own_photos.draw_face)
    notes: list[str] = []
    views, descriptors, kept, embeddings, shapes, maps = [], [], [], [], [], []
    for n, (photo, age) in enumerate(pairs):
        name = _photo_name(photo, n)
        if progress is not None:
            progress(n, len(pairs))
        rgb = load_image(photo)
        try:
            faces = [f for f in editor.analyzer.analyze(rgb) if f.landmarks is not None]
        except NoFaceError:
            faces = []
        if not faces:
            notes.append(f"{name}: skipped, no face whose landmarks could be measured")
            continue
        face = max(faces, key=lambda f: float(np.prod(np.ptp(f.landmarks.landmarks[:, :2], axis=0))))
        points = np.asarray(face.landmarks.landmarks, np.float64)
        frontal = turn_share(head_similarity(points, canonical_face()).rotation)
        if frontal <= 0.0:
            notes.append(f"{name}: skipped, the face is turned too far from the camera to draw")
            continue
        given = age is not None
        if age is None:
            if not editor.age_estimators:
                notes.append(f"{name}: skipped, no age given and no age estimator loaded to read it")
                continue
            age = float(np.clip(editor._read_age(rgb, face), 0.0, 100.0))
        female = editor.female_probability(rgb, face)
        female = engine.female_probability(rgb, points) if female is None else female
        view, descriptor, glasses = draw_face(template, rgb, points, female, parse=parser)
        cover = glasses_cover(template, glasses) if parser is not None else 0.0
        maps.append(np.round(255.0 * glasses).astype(np.uint8))
        views.append(view)
        descriptors.append(descriptor)
        shapes.append(neutral_shape(engine, points, face.aus))
        kept.append(OwnPhoto(name, round(float(age), 2), given, round(float(frontal), 4), round(cover, 4)))
        embeddings.append(identity(rgb, face) if identity is not None else None)
    if not kept:
        raise NoFaceError("none of the person's photos shows a usable face: " + "; ".join(notes))
    ages = np.array([p.age for p in kept], np.float64)
    if identity is None:
        notes.append("the photos were not compared with each other (no face recogniser at hand)")
    plain = dict(unlike_photos(ages, embeddings, PLAIN_SPAN, PLAIN_FLOOR, neighbours=2))
    for i, similarity in sorted(plain.items()):
        notes.append(
            f"{kept[i].name}: left out, it is plainly someone else (similarity {similarity:.2f} to the person's "
            f"photos within {PLAIN_SPAN:g} years of age {kept[i].age:g})"
        )
    chosen = [i for i in range(len(kept)) if i not in plain]
    kept, views, descriptors = [kept[i] for i in chosen], [views[i] for i in chosen], [descriptors[i] for i in chosen]
    shapes, embeddings, ages = [shapes[i] for i in chosen], [embeddings[i] for i in chosen], ages[chosen]
    maps = [maps[i] for i in chosen]
    if not kept:
        raise NoFaceError("none of the photos is left to make the person: " + "; ".join(notes))
    for i, similarity in unlike_photos(ages, embeddings):
        notes.append(
            f"{kept[i].name}: kept, but it looks like someone else (similarity {similarity:.2f} to the person's "
            f"photos within {IDENTITY_SPAN:g} years of age {kept[i].age:g}); leave it out if it is"
        )
    for note in notes:
        if "skipped" in note or "someone else" in note:  # "left out" notes say "someone else" too
            warnings.warn(note, UserWarning, stacklevel=3)
    c = engine.config
    config = AgeExemplarsConfig(
        template_size=c.template_size, template_scale=c.template_scale, template_centre=tuple(c.template_centre)
    )
    if editor.exemplars is not None:  # the shares and light an edit takes are the bank's
        config = AgeExemplarsConfig(**{**vars(editor.exemplars.config), "count": 0, "encoded_bytes": 0})
    bank = AgeExemplars.from_faces(views, ages.astype(np.float32), np.asarray(descriptors, np.float32), config)
    return Person(bank, kept, notes, np.stack(shapes), np.stack(maps))
