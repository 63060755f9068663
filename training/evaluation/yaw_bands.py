"""How an age estimator's error grows with head yaw, on real held-out faces (``evaluate.py yaw-bands``).

    python training/evaluate.py yaw-bands --utkface ../shared/datasets/utkface \\
        --estimator shipped=src/ganime_age/weights/age-estimator --estimator tuned=runs/x/export \\
        --cache ../runs/yaw_bands_cache.npz --markdown ../runs/yaw_bands.md

The faces are UTKFace's test split as ``prepare_data`` splits it (a hash of each photo's bytes), which no
estimator is trained on and the multi-pose augmentation never turns. Each face's yaw is the package's head pose
read off its 478 landmarks (:func:`ganime_age.face_model.head_pose`), and every estimator reads the face's
aligned crop, as the editor does. The table gives the mean absolute error (years) in the bands |yaw| < 15,
15-30 and >= 30 degrees with the count of faces in each, a 95% bootstrap interval of each MAE, and each
estimator's paired difference from the first one named (negative: better), with its interval. The photos'
analysis (yaw and crop) is kept in ``--cache`` so that later estimators are read without analysing again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganime_age.errors import DatasetError, GanimeAgeError
from training.evaluation.metrics import add_report_arguments

# bands of |yaw| in degrees (named without "|", which would split a Markdown table's cell)
BANDS: tuple[tuple[str, float, float], ...] = (("< 15", 0.0, 15.0), ("15-30", 15.0, 30.0), (">= 30", 30.0, 1e9))
BOOTSTRAP = 2000


def parse_estimator(text: str) -> tuple[str, str]:
    """'label=path' or a path (labelled by its folder name); "embedded" is the shipped estimator."""
    label, _, path = text.rpartition("=") if "=" in text else ("", "", text)
    if path == "embedded":
        from ganime_age.editing import DEFAULT_ESTIMATOR_DIR

        path = str(DEFAULT_ESTIMATOR_DIR)
    return label or Path(path).name or path, path


def analyse_faces(root: Path, max_faces: int | None, cache: Path | None) -> dict[str, np.ndarray]:
    """Yaw (head pose from landmarks), aligned crop and age of each UTKFace test photo with a measured face."""
    from training.data.face_records import utkface_split
    from training.evaluate import spread_indices

    photos = utkface_split(root, "test")
    photos = [photos[i] for i in spread_indices(len(photos), max_faces)]
    names = np.asarray([path.name for path, _ in photos])
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            if np.array_equal(stored["asked"], names):
                return {key: stored[key] for key in stored.files}
    from ganime_age.face_model import head_pose
    from ganime_age.faces import FaceAnalyzer, load_image
    from training.prepare_data import pick_face

    analyzer = FaceAnalyzer()
    kept: dict[str, list[Any]] = {"names": [], "ages": [], "yaw": [], "crops": []}
    for path, age in photos:
        rgb = load_image(path)
        try:
            face = pick_face(analyzer.analyze(rgb), rgb.shape[1], rgb.shape[0])
        except GanimeAgeError:
            continue
        if face.landmarks is None:
            continue
        kept["names"].append(path.name)
        kept["ages"].append(age)
        kept["yaw"].append(float(head_pose(face.landmarks.landmarks)[0]))
        kept["crops"].append(face.aligned.image)
    if not kept["names"]:
        raise DatasetError(f"no face could be measured among {len(photos)} UTKFace test photos in {root}")
    result = {
        "asked": names,
        "names": np.asarray(kept["names"]),
        "ages": np.asarray(kept["ages"], np.float32),
        "yaw": np.asarray(kept["yaw"], np.float32),
        "crops": np.stack(kept["crops"]).astype(np.uint8),
    }
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.name + ".partial.npz")
        np.savez(partial, **result)
        partial.replace(cache)
    return result


@torch.no_grad()
def read_ages(path: str, crops: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """An AgeEstimator's readings (years) of aligned uint8 crops (N, S, S, 3)."""
    from ganime_age.hub import load_pretrained

    model = load_pretrained(path)
    if not hasattr(model, "predict"):
        raise GanimeAgeError(f"{path} holds a {type(model).__name__}, not an age estimator (no predict method)")
    model = model.float().eval()
    readings = []
    for start in range(0, len(crops), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(crops[start : start + batch_size])).permute(0, 3, 1, 2)
        readings.append(model.predict(batch.float() / 127.5 - 1.0).float().numpy())
    return np.concatenate(readings)


def interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% bootstrap interval of the mean of `values`."""
    if len(values) < 2:
        return float("nan"), float("nan")
    means = values[rng.integers(0, len(values), (BOOTSTRAP, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def band_table(errors: dict[str, np.ndarray], yaw: np.ndarray, seed: int = 0) -> list[dict[str, Any]]:
    """Per estimator and band: count, MAE with its interval, and the paired difference from the first estimator."""
    rng = np.random.default_rng(seed)
    reference = next(iter(errors.values()))
    rows = []
    for label, error in errors.items():
        row: dict[str, Any] = {"estimator": label, "all": _cell(error, reference, rng)}
        for name, low, high in BANDS:
            members = (np.abs(yaw) >= low) & (np.abs(yaw) < high)
            row[name] = _cell(error[members], reference[members], rng)
        rows.append(row)
    return rows


def _cell(error: np.ndarray, reference: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    difference = error - reference
    return {
        "faces": len(error),
        "mae": float(error.mean()) if len(error) else float("nan"),
        "mae_interval": interval(error, rng),
        "difference": float(difference.mean()) if len(error) else float("nan"),
        "difference_interval": interval(difference, rng),
    }


class YawBandEvaluation:
    """``evaluate.py yaw-bands``: age estimators' MAE on real held-out UTKFace faces per band of head yaw."""

    name = "yaw-bands"
    help = "age estimators' MAE on real held-out UTKFace faces by head-yaw band (<15, 15-30, >=30 degrees)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--utkface", required=True, help="UTKFace folder (the original photos)")
        parser.add_argument("--estimator", action="append", type=parse_estimator, required=True,
                            help="[label=]AgeEstimator folder or Hub id, or 'embedded'; repeat to compare (the "
                            "first is the reference of the differences)")  # fmt: skip
        parser.add_argument("--max-faces", type=int, default=None, help="test photos to use, spread (default all)")
        parser.add_argument("--cache", default=None, help="npz keeping the photos' yaw and crops between runs")
        add_report_arguments(parser)

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        started = time.perf_counter()
        faces = analyse_faces(Path(args.utkface), args.max_faces, Path(args.cache) if args.cache else None)
        errors = {}
        for label, path in args.estimator:
            if label in errors:
                raise GanimeAgeError(f"two estimators are labelled {label!r}: name them label=path")
            errors[label] = np.abs(read_ages(path, faces["crops"]) - faces["ages"])
        return {
            "faces": len(faces["names"]),
            "photos_asked": len(faces["asked"]),
            "estimators": {label: path for label, path in args.estimator},
            "rows": band_table(errors, faces["yaw"]),
            "seconds": round(time.perf_counter() - started, 1),
        }

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        bands = ["all", *(name for name, _, _ in BANDS)]
        first = result["rows"][0]
        header = " | ".join(f"{band} ({first[band]['faces']} faces)" for band in bands)
        lines = [
            f"MAE (years) on {result['faces']} real UTKFace test faces (of {result['photos_asked']} asked) by band of "
            "|yaw| (degrees, head pose from landmarks), 95% bootstrap interval in brackets; the second line of each later "
            f"estimator is its paired difference from `{first['estimator']}` (negative: better).",
            "",
            f"| estimator | {header} |",
            "|---|" + "---|" * len(bands),
        ]
        for index, row in enumerate(result["rows"]):
            cells = [
                f"{row[b]['mae']:.2f} [{row[b]['mae_interval'][0]:.2f}, {row[b]['mae_interval'][1]:.2f}]" for b in bands
            ]
            lines.append(f"| {row['estimator']} | " + " | ".join(cells) + " |")
            if index:
                cells = [
                    f"{row[b]['difference']:+.2f} [{row[b]['difference_interval'][0]:+.2f}, "
                    f"{row[b]['difference_interval'][1]:+.2f}]"
                    for b in bands
                ]
                lines.append(f"| {row['estimator']} - {first['estimator']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)
