"""The person's own photos on the command line (issue 56): ``--own PHOTO:AGE``, ``--own-folder DIR``,
``--person FOLDER`` and ``--save-person FOLDER``, shared by the commands that edit an age."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

from ganime_age.errors import InvalidArgumentError

AGES_FILE = "ages.csv"  # in an --own-folder: photo,age per line (age empty: estimated)
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
MAX_CSV_BYTES = 1_000_000


def parse_own(text: str) -> tuple[str, float | None]:
    """'me_at_6.jpg:6' -> ('me_at_6.jpg', 6.0); 'me.jpg:' or 'me.jpg' -> estimated (the last ':' splits, so a
    Windows drive letter stays in the path)."""
    photo, _, age = text.rpartition(":") if ":" in text else (text, "", "")
    if not photo:  # "C" of "C:/x.jpg" with no age, or ":6"
        photo, age = text, ""
    if age.strip() in ("", "?"):
        return photo, None
    try:
        return photo, float(age)
    except ValueError:
        if Path(text).exists():  # a path with a colon in it and no age
            return text, None
        raise argparse.ArgumentTypeError(f"--own takes PHOTO:AGE such as me_at_6.jpg:6, got {text!r}") from None


def add_own_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--own",
        type=parse_own,
        action="append",
        metavar="PHOTO:AGE",
        help="one of the person's own photos and their age in it (PHOTO: alone to estimate it), repeatable: an "
        "edit to an age near theirs takes their own features there",
    )
    parser.add_argument(
        "--own-folder",
        help=f"a folder of the person's own photos, their ages in its {AGES_FILE} (photo,age; without the file "
        "or an age, estimated)",
    )
    parser.add_argument("--person", help="a person saved with --save-person (or Person.save_pretrained)")
    parser.add_argument("--save-person", help="also save the person made of --own/--own-folder here, for reuse")


def folder_photos(folder: Path) -> list[tuple[str, float | None]]:
    """The (photo, age) pairs of an --own-folder: its ages.csv's rows, else every photo in it (ages estimated)."""
    if not folder.is_dir():
        raise InvalidArgumentError(f"--own-folder {folder}: not a folder")
    table = folder / AGES_FILE
    if not table.is_file():
        return [(str(p), None) for p in sorted(folder.iterdir()) if p.suffix.lower() in PHOTO_SUFFIXES]
    if table.stat().st_size > MAX_CSV_BYTES:
        raise InvalidArgumentError(f"{table} is larger than {MAX_CSV_BYTES:,} bytes")
    pairs: list[tuple[str, float | None]] = []
    with table.open(newline="", encoding="utf-8") as handle:
        for n, row in enumerate(csv.reader(handle), 1):
            cells = [c.strip() for c in row]
            if not cells or not cells[0] or (n == 1 and cells[0].lower() in ("photo", "file", "name")):
                continue
            age = cells[1] if len(cells) > 1 else ""
            try:
                pairs.append((str(folder / cells[0]), float(age) if age else None))
            except ValueError:
                raise InvalidArgumentError(f"{table} line {n}: {age!r} is not an age in years") from None
    return pairs


def check_own_options(args: argparse.Namespace) -> None:
    """Mistakes found before any photo is read: a saved person and new photos together, a folder that is not."""
    given = bool(args.own or args.own_folder)
    if args.person and given:
        raise InvalidArgumentError("--person is a saved person: give it, or --own/--own-folder, not both")
    if args.save_person and not given:
        raise InvalidArgumentError("--save-person saves a person made of --own/--own-folder: give some")
    if args.own_folder and not Path(args.own_folder).is_dir():
        raise InvalidArgumentError(f"--own-folder {args.own_folder}: not a folder")


def load_person(args: argparse.Namespace, editor: Any) -> Any:  # -> Person | None
    """The person the options name (made now, or loaded), its notes printed; None without one."""
    from ganime_age.editing.person import Person

    if args.person:
        return Person.from_pretrained(args.person)
    pairs = list(args.own or []) + (folder_photos(Path(args.own_folder)) if args.own_folder else [])
    if not pairs:
        return None
    person = editor.person(pairs)
    for note in person.notes:
        print(f"note: {note}")
    if args.save_person:
        person.save_pretrained(args.save_person)
        print(f"saved the person ({len(person)} photos) to {args.save_person}")
    return person
