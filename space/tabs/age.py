"""Age tab: one target age for the whole photo (before/after slider) and the 10-group age strip of each face.

Releasing the target-age slider re-renders the edit (no button needed): the photo's analysis is cached by
the FaceEditor, so a slider move costs one edit. The face's current age is shown in an editable field: the
estimate can be wrong (a young woman read as 3), and the edit's size is set from the age the user gives. Where the
estimate is unsure (the two age networks far apart, or a reading under 2: space.common.age_doubt) the field says so
and asks for the age.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from ganime_age.validation import check_age, check_optional_age
from space.common import (
    IMAGE_HEIGHT,
    PHOTO_REFUSALS,
    admitted,
    age_doubts,
    api_slider,
    describe_age_change,
    describe_ages,
    describe_doubt,
    estimated_ages,
    face_update,
    model_warning,
    parse_face,
    photo_block,
    photo_path,
    require_photo,
    show_on_page_load,
    user_errors,
)
from space.gpu import gpu
from space.models import EditorProvider
from space.outputs import output_format, save_output, shown_photo
from space.own_photos import PEOPLE, OwnPhotos, caption_with_person, describe_use, own_inputs, own_pixels
from space.own_photos import own_photos as checked_own_photos

TITLE = "Age"
DEFAULT_TARGET_AGE = 70
PROGRESS = gr.Progress()  # gradio finds progress by this default value and tracks it per event


def _edit_summary(faces: list[Any], *, given: bool = False) -> str:
    return "; ".join(describe_age_change(f, given=given) for f in faces) + "."


def build_tab(editor_provider: EditorProvider) -> None:
    """Build the Age tab inside the current `gr.Tab`; heavy work goes through `editor_provider`."""

    @gpu(duration=30)
    @user_errors
    def analyze_on_gpu(path: str, model: str) -> tuple[int, list[float | None], list[str], str]:
        with editor_provider.session(model) as editor:
            count = len(editor.analyze(path))
            ages = estimated_ages(editor, path, count)
            return count, ages, age_doubts(editor, path, ages), model_warning(editor)

    @gpu(duration=30)
    @user_errors
    def edit_on_gpu(
        path: str, age: float, face: int | None, model: str, current: float | None, own: OwnPhotos | None = None
    ) -> tuple[Image.Image, str]:
        with editor_provider.session(model) as editor:
            person = PEOPLE.get(editor, model, own) if own is not None else None
            source_age = corrected_age(editor, path, face, current)
            result = editor.edit_details(path, age=float(age), face=face, source_age=source_age, person=person)
        summary = _edit_summary(result.faces, given=source_age is not None)
        return result.image, summary + (f"\n\n{describe_use(person, age)}" if person is not None else "")

    @gpu(duration=60)
    @user_errors
    def strip_on_gpu(
        path: str,
        face: int | None,
        model: str,
        current: float | None,
        progress: gr.Progress,
        own: OwnPhotos | None = None,
    ) -> list[tuple[Image.Image, str]]:
        """One strip per selected face (every face for None), each captioned with its face number (and where an
        age takes the visitor's own photos, so)."""
        from ganime_age.conditions import AGE_GROUP_LABELS, age_to_group

        with editor_provider.session(model) as editor:
            person = PEOPLE.get(editor, model, own) if own is not None else None
            faces = range(len(editor.analyze(path))) if face is None else [face]
            gallery = []
            for done, index in enumerate(faces):

                def report(fraction: float, desc: str, done: int = done, index: int = index) -> None:
                    progress((done + fraction) / len(faces), desc=f"Age strip of face {index}: {desc}")

                source_age = corrected_age(editor, path, index, current)
                strip = editor.age_strip(path, face=index, source_age=source_age, progress=report, person=person)
                for years, image in strip:
                    caption = f"face {index}: age {years:.0f} ({AGE_GROUP_LABELS[age_to_group(years)]})"
                    gallery.append((image, caption_with_person(caption, person, years)))
        return gallery

    @user_errors
    def analyze_photo(photo: Any, model: str) -> list[Any]:
        path = photo_path(photo)
        if path is None:
            return [face_update(0), "", {}, current_age_update({}, None)]
        with admitted(editor_provider, "analyze", path):
            count, ages, doubts, warning = analyze_on_gpu(path, model)
        found = f"{count} face{'s' if count != 1 else ''} found. "
        estimates = {"ages": ages, "doubts": doubts}
        return [
            face_update(count),
            found + describe_ages(ages) + warning,
            estimates,
            current_age_update(estimates, None),
        ]

    def analyze(photo: Any, model: str) -> list[Any]:
        """The analysis of a new photo, the previous photo's age strip cleared; a refused photo clears every output
        and passes its refusal on (space.common.PhotoRefusals), to be said once."""
        try:
            return [*analyze_photo(photo, model), None, gr.skip(), gr.skip(), None]
        except gr.Error as error:
            cleared = [face_update(0), "", {}, current_age_update({}, None), None, None, ""]
            return [*cleared, PHOTO_REFUSALS.refused(error, photo)]

    def face_chosen(face: Any, estimates: dict[str, Any]) -> Any:
        """The chosen face's estimate in the current-age field (empty for all of several faces), with its doubt."""
        try:
            return current_age_update(estimates, parse_face(face))
        except gr.Error:
            return current_age_update({}, None)

    @user_errors  # also for what API callers send: a target age that is not a number, a face that does not exist
    def age_edit(
        photo: Any,
        target_age: float,
        face: Any,
        model: str,
        current_age: float | None = None,
        own_photos: Any = None,
        own_ages: str | None = None,
    ) -> tuple[tuple[str, str], str]:
        """Set every selected face to `target_age` years; returns (before, after) whole photos and a summary.
        `current_age`: the selected face(s)' age as the user knows it (None: the estimate). `own_photos`: the
        person's photos at other ages, `own_ages` their ages ("4, 7, 12"; blank: estimated), whose features the
        edit takes near their ages (the summary's last line says which)."""
        path = require_photo(photo)
        age, index = check_age(target_age, "target age"), parse_face(face)
        current = given_age(current_age)
        own = checked_own_photos(own_photos, own_ages)
        with admitted(editor_provider, "age", path, extra_pixels=building(model, own)) as (header,):
            after, summary = edit_on_gpu(path, age, index, model, current, own)
            return (shown_photo(path, header), save_output(after, "edited", output_format(header))), summary

    def building(model: str, own: OwnPhotos | None) -> int:
        """The pixels of the largest own photo where the person is still to be built (their headers checked
        always): a person is built one photo at a time, beside the request's photo."""
        pixels = own_pixels(own, editor_provider.budget.max_pixels)
        return 0 if own is None or (model, own.key) in PEOPLE else pixels

    def age_edit_live(
        photo: Any, target_age: float, face: Any, model: str, current_age: float | None, own: Any, own_ages: Any
    ) -> Any:
        if photo_path(photo) is None:
            return gr.skip(), gr.skip()  # moving the slider before uploading is not a mistake
        return age_edit(photo, target_age, face, model, current_age, own, own_ages)

    @user_errors
    def age_strip(
        photo: Any,
        face: Any,
        model: str,
        current_age: float | None = None,
        own_photos: Any = None,
        own_ages: str | None = None,
        progress: gr.Progress = PROGRESS,
    ) -> list[tuple[str, str]]:
        """The selected face (each face, left to right, for "all") at the centres of the 10 FFHQ-Aging groups;
        `current_age`, `own_photos` and `own_ages` as for /age."""
        path = require_photo(photo)
        index = parse_face(face)
        current = given_age(current_age)
        own = checked_own_photos(own_photos, own_ages)
        with admitted(editor_provider, "age_strip", path, extra_pixels=building(model, own)):
            strip = strip_on_gpu(path, index, model, current, progress, own)
            return [(save_output(image, "age", output_format()), caption) for image, caption in strip]

    ages: dict[str, Any] = {}

    def age_controls() -> None:
        """The target and current ages right under the photo: in sight at 1400x1000 without scrolling (under the
        examples, the face and the model selectors they were below the fold)."""
        ages["target"] = api_slider(
            0,
            100,
            value=DEFAULT_TARGET_AGE,
            step=1,
            label="Target age (years)",
            info="Release the slider to re-render.",
            elem_id="age-target",
        )
        ages["current"] = gr.Number(
            value=None,  # empty until a photo is analysed (shown so on load: gradio's gr.Number draws None as 0)
            placeholder="the estimate",
            label="Current age (years)",
            info=CURRENT_AGE_INFO,
            minimum=0,
            maximum=100,
            precision=0,
            elem_id="age-current",
        )

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            block = photo_block(editor_provider, prefix="age", under_photo=age_controls)
            target, current_age = ages["target"], ages["current"]
            show_on_page_load([current_age], [None])
            # each face's estimate and its doubt, for the field when the chosen face changes
            estimates = gr.State({})
            refused = gr.State(None)  # a refused photo's message, said once (space.common.PhotoRefusals)
            with gr.Row():
                run = gr.Button("Change the age", variant="primary", elem_id="age-run")
                strip_button = gr.Button("Age strip (10 age groups)", elem_id="age-strip-run")
            own_files, own_ages = own_inputs()
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

    edit_inputs = [block.photo, target, block.face, block.model, current_age, own_files, own_ages]
    # the field shows the chosen face's estimate before that face's edit reads it
    block.face.input(face_chosen, [block.face, estimates], current_age, api_visibility="private", queue=False).then(
        age_edit_live, edit_inputs, [result, summary], preprocess=False, api_visibility="private"
    )
    block.photo.change(
        analyze,
        [block.photo, block.model],
        [block.face, block.info, estimates, current_age, strip, result, summary, refused],
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    ).then(PHOTO_REFUSALS.say, refused, None, api_visibility="private").success(
        age_edit_live, edit_inputs, [result, summary], preprocess=False, api_visibility="private"
    )
    run.click(age_edit, edit_inputs, [result, summary], preprocess=False, api_name="age")
    gr.on(
        [target.release, block.model.input, current_age.submit, own_files.change, own_ages.submit],
        age_edit_live,
        edit_inputs,
        [result, summary],
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    )
    strip_button.click(
        age_strip,
        [block.photo, block.face, block.model, current_age, own_files, own_ages],
        strip,
        preprocess=False,
        api_name="age_strip",
    )


def given_age(value: Any) -> float | None:
    """The current-age field's value: None where it is empty (None, or a blank string from an HTTP caller), which
    means each face's estimate; else an age of 0-100."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return check_optional_age(value, "current age")


CURRENT_AGE_INFO = (
    "The estimate; correct it if it is wrong, and the edit starts from your age. Empty: each face's estimate."
)


def current_age_update(estimates: dict[str, Any], face: int | None) -> dict[str, Any]:
    """The current-age field for the chosen face: its estimate, and where that estimate is unsure (the age networks
    disagree widely, or it reads under 2) a note that says so and asks for the age, next to the number."""
    ages, doubts = estimates.get("ages", []), estimates.get("doubts", [])
    shown = shown_current_age(ages, face)
    index = face if face is not None else (0 if len(ages) == 1 else None)
    doubt = doubts[index] if index is not None and 0 <= index < len(doubts) else ""
    if index is None:  # every face of several: each one's note
        notes = [describe_doubt(d, i) for i, d in enumerate(doubts) if d]
        return gr.update(value=shown, info=" ".join(notes) or CURRENT_AGE_INFO)
    return gr.update(value=shown, info=describe_doubt(doubt) or CURRENT_AGE_INFO)


def shown_current_age(ages: list[float | None], face: int | None) -> float | None:
    """What the current-age field shows: the chosen face's estimate, or the only face's; empty where several
    faces are edited at once (each keeps its own estimate) or none is known."""
    if face is None:
        face = 0 if len(ages) == 1 else None
    if face is None or not 0 <= face < len(ages) or ages[face] is None:
        return None
    return round(float(ages[face]))


def corrected_age(editor: Any, path: str, face: int | None, current: float | None) -> float | None:
    """`current` as the edit's source age where the user changed it; None (the estimate itself, unrounded) where
    the field still shows the estimate's rounding, so an untouched field gives the same edit as no field."""
    if current is None or getattr(editor, "age_estimator", None) is None:
        return current
    ages = editor.estimate_age(path) if face is None else [editor.estimate_age(path, face)]
    return None if all(round(a) == round(current) for a in ages) else current
