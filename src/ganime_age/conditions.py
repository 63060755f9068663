"""The condition vocabulary shared by models, data, training and the UI.

Ages are years as floats in [0, MAX_AGE]; age groups are the 10 FFHQ-Aging groups;
AUs are the 17 GANimation Action Units with intensities on the 0..5 scale.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from ganime_age.errors import InvalidArgumentError

MAX_AGE = 100.0
AU_MAX = 5.0

AU_NAMES: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)  # fmt: skip
NUM_AUS = len(AU_NAMES)

AU_FACS_NAMES: dict[str, str] = {
    "AU01": "inner brow raiser",
    "AU02": "outer brow raiser",
    "AU04": "brow lowerer",
    "AU05": "upper lid raiser",
    "AU06": "cheek raiser",
    "AU07": "lid tightener",
    "AU09": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU17": "chin raiser",
    "AU20": "lip stretcher",
    "AU23": "lip tightener",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU45": "blink",
}

AU_REGIONS: dict[str, tuple[str, ...]] = {
    "Brows": ("AU01", "AU02", "AU04"),
    "Eyes": ("AU05", "AU06", "AU07", "AU45"),
    "Nose": ("AU09",),
    "Mouth": ("AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26"),
}

# The 10 FFHQ-Aging groups, inclusive year ranges; the last one is open-ended.
AGE_GROUPS: tuple[tuple[int, int], ...] = (
    (0, 2), (3, 6), (7, 9), (10, 14), (15, 19), (20, 29), (30, 39), (40, 49), (50, 69), (70, 120),
)  # fmt: skip
NUM_AGE_GROUPS = len(AGE_GROUPS)
AGE_GROUP_LABELS: tuple[str, ...] = tuple(f"{lo}-{hi}" if hi < 120 else f"{lo}+" for lo, hi in AGE_GROUPS)
FFHQ_AGING_GROUP_NAMES: tuple[str, ...] = tuple(f"{lo}-{hi}" for lo, hi in AGE_GROUPS)


def age_to_group(age: float) -> int:
    """Index of the FFHQ-Aging group holding `age` (years, fractional ages rounded down)."""
    years = int(np.floor(max(0.0, float(age))))
    for index, (_, hi) in enumerate(AGE_GROUPS):
        if years <= hi:
            return index
    return NUM_AGE_GROUPS - 1


def group_center(group: int) -> float:
    """A representative age in years for a group (used for age strips and group→age conversion)."""
    lo, hi = AGE_GROUPS[group]
    hi = min(hi, 85)
    return (lo + hi) / 2.0


def group_from_label(label: str) -> int:
    """Parse an FFHQ-Aging label such as '20-29', '70-120' or '70+' into a group index."""
    text = label.strip().replace(" ", "")
    for index, (lo, hi) in enumerate(AGE_GROUPS):
        if text in (f"{lo}-{hi}", f"{lo}+", AGE_GROUP_LABELS[index]):
            return index
    raise ValueError(f"unknown age group label {label!r}; expected one of {FFHQ_AGING_GROUP_NAMES}")


def aus_to_array(
    aus: Mapping[str, float] | Sequence[float] | np.ndarray | None, base: np.ndarray | None = None
) -> np.ndarray:
    """Turn a mapping {"AU12": 3.0} or a 17-vector into a float32 17-vector on the 0..5 scale.

    A mapping only overrides the AUs it names; the others come from `base` (zeros if None).
    """
    out = np.zeros(NUM_AUS, np.float32) if base is None else np.asarray(base, np.float32).copy()
    if aus is None:
        return out
    if isinstance(aus, Mapping):
        for name, value in aus.items():
            out[AU_NAMES.index(normalise_au_name(name))] = float(value)
    else:
        values = np.asarray(aus, np.float32).reshape(-1)
        if values.shape[0] != NUM_AUS:
            raise InvalidArgumentError(f"expected {NUM_AUS} AU intensities, got {values.shape[0]}")
        out = values.copy()
    if not np.all(np.isfinite(out)):
        raise InvalidArgumentError("AU intensities must be finite numbers")
    return np.clip(out, 0.0, AU_MAX)


def normalise_au_name(name: str) -> str:
    """'AU12', 'au12', 'AU12_r', 'AU6' -> the canonical 'AU12'/'AU06'; anything else is an InvalidArgumentError."""
    text = name.strip().upper().removesuffix("_R").removesuffix("_C")
    # ASCII digits only: "AU²" and "AU①" pass str.isdigit() but int() refuses them (a ValueError, not ours)
    found = re.fullmatch(r"AU([0-9]{1,3})", text)
    if found is not None:
        candidate = f"AU{int(found.group(1)):02d}"
        if candidate in AU_NAMES:
            return candidate
    shown = repr(name) if len(name) <= 40 else f"{name[:30]!r}... ({len(name)} characters)"
    raise InvalidArgumentError(f"unknown Action Unit {shown}; known: {', '.join(AU_NAMES)}")
