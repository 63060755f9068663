"""How fast "your own ageing" is (issue 56): a person built from 10 of their photos, and an edit with the person
next to the same edit without.

    python benchmarks/bench_person.py [--threads 2] [--repeats 5] [--json runs/bench_person.json]
    python benchmarks/bench_person.py --smoke          # one repeat, a person of 2 photos

The person is FG-NET's person 029 (photos at 1 to 31 years, about 400x500 px), read from the real data
(``GANIME_AGE_SHARED``, else ``--shared``): ``editor.person`` on 10 of their photos with their ages given, each
photo read from its file (detection, landmarks, the sex classifier, the drawing into the engine's template, and
the face recogniser's comparison where its weights are at hand). Two edits: their photo at 29 made 5 (the own
faces matched, nothing put in plainly) and their photo at 5 made 25 (their photos at 20-31 cover it: put in
plainly, :func:`ganime_age.engine.own_photos.plain_share`), each cold (the editor's photo cache cleared, so the
photo's analysis is part of it; with the person, also the face's match to their own faces) and warm (a slider
move over 6 years, half a year a step: the analysis and the match cached). Targets (issue 56): a person from 10
photos in at most 5 s; an edit with a person as fast as one without (here: within 10%), 2 CPU cores.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
from pathlib import Path
from typing import Any

from benchmarks.common import environment, markdown_table, run_script, time_call
from ganime_age.editing import EditorConfig, FaceEditor

PERSON = "029"
EDITS = {  # what is timed: (photo, its age, the target age)
    "made a child": ("029A29.JPG", 29.0, 5.0),
    "made a grown age, put in plainly": ("029A05.JPG", 5.0, 25.0),
}
OWN = ["01", "04", "10", "11", "13", "16", "20", "22", "23", "31"]  # the 10 photos the person is made of
BUILD_TARGET_MS = 5000.0
SLIDER_STEPS = 12  # ages a warm edit moves through (more than the sets of faces an analysed face keeps levelled)
SAME_SPEED = 1.10  # "as fast": an edit with a person within 10% of one without
COLUMNS = ["what", "median_ms", "min_ms", "cpu_ms", "repeats"]


def fgnet_folder(args: argparse.Namespace) -> Path:
    return Path(os.environ.get("GANIME_AGE_SHARED", args.shared)) / "datasets" / "fgnet" / "images"


def run(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    import cv2
    import torch

    from ganime_age.editing.person import default_identity

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    device = torch.device("cpu")
    folder = fgnet_folder(args)
    own = [(folder / f"{PERSON}A{age}.JPG", float(age)) for age in (OWN[:2] if args.smoke else OWN)]
    editor = FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))
    repeats, warmup = (1, 0) if args.smoke else (args.repeats, 1)
    editor.edit(folder / f"{PERSON}A31.JPG", age=60)  # the detector, landmarker and segmenter made

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        build = time_call(lambda: editor.person(own), device, repeats=repeats, warmup=warmup)
        person = editor.person(own)

    def cold(name: str, person: Any) -> None:
        """The edit of a photo the editor has not analysed: its analysis (and the person's match) included."""
        photo, source_age, target_age = EDITS[name]
        editor.sessions.clear()
        editor.edit(folder / photo, age=target_age, source_age=source_age, person=person)

    moves = itertools.count()

    def warm(name: str, person: Any) -> None:
        """A slider move: the analysed photo to the next of SLIDER_STEPS ages half a year apart, round and round."""
        photo, source_age, target_age = EDITS[name]
        age = target_age + 0.5 * (next(moves) % SLIDER_STEPS)
        editor.edit(folder / photo, age=age, source_age=source_age, person=person)

    many = repeats * 3
    timings: dict[str, dict[str, float]] = {}
    ratios: dict[str, float] = {}
    for name in EDITS:
        for kind, timed, times, settle in (
            ("cold edit", cold, repeats, warmup),
            ("warm edit (slider move)", warm, many, 2),
        ):
            pair = [
                time_call(functools.partial(timed, name, mine), device, repeats=times, warmup=settle)
                for mine in (None, person)
            ]
            timings[f"{name}: {kind}, without a person"], timings[f"{name}: {kind}, with the person"] = pair
            ratios[f"{name}: {kind}"] = pair[1]["median_ms"] / pair[0]["median_ms"]
    rows = [{"what": f"build a person from {len(own)} photos (`editor.person`)", **build}]
    rows += [{"what": name, **timing} for name, timing in timings.items()]
    table = markdown_table(rows, COLUMNS)
    print(table)
    checks = {
        "build_ms": build["median_ms"],
        "build_meets_target": build["median_ms"] <= BUILD_TARGET_MS,
        "with_vs_without": ratios,
        "edit_meets_target": all(r <= SAME_SPEED for r in ratios.values()),
    }
    print(
        f"person of {len(own)} photos: {build['median_ms'] / 1000:.2f} s "
        f"({'meets' if checks['build_meets_target'] else 'misses'} the {BUILD_TARGET_MS / 1000:g} s target); "
        + ", ".join(f"{kind} with/without {r:.2f}x" for kind, r in ratios.items())
        + f" ({'meets' if checks['edit_meets_target'] else 'misses'} 'as fast', within {SAME_SPEED - 1:.0%})"
    )
    return {
        "environment": environment(device),
        "threads": args.threads,
        "photos": [p.name for p, _ in own],
        "identity_compared": default_identity() is not None,
        "person_notes": list(person.notes),
        "rows": rows,
        "checks": checks,
        "table": table,
    }


def main() -> None:
    run_script(__doc__, run, repeats=5, smoke=True)


if __name__ == "__main__":
    main()
