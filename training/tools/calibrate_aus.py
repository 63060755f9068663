"""Calibrate the blendshape -> AU read-out of ``ganime_age.faces.aus`` against CFEE's FACS codes.

    python training/tools/calibrate_aus.py --data data/cfee128 [--neutral-data data/utkface128] [--write [PATH]]

For each of the 17 AUs the read-out is clip((raw - rest) * gain, 0, 5), raw being the AU's blendshape
activation (``blendshape_activations``). This fits (rest, gain) per AU on the CFEE training people by least
squares of that clipped read-out against the coded intensity (a 2-D grid search refined by Nelder-Mead,
rest >= 0 so that a face without the blendshape reads 0), and reports the agreement on the held-out test
people before (the read-out shipped now) and after. Least squares over all photos was chosen over
class-balanced weights (higher MAE on held-out people, same r), absolute error (collapses the AUs that
MediaPipe tracks weakly to a constant 0) and a line through coded-present plus Neutral photos (reads ~2 on
every face because it ignores the clipping).

AUs with fewer than ``--min-coded`` coded training photos, or whose activation does not follow the codes
(Pearson r below ``--min-correlation`` on the training people), cannot be fitted; they keep the percentile
rule measured on ``--neutral-data`` (UTKFace: mostly neutral and smiling faces): rest = 25th percentile,
gain = 4 / (99th percentile - rest), at most 10. ``--write`` stores the constants with their provenance
and agreement in the package's ``au_calibration.json``, which ``faces/aus.py`` reads.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from scipy.optimize import minimize

from ganime_age.conditions import AU_MAX, AU_NAMES, NUM_AUS
from ganime_age.errors import DatasetError, exit_status
from ganime_age.faces.aus import (
    AU_BLENDSHAPES,
    AU_CALIBRATION_PATH,
    NUM_BLENDSHAPES,
    apply_au_calibration,
    blendshape_activations,
    blendshape_mapping,
    blendshapes_to_aus,
)

FIT_METHOD = "cfee-least-squares"
FALLBACK_METHOD = "utkface-percentile"
NEUTRAL_REST_PERCENTILE = 25.0
NEUTRAL_STRONG_PERCENTILE = 99.0
NEUTRAL_STRONG_READING = 4.0  # a strong expression of the neutral set reads ~4, only extreme ones saturate
NEUTRAL_MAX_GAIN = 10.0  # shapes that rarely fire on the neutral set: do not blow up noise near 0
MAX_NEUTRAL_FACES = 5000  # the percentiles are stable long before that; keeps the run to seconds
BEFORE = "the read-out that the package shipped when the script ran"  # what the report's "before" measured


@dataclass
class CodedPhotos:
    """Prepared rows of one split: raw blendshapes (N, 52), coded AUs (N, 17) and the photo's hint."""

    blendshapes: np.ndarray
    coded: np.ndarray
    hints: list[str]


@dataclass
class Agreement:
    """How a read-out agrees with the coded AUs on one AU (the report's columns)."""

    pearson_r: float | None  # None where the read-out or the codes are constant
    mae: float
    mean_coded_present: float | None
    mean_coded_absent: float | None
    coded_photos: int


def read_prepared(data: Path, split: str, *, coded_only: bool) -> CodedPhotos:
    """The blendshapes/aus/identity_hint columns of a prepared dataset's split (format 2 shards)."""
    shards = sorted((data / "data").glob(f"{split}-*.parquet"))
    if not shards:
        raise DatasetError(f"no {split}-*.parquet shards under {data / 'data'}; prepare the dataset first")
    table = pq.read_table(shards, columns=["blendshapes", "aus", "au_source", "identity_hint"])
    keep = np.ones(table.num_rows, bool)
    if coded_only:
        keep = np.asarray(table.column("au_source").to_pylist()) == "facs"
        if not keep.any():
            raise DatasetError(f"{data} {split} has no FACS-coded rows (au_source 'facs'); use a CFEE set")
    blendshapes = np.asarray(table.column("blendshapes").to_pylist(), np.float32).reshape(-1, NUM_BLENDSHAPES)
    coded = np.asarray(table.column("aus").to_pylist(), np.float32).reshape(-1, NUM_AUS)
    hints = [hint for hint, kept in zip(table.column("identity_hint").to_pylist(), keep, strict=True) if kept]
    return CodedPhotos(blendshapes[keep], coded[keep], hints)


def activations(blendshapes: np.ndarray) -> np.ndarray:
    """(N, 52) stored scores -> (N, 17) raw AU activations, through the package's own combination."""
    return np.array([blendshape_activations(blendshape_mapping(row)) for row in blendshapes], np.float32)


def shipped_readout(blendshapes: np.ndarray) -> np.ndarray:
    """(N, 52) -> (N, 17) AUs as the package reads them now: the "before" of the report."""
    return np.array([blendshapes_to_aus(blendshape_mapping(row)) for row in blendshapes], np.float32)


def clipped_readout(raw: np.ndarray, rest: float | np.ndarray, gain: float | np.ndarray) -> np.ndarray:
    """The read-out of one AU for the fit's search (broadcasts over candidate constants)."""
    return np.clip((raw - rest) * gain, 0.0, AU_MAX)


def fit_rest_gain(raw: np.ndarray, coded: np.ndarray) -> tuple[float, float]:
    """(rest, gain) minimising the squared error of the clipped read-out, rest >= 0.

    The clipping makes the loss flat wherever a whole group of photos reads 0 or 5, so a grid over rest at
    the activation's quantiles and a log-spaced gain finds the basin, and Nelder-Mead refines it.
    """

    def loss(rest: float, gain: float) -> float:
        return float(np.mean((clipped_readout(raw, rest, gain) - coded) ** 2))

    rests = np.unique(np.concatenate([[0.0], np.quantile(raw, np.linspace(0.0, 0.995, 100))]))
    gains = np.geomspace(0.3, 80.0, 160)
    grid = [(np.mean((clipped_readout(raw[None], r, gains[:, None]) - coded) ** 2, axis=1), r) for r in rests]
    best_losses, best_rest = min(grid, key=lambda item: item[0].min())
    start = np.array([best_rest, np.log(gains[best_losses.argmin()])])
    refined = minimize(lambda x: loss(max(x[0], 0.0), float(np.exp(x[1]))), start, method="Nelder-Mead")
    rest, gain = (max(float(refined.x[0]), 0.0), float(np.exp(refined.x[1])))
    if loss(rest, gain) > loss(best_rest, float(np.exp(start[1]))):  # never worse than the grid
        rest, gain = float(best_rest), float(np.exp(start[1]))
    return rest, gain


def percentile_rest_gain(raw: np.ndarray) -> tuple[float, float]:
    """The pre-CFEE rule on mostly neutral faces: rest = 25th percentile, a strong (99th) one reads ~4."""
    rest = float(np.percentile(raw, NEUTRAL_REST_PERCENTILE))
    spread = float(np.percentile(raw, NEUTRAL_STRONG_PERCENTILE)) - rest
    gain = NEUTRAL_MAX_GAIN if spread <= 0 else min(NEUTRAL_STRONG_READING / spread, NEUTRAL_MAX_GAIN)
    return rest, gain


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def agreement(measured: np.ndarray, coded: np.ndarray) -> Agreement:
    present = coded > 0
    return Agreement(
        pearson_r=_rounded(pearson(measured, coded)),
        mae=round(float(np.mean(np.abs(measured - coded))), 4),
        mean_coded_present=_rounded(float(measured[present].mean()) if present.any() else None),
        mean_coded_absent=_rounded(float(measured[~present].mean()) if (~present).any() else None),
        coded_photos=int(present.sum()),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass
class AUCalibration:
    """One AU's shipped constants, how they were obtained, and their agreement on the test people."""

    rest: float
    gain: float
    method: str
    reason: str
    coded_train_photos: int
    train_pearson_r: float | None
    test: Agreement
    test_before: Agreement | None
    neutral_reading_1_or_more: float  # share of the neutral set's faces that read >= 1 (a rest-level check)
    neutral_reading_1_or_more_before: float | None


def calibrate(
    train: CodedPhotos,
    test: CodedPhotos,
    neutral: CodedPhotos,
    *,
    min_coded: int,
    min_correlation: float,
    before: Callable[[np.ndarray], np.ndarray] | None = shipped_readout,
) -> dict[str, AUCalibration]:
    """Fit or fall back per AU, then measure the shipped formula's agreement on the test people."""
    train_raw, test_raw, neutral_raw = (activations(s.blendshapes) for s in (train, test, neutral))
    constants: dict[str, tuple[float, float]] = {}
    choices: dict[str, tuple[str, str, float | None]] = {}  # AU -> (method, reason, train r)
    for index, name in enumerate(AU_NAMES):
        raw, coded = train_raw[:, index], train.coded[:, index]
        coded_photos = int((coded > 0).sum())
        correlation = pearson(raw, coded)
        if coded_photos < min_coded:
            method, reason = FALLBACK_METHOD, f"{coded_photos} coded training photos (< {min_coded})"
            rest, gain = percentile_rest_gain(neutral_raw[:, index])
        elif correlation is None or correlation < min_correlation:
            shown = "undefined" if correlation is None else f"{correlation:.2f}"
            method, reason = FALLBACK_METHOD, f"the activation does not follow the codes (train r {shown})"
            rest, gain = percentile_rest_gain(neutral_raw[:, index])
        else:
            method, reason = FIT_METHOD, f"{coded_photos} coded training photos, train r {correlation:.2f}"
            rest, gain = fit_rest_gain(raw, coded)
        constants[name] = (round(rest, 5), round(gain, 4))  # as written to the JSON
        choices[name] = (method, reason, correlation)
    test_after = apply_au_calibration(test_raw, constants)
    neutral_after = apply_au_calibration(neutral_raw, constants)
    test_before, neutral_before = (
        (None, None) if before is None else (before(test.blendshapes), before(neutral.blendshapes))
    )
    return {
        name: AUCalibration(
            rest=constants[name][0],
            gain=constants[name][1],
            method=choices[name][0],
            reason=choices[name][1],
            coded_train_photos=int((train.coded[:, index] > 0).sum()),
            train_pearson_r=_rounded(choices[name][2]),
            test=agreement(test_after[:, index], test.coded[:, index]),
            test_before=None if test_before is None else agreement(test_before[:, index], test.coded[:, index]),
            neutral_reading_1_or_more=_share_reading_1_or_more(neutral_after[:, index]),
            neutral_reading_1_or_more_before=None
            if neutral_before is None
            else _share_reading_1_or_more(neutral_before[:, index]),
        )
        for index, name in enumerate(AU_NAMES)
    }


def _share_reading_1_or_more(readings: np.ndarray) -> float:
    return round(float(np.mean(readings >= 1.0)), 4)


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def markdown_table(results: dict[str, AUCalibration]) -> str:
    """One row per AU: before -> after for r, MAE and the mean read-out on coded-present/absent photos."""
    lines = [
        "| AU | blendshapes | constants | rest | gain | coded photos train / test "
        "| r before → after | MAE before → after | mean on coded present: before → after "
        "| mean on coded absent: before → after | neutral-set faces ≥ 1: before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        before = result.test_before
        cells = [
            name,
            ", ".join(AU_BLENDSHAPES[name]),
            "CFEE fit" if result.method == FIT_METHOD else "UTKFace percentiles",
            f"{result.rest:.3f}",
            f"{result.gain:.2f}",
            f"{result.coded_train_photos} / {result.test.coded_photos}",
            *(
                f"{_number(getattr(before, field) if before else None)} → {_number(getattr(result.test, field))}"
                for field in ("pearson_r", "mae", "mean_coded_present", "mean_coded_absent")
            ),
            f"{_percent(result.neutral_reading_1_or_more_before)} → {_percent(result.neutral_reading_1_or_more)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration_document(
    results: dict[str, AUCalibration], args: argparse.Namespace, counts: dict[str, int]
) -> dict[str, object]:
    """The JSON that faces/aus.py reads: per-AU rest/gain (the only required keys) plus provenance."""
    return {
        "format": 1,
        "readout": "clip((raw - rest) * gain, 0, 5), raw = ganime_age.faces.aus.blendshape_activations",
        "provenance": {
            "script": "training/tools/calibrate_aus.py",
            "date": datetime.date.today().isoformat(),
            "data": str(args.data),
            "fit_split": "train (CFEE people of the training split)",
            "agreement_split": "test (held-out CFEE people)",
            "before": BEFORE if any(r.test_before for r in results.values()) else "none shipped",
            "neutral_data": f"{args.neutral_data} (train split, {counts['neutral']} faces)",
            "photos": {"train": counts["train"], "test": counts["test"]},
            "codes": "FACS codes of the CFEE authors per person and expression, a..e -> 1..5, x -> 3, L/R averaged",
            "fit": "least squares of the clipped read-out, rest >= 0 (grid search + Nelder-Mead)",
            "fallback": (
                f"fewer than {args.min_coded} coded training photos or train r below {args.min_correlation}: "
                "rest = 25th percentile, gain = min(4 / (99th percentile - rest), 10) on the neutral data"
            ),
            "mediapipe": _installed_version("mediapipe"),
            "landmarker": "face_landmarker.task float16/1",
        },
        "aus": {name: asdict(result) for name, result in results.items()},
    }


def _installed_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared CFEE set (train/test split by person)")
    parser.add_argument(
        "--neutral-data",
        type=Path,
        default=Path("data/utkface128"),
        help="prepared set of mostly neutral faces for the fallback constants and the rest-level check",
    )
    parser.add_argument("--min-coded", type=int, default=20, help="fewest coded training photos to fit an AU")
    parser.add_argument("--min-correlation", type=float, default=0.2, help="lowest train r to fit an AU")
    parser.add_argument(
        "--write",
        type=Path,
        nargs="?",
        const=AU_CALIBRATION_PATH,
        default=None,
        help=f"write the calibration JSON (default path: the package's {AU_CALIBRATION_PATH.name})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        train = read_prepared(args.data, "train", coded_only=True)
        test = read_prepared(args.data, "test", coded_only=True)
        neutral = read_prepared(args.neutral_data, "train", coded_only=False)
        picks = np.random.default_rng(7).permutation(len(neutral.hints))[:MAX_NEUTRAL_FACES]
        neutral = CodedPhotos(neutral.blendshapes[picks], neutral.coded[picks], [neutral.hints[i] for i in picks])
        before = shipped_readout if AU_CALIBRATION_PATH.is_file() else None  # none shipped yet: no "before"
        results = calibrate(
            train, test, neutral, min_coded=args.min_coded, min_correlation=args.min_correlation, before=before
        )
        print(markdown_table(results))
        fallbacks = [f"{name} ({r.reason})" for name, r in results.items() if r.method == FALLBACK_METHOD]
        print(
            f"\n{len(train.hints)} training and {len(test.hints)} test photos; fallback: {', '.join(fallbacks) or 'none'}"
        )
        if args.write is not None:
            counts = {"train": len(train.hints), "test": len(test.hints), "neutral": len(neutral.hints)}
            document = calibration_document(results, args, counts)
            args.write.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"wrote {args.write}")
        return 0

    return exit_status(run, prog="training/tools/calibrate_aus.py")


if __name__ == "__main__":
    sys.exit(main())
