"""Typed errors: every user mistake the package can detect has its own class and a clear message."""

from __future__ import annotations

import math
import reprlib
import sys
from collections.abc import Callable
from typing import Any

ECHO_CHARS = 40
"""The most characters of a value a user sent that a message repeats: enough to recognise it, never the whole of a
megabyte string (which would make a megabyte answer and a megabyte line in a server's log)."""


class GanimeAgeError(Exception):
    """Base class of every error this package raises on purpose."""


class ImageLoadError(GanimeAgeError, ValueError):
    """The input could not be read as a photo."""


class NotAnImageError(ImageLoadError):
    """The file or bytes are not an image format we can decode."""


class CorruptImageError(ImageLoadError):
    """The file looks like an image but its data is truncated or damaged (or empty)."""


class ImageTooSmallError(ImageLoadError):
    """The image is smaller than the minimum side length a face edit needs."""


class ImageTooLargeError(ImageLoadError):
    """The image exceeds the pixel budget (decompression-bomb guard)."""


class ImageNotFoundError(ImageLoadError, FileNotFoundError):
    """The image path does not exist (or cannot be used as a path at all, e.g. a name too long)."""


class NoFaceError(GanimeAgeError):
    """No face was found in the image."""


class FaceIndexError(GanimeAgeError, IndexError):
    """A face index was asked for that the photo does not have."""


class TooManyFacesError(GanimeAgeError):
    """The photo has more faces than the editor's ``max_faces`` cap (each face costs landmarking and a generator run)."""


class WeightsError(GanimeAgeError):
    """A weights file is missing, not safetensors, or does not match the model's tensors."""


class UnknownRefinerError(WeightsError):
    """A refiner was named by a word that is no shipped refiner's name (nor a folder or Hub id); the message lists
    the names there are."""


class CorruptWeightsError(WeightsError):
    """The weights load but cannot be right: a checksum mismatch, NaN/Inf values, an all-zero layer, a wrong dtype."""


class ModelOutputError(WeightsError):
    """The model produced NaN or infinite pixels: its weights (or the device's arithmetic) are broken."""


class HubError(GanimeAgeError, OSError):
    """The Hugging Face Hub could not be reached, or refused a download or an upload (no network, no permission)."""


class ModelFileNotFoundError(GanimeAgeError, FileNotFoundError):
    """A required model file (detector, landmarker, recognizer) is not available locally or online."""


class VideoError(GanimeAgeError):
    """A video could not be read or has no frames."""


class DatasetError(GanimeAgeError):
    """A dataset folder, label file or prepared dataset is missing or unusable."""


class AnnotationError(GanimeAgeError, ValueError):
    """An annotation file (OpenFace CSV, GANimation AU pickle) is malformed, lacks columns, or needs an opt-in."""


class ConfigError(GanimeAgeError, ValueError):
    """An option or config file value is invalid (unknown choice, out-of-range number, bad format)."""


class InvalidArgumentError(ConfigError, TypeError):
    """An argument of an edit (age, AUs, face, output path) has the wrong type or lies outside the model's domain.

    Also a ``TypeError``, so code that caught the built-in errors these cases used to raise keeps working.
    """


class OutputPathError(GanimeAgeError, OSError):
    """The output path cannot be written: unknown image extension, a folder, a missing or read-only place, a full disk."""


class BackendNotInstalledError(GanimeAgeError, ImportError):
    """An optional backend (e.g. InsightFace) was asked for but its packages are not installed."""


class NewerVersionError(WeightsError):
    """An editor folder (``editor.json``) or a model (its ``config.json``) was written by a newer major version of
    ganime-age than the one running."""


_REPR = reprlib.Repr()  # a list of a million items is not walked: a few items of a few levels
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring = _REPR.maxother = ECHO_CHARS


def echo(value: Any, limit: int = ECHO_CHARS) -> str:
    """A value a user sent, as an error message repeats it: its repr (quotes, newlines and control characters
    escaped), cut to about `limit` characters with the full length said where it was cut. An integer too long to
    print (``10**5000``) is described by its number of digits. Markup is not escaped here (a terminal shows it as
    text); a web page escapes the whole message (the Space does)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, (str, bytes)):
        text = repr(value[:limit])  # never the repr of the whole value: it may be a megabyte
        if len(text) > limit + 2:  # escapes count too ("\x00" is four characters)
            text = text[: limit + 2]
        elif len(value) <= limit:
            return text
        return f"{text}... ({len(value):,} {'characters' if isinstance(value, str) else 'bytes'})"
    try:
        text = _REPR.repr(value)
    except Exception:  # a repr that fails (or an object that lies about itself): its type is enough
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit + 3 else text[:limit] + "..."


def exit_status(
    command: Callable[[], int], *, prog: str, also: tuple[type[Exception], ...] = (), debug: bool = False
) -> int:
    """Run a command-line entry point: a typed user error (or one of `also`) becomes one line on stderr
    and exit status 2, never a traceback (``debug`` re-raises it to show one); anything else is a bug and
    keeps its traceback."""
    try:
        return command()
    except (GanimeAgeError, *also) as error:
        if debug:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2


class TurnBeyondReachWarning(UserWarning):
    """A driving face turned further from the photo's head than a photo's head can be turned: it is followed as far
    as it can be (the rest of the turn would show a side of the head the photo never saw)."""
