"""The ganime-age Gradio Space: age and AU (expression) editing of real photos.

``build_app()`` returns the `gr.Blocks`; ``main()`` launches it. Importing this package loads no
model and starts nothing (and imports neither gradio nor torch until one of these is called).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr

__all__ = ["build_app", "main"]


def build_app(*args: Any, **kwargs: Any) -> gr.Blocks:
    from space.app import build_app as _build_app

    return _build_app(*args, **kwargs)


def main(argv: list[str] | None = None) -> None:
    from space.app import main as _main

    _main(argv)
