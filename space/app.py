"""Assemble the Space from its tabs, and launch it.

Runtime choices, each overridable by an environment variable:
- GANIME_AGE_MODEL: the default ageing model (Hub id or folder; else the embedded one);
- GANIME_AGE_CONCURRENCY (2): events run at once. The FaceEditor of a model is used by one event at a
  time (space.models.EditorProvider.session), so more workers than CPU cores only wait; two let one
  request decode and check its photo while another runs the edit;
- GANIME_AGE_QUEUE_SIZE (128): requests waiting in the queue before new ones are turned away. An edit of
  an analysed photo takes ~0.1-0.3 s on a CPU, so 50 visitors at once (each with an analysis and an
  edit queued) are all served within seconds instead of being refused with "Queue is full";
- GANIME_AGE_MAX_UPLOAD ("15mb"): the largest file a visitor may upload;
- GANIME_AGE_MAX_PIXELS (50000000), GANIME_AGE_MEMORY_BUDGET ("4GB"), GANIME_AGE_ADMIT_WAIT (45): the largest
  photo, the server's whole resident memory, and how long a request waits for memory (space.budget);
- GANIME_AGE_CACHE_MAX_AGE (3600): seconds an upload or an output stays in gradio's cache (gradio's
  ``delete_cache``); GANIME_AGE_OUTPUT_FORMAT (jpeg, webp or png; default PNG for PNG uploads, else JPEG):
  how results are written (space.outputs).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

import gradio as gr

from space.common import FACE_NUMBERING, FACE_NUMBERING_URL, NOT_UPLOADED, OPTIONAL_INPUT, refusal
from space.gpu import on_spaces, on_zero_gpu
from space.models import EditorProvider, available_models
from space.tabs import TAB_MODULES, load_tabs

logger = logging.getLogger(__name__)

TITLE = "ganime-age: age and expression editing of real face photos"
# What the embedded default model is: one paragraph, shared word for word with the README and the model card
# (tests/test_readme.py checks), so the Space never tells another story than they do.
DEFAULT_MODEL_STORY = files("ganime_age") / "weights" / "DEFAULT_MODEL.md"


def header() -> str:
    """The one line above the tabs: what the Space does (the rest waits in :func:`about`, behind an expander)."""
    return (
        "**ganime-age** changes the **age** and the **facial expression** of the faces in a real photo: "
        "upload one (or pick an example), then move a slider."
    )


ABOUT_LABEL = "About: how to use it, the model, face numbering, licence (non-commercial research only)"


def about() -> str:
    """The Markdown of the closed "About" accordion under the header: how to use the Space, how faces are
    numbered, what today's default model is (word for word the README's and the card's), and the licence."""
    return f"""
Change the **age** and the **facial expression** (17 FACS Action Units) of the faces in a real photo.
Upload a photo (or pick an example), then move the target-age or AU sliders: releasing a slider re-renders
the edit. The edited faces are pasted back into the whole photo; drag the handle on the result to compare
before and after. {FACE_NUMBERING} The numbering is [the same everywhere]({FACE_NUMBERING_URL}): here, in the
API, the CLI and Python.

{DEFAULT_MODEL_STORY.read_text(encoding="utf-8").strip()}

The engine and the age estimator were fitted on UTKFace and CFEE, which are for **non-commercial research
only**; so are these edits.
Photos are processed on this machine and not stored beyond Gradio's temporary upload cache.
"""


# The age strip's captions ("face 0: age 45 (40-49)") under their portraits, whole, in balanced lines: gradio draws
# a caption over the picture's bottom corner on one line at most 80% of a thumbnail wide, which cut every caption of
# a five-column strip with an ellipsis. Each portrait keeps a 3:4 frame above its caption.
SPACE_CSS = """
#age-strip .thumbnail-item { display: flex; flex-direction: column; aspect-ratio: auto; }
#age-strip .thumbnail-item > img { flex: none; width: 100%; height: auto; aspect-ratio: 3 / 4; }
#age-strip .caption-label {
    position: static;
    max-width: none;
    border: none;
    border-radius: 0;
    opacity: 1;
    text-align: center;
    white-space: normal;
    text-wrap: balance;
    overflow: visible;
    text-overflow: clip;
}
"""


QUEUE_SIZE = 128
CACHE_MAX_AGE = 3600  # seconds an upload or an output stays in gradio's cache
# Gradio's batch mode (batch=True) is not used: a batch fails as a whole, so one visitor's photo without a
# face would turn every other visitor's edit in that batch into an error; within one request the editor
# already edits the faces of a photo together.


def name_gradio_refusals() -> None:
    """Give the requests gradio itself refuses, before an event runs, a message instead of a bare "Error".

    gradio answers its own refusals (file data naming a path outside its upload folder, a payload its models
    reject) with an empty message when ``show_error`` is off, and with the exception's text (server paths
    included) when it is on. Here they are named by their cause, with no path; the Space's own failures are
    already messages (``space.common.user_errors``).
    """
    from gradio import queueing, utils
    from gradio.exceptions import Error, InvalidPathError

    if getattr(utils.error_payload, "names_refusals", False):
        return
    original = utils.error_payload

    def error_payload(error: BaseException | None, show_error: bool) -> dict[str, Any]:
        if error is None or isinstance(error, Error):
            return original(error, show_error)
        if isinstance(error, InvalidPathError):
            message, title = NOT_UPLOADED, "No photo"
        else:
            message = (
                f"This request was refused: its data does not fit this endpoint ({type(error).__name__}). "
                "Check the parameters against the API page (client.view_api())."
            )
            title = "Invalid request"
        return original(Error(message, title=title, print_exception=False), show_error)

    error_payload.names_refusals = True  # type: ignore[attr-defined]
    utils.error_payload = error_payload
    queueing.error_payload = error_payload  # imported by name there
    count_the_values()


def count_the_values() -> None:
    """Refuse a request with too few values in one short line of the log, like every other refusal.

    gradio's own check raised a ValueError holding the repr of every value sent: the queue printed its 20-line
    traceback, so one call with a 1 MB string among four values (where /age takes five) wrote 1 MB of log. Here
    the same check says how many values came and how many the endpoint takes, and repeats none of them. Inputs
    added to an endpoint later (:data:`space.common.OPTIONAL_INPUT`: /age's own photos and their ages) may be left
    out, as a request written before them does; they are None.
    """
    from gradio.blocks import Blocks

    if getattr(Blocks.validate_inputs, "counts_values", False):
        return

    def validate_inputs(self: Blocks, block_fn: Any, inputs: list[Any]) -> None:
        needed, got = len(block_fn.inputs), len(inputs)
        optional = 0  # trailing inputs added to an endpoint later (OPTIONAL_INPUT): a request made before may omit them
        while optional < needed and getattr(block_fn.inputs[needed - 1 - optional], OPTIONAL_INPUT, False):
            optional += 1
        if needed - optional <= got < needed:
            inputs.extend([None] * (needed - got))  # gradio reads the values from this same list
        elif got < needed:
            name = block_fn.api_name if isinstance(block_fn.api_name, str) else None
            endpoint = f"/{name}" if name else "this event"
            takes = f"{needed - optional} values ({needed} with the optional ones)" if optional else f"{needed} values"
            raise refusal(
                f"{endpoint} takes {takes} and this request sent {got}: check the parameters against the "
                "API page (client.view_api()).",
                "Invalid request",
            )

    validate_inputs.counts_values = True  # type: ignore[attr-defined]
    Blocks.validate_inputs = validate_inputs  # type: ignore[method-assign]


def cache_policy() -> tuple[int, int]:
    """gradio's ``delete_cache`` (how often, how old) in seconds: uploads and outputs older than
    ``GANIME_AGE_CACHE_MAX_AGE`` (default an hour) are removed, checked every tenth of that age (at most every
    ten minutes)."""
    age = _env_int("GANIME_AGE_CACHE_MAX_AGE", CACHE_MAX_AGE)
    return max(1, min(600, age // 10)), age


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def build_app(editor_provider: EditorProvider | None = None, tabs: Sequence[str] = TAB_MODULES) -> gr.Blocks:
    """The whole Space as a `gr.Blocks`: a header and one tab per module in `tabs`; loads no model."""
    editor_provider = editor_provider or EditorProvider()
    name_gradio_refusals()
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=cache_policy()) as demo:
        gr.Markdown(header(), elem_id="header")
        with gr.Accordion(ABOUT_LABEL, open=False, elem_id="about"):
            gr.Markdown(about(), elem_id="about-text")
        with gr.Tabs():
            for module in load_tabs(list(tabs)):
                with gr.Tab(module.TITLE, id=module.__name__.rsplit(".", 1)[-1]):
                    module.build_tab(editor_provider)
    demo.queue(
        default_concurrency_limit=_env_int("GANIME_AGE_CONCURRENCY", 2),
        max_size=_env_int("GANIME_AGE_QUEUE_SIZE", QUEUE_SIZE),
    )
    return demo


def launch_options() -> dict[str, Any]:
    """Keyword arguments for `demo.launch` (the upload limit, the theme, the style of the gallery captions)."""
    return {
        "max_file_size": os.environ.get("GANIME_AGE_MAX_UPLOAD", "15mb"),
        "theme": gr.themes.Soft(),
        "css": SPACE_CSS,
        "show_error": False,  # user mistakes arrive as gr.Error; anything else shows a bare "Error", no traceback
    }


def main(argv: Sequence[str] | None = None) -> None:
    """`python app.py [--model M] [--device D] [--precision P] [--port P] [--host H] [--lazy] [--share]`."""
    parser = argparse.ArgumentParser(description="Run the ganime-age Gradio Space locally.")
    parser.add_argument("--model", help="default ageing model: Hub id or folder (else $GANIME_AGE_MODEL / embedded)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default=os.environ.get("GANIME_AGE_PRECISION", "fp32"),
        help="a refiner's arithmetic (default $GANIME_AGE_PRECISION or fp32); bf16 on AMX CPUs and GPUs; fp16 needs a GPU",
    )
    parser.add_argument("--host", default=None, help="server name (default 127.0.0.1; 0.0.0.0 to serve the LAN)")
    parser.add_argument("--port", type=int, default=None, help="port (default $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument(
        "--lazy",
        action="store_true",
        help="load the default model on its first request (default: before serving; a refiner loads when first picked)",
    )
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    args = parser.parse_args(argv)
    if on_zero_gpu():
        import spaces  # noqa: F401  (ZeroGPU must patch torch before anything initialises CUDA)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    device = args.device or ("cuda" if on_zero_gpu() else None)
    provider = EditorProvider(available_models(env_model=args.model), device=device, precision=args.precision)
    if not args.lazy or on_spaces():
        # On ZeroGPU each GPU call runs in a forked worker: models loaded there are lost, so load the default
        # editor here, once, in the main process (ZeroGPU keeps "cuda" tensors parked until a GPU is attached).
        # Loaded up front, it is also inside the idle level the memory budget is measured from. The refiners
        # (1-4 MB each, none better than the engine) load when first picked (EditorProvider.preload).
        provider.preload()
    provider.budget.settle()
    demo = build_app(provider)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share or None, **launch_options())
