"""Age tab: one target age for the whole photo (before/after slider) and the 10-group age strip of each face.

Releasing the target-age slider re-renders the edit (no button needed): the photo's analysis is cached by
the FaceEditor, so a slider move costs one edit.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from ganime_age.validation import check_age
from space.common import (
    IMAGE_HEIGHT,
    admitted,
    api_slider,
    describe_age_change,
    describe_ages,
    estimated_ages,
    face_update,
    model_warning,
    parse_face,
    photo_block,
    photo_path,
    require_photo,
    user_errors,
)
from space.gpu import gpu
from space.models import EditorProvider
from space.outputs import output_format, save_output, shown_photo

TITLE = "Age"
DEFAULT_TARGET_AGE = 70
PROGRESS = gr.Progress()  # gradio finds progress by this default value and tracks it per event


def _edit_summary(faces: list[Any]) -> str:
    return "; ".join(describe_age_change(f) for f in faces) + "."


def build_tab(editor_provider: EditorProvider) -> None:
    """Build the Age tab inside the current `gr.Tab`; heavy work goes through `editor_provider`."""

    @gpu(duration=30)
    @user_errors
    def analyze_on_gpu(path: str, model: str) -> tuple[int, list[float | None], str]:
        with editor_provider.session(model) as editor:
            count = len(editor.analyze(path))
            return count, estimated_ages(editor, path, count), model_warning(editor)

    @gpu(duration=30)
    @user_errors
    def edit_on_gpu(path: str, age: float, face: int | None, model: str) -> tuple[Image.Image, str]:
        with editor_provider.session(model) as editor:
            result = editor.edit_details(path, age=float(age), face=face)
        return result.image, _edit_summary(result.faces)

    @gpu(duration=60)
    @user_errors
    def strip_on_gpu(path: str, face: int | None, model: str, progress: gr.Progress) -> list[tuple[Image.Image, str]]:
        """One strip per selected face (every face for None), each captioned with its face number."""
        from ganime_age.conditions import AGE_GROUP_LABELS, age_to_group

        with editor_provider.session(model) as editor:
            faces = range(len(editor.analyze(path))) if face is None else [face]
            gallery = []
            for done, index in enumerate(faces):

                def report(fraction: float, desc: str, done: int = done, index: int = index) -> None:
                    progress((done + fraction) / len(faces), desc=f"Age strip of face {index}: {desc}")

                for years, image in editor.age_strip(path, face=index, progress=report):
                    gallery.append((image, f"face {index}: age {years:.0f} ({AGE_GROUP_LABELS[age_to_group(years)]})"))
        return gallery

    @user_errors
    def analyze(photo: Any, model: str) -> tuple[dict[str, Any], str]:
        path = photo_path(photo)
        if path is None:
            return face_update(0), ""
        with admitted(editor_provider, "analyze", path):
            count, ages, warning = analyze_on_gpu(path, model)
        found = f"{count} face{'s' if count != 1 else ''} found. "
        return face_update(count), found + describe_ages(ages) + warning

    @user_errors  # also for what API callers send: a target age that is not a number, a face that does not exist
    def age_edit(photo: Any, target_age: float, face: Any, model: str) -> tuple[tuple[str, str], str]:
        """Set every selected face to `target_age` years; returns (before, after) whole photos and a summary."""
        path = require_photo(photo)
        age, index = check_age(target_age, "target age"), parse_face(face)
        with admitted(editor_provider, "age", path) as (header,):
            after, summary = edit_on_gpu(path, age, index, model)
            return (shown_photo(path, header), save_output(after, "edited", output_format(header))), summary

    def age_edit_live(photo: Any, target_age: float, face: Any, model: str) -> Any:
        if photo_path(photo) is None:
            return gr.skip(), gr.skip()  # moving the slider before uploading is not a mistake
        return age_edit(photo, target_age, face, model)

    @user_errors
    def age_strip(photo: Any, face: Any, model: str, progress: gr.Progress = PROGRESS) -> list[tuple[str, str]]:
        """The selected face (each face, left to right, for "all") at the centres of the 10 FFHQ-Aging groups."""
        path = require_photo(photo)
        index = parse_face(face)
        with admitted(editor_provider, "age_strip", path):
            strip = strip_on_gpu(path, index, model, progress)
            return [(save_output(image, "age", output_format()), caption) for image, caption in strip]

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            block = photo_block(editor_provider, prefix="age")
            target = api_slider(
                0,
                100,
                value=DEFAULT_TARGET_AGE,
                step=1,
                label="Target age (years)",
                info="Release the slider to re-render.",
                elem_id="age-target",
            )
            with gr.Row():
                run = gr.Button("Change the age", variant="primary", elem_id="age-run")
                strip_button = gr.Button("Age strip (10 age groups)", elem_id="age-strip-run")
        with gr.Column(scale=2):
            result = gr.ImageSlider(
                label="Edited",  # also its name in the API; the header says to drag the handle
                type="filepath",  # the event writes each picture once (space.outputs)
                interactive=False,
                max_height=IMAGE_HEIGHT + 160,
                elem_id="age-result",
            )
            summary = gr.Markdown("", label="summary", elem_id="age-summary")  # the label names it in the API
            strip = gr.Gallery(
                label="Age strip",
                columns=5,
                height="auto",
                object_fit="contain",
                elem_id="age-strip",
            )

    edit_inputs = [block.photo, target, block.face, block.model]
    block.photo.change(
        analyze,
        [block.photo, block.model],
        [block.face, block.info],
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    ).success(age_edit_live, edit_inputs, [result, summary], preprocess=False, api_visibility="private")
    run.click(age_edit, edit_inputs, [result, summary], preprocess=False, api_name="age")
    gr.on(
        [target.release, block.face.input, block.model.input],
        age_edit_live,
        edit_inputs,
        [result, summary],
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    )
    strip_button.click(age_strip, [block.photo, block.face, block.model], strip, preprocess=False, api_name="age_strip")
