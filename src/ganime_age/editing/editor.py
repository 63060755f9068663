"""FaceEditor (also named GanimeAge): the one user-facing composition of face analysis, the edit engine, a refiner,
an age estimator and a reenactor.

The CLI and the Space call this class and nothing below it. An edit is the fitted engine's (geometry and
appearance at the photo's own resolution), optionally refined by a trained network whose *change* is added to the
engine's photo (:mod:`.refining`). The editor keeps its models and detectors loaded, and keeps each photo's
analysis in a session (:mod:`.session`), so that a slider move re-runs only the engine's render and the refiner.
It is put together from an editor manifest (:mod:`.manifest`), as a diffusers pipeline is from its
``model_index.json``, and saves itself the same way.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
from PIL import Image

from ganime_age.conditions import AU_NAMES, NUM_AGE_GROUPS, group_center
from ganime_age.editing.ages import reconciled_age
from ganime_age.editing.config import EditorConfig, autocast_dtype, pick_device
from ganime_age.editing.manifest import (
    DEFAULT_EDITOR_DIR,
    MODEL_ENV,
    PART_FOLDERS,
    PART_ROLES,
    EditorManifest,
    default_engine,
    parts_of,
    write_manifest,
)
from ganime_age.editing.person import Identity, Person, build_person, check_person, personal
from ganime_age.editing.reenactment import Reenactment
from ganime_age.editing.refining import ProgressCallback, Refining
from ganime_age.editing.session import FacePlan, ImageInput, PhotoSession, SessionCache, stack_plans
from ganime_age.errors import HubError, WeightsError
from ganime_age.hub import HubModel, load_pretrained
from ganime_age.validation import check_ages, check_aus, check_optional_age


def reconciled_female(engine_reading: float, classifier_reading: float) -> float:
    """How likely a face is a woman's from the engine's thumbnail reading and the sex classifier's: their mean. On
    held-out UTKFace faces the mean is surely wrong (0.7 or more for the other sex) less often than either reader
    alone or a mean weighted 0.7-0.9 towards the classifier (`training/tools/compare_sex_classifiers.py`, JOURNAL)."""
    return 0.5 * (engine_reading + classifier_reading)


@dataclass
class FaceEdit:
    index: int
    source: Image.Image  # aligned input crop
    output: Image.Image  # aligned edited crop
    attention: Image.Image | None  # "L" mask on the aligned crop, white = pixel kept from the input
    source_age: float | None
    source_aus: np.ndarray
    target_age: float
    target_aus: np.ndarray


@dataclass
class EditResult:
    image: Image.Image  # the whole photo, same size as the input, edited faces pasted back
    faces: list[FaceEdit] = field(default_factory=list)


class FaceEditor:
    """Edit the age and expression of every face (or one) in a photo, and reenact it; returns the whole photo."""

    def __init__(
        self,
        model: HubModel,
        *,
        engine: HubModel | None = None,
        exemplars: HubModel | None = None,
        age_estimator: HubModel | None = None,
        second_age_estimator: HubModel | None = None,
        sex_classifier: HubModel | None = None,
        reenactor: HubModel | None = None,
        analyzer: Any = None,
        config: EditorConfig | None = None,
    ) -> None:
        """`model`: a fitted engine, or a refiner that runs on top of `engine` (default: the embedded engine);
        which it is, its class's declared role says. With a `second_age_estimator`, a face's age is reconciled
        from both readings (:mod:`.ages`); with a `sex_classifier`, the engine's per-sex tables are weighed by
        its reading and the engine's own, averaged (:meth:`female_probability`); with `exemplars` (a bank of real
        faces of every age), an edit across the young years takes the features of the faces matched to the person."""
        self.config = config or EditorConfig()
        role = getattr(model, "role", "")
        if role not in ("engine", "refiner"):
            raise WeightsError(f"{type(model).__name__} ({role or 'no role'}) is neither an edit engine nor a refiner")
        engine, refiner = (model, None) if role == "engine" else (engine or default_engine(), model)
        if getattr(engine, "role", "") != "engine":
            raise WeightsError(f"{type(engine).__name__} is not a fitted edit engine")
        for estimator in (age_estimator, second_age_estimator):
            if estimator is not None and getattr(estimator, "role", "") != "age_estimator":
                raise WeightsError(f"{type(estimator).__name__} is not an age estimator")
        if second_age_estimator is not None and age_estimator is None:
            raise WeightsError("a second age estimator needs a first one (age_estimator=...)")
        if exemplars is not None and getattr(exemplars, "role", "") != "exemplars":
            raise WeightsError(f"{type(exemplars).__name__} is not a bank of age exemplars")
        if sex_classifier is not None and getattr(sex_classifier, "role", "") != "sex_classifier":
            raise WeightsError(f"{type(sex_classifier).__name__} is not a sex classifier")
        self.device = pick_device(self.config.device)
        autocast_dtype(self.config.precision, self.device)  # refused here, refiner or not: a setting that cannot run
        self.model = model
        self.engine = engine.eval()
        self.engine.start_split()  # made while a first photo is analysed
        self.exemplars = exemplars.eval() if exemplars is not None else None
        self.refiner = refiner
        self.refining = (
            Refining(refiner, self.device, self.config.precision, self.config.batch_size) if refiner else None
        )
        self.age_estimator = age_estimator.to(self.device).eval() if age_estimator is not None else None
        self.second_age_estimator = (
            second_age_estimator.to(self.device).eval() if second_age_estimator is not None else None
        )
        self.sex_classifier = sex_classifier.to(self.device).eval() if sex_classifier is not None else None
        self.reenactor = reenactor  # None: reenact() moves faces with the engine's landmark warp
        self.image_size = int((refiner or engine).config.image_size)
        self._analyzer = analyzer
        self.sessions = SessionCache(
            lambda: self.analyzer,
            self._read_age if self.age_estimator is not None else None,
            self._prepare_face,
            size=self.config.cache_size,
            megabytes=self.config.cache_megabytes,
        )
        self._reenactment: Reenactment | None = None

    # -- construction and saving ----------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str] | None = None,
        *,
        engine: str | os.PathLike[str] | None = None,
        exemplars: str | os.PathLike[str] | None = None,
        refiner: str | os.PathLike[str] | None = None,
        age_estimator: str | os.PathLike[str] | None = None,
        second_age_estimator: str | os.PathLike[str] | None = None,
        sex_classifier: str | os.PathLike[str] | None = None,
        reenactor: str | os.PathLike[str] | None = None,
        device: str | None = None,
        config: EditorConfig | None = None,
        **hub_kwargs: Any,
    ) -> FaceEditor:
        """An editor from a folder or Hub id: an editor (its ``editor.json`` names the parts) or one model (an
        engine, or a refiner run on the embedded engine); None means ``$GANIME_AGE_MODEL``, else the embedded
        default editor. A part given by keyword (a folder or Hub id) replaces the manifest's; an age estimator
        given alone is the editor's only one (its second is the manifest's only where both are given).
        `refiner` also takes a shipped refiner's name (``"agetransgan-mi"``, :mod:`.refiners`) and ``"engine"``
        for the engine alone; None keeps the manifest's (the embedded editor has none)."""
        from ganime_age.editing.refiners import resolve_refiner

        config = config or EditorConfig()
        config.device = device or config.device
        source = source if source is not None else os.environ.get(MODEL_ENV) or DEFAULT_EDITOR_DIR
        parts = parts_of(str(source), **hub_kwargs)
        if age_estimator is not None:
            parts.pop("second_age_estimator", None)
        if refiner is not None:
            parts.pop("refiner", None)
            refiner = resolve_refiner(refiner)
        given_parts = {
            "engine": engine,
            "exemplars": exemplars,
            "refiner": refiner,
            "age_estimator": age_estimator,
            "second_age_estimator": second_age_estimator,
            "sex_classifier": sex_classifier,
            "reenactor": reenactor,
        }
        parts.update({part: str(where) for part, where in given_parts.items() if where is not None})
        loaded = {part: load_pretrained(where, role=PART_ROLES[part], **hub_kwargs) for part, where in parts.items()}
        fitted = loaded.get("engine") or default_engine()
        model = loaded.get("refiner") or fitted
        return cls(
            model,
            engine=fitted,
            exemplars=loaded.get("exemplars"),
            age_estimator=loaded.get("age_estimator"),
            second_age_estimator=loaded.get("second_age_estimator"),
            sex_classifier=loaded.get("sex_classifier"),
            reenactor=loaded.get("reenactor"),
            config=config,
        )

    def with_refiner(self, refiner: str | os.PathLike[str] | HubModel | None, **hub_kwargs: Any) -> FaceEditor:
        """This editor with `refiner` on top of its engine instead of its own refiner: a shipped refiner's name,
        a folder, a Hub id or a loaded model; None or ``"engine"``: the engine alone. Everything else is shared,
        not copied: the engine, the estimators, the face analyser and the analysed photos (a photo analysed by one
        is not analysed again by the other), so two editors made so must not be used at the same time."""
        from ganime_age.editing.refiners import resolve_refiner

        model = refiner
        if model is not None and not isinstance(model, HubModel):
            where = resolve_refiner(model)
            model = load_pretrained(where, role="refiner", **hub_kwargs) if where is not None else None
        if model is not None and getattr(model, "role", "") != "refiner":
            raise WeightsError(f"{type(model).__name__} is not a refiner")
        self.analyzer  # noqa: B018 (made now, so that both editors share one)
        other = copy.copy(self)
        other.model = model if model is not None else self.engine
        other.refiner = model
        other.refining = (
            Refining(model, self.device, self.config.precision, self.config.batch_size) if model is not None else None
        )
        other._reenactment = None
        return other

    def parts(self) -> dict[str, HubModel]:
        """The models this editor is made of, by role."""
        found = {
            "engine": self.engine,
            "exemplars": self.exemplars,
            "refiner": self.refiner,
            "age_estimator": self.age_estimator,
            "second_age_estimator": self.second_age_estimator,
            "sex_classifier": self.sex_classifier,
            "reenactor": self.reenactor,
        }
        return {role: model for role, model in found.items() if model is not None}

    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        """Write the editor as a folder: each part in its subfolder (Hub layout) and an editor.json naming them."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        for role, model in self.parts().items():
            model.save_pretrained(target / PART_FOLDERS[role])
        write_manifest(target, EditorManifest(**{role: PART_FOLDERS[role] for role in self.parts()}))
        return target

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool | None = None) -> str:
        """Publish the editor folder to the Hugging Face Hub; returns the repository's URL. A failure to reach the
        Hub (no network, no permission) is a HubError, not a raw connection error."""
        from huggingface_hub import HfApi

        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            api = HfApi(token=token)
            try:
                url = api.create_repo(repo_id, private=private, exist_ok=True)
                api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="Upload a ganime-age editor")
            except Exception as error:  # offline, refused, unauthorised: all mean "not published"
                raise HubError(f"could not publish {repo_id!r} to the Hugging Face Hub: {error}") from None
        return str(url)

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from ganime_age.faces import FaceAnalyzer

            self._analyzer = FaceAnalyzer(
                self.config.detector, self.config.landmarker, size=self.image_size, max_faces=self.config.max_faces
            )
        return self._analyzer

    @property
    def age_estimators(self) -> list[HubModel]:
        """The editor's age estimators, first and second: a face's age is reconciled from all of them."""
        return [e for e in (self.age_estimator, self.second_age_estimator) if e is not None]

    def _read_age(self, rgb: np.ndarray, face: Any) -> float:
        """The face's age from every estimator's calibrated reading, each on the view it is made for (an aligned
        crop, or its own chip), weighted by how sure each is (:func:`.ages.reconciled_age`)."""
        return reconciled_age(self.age_estimators, rgb, face)

    def female_probability(self, rgb: np.ndarray, face: Any) -> float | None:
        """How likely the face is a woman's, as the engine's per-sex tables are weighed: the mean of the sex
        classifier's reading and the engine's own (None without a classifier: the engine's alone). Soft by
        construction: where the two disagree (a child, an unusual face) the tables blend towards the middle
        instead of following one sure misreading."""
        if self.sex_classifier is None:
            return None
        own = self.engine.female_probability(rgb, face.landmarks.landmarks)
        return reconciled_female(own, self.sex_classifier.read_face(rgb, face))

    def _prepare_face(self, rgb: np.ndarray, face: Any, others: Sequence[np.ndarray] = ()) -> Any:
        return self.engine.prepare_face(
            rgb,
            face.landmarks.landmarks,
            segment=self.analyzer.segmenter,
            parse=self.analyzer.parser,
            others=others,
            exemplars=self.exemplars,
            female=self.female_probability(rgb, face),
        )

    # -- a person's own photos -------------------------------------------------------------------------
    def person(
        self,
        photos: Sequence[tuple[ImageInput, float | None] | ImageInput],
        *,
        identity: Identity | str | None = "auto",
        progress: Callable[[int, int], Any] | None = None,
    ) -> Person:
        """A person's faces across ages from their own photos, each ``(photo, age)`` (age None: estimated), for
        ``edit(..., person=...)``, :meth:`age_strip` and :meth:`reenact`: an edit to an age near one of theirs
        takes their own features and shape there, not a stranger's. Photos without a usable face are skipped with
        a note (``person.notes``); one unlike the person's others of about its age is kept with a note, one plainly
        someone else's left out with a note (`identity`: ``"auto"``, a callable ``(photo, face) -> embedding`` or
        None). Save it with ``person.save_pretrained`` and load it with ``Person.from_pretrained``."""
        return build_person(self, photos, identity, progress)

    # -- reading faces ---------------------------------------------------------------------------------
    def session(self, image: ImageInput) -> PhotoSession:
        """The photo's session: decoded and analysed once, then kept for the next edits of the same photo."""
        return self.sessions.open(image)

    def analyze(self, image: ImageInput) -> list[Any]:
        """Every face in the photo (detection, landmarks, AUs, pose, aligned crop), left to right."""
        return self.session(image).faces

    @overload
    def estimate_age(self, image: ImageInput, face: None = None) -> list[float]: ...
    @overload
    def estimate_age(self, image: ImageInput, face: int) -> float: ...
    def estimate_age(self, image: ImageInput, face: int | None = None) -> list[float] | float:
        """Estimated age in years of every face, left to right (``face=None``), or of face ``face`` alone."""
        session = self.session(image)
        ages = [session.age(f) for f in session.selected(face)]
        return ages if face is None else ages[0]

    @overload
    def measure_aus(self, image: ImageInput, face: None = None) -> list[dict[str, float]]: ...
    @overload
    def measure_aus(self, image: ImageInput, face: int) -> dict[str, float]: ...
    def measure_aus(self, image: ImageInput, face: int | None = None) -> list[dict[str, float]] | dict[str, float]:
        """The 17 AU intensities (0-5) of every face, left to right (``face=None``), or of face ``face`` alone."""
        measured = [
            {name: float(value) for name, value in zip(AU_NAMES, selected.aus, strict=True)}
            for selected in self.session(image).selected(face)
        ]
        return measured if face is None else measured[0]

    # -- editing ---------------------------------------------------------------------------------------
    def refine_photo(
        self,
        photo: np.ndarray,
        points: Sequence[np.ndarray],
        target_age: Sequence[float],
        target_aus: Sequence[np.ndarray],
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """The refiner's change added to each face (its 5 alignment points) of the engine's photo; without a
        refiner, the photo as it is."""
        if self.refining is None:
            return photo
        return self.refining(photo, points, target_age, target_aus, progress)

    def _render(
        self,
        session: PhotoSession,
        plans: Sequence[FacePlan],
        progress: ProgressCallback | None = None,
        person: Person | None = None,
    ) -> tuple[np.ndarray, list[Any]]:
        """The engine's edit of the whole photo (then the refiner's), and per face what the engine changed; with a
        `person`, each face matched to their own photos (:mod:`.person`)."""
        prepared = [personal(session.engine_face(p.face), person) for p in plans]
        conditions = stack_plans(plans)
        photo, changes = self.engine.edit_photo(session.rgb, prepared, **conditions)
        # a face the engine left as it was (nothing new asked) is not refined either: do no harm
        edited = [i for i, change in enumerate(changes) if change is not None]
        if edited:
            points = [plans[i].face.detection.points for i in edited]
            ages = [conditions["target_ages"][i] for i in edited]
            aus = [conditions["target_aus"][i] for i in edited]
            photo = self.refine_photo(photo, points, ages, aus, progress)
        return photo, changes

    def _kept_mask(self, change: Any, matrix: np.ndarray) -> Image.Image:
        """The engine's change mask as an aligned "L" crop, white where the input's pixel was kept."""
        import cv2

        size = self.image_size
        if change is None:
            return Image.fromarray(np.full((size, size), 255, np.uint8), mode="L")
        (x0, y0, _, _), mask = change
        local = np.asarray(matrix, np.float64).copy()
        local[:, 2] += local[:, :2] @ np.array([x0, y0], np.float64)  # box pixels -> crop pixels
        moved = cv2.warpAffine(mask, local, (size, size), flags=cv2.INTER_AREA, borderValue=0.0)
        return Image.fromarray(np.round(255.0 * (1.0 - np.clip(moved, 0.0, 1.0))).astype(np.uint8), mode="L")

    def _request(
        self, image: ImageInput, age: float | None, aus: Any, face: int | None, source_age: float | None
    ) -> tuple[PhotoSession, list[FacePlan]]:
        """The request checked at the edge (out-of-range ages and AUs are refused, never clamped), as plans."""
        age = check_optional_age(age)
        aus = check_aus(aus)
        source_age = check_optional_age(source_age, "source_age")
        session = self.session(image)
        return session, session.plans(age, aus, face, source_age)

    def edit_details(
        self,
        image: ImageInput,
        age: float | None = None,
        aus: Any = None,
        face: int | None = None,
        *,
        source_age: float | None = None,
        person: Person | None = None,
    ) -> EditResult:
        """Edit and return the whole photo plus per-face crops and change masks.

        ``age=None`` keeps each face's estimated age; ``aus=None`` keeps its measured AUs and a
        mapping changes only the AUs it names; ``face=None`` edits every face. ``source_age``: the current age
        of the edited face(s) as the user knows it, where the estimator misreads it (the edit's size is set
        from it, never from the estimate). ``person``: the person's own photos (:meth:`person`), whose faces
        near the target age the edit takes the features of, before the bank's strangers.
        """
        from ganime_age.faces import align_face

        person = check_person(person)
        session, plans = self._request(image, age, aus, face, source_age)
        photo, changes = self._render(session, plans, person=person)
        results = [
            FaceEdit(
                index=p.face.index,
                source=Image.fromarray(p.face.aligned.image),
                output=Image.fromarray(align_face(photo, p.face.detection.points, self.image_size).image),
                attention=self._kept_mask(change, p.face.aligned.matrix),
                source_age=p.source_age if p.age_known else None,
                source_aus=p.source_aus,
                target_age=p.target_age,
                target_aus=p.target_aus,
            )
            for p, change in zip(plans, changes, strict=True)
        ]
        return EditResult(Image.fromarray(photo), results)

    def edit(
        self,
        image: ImageInput,
        age: float | None = None,
        aus: Any = None,
        face: int | None = None,
        *,
        source_age: float | None = None,
        person: Person | None = None,
    ) -> Image.Image:
        """The edited photo, same size as the input (:meth:`edit_details` without the per-face crops)."""
        person = check_person(person)
        session, plans = self._request(image, age, aus, face, source_age)
        return Image.fromarray(self._render(session, plans, person=person)[0])

    def age_strip(
        self,
        image: ImageInput,
        face: int = 0,
        ages: Sequence[float] | None = None,
        progress: ProgressCallback | None = None,
        *,
        source_age: float | None = None,
        person: Person | None = None,
    ) -> list[tuple[float, Image.Image]]:
        """The same face at several ages (default: the 10 age-group centres), each a head-and-shoulders portrait
        cut from the edited photo at the photo's own resolution (:func:`ganime_age.faces.portrait`: shrunk only
        past 1,024 pixels), so the strip is as sharp as the edits; `source_age` and `person` as in
        :meth:`edit_details`.

        Returns a list of ``(age, image)`` pairs, one per age in order: the target age in years (a float) and
        the portrait (a PIL image), e.g. ``for years, image in editor.age_strip("photo.jpg"): ...``."""
        from ganime_age.faces import portrait

        source_age = check_optional_age(source_age, "source_age")
        person = check_person(person)
        session = self.session(image)
        target = session.selected(face)[0]
        ages = check_ages(ages) if ages is not None else [group_center(g) for g in range(NUM_AGE_GROUPS)]
        source_age = source_age if source_age is not None else session.age(target)
        aus = np.asarray(target.aus, np.float32)
        strip = []
        for n, years in enumerate(ages):
            if progress is not None:
                progress(n / len(ages), f"age {years:g}")
            photo, _ = self._render(session, [FacePlan(target, source_age, float(years), aus, aus)], person=person)
            strip.append((float(years), Image.fromarray(portrait(photo, target.detection.box))))
        if progress is not None:
            progress(1.0, "done")
        return strip

    # -- reenactment -----------------------------------------------------------------------------------
    @property
    def reenactment(self) -> Reenactment:
        """Pose and expression transfer from a driving face, built on this editor's sessions and engine."""
        if self._reenactment is None:
            self._reenactment = Reenactment(
                self.sessions,
                lambda: self.analyzer,
                self.engine,
                refine=self.refine_photo,
                reenactor=self.reenactor,
                device=self.device,
                landmarker=self.config.landmarker,
            )
        return self._reenactment

    def reenact(
        self, source: ImageInput, driving: ImageInput, age: float | None = None, aus_scale: float = 1.0, **options: Any
    ) -> Image.Image:
        """The source photo, full size, with the driving face's head pose and expression at `age` (None = keep).

        ``options``: face, driving_face (indices, left to right), source_age (the source face's current age where
        the estimate is wrong), person (the person's own photos, :meth:`person`). See
        :mod:`ganime_age.editing.reenactment`.
        """
        return self.reenactment.image(source, driving, age=age, aus_scale=aus_scale, **options)

    def reenact_video(
        self,
        source: ImageInput,
        driving_video: str | os.PathLike[str],
        output_path: str | os.PathLike[str],
        age: float | None = None,
        aus_scale: float = 1.0,
        progress: Callable[[float, str], Any] | None = None,
        **options: Any,
    ) -> Path:
        """Reenact the source photo with every frame of a driving video; writes an MP4 with the driver's audio, returns its path.

        ``options``: face, driving_face, source_age, person, smoothing, max_frames, max_side, show_progress_bar.
        """
        return self.reenactment.video(
            source, driving_video, output_path, age=age, aus_scale=aus_scale, progress=progress, **options
        )


GanimeAge = FaceEditor
"""The name the package's card gives users: ``GanimeAge.from_pretrained("owner/editor")`` loads a whole editor."""
