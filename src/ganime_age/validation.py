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
from ganime_age.errors import FaceIndexError, InvalidArgumentError, OutputPathError, echo

MAX_PATH_CHARS = 4096
"""Longer strings are not paths a user meant (Linux's PATH_MAX); refused before touching the file system."""


def check_number(value: Any, name: str, low: float, high: float, unit: str = "") -> float:
    """A real, finite number in [low, high] (a bool or a string is not a number here); `unit` for messages.

    Integers and fractions too large for a float (``10**400``) are out of range, not an OverflowError.
    """
    kind = f" ({unit})" if unit else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"{name} must be a number{kind}, not {_show(value)}")
    between = f"between {_number(low)} and {_number(high)}{' ' + unit if unit else ''}"
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError, ZeroDivisionError):
        raise InvalidArgumentError(f"{name} must be {between}, not {_huge(value)}") from None
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name} must be a finite number{kind}, not {number}")
    if not low <= number <= high:
        raise InvalidArgumentError(f"{name} must be {between}, not {_number(number)}")
    return number


def _number(number: float) -> str:
    """Short where that is exact ("150", "-5"), else every digit a float holds: "100.0000001" is not "not 100"."""
    short = f"{number:g}"
    return short if float(short) == number else repr(float(number))


def _huge(value: Any) -> str:
    """A number too large for a float, described without printing (or failing on) its thousands of digits."""
    if isinstance(value, numbers.Integral):
        digits = max(1, math.floor(int(value).bit_length() * math.log10(2)) + 1)
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits} digits"
    return f"a {type(value).__name__} too large for a float"


def check_age(age: Any, name: str = "age") -> float:
    """A target age in years, 0..MAX_AGE."""
    return check_number(age, name, 0.0, MAX_AGE, "years")


MAX_AUS_SCALE = 10.0  # a reenactment's driver AUs times this saturate at AU_MAX long before it


def check_aus_scale(scale: Any, name: str = "aus_scale") -> float:
    """How strongly a reenactment copies the driver's AUs: 0 (not at all) .. MAX_AUS_SCALE."""
    return check_number(scale, name, 0.0, MAX_AUS_SCALE)


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
        spelled: dict[str, str] = {}
        for key, value in aus.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(f"AU names must be strings such as 'AU12', not {_show(key)}")
            name = normalise_au_name(key)
            if name in spelled:  # {"AU12": 1, "au12": 4}: which one was meant? never keep the last silently
                raise InvalidArgumentError(f"{name} is given twice (as {spelled[name]!r} and {key!r}); give it once")
            spelled[name] = key
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
    return _index(face, "face")


def check_face_index(face: Any, name: str = "face") -> int:
    """One face's index, 0 = leftmost (reenactment moves one face, so None for "every face" is refused)."""
    if face is None or isinstance(face, bool) or not isinstance(face, numbers.Integral):
        raise InvalidArgumentError(f"{name} must be an integer index (0 = leftmost), not {_show(face)}")
    return _index(face, name)


MAX_FACE_INDEX_BITS = 63
"""A face index beyond a 64-bit integer (``10**400``) is no face of any photo: refused here, described by its number
of digits, where the photo's own check would have repeated all of them."""


def _index(face: numbers.Integral, name: str) -> int:
    index = int(face)
    if index.bit_length() > MAX_FACE_INDEX_BITS:
        raise FaceIndexError(
            f"{name} is {_huge(index)}; no photo has that face (faces are numbered 0, 1, ... from the left)"
        )
    return index


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


def check_output_path(path: Any, extensions: Sequence[str] | None = None) -> Path:
    """A file path that can be written: a known extension (default: any image format PIL writes), not a folder,
    not under a file, in a place that accepts new files.

    Checked before any work, so a bad ``-o`` fails in a second instead of after the whole edit.
    """
    out = check_path(path, "output path")
    example = f"edited{extensions[0] if extensions else '.png'}"
    if out.is_dir():
        raise OutputPathError(f"{out} is a folder; give a file name such as {out / example}")
    known = list(extensions) if extensions else list(image_extensions())
    if out.suffix.lower() not in known:
        common = ", ".join(e for e in (".png", ".jpg", ".webp", ".tif", ".bmp") if e in known) or ", ".join(known)
        kind = "" if extensions else " image"
        what = f"has an unknown{kind} extension {out.suffix!r}" if out.suffix else f"has no{kind} extension"
        raise OutputPathError(f"{out} {what}; use {'one of ' if len(known) > 1 else ''}{common}")
    if out.exists() and not out.is_file():
        raise OutputPathError(f"{out} exists and is not a regular file (a device, a pipe or a socket)")
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputPathError(f"{out} exists and is not writable")
    check_writable_folder(out.parent, "output folder")
    return out


def check_not_an_input(output: Path, inputs: Sequence[Any], *, overwrite: bool = False) -> None:
    """Refuse an output that is one of the input files (also through another spelling, a symlink or a hard
    link): ``edit face.jpg -o face.jpg`` would replace the user's only copy of the photo. ``overwrite`` allows it."""
    if overwrite or not output.exists():
        return
    for source in inputs:
        if not isinstance(source, (str, os.PathLike)):
            continue
        try:
            same = os.path.samefile(source, output)
        except (OSError, ValueError):  # the input does not exist (its own check will say so) or is no path
            continue
        if same:
            raise OutputPathError(
                f"the output {output} is the input photo {os.fspath(source)}; writing it would replace your "
                "original: choose another output file, or pass --overwrite to replace it"
            )


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
    _probe_new_file(existing, folder, name)


def _probe_new_file(existing: Path, folder: Path, name: str) -> None:
    """Create and remove an empty file: os.access says yes to root everywhere, yet /proc or a read-only mount
    refuse new files, which would otherwise surface after the whole edit."""
    probe = existing / f".ganime-age-write-test-{os.getpid()}"
    try:
        handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # a leftover of an earlier run with this pid: creating files there evidently works
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputPathError(f"{name} {folder} does not accept new files ({reason.lower()})") from None
    os.close(handle)
    probe.unlink(missing_ok=True)


def _show(value: Any) -> str:
    """A short description of a wrong value for a message: its repr (cut short, :func:`~ganime_age.errors.echo`)
    and type."""
    return f"{echo(value)} ({type(value).__name__})"


def check_flag(value: Any, name: str) -> bool:
    """True or False, and nothing that merely reads as one: "yes", 1, [] and NaN are refused, not judged by truth."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InvalidArgumentError(f"{name} must be true or false, not {_show(value)}")
