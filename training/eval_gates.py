"""The default model's quality gates (issue 14), measured on held-out real faces.

    python training/evaluate.py gates --model FOLDER --estimator FOLDER --utkface data/utkface128 \\
        --cfee data/cfee128 [--max-faces 120] [--samples DIR] [--json out.json] [--markdown out.md]

- **Age**: UTKFace test faces aged 20-60 are edited to 5, 15, 30, 45, 60 and 75. The estimator's mean
  reading of the edits is compared with its mean reading of *real* test faces of those ages (an estimator
  regresses to the mean, so the target number itself is the wrong reference); the 5 -> 75 spread of the
  edits is compared with the real faces' spread.
- **Expression transfer**: each CFEE test person's Neutral photo is edited with the coded AUs of the same
  person's Happy, Surprised, Angry, Sad and Disgusted photos; "progress" is how far the edit's MediaPipe
  blendshapes moved from the neutral photo's toward the real expression photo's (projection, 1 = all the
  way), gaze blendshapes excluded.
- **Single-AU edits**: AU12, AU26, AU04 and AU01+AU02 set to 4 on CFEE Neutral and UTKFace test faces,
  measured with the calibrated blendshape read-out; other AUs should not move.
- **Identity**: MobileFaceNet, which the CPU recipe keeps out of its training loss, verifies each edit as
  its input's person at 1% false accepts, the threshold set on pairs of *different CFEE training people*
  (real identity labels).
- **Artefacts**: chroma high-frequency energy of the edited faces over that of their inputs.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganime_age.conditions import AU_NAMES
from ganime_age.errors import GanimeAgeError
from training.evaluate import pick_device, spread_indices
from training.metrics import (
    accept_rate,
    age_reading_curve,
    aus_from_blendshapes,
    chroma_high_frequency,
    embed_faces,
    finite_mean,
    markdown_table,
    matched_cosines,
    measure_blendshapes,
    pair_cosines,
    threshold_at_far,
    to_uint8_images,
)

GATE_AGES = (5.0, 15.0, 30.0, 45.0, 60.0, 75.0)
INPUT_AGES = (20.0, 60.0)
EXPRESSIONS = ("Happy", "Surprised", "Angry", "Sad", "Disgusted")
SINGLE_AU_EDITS: tuple[tuple[str, ...], ...] = (("AU12",), ("AU26",), ("AU04",), ("AU01", "AU02"))
SINGLE_AU_VALUE = 4.0
REFERENCE_CODE = 3.0  # real photos coded at least c on an AU: what the read-out gives for a clear real action
# thresholds of the gates
AGE_TOLERANCE = 4.0
AGE_SPREAD_SHARE = 0.85
EXPRESSION_PROGRESS = 0.6
AU_TOLERANCE = 1.0
AU_DRIFT = 0.5
VERIFIED_MID, VERIFIED_ENDS = 0.95, 0.85
CHROMA_RATIO = 1.25
GAZE_PREFIX = "eyeLook"


@dataclass
class Faces:
    """A batch of aligned test faces with the labels the gates need."""

    images: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    ages: torch.Tensor  # (N,) years (estimated for CFEE)
    aus: torch.Tensor  # (N, 17)
    hints: list[str]


def load_split(data: str, split: str, size: int, indices: np.ndarray | None = None) -> Faces:
    from training.data import PreparedFaces

    dataset = PreparedFaces(data, split, image_size=size)
    picks = np.arange(len(dataset)) if indices is None else indices
    items = [dataset[int(i)] for i in picks]
    return Faces(
        torch.stack([item["image"] for item in items]),
        torch.stack([item["age"] for item in items]),
        torch.stack([item["aus"] for item in items]),
        [dataset.identity_hints[int(i)] for i in picks],
    )


def cfee_person_and_category(hint: str) -> tuple[str, str]:
    """'cfee-<person>-<Category_words>' (prepare_data's CFEE identity hint) -> (person, 'Category words')."""
    _, person, category = hint.split("-", 2)
    return person, category.replace("_", " ")


class GateEvaluation:
    name = "gates"
    help = "issue-14 quality gates: age vs real faces' reading, CFEE expression transfer, single-AU edits, identity"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True, help="ageing model folder or Hub id")
        parser.add_argument("--estimator", required=True, help="AgeEstimator folder or Hub id")
        parser.add_argument("--utkface", required=True, help="prepared UTKFace (ages)")
        parser.add_argument("--cfee", required=True, help="prepared CFEE (coded AUs, identities)")
        parser.add_argument("--max-faces", type=int, default=120, help="UTKFace inputs aged 20-60")
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--device", default=None)
        parser.add_argument("--recognizer", default=None, help="MobileFaceNet weights (default: the asset)")
        parser.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task (default: the asset)")
        parser.add_argument("--far", type=float, default=0.01)
        parser.add_argument("--identity-photos", type=int, default=800, help="CFEE photos for the impostor pairs")
        parser.add_argument("--samples", default=None, help="write the gate grids (PNG) to this folder")
        parser.add_argument("--json", dest="json_path")
        parser.add_argument("--markdown")

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.faces import FaceLandmarker
        from ganime_age.hub import load_pretrained
        from ganime_age.models.mobilefacenet import FaceRecognizer

        started = time.perf_counter()
        device = pick_device(args.device)
        model = load_pretrained(args.model).to(device).eval()
        estimator = load_pretrained(args.estimator).to(device).eval()
        if not hasattr(model, "edit_faces") or not hasattr(estimator, "predict"):
            raise GanimeAgeError("--model must be an ageing model and --estimator an AgeEstimator")
        recognizer = FaceRecognizer(args.recognizer).to(device)
        landmarker = FaceLandmarker(args.landmarker)
        size, bs = int(model.config.image_size), args.batch_size

        def batched(fn: Any, *tensors: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.cat(
                    [
                        fn(*(t[s : s + bs].to(device) for t in tensors)).float().cpu()
                        for s in range(0, len(tensors[0]), bs)
                    ]
                )

        def edit(faces: Faces, target_age: torch.Tensor, target_aus: torch.Tensor) -> torch.Tensor:
            def one(
                images: torch.Tensor, ages: torch.Tensor, aus: torch.Tensor, t_age: torch.Tensor, t_aus: torch.Tensor
            ) -> torch.Tensor:
                return model.edit_faces(
                    images, source_age=ages, target_age=t_age, source_aus=aus, target_aus=t_aus
                ).image

            return batched(one, faces.images, faces.ages, faces.aus, target_age, target_aus)

        def embed(images: torch.Tensor) -> torch.Tensor:
            return embed_faces(recognizer, images.to(device), bs).cpu()

        try:
            # identity threshold on pairs of different CFEE training people (real identity labels)
            cfee_train, cfee = (load_split(args.cfee, split, size) for split in ("train", "test"))
            spread = spread_indices(len(cfee_train.hints), args.identity_photos)
            people = [cfee_person_and_category(cfee_train.hints[i])[0] for i in spread]
            threshold, impostors = impostor_threshold(embed(cfee_train.images[spread]), people, args.far)

            # real faces' reading per age (the whole UTKFace test split)
            utk = load_split(args.utkface, "test", size)
            readings = batched(estimator.predict, utk.images).numpy()
            curve = age_reading_curve(readings, utk.ages.numpy(), bandwidth=2.0)
            chosen = np.flatnonzero((utk.ages.numpy() >= INPUT_AGES[0]) & (utk.ages.numpy() <= INPUT_AGES[1]))
            chosen = chosen[spread_indices(len(chosen), args.max_faces)]
            inputs = Faces(utk.images[chosen], utk.ages[chosen], utk.aus[chosen], [utk.hints[i] for i in chosen])
            input_embeddings = embed(inputs.images)
            input_chroma = chroma_high_frequency(to_uint8_images(inputs.images))

            age_rows, age_outputs = [], {}
            for target in GATE_AGES:
                out = edit(inputs, torch.full_like(inputs.ages, target), inputs.aus)
                age_outputs[target] = out
                reading = batched(estimator.predict, out).numpy()
                cosines = matched_cosines(input_embeddings, embed(out))
                age_rows.append(
                    {
                        "target": target,
                        "edit_reading": float(reading.mean()),
                        "real_reading": float(curve[int(target)]),
                        "gap": float(reading.mean() - curve[int(target)]),
                        "verified": accept_rate(cosines, threshold),
                        "identity_cosine": float(cosines.mean()),
                        "chroma_ratio": float(chroma_high_frequency(to_uint8_images(out)).mean() / input_chroma.mean()),
                    }
                )
            edit_spread = age_rows[-1]["edit_reading"] - age_rows[0]["edit_reading"]
            real_spread = age_rows[-1]["real_reading"] - age_rows[0]["real_reading"]

            # expression transfer on CFEE test people
            expression = expression_transfer(cfee, edit, embed, landmarker, threshold)

            # single-AU edits on CFEE Neutral + the UTKFace inputs
            neutral = [i for i, h in enumerate(cfee.hints) if cfee_person_and_category(h)[1] == "Neutral"]
            pool = Faces(
                torch.cat([cfee.images[neutral], inputs.images]),
                torch.cat([cfee.ages[neutral], inputs.ages]),
                torch.cat([cfee.aus[neutral], inputs.aus]),
                [cfee.hints[i] for i in neutral] + inputs.hints,
            )
            pool_crops = to_uint8_images(pool.images)
            pool_measured = aus_from_blendshapes(measure_blendshapes(landmarker, pool_crops))
            pool_embeddings = embed(pool.images)
            pool_chroma = chroma_high_frequency(pool_crops).mean()
            cfee_measured = aus_from_blendshapes(measure_blendshapes(landmarker, to_uint8_images(cfee.images)))
            au_rows, au_outputs = [], {}
            for names in SINGLE_AU_EDITS:
                columns = [AU_NAMES.index(name) for name in names]
                target = pool.aus.clone()
                target[:, columns] = SINGLE_AU_VALUE
                out = edit(pool, pool.ages, target)
                label = "+".join(names)
                au_outputs[label] = out
                crops = to_uint8_images(out)
                measured = aus_from_blendshapes(measure_blendshapes(landmarker, crops))
                others = [j for j in range(len(AU_NAMES)) if j not in columns]
                cosines = matched_cosines(pool_embeddings, embed(out))
                au_rows.append(
                    {
                        "edit": label,
                        "measured": finite_mean(measured[:, columns].mean(axis=1)),
                        "input_measured": finite_mean(pool_measured[:, columns].mean(axis=1)),
                        "real_coded_reading": coded_reference(cfee, cfee_measured, columns),
                        "drift": finite_mean(np.abs(measured[:, others] - pool_measured[:, others]).mean(axis=1)),
                        "verified": accept_rate(cosines, threshold),
                        "chroma_ratio": float(chroma_high_frequency(crops).mean() / pool_chroma),
                        "faces": int(np.isfinite(measured[:, columns[0]]).sum()),
                    }
                )
        finally:
            landmarker.close()

        samples = None
        if args.samples:
            samples = write_gate_samples(
                Path(args.samples), inputs, age_outputs, pool, au_outputs, expression.pop("grid")
            )
        else:
            expression.pop("grid")
        result = {
            "evaluation": "gates",
            "model": str(args.model),
            "estimator": str(args.estimator),
            "identity_threshold": {"far": args.far, "threshold": threshold, "impostor_pairs": impostors},
            "real_reading_curve": [float(v) for v in curve],
            "age": {"rows": age_rows, "edit_spread": edit_spread, "real_spread": real_spread, "inputs": len(chosen)},
            "expression": expression,
            "single_au": au_rows,
            "samples": samples,
            "seconds": round(time.perf_counter() - started, 1),
        }
        result["gates"] = gate_table(result)
        return result

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        age = result["age"]
        lines = [
            "| gate | measured | needed | passes |",
            "|---|---|---|---|",
            *[
                f"| {g['gate']} | {g['measured']} | {g['needed']} | {'yes' if g['passes'] else '**no**'} |"
                for g in result["gates"]
            ],
            "",
            f"Age: {age['inputs']} UTKFace test faces aged 20-60; the estimator's mean reading of the edits against its "
            "mean reading of real test faces of the target age.",
            "",
            markdown_table(
                ["target", "edits read", "real faces read", "gap", "verified", "identity cos", "chroma ratio"],
                [
                    [
                        f"{r['target']:g}",
                        r["edit_reading"],
                        r["real_reading"],
                        r["gap"],
                        f"{r['verified']:.0%}",
                        r["identity_cosine"],
                        r["chroma_ratio"],
                    ]
                    for r in age["rows"]
                ],
                digits=2,
            ),
            "",
            f"Expression transfer: {result['expression']['pairs']} Neutral -> expression edits of "
            f"{result['expression']['people']} CFEE test people (progress = share of the way from the neutral photo's "
            "blendshapes to the real expression photo's).",
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
            "Single-AU edits to 4 (CFEE Neutral and UTKFace test faces), measured with the calibrated blendshape "
            "read-out. That read-out is a least-squares fit to FACS codes, so it shrinks toward the mean: the column "
            "of real CFEE test photos coded at least c on the same AU(s) shows what a clear real action reads.",
            "",
            markdown_table(
                [
                    "edit",
                    "measured",
                    "input measured",
                    "real photos coded >= 3 read",
                    "other-AU drift",
                    "verified",
                    "chroma ratio",
                    "faces",
                ],
                [
                    [
                        r["edit"],
                        r["measured"],
                        r["input_measured"],
                        r["real_coded_reading"],
                        r["drift"],
                        f"{r['verified']:.0%}",
                        r["chroma_ratio"],
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


def coded_reference(cfee: Faces, measured: np.ndarray, columns: list[int]) -> float:
    """What real CFEE test photos coded >= 3 (c) on all of `columns` read: the read-out's own ceiling."""
    coded = (cfee.aus[:, columns] >= REFERENCE_CODE).all(dim=1).numpy()
    return finite_mean(measured[coded][:, columns].mean(axis=1)) if coded.any() else float("nan")


def impostor_threshold(
    embeddings: torch.Tensor, people: list[str], far: float, max_pairs: int = 20000
) -> tuple[float, int]:
    """Cosine threshold at `far` over pairs of photos of different people."""
    rng = np.random.default_rng(0)
    n = len(people)
    first, second = rng.integers(0, n, max_pairs * 2), rng.integers(0, n, max_pairs * 2)
    keep = np.array([people[a] != people[b] for a, b in zip(first, second, strict=True)])
    pairs = np.stack([first[keep], second[keep]], axis=1)[:max_pairs]
    return threshold_at_far(pair_cosines(embeddings, pairs), far), len(pairs)


def expression_transfer(cfee: Faces, edit: Any, embed: Any, landmarker: Any, threshold: float) -> dict[str, Any]:
    """Neutral photo + the coded AUs of the same person's expression photo -> progress toward that photo."""
    from ganime_age.faces.aus import BLENDSHAPE_NAMES

    by_person: dict[str, dict[str, int]] = {}
    for index, hint in enumerate(cfee.hints):
        person, category = cfee_person_and_category(hint)
        by_person.setdefault(person, {}).setdefault(category, index)
    pairs = [
        (photos["Neutral"], photos[category], category)
        for photos in by_person.values()
        if "Neutral" in photos
        for category in EXPRESSIONS
        if category in photos
    ]
    if not pairs:
        raise GanimeAgeError("the CFEE test split has no Neutral + expression photo pairs")
    sources = np.array([p[0] for p in pairs])
    targets = np.array([p[1] for p in pairs])
    source = Faces(cfee.images[sources], cfee.ages[sources], cfee.aus[sources], [cfee.hints[i] for i in sources])
    out = edit(source, source.ages, cfee.aus[targets])
    keep = np.array([not name.startswith(GAZE_PREFIX) and name != "_neutral" for name in BLENDSHAPE_NAMES])
    neutral = measure_blendshapes(landmarker, to_uint8_images(source.images))[:, keep]
    real = measure_blendshapes(landmarker, to_uint8_images(cfee.images[targets]))[:, keep]
    edited = measure_blendshapes(landmarker, to_uint8_images(out))[:, keep]
    wanted = real - neutral
    progress = ((edited - neutral) * wanted).sum(axis=1) / np.maximum((wanted**2).sum(axis=1), 1e-6)
    verified = matched_cosines(embed(source.images), embed(out)) >= threshold
    rows = []
    for category in EXPRESSIONS:
        mask = np.array([p[2] == category for p in pairs])
        if mask.any():
            rows.append(
                {
                    "category": category,
                    "progress": finite_mean(progress[mask]),
                    "verified": float(verified[mask].mean()),
                    "pairs": int(mask.sum()),
                }
            )
    grid_rows = spread_indices(len(pairs), 6)
    grid = [("neutral", source.images[grid_rows]), ("edit", out[grid_rows]), ("real", cfee.images[targets][grid_rows])]
    return {
        "rows": rows,
        "progress": finite_mean(progress),
        "verified": float(verified.mean()),
        "pairs": len(pairs),
        "people": len({cfee_person_and_category(cfee.hints[s])[0] for s in sources}),
        "grid": grid,
    }


def gate_table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each gate of the issue with its measured value and whether it passes."""
    age = result["age"]
    gates = []
    worst_gap = max(abs(r["gap"]) for r in age["rows"])
    gates.append(
        _gate(
            "age: edits read like real faces of the target age (max |gap|, years)",
            worst_gap,
            f"<= {AGE_TOLERANCE:g}",
            worst_gap <= AGE_TOLERANCE,
        )
    )
    share = age["edit_spread"] / max(age["real_spread"], 1e-6)
    gates.append(
        _gate(
            "age: 5 -> 75 spread of the edits / of real faces",
            share,
            f">= {AGE_SPREAD_SHARE:g}",
            share >= AGE_SPREAD_SHARE,
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
    ends = min(r["verified"] for r in age["rows"] if not 20 <= r["target"] < 70)
    expression_verified = min([result["expression"]["verified"], *(r["verified"] for r in result["single_au"])])
    gates.append(
        _gate(
            "identity verified, targets 20-69 (worst)", mid, f">= {VERIFIED_MID:.0%}", mid >= VERIFIED_MID, percent=True
        )
    )
    gates.append(
        _gate(
            "identity verified, targets 5, 15, 75 (worst)",
            ends,
            f">= {VERIFIED_ENDS:.0%}",
            ends >= VERIFIED_ENDS,
            percent=True,
        )
    )
    gates.append(
        _gate(
            "identity verified, expression edits (worst)",
            expression_verified,
            f">= {VERIFIED_MID:.0%}",
            expression_verified >= VERIFIED_MID,
            percent=True,
        )
    )
    chroma = max([r["chroma_ratio"] for r in age["rows"]] + [r["chroma_ratio"] for r in result["single_au"]])
    gates.append(
        _gate(
            "artefacts: chroma high-frequency energy, edit / input (worst)",
            chroma,
            f"<= {CHROMA_RATIO:g}",
            chroma <= CHROMA_RATIO,
        )
    )
    return gates


def _gate(name: str, value: float, needed: str, passes: bool, percent: bool = False) -> dict[str, Any]:
    return {
        "gate": name,
        "value": float(value),
        "measured": f"{value:.0%}" if percent else f"{value:.2f}",
        "needed": needed,
        "passes": bool(passes),
    }


def write_gate_samples(
    folder: Path,
    inputs: Faces,
    age_outputs: dict[float, torch.Tensor],
    pool: Faces,
    au_outputs: dict[str, torch.Tensor],
    expression_grid: list[tuple[str, torch.Tensor]],
) -> list[str]:
    """gates_age.png, gates_aus.png and gates_expression.png: a few rows of real test faces each."""
    from training.systems.base import image_grid

    folder.mkdir(parents=True, exist_ok=True)
    rows = spread_indices(len(inputs.images), 6)
    image_grid([("input", inputs.images[rows])] + [(f"age {t:g}", out[rows]) for t, out in age_outputs.items()]).save(
        folder / "gates_age.png"
    )
    au_rows = spread_indices(len(pool.images), 6)
    image_grid([("input", pool.images[au_rows])] + [(f"{k}=4", out[au_rows]) for k, out in au_outputs.items()]).save(
        folder / "gates_aus.png"
    )
    image_grid(expression_grid).save(folder / "gates_expression.png")
    return ["gates_age.png", "gates_aus.png", "gates_expression.png"]
