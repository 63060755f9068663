"""Your own ageing (issue 56): an adult made a child with their own photos, on FG-NET, leave-one-out.

    python training/evaluate.py own-ageing --fgnet ../shared/datasets/fgnet --max-people 10 \\
        --json ../runs/own_ageing.json --markdown ../runs/own_ageing.md

For each FG-NET person with a photo at 18-45 (the adult photo: the one nearest 30) and one at 3-10 (the target:
the one nearest 6), the adult photo is edited to the target photo's age, its age given as the file name says
(``source_age``), three ways with the person's own photos (:meth:`ganime_age.FaceEditor.person`) and once
without (the general edit, the bank's matched strangers). The own photos are the person's others, never the adult
photo, the target photo or any photo within 2 years of the target's age (what the edit must not have seen); the
1 and 3 nearest the target's age, and all of them. dlib's descriptor (:class:`training.evaluation.judges.
DlibIdentity`, a network the editor never uses) measures each against the real target photo: the share of people
for whom the edit is closer than the adult photo itself, and closer than the general edit. With ``--teens`` the
same again for a target at 11-17 (the one nearest 14); with ``--reverse`` the other way, the child photo (3-10,
nearest 6) made the adult photo's age with the person's other photos (never the child or the adult one, nor any
within 2 years of the adult's age).

Beside them, what the own photos say unedited: the distance of the given photo nearest the target's age, and of
the closest given photo, and how often each is closer than the adult photo (a teen's real photo is often nearer the
adult photo than any of the person's other photos is, which bounds what an edit guided by them can be expected to do).

Also counted: own photos the editor notes as looking like someone else (every FG-NET photo of a person is theirs,
so each such note is a false alarm of :func:`ganime_age.editing.person.unlike_photos`), and a stranger's photo
given among a person's children's photos that it notes (:func:`strangers_caught`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluate import spread_indices
from training.evaluation.metrics import add_report_arguments, bootstrap_difference, finite_mean, markdown_table

ADULT = (18, 45)
CHILD = (3, 10)
TEEN = (11, 17)
UNSEEN = 2  # years around the target's age whose photos the edit must not be given
COUNTS: tuple[int | None, ...] = (1, 3, None)  # own photos given: the nearest 1, 3, all (None)
SHEET_PEOPLE = 8  # people on a span's sample grid
TILE = 256  # pixels: a sample grid's tile
BOOTSTRAP_DRAWS = 2000  # resamples of the people for an interval


def pick(photos: list[Any], span: tuple[int, int], near: float) -> Any | None:
    """The person's photo within `span` years nearest `near` (the first by name on a tie), or None."""
    inside = [p for p in photos if span[0] <= p.age <= span[1]]
    return min(inside, key=lambda p: (abs(p.age - near), p.path.name)) if inside else None


def own_photos(photos: list[Any], adult: Any, target: Any) -> list[Any]:
    """What the edit may be given: the person's photos but the adult one, the target and its near ages."""
    return [p for p in photos if p is not adult and p is not target and abs(p.age - target.age) > UNSEEN]


class OwnAgeingEvaluation:
    name = "own-ageing"
    help = "an adult made a child with their own photos (issue 56): FG-NET leave-one-out, dlib against the real photo"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--fgnet", required=True, help="the FG-NET folder (images/, points/)")
        parser.add_argument("--max-people", type=int, default=None, help="people taken, spread over the list")
        parser.add_argument("--teens", action="store_true", help="also a target at 11-17")
        parser.add_argument(
            "--reverse", action="store_true", help="also the other way: a child photo (3-10) made its adult age"
        )
        add_report_arguments(
            parser, samples="write a grid per span here: adult photo, general edit, personal edit, real"
        )

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.editing import EditorConfig, FaceEditor
        from training.data.fgnet import parse_fgnet
        from training.evaluation.gates import Judge, labelled_grid, save_grid
        from training.evaluation.judges import DlibIdentity

        started = time.perf_counter()
        editor = FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))
        identity = DlibIdentity()
        judge = Judge(editor, identity)
        listing = parse_fgnet(Path(args.fgnet))
        by_person: dict[str, list[Any]] = {}
        for photo in listing.photos:
            by_person.setdefault(photo.person, []).append(photo)
        people = [p for p in sorted(by_person) if pick(by_person[p], ADULT, 30) and pick(by_person[p], CHILD, 6)]
        if args.max_people is not None:
            people = [people[i] for i in spread_indices(len(people), args.max_people)]
        from_adult = (ADULT, 30.0)
        spans = [("3-10", CHILD, 6.0, from_adult)] + ([("11-17", TEEN, 14.0, from_adult)] if args.teens else [])
        spans += [("18-45 from 3-10", ADULT, 30.0, (CHILD, 6.0))] if args.reverse else []
        result: dict[str, Any] = {"people": len(people), "spans": {}}
        false_alarms, checked, own_left_out = 0, 0, 0
        for label, span, near, source in spans:
            rows, sheet = [], []
            for person in people:
                row = one_person(editor, identity, by_person[person], span, near, judge, source)
                if row is not None:
                    false_alarms += row.pop("unlike")
                    own_left_out += row.pop("left_out")
                    checked += row.pop("own_total")
                    photos = row.pop("photos")
                    if args.samples and len(sheet) < SHEET_PEOPLE:
                        sheet.append((f"{row['person']}: to {row['target_age']:g}", sample_tiles(editor, photos)))
                    rows.append(row)
            result["spans"][label] = summarise(rows)
            if sheet:
                save_grid(Path(args.samples) / f"own_ageing_{label.replace(' ', '_')}.jpg", labelled_grid(sheet))
        result["identity_false_alarms"] = false_alarms
        result["own_left_out"] = own_left_out
        caught = strangers_caught(editor, by_person, people)
        result["strangers_caught"], result["strangers_left_out"], result["strangers_judged"] = caught
        result["identity_photos"] = checked
        result["seconds"] = time.perf_counter() - started
        return result

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        lines = ["### Your own ageing (issue 56): FG-NET adults edited to a real photo's young age", ""]
        headers = [
            "target ages",
            "people",
            "edit",
            "own photos",
            "dlib distance",
            "closer than the photo itself",
            "closer than general",
            "age error: shipped / second network",
            "against the real photo's reading",
        ]
        rows = []
        for label, part in result["spans"].items():
            rows.append([label, part["people"], "the photo itself", "—", f"{part['adult']:.3f}", "—", "—", "—", "—"])
            for key, name in (
                ("nearest_own", "own photo nearest in age, unedited"),
                ("closest_own", "closest own photo, unedited"),
            ):
                reference = part.get("references", {}).get(key)
                if reference is not None:
                    rows.append(
                        [
                            label,
                            reference["people"],
                            name,
                            "—",
                            f"{reference['distance']:.3f}",
                            f"{reference['vs_adult']:.0%}",
                            "—",
                            "—",
                            "—",
                        ]
                    )
            general_errors = " / ".join(f"{e:.1f}" for e in part.get("general_age_errors", []))
            general_real = " / ".join(f"{e:.1f}" for e in part.get("general_real_age_errors", []))
            rows.append(
                [
                    label,
                    part["people"],
                    "general",
                    0,
                    f"{part['general']:.3f}",
                    f"{part['general_vs_adult']:.0%}",
                    "—",
                    general_errors,
                    general_real,
                ]
            )
            for key, row in part["own"].items():
                rows.append(
                    [
                        label,
                        row["people"],
                        f"own photos ({key})",
                        f"{row['given']:.1f}",
                        f"{row['distance']:.3f}",
                        f"{row['vs_adult']:.0%}",
                        f"{row['vs_general']:.0%}",
                        " / ".join(f"{e:.1f}" for e in row.get("age_errors", [])),
                        " / ".join(f"{e:.1f}" for e in row.get("real_age_errors", [])),
                    ]
                )
        lines += [markdown_table(headers, rows), ""]
        lines.append(
            "The personal edits' error against the real photo's reading less the general edit's (shipped / second "
            "network), with its 95% paired bootstrap interval over people (one that holds 0 is noise):"
        )
        lines.append("")
        for label, part in result["spans"].items():
            shown = [
                f"{key}: "
                + " / ".join(f"{d['difference']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]" for d in differences)
                for key, row in part["own"].items()
                if (differences := row.get("real_age_error_differences"))
            ]
            if shown:
                lines.append(f"- {label}: " + "; ".join(shown))
        lines.append("")
        lines.append(
            f"Own photos noted as someone else (all are the person's: false alarms): "
            f"{result['identity_false_alarms']} of {result['identity_photos']}, left out as plainly someone else's: "
            f"{result.get('own_left_out', 0)}. A stranger's photo among a person's children's photos noted as someone "
            f"else: {result['strangers_caught']} of {result['strangers_judged']} judged, left out: "
            f"{result.get('strangers_left_out', 0)}. {result['seconds']:.0f} s."
        )
        return "\n".join(lines) + "\n"


def one_person(
    editor: Any,
    identity: Any,
    photos: list[Any],
    span: tuple[int, int],
    near: float,
    judge: Any = None,
    source: tuple[tuple[int, int], float] = (ADULT, 30.0),
) -> dict | None:
    """One person's edits of their photo in the `source` span (nearest its age; the adult photo, or a child's the
    other way) and their dlib distances to the real target photo, and (with a `judge`) both age networks' readings
    of the general and the personal edits; None where a photo cannot be read. (The row's "adult" is the source.)"""
    import warnings

    from ganime_age.errors import GanimeAgeError
    from ganime_age.faces import load_image

    adult, target = pick(photos, *source), pick(photos, span, near)
    given = own_photos(photos, adult, target) if adult and target else []
    if not given:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            everyone = editor.person([(p.path, float(p.age)) for p in given])
        target_rgb = load_image(target.path)
        real = identity.embed(target_rgb)
        adult_rgb = load_image(adult.path)
        row: dict[str, Any] = {"adult": identity.distance(identity.embed(adult_rgb), real)}
        row["nearest_own"], row["closest_own"] = own_references(identity, given, target, real)
        general = np.asarray(editor.edit(adult_rgb, age=float(target.age), source_age=float(adult.age)))
        row["general"] = identity.distance(identity.embed(general), real)
        row["general_ages"] = _ages(judge, general)
        row["real_ages"] = _ages(judge, target_rgb)  # what each network reads of the real face at that age
        order = np.argsort(np.abs(everyone.ages - target.age), kind="stable")
        for count in COUNTS:
            key = "all" if count is None else str(count)
            keep = order if count is None else order[:count]
            person = everyone.select(sorted(int(i) for i in keep))
            edited = np.asarray(
                editor.edit(adult_rgb, age=float(target.age), source_age=float(adult.age), person=person)
            )
            row[key] = identity.distance(identity.embed(edited), real)
            row[f"{key}_ages"] = _ages(judge, edited)
            row[f"{key}_given"] = len(person)
    except GanimeAgeError:
        return None
    row["photos"] = (adult_rgb, general, edited, target_rgb)  # the personal edit with all own photos (the last)
    row["person"], row["adult_photo"], row["target_photo"] = adult.person, adult.path.name, target.path.name
    row["target_age"] = float(target.age)
    row["unlike"] = sum("someone else" in note for note in everyone.notes)
    row["left_out"] = sum(": left out, " in note for note in everyone.notes)
    row["own_total"] = len(everyone) + row["left_out"]  # the photos given
    return row


def own_references(identity: Any, given: list[Any], target: Any, real: np.ndarray) -> tuple[float, float]:
    """What the person's own photos say unedited: the dlib distance to the real target photo of the given photo
    nearest the target's age (the first by name on a tie), and of the closest given photo (what no edit is
    expected to beat). NaN where dlib finds no face in any of them."""
    from ganime_age.errors import GanimeAgeError
    from ganime_age.faces import load_image

    distances = []
    for photo in sorted(given, key=lambda p: (abs(p.age - target.age), p.path.name)):
        try:
            distances.append(identity.distance(identity.embed(load_image(photo.path)), real))
        except GanimeAgeError:
            distances.append(float("nan"))
    seen = [d for d in distances if np.isfinite(d)]
    return (distances[0] if distances else float("nan")), (min(seen) if seen else float("nan"))


def strangers_caught(editor: Any, by_person: dict[str, list[Any]], people: list[str]) -> tuple[int, int, int]:
    """How often a stranger's photo given among a person's own is noted as someone else: for each person, their
    photos at 3-10 (a child's, what an adult made a child is given) and the next person's (in the list, round)
    photo nearest their median age, compared as :meth:`ganime_age.FaceEditor.person` compares them
    (:func:`ganime_age.editing.person.unlike_photos`). (caught, left out as plainly someone else's, judged): a
    stranger with none of the person's photos within IDENTITY_SPAN years of its age is not judged."""
    from ganime_age.editing.person import IDENTITY_SPAN, PLAIN_FLOOR, PLAIN_SPAN, default_identity, unlike_photos
    from ganime_age.faces import load_image

    identity = default_identity()
    if identity is None:
        return 0, 0, 0

    def embedded(photo: Any) -> np.ndarray | None:
        rgb = load_image(photo.path)
        faces = [f for f in editor.analyzer.analyze(rgb) if f.landmarks is not None]
        if not faces:
            return None
        return identity(rgb, max(faces, key=lambda f: float(np.prod(np.ptp(f.landmarks.landmarks[:, :2], axis=0)))))

    caught = left_out = judged = 0
    for k, person in enumerate(people):
        own = [p for p in by_person[person] if CHILD[0] <= p.age <= CHILD[1]]
        if len(own) < 2:
            continue
        middle = float(np.median([p.age for p in own]))
        stranger = min(by_person[people[(k + 1) % len(people)]], key=lambda p: (abs(p.age - middle), p.path.name))
        photos = [*own, stranger]
        ages, embeddings = np.array([p.age for p in photos], np.float64), [embedded(p) for p in photos]
        flagged = {i for i, _ in unlike_photos(ages, embeddings)}
        plain = {i for i, _ in unlike_photos(ages, embeddings, PLAIN_SPAN, PLAIN_FLOOR, neighbours=2)}
        judged += any(abs(p.age - stranger.age) <= IDENTITY_SPAN for p in own)
        caught += len(photos) - 1 in flagged
        left_out += len(photos) - 1 in plain
    return caught, left_out, judged


def sample_tiles(editor: Any, photos: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """Each photo's face at its own resolution (a square of 1.6 face widths about it, shown at TILE px: FG-NET's
    faces are 120-250 px wide, so about 1:1), the adult photo's square for its edits."""
    import cv2

    def square(rgb: np.ndarray) -> tuple[float, float, float]:
        faces = [f for f in editor.analyze(rgb) if f.landmarks is not None]
        if not faces:
            return rgb.shape[1] / 2, rgb.shape[0] / 2, float(min(rgb.shape[:2]))
        points = faces[0].landmarks.landmarks[:, :2]
        return *points.mean(axis=0), 1.6 * float(np.ptp(points[:, 0]))

    def tile(rgb: np.ndarray, at: tuple[float, float, float]) -> np.ndarray:
        x, y, side = at
        scale = TILE / side
        matrix = np.array([[scale, 0.0, TILE / 2 - x * scale], [0.0, scale, TILE / 2 - y * scale]])
        return cv2.warpAffine(rgb, matrix, (TILE, TILE), flags=cv2.INTER_AREA, borderValue=(255, 255, 255))

    adult_square = square(photos[0])
    return [tile(rgb, adult_square) for rgb in photos[:3]] + [tile(photos[3], square(photos[3]))]


def _ages(judge: Any, rgb: np.ndarray) -> list[float]:
    """Both age networks' readings of an edit (the editor's shipped estimator, then its second); NaN unread."""
    reading = judge.read(rgb) if judge is not None else None
    if reading is None:
        return [float("nan"), float("nan")]
    return [reading.age, judge.other_age(rgb, reading)]


def row_age_errors(rows: list[dict], key: str, against: str = "target") -> np.ndarray:
    """(people, networks) absolute errors of the edits `key` against their target ages (`against` "target"), or
    against each network's own reading of the person's real photo at that age ("real": an old scan reads years
    older than its age on one network, and an edit that looks like the scan should read as the scan does)."""

    def reference(row: dict) -> Any:
        return row["target_age"] if against == "target" else np.asarray(row["real_ages"], np.float64)

    return np.array([np.abs(np.asarray(r[f"{key}_ages"], np.float64) - reference(r)) for r in rows])


def age_errors(rows: list[dict], key: str, against: str = "target") -> list[float]:
    """Each network's mean of :func:`row_age_errors`."""
    errors = row_age_errors(rows, key, against)
    return [finite_mean(errors[:, k]) for k in range(errors.shape[1])]


def error_differences(rows: list[dict], key: str) -> list[dict[str, float]]:
    """Each network's mean error of the personal edits `key` against the real photo's reading less the general
    edit's, with its 95% paired bootstrap interval over people: the gate asks for at least as well, and 35 people
    leave a year of noise."""
    mine, general = row_age_errors(rows, key, "real"), row_age_errors(rows, "general", "real")
    return [bootstrap_difference(mine[:, k], general[:, k], BOOTSTRAP_DRAWS, seed=k) for k in range(mine.shape[1])]


def summarise(rows: list[dict]) -> dict[str, Any]:
    """Mean distances and the shares of people the personal edits bring closer."""
    if not rows:
        return {"people": 0, "adult": float("nan"), "general": float("nan"), "general_vs_adult": 0.0, "own": {}}
    adult = np.array([r["adult"] for r in rows])
    general = np.array([r["general"] for r in rows])
    own = {}
    for count in COUNTS:
        key = "all" if count is None else str(count)
        mine = np.array([r[key] for r in rows])
        own[key] = {
            "people": len(rows),
            "given": float(np.mean([r[f"{key}_given"] for r in rows])),
            "distance": finite_mean(mine),
            "vs_adult": float(np.mean(mine < adult)),
            "vs_general": float(np.mean(mine < general)),
            "age_errors": age_errors(rows, key),
            "real_age_errors": age_errors(rows, key, "real"),
            "real_age_error_differences": error_differences(rows, key),
        }
    references = {}
    for key in ("nearest_own", "closest_own"):
        mine = np.array([r.get(key, np.nan) for r in rows], np.float64)
        seen = np.isfinite(mine)
        references[key] = {
            "people": int(seen.sum()),
            "distance": finite_mean(mine),
            "vs_adult": float(np.mean(mine[seen] < adult[seen])) if seen.any() else float("nan"),
        }
    return {
        "people": len(rows),
        "adult": finite_mean(adult),
        "references": references,
        "general": finite_mean(general),
        "general_vs_adult": float(np.mean(general < adult)),
        "general_age_errors": age_errors(rows, "general"),
        "general_real_age_errors": age_errors(rows, "general", "real"),
        "own": own,
        "rows": rows,
    }
