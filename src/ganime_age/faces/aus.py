"""Action Unit intensities: estimated from MediaPipe blendshapes, or read from OpenFace / GANimation files.

All readers return the 17 GANimation AUs (:data:`ganime_age.conditions.AU_NAMES` order) on the 0..5 scale.
"""

from __future__ import annotations

import csv
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ganime_age.conditions import AU_MAX, AU_NAMES, NUM_AUS
from ganime_age.errors import AnnotationError

# Blendshapes -> AUs. MediaPipe's 52 blendshapes (ARKit names) are not FACS codes, but most have an
# obvious FACS counterpart. Each AU is a "raw" activation in [0, 1] built from its blendshapes
# (left/right pairs averaged), then mapped as clip((raw - rest) * gain, 0, 5):
#   rest  = the blendshape's typical value on a relaxed face, which MediaPipe reports above 0 for some
#           shapes (eyeSquint, browDown, eyeBlink): its 25th percentile over 300 UTKFace faces;
#   gain  = 4 / (99th percentile - rest) over the same faces, so a strong expression reads ~4 and only
#           extreme ones saturate at 5; capped at 10 for shapes that rarely fire on UTKFace (dimple,
#           frown, jaw drop), so that noise near 0 is not blown up.
# Measured with MediaPipe 1.2.2 (face_landmarker.task float16/1) on 300 UTKFace faces picked with
# numpy default_rng(7), each run through FaceAnalyzer. Neither is FACS coding: treat the result as an
# estimate, useful for conditioning and for relative comparisons (more/less smile), not as OpenFace output.
AU_BLENDSHAPES: dict[str, tuple[str, ...]] = {
    "AU01": ("browInnerUp",),
    "AU02": ("browOuterUpLeft", "browOuterUpRight"),
    "AU04": ("browDownLeft", "browDownRight"),
    "AU05": ("eyeWideLeft", "eyeWideRight"),
    "AU06": ("cheekSquintLeft", "cheekSquintRight"),
    "AU07": ("eyeSquintLeft", "eyeSquintRight"),
    "AU09": ("noseSneerLeft", "noseSneerRight"),
    "AU10": ("mouthUpperUpLeft", "mouthUpperUpRight"),
    "AU12": ("mouthSmileLeft", "mouthSmileRight"),
    "AU14": ("mouthDimpleLeft", "mouthDimpleRight"),
    "AU15": ("mouthFrownLeft", "mouthFrownRight"),
    "AU17": ("mouthShrugLower",),
    "AU20": ("mouthStretchLeft", "mouthStretchRight"),
    "AU23": ("mouthPressLeft", "mouthPressRight", "mouthPucker"),  # max(press mean, pucker)
    "AU25": ("jawOpen", "mouthClose", "mouthLowerDownLeft", "mouthLowerDownRight"),  # lips part, see _raw
    "AU26": ("jawOpen",),
    "AU45": ("eyeBlinkLeft", "eyeBlinkRight"),
}

# (rest, gain) per AU; see the comment above for how they were measured.
AU_CALIBRATION: dict[str, tuple[float, float]] = {
    "AU01": (0.005, 4.88),
    "AU02": (0.020, 4.80),
    "AU04": (0.003, 5.62),
    "AU05": (0.006, 10.00),
    "AU06": (0.000, 5.68),
    "AU07": (0.187, 6.82),
    "AU09": (0.000, 10.00),
    "AU10": (0.000, 4.65),
    "AU12": (0.001, 4.15),
    "AU14": (0.004, 10.00),
    "AU15": (0.000, 10.00),
    "AU17": (0.002, 7.85),
    "AU20": (0.003, 9.83),
    "AU23": (0.044, 4.48),
    "AU25": (0.002, 5.04),
    "AU26": (0.002, 10.00),
    "AU45": (0.033, 8.34),
}


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
            # down together, so the weaker of those two is the fallback.
            lip = _mean(blendshapes, "mouthUpperUpLeft", "mouthUpperUpRight")
            brow = _mean(blendshapes, "browDownLeft", "browDownRight")
            value = max(_mean(blendshapes, *sources), min(lip, brow))
        elif name == "AU25":
            # Lips part: the jaw opens without the lips being held closed, or the lower lip is pulled down.
            jaw_open = _mean(blendshapes, "jawOpen") - _mean(blendshapes, "mouthClose")
            value = max(jaw_open, _mean(blendshapes, "mouthLowerDownLeft", "mouthLowerDownRight"))
        else:
            value = _mean(blendshapes, *sources)
        raw[index] = np.clip(value, 0.0, 1.0)
    return raw


def blendshapes_to_aus(blendshapes: Mapping[str, float]) -> np.ndarray:
    """Estimate the 17 GANimation AU intensities (0..5, float32) from MediaPipe blendshape scores.

    An estimate for conditioning and display, not FACS coding: each AU is a calibrated linear
    read-out of its corresponding blendshapes (AU_BLENDSHAPES, AU_CALIBRATION), clipped to 0..5.
    Missing blendshape names count as 0.
    """
    if not isinstance(blendshapes, Mapping):
        raise TypeError(f"blendshapes must be a mapping name -> score, got {type(blendshapes).__name__}")
    raw = blendshape_activations(blendshapes)
    rest = np.array([AU_CALIBRATION[name][0] for name in AU_NAMES], np.float32)
    gain = np.array([AU_CALIBRATION[name][1] for name in AU_NAMES], np.float32)
    return np.clip((raw - rest) * gain, 0.0, AU_MAX).astype(np.float32)


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
