"""Fit the engine's reenactment gains (``FittedEngineConfig.reenact_gains``) on CFEE's training people.

    python -m training.tools.fit_reenact_gains --cfee ../shared/datasets/cfee [--people 40] [--json PATH]

MediaPipe reads a warped face short of the landmarks it was warped to: warping a neutral photo exactly onto the
same person's lowered brows or parted lips (a piecewise-affine warp of every mesh triangle) reads back about 0.7
of the way, because the landmarker also reads what a warp cannot draw (the frown's furrows, the thinned lips).
The engine draws a driver's expression past its landmarks along the fitted AU shapes (``geometry.shape_change``).
Self-reenactment (each training person's neutral photo driven by their own expression photos) is run with every
region at each of ``--gains``; per region (mouth, eyes, brows, jaw: ``REENACT_REGIONS``) the gain whose result reads
nearest the driver on that region's FACS-coded AUs is kept (the minimum of a parabola through the best grid gain
and its neighbours). The held-out people are judged by ``evaluate.py turning`` with the gains set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.conditions import AU_NAMES
from ganime_age.engine.config import REENACT_REGIONS
from ganime_age.errors import exit_status

REGIONS = ("mouth", "eyes", "brows", "jaw")  # FittedEngineConfig.reenact_gains' order
# the AUs each region's gain draws (the nose's wrinkle with the mouth's)
REGION_AUS = {region: tuple(n for n in AU_NAMES if REENACT_REGIONS.get(n, 0) == r) for r, region in enumerate(REGIONS)}
GAINS = (1.0, 1.2, 1.4, 1.6, 1.9, 2.2)


def best_gain(gains: np.ndarray, errors: np.ndarray) -> float:
    """The gain of least error: the vertex of a parabola through the best grid gain and its neighbours (the
    grid's end where it is best there)."""
    k = int(np.nanargmin(errors))
    if k in (0, len(gains) - 1):
        return float(gains[k])
    x, y = gains[k - 1 : k + 2], errors[k - 1 : k + 2]
    a, b, _ = np.polyfit(x, y, 2)
    return float(np.clip(-b / (2.0 * a), x[0], x[2])) if a > 0 else float(gains[k])


def fit(cfee: Path, people: int, gains: tuple[float, ...]) -> dict[str, Any]:
    from ganime_age.editing import EditorConfig, FaceEditor
    from ganime_age.faces import load_image
    from training.evaluate import spread_indices
    from training.evaluation.gates import Judge, test_photos

    editor = FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))
    judge = Judge(editor, identity=None)
    photos = test_photos("cfee", cfee, split="train")
    by_person: dict[str, dict[str, Any]] = {}
    for photo in photos:
        by_person.setdefault(photo.person, {})[photo.category] = photo
    named = sorted(p for p, shots in by_person.items() if "Neutral" in shots and len(shots) > 1)
    chosen = [named[i] for i in spread_indices(len(named), people)]
    columns = {region: [AU_NAMES.index(n) for n in names] for region, names in REGION_AUS.items()}
    # errors[region][g]: the |result - driver| of every coded AU of that region over all pairs
    errors: dict[str, list[list[float]]] = {region: [[] for _ in gains] for region in REGION_AUS}
    pairs = 0
    fitted = editor.engine.config
    for person in chosen:
        shots = by_person[person]
        source = load_image(shots["Neutral"].path)
        for category, photo in sorted(shots.items()):
            if category == "Neutral" or photo.coded_aus is None or not np.any(photo.coded_aus > 0):
                continue
            driver = load_image(photo.path)
            driver_reading = judge.read(driver)
            if driver_reading is None:
                continue
            pairs += 1
            for g, gain in enumerate(gains):
                editor.engine.config = dataclasses.replace(fitted, reenact_gains=(gain,) * len(REGIONS))
                after = judge.read(np.asarray(editor.reenact(source, driver)))
                for region, cols in columns.items():
                    coded = [c for c in cols if photo.coded_aus[c] > 0]
                    for c in coded:
                        read = after.aus[c] if after is not None else 0.0
                        errors[region][g].append(abs(float(read) - float(driver_reading.aus[c])))
    grid = np.asarray(gains)
    result: dict[str, Any] = {"people": len(chosen), "pairs": pairs, "gains": list(gains), "regions": {}}
    for region in REGION_AUS:
        mean = np.array([np.mean(e) if e else np.nan for e in errors[region]])
        result["regions"][region] = {
            "coded_aus": len(errors[region][0]),
            "error_by_gain": [round(float(v), 4) for v in mean],
            "gain": round(best_gain(grid, mean), 2) if np.isfinite(mean).any() else 1.0,
        }
    result["reenact_gains"] = [result["regions"][r]["gain"] for r in REGIONS]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.tools.fit_reenact_gains", description=__doc__)
    parser.add_argument("--cfee", type=Path, required=True, help="CFEE folder (320 px crops, labels.csv, aus.csv)")
    parser.add_argument("--people", type=int, default=40, help="training people, spread over the split")
    parser.add_argument("--gains", default=",".join(f"{g:g}" for g in GAINS), help="gains tried, comma-separated")
    parser.add_argument("--json", type=Path, default=None, help="write the fit here")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def run() -> int:
        gains = tuple(float(v) for v in args.gains.split(","))
        result = fit(args.cfee, args.people, gains)
        text = json.dumps(result, indent=2)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(text + "\n")
        print(text)
        setting = json.dumps(result["reenact_gains"]).replace(" ", "")
        print(f"set with: python training/fit_engine.py card --engine ENGINE --note NOTE --set reenact_gains={setting}")
        return 0

    return exit_status(run, prog="python -m training.tools.fit_reenact_gains", debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
