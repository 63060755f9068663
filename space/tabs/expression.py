"""Expression tab: the 17 AU sliders (grouped by face region) plus an optional target age, in one edit.

GANimation-age is conditioned jointly on AUs and age, so this tab is also where both change at once.
Sliders show 0 (neutral) until a photo is analysed, then start at the AUs measured on it, and releasing one
re-renders the edit (no button needed); only the AUs a visitor moves away from the measured values are sent to the
model, so with "all faces" every other face keeps its own expression. Through the API (``/expression``) the AUs
are named parameters ``AU01`` … ``AU45``; one a caller leaves out (None) keeps the face's measured value, as in the
Python API.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import gradio as gr
import numpy as np
from PIL import Image

from ganime_age.conditions import AU_FACS_NAMES, AU_MAX, AU_NAMES, AU_REGIONS
from ganime_age.validation import check_age, check_aus, check_flag
from space.common import (
    IMAGE_HEIGHT,
    PHOTO_REFUSALS,
    admitted,
    api_slider,
    describe_age_change,
    describe_ages,
    describe_au_changes,
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
from space.presets import PRESETS, Preset

TITLE = "Expression (+ age)"
CHANGED = 0.05  # AU intensity differences below this count as "not moved"
F = TypeVar("F", bound=Callable[..., Any])
KEEP_MEASURED = "; None or left out: the face's measured value is kept"


def au_label(name: str) -> str:
    """'AU12 lip corner puller': the code and its FACS name."""
    return f"{name} {AU_FACS_NAMES[name]}"


def aus_to_send(values: Mapping[str, float | None], measured: list[float] | None) -> dict[str, float]:
    """The AUs to set: every AU given (None keeps the face's measured value); when the sliders started at the
    measured values (the UI), only the ones moved away from them, so each face keeps its own expression."""
    given = check_aus({name: v for name, v in values.items() if v is not None})  # out of 0..5: refused
    if measured is None:
        return given
    base = dict(zip(AU_NAMES, measured, strict=True))
    return {name: v for name, v in given.items() if abs(v - base[name]) >= CHANGED}


def with_au_parameters(fn: F) -> F:
    """Give `fn`'s ``**aus`` the names AU01 … AU45, each defaulting to None (= keep the measured value).

    gradio names an endpoint's parameters after the function's signature and fills a parameter an API
    caller leaves out with its default; the AU sliders are passed by name (``inputs_kwargs``).
    """
    signature = inspect.signature(fn)
    fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    named = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in AU_NAMES]
    fn.__signature__ = signature.replace(parameters=[*fixed, *named])  # type: ignore[attr-defined]
    return fn


def _preset_setter(preset: Preset) -> Any:
    def apply(*values: float | None) -> list[float]:
        current = np.asarray([0.0 if v is None else v for v in values], np.float32)  # None: no photo measured yet
        return [round(float(v), 2) for v in preset.apply(current)]

    return apply


def build_tab(editor_provider: EditorProvider) -> None:
    """Build the Expression tab inside the current `gr.Tab`."""

    @gpu(duration=30)
    @user_errors
    def measure_on_gpu(path: str, face: int, model: str) -> tuple[int, list[float], list[float | None], str]:
        with editor_provider.session(model) as editor:
            count = len(editor.analyze(path))
            aus = editor.measure_aus(path, face=min(face, count - 1))
            return count, [aus[name] for name in AU_NAMES], estimated_ages(editor, path, count), model_warning(editor)

    @gpu(duration=30)
    @user_errors
    def edit_on_gpu(
        path: str, face: int | None, model: str, change_age: bool, age: float, aus: dict[str, float]
    ) -> tuple[Image.Image, Image.Image | None, str]:
        with editor_provider.session(model) as editor:
            # keeping each face's own age needs its estimate; without an age estimator the slider's age is used
            keep_age = not change_age and editor.age_estimator is not None
            result = editor.edit_details(path, age=None if keep_age else float(age), aus=aus or None, face=face)
        shown = result.faces[0] if result.faces else None
        kept = "measured expression kept"
        parts = [f"{describe_age_change(f)}, {describe_au_changes(f, list(aus)) or kept}" for f in result.faces]
        summary = "; ".join(parts) + "."
        if not change_age and not keep_age:
            summary += " (No age estimator is loaded, so the target age slider is used.)"
        return result.image, (shown.attention if shown is not None else None), summary

    def measured_outputs(path: str, index: int, model: str) -> tuple[int, list[Any]]:
        """(face count, values for the AU sliders, the measured state, the age slider and the info line)."""
        with admitted(editor_provider, "analyze", path):
            count, aus, ages, warning = measure_on_gpu(path, index, model)
        index = min(index, count - 1)
        info = f"{count} face{'s' if count != 1 else ''} found. " + describe_ages(ages)
        info += f" The sliders start at the AUs measured on face {index}." + warning
        age_value = gr.update(value=round(ages[index])) if ages[index] is not None else gr.skip()
        return count, [*[round(v, 2) for v in aus], aus, age_value, info]

    @user_errors
    def measure(photo: Any, face: Any, model: str) -> list[Any]:
        path = photo_path(photo)
        if path is None:
            return [gr.skip()] * (len(AU_NAMES) + 3)
        return measured_outputs(path, parse_face(face) or 0, model)[1]

    @user_errors
    def analyze_photo(photo: Any, model: str) -> list[Any]:
        path = photo_path(photo)
        if path is None:
            return [face_update(0), *[gr.skip()] * len(AU_NAMES), None, gr.skip(), ""]
        count, outputs = measured_outputs(path, 0, model)
        return [face_update(count), *outputs]

    def analyze(photo: Any, model: str) -> list[Any]:
        """A refused photo clears the results (and the measured AUs) and passes its refusal on, to be said once
        (space.common.PHOTO_REFUSALS)."""
        try:
            return [*analyze_photo(photo, model), gr.skip(), gr.skip(), gr.skip(), None]
        except gr.Error as error:
            cleared = [face_update(0), *[gr.skip()] * len(AU_NAMES), None, gr.skip(), ""]
            return [*cleared, None, None, "", PHOTO_REFUSALS.refused(error, photo)]

    @user_errors  # also for what API callers send: AUs or an age out of range or not numbers
    @with_au_parameters
    def expression_edit(
        photo: Any,
        face: Any,
        model: str,
        change_age: bool,
        age: float,
        measured: list[float] | None = None,
        **aus: float | None,
    ) -> tuple[Any, Any, str]:
        """Edit the expression (AU01 … AU45, intensities 0-5; one left out keeps the face's measured value) and,
        if `change_age`, the age at the same time."""
        path = require_photo(photo)
        to_send = aus_to_send(aus, measured)  # out of 0..5: refused, as by the Python API and the CLI
        index, target_age, changing = (
            parse_face(face),
            check_age(age, "target age"),
            check_flag(change_age, "change_age"),
        )
        with admitted(editor_provider, "expression", path) as (header,):
            after, attention, summary = edit_on_gpu(path, index, model, changing, target_age, to_send)
            edited = (shown_photo(path, header), save_output(after, "edited", output_format(header)))
            mask = save_output(attention, "attention", output_format(header)) if attention is not None else None
            return edited, mask, summary

    @with_au_parameters
    def expression_edit_live(
        photo: Any, face: Any, model: str, change_age: bool, age: float, measured: list[float] | None, **aus: Any
    ) -> Any:
        if photo_path(photo) is None:
            return gr.skip(), gr.skip(), gr.skip()  # moving a slider before uploading is not a mistake
        return expression_edit(photo, face, model, change_age, age, measured, **aus)

    @with_au_parameters
    def age_moved(
        photo: Any, face: Any, model: str, change_age: bool, age: float, measured: list[float] | None, **aus: Any
    ) -> Any:
        """Moving the target age means "change the age too": tick the box and render with the new age."""
        return True, *expression_edit_live(photo, face, model, True, age, measured, **aus)

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            block = photo_block(editor_provider, prefix="expr")
            with gr.Row():
                change_age = gr.Checkbox(False, label="Change the age too", elem_id="expr-change-age", scale=1)
                age = api_slider(0, 100, value=35, step=1, label="Target age (years)", elem_id="expr-age", scale=3)
            gr.Markdown("**Presets** (FACS/EMFACS prototypes; *Wink* is AU45, which closes both eyes)")
            with gr.Row():
                preset_buttons = [gr.Button(p.name, size="sm", elem_id=f"preset-{p.name.lower()}") for p in PRESETS]
            with gr.Row():
                reset = gr.Button("Reset to the measured expression", elem_id="expr-reset")
                render = gr.Button("Render", variant="primary", elem_id="expr-run")
        with gr.Column(scale=2):
            result = gr.ImageSlider(
                label="Edited",  # also its name in the API; the header says to drag the handle
                type="filepath",  # the event writes each picture once (space.outputs)
                interactive=False,
                max_height=IMAGE_HEIGHT + 160,
                elem_id="expr-result",
            )
            with gr.Row():
                with gr.Column(min_width=220):
                    # the image's label chip is one short line: the legend goes in a caption under it
                    attention = gr.Image(
                        label="Attention mask",
                        type="filepath",
                        interactive=False,
                        height=220,
                        elem_id="expr-attention",
                    )
                    gr.Markdown("White = kept from the photo, dark = repainted.", elem_id="expr-attention-caption")
                summary = gr.Markdown("", label="summary", elem_id="expr-summary")  # the label names it in the API
    sliders: dict[str, gr.Slider] = {}

    def region_sliders(names: tuple[str, ...]) -> None:
        for name in names:
            # no value until a photo is analysed (then its measured AUs); None is also the API's default
            sliders[name] = api_slider(
                0, AU_MAX, value=None, unset=KEEP_MEASURED, step=0.1, label=au_label(name), elem_id=f"au-{name}"
            )

    # AU_REGIONS's regions, laid out in balanced columns (the mouth has 9 AUs, the nose 1)
    regions = dict(AU_REGIONS)
    mouth = regions.pop("Mouth", ())
    with gr.Row(equal_height=False):
        with gr.Column(min_width=220):
            for region in [r for r in regions if r != "Eyes"]:
                with gr.Accordion(region, open=True):
                    region_sliders(regions[region])
        if "Eyes" in regions:
            with gr.Column(min_width=220), gr.Accordion("Eyes", open=True):
                region_sliders(regions["Eyes"])
        if mouth:
            half = (len(mouth) + 1) // 2
            with gr.Column(min_width=440, scale=2), gr.Accordion("Mouth", open=True), gr.Row():
                with gr.Column(min_width=200):
                    region_sliders(mouth[:half])
                with gr.Column(min_width=200):
                    region_sliders(mouth[half:])
    au_sliders = [sliders[name] for name in AU_NAMES]  # the model's order, whatever the layout
    measured = gr.State(None)
    refused = gr.State(None)  # a refused photo's message, said once (space.common.PhotoRefusals)
    # neutral (the Neutral preset: every AU at 0) until a photo is measured; the sliders' own value stays None, the
    # API's default (an AU left out keeps the face's measured value), which gradio would draw as 5, the maximum
    show_on_page_load(au_sliders, [0.0] * len(au_sliders))

    edit_inputs = [block.photo, block.face, block.model, change_age, age, measured]
    # the AU sliders go by name (API parameters AU01 … AU45, in the model's order whatever the layout)
    edit: dict[str, Any] = {
        "inputs": edit_inputs,
        "inputs_kwargs": dict(zip(AU_NAMES, au_sliders, strict=True)),
        "outputs": [result, attention, summary],
    }
    measure_outputs = [*au_sliders, measured, age, block.info]

    # every re-render: the live edit (skipped until a photo is there), never an API endpoint of its own
    live: dict[str, Any] = {"fn": expression_edit_live, **edit, "preprocess": False, "api_visibility": "private"}
    block.photo.change(
        analyze,
        [block.photo, block.model],
        [block.face, *measure_outputs, *edit["outputs"], refused],
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    ).then(PHOTO_REFUSALS.say, refused, None, api_visibility="private").success(**live)
    block.face.input(
        measure, [block.photo, block.face, block.model], measure_outputs, preprocess=False, api_visibility="private"
    ).success(**live)
    # a slider acts on release; "always_last": a fast series of moves renders the last value, not each one
    gr.on([s.release for s in au_sliders] + [change_age.input, block.model.input], **live, trigger_mode="always_last")
    gr.on(
        [age.release],
        age_moved,
        edit_inputs,
        [change_age, *edit["outputs"]],
        inputs_kwargs=edit["inputs_kwargs"],
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    )
    for preset, button in zip(PRESETS, preset_buttons, strict=True):
        button.click(_preset_setter(preset), au_sliders, au_sliders, api_visibility="private", queue=False).then(**live)
    reset.click(
        lambda m: [gr.skip()] * len(AU_NAMES) if m is None else [round(v, 2) for v in m],
        measured,
        au_sliders,
        api_visibility="private",
        queue=False,
    ).then(**live)
    render.click(expression_edit, **edit, preprocess=False, api_name="expression")
