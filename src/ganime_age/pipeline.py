"""FaceEditor: the one user-facing composition of face analysis, the edit engine, refiners and paste-back.

The CLI and the Space call this class and nothing below it. An edit is the fitted engine's
(``models.fitted_engine``: geometry and appearance at the photo's own resolution), optionally refined
by a trained network (GANimation-age, AgeTransGAN or RAGAN at 128 px) whose *change* is added to the
engine's photo, so that it can add detail but never blur it. The editor keeps the models and detectors
loaded and caches each photo's analysis (detection, landmarks, AUs, estimated age, the engine's
per-face preparation), so that a slider move re-runs only the engine's render and the refiner.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from PIL import Image

from ganime_age.conditions import AU_NAMES, NUM_AGE_GROUPS, aus_to_array, group_center
from ganime_age.errors import (
    ConfigError,
    FaceIndexError,
    ModelFileNotFoundError,
    ModelOutputError,
    NoFaceError,
    WeightsError,
)
from ganime_age.hub import HubModel, load_pretrained
from ganime_age.validation import check_ages, check_aus, check_face, check_optional_age

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_ENGINE_DIR = WEIGHTS_DIR / "ganime-age-engine"
DEFAULT_MODEL_DIR = DEFAULT_ENGINE_DIR  # what edits with no model named: the engine alone
DEFAULT_ESTIMATOR_DIR = WEIGHTS_DIR / "age-estimator"
MODEL_ENV = "GANIME_AGE_MODEL"
ENGINE_ENV = "GANIME_AGE_ENGINE"
ESTIMATOR_ENV = "GANIME_AGE_ESTIMATOR"
ENGINE_TYPE = "fitted_engine"
REFINER_TYPES = ("ganime_age", "agetransgan", "ragan")
AGEING_MODEL_TYPES = (ENGINE_TYPE, *REFINER_TYPES)

UNKNOWN_AGE = 30.0  # stands in for both ages of an expression-only edit when no estimator is loaded (no age change)
AuInput = Mapping[str, float] | Sequence[float] | np.ndarray | None
ImageInput = Any  # str | Path | bytes | PIL.Image.Image | np.ndarray; validated by faces.load_image


@dataclass
class EditorConfig:
    """Options shared by the Python API, the CLI and the Space."""

    # Hub id or folder of a refiner (GANimation-age, AgeTransGAN, RAGAN: run on top of the engine) or of a fitted
    # engine (replaces the engine); None = $GANIME_AGE_MODEL, else the engine alone
    model: str | None = None
    engine: str | None = None  # Hub id or folder of the fitted engine; None = $GANIME_AGE_ENGINE or the embedded one
    age_estimator: str | None = None  # Hub id or folder; None = $GANIME_AGE_ESTIMATOR or the embedded one
    device: str | None = None  # "cuda", "mps", "cpu"; None picks the best available
    detector: str | None = None  # YuNet .onnx path (else resolved by ganime_age.assets)
    landmarker: str | None = None  # MediaPipe face_landmarker.task path
    batch_size: int = 8  # faces per refiner call
    cache_size: int = 8  # photos whose analysis is kept (at most; cache_megabytes bounds their memory too)
    cache_megabytes: float = 256.0  # memory the cached photos may hold; a 100 MP photo alone is ~290 MB
    max_faces: int | None = 32  # photos with more faces are refused (TooManyFacesError); None = no cap
    reenactor: str | None = None  # trained Reenactor folder/Hub id; None = $GANIME_AGE_REENACTOR, else classical warp
    # refiner arithmetic: "fp32", or "bf16"/"fp16" autocast — faster on GPUs (and bf16 on CPUs with AMX),
    # a few 1/255 levels of difference in the output pixels; "fp16" needs a GPU
    precision: str = "fp32"


GENERATOR_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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


@dataclass
class _PhotoAnalysis:
    rgb: np.ndarray
    faces: list[Any]  # list[faces.FaceAnalysis]
    ages: dict[int, float] = field(default_factory=dict)
    engine_faces: dict[int, Any] = field(default_factory=dict)  # face index -> the engine's EngineFace


def _file_key(image: ImageInput) -> tuple[str, int, int] | None:
    """(real path, size, modification time) of a photo given as a path to a regular file, else None."""
    if not isinstance(image, (str, os.PathLike)):
        return None
    try:
        path = os.path.realpath(os.fspath(image))
        info = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None  # load_image says what is wrong with it
    import stat

    return (path, info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None


def pick_device(name: str | None = None) -> torch.device:
    """The named device (checked: it must exist and be usable here), or the best available one."""
    if name:
        try:
            device = torch.device(name)
        except (RuntimeError, TypeError, ValueError):
            raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is available here; use --device cpu")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
        mps = getattr(torch.backends, "mps", None)
        if device.type == "mps" and (mps is None or not mps.is_available()):
            raise ConfigError(f"device {name!r} asked for, but Apple's MPS is not available here; use cpu")
        if device.type not in ("cpu", "cuda", "mps"):
            raise ConfigError(f"device {name!r} is not supported; use cpu, cuda, cuda:N or mps")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_engine() -> HubModel:
    """The embedded fitted engine (``weights/ganime-age-engine``).

    Should the folder be missing (a trimmed install), an engine with empty tables stands in, with a warning:
    it returns every photo unchanged, so the API, CLI and Space still work end to end.
    """
    from ganime_age.models.fitted_engine import FittedEngine

    if (DEFAULT_ENGINE_DIR / "config.json").is_file():
        return load_pretrained(DEFAULT_ENGINE_DIR)
    logger.warning(
        "The embedded edit engine is missing (%s); edits will return photos unchanged. "
        "Pass engine=... or set %s to a fitted engine folder or Hub id.",
        DEFAULT_ENGINE_DIR,
        ENGINE_ENV,
    )
    engine = FittedEngine().eval()
    engine.untrained_default = True
    return engine


def default_ageing_model() -> HubModel:
    """What FaceEditor edits with when no model is named: the embedded fitted engine, alone."""
    return default_engine()


def is_untrained_default(model: HubModel) -> bool:
    """True for the empty stand-in used while no fitted engine is embedded."""
    return bool(getattr(model, "untrained_default", False))


class FaceEditor:
    """Edit age and expression of every face (or one) in a photo; returns the whole photo."""

    def __init__(
        self,
        model: HubModel,
        *,
        age_estimator: HubModel | None = None,
        analyzer: Any = None,
        config: EditorConfig | None = None,
        reenactor: HubModel | None = None,
        engine: HubModel | None = None,
    ) -> None:
        """`model`: a fitted engine, or a refiner that runs on top of `engine` (default: the embedded engine)."""
        self.config = config or EditorConfig()
        self.reenactor = reenactor  # None: reenact() moves faces with the classical landmark warp
        self._reenactment: Any = None
        model_type = getattr(model, "model_type", "")
        if model_type not in AGEING_MODEL_TYPES:
            raise WeightsError(
                f"{type(model).__name__} ({model_type!r}) is not an ageing model; "
                f"expected one of {', '.join(AGEING_MODEL_TYPES)}"
            )
        self.device = pick_device(self.config.device)
        self._autocast_dtype = self._check_precision(self.config.precision, self.device)
        if model_type == ENGINE_TYPE:
            engine, refiner = model, None
        else:
            engine, refiner = engine if engine is not None else default_engine(), model
        if getattr(engine, "model_type", "") != ENGINE_TYPE:
            raise WeightsError(f"{type(engine).__name__} is not a fitted edit engine")
        self.model = model
        self.engine = engine.eval()
        self.refiner = refiner.to(self.device).eval() if refiner is not None else None
        self.age_estimator = age_estimator.to(self.device).eval() if age_estimator is not None else None
        self.image_size = int((refiner or engine).config.image_size)
        self._analyzer = analyzer
        self._cache: OrderedDict[str, _PhotoAnalysis] = OrderedDict()
        self._files: dict[tuple[str, int, int], str] = {}  # (real path, size, mtime) -> the photo's cache key

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        age_estimator: str | os.PathLike[str] | None = None,
        config: EditorConfig | None = None,
        reenactor: str | os.PathLike[str] | None = None,
        engine: str | os.PathLike[str] | None = None,
    ) -> FaceEditor:
        """Build from Hub ids or folders: `model` a refiner or an engine (picked by config.json's model_type)."""
        config = config or EditorConfig()
        config.model = str(model) if model is not None else config.model or os.environ.get(MODEL_ENV)
        config.engine = str(engine) if engine is not None else config.engine or os.environ.get(ENGINE_ENV)
        config.age_estimator = (
            str(age_estimator) if age_estimator is not None else config.age_estimator or os.environ.get(ESTIMATOR_ENV)
        )
        config.device = device or config.device
        fitted = load_pretrained(config.engine) if config.engine else None
        if fitted is not None and getattr(fitted, "model_type", "") != ENGINE_TYPE:
            raise WeightsError(f"{config.engine} is not a fitted edit engine (model_type {fitted.model_type!r})")
        loaded = load_pretrained(config.model) if config.model else (fitted or default_engine())
        estimator = None
        estimator_source = config.age_estimator or (
            DEFAULT_ESTIMATOR_DIR if (DEFAULT_ESTIMATOR_DIR / "config.json").is_file() else None
        )
        if estimator_source is not None:
            estimator = load_pretrained(estimator_source)
            if getattr(estimator, "model_type", "") != "age_estimator":
                raise WeightsError(f"{estimator_source} is not an age estimator")
        from ganime_age.reenactment import REENACTOR_ENV, load_reenactor

        config.reenactor = (
            str(reenactor) if reenactor is not None else config.reenactor or os.environ.get(REENACTOR_ENV)
        )
        learned = load_reenactor(config.reenactor) if config.reenactor else None
        return cls(loaded, age_estimator=estimator, config=config, reenactor=learned, engine=fitted)

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from ganime_age.faces import FaceAnalyzer

            self._analyzer = FaceAnalyzer(
                self.config.detector, self.config.landmarker, size=self.image_size, max_faces=self.config.max_faces
            )
        return self._analyzer

    @property
    def uses_aus(self) -> bool:
        return True  # the engine edits AUs, whatever refiner runs on top

    @property
    def uses_source_age(self) -> bool:
        """The engine moves a face from its current age to the target: it needs the current age."""
        return True

    # -- analysis (cached) ----------------------------------------------------------------------
    def _analysis(self, image: ImageInput) -> _PhotoAnalysis:
        from ganime_age.faces import load_image

        # a file seen before (same path, size and modification time: the Space's uploads never change) is
        # neither decoded nor hashed again on a slider move: a 12 MP JPEG costs ~0.1 s to decode
        file_key = _file_key(image)
        if file_key is not None and self._files.get(file_key) in self._cache:
            key = self._files[file_key]
            self._cache.move_to_end(key)
            return self._cache[key]
        rgb = load_image(image)
        # sha1 straight from the array's buffer: rgb.tobytes() copied the whole photo on every slider move
        digest = hashlib.sha1(rgb)  # load_image returns a C-contiguous array
        digest.update(str(rgb.shape).encode())
        key = digest.hexdigest()
        if file_key is not None:
            self._files[file_key] = key
            while len(self._files) > 4 * max(self.config.cache_size, 1):
                self._files.pop(next(iter(self._files)))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        analysis = _PhotoAnalysis(rgb=rgb, faces=self.analyzer.analyze(rgb))
        self._cache[key] = analysis
        self._trim_cache()
        return analysis

    def _trim_cache(self) -> None:
        """Drop the least recently used photos beyond `cache_size` or `cache_megabytes` (the newest always stays:
        the edit in progress needs it)."""
        budget = self.config.cache_megabytes * 1e6
        held = sum(a.rgb.nbytes for a in self._cache.values())
        while len(self._cache) > 1 and (len(self._cache) > self.config.cache_size or held > budget):
            _, dropped = self._cache.popitem(last=False)
            held -= dropped.rgb.nbytes

    def analyze(self, image: ImageInput) -> list[Any]:
        """Every face in the photo (detection, landmarks, AUs, pose, aligned crop), left to right."""
        return self._analysis(image).faces

    def _selected(self, analysis: _PhotoAnalysis, face: int | None) -> list[Any]:
        face = check_face(face)
        if face is None:
            return analysis.faces
        if not 0 <= face < len(analysis.faces):
            raise FaceIndexError(
                f"face {face} asked for, but the photo has {len(analysis.faces)} face(s) "
                f"(indices 0..{len(analysis.faces) - 1}, left to right)"
            )
        return [analysis.faces[face]]

    def _source_age(self, analysis: _PhotoAnalysis, face: Any) -> float:
        if face.index not in analysis.ages:
            if self.age_estimator is None:
                raise ModelFileNotFoundError(
                    "no age estimator is loaded, so the face's current age is unknown and an age edit (which "
                    f"moves a face from its age to the target) cannot be made; give age_estimator= (or set "
                    f"{ESTIMATOR_ENV})"
                )
            batch = self._tensor([face.aligned.image])
            with torch.inference_mode():
                analysis.ages[face.index] = float(self.age_estimator.predict(batch)[0])
        return analysis.ages[face.index]

    @overload
    def estimate_age(self, image: ImageInput, face: None = None) -> list[float]: ...
    @overload
    def estimate_age(self, image: ImageInput, face: int) -> float: ...
    def estimate_age(self, image: ImageInput, face: int | None = None) -> list[float] | float:
        """Estimated age in years of every face, left to right (``face=None``), or of face ``face`` alone."""
        analysis = self._analysis(image)
        ages = [self._source_age(analysis, f) for f in self._selected(analysis, face)]
        return ages if face is None else ages[0]

    @overload
    def measure_aus(self, image: ImageInput, face: None = None) -> list[dict[str, float]]: ...
    @overload
    def measure_aus(self, image: ImageInput, face: int) -> dict[str, float]: ...
    def measure_aus(self, image: ImageInput, face: int | None = None) -> list[dict[str, float]] | dict[str, float]:
        """The 17 AU intensities (0-5) of every face, left to right (``face=None``), or of face ``face`` alone."""
        analysis = self._analysis(image)
        measured = [
            {name: float(value) for name, value in zip(AU_NAMES, selected.aus, strict=True)}
            for selected in self._selected(analysis, face)
        ]
        return measured if face is None else measured[0]

    # -- editing ---------------------------------------------------------------------------------
    def _tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).float()
        return batch / 127.5 - 1.0

    @staticmethod
    def _check_precision(precision: str, device: torch.device) -> torch.dtype | None:
        if precision not in GENERATOR_DTYPES:
            raise ConfigError(f"precision must be one of {', '.join(GENERATOR_DTYPES)}, not {precision!r}")
        if precision == "fp16" and device.type == "cpu":
            raise ConfigError("precision fp16 needs a GPU; on a CPU use bf16 (fast with AMX) or fp32")
        return GENERATOR_DTYPES[precision]

    def _generator_precision(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast for the generator when a reduced precision is configured; fp32 otherwise."""
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast_dtype)

    def _check_finite(self, *outputs: torch.Tensor | None) -> None:
        """NaN weights paste black squares over faces; refuse a non-finite generator output instead."""
        for output in outputs:
            if output is not None and not bool(torch.isfinite(output).all()):
                raise ModelOutputError(
                    f"the refiner ({self.model.model_type}) produced NaN or infinite pixels: its weights are "
                    "corrupt (or this device's arithmetic failed); load a clean copy of the model"
                )

    def _conditions(self, *columns: Sequence[float] | Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Ages and AU vectors packed into one float32 array: one host-to-device copy instead of four."""
        blocks = [np.asarray(c, np.float32).reshape(len(c), -1) for c in columns]
        packed = torch.from_numpy(np.concatenate(blocks, axis=1)).to(self.device)
        bounds = np.cumsum([0] + [b.shape[1] for b in blocks]).tolist()
        return [packed[:, a] if b - a == 1 else packed[:, a:b] for a, b in itertools.pairwise(bounds)]

    def _engine_face(self, analysis: _PhotoAnalysis, face: Any) -> Any:
        """The engine's per-face preparation (mesh raster, detail bands, ...), made once per photo."""
        prepared = analysis.engine_faces.get(face.index)
        if prepared is None:
            if face.landmarks is None:
                raise NoFaceError(
                    f"face {face.index} was detected, but its landmarks could not be measured, so it cannot be "
                    "edited; try a larger, sharper or more frontal view of it"
                )
            prepared = self.engine.prepare_face(analysis.rgb, face.landmarks.landmarks)
            analysis.engine_faces[face.index] = prepared
        return prepared

    def refine_photo(
        self,
        photo: np.ndarray,
        points: Sequence[np.ndarray],
        target_age: Sequence[float],
        target_aus: Sequence[np.ndarray],
        progress: Callable[[float, str], Any] | None = None,
    ) -> np.ndarray:
        """Add the refiner's change to each face (given by its 5 alignment points) of the engine's photo.

        The refiner is told the face already is at the target, so an identity refiner changes nothing and a
        trained one adds only what the engine left out; its change, not its image, is added (never a blur).
        """
        from ganime_age.faces import add_crop_change, align_face

        if self.refiner is None:
            return photo
        step = max(1, self.config.batch_size)
        with torch.inference_mode():
            for start in range(0, len(points), step):
                if progress is not None:
                    progress(start / len(points), f"refining faces {start + 1}-{min(start + step, len(points))}")
                chunk = points[start : start + step]
                aligned = [align_face(photo, p, self.image_size) for p in chunk]
                batch = self._tensor([a.image for a in aligned])
                ages, aus = self._conditions(target_age[start : start + step], target_aus[start : start + step])
                with self._generator_precision():
                    result = self.refiner.edit_faces(
                        batch, source_age=ages, target_age=ages, source_aus=aus, target_aus=aus
                    )
                self._check_finite(result.image)
                change = ((result.image.float().clamp(-1, 1) - batch) * 127.5).permute(0, 2, 3, 1).cpu().numpy()
                for a, delta in zip(aligned, change, strict=True):
                    photo = add_crop_change(photo, delta, a.matrix)
        return photo

    def _edit(
        self,
        analysis: _PhotoAnalysis,
        faces: Sequence[Any],
        source_ages: Sequence[float],
        target_ages: Sequence[float],
        source_aus: Sequence[np.ndarray],
        target_aus: Sequence[np.ndarray],
        progress: Callable[[float, str], Any] | None = None,
    ) -> tuple[np.ndarray, list[Any]]:
        """The engine's edit of the whole photo (then the refiner's), and per face what the engine changed."""
        prepared = [self._engine_face(analysis, f) for f in faces]
        photo, changes = self.engine.edit_photo(
            analysis.rgb, prepared, list(source_ages), list(target_ages), list(source_aus), list(target_aus)
        )
        photo = self.refine_photo(photo, [f.detection.points for f in faces], target_ages, target_aus, progress)
        return photo, changes

    def _kept_mask(self, shape: tuple[int, ...], change: Any, matrix: np.ndarray) -> Image.Image:
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

    def _edit_request(
        self, image: ImageInput, age: float | None, aus: AuInput, face: int | None
    ) -> tuple[np.ndarray, list[Any], list[Any], dict[str, list[Any]], bool]:
        """The checked request, edited: the photo, the engine's changes, the faces and their conditions."""
        age = check_optional_age(age)  # out-of-range ages and AUs are refused, never clamped
        aus = check_aus(aus)
        analysis = self._analysis(image)
        faces = self._selected(analysis, face)
        if face is None:  # every face: those whose landmarks could not be measured stay as they are
            faces = [f for f in faces if f.landmarks is not None] or faces
        # an expression-only edit keeps the age, so it needs no estimate of it when no estimator is loaded
        known = age is not None or self.age_estimator is not None
        source_ages = [self._source_age(analysis, f) if known else UNKNOWN_AGE for f in faces]
        conditions = {
            "source_ages": source_ages,
            "target_ages": [age if age is not None else a for a in source_ages],
            "source_aus": [np.asarray(f.aus, np.float32) for f in faces],
        }
        conditions["target_aus"] = [aus_to_array(aus, base=s) for s in conditions["source_aus"]]
        photo, changes = self._edit(analysis, faces, **conditions)
        return photo, changes, faces, conditions, known

    def edit_details(
        self, image: ImageInput, age: float | None = None, aus: AuInput = None, face: int | None = None
    ) -> EditResult:
        """Edit and return the whole photo plus per-face crops and change masks.

        ``age=None`` keeps each face's estimated age; ``aus=None`` keeps its measured AUs and a
        mapping changes only the AUs it names; ``face=None`` edits every face.
        """
        from ganime_age.faces import align_face

        photo, changes, faces, conditions, known = self._edit_request(image, age, aus, face)
        results = []
        for i, f in enumerate(faces):
            matrix = f.aligned.matrix
            results.append(
                FaceEdit(
                    index=f.index,
                    source=Image.fromarray(f.aligned.image),
                    output=Image.fromarray(align_face(photo, f.detection.points, self.image_size).image),
                    attention=self._kept_mask(photo.shape, changes[i], matrix),
                    source_age=conditions["source_ages"][i] if known else None,
                    source_aus=conditions["source_aus"][i],
                    target_age=conditions["target_ages"][i],
                    target_aus=conditions["target_aus"][i],
                )
            )
        return EditResult(Image.fromarray(photo), results)

    def edit(
        self, image: ImageInput, age: float | None = None, aus: AuInput = None, face: int | None = None
    ) -> Image.Image:
        """The edited photo, same size as the input (:meth:`edit_details` without the per-face crops)."""
        return Image.fromarray(self._edit_request(image, age, aus, face)[0])

    def age_strip(
        self,
        image: ImageInput,
        face: int = 0,
        ages: Sequence[float] | None = None,
        progress: Callable[[float, str], Any] | None = None,
    ) -> list[tuple[float, Image.Image]]:
        """The same face at several ages (default: the 10 age-group centres), as aligned crops."""
        from ganime_age.faces import align_face

        analysis = self._analysis(image)
        target = self._selected(analysis, face)[0]
        ages = check_ages(ages) if ages is not None else [group_center(g) for g in range(NUM_AGE_GROUPS)]
        source_age = self._source_age(analysis, target)
        aus = np.asarray(target.aus, np.float32)
        strip = []
        for n, years in enumerate(ages):
            if progress is not None:
                progress(n / len(ages), f"age {years:g}")
            photo, _ = self._edit(analysis, [target], [source_age], [float(years)], [aus], [aus])
            strip.append(
                (float(years), Image.fromarray(align_face(photo, target.detection.points, self.image_size).image))
            )
        if progress is not None:
            progress(1.0, "done")
        return strip

    # -- reenactment (ganime_age.reenactment) -------------------------------------------------------------
    @property
    def reenactment(self) -> Any:
        """The reenactment engine: shape transfer + (learned reenactor | classical warp) + this ageing model."""
        if self._reenactment is None:
            from ganime_age.reenactment import Reenactment

            self._reenactment = Reenactment(self, self.reenactor)
        return self._reenactment

    def reenact(
        self, source: ImageInput, driving: ImageInput, age: float | None = None, aus_scale: float = 1.0, **options: Any
    ) -> Image.Image:
        """The source photo, full size, with the driving face's head pose and expression at `age` (None = keep).

        ``options``: face, driving_face (indices, left to right). See :mod:`ganime_age.reenactment`.
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
        """Reenact the source photo with every frame of a driving video; writes an MP4 (no audio), returns its path.

        ``options``: face, driving_face, smoothing, max_frames, max_side, show_progress_bar.
        """
        return self.reenactment.video(
            source, driving_video, output_path, age=age, aus_scale=aus_scale, progress=progress, **options
        )
