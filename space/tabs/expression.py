"""Expression tab: the 17 AU sliders (grouped by face region) plus an optional target age, in one edit.

GANimation-age is conditioned jointly on AUs and age, so this tab is also where both change at once.
Sliders start at the AUs measured on the photo; only the AUs a visitor moves away from the measured
values are sent to the model, so with "all faces" every other face keeps its own expression.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from ganime_age.conditions import AU_FACS_NAMES, AU_MAX, AU_NAMES, AU_REGIONS
from ganime_age.validation import check_age, check_aus
from space.common import (
    IMAGE_HEIGHT,
    describe_age_change,
    describe_ages,
    estimated_ages,
    face_update,
    load_photo,
    model_warning,
    parse_face,
    photo_block,
    photo_path,
    require_photo,
    user_errors,
)
from space.gpu import gpu
from space.models import EditorProvider
from space.presets import PRESETS, Preset

TITLE = "Expression (+ age)"
CHANGED = 0.05  # AU intensity differences below this count as "not moved"


def au_label(name: str) -> str:
    """'AU12 lip corner puller': the code and its FACS name."""
    return f"{name} {AU_FACS_NAMES[name]}"


def aus_to_send(values: np.ndarray, measured: list[float] | None) -> dict[str, float]:
    """The AUs to override: all 17 when nothing was measured (API use), else only the moved ones."""
    if measured is None:
        return {name: float(v) for name, v in zip(AU_NAMES, values, strict=True)}
    base = np.asarray(measured, np.float32)
    return {name: float(v) for name, v, m in zip(AU_NAMES, values, base, strict=True) if abs(v - m) >= CHANGED}


def _preset_setter(preset: Preset) -> Any:
    def apply(*values: float) -> list[float]:
        return [round(float(v), 2) for v in preset.apply(np.asarray(values, np.float32))]

    return apply


def build_tab(editor_provider: EditorProvider) -> None:
    """Build the Expression tab inside the current `gr.Tab`."""
    if not editor_provider.choices(needs_aus=True):
        gr.Markdown(
            "None of the models this Space offers is conditioned on Action Units, so expressions cannot "
            "be edited here; the Age tab works with every model."
        )
        return

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
        parts = [describe_age_change(f) for f in result.faces]
        moved = ", ".join(f"{k}={v:.1f}" for k, v in aus.items()) or "none (measured expression kept)"
        summary = "; ".join(parts) + f". AUs changed: {moved}."
        if not change_age and not keep_age:
            summary += " (No age estimator is loaded, so the target age slider is used.)"
        return result.image, (shown.attention if shown is not None else None), summary

    def measured_outputs(path: str, index: int, model: str) -> tuple[int, list[Any]]:
        """(face count, values for the AU sliders, the measured state, the age slider and the info line)."""
        load_photo(path)
        count, aus, ages, warning = measure_on_gpu(path, index, model)
        index = min(index, count - 1)
        info = f"{count} face{'s' if count != 1 else ''} found. " + describe_ages(ages)
        info += f" The sliders start at the AUs measured on face {index + 1}." + warning
        age_value = gr.update(value=round(ages[index])) if ages[index] is not None else gr.skip()
        return count, [*[round(v, 2) for v in aus], aus, age_value, info]

    @user_errors
    def measure(photo: Any, face: Any, model: str) -> list[Any]:
        path = photo_path(photo)
        if path is None:
            return [gr.skip()] * (len(AU_NAMES) + 3)
        return measured_outputs(path, parse_face(face) or 0, model)[1]

    @user_errors
    def analyze(photo: Any, model: str) -> list[Any]:
        path = photo_path(photo)
        if path is None:
            return [face_update(0), *[gr.skip()] * len(AU_NAMES), None, gr.skip(), ""]
        count, outputs = measured_outputs(path, 0, model)
        return [face_update(count), *outputs]

    @user_errors  # also for what API callers send: AUs or an age out of range or not numbers
    def expression_edit(
        photo: Any, face: Any, model: str, change_age: bool, age: float, measured: list[float] | None, *au_values: float
    ) -> tuple[Any, Any, str]:
        """Edit the expression (17 AU intensities 0-5) and, if `change_age`, the age at the same time."""
        path = require_photo(photo)
        before = load_photo(path)
        values = check_aus(list(au_values))  # out of 0..5: refused, as by the Python API and the CLI
        after, attention, summary = edit_on_gpu(
            path, parse_face(face), model, bool(change_age), check_age(age, "target age"), aus_to_send(values, measured)
        )
        return (before, after), attention, summary

    def expression_edit_live(photo: Any, *args: Any) -> Any:
        if photo_path(photo) is None:
            return gr.skip(), gr.skip(), gr.skip()
        return expression_edit(photo, *args)

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            block = photo_block(editor_provider, prefix="expr", needs_aus=True)
            with gr.Row():
                change_age = gr.Checkbox(False, label="Change the age too", elem_id="expr-change-age", scale=1)
                age = gr.Slider(0, 100, value=35, step=1, label="Target age (years)", elem_id="expr-age", scale=3)
            gr.Markdown("**Presets** (FACS/EMFACS prototypes; *Wink* is AU45, which closes both eyes)")
            with gr.Row():
                preset_buttons = [gr.Button(p.name, size="sm", elem_id=f"preset-{p.name.lower()}") for p in PRESETS]
            with gr.Row():
                reset = gr.Button("Reset to the measured expression", elem_id="expr-reset")
                render = gr.Button("Render", variant="primary", elem_id="expr-run")
        with gr.Column(scale=2):
            result = gr.ImageSlider(
                label="Before / after (drag the handle)",
                type="pil",
                format="png",
                interactive=False,
                max_height=IMAGE_HEIGHT + 160,
                elem_id="expr-result",
            )
            with gr.Row():
                with gr.Column(min_width=220):
                    # the image's label chip is one short line: the legend goes in a caption under it
                    attention = gr.Image(
                        label="Attention mask",
                        type="pil",
                        format="png",
                        interactive=False,
                        height=220,
                        elem_id="expr-attention",
                    )
                    gr.Markdown("White = kept from the photo, dark = repainted.", elem_id="expr-attention-caption")
                summary = gr.Markdown("", elem_id="expr-summary")
    sliders: dict[str, gr.Slider] = {}

    def region_sliders(names: tuple[str, ...]) -> None:
        for name in names:
            sliders[name] = gr.Slider(0, AU_MAX, value=0, step=0.1, label=au_label(name), elem_id=f"au-{name}")

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

    edit_inputs = [block.photo, block.face, block.model, change_age, age, measured, *au_sliders]
    edit_outputs = [result, attention, summary]
    measure_outputs = [*au_sliders, measured, age, block.info]

    block.photo.change(
        analyze,
        [block.photo, block.model],
        [block.face, *measure_outputs],
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    ).success(expression_edit_live, edit_inputs, edit_outputs, preprocess=False, api_visibility="private")
    block.face.input(
        measure, [block.photo, block.face, block.model], measure_outputs, preprocess=False, api_visibility="private"
    ).success(expression_edit_live, edit_inputs, edit_outputs, preprocess=False, api_visibility="private")
    gr.on(
        [s.release for s in au_sliders] + [change_age.input, block.model.input],
        expression_edit_live,
        edit_inputs,
        edit_outputs,
        preprocess=False,
        api_visibility="private",
        trigger_mode="always_last",
    )
    age.release(lambda: True, None, change_age, api_visibility="private", queue=False).then(
        expression_edit_live, edit_inputs, edit_outputs, preprocess=False, api_visibility="private"
    )
    for preset, button in zip(PRESETS, preset_buttons, strict=True):
        button.click(_preset_setter(preset), au_sliders, au_sliders, api_visibility="private", queue=False).then(
            expression_edit_live, edit_inputs, edit_outputs, preprocess=False, api_visibility="private"
        )
    reset.click(
        lambda m: [gr.skip()] * len(AU_NAMES) if m is None else [round(v, 2) for v in m],
        measured,
        au_sliders,
        api_visibility="private",
        queue=False,
    ).then(expression_edit_live, edit_inputs, edit_outputs, preprocess=False, api_visibility="private")
    render.click(expression_edit, edit_inputs, edit_outputs, preprocess=False, api_name="expression")
