"""Issue 39's evaluation, "ageing people believe, in every direction": ``evaluate.py ages``.

    python training/evaluate.py ages --utkface ../shared/datasets/utkface --fgnet ../shared/datasets/fgnet \\
        [--engine FOLDER] [--max-adults 40] [--max-children 30] [--max-old 30] [--max-real 30] \\
        [--samples DIR] [--json out.json] [--markdown out.md]

Every edit goes through the default ``FaceEditor`` on the photo itself, with the editor's own estimate of the
face's age as the source age (as a user edits; ``--source-age label`` gives it the true age instead), and every
reading is taken by analysing the edited photo again, as the gates do (:class:`training.evaluation.gates.Judge`).

- **Directions** (UTKFace's held-out split, :func:`training.evaluation.gates.test_photos`): adults 20-60 made 5,
  10, 75 and 90; children 3-9 (UTKFace, and one photo of each held-out FG-NET person) made 35 and 75; old people
  70-100 made 25 and 5. Each of the editor's two age networks (the shipped Cydral estimator on its chip, the
  compact CNN on the aligned crop: each its own raw reading) reads the edits against its own mean reading of real
  held-out UTKFace faces of the target age (:data:`REAL_WINDOWS`); a row passes where both gaps are within
  :data:`AGE_TOLERANCE` years. Identity: dlib's descriptor verifies each edit as its input at FAR 1%, beside the
  floor of real photos of one person across the nearest span (:data:`FLOOR_OF`).
- **Identity floors** (all FG-NET people, :mod:`training.evaluation.fgnet_floors`): how often dlib verifies real
  photos of one person across the spans of :data:`~training.evaluation.fgnet_floors.FLOOR_SPANS`, all
  same-person pairs, at the threshold of 1% false accepts on pairs of different FG-NET people (every age;
  ``--threshold`` sets a distance instead).
- **Ground truth** (FG-NET's held-out people, :func:`training.data.fgnet.fgnet_split`): each person's adult photo
  (>= 20, the one nearest 30) edited to the age of each of their real child (3-12) and teen (13-17) photos; the
  gain is dlib's distance adult-to-real minus edit-to-real (> 0: the edit moved toward the real young face), per
  person averaged over their photos; the share of people whose mean gain is positive.

FG-NET photos are scans of family photos: each is cut to a square of
:data:`~training.evaluation.fgnet_floors.FGNET_CROP` times its 68 landmarks' extent around them (within the
photo), and a face the editor finds is the person's only where its box holds the landmarks' centre. Where the
editor finds no face in a real FG-NET photo, its descriptor is taken on the landmarks' box (floors only; nothing
is edited there).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ganime_age.errors import GanimeAgeError
from training.evaluate import spread_indices
from training.evaluation.fgnet_floors import (
    FLOOR_SPANS,
    FgnetFace,
    Input,
    describe_fgnet,
    floors_table,
    identity_floors,
    read_at,
    span_label,
)
from training.evaluation.gates import (
    GRID_SUFFIX,
    Judge,
    face_tile,
    impostor_threshold,
    judged_editor,
    labelled_grid,
    save_grid,
    test_photos,
)
from training.evaluation.metrics import add_report_arguments, finite_mean, markdown_table, percent

AGE_TOLERANCE = 5.0  # years: an edit's mean reading within this of real faces' of the target age
# input group -> (true ages of the inputs, targets)
DIRECTIONS: dict[str, tuple[tuple[int, int], tuple[float, ...]]] = {
    "adults": ((20, 60), (5.0, 10.0, 75.0, 90.0)),
    "children": ((3, 9), (35.0, 75.0)),
    "fgnet children": ((3, 9), (35.0, 75.0)),  # one photo of each held-out FG-NET person
    "old": ((70, 100), (25.0, 5.0)),
}
# target -> the true ages of the real held-out UTKFace faces whose readings are its reference (UTKFace's 85+ are
# few: 90 takes 85-100, and names above 100 are mostly mislabelled)
REAL_WINDOWS: dict[float, tuple[int, int]] = {
    5.0: (3, 7),
    10.0: (8, 12),
    25.0: (23, 27),
    35.0: (33, 37),
    75.0: (73, 77),
    90.0: (85, 100),
}
# which floor an edit's verification stands beside: the measured span nearest the edit's (FG-NET has few people
# past 60, so the edits to and from 75-90 borrow 20-30 vs 40-69, and a child made 75 or an old person made 5
# borrow 3-8 vs 20-45: both spans are shorter than the edit's, their floors higher than the honest one)
FLOOR_OF: dict[tuple[str, float], int] = {
    ("adults", 5.0): 0,
    ("adults", 10.0): 2,
    ("adults", 75.0): 4,
    ("adults", 90.0): 4,
    ("children", 35.0): 0,
    ("children", 75.0): 0,
    ("fgnet children", 35.0): 0,
    ("fgnet children", 75.0): 0,
    ("old", 25.0): 4,
    ("old", 5.0): 0,
}
FGNET_ADULT = 20  # an adult photo: at least this old; the one nearest FGNET_ADULT_PREFERRED is edited
FGNET_ADULT_PREFERRED = 30
FGNET_YOUNG: dict[str, tuple[int, int]] = {"child": (3, 12), "teen": (13, 17)}
FGNET_CHILD_INPUT = 6  # the held-out person's photo aged 3-9 nearest this is their "fgnet children" input
GRID_PEOPLE = 6


# -- real faces of the target ages ----------------------------------------------------------------------------
def real_reference(judge: Judge, photos: list[Any], limit: int) -> dict[float, dict[str, Any]]:
    """Each age network's mean reading of real held-out UTKFace faces in each target's window."""
    reference = {}
    for target, (low, high) in REAL_WINDOWS.items():
        window = [p for p in photos if low <= p.age <= high]
        first, second, ages = [], [], []
        for index in spread_indices(len(window), limit):
            rgb = Input(window[index].path, window[index].age).image()
            reading = judge.read(rgb)
            if reading is None:
                continue
            first.append(reading.age)
            second.append(judge.other_age(rgb, reading))
            ages.append(window[index].age)
        reference[target] = {
            "window": [low, high],
            "faces": len(first),
            "available": len(window),
            "true_age": finite_mean(ages),
            "shipped": finite_mean(first),
            "second": finite_mean(second),
        }
    return reference


# -- directions -----------------------------------------------------------------------------------------------
def direction(
    editor: Any,
    judge: Judge,
    group: str,
    inputs: list[Input],
    verified: Callable[[np.ndarray, np.ndarray], bool],
    use_label: bool,
) -> dict[str, Any]:
    """The group's inputs edited to each of its targets: both networks' readings, identity, and a grid."""
    targets = DIRECTIONS[group][1]
    per_target: dict[float, dict[str, list[float]]] = {t: {"first": [], "second": [], "ok": []} for t in targets}
    labels, estimates, first_in, second_in = [], [], [], []
    grid: dict[str, list[np.ndarray]] = {"input": []}
    shown = set(spread_indices(len(inputs), GRID_PEOPLE).tolist())
    for index, photo in enumerate(inputs):
        rgb = photo.image()
        before = read_at(judge, rgb, photo.centre)
        if before is None:
            continue
        labels.append(photo.age)
        estimates.append(float(editor.estimate_age(rgb, face=0)))
        first_in.append(before.age)
        second_in.append(judge.other_age(rgb, before))
        descriptor = judge.descriptor(rgb, before)
        if index in shown:
            grid["input"].append(_caption(face_tile(rgb, before), f"{photo.age:g}"))
        for target in targets:
            source = photo.age if use_label else None
            edited = np.asarray(editor.edit(rgb, age=target, face=0, source_age=source))
            after = read_at(judge, edited, photo.centre)
            row = per_target[target]
            if index in shown:
                grid.setdefault(f"age {target:g}", []).append(face_tile(edited, before))
            if after is None:
                row["ok"].append(0.0)  # an edit the editor no longer finds as a face keeps no one's identity
                continue
            row["first"].append(after.age)
            row["second"].append(judge.other_age(edited, after))
            row["ok"].append(float(verified(descriptor, judge.descriptor(edited, after))))
    rows = [
        {
            "group": group,
            "input_ages": list(DIRECTIONS[group][0]),
            "target": target,
            "inputs": len(labels),
            "edits_read": len(per_target[target]["first"]),
            "true_age": finite_mean(labels),
            "editor_estimate": finite_mean(estimates),
            "input_shipped": finite_mean(first_in),
            "input_second": finite_mean(second_in),
            "edits_shipped": finite_mean(per_target[target]["first"]),
            "edits_second": finite_mean(per_target[target]["second"]),
            "verified": finite_mean(per_target[target]["ok"]),
        }
        for target in targets
    ]
    return {"rows": rows, "grid": labelled_grid([(k, v) for k, v in grid.items() if v]) if grid["input"] else None}


def judged_row(row: dict[str, Any], reference: dict[str, Any], floors: list[dict[str, Any]]) -> dict[str, Any]:
    """A direction's row with each network's gap to real faces of the target age, the pass and the floor."""
    networks = {}
    for key in ("shipped", "second"):
        gap = row[f"edits_{key}"] - reference[key]
        networks[key] = {
            "input": row[f"input_{key}"],
            "edits": row[f"edits_{key}"],
            "real": reference[key],
            "gap": gap,
            "passes": bool(abs(gap) <= AGE_TOLERANCE),
        }
    floor = floors[FLOOR_OF[(row["group"], row["target"])]]
    passes = [n["passes"] for n in networks.values()]
    return {
        **{k: v for k, v in row.items() if k.removeprefix("edits_").removeprefix("input_") not in networks},
        "real": {k: reference[k] for k in ("window", "faces", "available", "true_age")},
        "networks": networks,
        "passes": all(passes),
        "networks_agree": len(set(passes)) == 1,
        "floor": {"span": floor["span"], "verified": floor["verified"]},
        "identity_at_floor": bool(row["verified"] >= floor["verified"]),
    }


# -- FG-NET ---------------------------------------------------------------------------------------------------
def adult_photo(faces: list[FgnetFace]) -> FgnetFace | None:
    """The person's adult photo to edit: found by the editor, >= FGNET_ADULT, nearest FGNET_ADULT_PREFERRED."""
    adults = [f for f in faces if f.found and f.descriptor is not None and f.photo.age >= FGNET_ADULT]
    return min(adults, key=lambda f: (abs(f.photo.age - FGNET_ADULT_PREFERRED), f.photo.path.name), default=None)


def ground_truth(
    editor: Any,
    judge: Judge,
    faces: list[FgnetFace],
    verified: Callable[[np.ndarray, np.ndarray], bool],
    per_person: int,
    use_label: bool,
    floors: list[dict[str, Any]],
) -> dict[str, Any]:
    """Held-out people's adult photo edited to the age of each of their real child and teen photos."""
    by_person: dict[str, list[FgnetFace]] = {}
    for face in faces:
        by_person.setdefault(face.photo.person, []).append(face)
    result: dict[str, Any] = {}
    grids: dict[str, np.ndarray | None] = {}
    for kind, (low, high) in FGNET_YOUNG.items():
        people, edits, failed = [], [], 0
        grid: dict[str, list[np.ndarray]] = {"adult": [], f"edit to {kind} age": [], f"real {kind}": []}
        for person in sorted(by_person):
            adult = adult_photo(by_person[person])
            young = sorted(
                (f for f in by_person[person] if low <= f.photo.age <= high and f.descriptor is not None),
                key=lambda f: (f.photo.age, f.photo.path.name),
            )
            if adult is None or not young:
                continue
            young = [young[i] for i in spread_indices(len(young), per_person)]
            adult_input = adult.input()
            rgb = adult_input.image()
            before = read_at(judge, rgb, adult_input.centre)
            if before is None:
                continue
            adult_descriptor = judge.descriptor(rgb, before)
            mine = []
            for real in young:
                source = float(adult.photo.age) if use_label else None
                edited = np.asarray(editor.edit(rgb, age=float(real.photo.age), face=0, source_age=source))
                after = read_at(judge, edited, adult_input.centre)
                if after is None:
                    failed += 1
                    continue
                descriptor = judge.descriptor(edited, after)
                to_edit = float(np.linalg.norm(descriptor - real.descriptor))
                to_adult = float(np.linalg.norm(adult_descriptor - real.descriptor))
                edit = {
                    "person": person,
                    "adult_age": adult.photo.age,
                    "young_age": real.photo.age,
                    "adult_to_real": to_adult,
                    "edit_to_real": to_edit,
                    "gain": to_adult - to_edit,
                    "edit_verified_as_adult": float(verified(descriptor, adult_descriptor)),
                    "edit_verified_as_real": float(verified(descriptor, real.descriptor)),
                    "adult_verified_as_real": float(verified(adult_descriptor, real.descriptor)),
                    "edit_shipped": after.age,
                    "edit_second": judge.other_age(edited, after),
                }
                mine.append(edit)
                if len(mine) == 1 and len(grid["adult"]) < GRID_PEOPLE:
                    grid["adult"].append(_caption(face_tile(rgb, before), f"{adult.photo.age}"))
                    grid[f"edit to {kind} age"].append(_caption(face_tile(edited, before), f"-> {real.photo.age}"))
                    real_input = real.input()
                    real_rgb = real_input.image()
                    real_reading = read_at(judge, real_rgb, real_input.centre)
                    grid[f"real {kind}"].append(_caption(face_tile(real_rgb, real_reading), f"{real.photo.age}"))
            if mine:
                edits += mine
                people.append(
                    {
                        "person": person,
                        "edits": len(mine),
                        "gain": float(np.mean([e["gain"] for e in mine])),
                    }
                )
        gains = [p["gain"] for p in people]
        spans = [f for f in floors if f["span"] in _floor_spans_of(kind)]
        result[kind] = {
            "young_ages": [low, high],
            "people": len(people),
            "edits": len(edits),
            "edits_not_read": failed,
            "adult_to_real": finite_mean([e["adult_to_real"] for e in edits]),
            "edit_to_real": finite_mean([e["edit_to_real"] for e in edits]),
            "mean_gain": finite_mean(gains),
            "closer_share": float(np.mean([g > 0 for g in gains])) if gains else float("nan"),
            "edit_verified_as_adult": finite_mean([e["edit_verified_as_adult"] for e in edits]),
            "edit_verified_as_real": finite_mean([e["edit_verified_as_real"] for e in edits]),
            "adult_verified_as_real": finite_mean([e["adult_verified_as_real"] for e in edits]),
            "edit_shipped": finite_mean([e["edit_shipped"] for e in edits]),
            "edit_second": finite_mean([e["edit_second"] for e in edits]),
            "young_age": finite_mean([e["young_age"] for e in edits]),
            "floors": [{"span": f["span"], "verified": f["verified"]} for f in spans],
            "per_person": people,
            "pairs": edits,
        }
        grids[kind] = labelled_grid(list(grid.items())) if grid["adult"] else None
    return {"result": result, "grids": grids}


def _floor_spans_of(kind: str) -> set[str]:
    """The floors measured across the span of a ground-truth edit (an adult photo made a child or a teen)."""
    if kind == "child":
        return {span_label(FLOOR_SPANS[0]), span_label(FLOOR_SPANS[2])}
    return {span_label(FLOOR_SPANS[3])}


def _num(value: float, digits: int = 1, sign: bool = False) -> str:
    return f"{value:{'+' if sign else ''}.{digits}f}" if np.isfinite(value) else "n/a"


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile with `text` in its top-left corner (white on a dark band)."""
    tile = tile.copy()
    cv2.rectangle(tile, (0, 0), (12 * len(text) + 10, 26), (0, 0, 0), -1)
    cv2.putText(tile, text, (5, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def _held_out_utkface(photos: list[Any], group: str, limit: int) -> list[Input]:
    low, high = DIRECTIONS[group][0]
    chosen = [p for p in photos if low <= p.age <= high]
    return [Input(chosen[i].path, chosen[i].age) for i in spread_indices(len(chosen), limit)]


def _fgnet_children(faces: list[FgnetFace]) -> list[Input]:
    """One photo of each held-out FG-NET person aged 3-9 (the one nearest FGNET_CHILD_INPUT) that the editor finds."""
    low, high = DIRECTIONS["fgnet children"][0]
    by_person: dict[str, list[FgnetFace]] = {}
    for face in faces:
        if face.found and low <= face.photo.age <= high:
            by_person.setdefault(face.photo.person, []).append(face)
    return [
        min(by_person[p], key=lambda f: (abs(f.photo.age - FGNET_CHILD_INPUT), f.photo.path.name)).input()
        for p in sorted(by_person)
    ]


def _chosen_people(photos: list[Any], test: set[str], limit: int | None) -> set[str]:
    """`limit` FG-NET people (all if None): half of them held out, those with an adult and a child photo first,
    the rest spread over the other people's sorted ids."""
    people = sorted({p.person for p in photos})
    if limit is None:
        return set(people)
    ages: dict[str, list[int]] = {}
    for photo in photos:
        ages.setdefault(photo.person, []).append(photo.age)
    low, high = FGNET_YOUNG["child"]

    def both(person: str) -> bool:
        return max(ages[person]) >= FGNET_ADULT and any(low <= a <= high for a in ages[person])

    held = sorted((p for p in people if p in test), key=lambda p: (not both(p), p))
    rest = sorted(p for p in people if p not in test)
    n_held = min(len(held), (limit + 1) // 2)
    n_rest = min(len(rest), limit - n_held)
    pick = held[:n_held]
    pick += [rest[i] for i in spread_indices(len(rest), n_rest)] if n_rest else []
    return set(pick)


# -- the evaluation -------------------------------------------------------------------------------------------
class AgesEvaluation:
    name = "ages"
    help = (
        "issue 39: edits in every direction (adults made 5-90, children 35 and 75, old people 25 and 5) read by both "
        "age networks against real faces, FG-NET identity floors, and FG-NET ground truth on held-out people"
    )

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--utkface", required=True, help="UTKFace folder (the original photos)")
        parser.add_argument("--fgnet", required=True, help="FG-NET folder (images/PPPaNN.JPG, points/*.pts)")
        parser.add_argument("--engine", default=None, help="fitted engine folder or Hub id (default: the embedded)")
        parser.add_argument(
            "--exemplars", default=None, help="the engine's bank of age exemplars (default: the embedded)"
        )
        parser.add_argument("--model", default=None, help="an editor folder or a refiner (default: the embedded)")
        parser.add_argument("--max-adults", type=int, default=40, help="UTKFace test faces aged 20-60")
        parser.add_argument("--max-children", type=int, default=30, help="UTKFace test faces aged 3-9")
        parser.add_argument("--max-old", type=int, default=30, help="UTKFace test faces aged 70-100")
        parser.add_argument("--max-real", type=int, default=30, help="real UTKFace test faces per target's window")
        parser.add_argument(
            "--max-fgnet-people", type=int, default=None, help="FG-NET people (half held out; default: all)"
        )
        parser.add_argument(
            "--max-fgnet-pairs", type=int, default=3, help="real child (and teen) photos per held-out person"
        )
        parser.add_argument(
            "--source-age",
            choices=("estimate", "label"),
            default="estimate",
            help="the edit's source age: the editor's own estimate (as users edit) or the true age",
        )
        parser.add_argument("--far", type=float, default=0.01)
        parser.add_argument(
            "--threshold", type=float, default=None, help="dlib distance (default: FAR on FG-NET impostor pairs)"
        )
        add_report_arguments(parser, samples="write the grids (JPEG) to this folder")

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from training.data.fgnet import fgnet_split, parse_fgnet
        from training.evaluation.judges import IDENTITY_THRESHOLD_FAR_1

        started = time.perf_counter()
        editor, judge = judged_editor(args)
        use_label = args.source_age == "label"
        timings: dict[str, float] = {}

        def lap(name: str, since: float) -> float:
            now = time.perf_counter()
            timings[name] = round(now - since, 1)
            return now

        # FG-NET: every chosen person's real photos (3-69) described once: the threshold, floors, ground truth
        listing = parse_fgnet(Path(args.fgnet))
        test_people = {p for p in listing.people if fgnet_split(p) == "test"}
        chosen = _chosen_people(listing.photos, test_people, args.max_fgnet_people)
        young_low = min(low for low, _ in FGNET_YOUNG.values())
        photos = [p for p in listing.photos if p.person in chosen and young_low <= p.age <= 69]
        faces = describe_fgnet(judge, photos)
        described = [f for f in faces if f.descriptor is not None]
        if len({f.photo.person for f in described}) < 2:
            raise GanimeAgeError("the FG-NET identity threshold needs photos of at least two people")
        distance, impostors = impostor_threshold(
            np.stack([f.descriptor for f in described]), [f.photo.person for f in described], args.far
        )
        threshold = float(args.threshold) if args.threshold is not None else distance

        def verified(a: np.ndarray, b: np.ndarray) -> bool:
            return bool(np.linalg.norm(a - b) < threshold)

        def verified_utkface(a: np.ndarray, b: np.ndarray) -> bool:
            return bool(np.linalg.norm(a - b) < IDENTITY_THRESHOLD_FAR_1)

        floors = identity_floors(faces, verified)
        for floor, other in zip(floors, identity_floors(faces, verified_utkface), strict=True):
            floor["verified_at_judges_threshold"] = other["verified"]
        clock = lap("fgnet_descriptors", started)
        held_faces = [f for f in faces if f.photo.person in test_people]
        truth = ground_truth(editor, judge, held_faces, verified, args.max_fgnet_pairs, use_label, floors)
        clock = lap("fgnet_ground_truth", clock)

        # UTKFace's held-out split: real faces of the target ages, then the directions
        utk = [p for p in test_photos("utkface", Path(args.utkface)) if np.isfinite(p.age)]
        reference = real_reference(judge, utk, args.max_real)
        clock = lap("real_faces", clock)
        inputs = {
            "adults": _held_out_utkface(utk, "adults", args.max_adults),
            "children": _held_out_utkface(utk, "children", args.max_children),
            "fgnet children": _fgnet_children(held_faces),
            "old": _held_out_utkface(utk, "old", args.max_old),
        }
        rows, grids = [], {}
        for group, group_inputs in inputs.items():
            measured = direction(editor, judge, group, group_inputs, verified, use_label)
            rows += [judged_row(r, reference[r["target"]], floors) for r in measured["rows"]]
            grids[group] = measured["grid"]
            clock = lap(group, clock)

        samples = None
        if args.samples:
            samples = Path(args.samples)
            for group, grid in grids.items():
                if grid is not None:
                    save_grid(samples / f"ages_{group.replace(' ', '_')}{GRID_SUFFIX}", grid)
            for kind, grid in truth["grids"].items():
                if grid is not None:
                    save_grid(samples / f"ages_fgnet_{kind}{GRID_SUFFIX}", grid)
        first, second = judge.names
        return {
            "evaluation": "ages",
            "engine": str(args.engine or "embedded"),
            "exemplars": str(args.exemplars or "embedded"),
            "model": str(args.model) if args.model else None,
            "source_age": args.source_age,
            "age_networks": {"shipped": first, "second": second},
            "age_tolerance": AGE_TOLERANCE,
            "identity_threshold": {
                "far": args.far,
                "distance": threshold,
                "fgnet_impostor_distance": distance,
                "impostor_pairs": impostors,
                "calibrated_on": "given" if args.threshold is not None else "FG-NET pairs of different people",
                "judges_threshold_far_1": IDENTITY_THRESHOLD_FAR_1,
            },
            "directions": rows,
            "all_pass": all(r["passes"] for r in rows),
            "real_reference": {f"{t:g}": v for t, v in reference.items()},
            "fgnet": {
                "people": len(chosen),
                "held_out_people": sorted(chosen & test_people),
                "photos": len(faces),
                "photos_editor_found": sum(f.found for f in faces),
                "photos_described": len(described),
                "floors": floors,
                "ground_truth": truth["result"],
            },
            "samples": sorted(p.name for p in samples.glob(f"ages_*{GRID_SUFFIX}")) if samples else None,
            "timings": timings,
            "seconds": round(time.perf_counter() - started, 1),
        }

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        first, second = result["age_networks"]["shipped"], result["age_networks"]["second"]
        tolerance = result["age_tolerance"]
        identity = result["identity_threshold"]
        fgnet = result["fgnet"]

        def verdict(row: dict[str, Any]) -> str:
            if row["passes"]:
                return "yes"
            if row["networks_agree"]:
                return "**no**"
            which = "shipped" if row["networks"]["shipped"]["passes"] else "second"
            return f"**split** (only {which})"

        def network(row: dict[str, Any], key: str) -> str:
            n = row["networks"][key]
            return f"{_num(n['edits'])} / {_num(n['real'])} / {_num(n['gap'], sign=True)}"

        lines = [
            f"Directions: held-out UTKFace faces (FG-NET children: one photo of each held-out person) edited through "
            f"the editor (source age: {result['source_age']}); each age network's mean reading of the edits / its "
            f"mean reading of real held-out UTKFace faces in the target's window / the gap. A row passes where both "
            f"gaps are within {tolerance:g} years. Shipped estimator: {first}; second network: {second}. Verified: "
            f"dlib descriptor, edit vs its input, at distance {identity['distance']:.3f} (FAR {identity['far']:.0%}, "
            f"{identity['calibrated_on']}), beside the FG-NET floor of real photos across the nearest span.",
            "",
            markdown_table(
                [
                    "inputs -> target",
                    "n",
                    "true age / editor's estimate",
                    "real faces (n)",
                    f"{first}: edits / real / gap",
                    f"{second}: edits / real / gap",
                    f"within {tolerance:g}",
                    "verified",
                    "floor (span)",
                ],
                [
                    [
                        f"{r['group']} {r['input_ages'][0]}-{r['input_ages'][1]} -> {r['target']:g}",
                        r["inputs"],
                        f"{_num(r['true_age'])} / {_num(r['editor_estimate'])}",
                        f"{r['real']['window'][0]}-{r['real']['window'][1]} ({r['real']['faces']})",
                        network(r, "shipped"),
                        network(r, "second"),
                        verdict(r),
                        percent(r["verified"]),
                        f"{percent(r['floor']['verified'])} ({r['floor']['span']})",
                    ]
                    for r in result["directions"]
                ],
            ),
            "",
            f"Identity floors: real photos of one person across each span, all same-person pairs of "
            f"{fgnet['people']} FG-NET people ({fgnet['photos']} photos aged 3-69, the editor found "
            f"{fgnet['photos_editor_found']}), dlib at distance {identity['distance']:.3f} (FAR {identity['far']:.0%} "
            f"on {identity['impostor_pairs']} pairs of different FG-NET people); the last column at the judges' "
            f"UTKFace/CFEE threshold {identity['judges_threshold_far_1']:.4f}.",
            "",
            floors_table(
                fgnet["floors"], "at the judges' threshold", lambda f: percent(f["verified_at_judges_threshold"])
            ),
            "",
            f"Ground truth: held-out FG-NET people ({len(fgnet['held_out_people'])}: "
            f"{', '.join(fgnet['held_out_people'])}), each adult photo (the one nearest {FGNET_ADULT_PREFERRED}) "
            f"edited to the age of each of their real young photos; dlib distance to the real young photo, unedited "
            f"adult / edit; gain = the difference (> 0: closer), averaged per person; closer = share of people with "
            f"a positive mean gain. Verified: the edit as the adult input, the edit and the unedited adult as the real "
            f"young photo.",
            "",
            markdown_table(
                [
                    "young photos",
                    "people (edits)",
                    "distance adult / edit",
                    "mean gain",
                    "closer",
                    "edit = adult",
                    "edit = real / adult = real",
                    "floor",
                    f"{first} / {second} of edits (true age)",
                ],
                [
                    [
                        f"{kind} {g['young_ages'][0]}-{g['young_ages'][1]}",
                        f"{g['people']} ({g['edits']})",
                        f"{_num(g['adult_to_real'], 3)} / {_num(g['edit_to_real'], 3)}",
                        g["mean_gain"],
                        percent(g["closer_share"]),
                        percent(g["edit_verified_as_adult"]),
                        f"{percent(g['edit_verified_as_real'])} / {percent(g['adult_verified_as_real'])}",
                        ", ".join(f"{percent(f['verified'])} ({f['span']})" for f in g["floors"]),
                        f"{_num(g['edit_shipped'])} / {_num(g['edit_second'])} ({_num(g['young_age'])})",
                    ]
                    for kind, g in fgnet["ground_truth"].items()
                ],
            ),
        ]
        if result.get("samples"):
            lines += ["", *[f"![{name}]({name})" for name in result["samples"]]]
        return "\n".join(lines)
