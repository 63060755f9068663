"""Assemble the Space from its tabs, and launch it.

Runtime choices, each overridable by an environment variable:
- GANIME_AGE_MODEL: the default ageing model (Hub id or folder; else the embedded one);
- GANIME_AGE_CONCURRENCY (2): events run at once. The FaceEditor of a model is used by one event at a
  time (space.models.EditorProvider.session), so more workers than CPU cores only wait; two let one
  request decode and check its photo while another runs the edit;
- GANIME_AGE_QUEUE_SIZE (128): requests waiting in the queue before new ones are turned away. An edit of
  an analysed photo takes ~0.1-0.3 s on a CPU, so 50 visitors at once (each with an analysis and an
  edit queued) are all served within seconds instead of being refused with "Queue is full";
- GANIME_AGE_MAX_UPLOAD ("15mb"): the largest file a visitor may upload.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import gradio as gr

from space.common import FACE_NUMBERING, FACE_NUMBERING_URL
from space.gpu import on_spaces, on_zero_gpu
from space.models import EditorProvider, available_models
from space.tabs import TAB_MODULES, load_tabs

logger = logging.getLogger(__name__)

TITLE = "ganime-age: age and expression editing of real face photos"
# What the embedded default model is: one paragraph, shared word for word with the README and the model card
# (tests/test_readme.py checks), so the Space never tells another story than they do.
DEFAULT_MODEL_STORY = files("ganime_age") / "weights" / "DEFAULT_MODEL.md"


def header() -> str:
    """The Markdown above the tabs: what the Space does, what today's default model is, how faces are numbered."""
    return f"""
# ganime-age
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


QUEUE_SIZE = 128
# Gradio's batch mode (batch=True) is not used: a batch fails as a whole, so one visitor's photo without a
# face would turn every other visitor's edit in that batch into an error; within one request the editor
# already edits the faces of a photo together.


def write_image_cache_atomically() -> None:
    """Make gradio's image cache safe for visitors who get the same picture at the same time.

    gradio names a cached output by its content hash and rewrites the file on every request; while
    one visitor downloaded the "before" photo another visitor's identical photo truncated and rewrote
    it, and the download failed ("Too little data for declared Content-Length"; seen with 50 visitors
    using the same example). Same name means same content, so an existing file is kept, and a new one
    appears in one atomic rename, never half-written.
    """
    from gradio import processing_utils

    if getattr(processing_utils.save_pil_to_cache, "atomic", False):
        return

    def save_pil_to_cache(img: Any, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = processing_utils.encode_pil_to_bytes(img, format)
        target = (Path(cache_dir) / processing_utils.hash_bytes(data) / f"{name}.{format}").resolve()
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_bytes(data)
            os.replace(partial, target)
        return str(target)

    save_pil_to_cache.atomic = True  # type: ignore[attr-defined]
    processing_utils.save_pil_to_cache = save_pil_to_cache


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def build_app(editor_provider: EditorProvider | None = None, tabs: Sequence[str] = TAB_MODULES) -> gr.Blocks:
    """The whole Space as a `gr.Blocks`: a header and one tab per module in `tabs`; loads no model."""
    editor_provider = editor_provider or EditorProvider()
    write_image_cache_atomically()
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(header(), elem_id="header")
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
    """Keyword arguments for `demo.launch` (the upload limit, the theme)."""
    return {
        "max_file_size": os.environ.get("GANIME_AGE_MAX_UPLOAD", "15mb"),
        "theme": gr.themes.Soft(),
        "show_error": False,  # user mistakes arrive as gr.Error; anything else shows a bare "Error", no traceback
    }


def main(argv: Sequence[str] | None = None) -> None:
    """`python app.py [--model M] [--device D] [--precision P] [--port P] [--host H] [--preload] [--share]`."""
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
    parser.add_argument("--preload", action="store_true", help="load the models before serving (default on Spaces)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    args = parser.parse_args(argv)
    if on_zero_gpu():
        import spaces  # noqa: F401  (ZeroGPU must patch torch before anything initialises CUDA)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    device = args.device or ("cuda" if on_zero_gpu() else None)
    provider = EditorProvider(available_models(env_model=args.model), device=device, precision=args.precision)
    if args.preload or on_spaces():
        # On ZeroGPU each GPU call runs in a forked worker: models loaded there are lost, so load them
        # here, once, in the main process (ZeroGPU keeps "cuda" tensors parked until a GPU is attached).
        provider.preload()
    demo = build_app(provider)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share or None, **launch_options())
