"""The Age tab's "Your photos at other ages" (issue 56): a visitor's own photos guide the edit of their face.

A visitor uploads a few photos of the same person at other ages and, optionally, the age in each (one text field,
comma-separated in the order of the photos; blank: estimated). The person (``editor.person``) is built once per
set of uploads and kept under the photos' content hashes and ages (:class:`PersonCache`), so a slider move costs
an edit, not a new read of every photo. Every mistake (a file that is no photo, an age outside 0-100, too many
photos, a photo past the Space's pixel limit) is refused before any photo is decoded, naming the photo; photos
without a usable face are skipped, and the line under the result says so.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ganime_age.errors import GanimeAgeError, InvalidArgumentError, NoFaceError, echo
from space.common import OPTIONAL_INPUT, _hint, _not_a_photo, photo_path, refusal, without_server_paths

MAX_OWN_PHOTOS = 10  # a person of 10 photos is built in a few seconds (benchmarks/bench_person.py)
MAX_AGES_TEXT = 400  # characters: ten ages with their commas are a few dozen
PARAMETER = "own_photos"
AGES_INFO = "One age per photo, comma-separated, in the order of the photos; leave blank to estimate (all or one)."


@dataclass(frozen=True)
class OwnPhotos:
    """The visitor's own photos as the server stores them, their ages (None: estimated) and the set's key (content
    hashes and ages: the same photos uploaded again are the same person). Picklable: it crosses ZeroGPU's fork."""

    paths: tuple[str, ...]
    ages: tuple[float | None, ...]
    key: str

    @property
    def names(self) -> list[str]:
        return [Path(p).name for p in self.paths]


def own_paths(payload: Any) -> list[str]:
    """The stored paths of a gr.File (multiple) payload: a list of file data, one file data, or None/[] for none.
    Anything but a stored upload is refused as the main photo is (:func:`space.common.photo_path`)."""
    if payload is None or payload == "":
        return []
    items = payload if isinstance(payload, (list, tuple)) else [payload]
    if len(items) > MAX_OWN_PHOTOS:
        raise refusal(
            f"You gave {len(items)} photos at other ages; this Space uses at most {MAX_OWN_PHOTOS}. Keep the ones "
            "nearest the ages you want to see.",
            "Too many photos",
        )
    paths = [photo_path(item, PARAMETER) for item in items]
    if any(p is None for p in paths):
        _not_a_photo(None, PARAMETER)
    return [str(p) for p in paths]


def parse_ages(text: Any, names: Sequence[str]) -> list[float | None]:
    """One age (or None: estimate it) per photo from the ages field: blank for all estimated, else comma-separated
    in the order of the photos, a blank item estimated."""
    from ganime_age.validation import check_age

    if text is None or (isinstance(text, str) and not text.strip()):
        return [None] * len(names)
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise refusal(f"The ages must be text such as '4, 7, 12', not {type(text).__name__}.", "Invalid ages")
    if len(text) > MAX_AGES_TEXT:
        raise refusal(f"The ages field holds {len(text):,} characters; give one age per photo.", "Invalid ages")
    items = [item.strip() for item in text.replace(";", ",").split(",")]
    while len(items) > len(names) and not items[-1]:
        items.pop()  # a trailing comma
    if len(items) != len(names):
        raise refusal(
            f"You gave {len(items)} age{'s' if len(items) != 1 else ''} for {len(names)} photo"
            f"{'s' if len(names) != 1 else ''} at other ages: give one per photo, comma-separated in the order of "
            "the photos (a blank one is estimated), or leave the field blank to estimate them all.",
            "Invalid ages",
        )
    ages: list[float | None] = []
    for item, name in zip(items, names, strict=True):
        if not item:
            ages.append(None)
            continue
        try:
            value = float(item)
        except ValueError:
            raise refusal(f"{echo(item)} (the age of {name}) is not a number of years.", "Invalid ages") from None
        try:
            ages.append(check_age(value, f"the age of {name}"))
        except InvalidArgumentError as error:
            raise refusal(f"{str(error).rstrip('.')}.", "Invalid ages") from None
    return ages


def content_key(paths: Sequence[str], ages: Sequence[float | None]) -> str:
    """The set's key: each photo's bytes and its age, in order."""
    digest = hashlib.sha256()
    for path, age in zip(paths, ages, strict=True):
        photo = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                photo.update(chunk)
        digest.update(photo.digest())
        digest.update(repr(age).encode())
    return digest.hexdigest()


def own_photos(payload: Any, ages_text: Any) -> OwnPhotos | None:
    """The request's own photos checked (count, stored uploads, ages), or None where none were given (ages typed
    without photos are left unused: the field may be filled first)."""
    paths = own_paths(payload)
    if not paths:
        return None
    names = [Path(p).name for p in paths]
    ages = parse_ages(ages_text, names)
    return OwnPhotos(tuple(paths), tuple(ages), content_key(paths, ages))


def own_pixels(own: OwnPhotos | None, max_pixels: int) -> int:
    """The most pixels one of the photos has (a person is built one photo at a time), reading headers only: a
    photo past the Space's pixel limit, damaged or no image at all is refused here, by name."""
    from ganime_age.faces import read_image_header

    if own is None:
        return 0
    largest = 0
    for path, name in zip(own.paths, own.names, strict=True):
        try:
            largest = max(largest, read_image_header(path, max_pixels=max_pixels).pixels)
        except GanimeAgeError as error:
            title, advice = _hint(error)
            detail = without_server_paths(str(error).strip())[:200]
            raise refusal(f"Your photo at another age {echo(name)}: {advice} Details: {detail}", title) from None
    return largest


class PersonCache:
    """People built from visitors' own photos, the few most recent, by model and :attr:`OwnPhotos.key`."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._people: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._people

    def get(self, editor: Any, model: str, own: OwnPhotos) -> Any:
        """The person of `own` for `model`'s editor: from the cache, or built now (skipped photos noted)."""
        key = (model, own.key)
        with self._lock:
            if key in self._people:
                self._people.move_to_end(key)
                return self._people[key]
        try:
            with warnings.catch_warnings():  # its notes say it on the page; the log needs no warning per photo
                warnings.simplefilter("ignore", UserWarning)
                person = editor.person(list(zip(own.paths, own.ages, strict=True)))
        except NoFaceError as error:
            detail = without_server_paths(str(error)).split(": ", 1)[-1]
            raise refusal(
                f"None of your photos at other ages shows a usable face ({detail}). Use photos where the face is "
                "clearly visible and turned towards the camera.",
                "No face in your photos",
            ) from None
        with self._lock:
            self._people[key] = person
            while len(self._people) > self.size:
                self._people.popitem(last=False)
        return person


PEOPLE = PersonCache()


def describe_use(person: Any, target_age: float) -> str:
    """The line under the result: which of the photos the edit to `target_age` takes (by age), what was skipped."""
    import numpy as np

    from ganime_age.engine.own_photos import OWN_FAR, own_counts, own_share

    ages = person.ages
    share = own_share(ages, float(target_age))
    used = np.flatnonzero(own_counts(ages, person.frontal, float(target_age)) > 0.0) if share > 0.0 else []
    shown = ", ".join(f"{a:g}" for a in sorted(round(float(ages[i])) for i in used))
    if len(used):
        line = f"Using {len(used)} of your photos (age{'s' if len(used) != 1 else ''} {shown})"
    else:
        every = ", ".join(f"{a:g}" for a in sorted(round(float(a)) for a in ages))
        line = (
            f"Not using your photos (ages {every}): none is within {OWN_FAR:g} years of {float(target_age):g}, "
            "so this is the general edit"
        )
    skipped = [note.split(": skipped, ", 1) for note in person.notes if ": skipped, " in note]
    if skipped:
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped)
        line += f"; {len(skipped)} skipped ({reasons})"
    left_out = [note.split(": ", 1)[0] for note in person.notes if ": left out, " in note]
    if left_out:
        line += f"; {', '.join(left_out)} left out (plainly someone else)"
    unlike = [note.split(": ", 1)[0] for note in person.notes if ": kept, " in note and "someone else" in note]
    if unlike:
        line += f"; {', '.join(unlike)} looks like someone else"
    return line + "."


def own_inputs() -> tuple[gr.File, gr.Textbox]:
    """The upload (several photos) and the ages field, in a closed accordion: the first screen stays as it was."""
    from space.common import uploaded_input

    with gr.Accordion("Your photos at other ages (optional)", open=False, elem_id="age-own-panel"):
        gr.Markdown(
            "Photos of the same person at other ages (up to 10): an edit to an age near one of them takes the "
            "person's own features from it.",
            elem_id="age-own-about",
        )
        files = uploaded_input(
            gr.File(
                file_count="multiple",
                file_types=["image"],
                label="Your photos at other ages",
                elem_id="age-own",
            ),
            PARAMETER,
        )
        ages = gr.Textbox(
            value="",
            label="Their ages (years)",
            placeholder="e.g. 4, 7, 12",
            info=AGES_INFO,
            max_length=MAX_AGES_TEXT,
            elem_id="age-own-ages",
        )
    for added in (files, ages):  # added to /age and /age_strip after their first version: HTTP callers may omit them
        setattr(added, OPTIONAL_INPUT, True)
    return files, ages


def caption_with_person(caption: str, person: Any, years: float) -> str:
    """An age strip's caption, saying where that age's portrait takes the person's own photos."""
    from ganime_age.engine.own_photos import own_share

    return caption + (", your photos" if person is not None and own_share(person.ages, years) > 0.0 else "")
