"""What every command shares: one-line usage errors, the editor options, loading the editor, saving a picture."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from ganime_age.errors import OutputPathError


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line and exit status 2, like every other user error of the command (argparse
    prints its whole usage, 2-10 lines, before the message). Sub-parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_editor_options(parser: argparse.ArgumentParser) -> None:
    """Which editor (or model) to load, on which device, in which precision: the same for every command."""
    parser.add_argument(
        "--model",
        help="editor or model: Hub id or folder; an editor folder's editor.json names its parts, a single model "
        "(an engine or a refiner) replaces the default editor's part (default: $GANIME_AGE_MODEL, else the "
        "embedded editor)",
    )
    parser.add_argument(
        "--refiner",
        help="a trained refiner on top of the engine: a shipped name (ganimation-age, ...; a wrong one lists them), "
        "'engine' for the engine alone, a folder or a Hub id (default: the editor's own; the embedded editor has none)",
    )
    parser.add_argument("--age-estimator", help="age estimator: Hub id or folder (default: the editor's own)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="a refiner's arithmetic: bf16/fp16 are faster on GPUs (bf16 also on CPUs with AMX); fp16 needs a GPU",
    )
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback")


def load_editor(args: argparse.Namespace, **parts: Any) -> Any:  # -> FaceEditor
    """The editor the options name (`parts`: more parts by role, e.g. reenactor=...)."""
    from ganime_age.editing import EditorConfig, FaceEditor, pick_device

    pick_device(args.device)  # a device that does not exist is refused before any model is read
    config = EditorConfig(device=args.device, precision=args.precision)
    return FaceEditor.from_pretrained(
        args.model, refiner=args.refiner, age_estimator=args.age_estimator, config=config, **parts
    )


def save_image(image: Any, path: Path) -> None:
    """Save, creating the folder; a write that fails (a full disk, a vanished folder) is an OutputPathError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    except (OSError, ValueError) as error:
        raise OutputPathError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}") from None
