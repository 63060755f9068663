"""The ``ganime-age`` command: edit photos, prepare datasets, train.

Every subcommand builds the same dataclass configs the Python API uses; errors a user can fix are
printed as one line (exit code 2), not as a traceback (``--debug`` shows it). Arguments and the output
path are checked before any model is loaded, by the same checks the Python API and the Space use.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ganime_age import __version__
from ganime_age.errors import InvalidArgumentError, OutputPathError, exit_status

# Subcommands whose implementation lives elsewhere: name -> (module, help). Each module has main(argv).
DELEGATED: dict[str, tuple[str, str]] = {
    "prepare": ("training.prepare_data", "prepare a face dataset (detect, align, AUs, ages) as Parquet shards"),
    "train": ("training.train", "train a system with the accelerate trainer"),
    "reenact": ("ganime_age.reenactment", "give a photo the pose and expression of a driving photo or video"),
}


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line and exit status 2, like every other user error of the command (argparse
    prints its whole usage, 2-10 lines, before the message). Sub-parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@contextlib.contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """For delegated subcommands (prepare, train) whose modules build plain argparse parsers: their usage
    mistakes become one line too, while the command runs."""
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = OneLineParser.error  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]


def parse_au(text: str) -> tuple[str, float]:
    """'AU12=3' -> ('AU12', 3.0)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--au takes NAME=VALUE such as AU12=3, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name.strip(), float(value)  # the name is checked with the value, by validation.check_aus
    except ValueError:
        raise argparse.ArgumentTypeError(f"--au {text!r}: {value!r} is not a number") from None


def au_mapping(pairs: Sequence[tuple[str, float]]) -> dict[str, float]:
    """The --au pairs as a mapping; an AU given twice (``--au AU12=1 --au au12=4``) is refused, not last-wins."""
    from ganime_age.conditions import normalise_au_name

    spelled: dict[str, str] = {}
    for name, _ in pairs:
        canonical = normalise_au_name(name)
        if canonical in spelled:
            raise InvalidArgumentError(f"--au {canonical} is given twice ({spelled[canonical]!r} and {name!r})")
        spelled[canonical] = name
    return dict(pairs)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="ageing model: Hub id or folder (default: the embedded model)")
    parser.add_argument("--age-estimator", help="age estimator: Hub id or folder (default: the embedded one)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="generator arithmetic: bf16/fp16 are faster on GPUs (bf16 also on CPUs with AMX); fp16 needs a GPU",
    )


def build_editor(args: argparse.Namespace):  # -> FaceEditor
    from ganime_age.pipeline import EditorConfig, FaceEditor

    config = EditorConfig(
        model=args.model, age_estimator=args.age_estimator, device=args.device, precision=args.precision
    )
    return FaceEditor.from_pretrained(config=config)


def save_image(image: Any, path: Path) -> None:
    """Save, creating the folder; a write that fails (a full disk, a vanished folder) is an OutputPathError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    except (OSError, ValueError) as error:
        raise OutputPathError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}") from None


def describe_face_edit(face: Any, *, age_set: bool, aus_set: Sequence[str]) -> str:
    """What an edit applied to one face (pipeline.FaceEdit), from -> to:
    "face 0: age 34 -> 70, AU12 0.4 -> 3.0"; what was not asked for is reported as kept."""
    from ganime_age.conditions import AU_NAMES

    source = "?" if face.source_age is None else f"{face.source_age:.0f}"  # no age estimator loaded
    age = f"age {source} -> {face.target_age:.0f}" if age_set else f"age {source} kept"
    changes = [
        f"{n} {face.source_aus[AU_NAMES.index(n)]:.1f} -> {face.target_aus[AU_NAMES.index(n)]:.1f}" for n in aus_set
    ]
    return f"face {face.index}: {age}, {', '.join(changes) or 'AUs kept'}"


def run_edit(args: argparse.Namespace) -> int:
    from ganime_age.pipeline import pick_device
    from ganime_age.validation import (
        check_aus,
        check_not_an_input,
        check_optional_age,
        check_output_folder,
        check_output_path,
    )

    # every mistake that does not need the photo is found here, in a second, not after the whole edit
    age = check_optional_age(args.age)
    aus = check_aus(au_mapping(args.au)) if args.au else None
    if age is None and aus is None:  # else every face would be re-rendered unchanged, a silent rewrite
        raise InvalidArgumentError("nothing to change: give a target age (--age 70) and/or Action Units (--au AU12=3)")
    out = check_output_path(args.output)
    check_not_an_input(out, [args.photo], overwrite=args.overwrite)
    if args.mask_dir:
        check_output_folder(args.mask_dir, "--mask-dir")
    pick_device(args.device)
    editor = build_editor(args)
    result = editor.edit_details(args.photo, age=age, aus=aus, face=args.face)
    save_image(result.image, out)
    for face in result.faces:
        print(describe_face_edit(face, age_set=age is not None, aus_set=list(aus or {})))
    if args.mask_dir:
        for face in result.faces:
            if face.attention is not None:
                save_image(face.attention, Path(args.mask_dir) / f"{out.stem}_face{face.index}_attention.png")
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="ganime-age", description="Edit the age, expression and pose of faces in photos.")
    parser.add_argument("--version", action="version", version=f"ganime-age {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    edit = sub.add_parser("edit", help="change the age and/or AU intensities of the faces in a photo")
    edit.add_argument("photo", help="input photo (JPEG, PNG, WebP, ...)")
    edit.add_argument("--age", type=float, help="target age in years, 0-100 (default: keep)")
    edit.add_argument(
        "--au",
        type=parse_au,
        action="append",
        metavar="AUxx=V",
        help="set an Action Unit intensity 0-5, e.g. --au AU12=3 (repeatable)",
    )
    edit.add_argument(
        "--face", type=int, help="edit only this face: 0 = leftmost, numbered left to right (default: every face)"
    )
    edit.add_argument("-o", "--output", required=True, help="output image path")
    edit.add_argument("--overwrite", action="store_true", help="allow -o to be the input photo (it is replaced)")
    edit.add_argument("--mask-dir", help="also save each face's attention mask here")
    edit.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback")
    add_model_options(edit)
    edit.set_defaults(handler=run_edit, parser=edit)

    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)  # listed here, parsed by its own module
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def command() -> int:
        if argv and argv[0] in DELEGATED:
            with one_line_usage_errors():
                return int(importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:]) or 0)
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # said by the subcommand's parser, so the hint names its --help ("ganime-age edit --help")
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return args.handler(args)

    return exit_status(command, prog="ganime-age", also=(FileNotFoundError,), debug="--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
