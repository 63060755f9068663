"""``ganime-age edit``: change the age and/or the AU intensities of the faces in a photo."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganime_age.cli.options import add_editor_options, load_editor, save_image
from ganime_age.cli.own import add_own_options, check_own_options, load_person
from ganime_age.errors import InvalidArgumentError


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


def describe_face_edit(face: Any, *, age_set: bool, aus_set: Sequence[str]) -> str:
    """What an edit applied to one face (editing.FaceEdit), from -> to:
    "face 0: age 34 -> 70, AU12 0.4 -> 3.0"; what was not asked for is reported as kept."""
    from ganime_age.conditions import AU_NAMES

    source = "?" if face.source_age is None else f"{face.source_age:.0f}"  # no age estimator loaded
    age = f"age {source} -> {face.target_age:.0f}" if age_set else f"age {source} kept"
    changes = [
        f"{n} {face.source_aus[AU_NAMES.index(n)]:.1f} -> {face.target_aus[AU_NAMES.index(n)]:.1f}" for n in aus_set
    ]
    return f"face {face.index}: {age}, {', '.join(changes) or 'AUs kept'}"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    edit = commands.add_parser("edit", help="change the age and/or AU intensities of the faces in a photo")
    edit.add_argument("photo", help="input photo (JPEG, PNG, WebP, ...)")
    edit.add_argument("--age", type=float, help="target age in years, 0-100 (default: keep)")
    edit.add_argument(
        "--from-age", type=float, help="the face's current age, where the estimate is wrong (default: estimated)"
    )
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
    add_own_options(edit)
    add_editor_options(edit)
    edit.set_defaults(handler=run, parser=edit)
    return edit


def run(args: argparse.Namespace) -> int:
    from ganime_age.validation import (
        check_aus,
        check_not_an_input,
        check_optional_age,
        check_output_folder,
        check_output_path,
    )

    # every mistake that does not need the photo is found here, in a second, not after the whole edit
    age = check_optional_age(args.age)
    source_age = check_optional_age(args.from_age, "--from-age")
    aus = check_aus(au_mapping(args.au)) if args.au else None
    if age is None and aus is None:  # else every face would be re-rendered unchanged, a silent rewrite
        raise InvalidArgumentError("nothing to change: give a target age (--age 70) and/or Action Units (--au AU12=3)")
    out = check_output_path(args.output)
    check_not_an_input(out, [args.photo], overwrite=args.overwrite)
    if args.mask_dir:
        check_output_folder(args.mask_dir, "--mask-dir")
    check_own_options(args)
    editor = load_editor(args)
    person = load_person(args, editor)
    result = editor.edit_details(args.photo, age=age, aus=aus, face=args.face, source_age=source_age, person=person)
    save_image(result.image, out)
    for face in result.faces:
        print(describe_face_edit(face, age_set=age is not None, aus_set=list(aus or {})))
    if args.mask_dir:
        for face in result.faces:
            if face.attention is not None:
                save_image(face.attention, Path(args.mask_dir) / f"{out.stem}_face{face.index}_attention.png")
    print(f"wrote {out}")
    return 0
