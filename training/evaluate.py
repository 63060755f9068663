"""Evaluate trained models on a prepared dataset's test split; one subcommand per evaluation.

    python training/evaluate.py ganimation --model FOLDER --data DATA_DIR --estimator FOLDER \\
        [--max-faces N] [--json out.json] [--markdown out.md]

Each subcommand is a class with ``name``, ``help``, ``add_arguments(parser)`` and ``run(args) -> dict``
registered in :data:`COMMANDS` ("module:Class", imported when the parser is built). Another module
adds its own with one line, e.g. ``"table1": "training.evaluation.table1:Table1Evaluation"``. Every command
prints a Markdown table and can write its results as JSON (NaN as null) and Markdown; a model
folder's evaluation.md is what the trainer puts into the model card.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganime_age.conditions import AU_FACS_NAMES, AU_NAMES
from ganime_age.editing import pick_device  # the library's: checks the named device exists here
from ganime_age.errors import GanimeAgeError, exit_status
from training.evaluation.metrics import (
    accept_rate,
    age_stats,
    different_pairs,
    embed_faces,
    finite_mean,
    json_ready,
    markdown_table,
    matched_cosines,
    measure_aus,
    pair_cosines,
    threshold_at_far,
    to_uint8_images,
)

COMMANDS: dict[str, str] = {
    "ganimation": "training.evaluate:GanimationEvaluation",
    "table1": "training.evaluation.table1:Table1Evaluation",
    "wild": "training.evaluation.wild:WildEvaluation",
    "reenact": "training.evaluation.reenact:ReenactEvaluation",
    "turning": "training.evaluation.turning:TurningEvaluation",
    "gates": "training.evaluation.gates:GateEvaluation",
    "yaw-bands": "training.evaluation.yaw_bands:YawBandEvaluation",
    "ages": "training.evaluation.ages:AgesEvaluation",
    "own-ageing": "training.evaluation.own_ageing:OwnAgeingEvaluation",
    "grey-hair": "training.evaluation.grey_hair:GreyHairEvaluation",
}

DEFAULT_AGES = "10,20,30,40,50,60,70,80"
DEFAULT_AU_EDITS = "AU12=4,AU26=4,AU04=4"


# -- pieces every evaluation needs -----------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="prepared dataset folder (training/prepare_data.py output)")
    parser.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    parser.add_argument("--max-faces", type=int, default=500, help="use at most the first N faces of the split")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--recognizer", default=None, help="MobileFaceNet weights (default: the asset)")
    parser.add_argument("--far", type=float, default=0.01, help="false-accept rate of the identity threshold")
    parser.add_argument("--max-pairs", type=int, default=20000, help="different-person pairs for the threshold")
    parser.add_argument("--json", dest="json_path", help="write the results as JSON here")
    parser.add_argument("--markdown", help="write the Markdown tables here (e.g. <run>/evaluation.md)")


def load_faces(data: str, split: str, image_size: int, max_faces: int | None) -> dict[str, torch.Tensor]:
    """`max_faces` faces spread evenly over a split, as one batch (image, age, aus) on the CPU."""
    from training.data.prepared import PreparedFaces

    dataset = PreparedFaces(data, split, image_size=image_size)
    return decode_faces(dataset, spread_indices(len(dataset), max_faces))


def spread_indices(count: int, limit: int | None) -> np.ndarray:
    """`limit` indices spread evenly over range(count) (all if None or enough).

    Prepared shards keep the source's file order (UTKFace names start with the age), so the first N
    faces are a biased sample; an even spread is not.
    """
    if limit is None or limit >= count:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, max(limit, 1)).round().astype(np.int64))


def decode_faces(dataset: Any, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """Decode the chosen faces of a PreparedFaces split into one CPU batch (image, age, aus)."""
    items = [dataset[int(i)] for i in indices]
    return {key: torch.stack([item[key] for item in items]) for key in ("image", "age", "aus")}


def identity_threshold(embeddings: torch.Tensor, far: float, max_pairs: int) -> dict[str, Any]:
    """Cosine threshold at `far` on pairs of different input faces (assumed different people)."""
    pairs = different_pairs(embeddings.shape[0], max_pairs)
    scores = pair_cosines(embeddings, pairs)
    if scores.size == 0:
        raise GanimeAgeError("identity threshold needs at least two faces (--max-faces >= 2)")
    return {
        "far": far,
        "threshold": threshold_at_far(scores, far),
        "impostor_pairs": int(scores.size),
        "impostor_mean": float(scores.mean()),
        "assumption": "different images are different people (the data has no identity labels)",
    }


def write_outputs(result: dict[str, Any], markdown: str, args: argparse.Namespace) -> None:
    print(markdown)
    if args.json_path:
        path = Path(args.json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(json_ready(result), indent=2, allow_nan=False), encoding="utf-8")
        print(f"wrote {path}")
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown + "\n", encoding="utf-8")
        print(f"wrote {path}")


def parse_ages(text: str) -> list[float]:
    try:
        ages = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ages takes comma-separated years, got {text!r}") from None
    if not ages or any(not 0 <= a <= 100 for a in ages):
        raise argparse.ArgumentTypeError("--ages must list years between 0 and 100")
    return ages


def parse_au_edits(text: str) -> list[tuple[str, float]]:
    edits = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        name = name.strip().upper()
        if name not in AU_NAMES or not value:
            raise argparse.ArgumentTypeError(f"--au-edits items look like AU12=4 with an AU of {', '.join(AU_NAMES)}")
        try:
            edits.append((name, float(value)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--au-edits: {value!r} is not a number") from None
    return edits


# -- GANimation-age (and any ageing model with edit_faces) ---------------------------------------------------


class GanimationEvaluation:
    """Age accuracy, identity kept and AU accuracy of an ageing model's edits."""

    name = "ganimation"
    help = "age / identity / AU accuracy of a GANimation-age (or any ageing) model on the test split"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True, help="ageing model folder or Hub id (GanimationAge, ...)")
        parser.add_argument("--estimator", required=True, help="AgeEstimator folder or Hub id")
        add_common_arguments(parser)
        parser.add_argument("--ages", type=parse_ages, default=parse_ages(DEFAULT_AGES), help="target ages")
        parser.add_argument(
            "--au-edits",
            type=parse_au_edits,
            default=parse_au_edits(DEFAULT_AU_EDITS),
            help=f"AU edits at the source age (default {DEFAULT_AU_EDITS})",
        )
        parser.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task (default: the asset)")
        parser.add_argument("--no-aus", dest="aus", action="store_false", help="skip the AU measurements")
        parser.add_argument(
            "--samples",
            default=None,
            help="write samples_age.png and samples_aus.png (real test faces: age ramp, AU edits) to this folder; "
            "the model folder puts them into its card",
        )
        parser.add_argument("--sample-faces", type=int, default=6, help="rows of the sample grids")

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.hub import load_pretrained
        from ganime_age.models.mobilefacenet import FaceRecognizer

        started = time.perf_counter()
        device = pick_device(args.device)
        model = load_pretrained(args.model).to(device).eval()
        if not hasattr(model, "edit_faces"):
            raise GanimeAgeError(f"{args.model} holds a {type(model).__name__}, not an ageing model (no edit_faces)")
        estimator = load_pretrained(args.estimator).to(device).eval()
        if not hasattr(estimator, "predict"):
            raise GanimeAgeError(f"{args.estimator} holds a {type(estimator).__name__}, not an AgeEstimator")
        recognizer = FaceRecognizer(args.recognizer).to(device)
        faces = load_faces(args.data, args.split, model.config.image_size, args.max_faces)
        images, ages, aus = faces["image"], faces["age"], faces["aus"]
        n, bs = images.shape[0], args.batch_size

        def edit(target_age: torch.Tensor, target_aus: torch.Tensor) -> torch.Tensor:
            outputs = []
            with torch.no_grad():
                for s in range(0, n, bs):
                    out = model.edit_faces(
                        images[s : s + bs].to(device),
                        source_age=ages[s : s + bs].to(device),
                        target_age=target_age[s : s + bs].to(device),
                        source_aus=aus[s : s + bs].to(device),
                        target_aus=target_aus[s : s + bs].to(device),
                    )
                    outputs.append(out.image.float().cpu())
            return torch.cat(outputs)

        def estimate(batch: torch.Tensor) -> np.ndarray:
            with torch.no_grad():
                return torch.cat(
                    [estimator.predict(batch[s : s + bs].to(device)).float().cpu() for s in range(0, n, bs)]
                ).numpy()

        source_embeddings = embed_faces(recognizer, images.to(device), bs)
        identity = identity_threshold(source_embeddings, args.far, args.max_pairs)
        threshold = identity["threshold"]
        estimator_on_inputs = age_stats(estimate(images), ages.numpy())

        shown = spread_indices(n, args.sample_faces)  # the sample grids' rows
        age_columns: list[tuple[str, torch.Tensor]] = [("input", images[shown])]
        age_rows = []
        for target in args.ages:
            outputs = edit(torch.full_like(ages, target), aus)
            age_columns.append((f"age {target:g}", outputs[shown]))
            cosines = matched_cosines(source_embeddings, embed_faces(recognizer, outputs.to(device), bs))
            age_rows.append(
                {
                    "target": target,
                    **age_stats(estimate(outputs), target),
                    "identity_cosine": float(cosines.mean()),
                    "identity_verified": accept_rate(cosines, threshold),
                }
            )

        au_section: dict[str, Any] = {"measured": False}
        if args.aus and getattr(model, "uses_aus", False) and args.au_edits:
            from ganime_age.faces import FaceLandmarker

            landmarker = FaceLandmarker(args.landmarker)
            try:
                measured_inputs = measure_aus(landmarker, to_uint8_images(images))
                edit_rows = []
                for name, value in args.au_edits:
                    k = AU_NAMES.index(name)
                    target_aus = aus.clone()
                    target_aus[:, k] = value
                    measured = measure_aus(landmarker, to_uint8_images(edit(ages, target_aus)))
                    others = [j for j in range(len(AU_NAMES)) if j != k]
                    edit_rows.append(
                        {
                            "au": name,
                            "name": AU_FACS_NAMES[name],
                            "value": value,
                            "measured_mean": finite_mean(measured[:, k]),
                            "requested_error": finite_mean(np.abs(measured[:, k] - value)),
                            "input_error": finite_mean(np.abs(measured_inputs[:, k] - value)),
                            "drift": finite_mean(np.abs(measured[:, others] - measured_inputs[:, others]).mean(axis=1)),
                            "faces_measured": int(np.isfinite(measured[:, k] + measured_inputs[:, k]).sum()),
                        }
                    )
            finally:
                landmarker.close()
            au_section = {
                "measured": True,
                "method": "MediaPipe blendshapes -> AUs (ganime_age.faces) on the aligned input and output crops",
                "edits": edit_rows,
                "requested_error": finite_mean([r["requested_error"] for r in edit_rows]),
                "drift": finite_mean([r["drift"] for r in edit_rows]),
            }

        samples = None
        if args.samples:
            samples = write_samples(Path(args.samples), age_columns, edit, ages, aus, args.au_edits, shown)

        result = {
            "evaluation": "ganimation",
            "model": str(args.model),
            "model_type": getattr(model, "model_type", type(model).__name__),
            "estimator": str(args.estimator),
            "data": str(args.data),
            "split": args.split,
            "num_faces": int(n),
            "image_size": int(model.config.image_size),
            "estimator_on_inputs": estimator_on_inputs,
            "identity": identity,
            "ages": age_rows,
            "age_summary": {
                "mae": finite_mean([r["mae"] for r in age_rows]),
                "identity_cosine": finite_mean([r["identity_cosine"] for r in age_rows]),
                "identity_verified": finite_mean([r["identity_verified"] for r in age_rows]),
            },
            "aus": au_section,
            "samples": samples,
            "seconds": round(time.perf_counter() - started, 2),
        }
        return result

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        identity = result["identity"]
        lines = [
            f"Evaluated on {result['num_faces']} faces of the `{result['split']}` split of `{Path(result['data']).name}` "
            f"at {result['image_size']} px. The age estimator's MAE on the unedited inputs is "
            f"{result['estimator_on_inputs']['mae']:.2f} years (its own error floor). Identity threshold: cosine "
            f"{identity['threshold']:.3f} at {identity['far']:.0%} false accepts on {identity['impostor_pairs']} pairs "
            "of different test faces (assumed to be different people).",
            "",
            markdown_table(
                ["target age", "estimated (mean ± std)", "MAE", "identity cosine", "verified"],
                [
                    [
                        f"{r['target']:g}",
                        f"{r['estimate_mean']:.1f} ± {r['estimate_std']:.1f}",
                        r["mae"],
                        r["identity_cosine"],
                        f"{r['identity_verified']:.0%}",
                    ]
                    for r in result["ages"]
                ],
            ),
        ]
        summary = result["age_summary"]
        lines.append(
            f"| **mean** | | {summary['mae']:.3f} | {summary['identity_cosine']:.3f} | "
            f"{summary['identity_verified']:.0%} |"
        )
        aus = result["aus"]
        if aus.get("measured"):
            lines += [
                "",
                markdown_table(
                    ["AU edit", "requested", "measured", "error", "input error", "other-AU drift", "faces"],
                    [
                        [
                            f"{r['au']} ({r['name']})",
                            f"{r['value']:g}",
                            r["measured_mean"],
                            r["requested_error"],
                            r["input_error"],
                            r["drift"],
                            r["faces_measured"],
                        ]
                        for r in aus["edits"]
                    ],
                ),
                "",
                "AU intensities (0-5) measured with MediaPipe blendshapes on the aligned crops; error = |measured - "
                "requested|, input error = the same for the unedited face, drift = mean |change| of the other 16 AUs.",
            ]
        if result.get("samples"):
            lines += ["", "Real test faces (rows); columns: the input, then the edits.", ""]
            lines += [f"![{name}]({name})" for name in result["samples"]]
        return "\n".join(lines)


def write_samples(
    folder: Path,
    age_columns: list[tuple[str, torch.Tensor]],
    edit: Any,
    ages: torch.Tensor,
    aus: torch.Tensor,
    au_edits: list[tuple[str, float]],
    shown: np.ndarray,
) -> list[str]:
    """samples_age.png (the age ramp) and samples_aus.png (each AU edit at the source age) of the shown faces."""
    from training.systems.base import image_grid

    folder.mkdir(parents=True, exist_ok=True)
    image_grid(age_columns).save(folder / "samples_age.png")
    names = ["samples_age.png"]
    if au_edits:
        au_columns = [age_columns[0]]
        for name, value in au_edits:
            target = aus.clone()
            target[:, AU_NAMES.index(name)] = value
            au_columns.append((f"{name}={value:g}", edit(ages, target)[shown]))
        image_grid(au_columns).save(folder / "samples_aus.png")
        names.append("samples_aus.png")
    return names


# -- command line ------------------------------------------------------------------------------------------


def command_class(name: str) -> Any:
    module_name, class_name = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate.py", description="Evaluate ganime-age models on prepared data.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        command = command_class(name)
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = command_class(args.command)

    def evaluate() -> int:
        result = command.run(args)
        write_outputs(result, command.markdown(result), args)
        return 0

    return exit_status(evaluate, prog="evaluate.py")


if __name__ == "__main__":
    sys.exit(main())
