"""Action Unit intensities: estimated from MediaPipe blendshapes, or read from OpenFace / GANimation files.

All readers return the 17 GANimation AUs (:data:`ganime_age.conditions.AU_NAMES` order) on the 0..5 scale.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ganime_age.conditions import AU_MAX, AU_NAMES, NUM_AUS
from ganime_age.errors import AnnotationError

# Blendshapes -> AUs. MediaPipe's 52 blendshapes (ARKit names) are not FACS codes, but most have a
# physical FACS counterpart. Each AU is a "raw" activation in [0, 1] built from its blendshapes (left/right
# pairs averaged; see blendshape_activations), read out as clip((raw - rest) * gain, 0, 5).
#
# (rest, gain) per AU live in au_calibration.json beside this file, written by
# `python training/tools/calibrate_aus.py --data data/cfee128 --write`, which also records the data, the
# MediaPipe version and the agreement per AU (training/JOURNAL.md, "AU read-out calibration", has the table):
#   - fitted AUs: least squares of the clipped read-out against the FACS codes of CFEE's authors (a..e ->
#     1..5) on the CFEE training people, checked on the held-out test people. The codes are per person and
#     expression, not per photo, and many AUs are only weakly visible to MediaPipe (AU09 nose wrinkle:
#     noseSneer is ~0 on every face; AU06, AU07, AU10, AU20 reach Pearson r 0.25-0.4), so a fitted
#     read-out is the expected coded intensity given the blendshapes, which stays well below the coded
#     intensity where the blendshapes track an AU poorly;
#   - AUs that CFEE codes too rarely or that no blendshape follows (AU14 dimpler, AU23 lip tightener)
#     keep the percentile rule: rest = 25th percentile, gain = 4 / (99th percentile - rest), capped at
#     10, over UTKFace faces (mostly neutral or smiling).
# The result is an estimate for conditioning and relative comparisons, not FACS coding or OpenFace output.
AU_BLENDSHAPES: dict[str, tuple[str, ...]] = {
    "AU01": ("browInnerUp",),
    "AU02": ("browOuterUpLeft", "browOuterUpRight"),
    "AU04": ("browDownLeft", "browDownRight"),
    "AU05": ("eyeWideLeft", "eyeWideRight"),
    "AU06": ("cheekSquintLeft", "cheekSquintRight"),
    "AU07": ("eyeSquintLeft", "eyeSquintRight"),
    "AU09": ("noseSneerLeft", "noseSneerRight"),
    # Not mouthUpperUp: on CFEE that shape follows the parted lips of open mouths (r 0.45 with AU25) and not
    # the coded upper-lip raiser (r 0.10 train, -0.02 test), while mouthShrugUpper, the upper lip pushed
    # up with the mouth closed, follows AU10 (r 0.33 train, 0.35 test).
    "AU10": ("mouthShrugUpper",),
    "AU12": ("mouthSmileLeft", "mouthSmileRight"),
    "AU14": ("mouthDimpleLeft", "mouthDimpleRight"),
    "AU15": ("mouthFrownLeft", "mouthFrownRight"),
    "AU17": ("mouthShrugLower",),
    "AU20": ("mouthStretchLeft", "mouthStretchRight"),
    "AU23": ("mouthPressLeft", "mouthPressRight", "mouthPucker"),  # max(press mean, pucker)
    # Lips part, see blendshape_activations.
    "AU25": (
        "jawOpen",
        "mouthClose",
        "mouthLowerDownLeft",
        "mouthLowerDownRight",
        "mouthUpperUpLeft",
        "mouthUpperUpRight",
    ),
    "AU26": ("jawOpen",),
    "AU45": ("eyeBlinkLeft", "eyeBlinkRight"),
}

AU_CALIBRATION_PATH = Path(__file__).with_name("au_calibration.json")


@functools.cache
def load_au_calibration(path: Path = AU_CALIBRATION_PATH) -> Mapping[str, tuple[float, float]]:
    """AU name -> (rest, gain) from a calibration JSON (read once per path; the shipped one by default).

    Every one of the 17 AUs must be there with a finite rest and a finite positive gain: a broken file is
    an error here rather than AUs that silently read 0 or explode.
    """
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))["aus"]
        calibration = {name: (float(entries[name]["rest"]), float(entries[name]["gain"])) for name in AU_NAMES}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise AnnotationError(f"{path} is not a readable AU calibration: {error!r}") from None
    broken = [
        name for name, (rest, gain) in calibration.items() if not (np.isfinite(rest) and np.isfinite(gain) and gain > 0)
    ]
    if broken:
        raise AnnotationError(f"{path}: AUs {', '.join(broken)} need a finite rest and a finite positive gain")
    return MappingProxyType(calibration)


class _ShippedCalibration(Mapping[str, tuple[float, float]]):
    """AU_CALIBRATION: the shipped (rest, gain) per AU, read from au_calibration.json on first use."""

    def __getitem__(self, name: str) -> tuple[float, float]:
        return load_au_calibration()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(load_au_calibration())

    def __len__(self) -> int:
        return len(load_au_calibration())

    def __repr__(self) -> str:
        return f"AU_CALIBRATION({dict(load_au_calibration())!r})"


AU_CALIBRATION: Mapping[str, tuple[float, float]] = _ShippedCalibration()


# MediaPipe's 52 blendshape categories in the order the face landmarker reports them; prepared datasets
# store the raw scores in this order (so the AU read-out can be recalibrated without re-analysing photos).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
NUM_BLENDSHAPES = len(BLENDSHAPE_NAMES)


def blendshape_vector(blendshapes: Mapping[str, float]) -> np.ndarray:
    """The scores as a float32 (52,) vector in BLENDSHAPE_NAMES order (missing names count as 0)."""
    return np.array([float(blendshapes.get(name, 0.0)) for name in BLENDSHAPE_NAMES], np.float32)


def blendshape_mapping(vector: np.ndarray) -> dict[str, float]:
    """Inverse of blendshape_vector: a stored (52,) row back to name -> score."""
    values = np.asarray(vector, np.float32).reshape(NUM_BLENDSHAPES)
    return {name: float(value) for name, value in zip(BLENDSHAPE_NAMES, values, strict=True)}


def _mean(blendshapes: Mapping[str, float], *names: str) -> float:
    return float(np.mean([float(blendshapes.get(name, 0.0)) for name in names]))


def blendshape_activations(blendshapes: Mapping[str, float]) -> np.ndarray:
    """The 17 raw AU activations in [0, 1] before calibration (AU_BLENDSHAPES order/combination)."""
    raw = np.zeros(NUM_AUS, np.float32)
    for index, name in enumerate(AU_NAMES):
        sources = AU_BLENDSHAPES[name]
        if name == "AU23":
            value = max(_mean(blendshapes, *sources[:2]), _mean(blendshapes, sources[2]))
        elif name == "AU06":
            # cheekSquint stays ~0 on every face with MediaPipe's blendshape model (max 1e-5 over 300
            # UTKFace faces), so the cheek raiser is also read from its usual appearance: eye squint during
            # a smile (the raised cheek narrows the eyes from below, as in a Duchenne smile).
            smile = _mean(blendshapes, "mouthSmileLeft", "mouthSmileRight")
            squint = _mean(blendshapes, "eyeSquintLeft", "eyeSquintRight")
            value = max(_mean(blendshapes, *sources), smile * squint)
        elif name == "AU09":
            # noseSneer is also ~0 on every face; a nose wrinkle raises the upper lip and pulls the brows
            # down together, so the weaker of those two is the fallback. It follows CFEE's AU09 only weakly
            # (held-out r 0.14); min(browDown, eyeSquint) ranks better (r 0.31) but reads AU04 + AU07 (anger)
            # as a nose wrinkle and has the higher error (MAE 0.65 against 0.53), so it was not taken.
            lip = _mean(blendshapes, "mouthUpperUpLeft", "mouthUpperUpRight")
            brow = _mean(blendshapes, "browDownLeft", "browDownRight")
            value = max(_mean(blendshapes, *sources), min(lip, brow))
        elif name == "AU25":
            # Lips part: the jaw opens without the lips being held closed, or a lip is pulled away from the
            # other. The upper lip's share (mouthUpperUp) is new with the CFEE calibration: it raised the held-out
            # agreement from r 0.67 to 0.70 (and MAE 0.85 to 0.80) at the fitted constants.
            jaw_open = _mean(blendshapes, "jawOpen") - _mean(blendshapes, "mouthClose")
            lower_lip = _mean(blendshapes, "mouthLowerDownLeft", "mouthLowerDownRight")
            value = max(jaw_open, lower_lip, _mean(blendshapes, "mouthUpperUpLeft", "mouthUpperUpRight"))
        else:
            value = _mean(blendshapes, *sources)
        raw[index] = np.clip(value, 0.0, 1.0)
    return raw


def blendshapes_to_aus(blendshapes: Mapping[str, float]) -> np.ndarray:
    """Estimate the 17 GANimation AU intensities (0..5, float32) from MediaPipe blendshape scores.

    An estimate for conditioning and display, not FACS coding: each AU is a linear read-out of its
    corresponding blendshapes (AU_BLENDSHAPES) with the shipped constants (AU_CALIBRATION, calibrated
    against CFEE's FACS codes), clipped to 0..5.
    Missing blendshape names count as 0.
    """
    if not isinstance(blendshapes, Mapping):
        raise TypeError(f"blendshapes must be a mapping name -> score, got {type(blendshapes).__name__}")
    return apply_au_calibration(blendshape_activations(blendshapes))


def apply_au_calibration(
    activations: np.ndarray, calibration: Mapping[str, tuple[float, float]] = AU_CALIBRATION
) -> np.ndarray:
    """Raw activations (..., 17) -> AU intensities clip((raw - rest) * gain, 0, 5), float32.

    One formula for the read-out and for the calibration script, which tries constants before shipping them.
    """
    rest = np.array([calibration[name][0] for name in AU_NAMES], np.float32)
    gain = np.array([calibration[name][1] for name in AU_NAMES], np.float32)
    return np.clip((np.asarray(activations, np.float32) - rest) * gain, 0.0, AU_MAX).astype(np.float32)


def read_openface_csv(path: str | os.PathLike[str]) -> np.ndarray:
    """AU intensities (frames, 17) float32 from an OpenFace 2 FeatureExtraction CSV.

    Columns are found by name (``AU01_r`` ..., OpenFace writes them with a leading space); other
    columns are ignored. A missing AU column or an unreadable value is an AnnotationError.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such OpenFace CSV file: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise AnnotationError(f"{path} is not a readable CSV file: {error}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]  # blank lines carry no frame
    if not rows:
        raise AnnotationError(f"{path} is empty; expected an OpenFace CSV with a header row")
    header = [name.strip() for name in rows[0]]
    columns = {name: index for index, name in enumerate(header)}
    wanted = [f"{name}_r" for name in AU_NAMES]
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise AnnotationError(
            f"{path} lacks the AU intensity columns {', '.join(missing)}; "
            "is this an OpenFace FeatureExtraction CSV (run with -aus)?"
        )
    indices = [columns[name] for name in wanted]
    values = np.zeros((len(rows) - 1, NUM_AUS), np.float32)
    for row_number, row in enumerate(rows[1:]):
        try:
            values[row_number] = [float(row[i]) for i in indices]
        except (IndexError, ValueError):
            raise AnnotationError(f"{path}, line {row_number + 2}: missing or non-numeric AU value") from None
    if not np.all(np.isfinite(values)):
        raise AnnotationError(f"{path} holds NaN or infinite AU values")
    return values


def read_ganimation_pickle(path: str | os.PathLike[str], *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """Read GANimation's ``aus_openface.pkl`` (a Python 2 pickle: image id -> 17 OpenFace AU intensities).

    Unpickling can run arbitrary code hidden in the file, so this legacy format is opt-in: pass
    ``allow_pickle=True`` only for files you trust. Prefer OpenFace CSVs or the prepared dataset format.
    """
    path = Path(path)
    if not allow_pickle:
        raise AnnotationError(
            f"refusing to unpickle {path}: loading a pickle can execute arbitrary code. "
            "If you trust this file, call read_ganimation_pickle(path, allow_pickle=True)."
        )
    if not path.is_file():
        raise FileNotFoundError(f"no such pickle file: {path}")
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle, encoding="latin1")  # explicit opt-in above
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as error:
        raise AnnotationError(f"{path} is not a readable GANimation AU pickle: {error}") from None
    if not isinstance(data, Mapping):
        raise AnnotationError(f"{path} holds a {type(data).__name__}, expected a dict image id -> AU vector")
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        vector = np.asarray(value, np.float32).reshape(-1)
        if vector.shape[0] != NUM_AUS:
            raise AnnotationError(f"{path}: entry {key!r} has {vector.shape[0]} values, expected {NUM_AUS}")
        name = key.decode("latin1") if isinstance(key, bytes) else str(key)
        out[name] = vector
    return out
