"""The default editor's quality gates (issues 14 and 21), measured on held-out real photos as a user edits them.

    python training/evaluate.py gates --utkface ../shared/datasets/utkface --cfee ../shared/datasets/cfee \\
        --cfee-full ../shared/datasets/cfee_full [--fgnet ../shared/datasets/fgnet] [--engine FOLDER] \\
        [--model REFINER] [--max-faces 120] [--samples DIR] [--json out.json] [--markdown out.md]

Every edit goes through ``FaceEditor`` on the photo file itself (UTKFace's 200 px chips, CFEE's 320 px
crops, CFEE's 1000x750 originals), and every reading is taken by analysing the edited photo again, as a
user's photo would be. The held-out photos are prepare_data's test split (a content hash for UTKFace, the
person for CFEE), which the engine's fitting never saw.

- **Do no harm** (CFEE originals, faces ~300 px wide): an edit to the face's own age keeps the face's fine
  detail (variance of the Laplacian inside the face, output / input) and its colour (mean CIE Lab change);
  an edit to 75 must not blur it either.
- **Age**: UTKFace test faces aged 20-60 edited to 5, 15, 30, 45, 60 and 75. Each of the editor's two age
  networks (the shipped Cydral network on its chip, the compact CNN on the aligned crop; each its own raw
  reading, not the editor's reconciled age) reads the edits, against its own mean reading of *real* test faces
  of those ages (an estimator regresses to the mean, so the target number is the wrong reference), and the
  5 -> 75 spread against real faces'. An editor with one estimator is read a second time by dlib's age network.
- **Expression transfer**: each CFEE test person's Neutral photo edited with the coded AUs of the same person's
  Happy, Surprised, Angry, Sad and Disgusted photos; progress = how far the edit's MediaPipe blendshapes moved
  from the neutral photo's toward the real expression photo's (1 = all the way), gaze excluded.
- **Single-AU edits**: AU12, AU26, AU04 and AU01+AU02 set to 4 on CFEE Neutral and UTKFace test faces, read
  with the calibrated blendshape read-out; the other AUs should not move.
- **Identity**: dlib's ResNet face descriptor (in no loss and no fit here) verifies each edit as its input's
  person at 1% false accepts, the threshold set on pairs of different CFEE test people. An edit across decades
  need not keep identity better than the years do: with ``--fgnet``, the edits to 5, 10, 15 and 75 stand on the
  floor of real photos of one FG-NET person across the nearest span (:data:`FLOOR_OF_TARGET`, measured at the same
  threshold, :mod:`training.evaluation.fgnet_floors`); without it, on fixed shares. Edits to 30, 45 and 60 and
  expression edits keep their fixed share (FG-NET has no floor within the adult span).
- **Artefacts**: fine colour detail of the edited face over the input's (speckles, tints), and a grid of faces
  turned 25-40 degrees, where a warp would ghost.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ganime_age.conditions import AU_NAMES
from ganime_age.errors import GanimeAgeError
from training.evaluate import spread_indices
from training.evaluation.fgnet_floors import FLOOR_AGES, floors_table, measure_floors, span_label
from training.evaluation.metrics import (
    SKIN_REGIONS,
    add_report_arguments,
    age_reading_curve,
    chroma_high_frequency,
    finite_mean,
    forehead_step,
    lower_face_contrast,
    markdown_table,
    percent,
    skin_contrasts,
    threshold_at_far,
)

GATE_AGES = (5.0, 10.0, 15.0, 30.0, 45.0, 60.0, 75.0)
INPUT_AGES = (20.0, 60.0)
EXPRESSIONS = ("Happy", "Surprised", "Angry", "Sad", "Disgusted")
SINGLE_AU_EDITS: tuple[tuple[str, ...], ...] = (("AU12",), ("AU26",), ("AU04",), ("AU01", "AU02"))
SINGLE_AU_VALUE = 4.0
OLD_TARGET = 75.0
OLD_REAL = (65.0, 85.0)  # real faces whose skin an edit at OLD_TARGET should look like
YOUNG_TARGET = 5.0
YOUNG_REAL = (3.0, 7.0)  # real children whose lower face an edit at YOUNG_TARGET should look like
FACIAL_HAIR_SHARE = 0.1  # at most this share of edits at YOUNG_TARGET may have a lower face darker than real
# children's 10th percentile (facial hair left behind)
FOREHEAD_STEP = 3.0  # CIE L: the largest jump in an edit's change along the forehead (a band's edge is one)
STRIP_PEOPLE = 6  # held-out people whose age strip the gates show
TURNED = (25.0, 40.0)  # degrees of yaw of the faces in the turned-faces grid
# thresholds of the issues' gates
AGE_TOLERANCE = 4.0
AGE_SPREAD_SHARE = 0.85
EXPRESSION_PROGRESS = 0.6
AU_TOLERANCE = 1.0
AU_DRIFT = 0.5
VERIFIED_MID, VERIFIED_ENDS, VERIFIED_CHILD = 0.95, 0.85, 0.75  # 20-69; 15 and 75; 5 and 10 (without --fgnet)
# with --fgnet, the targets whose identity stands on an FG-NET floor, and the span of real photos of one person
# nearest the edit's (the inputs are 20-60, edited from their true age). FG-NET has few people past 60, so 75
# borrows 20-30 vs 40-69: a shorter span than the edit's, whose floor is higher than the honest one
FLOOR_OF_TARGET: dict[float, tuple[tuple[int, int], tuple[int, int]]] = {
    5.0: ((3, 8), (20, 45)),
    10.0: ((9, 12), (20, 45)),
    15.0: ((13, 19), (20, 45)),
    75.0: ((20, 30), (40, 69)),
}
CHROMA_RATIO = 1.25
KEPT_DETAIL, KEPT_DETAIL_OLD, MAX_LAB_CHANGE = 0.85, 0.90, 2.0
GAZE_PREFIX = "eyeLook"
GRID_SIDE = 256


# -- the held-out photos ------------------------------------------------------------------------------------
@dataclass
class Photo:
    path: Path
    age: float  # NaN where unknown
    person: str
    category: str  # CFEE's expression category, "" elsewhere
    coded_aus: np.ndarray | None  # CFEE's FACS codes


def test_photos(source: str, root: Path, split: str = "test") -> list[Photo]:
    """The test split of a source (or another `split`), as prepare_data splits it (content hash; the person for
    CFEE)."""
    from training.data.face_records import TEST_FRACTIONS
    from training.data.sources import parse_source
    from training.prepare_data import file_sha1, split_for, split_key_digest

    photos = []
    for item in parse_source(source, root).items:
        if split_for(split_key_digest(item, file_sha1(item.path)), TEST_FRACTIONS[source]) != split:
            continue
        person, category = item.identity_hint, ""
        if source == "cfee":
            _, person, category = item.identity_hint.split("-", 2)
            category = category.replace("_", " ")
        coded = np.asarray(item.aus, np.float32) if item.aus is not None else None
        photos.append(Photo(item.path, float(item.age), person, category, coded))
    return photos


def full_size_photos(root: Path, people: set[str] | None, limit: int) -> list[Path]:
    """CFEE's 1000x750 originals (one per person), of the given people where named."""
    import csv

    with open(root / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    chosen = [root / r["file_name"] for r in rows if people is None or r["identity"] in people]
    return [chosen[i] for i in spread_indices(len(chosen), limit)]


# -- measuring one photo ------------------------------------------------------------------------------------
@dataclass
class Reading:
    """What the analysis of a (possibly edited) photo says about its first face."""

    age: float  # the shipped (first) age network's own reading, not the editor's reconciled age
    aus: np.ndarray
    blendshapes: np.ndarray
    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    crop: np.ndarray  # aligned crop, for the chroma score and the grids
    yaw: float  # degrees: how far the face is turned
    face: Any = None  # the FaceAnalysis the readings were taken from


class Judge:
    """Reads photos with a FaceEditor's own analysis, its two age networks (each raw, on its own view, each
    judged against its own reading of real faces) and dlib's descriptor. An editor without a second estimator
    is read a second time by `other`, e.g. :class:`training.evaluation.judges.DlibAge`."""

    def __init__(self, editor: Any, identity: Any, other: Any = None) -> None:
        self.editor = editor
        self.identity = identity
        self.first = editor.age_estimator
        self.second = editor.second_age_estimator
        self.other = other

    def read(self, rgb: np.ndarray) -> Reading | None:
        from ganime_age.faces.aus import BLENDSHAPE_NAMES

        try:
            faces = self.editor.analyze(rgb)
        except GanimeAgeError:
            return None
        face = faces[0]
        if face.landmarks is None:
            return None
        x, y, w, h = (round(float(v)) for v in face.detection.box)
        blend = np.array([face.landmarks.blendshapes.get(n, np.nan) for n in BLENDSHAPE_NAMES], np.float64)
        return Reading(
            age=float(self.first.read_face(rgb, face)),
            aus=np.asarray(face.aus, np.float64),
            blendshapes=blend,
            box=(x, y, w, h),
            landmarks=np.asarray(face.landmarks.landmarks),
            crop=face.aligned.image,
            yaw=float(face.pose[0]),
            face=face,
        )

    def descriptor(self, rgb: np.ndarray, reading: Reading) -> np.ndarray:
        return self.identity.embed(rgb, reading.box)

    def other_age(self, rgb: np.ndarray, reading: Reading) -> float:
        """The second network's own reading of the face."""
        if self.second is not None:
            return float(self.second.read_face(rgb, reading.face))
        return float(self.other.predict([rgb], [reading.box])[0])

    @property
    def names(self) -> tuple[str, str]:
        """What the two age readings are, for the tables."""
        second = type(self.second).__name__ if self.second is not None else type(self.other).__name__
        return type(self.first).__name__, second


def judged_editor(args: argparse.Namespace) -> tuple[Any, Judge]:
    """The editor an evaluation's arguments name (``--model``, ``--engine``, ``--exemplars`` and, where the
    evaluation has it, ``--estimator``) on the CPU, and its judge (dlib's descriptor; dlib's age network as the
    second reading where the editor has no second estimator)."""
    from ganime_age.editing import EditorConfig, FaceEditor
    from training.evaluation.judges import DlibAge, DlibIdentity

    editor = FaceEditor.from_pretrained(
        args.model,
        engine=args.engine,
        exemplars=args.exemplars,
        age_estimator=getattr(args, "estimator", None),
        config=EditorConfig(device="cpu"),
    )
    return editor, Judge(editor, DlibIdentity(), None if editor.second_age_estimator is not None else DlibAge())


def face_region(rgb_shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """(H, W) bool: inside the face oval."""
    from ganime_age.faces import mesh

    oval = np.asarray(landmarks)[[a for a, _ in mesh.FACE_OVAL], :2]
    mask = np.zeros(rgb_shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(oval).astype(np.int32)], 1)
    return mask.astype(bool)


def fine_detail(rgb: np.ndarray, region: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image inside `region`: how much fine detail the face has."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[region].var())


def lab_change(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """Mean CIE76 colour difference (Lab, L in 0..100) between two photos inside `region`."""
    lab_a = cv2.cvtColor(a.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab_b = cv2.cvtColor(b.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return float(np.sqrt(((lab_a - lab_b) ** 2).sum(axis=2))[region].mean())


def face_tile(rgb: np.ndarray, reading: Reading | None, side: int = GRID_SIDE) -> np.ndarray:
    """A square crop around the face (1.5x its box, grey beyond the photo), resized to `side` pixels, for grids."""
    if reading is None:
        return cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    x, y, w, h = reading.box
    half = 0.75 * max(w, h)
    cx, cy = x + w / 2.0, y + h / 2.0
    matrix = np.array([[side / (2 * half), 0, side / 2 - cx * side / (2 * half)], [0, side / (2 * half), 0]])
    matrix[1, 2] = side / 2 - cy * side / (2 * half)
    interpolation = cv2.INTER_AREA if 2 * half > side else cv2.INTER_CUBIC
    return cv2.warpAffine(
        rgb, matrix, (side, side), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)
    )


def labelled_grid(rows: Sequence[tuple[str, Sequence[np.ndarray]]]) -> np.ndarray:
    """Rows of equal tiles, each row with its label on the left."""
    label_width = 150
    lines = []
    for label, tiles in rows:
        side = tiles[0].shape[0]
        tag = np.full((side, label_width, 3), 255, np.uint8)
        cv2.putText(tag, label, (6, side // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        lines.append(np.concatenate([tag, *tiles], axis=1))
    return np.concatenate(lines, axis=0)


GRID_SUFFIX = ".jpg"  # JPEG q92: a grid of photos is 8x smaller than as PNG and looks the same at this quality


def save_grid(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 92])


# -- the evaluation ----------------------------------------------------------------------------------------
def add_held_out_arguments(parser: argparse.ArgumentParser) -> None:
    """The datasets whose held-out photos an editor's gates are measured on."""
    parser.add_argument("--utkface", required=True, help="UTKFace folder (the original photos)")
    parser.add_argument("--cfee", required=True, help="CFEE folder (320 px crops, labels.csv, aus.csv)")
    parser.add_argument("--cfee-full", required=True, help="CFEE's 1000x750 originals (labels.csv)")


class GateEvaluation:
    name = "gates"
    help = "the default editor's quality gates on held-out photos: do no harm, age, expression, identity, artefacts"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_held_out_arguments(parser)
        parser.add_argument("--engine", default=None, help="fitted engine folder or Hub id (default: the embedded)")
        parser.add_argument(
            "--exemplars", default=None, help="the engine's bank of age exemplars (default: the embedded)"
        )
        parser.add_argument("--model", default=None, help="a refiner to run on top of the engine")
        parser.add_argument("--estimator", default=None, help="AgeEstimator folder (default: the embedded)")
        parser.add_argument("--max-faces", type=int, default=120, help="UTKFace inputs aged 20-60")
        parser.add_argument("--max-full", type=int, default=40, help="CFEE originals for the do-no-harm gate")
        parser.add_argument("--max-real", type=int, default=1200, help="real UTKFace test faces for the age curve")
        parser.add_argument("--max-people", type=int, default=None, help="CFEE test people to use (default: all)")
        parser.add_argument(
            "--fgnet", default=None, help="FG-NET folder: identity at 5, 10, 15 and 75 against its real-photo floors"
        )
        parser.add_argument(
            "--max-fgnet-people", type=int, default=None, help="FG-NET people for the floors (default: all)"
        )
        parser.add_argument("--far", type=float, default=0.01)
        add_report_arguments(parser, samples="write the gate grids (PNG) to this folder")

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.faces import load_image

        started = time.perf_counter()
        editor, judge = judged_editor(args)
        samples = Path(args.samples) if args.samples else None

        # identity threshold: pairs of different CFEE test people
        cfee = test_photos("cfee", Path(args.cfee))
        if args.max_people:  # people with a Neutral photo: the expression gates start from it
            people = sorted({p.person for p in cfee if p.category == "Neutral"})
            kept = {people[i] for i in spread_indices(len(people), args.max_people)}
            cfee = [p for p in cfee if p.person in kept]
        descriptors, people = [], []
        for photo in cfee:
            rgb = load_image(photo.path)
            reading = judge.read(rgb)
            if reading is not None:
                descriptors.append(judge.descriptor(rgb, reading))
                people.append(photo.person)
        threshold, impostors = impostor_threshold(np.stack(descriptors), people, args.far)

        def verified(a: np.ndarray, b: np.ndarray) -> bool:
            return bool(np.linalg.norm(a - b) < threshold)

        # identity floors: real photos of one FG-NET person across a span, verified at the edits' threshold
        floors = None
        if args.fgnet:
            floors = measure_floors(judge, Path(args.fgnet), verified, args.max_fgnet_people)

        # real faces' readings per age (UTKFace test split)
        utk = [p for p in test_photos("utkface", Path(args.utkface)) if np.isfinite(p.age)]
        real = [utk[i] for i in spread_indices(len(utk), args.max_real)]
        real_ages, real_readings, real_dlib, turned = [], [], [], []
        real_old: list[dict[str, np.ndarray]] = []  # real 65-85-year-olds' skin contrasts, the realism reference
        real_young: list[np.ndarray] = []  # real 3-7-year-olds' lower faces against their cheeks
        for photo in real:
            rgb = load_image(photo.path)
            reading = judge.read(rgb)
            if reading is not None:
                real_ages.append(photo.age)
                real_readings.append(reading.age)
                real_dlib.append(judge.other_age(rgb, reading))
                if OLD_REAL[0] <= photo.age <= OLD_REAL[1]:
                    real_old.append(skin_contrasts(rgb, reading.landmarks))
                if YOUNG_REAL[0] <= photo.age <= YOUNG_REAL[1]:
                    real_young.append(lower_face_contrast(rgb, reading.landmarks))
                if TURNED[0] <= abs(reading.yaw) <= TURNED[1] and INPUT_AGES[0] <= photo.age <= INPUT_AGES[1]:
                    turned.append(photo)
        curve = age_reading_curve(np.array(real_readings), np.array(real_ages), bandwidth=2.0)
        dlib_curve = age_reading_curve(np.array(real_dlib), np.array(real_ages), bandwidth=2.0)

        # the age gate
        candidates = [p for p in utk if INPUT_AGES[0] <= p.age <= INPUT_AGES[1]]
        inputs = [candidates[i] for i in spread_indices(len(candidates), args.max_faces)]
        age = age_gate(editor, judge, inputs, verified, curve, dlib_curve)
        realism = realism_summary(real_old, age.pop("old_contrasts"), age.pop("forehead_steps"))
        realism["facial_hair"] = facial_hair_summary(real_young, age.pop("young_contrasts"))
        # expression transfer and single-AU edits (CFEE test people, UTKFace inputs)
        expression = expression_gate(editor, judge, cfee, verified)
        neutral = [p for p in cfee if p.category == "Neutral"]
        single = single_au_gate(editor, judge, neutral + inputs[: max(len(neutral), 20)], cfee, verified)
        # do no harm on the full-size photos of CFEE test people
        people = {p.person for p in cfee}
        harm = harm_gate(editor, judge, full_size_photos(Path(args.cfee_full), people, args.max_full))
        if samples is not None:
            for name, grid in (
                ("age", age.pop("grid")),
                ("aus", single.pop("grid")),
                ("expression", expression.pop("grid")),
                ("full", harm.pop("grid")),
                ("turned", turned_grid(editor, judge, turned[:6])),
                ("strip", strip_grid(editor, full_size_photos(Path(args.cfee_full), people, STRIP_PEOPLE))),
            ):
                save_grid(samples / f"gates_{name}{GRID_SUFFIX}", grid)
        else:
            for part in (age, single, expression, harm):
                part.pop("grid")
        result = {
            "evaluation": "gates",
            "engine": str(args.engine or "embedded"),
            "exemplars": str(args.exemplars or "embedded"),
            "refiner": str(args.model) if args.model else None,
            "identity_threshold": {"far": args.far, "distance": threshold, "impostor_pairs": impostors},
            "identity_floors": floors,
            "real_reading_curve": [float(v) for v in curve],
            "second_reading_curve": [float(v) for v in dlib_curve],
            "age_networks": list(judge.names),
            "age": age,
            "realism": realism,
            "expression": expression,
            "single_au": single["rows"],
            "harm": harm,
            "samples": sorted(p.name for p in samples.glob(f"gates_*{GRID_SUFFIX}")) if samples else None,
            "seconds": round(time.perf_counter() - started, 1),
        }
        result["gates"] = gate_table(result)
        return result

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        age, harm = result["age"], result["harm"]
        first, second = result.get("age_networks", ("the shipped estimator", "dlib's age network"))
        lines = [
            "| gate | measured | needed | passes |",
            "|---|---|---|---|",
            *[
                f"| {g['gate']} | {g['measured']} | {g['needed']} | {'yes' if g['passes'] else '**no**'} |"
                for g in result["gates"]
            ],
            "",
            *_floors_lines(result),
            f"Do no harm: {harm['photos']} CFEE originals (1000x750, faces ~300 px wide) of test people.",
            "",
            markdown_table(
                ["edit", "fine detail kept", "mean Lab change"],
                [
                    ["own age (nothing new)", harm["own_detail"], harm["own_lab"]],
                    [f"age {OLD_TARGET:g}", harm["old_detail"], harm["old_lab"]],
                ],
                digits=3,
            ),
            "",
            f"Age: {age['inputs']} UTKFace test faces aged 20-60; mean readings of the edits against mean readings of "
            f"real test faces of the target age, by the shipped estimator ({first}) and by the second network "
            f"({second}), each its own raw reading (the editor's reconciled age is neither).",
            "",
            markdown_table(
                [
                    "target",
                    "edits read",
                    "real faces read",
                    "gap",
                    "second: edits",
                    "second: real",
                    "second: gap",
                    "verified",
                    "chroma",
                ],
                [
                    [
                        f"{r['target']:g}",
                        r["edit_reading"],
                        r["real_reading"],
                        r["gap"],
                        r["second_reading"],
                        r["second_real"],
                        r["second_reading"] - r["second_real"],
                        f"{r['verified']:.0%}",
                        r["chroma_ratio"],
                    ]
                    for r in age["rows"]
                ],
                digits=2,
            ),
            "",
            f"Realism of the edits at {OLD_TARGET:g}: each region's CIE Lab minus the same face's cheeks, the edits' "
            f"median against the 10th-90th percentiles of {result['realism']['real_faces']} real UTKFace test "
            f"faces aged {OLD_REAL[0]:g}-{OLD_REAL[1]:g}; the forehead's profile from the brows into the hairline: "
            f"the largest step in the edit's change there, median {result['realism']['forehead_step_median']:.2f}, 90th "
            f"percentile {result['realism']['forehead_step_p90']:.2f} (CIE L). Facial hair at {YOUNG_TARGET:g}: the "
            f"lower face's (chin, and between nose and lip) CIE L minus the cheeks', "
            + _facial_hair_sentence(result["realism"].get("facial_hair", {})),
            "",
            markdown_table(
                ["measure", "real p10", "real median", "real p90", "edits median", "edits inside", "passes"],
                [
                    [
                        r["measure"],
                        r["real_p10"],
                        r["real_median"],
                        r["real_p90"],
                        r["edits_median"],
                        f"{r['edits_inside']:.0%}",
                        "yes" if r["passes"] else "**no**",
                    ]
                    for r in result["realism"]["rows"]
                ],
                digits=2,
            ),
            "",
            f"Expression transfer: {result['expression']['pairs']} Neutral -> expression edits of "
            f"{result['expression']['people']} CFEE test people.",
            "",
            markdown_table(
                ["expression", "progress", "verified", "pairs"],
                [
                    [r["category"], r["progress"], f"{r['verified']:.0%}", r["pairs"]]
                    for r in result["expression"]["rows"]
                ],
                digits=2,
            ),
            "",
            "Single-AU edits to 4 (CFEE Neutral and UTKFace test faces), read with the calibrated blendshape read-out; "
            "the last columns: what real CFEE test photos coded >= 3 on the same AU(s) read.",
            "",
            markdown_table(
                [
                    "edit",
                    "measured",
                    "input measured",
                    "other-AU drift",
                    "verified",
                    "chroma",
                    "real coded >= 3 read",
                    "faces",
                ],
                [
                    [
                        r["edit"],
                        r["measured"],
                        r["input_measured"],
                        r["drift"],
                        f"{r['verified']:.0%}",
                        r["chroma_ratio"],
                        r["real_coded_reading"],
                        r["faces"],
                    ]
                    for r in result["single_au"]
                ],
                digits=2,
            ),
        ]
        if result.get("samples"):
            lines += ["", *[f"![{name}]({name})" for name in result["samples"]]]
        return "\n".join(lines)


def impostor_threshold(
    descriptors: np.ndarray, people: list[str], far: float, max_pairs: int = 50000
) -> tuple[float, int]:
    """dlib distance below which `far` of different-person pairs fall (distance: smaller = more alike)."""
    rng = np.random.default_rng(0)
    n = len(people)
    first, second = rng.integers(0, n, max_pairs * 2), rng.integers(0, n, max_pairs * 2)
    keep = np.array([people[a] != people[b] for a, b in zip(first, second, strict=True)])
    pairs = np.stack([first[keep], second[keep]], axis=1)[:max_pairs]
    distances = np.linalg.norm(descriptors[pairs[:, 0]] - descriptors[pairs[:, 1]], axis=1)
    # threshold_at_far works on similarities (higher = same): negate the distances
    return -threshold_at_far(-distances, far), len(pairs)


def _load(path: Path) -> np.ndarray:
    from ganime_age.faces import load_image

    return load_image(path)


def age_gate(
    editor: Any,
    judge: Judge,
    inputs: list[Photo],
    verified: Callable[[np.ndarray, np.ndarray], bool],
    curve: np.ndarray,
    second_curve: np.ndarray,
) -> dict[str, Any]:
    per_target: dict[float, dict[str, list[float]]] = {
        t: {"age": [], "second": [], "ok": [], "chroma": [], "chroma_in": []} for t in GATE_AGES
    }
    grid_rows: dict[str, list[np.ndarray]] = {"input": []}
    old_contrasts: list[dict[str, np.ndarray]] = []
    young_contrasts: list[np.ndarray] = []
    forehead_steps: list[float] = []
    shown = set(spread_indices(len(inputs), 6).tolist())
    used = 0
    for index, photo in enumerate(inputs):
        rgb = _load(photo.path)
        before = judge.read(rgb)
        if before is None:
            continue
        used += 1
        before_descriptor = judge.descriptor(rgb, before)
        before_chroma = float(chroma_high_frequency(before.crop[None])[0])
        if index in shown:
            grid_rows["input"].append(face_tile(rgb, before))
        for target in GATE_AGES:
            edited = np.asarray(editor.edit(rgb, age=target, face=0))
            after = judge.read(edited)
            row = per_target[target]
            if after is None:
                row["ok"].append(0.0)
                continue
            row["age"].append(after.age)
            row["second"].append(judge.other_age(edited, after))
            row["ok"].append(float(verified(before_descriptor, judge.descriptor(edited, after))))
            if target == YOUNG_TARGET:
                young_contrasts.append(lower_face_contrast(edited, after.landmarks))
            if target == OLD_TARGET:
                old_contrasts.append(skin_contrasts(edited, after.landmarks))
                forehead_steps.append(forehead_step(rgb, edited, before.landmarks))
            row["chroma"].append(float(chroma_high_frequency(after.crop[None])[0]))
            row["chroma_in"].append(before_chroma)
            if index in shown:
                grid_rows.setdefault(f"age {target:g}", []).append(face_tile(edited, before))
    rows = []
    for target in GATE_AGES:
        row = per_target[target]
        rows.append(
            {
                "target": target,
                "edit_reading": finite_mean(row["age"]),
                "real_reading": float(curve[int(target)]),
                "gap": finite_mean(row["age"]) - float(curve[int(target)]),
                "second_reading": finite_mean(row["second"]),
                "second_real": float(second_curve[int(target)]),
                "verified": finite_mean(row["ok"]),
                "chroma_ratio": chroma_ratio(row["chroma"], row["chroma_in"]),
            }
        )
    return {
        "rows": rows,
        "inputs": used,
        "edit_spread": rows[-1]["edit_reading"] - rows[0]["edit_reading"],
        "real_spread": rows[-1]["real_reading"] - rows[0]["real_reading"],
        "second_edit_spread": rows[-1]["second_reading"] - rows[0]["second_reading"],
        "second_real_spread": rows[-1]["second_real"] - rows[0]["second_real"],
        "old_contrasts": old_contrasts,
        "young_contrasts": young_contrasts,
        "forehead_steps": forehead_steps,
        "grid": labelled_grid([(k, v) for k, v in grid_rows.items() if v]),
    }


def realism_summary(
    real: list[dict[str, np.ndarray]], edits: list[dict[str, np.ndarray]], steps: list[float]
) -> dict[str, Any]:
    """Issue 30's realism gate for edits at 75: each region's CIE Lab contrast to the same face's cheeks (the
    eye sockets, the forehead's top band), the edits' median against real 65-85-year-olds' 10th-90th
    percentiles, and the largest step in what an edit changed along the forehead (a band's edge, CIE L)."""
    rows = []
    for region in SKIN_REGIONS:
        for channel, name in enumerate(("L", "a", "b")):
            truth = np.array([c[region][channel] for c in real], np.float64)
            made = np.array([c[region][channel] for c in edits], np.float64)
            truth, made = truth[np.isfinite(truth)], made[np.isfinite(made)]
            if not len(truth) or not len(made):
                continue
            low, high = (float(v) for v in np.percentile(truth, [10, 90]))
            median = float(np.median(made))
            rows.append(
                {
                    "measure": f"{region} {name} - cheeks",
                    "real_p10": low,
                    "real_p90": high,
                    "real_median": float(np.median(truth)),
                    "edits_median": median,
                    "edits_inside": float(np.mean((made >= low) & (made <= high))),
                    "passes": low <= median <= high,
                }
            )
    finite = np.array([s for s in steps if np.isfinite(s)])
    return {
        "real_faces": len(real),
        "edits": len(edits),
        "rows": rows,
        "forehead_step_median": float(np.median(finite)) if len(finite) else float("nan"),
        "forehead_step_p90": float(np.percentile(finite, 90)) if len(finite) else float("nan"),
    }


def facial_hair_summary(real: list[np.ndarray], edits: list[np.ndarray]) -> dict[str, Any]:
    """Issue 30's facial-hair gate for edits at 5: the lower face's CIE L minus the cheeks', edits against real
    3-7-year-olds (a beard or stubble left behind is darker than any real child's lower face)."""
    truth = np.array([c[0] for c in real], np.float64)
    made = np.array([c[0] for c in edits], np.float64)
    truth, made = truth[np.isfinite(truth)], made[np.isfinite(made)]
    if not len(truth) or not len(made):
        return {"real_faces": len(truth), "edits": len(made), "darker_share": float("nan")}
    low = float(np.percentile(truth, 10))
    return {
        "real_faces": len(truth),
        "edits": len(made),
        "real_p10": low,
        "real_median": float(np.median(truth)),
        "edits_median": float(np.median(made)),
        "darker_share": float(np.mean(made < low)),
    }


def expression_gate(
    editor: Any, judge: Judge, cfee: list[Photo], verified: Callable[[np.ndarray, np.ndarray], bool]
) -> dict[str, Any]:
    """Neutral photo + the coded AUs of the same person's expression photo -> progress toward that photo."""
    from ganime_age.faces.aus import BLENDSHAPE_NAMES

    keep = np.array([not n.startswith(GAZE_PREFIX) and n != "_neutral" for n in BLENDSHAPE_NAMES])
    by_person: dict[str, dict[str, Photo]] = {}
    for photo in cfee:
        by_person.setdefault(photo.person, {}).setdefault(photo.category, photo)
    rows_by: dict[str, list[tuple[float, float]]] = {c: [] for c in EXPRESSIONS}
    grid: list[tuple[str, list[np.ndarray]]] = [("neutral", []), ("edit", []), ("real", [])]
    people = 0
    for photos in by_person.values():
        if "Neutral" not in photos:
            continue
        neutral_rgb = _load(photos["Neutral"].path)
        neutral = judge.read(neutral_rgb)
        if neutral is None:
            continue
        people += 1
        neutral_descriptor = judge.descriptor(neutral_rgb, neutral)
        for category in EXPRESSIONS:
            if category not in photos or photos[category].coded_aus is None:
                continue
            real_rgb = _load(photos[category].path)
            real = judge.read(real_rgb)
            if real is None:
                continue
            aus = dict(zip(AU_NAMES, (float(v) for v in photos[category].coded_aus), strict=True))
            edited = np.asarray(editor.edit(neutral_rgb, aus=aus, face=0))
            after = judge.read(edited)
            if after is None:
                rows_by[category].append((0.0, 0.0))
                continue
            wanted = (real.blendshapes - neutral.blendshapes)[keep]
            moved = (after.blendshapes - neutral.blendshapes)[keep]
            progress = float((moved * wanted).sum() / max((wanted**2).sum(), 1e-6))
            rows_by[category].append((progress, float(verified(neutral_descriptor, judge.descriptor(edited, after)))))
            if len(grid[0][1]) < 6 and (len(grid[0][1]) == 0 or category != "Happy"):
                grid[0][1].append(face_tile(neutral_rgb, neutral))
                grid[1][1].append(face_tile(edited, neutral))
                grid[2][1].append(face_tile(real_rgb, real))
    rows = [
        {
            "category": c,
            "progress": finite_mean([p for p, _ in values]),
            "verified": finite_mean([v for _, v in values]),
            "pairs": len(values),
        }
        for c, values in rows_by.items()
        if values
    ]
    if not rows:
        raise GanimeAgeError("the CFEE test split has no Neutral + expression photo pairs")
    everything = [pair for values in rows_by.values() for pair in values]
    return {
        "rows": rows,
        "progress": finite_mean([p for p, _ in everything]),
        "verified": finite_mean([v for _, v in everything]),
        "pairs": len(everything),
        "people": people,
        "grid": labelled_grid([(label, tiles) for label, tiles in grid if tiles]),
    }


def single_au_gate(
    editor: Any,
    judge: Judge,
    pool: list[Photo],
    cfee: list[Photo],
    verified: Callable[[np.ndarray, np.ndarray], bool],
) -> dict[str, Any]:
    measured: dict[str, list[tuple[float, ...]]] = {"+".join(e): [] for e in SINGLE_AU_EDITS}
    grid_rows: dict[str, list[np.ndarray]] = {"input": []}
    shown = set(spread_indices(len(pool), 6).tolist())
    for index, photo in enumerate(pool):
        rgb = _load(photo.path)
        before = judge.read(rgb)
        if before is None:
            continue
        descriptor = judge.descriptor(rgb, before)
        chroma = float(chroma_high_frequency(before.crop[None])[0])
        if index in shown:
            grid_rows["input"].append(face_tile(rgb, before))
        for names in SINGLE_AU_EDITS:
            label = "+".join(names)
            columns = [AU_NAMES.index(n) for n in names]
            edited = np.asarray(editor.edit(rgb, aus=dict.fromkeys(names, SINGLE_AU_VALUE), face=0))
            after = judge.read(edited)
            if after is None:
                measured[label].append((np.nan, np.nan, np.nan, 0.0, np.nan, np.nan))
                continue
            others = [j for j in range(len(AU_NAMES)) if j not in columns]
            measured[label].append(
                (
                    float(after.aus[columns].mean()),
                    float(before.aus[columns].mean()),
                    float(np.abs(after.aus[others] - before.aus[others]).mean()),
                    float(verified(descriptor, judge.descriptor(edited, after))),
                    float(chroma_high_frequency(after.crop[None])[0]),
                    chroma,
                )
            )
            if index in shown:
                grid_rows.setdefault(f"{label}=4", []).append(face_tile(edited, before))
    # what real CFEE test photos coded >= 3 on the AU(s) read: the read-out's own ceiling
    coded_reading: dict[str, list[float]] = {label: [] for label in measured}
    for photo in cfee:
        if photo.coded_aus is None:
            continue
        for names in SINGLE_AU_EDITS:
            columns = [AU_NAMES.index(n) for n in names]
            if np.all(photo.coded_aus[columns] >= 3.0):
                reading = judge.read(_load(photo.path))
                if reading is not None:
                    coded_reading["+".join(names)].append(float(reading.aus[columns].mean()))
    rows = []
    for label, values in measured.items():
        array = np.array(values, np.float64).reshape(-1, 6)
        rows.append(
            {
                "edit": label,
                "measured": finite_mean(array[:, 0]),
                "input_measured": finite_mean(array[:, 1]),
                "drift": finite_mean(array[:, 2]),
                "verified": finite_mean(array[:, 3]),
                "chroma_ratio": chroma_ratio(array[:, 4], array[:, 5]),
                "real_coded_reading": finite_mean(coded_reading[label]),
                "faces": int(np.isfinite(array[:, 0]).sum()),
            }
        )
    return {"rows": rows, "grid": labelled_grid([(k, v) for k, v in grid_rows.items() if v])}


def turned_grid(editor: Any, judge: Judge, photos: list[Photo]) -> np.ndarray:
    """Faces turned 25-40 degrees aged, rejuvenated and smiling: where a warp would ghost, it shows here."""
    rows: dict[str, list[np.ndarray]] = {"input": [], "age 75": [], "age 5": [], "AU12=4": []}
    for photo in photos:
        rgb = _load(photo.path)
        before = judge.read(rgb)
        if before is None:
            continue
        rows["input"].append(face_tile(rgb, before))
        rows["age 75"].append(face_tile(np.asarray(editor.edit(rgb, age=75.0, face=0)), before))
        rows["age 5"].append(face_tile(np.asarray(editor.edit(rgb, age=5.0, face=0)), before))
        rows["AU12=4"].append(face_tile(np.asarray(editor.edit(rgb, aus={"AU12": SINGLE_AU_VALUE}, face=0)), before))
    if not rows["input"]:
        return np.full((GRID_SIDE, GRID_SIDE, 3), 255, np.uint8)
    return labelled_grid(list(rows.items()))


def strip_grid(editor: Any, photos: list[Path]) -> np.ndarray:
    """The Space's age strip of held-out people at their photos' resolution: one row per age, one column per
    person, each portrait fitted into a GRID_SIDE square."""
    columns: list[list[tuple[float, np.ndarray]]] = []
    for path in photos:
        try:
            strip = editor.age_strip(_load(path))
        except GanimeAgeError:
            continue
        columns.append([(age, _fitted(np.asarray(image), GRID_SIDE)) for age, image in strip])
    if not columns:
        return np.full((GRID_SIDE, GRID_SIDE, 3), 255, np.uint8)
    ages = [age for age, _ in columns[0]]
    return labelled_grid([(f"age {age:g}", [column[i][1] for column in columns]) for i, age in enumerate(ages)])


def _fitted(rgb: np.ndarray, side: int) -> np.ndarray:
    """`rgb` shrunk (or enlarged) to fit a side x side square, centred on white."""
    scale = side / max(rgb.shape[:2])
    height, width = max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    tile = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    tile[top : top + height, left : left + width] = cv2.resize(rgb, (width, height), interpolation=interpolation)
    return tile


def harm_gate(editor: Any, judge: Judge, photos: list[Path]) -> dict[str, Any]:
    """Own-age and age-75 edits of full-size photos: fine detail kept and colour change inside the face."""
    own_detail, own_lab, old_detail, old_lab = [], [], [], []
    grid: dict[str, list[np.ndarray]] = {"input": [], "own age": [], f"age {OLD_TARGET:g}": []}
    shown = set(spread_indices(len(photos), 4).tolist())
    for index, path in enumerate(photos):
        rgb = _load(path)
        before = judge.read(rgb)
        if before is None:
            continue
        region = face_region(rgb.shape, before.landmarks)
        detail = fine_detail(rgb, region)
        own = np.asarray(editor.edit(rgb, face=0))
        old = np.asarray(editor.edit(rgb, age=OLD_TARGET, face=0))
        own_detail.append(fine_detail(own, region) / max(detail, 1e-6))
        own_lab.append(lab_change(rgb, own, region))
        old_detail.append(fine_detail(old, region) / max(detail, 1e-6))
        old_lab.append(lab_change(rgb, old, region))
        if index in shown:
            for key, image in (("input", rgb), ("own age", own), (f"age {OLD_TARGET:g}", old)):
                grid[key].append(face_tile(image, before, side=384))
    return {
        "photos": len(own_detail),
        "own_detail": finite_mean(own_detail),
        "own_lab": finite_mean(own_lab),
        "old_detail": finite_mean(old_detail),
        "old_lab": finite_mean(old_lab),
        "worst_own_detail": float(np.min(own_detail)) if own_detail else float("nan"),
        "grid": labelled_grid([(k, v) for k, v in grid.items() if v]),
    }


def chroma_ratio(edited: Sequence[float], inputs: Sequence[float]) -> float:
    """Mean fine colour detail of the edits over that of their inputs (faces whose reading failed left out)."""
    a, b = np.asarray(edited, np.float64), np.asarray(inputs, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(a[ok].mean() / max(b[ok].mean(), 1e-9)) if ok.any() else float("nan")


def gate_table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each gate of the issues with its measured value and whether it passes."""
    age, harm = result["age"], result["harm"]
    gates = [
        _gate(
            "do no harm: fine detail kept, own-age edit of full-size photos",
            harm["own_detail"],
            f">= {KEPT_DETAIL:.0%}",
            harm["own_detail"] >= KEPT_DETAIL,
            percent=True,
        ),
        _gate(
            "do no harm: mean Lab change, own-age edit",
            harm["own_lab"],
            f"<= {MAX_LAB_CHANGE:g}",
            harm["own_lab"] <= MAX_LAB_CHANGE,
        ),
        _gate(
            f"do no harm: fine detail kept at age {OLD_TARGET:g}",
            harm["old_detail"],
            f">= {KEPT_DETAIL_OLD:.0%}",
            harm["old_detail"] >= KEPT_DETAIL_OLD,
            percent=True,
        ),
    ]
    readings = {  # each network against its own reading of real faces
        "shipped estimator": ([r["gap"] for r in age["rows"]], age["edit_spread"], age["real_spread"]),
        "second network": (
            [r["second_reading"] - r["second_real"] for r in age["rows"]],
            age["second_edit_spread"],
            age["second_real_spread"],
        ),
    }
    for network, (gaps, edit_spread, real_spread) in readings.items():
        worst_gap = max(abs(g) for g in gaps)
        gates.append(
            _gate(
                f"age, {network}: edits read like real faces of the target age (max |gap|, years)",
                worst_gap,
                f"<= {AGE_TOLERANCE:g}",
                worst_gap <= AGE_TOLERANCE,
            )
        )
        share = edit_spread / max(real_spread, 1e-6)
        gates.append(
            _gate(
                f"age, {network}: 5 -> 75 spread of the edits / of real faces",
                share,
                f">= {AGE_SPREAD_SHARE:g}",
                share >= AGE_SPREAD_SHARE,
            )
        )
    realism = result["realism"]
    inside = [r for r in realism["rows"] if r["passes"]]
    gates.append(
        _gate(
            f"realism at {OLD_TARGET:g}: sockets' and forehead top's Lab vs cheeks inside real old faces' 10-90%",
            len(inside) / max(len(realism["rows"]), 1),
            "all 6",
            len(inside) == len(realism["rows"]) > 0,
            percent=True,
        )
    )
    hair = realism.get("facial_hair", {})
    darker = float(hair.get("darker_share", float("nan")))
    gates.append(
        _gate(
            f"facial hair at {YOUNG_TARGET:g}: edits' lower face darker than real children's 10th percentile",
            darker,
            f"<= {FACIAL_HAIR_SHARE:.0%}",
            bool(darker <= FACIAL_HAIR_SHARE),
            percent=True,
        )
    )
    gates.append(
        _gate(
            "realism: forehead step an edit adds (90th percentile, CIE L)",
            realism["forehead_step_p90"],
            f"<= {FOREHEAD_STEP:g}",
            realism["forehead_step_p90"] <= FOREHEAD_STEP,
        )
    )
    progress = min(r["progress"] for r in result["expression"]["rows"])
    gates.append(
        _gate(
            "expression transfer: progress toward the real photo (worst expression)",
            progress,
            f">= {EXPRESSION_PROGRESS:g}",
            progress >= EXPRESSION_PROGRESS,
        )
    )
    au_error = max(abs(r["measured"] - SINGLE_AU_VALUE) for r in result["single_au"])
    gates.append(
        _gate("single-AU edits to 4: worst |measured - 4|", au_error, f"<= {AU_TOLERANCE:g}", au_error <= AU_TOLERANCE)
    )
    drift = max(r["drift"] for r in result["single_au"])
    gates.append(_gate("single-AU edits: worst other-AU drift", drift, f"< {AU_DRIFT:g}", drift < AU_DRIFT))
    mid = min(r["verified"] for r in age["rows"] if 20 <= r["target"] < 70)
    expression_verified = min([result["expression"]["verified"], *(r["verified"] for r in result["single_au"])])
    gates.append(
        _gate(
            "identity (dlib) verified, targets 20-69 (worst)",
            mid,
            f">= {VERIFIED_MID:.0%} (fixed share)",
            mid >= VERIFIED_MID,
            percent=True,
        )
    )
    floors = result.get("identity_floors")
    gates.append(_identity_gate(age["rows"], (15.0, 75.0), VERIFIED_ENDS, floors))
    gates.append(_identity_gate(age["rows"], (5.0, 10.0), VERIFIED_CHILD, floors))
    gates.append(
        _gate(
            "identity (dlib) verified, expression edits (worst)",
            expression_verified,
            f">= {VERIFIED_MID:.0%} (fixed share)",
            expression_verified >= VERIFIED_MID,
            percent=True,
        )
    )
    chroma = max([r["chroma_ratio"] for r in age["rows"]] + [r["chroma_ratio"] for r in result["single_au"]])
    gates.append(
        _gate(
            "artefacts: fine colour detail, edits / inputs (worst)",
            chroma,
            f"<= {CHROMA_RATIO:g}",
            chroma <= CHROMA_RATIO,
        )
    )
    return gates


def _identity_gate(
    rows: list[dict[str, Any]], targets: tuple[float, ...], fixed_share: float, floors: list[dict] | None
) -> dict[str, Any]:
    """The identity gate of a group of age targets: each target's verified share at least the FG-NET floor of its
    span (FLOOR_OF_TARGET) where floors were measured, else the worst at least a fixed share."""
    verified = {r["target"]: r["verified"] for r in rows if r["target"] in targets}
    worst = min(verified.values())
    name = f"identity (dlib) verified, targets {' and '.join(f'{t:g}' for t in targets)} (worst)"
    if floors is None:
        return _gate(name, worst, f">= {fixed_share:.0%} (fixed share)", worst >= fixed_share, percent=True)
    by_span = {f["span"]: f["verified"] for f in floors}
    floor = {t: by_span[span_label(FLOOR_OF_TARGET[t])] for t in targets}
    needed = ">= FG-NET floor: " + ", ".join(
        f"{percent(floor[t])} at {t:g} ({span_label(FLOOR_OF_TARGET[t])})" for t in targets
    )
    gate = _gate(name, worst, needed, all(verified[t] >= floor[t] for t in targets), percent=True)  # NaN floor: no
    gate["measured"] = ", ".join(f"{percent(verified[t])} at {t:g}" for t in targets)  # each has its own floor
    gate["floors"] = {f"{t:g}": {"span": span_label(FLOOR_OF_TARGET[t]), "verified": floor[t]} for t in targets}
    return gate


def _floors_lines(result: dict[str, Any]) -> list[str]:
    """The FG-NET floors the identity gates stood on, or a line saying the gates used fixed shares."""
    floors, threshold = result.get("identity_floors"), result["identity_threshold"]
    if floors is None:
        return [
            f"Identity at 5 and 10 (>= {VERIFIED_CHILD:.0%}) and at 15 and 75 (>= {VERIFIED_ENDS:.0%}): fixed shares; "
            f"`--fgnet` judges them against FG-NET floors of real photos instead.",
            "",
        ]
    used = {
        span_label(span): [f"{t:g}" for t, s in FLOOR_OF_TARGET.items() if s == span]
        for span in FLOOR_OF_TARGET.values()
    }
    return [
        f"Identity floors: how often dlib verifies real photos of one FG-NET person across each span (all "
        f"same-person pairs, photos aged {FLOOR_AGES[0]}-{FLOOR_AGES[1]}), at the edits' own distance "
        f"{threshold['distance']:.3f} (FAR {threshold['far']:.0%} on pairs of different CFEE test people); the edits "
        f"to 5, 10, 15 and 75 stand on the floor of the nearest span (75 borrows 20-30 vs 40-69: FG-NET has few "
        f"people past 60, and that shorter span's floor is higher than the honest one).",
        "",
        floors_table(floors, "gate targets", lambda f: ", ".join(used.get(f["span"], [])) or "-"),
        "",
    ]


def _facial_hair_sentence(hair: dict[str, Any]) -> str:
    if not np.isfinite(hair.get("darker_share", float("nan"))):
        return "not measured (no real children or no edits read)."
    return (
        f"edits' median {hair['edits_median']:.1f} against {hair['real_faces']} real UTKFace test children aged "
        f"{YOUNG_REAL[0]:g}-{YOUNG_REAL[1]:g} (median {hair['real_median']:.1f}, 10th percentile {hair['real_p10']:.1f}); "
        f"{hair['darker_share']:.0%} of the edits are darker than that."
    )


def _gate(name: str, value: float, needed: str, passes: bool, percent: bool = False) -> dict[str, Any]:
    return {
        "gate": name,
        "value": float(value),
        "measured": f"{value:.0%}" if percent else f"{value:.2f}",
        "needed": needed,
        "passes": bool(passes),
    }
