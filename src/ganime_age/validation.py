"""One validation layer for the arguments of every public entry point (Python API, CLI, Space).

Each check returns the value in its canonical form or raises a typed error from
:mod:`ganime_age.errors` whose message says what was expected. Out-of-range ages and AU intensities
are **refused**, never clamped: the model only knows ages 0..``MAX_AGE`` and AUs 0..``AU_MAX``, and a
silently changed request is worse than a clear "no".
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.conditions import AU_MAX, AU_NAMES, MAX_AGE, NUM_AUS, normalise_au_name
from ganime_age.errors import InvalidArgumentError, OutputPathError

MAX_PATH_CHARS = 4096
"""Longer strings are not paths a user meant (Linux's PATH_MAX); refused before touching the file system."""


def check_number(value: Any, name: str, low: float, high: float, unit: str = "") -> float:
    """A real, finite number in [low, high] (a bool or a string is not a number here); `unit` for messages."""
    kind = f" ({unit})" if unit else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"{name} must be a number{kind}, not {_show(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name} must be a finite number{kind}, not {number}")
    if not low <= number <= high:
        raise InvalidArgumentError(
            f"{name} must be between {low:g} and {high:g}{' ' + unit if unit else ''}, not {number:g}"
        )
    return number


def check_age(age: Any, name: str = "age") -> float:
    """A target age in years, 0..MAX_AGE."""
    return check_number(age, name, 0.0, MAX_AGE, "years")


def check_optional_age(age: Any, name: str = "age") -> float | None:
    """None (keep each face's age) or a valid target age."""
    return None if age is None else check_age(age, name)


def check_ages(ages: Any) -> list[float]:
    """A non-empty sequence of target ages (e.g. an age strip's)."""
    if isinstance(ages, (str, bytes)) or not isinstance(ages, (Sequence, np.ndarray)) or len(ages) == 0:
        raise InvalidArgumentError(f"ages must be a non-empty list of numbers of years, not {_show(ages)}")
    return [check_age(a, f"ages[{i}]") for i, a in enumerate(np.asarray(ages, dtype=object).reshape(-1))]


def check_aus(aus: Any) -> dict[str, float] | np.ndarray | None:
    """None, a mapping ``{"AU12": 3.0}`` (canonical names; ``au12``/``AU12_r`` accepted) or 17 intensities.

    Every intensity must be a finite number in 0..AU_MAX.
    """
    if aus is None:
        return None
    if isinstance(aus, Mapping):
        checked: dict[str, float] = {}
        for key, value in aus.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(f"AU names must be strings such as 'AU12', not {_show(key)}")
            name = normalise_au_name(key)
            checked[name] = check_number(value, f"{name} intensity", 0.0, AU_MAX)
        return checked
    if isinstance(aus, (str, bytes)) or not isinstance(aus, (Sequence, np.ndarray)):
        raise InvalidArgumentError(
            f"aus must be a mapping such as {{'AU12': 3.0}} or {NUM_AUS} numbers in {', '.join(AU_NAMES)} order, "
            f"not {_show(aus)}"
        )
    items = np.asarray(aus, dtype=object).reshape(-1)  # object: ragged or mixed input reaches check_number as is
    if len(items) != NUM_AUS:
        raise InvalidArgumentError(f"aus must hold {NUM_AUS} intensities ({', '.join(AU_NAMES)}), got {len(items)}")
    return np.asarray(
        [check_number(v, f"{name} intensity", 0.0, AU_MAX) for name, v in zip(AU_NAMES, items, strict=True)],
        np.float32,
    )


def check_face(face: Any) -> int | None:
    """None (every face) or a face index, 0 = leftmost; whether the photo has it is checked later."""
    if face is None:
        return None
    if isinstance(face, bool) or not isinstance(face, numbers.Integral):
        raise InvalidArgumentError(f"face must be an integer index (0 = leftmost) or None for all, not {_show(face)}")
    return int(face)


def check_path(path: Any, name: str = "path") -> Path:
    """A str or os.PathLike of sane length, as a Path."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"{name} must be a file path, not {_show(path)}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text or len(text) > MAX_PATH_CHARS or "\x00" in text:
        raise InvalidArgumentError(f"{name} is not a usable path ({len(text)} characters)")
    return Path(text)


def image_extensions() -> dict[str, str]:
    """Extension -> PIL format, for the formats PIL can write."""
    from PIL import Image

    Image.init()
    return {ext: fmt for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}


def check_output_path(path: Any) -> Path:
    """An image path that can be written: a known image extension, not a folder, in a writable place.

    Checked before any work, so a bad ``-o`` fails in a second instead of after the whole edit.
    """
    out = check_path(path, "output path")
    if out.is_dir():
        raise OutputPathError(f"{out} is a folder; give a file name such as {out / 'edited.png'}")
    extensions = image_extensions()
    if out.suffix.lower() not in extensions:
        common = ", ".join(e for e in (".png", ".jpg", ".webp", ".tif", ".bmp") if e in extensions)
        what = f"has an unknown image extension {out.suffix!r}" if out.suffix else "has no image extension"
        raise OutputPathError(f"{out} {what}; use one of {common}")
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputPathError(f"{out} exists and is not writable")
    check_writable_folder(out.parent, "output folder")
    return out


def check_output_folder(path: Any, name: str = "output folder") -> Path:
    """A folder that exists or can be created, and can be written to."""
    folder = check_path(path, name)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{name} {folder} is a file, not a folder")
    check_writable_folder(folder, name)
    return folder


def check_writable_folder(folder: Path, name: str) -> None:
    """The folder, or its nearest existing ancestor (mkdir will create the rest), must be a writable folder."""
    existing = Path(os.path.abspath(folder))
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{name} {folder} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(f"{name} {folder} is not writable ({existing} is read-only for this user)")


def _show(value: Any, limit: int = 60) -> str:
    """A short description of a wrong value for a message: its repr (trimmed) and type."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type(value).__name__})"
