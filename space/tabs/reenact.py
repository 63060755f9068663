"""Reenactment tab: the source photo takes a driving photo's (or video's) head pose and expression, at any age.

Output is shown side by side with the source and the driver. Without a trained reenactor (a part of the
editor's manifest) the edit engine moves the face to the driver's landmarks (pose and expression)
and paints the driver's AUs, an opening mouth's interior and the age; with an empty engine (a trimmed
install) only the pose moves, with a note.
Videos are capped at ``MAX_VIDEO_FRAMES`` frames here (the CLI has no cap); the driver's audio is kept.

The example driving video is made by :func:`make_driving_example` from the public-domain astronaut
photo (the head turns and nods through the classical warp): ``python -m space.tabs.reenact``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from ganime_age.validation import check_age, check_aus_scale, check_flag
from space.common import (
    EXAMPLES_DIR,
    IMAGE_HEIGHT,
    PHOTO_REFUSALS,
    admitted,
    face_update,
    parse_face,
    photo_block,
    photo_input,
    photo_path,
    require_photo,
    single_face,
    uploaded_input,
    user_errors,
)
from space.gpu import gpu
from space.models import EditorProvider
from space.outputs import cache_folder, output_format, save_output, shown_photo

TITLE = "Reenactment"
MAX_VIDEO_FRAMES = int(os.environ.get("GANIME_AGE_MAX_VIDEO_FRAMES", "150"))
DRIVING_VIDEO_EXAMPLE = EXAMPLES_DIR / "astronaut-turning.mp4"
ASTRONAUT = EXAMPLES_DIR / "astronaut.jpg"
CAMERAMAN = EXAMPLES_DIR / "cameraman.jpg"


def method_note(editor: Any) -> str:
    """How this editor reenacts: learned generator or classical warp, and whether AUs/age apply."""
    from ganime_age.editing import is_untrained_default

    if editor.reenactment.method == "learned":
        note = "Pose rendered by the trained reenacting generator."
    else:
        note = (
            "Pose: the photo's own head turned in 3-D, expression and age by the edit engine (no trained "
            "reenactor is loaded; an editor whose editor.json names one uses the learned generator)."
        )
    if is_untrained_default(editor.engine):
        note += " The edit engine's tables are missing, so the age slider has no effect here."
    return note


@contextlib.contextmanager
def reach_notes() -> Iterator[list[str]]:
    """The notes (" The driving face ...") of a reenactment whose driver was turned past what the photo's head can
    follow (:class:`~ganime_age.errors.TurnBeyondReachWarning`), to show beside the result."""
    from ganime_age.errors import TurnBeyondReachWarning

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TurnBeyondReachWarning)
        yield notes
    for caught_warning in caught:
        text = str(caught_warning.message)
        if issubclass(caught_warning.category, TurnBeyondReachWarning):
            notes.append(f" {text[:1].upper()}{text[1:]}.")
        else:  # any other warning goes on as it came
            warnings.warn_explicit(
                caught_warning.message, caught_warning.category, caught_warning.filename, caught_warning.lineno
            )


def build_tab(editor_provider: EditorProvider) -> None:
    """Build the Reenactment tab inside the current `gr.Tab`."""

    @gpu(duration=60)
    @user_errors
    def count_faces_on_gpu(path: str, model: str) -> int:
        with editor_provider.session(model) as editor:
            return len(editor.analyze(path))

    @gpu(duration=60)
    @user_errors
    def reenact_on_gpu(
        source: str, driving: str, face: int | None, model: str, age: float | None, aus_scale: float
    ) -> tuple[Image.Image, str]:
        with editor_provider.session(model) as editor:
            face = single_face(editor, source, face, "Reenactment")
            if age is None and editor.age_estimator is None:
                note = " No age estimator is loaded, so the age is kept without the expression/age step."
            else:
                note = ""
            with reach_notes() as notes:
                image = editor.reenact(source, driving, age=age, aus_scale=aus_scale, face=face)
            return image, method_note(editor) + note + "".join(notes)

    @gpu(duration=240)
    @user_errors
    def reenact_video_on_gpu(
        source: str, video: str, face: int | None, model: str, age: float | None, aus_scale: float
    ) -> tuple[str, str]:
        with editor_provider.session(model) as editor:
            face = single_face(editor, source, face, "Reenactment")
            # written straight into gradio's cache: served from there, removed with it (delete_cache)
            out = Path(tempfile.mkdtemp(prefix="reenact-", dir=cache_folder())) / "reenacted.mp4"
            with reach_notes() as notes:
                editor.reenact_video(
                    source,
                    video,
                    out,
                    age=age,
                    aus_scale=aus_scale,
                    face=face,
                    max_frames=MAX_VIDEO_FRAMES,
                    show_progress_bar=False,
                )
            frames = f" At most {MAX_VIDEO_FRAMES} frames, with the driver's audio."
            return str(out), method_note(editor) + frames + "".join(notes)

    @user_errors
    def analyze_photo(photo: Any, model: str) -> tuple[Any, str]:
        path = photo_path(photo)
        if path is None:
            return face_update(0), ""
        with admitted(editor_provider, "analyze", path):
            count = count_faces_on_gpu(path, model)
        return face_update(count, allow_all=False), f"{count} face{'s' if count != 1 else ''} found in the source."

    def analyze(photo: Any, model: str) -> list[Any]:
        """A refused source photo clears the results and passes its refusal on, to be said once
        (space.common.PHOTO_REFUSALS)."""
        try:
            return [*analyze_photo(photo, model), *[gr.skip()] * 5, None]
        except gr.Error as error:
            return [face_update(0), "", None, None, None, None, "", PHOTO_REFUSALS.refused(error, photo)]

    @user_errors
    def reenact(
        photo: Any, face: Any, model: str, driving: Any, change_age: bool, age: float, aus_scale: float
    ) -> tuple[str, str, str, str]:
        """The source photo with the driving photo's head pose and expression (and, if asked, a new age)."""
        source = require_photo(photo)
        driver = photo_path(driving, "driving")
        if driver is None:
            raise gr.Error(
                "Upload a driving photo (the pose and expression to copy).",
                title="No driving photo",
                print_exception=False,
            )
        index, target_age, strength = (
            parse_face(face),
            check_age(age) if check_flag(change_age, "change_age") else None,
            check_aus_scale(aus_scale),
        )
        with admitted(editor_provider, "reenact", source, driver) as (shown, driven):
            image, note = reenact_on_gpu(source, driver, index, model, target_age, strength)
            result = save_output(image, "reenacted", output_format(shown))
            return shown_photo(source, shown), shown_photo(driver, driven), result, note

    @user_errors
    def reenact_video(
        photo: Any, face: Any, model: str, video: Any, change_age: bool, age: float, aus_scale: float
    ) -> tuple[Any, str, str]:
        """Reenact the source photo with every frame of a driving video (MP4 out, with its audio)."""
        from ganime_age.video import probe_video

        source = require_photo(photo)
        # gradio's own video payload ({"video": FileData, "subtitles": None}) is unwrapped before the event
        # (space.common.guard_uploads); a bare path is refused
        path = photo_path(video.get("video", video) if isinstance(video, dict) else video, "video")
        if not path:
            raise gr.Error("Upload a driving video first.", title="No driving video", print_exception=False)
        index, target_age, strength = (
            parse_face(face),
            check_age(age) if check_flag(change_age, "change_age") else None,
            check_aus_scale(aus_scale),
        )
        width, height = probe_video(path).size
        with admitted(editor_provider, "reenact_video", source, extra_pixels=width * height) as (shown,):
            out, note = reenact_video_on_gpu(source, str(path), index, model, target_age, strength)
            return shown_photo(source, shown), out, note

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            block = photo_block(editor_provider, prefix="reenact", label="Source photo (the person)")
        with gr.Column(scale=1), gr.Tabs():
            with gr.Tab("Driving photo", id="reenact-driving-photo"):
                driving = photo_input(
                    "driving",
                    label="Driving photo (pose and expression)",
                    type="filepath",
                    sources=["upload", "webcam", "clipboard"],
                    height=IMAGE_HEIGHT,
                    elem_id="reenact-driving",
                )
                gr.Examples(
                    examples=[[str(p)] for p in (CAMERAMAN, ASTRONAUT) if p.is_file()],
                    inputs=[driving],
                    label="Example driving photos (public domain)",
                )
            with gr.Tab("Driving video", id="reenact-driving-video"):
                driving_video = uploaded_input(
                    gr.Video(
                        label=f"Driving video (first {MAX_VIDEO_FRAMES} frames; its audio kept)",
                        sources=["upload", "webcam"],
                        height=IMAGE_HEIGHT,
                        elem_id="reenact-driving-video",
                    ),
                    "video",
                )
                if DRIVING_VIDEO_EXAMPLE.is_file():
                    gr.Examples(
                        examples=[[str(DRIVING_VIDEO_EXAMPLE)]],
                        inputs=[driving_video],
                        label="Example driving video (made from the public-domain astronaut photo)",
                    )
    with gr.Row():
        change_age = gr.Checkbox(False, label="Change the age", elem_id="reenact-change-age", scale=1)
        age = gr.Slider(0, 100, value=60, step=1, label="Target age (years)", elem_id="reenact-age", scale=3)
        aus_scale = gr.Slider(
            0,
            2,
            value=1.0,
            step=0.05,
            label="Expression strength (driver's AUs x)",
            elem_id="reenact-aus-scale",
            scale=2,
        )
    with gr.Row():
        run_photo = gr.Button("Reenact with the driving photo", variant="primary", elem_id="reenact-run")
        run_video = gr.Button("Reenact with the driving video", elem_id="reenact-run-video")
    with gr.Row(equal_height=True):
        shown_source = gr.Image(
            label="Source",
            type="filepath",
            interactive=False,
            height=IMAGE_HEIGHT,
            elem_id="reenact-shown-source",
        )
        shown_driver = gr.Image(
            label="Driver",
            type="filepath",
            interactive=False,
            height=IMAGE_HEIGHT,
            elem_id="reenact-shown-driver",
        )
        result = gr.Image(
            label="Result", type="filepath", interactive=False, height=IMAGE_HEIGHT, elem_id="reenact-result"
        )
    result_video = gr.Video(label="Result video", interactive=False, height=IMAGE_HEIGHT, elem_id="reenact-video")
    note = gr.Markdown("", label="summary", elem_id="reenact-note")  # the label names it in the API

    refused = gr.State(None)  # a refused photo's message, said once (space.common.PhotoRefusals)
    block.photo.change(
        analyze,
        [block.photo, block.model],
        [block.face, block.info, shown_source, shown_driver, result, result_video, note, refused],
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    ).then(PHOTO_REFUSALS.say, refused, None, api_visibility="private")
    inputs = [block.photo, block.face, block.model]
    run_photo.click(
        reenact,
        [*inputs, driving, change_age, age, aus_scale],
        [shown_source, shown_driver, result, note],
        preprocess=False,
        api_name="reenact",
    )
    run_video.click(
        reenact_video,
        [*inputs, driving_video, change_age, age, aus_scale],
        [shown_source, result_video, note],
        preprocess=False,
        api_name="reenact_video",
    )


# -- the example driving video -----------------------------------------------------------------------------
def make_driving_example(path: Path = DRIVING_VIDEO_EXAMPLE, frames: int = 24, fps: float = 8.0) -> Path:
    """A short driving video from the public-domain astronaut photo: the head turns left, right and nods.

    Made with the project's own classical warp (no face dataset involved), cropped around the face.
    """
    from ganime_age.faces import FaceAnalyzer, load_image
    from ganime_age.faces.mesh import rotate_landmarks
    from ganime_age.video import write_video
    from ganime_age.warp import warp_face

    rgb = load_image(ASTRONAUT)
    face = FaceAnalyzer().analyze(rgb)[0]
    landmarks = face.landmarks.landmarks
    x, y, w, h = (float(v) for v in face.detection.box)
    side = int(max(w, h) * 2.0) // 2 * 2
    x0 = int(np.clip(x + w / 2 - side / 2, 0, rgb.shape[1] - side))
    y0 = int(np.clip(y + h / 2 - side / 2, 0, rgb.shape[0] - side))
    t = np.linspace(0.0, 2.0 * np.pi, frames, endpoint=False)
    video = []
    for yaw, pitch in zip(25.0 * np.sin(t), 10.0 * np.sin(2.0 * t), strict=True):
        target = rotate_landmarks(landmarks, yaw=float(yaw), pitch=float(pitch))
        video.append(warp_face(rgb, landmarks, target)[y0 : y0 + side, x0 : x0 + side])
    return write_video(path, video, fps=fps)


if __name__ == "__main__":
    written = make_driving_example()
    print(f"{written}: {written.stat().st_size / 1024:.0f} KB")
