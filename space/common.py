"""Pieces every tab shares: the photo input block, face choice, error messages, examples.

A tab is a module with ``TITLE`` and ``build_tab(editor_provider)``; it builds its own inputs
with :func:`photo_block` so each tab works on its own (the Reenactment tab needs two photos).
"""

from __future__ import annotations

import functools
import html
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
from gradio.data_classes import ImageData
from PIL import Image
from pydantic import ConfigDict

from space.models import DEFAULT_KEY, EditorProvider

logger = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
ALL_FACES = "all"
IMAGE_HEIGHT = 440

F = TypeVar("F", bound=Callable[..., Any])


# -- errors -------------------------------------------------------------------------------------------
def _hint(error: Exception) -> tuple[str, str]:
    """(title, advice) for each kind of user mistake; the error's own text follows the advice."""
    from ganime_age import errors

    table: list[tuple[type[Exception], str, str]] = [
        (errors.NoFaceError, "No face found", "No face found in this photo."),
        (errors.NotAnImageError, "Not an image", "This file is not an image (use a JPEG, PNG or WebP photo)."),
        (errors.CorruptImageError, "Damaged image", "This image file is damaged or empty."),
        (errors.ImageTooSmallError, "Image too small", "This image is too small."),
        (errors.ImageTooLargeError, "Image too large", "This image is too large; please make it smaller."),
        (errors.FaceIndexError, "No such face", "That face is not in this photo; pick another one."),
        (errors.TooManyFacesError, "Too many faces", "This photo has too many faces to edit at once; crop it."),
        (errors.ImageNotFoundError, "No photo", "The photo did not arrive; upload it again."),
        (errors.InvalidArgumentError, "Invalid value", "A value sent with this request is not valid."),
        (errors.ModelOutputError, "Model problem", "The model produced a broken image; its weights are damaged."),
        (errors.WeightsError, "Model problem", "The selected model could not be loaded."),
        (errors.ModelFileNotFoundError, "Model file missing", "A model file this edit needs is not available."),
    ]
    for cls, title, advice in table:
        if isinstance(error, cls):
            return title, advice
    return "Cannot edit this photo", "This photo cannot be edited."


def to_gradio_error(error: Exception) -> gr.Error:
    """A toast that stays until closed (a fix hint must not vanish after 10 s), also logged on the server."""
    title, advice = _hint(error)
    detail = without_server_paths(str(error).strip())
    message = f"{advice} Details: {detail}" if detail and detail.lower() not in advice.lower() else advice
    logger.warning("%s: %s", title, message)
    # the toast renders HTML: an unescaped "<urlopen error ...>" swallowed the rest of the message
    return gr.Error(html.escape(message, quote=False), title=title, duration=None, print_exception=False)


SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"<>()]+/)+([^\s/'\"<>()]+)")


def without_server_paths(text: str) -> str:
    """Absolute paths reduced to their file name: a visitor needs "photo.jpg", not the server's upload folders."""
    return SERVER_PATH.sub(r"\1", text)


def user_errors(fn: F) -> F:
    """Turn the package's typed errors (user mistakes) into `gr.Error` messages, never stack traces.

    Applied *inside* `gpu(...)`: ZeroGPU only passes `gr.Error` through from its worker.
    """
    from ganime_age.errors import GanimeAgeError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GanimeAgeError as error:
            raise to_gradio_error(error) from None

    return wrapper  # type: ignore[return-value]


# -- photo input ---------------------------------------------------------------------------------------
class UploadedImageData(ImageData):
    """gr.Image's payload model, answering a photo sent as anything but file data (e.g. a bare string from
    an API call) with a readable gr.Error instead of pydantic's ValidationError, a bare "Error" for the
    visitor. Gradio validates payloads before an event's function runs, so the check must live here."""

    model_config = ConfigDict(title="ImageData")  # the API schema stays the one gr.Image publishes

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        # before pydantic: a gr.Error is a ValueError, which a pydantic validator would wrap in a ValidationError
        if not isinstance(obj, (dict, ImageData)):
            _not_a_photo(obj)
        return super().model_validate(obj, *args, **kwargs)


def photo_input(**options: Any) -> gr.Image:
    """gr.Image for photos visitors send, with the payload check of UploadedImageData. (Set on the instance:
    a gr.Image subclass outside gradio makes gradio write a .pyi stub next to this module.)"""
    image = gr.Image(**options)
    image.data_model = UploadedImageData
    return image


def photo_path(payload: Any) -> str | None:
    """The uploaded file's path from an un-preprocessed gr.Image payload (dict), a path, or None.

    Events run with ``preprocess=False`` so the photo is decoded once, by `ganime_age.faces.load_image`,
    which gives typed errors (not an image, too large, ...) and honours EXIF orientation.
    """
    if payload is None:
        return None
    if isinstance(payload, dict):  # FileData: gradio has checked that the file is one it received
        path = payload.get("path") or None
        return str(path) if isinstance(path, (str, Path)) or path is None else _not_a_photo(path)
    if isinstance(payload, (str, Path)) and _served_file(payload):
        return str(payload)
    return _not_a_photo(payload)


def _served_file(path: str | Path) -> bool:
    """A bare path from an API call is only used if it names a shipped example or a file gradio received:
    a string is never a way to read other files of the server."""
    from gradio.utils import get_upload_folder

    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in (EXAMPLES_DIR, get_upload_folder()))


def _not_a_photo(payload: Any) -> Any:
    kind = "a text string" if isinstance(payload, (str, Path)) else f"a {type(payload).__name__}"
    raise gr.Error(
        f"The photo arrived as {kind}, not as an uploaded file; with gradio_client send "
        "handle_file('photo.jpg'), over HTTP upload it first and send its file data.",
        title="No photo",
        print_exception=False,
    )


def require_photo(payload: Any) -> str:
    path = photo_path(payload)
    if path is None:
        raise gr.Error("Upload a photo or pick an example first.", title="No photo", print_exception=False)
    return path


@user_errors
def load_photo(path: str) -> Image.Image:
    """Decode and validate before asking for a GPU, so bad files never cost GPU time."""
    from ganime_age.faces import load_image

    return Image.fromarray(load_image(path))


FACE_LABEL = re.compile(r"face\s+(\d+)\b", re.IGNORECASE)  # "Face 2 (from the left)" -> 2 (1-based)


def parse_face(value: Any) -> int | None:
    """Face selector -> face index (0-based), or None for every face.

    Takes the dropdown's values ("all", "0", "1", ...) and, for HTTP API callers who copy what the UI
    shows, its labels ("All faces", "All 6 faces", "The face", "Face 2 (from the left)").
    """
    text = "" if value is None else str(value).strip()
    if text == "" or text.lower() == ALL_FACES or text.lower().startswith("all "):
        return None
    if text.lower() == "the face":
        return 0
    label = FACE_LABEL.match(text)
    if label is not None:
        return int(label.group(1)) - 1
    try:
        return int(text)
    except ValueError:
        raise gr.Error(
            f"Unknown face choice {value!r}: use 'all', a 0-based index ('0' = leftmost), "
            "or a label such as 'All faces' or 'Face 1'.",
            print_exception=False,
        ) from None


def face_choices(count: int) -> list[tuple[str, str]]:
    """Choices for the face selector: every face, or one of them (numbered left to right)."""
    if count <= 1:
        return [("The face", "0")] if count == 1 else [("All faces", ALL_FACES)]
    return [(f"All {count} faces", ALL_FACES)] + [(f"Face {i + 1} (from the left)", str(i)) for i in range(count)]


def face_update(count: int, *, default_all: bool = True) -> dict[str, Any]:
    choices = face_choices(count)
    value = ALL_FACES if (count > 1 and default_all) else choices[-1][1] if count > 1 else choices[0][1]
    return gr.update(choices=choices, value=value, interactive=count > 1)


def example_photos() -> list[str]:
    """The shipped example photos (public domain / CC0 sources, see space/examples/README.md)."""
    return [str(p) for p in sorted(EXAMPLES_DIR.glob("*.jpg"))]


def describe_age_change(edit: Any) -> str:
    """One edited face (pipeline.FaceEdit) for a summary: "face 1: estimated **34** → **70** years"."""
    target = f"**{edit.target_age:.0f}** years"
    if edit.source_age is None:  # only without an age estimator
        return f"face {edit.index + 1}: → {target}"
    return f"face {edit.index + 1}: estimated **{edit.source_age:.0f}** → {target}"


def describe_ages(ages: Sequence[float | None]) -> str:
    if not ages:
        return ""
    if all(a is None for a in ages):
        return "Estimated age: not available (no age estimator is loaded)."
    parts = [f"face {i + 1}: **{a:.0f}**" if a is not None else f"face {i + 1}: ?" for i, a in enumerate(ages)]
    if len(parts) == 1:
        return f"Estimated age: **{ages[0]:.0f}** years." if ages[0] is not None else parts[0]
    return "Estimated ages (left to right): " + ", ".join(parts) + "."


def estimated_ages(editor: Any, path: str, count: int) -> list[float | None]:
    """Each face's estimated age, or None when the editor has no age estimator."""
    if getattr(editor, "age_estimator", None) is None:
        return [None] * count
    return editor.estimate_age(path)


def model_warning(editor: Any) -> str:
    from ganime_age.pipeline import is_untrained_default

    if is_untrained_default(editor.model):
        return (
            "\n\n⚠️ No trained model is embedded yet: this is an *untrained initialisation*, so edits are "
            "meaningless noise. Set `GANIME_AGE_MODEL` to a trained folder or Hub id."
        )
    return ""


# -- the shared input block ----------------------------------------------------------------------------
@dataclass
class PhotoBlock:
    photo: gr.Image
    face: gr.Dropdown
    model: gr.Dropdown
    info: gr.Markdown


def photo_block(provider: EditorProvider, *, prefix: str, needs_aus: bool = False, label: str = "Photo") -> PhotoBlock:
    """Photo upload + examples + face selector + model selector (+ an info line under them)."""
    photo = photo_input(
        label=label,
        type="filepath",
        sources=["upload", "webcam", "clipboard"],
        height=IMAGE_HEIGHT,
        elem_id=f"{prefix}-photo",
    )
    examples = example_photos()
    if examples:
        gr.Examples(
            examples=[[p] for p in examples],
            inputs=[photo],
            label="Example photos (public domain)",
            examples_per_page=8,
        )
    models = provider.choices(needs_aus=needs_aus)
    with gr.Row():
        face = gr.Dropdown(
            choices=face_choices(0),
            value=ALL_FACES,
            label="Which face",
            interactive=False,
            elem_id=f"{prefix}-face",
            scale=1,
        )
        model = gr.Dropdown(
            choices=[(m.label, m.key) for m in models],
            value=models[0].key if models else DEFAULT_KEY,
            label="Model",
            visible=len(models) > 1,
            elem_id=f"{prefix}-model",
            scale=1,
        )
    info = gr.Markdown("", elem_id=f"{prefix}-info")
    return PhotoBlock(photo, face, model, info)
