"""Pieces every tab shares: the photo input block, face choice, error messages, examples.

A tab is a module with ``TITLE`` and ``build_tab(editor_provider)``; it builds its own inputs
with :func:`photo_block` so each tab works on its own (the Reenactment tab needs two photos).
"""

from __future__ import annotations

import functools
import html
import logging
import math
import os
import re
import stat
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr
from gradio.data_classes import GradioModel
from pydantic import ConfigDict, RootModel, ValidationError

from ganime_age.errors import echo
from space.budget import release_memory
from space.models import DEFAULT_KEY, EditorProvider

if TYPE_CHECKING:
    from ganime_age.faces import ImageHeader

logger = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
ALL_FACES = "all"
IMAGE_HEIGHT = 440

F = TypeVar("F", bound=Callable[..., Any])


# -- errors -------------------------------------------------------------------------------------------
def _hints() -> dict[type[Exception], tuple[str, str]]:
    """(title, advice) for every typed error of the package: what went wrong and what to do about it."""
    from ganime_age import errors

    return {
        errors.NoFaceError: (
            "No face found",
            "No face found in this photo; use a photo where a face is clearly visible.",
        ),
        errors.NotAnImageError: ("Not an image", "This file is not an image (use a JPEG, PNG or WebP photo)."),
        errors.CorruptImageError: ("Damaged image", "This image file is damaged, cut short or empty; upload it again."),
        errors.ImageTooSmallError: ("Image too small", "This image is too small; use a larger photo."),
        errors.ImageTooLargeError: ("Image too large", "This image is too large; downscale it and upload it again."),
        errors.ImageNotFoundError: ("No photo", "The photo did not arrive; upload it again."),
        errors.ImageLoadError: ("Unreadable image", "This image could not be read; save it as a JPEG and try again."),
        errors.FaceIndexError: ("No such face", "That face is not in this photo; pick another one."),
        errors.TooManyFacesError: ("Too many faces", "This photo has too many faces to edit at once; crop it."),
        errors.InvalidArgumentError: ("Invalid value", "A value sent with this request is not valid."),
        errors.ConfigError: ("Invalid setting", "A setting of this Space or of its model is not valid."),
        errors.ModelOutputError: ("Model problem", "The model produced a broken image; its weights are damaged."),
        errors.UnknownRefinerError: ("Unknown model", "No refiner of that name ships here; pick one from the list."),
        errors.CorruptWeightsError: ("Model problem", "The selected model's files are damaged; pick another model."),
        errors.NewerVersionError: (
            "Model too new",
            "The selected model was written by a newer ganime-age than this Space runs; pick another model.",
        ),
        errors.WeightsError: ("Model problem", "The selected model could not be loaded; pick another model."),
        errors.ModelFileNotFoundError: ("Model file missing", "A model file this edit needs is not available."),
        errors.HubError: ("Hub unreachable", "The Hugging Face Hub could not be reached; try again later."),
        errors.VideoError: (
            "Unusable video",
            "This video cannot be used; upload an MP4, WebM or MOV video with frames.",
        ),
        errors.OutputPathError: ("Cannot save", "The result could not be saved on the server; try again later."),
        errors.BackendNotInstalledError: ("Not installed", "This Space lacks a package the chosen option needs."),
        errors.DatasetError: ("Dataset problem", "A dataset this request needs is missing or unusable."),
        errors.AnnotationError: ("Annotation problem", "An annotation file is malformed or needs an opt-in."),
        errors.GanimeAgeError: ("Cannot edit this photo", "This photo cannot be edited."),
    }


def _hint(error: Exception) -> tuple[str, str]:
    """(title, advice) of the most specific class of `error` that has one."""
    hints = _hints()
    for cls in type(error).__mro__:
        if cls in hints:
            return hints[cls]
    return "Cannot edit this photo", "This photo cannot be edited."


MAX_DETAIL = 400
"""The most characters of an error's own text a message (and its line in the server's log) repeats: the package
cuts each value a user sent to a few dozen (`ganime_age.errors.echo`); this is the net under anything else."""


def to_gradio_error(error: Exception) -> gr.Error:
    """A toast that stays until closed (a fix hint must not vanish after 10 s), also logged on the server."""
    title, advice = _hint(error)
    detail = without_server_paths(str(error).strip())
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL] + f"... ({len(detail):,} characters)"
    if not detail or detail.lower() in advice.lower():
        message = advice
    elif detail.lower().startswith(title.lower()):
        # the error says itself what the title says ("no face found in the 600x400 image; try a photo where ..."):
        # the advice in front of it said it all a second time ("No face found in this photo; use a photo where ...")
        message = detail[0].upper() + detail[1:] + ("" if detail.endswith((".", "!", "?")) else ".")
    else:
        message = f"{advice} Details: {detail}"
    return refusal(message, title)


def refusal(message: str, title: str) -> gr.Error:
    """The Space's one way to refuse a request: a toast that stays until closed, with a title, its text escaped
    (the toast renders HTML: an unescaped "<urlopen error ...>" swallowed the rest of the message, and a value a
    visitor sent must never become markup), and one line in the server's log, never a traceback."""
    logger.warning("%s: %s", title, message)
    return gr.Error(html.escape(message, quote=False), title=title, duration=None, print_exception=False)


# A path starts at a root (``/`` not inside a word or a URL, ``C:\`` or ``C:/``, ``\\server``, ``~/``) and runs to
# the last separator on its line, whatever it passes on the way (spaces, parentheses, quotes, any script): what
# follows the last separator is the file's own name, the only part a visitor needs.
SERVER_PATH = re.compile(r"""(?:(?<![\w.:/\\~-])/|(?<![\w])[A-Za-z]:[\\/]|\\\\|(?<![\w])~[\\/])[^\n]*[\\/]""")


def without_server_paths(text: str) -> str:
    """Every absolute path reduced to its file name: a visitor needs "photo.jpg", not the server's folders."""
    return SERVER_PATH.sub("", text)


def forget_failure(error: BaseException) -> None:
    """Drop what a failed request's traceback holds: its frames keep the photo's arrays alive until a garbage
    collection that may not come for a long time (a few large arrays are few allocations)."""
    traceback.clear_frames(error.__traceback__)
    error.__traceback__ = None
    for linked in (error.__cause__, error.__context__):
        if linked is not None and linked is not error:
            traceback.clear_frames(linked.__traceback__)
            linked.__traceback__ = None


def user_errors(fn: F) -> F:
    """Turn every failure into a `gr.Error` message, never a bare "Error": the package's typed errors with their
    cause and what to do, anything else (a bug) as an internal error, logged with its traceback on the server.
    The failure's frames are cleared and memory returned before the message leaves.

    Applied *inside* `gpu(...)`: ZeroGPU only passes `gr.Error` through from its worker.
    """
    from ganime_age.errors import GanimeAgeError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as error:  # already a message (an inner wrapper's, or a check of the Space's own)
            failure = error
            forget_failure(error)
        except GanimeAgeError as error:
            failure = to_gradio_error(error)
            forget_failure(error)
        except Exception as error:
            logger.exception("internal error in %s", getattr(fn, "__name__", "an event"))
            failure = gr.Error(
                f"The server failed to process this request (an internal error: {type(error).__name__}); it is "
                "logged on the server. Try again, or with another photo.",
                title="Internal error",
                duration=None,
                print_exception=False,
            )
            forget_failure(error)
        release_memory()
        raise failure  # outside the except block: the message carries no link to the failure's frames

    return wrapper  # type: ignore[return-value]


# -- photo input ---------------------------------------------------------------------------------------
@functools.cache
def _checked_payload(model: type[GradioModel], parameter: str = "photo") -> type[GradioModel]:
    """`model` (a component's payload model) answering a payload that is not file data (a bare string from an
    API call, a dict of the wrong shape) with a readable gr.Error instead of pydantic's ValidationError, a bare
    "Error" for the visitor. Gradio validates payloads before an event's function runs, so the check must live
    here; the API schema stays the one the component publishes."""

    several = issubclass(model, RootModel)  # gr.File(file_count="multiple"): a list of file data

    class Checked(model):  # type: ignore[misc, valid-type]
        model_config = ConfigDict(title=model.__name__)

        @classmethod
        def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            # before pydantic: a gr.Error is a ValueError, which a pydantic validator would wrap
            if not isinstance(obj, (dict, model)) and not (several and isinstance(obj, list)):
                _not_a_photo(obj, parameter)
            if several and isinstance(obj, list) and not all(isinstance(item, dict) for item in obj):
                _not_a_photo(obj, parameter)
            try:
                return super().model_validate(obj, *args, **kwargs)
            except ValidationError:
                return _not_a_photo(obj, parameter)

    Checked.__name__ = Checked.__qualname__ = f"Uploaded{model.__name__}"
    return Checked


C = TypeVar("C", bound=gr.components.Component)
UPLOAD_PARAMETER = "ganime_age_parameter"  # the attribute naming an upload component's API parameter
# the attribute of an input added to an endpoint after its first version, last among its inputs: an HTTP request
# written before may leave it out, and it is None (space.app.count_the_values)
OPTIONAL_INPUT = "ganime_age_optional"


def uploaded_input(component: C, parameter: str = "photo") -> C:
    """An upload component (gr.Image, gr.Video) whose payloads are checked by :func:`_checked_payload` and
    :func:`guard_uploads`, every refusal naming `parameter` (the API's name of the event's argument). (Set on the
    instance: a component subclass outside gradio makes gradio write a .pyi stub next to this module.)"""
    component.data_model = _checked_payload(component.data_model, parameter)
    setattr(component, UPLOAD_PARAMETER, parameter)
    guard_uploads()
    return component


def photo_input(parameter: str = "photo", **options: Any) -> gr.Image:
    """gr.Image for photos visitors send, with the payload check of :func:`uploaded_input`."""
    return uploaded_input(gr.Image(**options), parameter)


def guard_uploads() -> None:
    """Check what an API call sends for an upload component before gradio acts on it, and refuse it naming the
    parameter. Gradio moves a payload's files into its cache before the event (or the payload's model) sees
    them: it would download a URL from the server (a photo sent as a URL is refused anyway), and a NUL byte, a
    path of 10,000 characters or one outside its upload folder failed there as a bare ValueError or OSError
    with its traceback in the log. Gradio's own video payload of older clients, ``{"video": FileData,
    "subtitles": null}``, is taken as the file data it holds. Components without :data:`UPLOAD_PARAMETER`, and
    outputs, are left to gradio."""
    from gradio import processing_utils

    original = processing_utils.async_move_files_to_cache
    if getattr(original, "guards_uploads", False):
        return

    async def async_move_files_to_cache(data: Any, block: Any, postprocess: bool = False, **kwargs: Any) -> Any:
        parameter = getattr(block, UPLOAD_PARAMETER, None)
        if parameter is None or postprocess:
            return await original(data, block, postprocess, **kwargs)
        if isinstance(block, gr.Video) and isinstance(data, dict) and "path" not in data and "video" in data:
            data = data["video"]  # gradio's VideoData: {"video": FileData, "subtitles": FileData | None}
        if isinstance(data, dict) and not _usable_path(data.get("path")):
            _not_a_photo(data, parameter)
        if isinstance(data, list) and not all(isinstance(d, dict) and _usable_path(d.get("path")) for d in data):
            _not_a_photo(data, parameter)  # gr.File(file_count="multiple"): each file data as one alone
        try:
            return await original(data, block, postprocess, **kwargs)
        except gr.Error:
            raise
        except Exception:  # gradio's InvalidPathError, an OSError of a path it could not resolve, ...
            pass
        return _not_a_photo(data, parameter)  # outside the except block: no link to gradio's failure

    async_move_files_to_cache.guards_uploads = True  # type: ignore[attr-defined]
    processing_utils.async_move_files_to_cache = async_move_files_to_cache


def _usable_path(path: Any) -> bool:
    """Whether `path` could name a stored upload at all (absent or empty: an empty input, checked later)."""
    if path is None or path == "":
        return True
    return (
        isinstance(path, str)
        and len(path) <= MAX_PAYLOAD_PATH
        and "\x00" not in path
        and "://" not in path  # a URL: the Space takes uploads, and does not fetch what a request names
    )


def photo_path(payload: Any, parameter: str = "photo") -> str | None:
    """The uploaded file's path from an un-preprocessed gr.Image payload (dict), a path, or None.

    Events run with ``preprocess=False`` so the photo is decoded once, by `ganime_age.faces.load_image`,
    which gives typed errors (not an image, too large, ...) and honours EXIF orientation.

    A payload is only a way to name a file gradio stored for this server (an upload, a cached example) or a
    shipped example: gradio checks the upload folder only for file data with its ``meta`` key, so a raw API
    call sending ``{"path": "/etc/shadow"}`` reached this function with any server path. Every other path is
    refused with one message (:func:`not_uploaded`, naming `parameter`) that does not tell whether it exists, is
    a folder or a text file: the Space is no oracle of the server's files.
    """
    if payload is None:
        return None
    if isinstance(payload, dict):
        path = payload.get("path")
        if path is None or path == "":
            return None  # an empty (cleared) photo input
    else:
        path = payload
    if not isinstance(path, (str, Path)):
        return _not_a_photo(payload, parameter)
    served = _served_file(path)
    return served if served is not None else _not_a_photo(payload, parameter)


# each upload parameter of the API: (what it is, an example file name)
UPLOADS = {
    "photo": ("photo", "photo.jpg"),
    "driving": ("driving photo", "driver.jpg"),
    "video": ("driving video", "driver.mp4"),
    "own_photos": ("photo at another age", "me_at_6.jpg"),
}


def not_uploaded(parameter: str = "photo") -> str:
    """The one answer to every payload of `parameter` that is not a stored upload, naming the parameter."""
    what, example = UPLOADS.get(parameter, ("file", "file"))
    return (
        f"The {what} (parameter '{parameter}') did not arrive as an uploaded file; upload it again (with "
        f"gradio_client send handle_file('{example}'), over HTTP upload it first and send the file data gradio "
        "returns)."
    )


NOT_UPLOADED = not_uploaded("photo")
MAX_PAYLOAD_PATH = 4096


def _served_file(path: str | Path) -> str | None:
    """The real path of a regular file that gradio stored for this server, or of a shipped example; else None.

    Stored means: inside gradio's upload folder once every symlink is resolved, *and* uploaded through this
    app's /upload or the cached copy of a shipped example (a photo sent as a URL is refused too). A folder,
    a device (``/dev/zero``), a FIFO or a socket is never a photo: they are refused before anything opens them.
    """
    text = os.fspath(path)
    if not text or len(text) > MAX_PAYLOAD_PATH or "\x00" in text:
        return None
    try:
        real = os.path.realpath(text)
        if not stat.S_ISREG(os.stat(real).st_mode):
            return None
    except (OSError, ValueError):
        return None
    if _inside(real, EXAMPLES_DIR):
        return real
    from gradio.utils import get_upload_folder

    upload_folder = os.path.realpath(get_upload_folder())
    if _inside(real, upload_folder) and _stored_by_gradio(text, real, upload_folder):
        return real
    return None


def _inside(real: str, folder: str | Path) -> bool:
    root = os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def _stored_by_gradio(text: str, real: str, upload_folder: str) -> bool:
    """Whether gradio stored this file for the running app: a visitor's upload (gradio's /upload registry) or
    the cached copy of a shipped example. Not "any file in the cache": gradio registers every cache path a
    request names as the component's temp file, so that set proves nothing. Outside an event nothing counts."""
    from gradio.context import LocalContext

    blocks = LocalContext.blocks.get(None)
    if blocks is None:
        return False
    uploads = getattr(blocks, "upload_file_set", set())
    # membership tests only: other requests add to the set meanwhile, and iterating it could fail
    if any(name in uploads for name in (text, os.path.abspath(text), real)):
        return True
    return real in _example_copies(upload_folder)


@functools.lru_cache(maxsize=4)
def _example_copies(upload_folder: str) -> frozenset[str]:
    """Where gradio caches the shipped examples (gr.Examples copies each to ``<cache>/<content hash>/<name>``)."""
    from gradio.processing_utils import hash_file
    from gradio_client.utils import strip_invalid_filename_characters

    return frozenset(
        os.path.realpath(os.path.join(upload_folder, hash_file(p), strip_invalid_filename_characters(p.name)))
        for p in sorted(EXAMPLES_DIR.rglob("*"))
        if p.is_file()
    )


def _not_a_photo(payload: Any, parameter: str = "photo") -> Any:
    """The one answer to every payload that is not a stored upload: a wrong type or any other path alike (and
    one line in the log, with the value cut short: never the path a visitor may have sent in full)."""
    sent = payload.get("path") if isinstance(payload, dict) else payload
    logger.info("refused the %s parameter: %s is no stored upload", parameter, echo(sent))
    raise gr.Error(not_uploaded(parameter), title=f"No {UPLOADS.get(parameter, ('file',))[0]}", print_exception=False)


def require_photo(payload: Any) -> str:
    path = photo_path(payload)
    if path is None:
        raise gr.Error("Upload a photo or pick an example first.", title="No photo", print_exception=False)
    return path


@contextmanager
def admitted(provider: EditorProvider, task: str, *paths: str, extra_pixels: int = 0) -> Iterator[list[ImageHeader]]:
    """Read the photos' headers (refusing, before a pixel is decoded, what exceeds the Space's pixel limit or is
    damaged, cut short or no image), then hold the memory a `task` request on their pixels needs while the block
    runs (waiting for it, or refusing with a message: :class:`space.budget.MemoryBudget`)."""
    from ganime_age.faces import read_image_header

    budget = provider.budget
    headers = [read_image_header(path, max_pixels=budget.max_pixels) for path in paths]
    with budget.admit(task, sum(h.pixels for h in headers) + extra_pixels):
        yield headers


# One face numbering everywhere (the Space's labels and summaries, its API, the CLI's --face, Python's face=):
# 0-based, left to right. The README's "Face numbering" section is the one place that documents it.
FACE_NUMBERING_URL = "https://github.com/ganime-age/ganime-age#face-numbering"
FACE_NUMBERING = "Faces are numbered from 0, left to right: face 0 is the leftmost."
FACE_LABEL = re.compile(r"face\s+(\d+)\b", re.IGNORECASE)  # "Face 1" or "Face 0 (leftmost)" -> its index
MAX_FACE_DIGITS = 6  # a face index longer than this is no face of any photo (at most max_faces, 32 by default)


def parse_face(value: Any) -> int | None:
    """Face selector -> face index (0-based, left to right), or None for every face.

    Takes the dropdown's values ("all", "0", "1", ...) and, for HTTP API callers who copy what the UI
    shows, its labels ("All faces", "All 6 faces", "Face 0 (the only face)", "Face 0 (leftmost)", "Face 1"). An
    index of more than :data:`MAX_FACE_DIGITS` digits is refused with a short message, never repeated whole.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        # str() of 10**5000 fails, and the digits are not to be written out anyway
        raise _no_such_face(int(value.bit_length() * math.log10(2)) + 1)
    text = "" if value is None else str(value).strip()
    if text == "" or text.lower() == ALL_FACES or text.lower().startswith("all "):
        return None
    if text.lower() == "the face":  # the one face's label before "Face 0 (the only face)"
        return 0
    label = FACE_LABEL.match(text)
    digits = (label.group(1) if label is not None else text.lstrip("+-")).lstrip("0")
    if digits.isdecimal() and len(digits) > MAX_FACE_DIGITS:
        # no photo has a millionth face: refused here, short, before a 401-digit index reaches a message or the log
        raise _no_such_face(len(digits))
    if label is not None:
        return int(label.group(1))
    try:
        return int(text)
    except ValueError:
        raise refusal(
            f"Unknown face choice {echo(value)}: use 'all', a 0-based index ('0' = leftmost), "
            "or a label such as 'All faces' or 'Face 0 (leftmost)'.",
            "Unknown face choice",
        ) from None


def _no_such_face(digits: int) -> gr.Error:
    return refusal(
        f"No photo has a face numbered with {digits:,} digits: faces are numbered 0, 1, 2, ... from the left; "
        "use one of them or 'all'.",
        "No such face",
    )


def single_face(editor: Any, path: str, face: int | None, task: str) -> int:
    """For edits of one face at a time: "all" (None) means the face of a one-face photo, never silently the
    leftmost of several."""
    if face is not None:
        return face
    count = len(editor.analyze(path))
    if count == 1:
        return 0
    raise gr.Error(
        f"{task} works on one face at a time and this photo has {count} faces: choose one "
        f"(0 = leftmost … {count - 1} = rightmost).",
        title="Choose a face",
        print_exception=False,
    )


def face_label(index: int, count: int) -> str:
    """'Face 0 (leftmost)', 'Face 1', ..., 'Face 2 (rightmost)': the number every summary and the CLI use; a photo's
    one face is 'Face 0 (the only face)'."""
    if count == 1:
        return "Face 0 (the only face)"
    where = " (leftmost)" if index == 0 else " (rightmost)" if index == count - 1 else ""
    return f"Face {index}{where}"


def face_choices(count: int, *, allow_all: bool = True) -> list[tuple[str, str]]:
    """Choices for the face selector: every face (unless a tab edits one face at a time), or one of them."""
    if count <= 1:
        return [(face_label(0, 1), "0")] if count == 1 else [("All faces", ALL_FACES)]
    every = [(f"All {count} faces", ALL_FACES)] if allow_all else []
    return every + [(face_label(i, count), str(i)) for i in range(count)]


def face_update(count: int, *, allow_all: bool = True) -> dict[str, Any]:
    """The face selector after an analysis: every face selected (or, where one face at a time, the leftmost)."""
    choices = face_choices(count, allow_all=allow_all)
    return gr.update(choices=choices, value=choices[0][1], interactive=count > 1)


def example_photos() -> list[str]:
    """The shipped example photos (public domain / CC0 sources, see space/examples/README.md)."""
    return [str(p) for p in sorted(EXAMPLES_DIR.glob("*.jpg"))]


def describe_age_change(edit: Any, *, given: bool = False) -> str:
    """One edited face (editing.FaceEdit) for a summary: "face 0: estimated **34** → **70** years" ("given" where
    the user corrected the current age)."""
    target = f"**{edit.target_age:.0f}** years"
    if edit.source_age is None:  # only without an age estimator
        return f"face {edit.index}: → {target}"
    return f"face {edit.index}: {'given' if given else 'estimated'} **{edit.source_age:.0f}** → {target}"


def describe_au_changes(edit: Any, names: Sequence[str]) -> str:
    """The AUs `names` of one edited face, measured → set: "AU12 0.4 → 3.0, AU06 0.0 → 2.5"."""
    from ganime_age.conditions import AU_NAMES

    return ", ".join(
        f"{n} {edit.source_aus[AU_NAMES.index(n)]:.1f} → {edit.target_aus[AU_NAMES.index(n)]:.1f}" for n in names
    )


def describe_ages(ages: Sequence[float | None]) -> str:
    if not ages:
        return ""
    if all(a is None for a in ages):
        return "Estimated age: not available (no age estimator is loaded)."
    parts = [f"face {i}: **{a:.0f}**" if a is not None else f"face {i}: ?" for i, a in enumerate(ages)]
    if len(parts) == 1:
        return f"Estimated age: **{ages[0]:.0f}** years." if ages[0] is not None else parts[0]
    return "Estimated ages (face 0 = leftmost): " + ", ".join(parts) + "."


def estimated_ages(editor: Any, path: str, count: int) -> list[float | None]:
    """Each face's estimated age, or None when the editor has no age estimator."""
    if getattr(editor, "age_estimator", None) is None:
        return [None] * count
    return editor.estimate_age(path)


# Where the age estimate is worth a second look (issue 54: a child labelled 3-9 was read as 0.4 years, and the edit
# started from there). On 60 UTKFace adults the two networks' calibrated readings were 15 years or more apart on
# 1 in 6, the faces they misread the most (a 36-year-old read as 73, a 77-year-old as 29; the shipped astronaut
# reads 30 and 50, both networks with a wide spread); under 2 years both
# networks read half of 40 UTKFace children of 3-9 (their training photos have few toddlers).
DOUBTFUL_GAP = 15.0  # years between the two networks' readings
DOUBTFUL_BELOW = 2.0  # years: an estimate under this is a baby's, or a child's misread
# A network that reads a face both as a child's (under CHILD_END) and as a grown person's (over GROWN_FROM), each with
# DOUBTFUL_SPLIT of its reading or more, may have taken a grown face for a child's, and an edit from a child's age
# grows the face: CFEE's woman of about 60 that both networks read as about 10 (Cydral's network: 83% under 12, 15%
# over 25) came out of an edit to 75 a broad old man. Said of an estimate under CHILD_END only (a young adult read
# as 20 is often read a little as a child too). Of 500 held-out UTKFace faces estimated under 18, two read so (a
# 26-year-old estimated 17, a 3-year-old 8), of CFEE's 101 people two (she, and a young adult estimated 18).
DOUBTFUL_SPLIT = 0.1
CHILD_END, GROWN_FROM = 12.0, 25.0


def age_doubt(age: float | None, readings: Sequence[float], split: tuple[float, float] | None = None) -> str:
    """Why a face's estimate is unsure ("" where it is not): the networks disagree widely, it reads under 2, or a
    child's estimate (under CHILD_END) comes from a network that also reads a grown face (`split`: its shares under
    CHILD_END and over GROWN_FROM, :func:`split_reading`)."""
    if age is None:
        return ""
    shown = " and ".join(f"{r:.0f}" for r in readings)
    if len(readings) > 1 and max(readings) - min(readings) >= DOUBTFUL_GAP:
        return f"the two age networks disagree ({shown} years)"
    if age < DOUBTFUL_BELOW:
        return f"it reads under {DOUBTFUL_BELOW:.0f} years, where the age networks often misread a child"
    if split is not None and age < CHILD_END and min(split) >= DOUBTFUL_SPLIT:
        child, grown = split
        return (
            f"an age network reads this face as a child's ({child:.0%} of its reading) and as a grown person's "
            f"({grown:.0%}); an edit from a child's age grows the face"
        )
    return ""


def split_reading(estimators: Sequence[Any], rgb: Any, face: Any) -> tuple[float, float] | None:
    """The (child, grown) shares of the reading of whichever network reads the face most both ways (the larger
    smaller share), or None without a network."""
    return distributions_split([estimator.face_probabilities(rgb, face) for estimator in estimators])


def distributions_split(distributions: Sequence[tuple[Any, Any]]) -> tuple[float, float] | None:
    """:func:`split_reading` of the networks' distributions over ages (``face_probabilities``), already read."""
    splits = [
        (float(probabilities[ages < CHILD_END].sum()), float(probabilities[ages > GROWN_FROM].sum()))
        for probabilities, ages in distributions
    ]
    return max(splits, key=min, default=None)


def age_doubts(editor: Any, path: str, ages: Sequence[float | None]) -> list[str]:
    """Each face's :func:`age_doubt`, from every age network's own calibrated reading of it."""
    from ganime_age.editing.ages import calibrated_readings

    estimators = list(getattr(editor, "age_estimators", []) or [])
    if not estimators:
        return [""] * len(ages)
    session = editor.session(path)
    doubts = []
    for age, face in zip(ages, session.faces, strict=True):
        distributions = [estimator.face_probabilities(session.rgb, face) for estimator in estimators]  # run once
        readings = calibrated_readings(estimators, session.rgb, face, distributions)
        doubts.append(age_doubt(age, [r.age for r in readings], distributions_split(distributions)))
    return doubts


def describe_doubt(doubt: str, face: int | None = None) -> str:
    """The note next to an unsure estimate, inviting a correction."""
    if not doubt:
        return ""
    if face is None:
        return f"⚠️ This estimate is unsure: {doubt}. If you know the age, type it here."
    return f"⚠️ Face {face}'s estimate is unsure: {doubt}. If you know its age, choose face {face} and type it here."


# -- refusals said once ------------------------------------------------------------------------------------
REPEATED_SECONDS = 5.0


class PhotoRefusals:
    """A refused photo's message, said once per visitor: gradio's Image fires its ``change`` event twice when a photo
    replaces another, so one upload of a photo without a face was analysed twice and showed two toasts.

    An analysis of the UI returns the outputs cleared and the refusal (:meth:`refused`, into a gr.State) instead of
    raising, so the previous photo's results do not stay on screen under red "Error" badges; :meth:`say`, chained
    after it with no outputs, raises the refusal as the toast, and the same refusal of the same visitor's photo
    again within a few seconds silently (it stops the chain all the same)."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._said: dict[tuple[str, str, str], float] = {}

    @staticmethod
    def refused(error: gr.Error, photo: Any) -> dict[str, Any]:
        path = photo.get("path") if isinstance(photo, dict) else photo
        return {"message": error.message, "title": error.title, "photo": str(path)[:MAX_PAYLOAD_PATH]}

    def say(self, refused: dict[str, Any] | None, request: gr.Request | None = None) -> None:
        if not refused:
            return
        import time

        key = (getattr(request, "session_hash", None) or "", refused["photo"], refused["message"])
        now = time.monotonic()
        with self._lock:
            self._said = {k: t for k, t in self._said.items() if now - t < REPEATED_SECONDS}
            repeated = key in self._said
            self._said[key] = now
        # message already escaped (space.common.refusal)
        raise gr.Error(
            refused["message"], title=refused["title"], duration=None, visible=not repeated, print_exception=False
        )


PHOTO_REFUSALS = PhotoRefusals()


def model_warning(editor: Any) -> str:
    from ganime_age.editing import is_untrained_default

    if is_untrained_default(editor.engine):
        return (
            "\n\n⚠️ The edit engine's tables are missing from this install, so edits return the photo unchanged. "
            "Set `GANIME_AGE_MODEL` to an editor (or a fitted engine) folder or Hub id."
        )
    return ""


def show_on_page_load(components: Sequence[gr.components.Component], values: Sequence[Any]) -> None:
    """Show `values` in `components` as the page loads, by a script in the browser (no request), where their own
    value must stay another: None, the API's default, which gradio draws as 0 in a gr.Number and as the maximum in
    a gr.Slider. JSON values; None shows an empty field."""
    import json

    from gradio.context import Context

    if Context.root_block is not None:
        script = f"() => {json.dumps(list(values))}"
        Context.root_block.load(None, None, list(components), js=script, api_visibility="private", queue=False)


def api_slider(minimum: float, maximum: float, *, value: float | None, unset: str = "", **options: Any) -> gr.Slider:
    """gr.Slider whose range shows in gradio_client's ``view_api()`` listing (gradio puts it only in the JSON
    schema). ``value=None`` stays None, the API's default (``unset`` says what it means): gr.Slider would
    turn it into ``minimum``. (Set on the instance, like `photo_input`'s payload check.)"""
    slider = gr.Slider(minimum, maximum, value=value, **options)
    described = {**slider.api_info(), "additional_description": f"{minimum:g} to {maximum:g}" + unset}
    slider.api_info = lambda: described  # type: ignore[method-assign]
    if value is None:
        slider.value = None
    return slider


FACE_API_INFO = {
    "type": "string",
    "additional_description": "'all' (every face), or a 0-based face index as a string ('0' = leftmost), "
    "or a label such as 'Face 1'",
}


def face_input(**options: Any) -> gr.Dropdown:
    """The face selector: its choices are the faces found once a photo is analysed. Its API type is a string
    (:data:`FACE_API_INFO`), not gr.Dropdown's enum of today's choices, which ``view_api()`` listed as
    ``Literal['all']`` although "0", "1", ... are accepted (:func:`parse_face`). (Set on the instance, like
    `api_slider`'s range.)"""
    face = gr.Dropdown(
        choices=face_choices(0),
        value=ALL_FACES,
        label="Which face",
        info="Numbered from 0, left to right.",
        interactive=False,
        **options,
    )
    face.api_info = lambda: dict(FACE_API_INFO)  # type: ignore[method-assign]
    return face


# -- the shared input block ----------------------------------------------------------------------------
@dataclass
class PhotoBlock:
    photo: gr.Image
    face: gr.Dropdown
    model: gr.Dropdown
    info: gr.Markdown


def photo_block(
    provider: EditorProvider, *, prefix: str, label: str = "Photo", under_photo: Callable[[], Any] | None = None
) -> PhotoBlock:
    """Photo upload + examples + face selector + model selector (+ an info line under them). `under_photo` builds
    a tab's own controls right under the photo, above the examples (the Age tab's sliders: in sight on a laptop)."""
    photo = photo_input(
        label=label,
        type="filepath",
        sources=["upload", "webcam", "clipboard"],
        height=IMAGE_HEIGHT,
        elem_id=f"{prefix}-photo",
    )
    if under_photo is not None:
        under_photo()
    examples = example_photos()
    if examples:
        gr.Examples(
            examples=[[p] for p in examples],
            inputs=[photo],
            label="Example photos (public domain)",
            examples_per_page=8,
        )
    models = provider.choices()
    face = face_input(elem_id=f"{prefix}-face")
    # a row of its own: the column's whole width shows the longest label ("engine + agetransgan-mi (no better, ...)")
    model = gr.Dropdown(
        choices=[(m.label, m.key) for m in models],
        value=models[0].key if models else DEFAULT_KEY,
        label="Model",
        info="A refiner adds a trained network's change to the engine's edit; Table I finds none better than the "
        "engine alone. A refiner loads when first picked and adds 1-2 s to each edit.",
        visible=len(models) > 1,
        elem_id=f"{prefix}-model",
    )
    info = gr.Markdown("", elem_id=f"{prefix}-info")
    return PhotoBlock(photo, face, model, info)
