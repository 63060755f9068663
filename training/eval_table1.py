"""The seed's Table I for any ageing models: face verification rate and EAM per target age group.

    python training/evaluate.py table1 --model "AgeTransGAN=runs/agetransgan_pretrain/export" \\
        --model "AgeTransGAN + MI=runs/agetransgan_mi/export" --model "GANimation-age=runs/ganimation_age/export" \\
        --data data/utkface128 [--inputs 20-29|all] [--estimator FOLDER] [--json table1.json] [--markdown table1.md]

As in AgeTransGAN's protocol, input faces come from the 20-29 group of the test split (or all test
faces with ``--inputs all``) and are moved to each of the other nine FFHQ-Aging groups (target age =
the group's centre; group models blend nothing there, continuous ones get that age). ``--max-faces``
faces spread over the split fix the identity threshold; ``--max-inputs`` limits the inputs (spread too).

- **Verif.%**: share of (input, output) pairs the face recogniser (frozen MobileFaceNet, image + mirror
  embeddings) accepts as the same person, at the cosine threshold that lets 1% of different-person pairs
  of the same test faces through (the data has no identity labels: different photos = different people).
- **EAM**: the estimated age mean of the outputs (AgeEstimator), next to the real mean age of that group
  in the test split (the last row).

Any model folder with ``edit_faces`` works (GanimationAge, AgeTransGAN with/without MI, ReAgingGAN): the
class is picked from its config.json by :func:`ganime_age.hub.load_pretrained`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganime_age.conditions import AGE_GROUP_LABELS, NUM_AGE_GROUPS, age_to_group, group_center, group_from_label
from ganime_age.editing import pick_device
from ganime_age.errors import GanimeAgeError
from training.evaluate import add_common_arguments, decode_faces, identity_threshold, spread_indices
from training.metrics import accept_rate, embed_faces, finite_mean, markdown_table, matched_cosines

INPUT_GROUP = group_from_label("20-29")
TARGET_GROUPS: tuple[int, ...] = tuple(g for g in range(NUM_AGE_GROUPS) if g != INPUT_GROUP)


def default_estimator() -> Path:
    """The AgeEstimator shipped inside the package (src/ganime_age/weights/age-estimator)."""
    import ganime_age

    return Path(ganime_age.__file__).resolve().parent / "weights" / "age-estimator"


def parse_model(text: str) -> tuple[str, str]:
    """'LABEL=PATH' or 'PATH' (labelled by its folder name)."""
    label, sep, path = text.partition("=")
    if not sep:
        path, label = text, Path(text.rstrip("/")).name or text
    if not path.strip() or not label.strip():
        raise argparse.ArgumentTypeError(f"--model takes LABEL=FOLDER or FOLDER, got {text!r}")
    return label.strip(), path.strip()


def real_group_means(data: str, split: str) -> dict[int, dict[str, float]]:
    """Mean age and count of every group over the whole split (labels only, no image is decoded)."""
    from training.data import PreparedFaces

    ages = PreparedFaces(data, split).ages.astype(np.float64)
    groups = np.array([age_to_group(a) for a in ages])
    return {
        g: {
            "mean": float(ages[groups == g].mean()) if (groups == g).any() else float("nan"),
            "count": int((groups == g).sum()),
        }
        for g in range(NUM_AGE_GROUPS)
    }


class Table1Evaluation:
    """Face verification rate and EAM of ageing models per target age group (the seed's Table I)."""

    name = "table1"
    help = "the seed's Table I: verification rate and estimated age mean per target group, for several models"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--model",
            dest="models",
            action="append",
            type=parse_model,
            required=True,
            help="LABEL=FOLDER (or FOLDER) of an ageing model; repeat for each row",
        )
        parser.add_argument(
            "--estimator", default=None, help="AgeEstimator folder or Hub id (default: the one shipped in the package)"
        )
        add_common_arguments(parser)
        parser.add_argument(
            "--inputs",
            choices=("20-29", "all"),
            default="20-29",
            help="input faces: the 20-29 group (AgeTransGAN's protocol) or every face",
        )
        parser.add_argument("--max-inputs", type=int, default=None, help="use at most N input faces")
        parser.set_defaults(max_faces=2000)

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.hub import load_pretrained
        from ganime_age.models.mobilefacenet import FaceRecognizer

        started = time.perf_counter()
        device = pick_device(args.device)
        estimator_path = args.estimator or str(default_estimator())
        estimator = load_pretrained(estimator_path).to(device).eval()
        if not hasattr(estimator, "predict"):
            raise GanimeAgeError(f"{estimator_path} holds a {type(estimator).__name__}, not an AgeEstimator")
        recognizer = FaceRecognizer(args.recognizer).to(device)
        models = []
        for label, path in args.models:
            model = load_pretrained(path).to(device).eval()
            if not hasattr(model, "edit_faces"):
                raise GanimeAgeError(f"{path} holds a {type(model).__name__}, not an ageing model (no edit_faces)")
            models.append((label, path, model))
        bs = args.batch_size

        def batched(function: Any, *tensors: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.cat(
                    [
                        function(*(t[s : s + bs].to(device) for t in tensors)).float().cpu()
                        for s in range(0, tensors[0].shape[0], bs)
                    ]
                )

        per_size: dict[int, dict[str, Any]] = {}  # faces, their embeddings and the threshold, per resolution

        def inputs_at(size: int) -> dict[str, Any]:
            if size not in per_size:
                from training.data import PreparedFaces

                dataset = PreparedFaces(args.data, args.split, image_size=size)
                pool = spread_indices(len(dataset), args.max_faces)
                embeddings = torch.cat(
                    [
                        embed_faces(recognizer, decode_faces(dataset, pool[s : s + bs])["image"].to(device), bs)
                        for s in range(0, len(pool), bs)
                    ]
                )
                identity = identity_threshold(embeddings, args.far, args.max_pairs)
                candidates = np.arange(len(dataset))
                if args.inputs == "20-29":
                    candidates = candidates[[age_to_group(float(a)) == INPUT_GROUP for a in dataset.ages]]
                if candidates.size == 0:
                    raise GanimeAgeError(f"the {args.split} split has no {args.inputs} faces; use --inputs all")
                chosen = candidates[spread_indices(candidates.size, args.max_inputs)]
                faces = decode_faces(dataset, chosen)
                per_size[size] = {
                    **faces,
                    "embedding": embed_faces(recognizer, faces["image"].to(device), bs),
                    "identity": identity,
                    "num_faces": len(pool),
                }
            return per_size[size]

        rows = []
        for label, path, model in models:
            size = int(model.config.image_size)
            inputs = inputs_at(size)
            images, ages, aus = inputs["image"], inputs["age"], inputs["aus"]
            threshold = inputs["identity"]["threshold"]
            groups: dict[str, dict[str, float]] = {}
            for group in TARGET_GROUPS:
                target = torch.full_like(ages, group_center(group))

                def edit(
                    x: torch.Tensor, a: torch.Tensor, t: torch.Tensor, u: torch.Tensor, model: Any = model
                ) -> torch.Tensor:
                    return model.edit_faces(x, source_age=a, target_age=t, source_aus=u, target_aus=u).image

                outputs = batched(edit, images, ages, target, aus)
                cosines = matched_cosines(inputs["embedding"], embed_faces(recognizer, outputs.to(device), bs))
                estimates = batched(estimator.predict, outputs).numpy()
                groups[AGE_GROUP_LABELS[group]] = {
                    "target_age": group_center(group),
                    "verification": accept_rate(cosines, threshold),
                    "identity_cosine": float(cosines.mean()),
                    "eam": float(estimates.mean()),
                    "eam_std": float(estimates.std()),
                }
            rows.append(
                {
                    "label": label,
                    "path": str(path),
                    "model_type": getattr(model, "model_type", type(model).__name__),
                    "image_size": size,
                    "num_inputs": int(ages.shape[0]),
                    "estimated_input_age": float(batched(estimator.predict, images).mean()),
                    "identity": inputs["identity"],
                    "groups": groups,
                    "mean_verification": finite_mean([g["verification"] for g in groups.values()]),
                }
            )
        real = real_group_means(args.data, args.split)
        return {
            "evaluation": "table1",
            "data": str(args.data),
            "split": args.split,
            "inputs": args.inputs,
            "estimator": str(estimator_path),
            "num_faces": max(v["num_faces"] for v in per_size.values()),
            "groups": [AGE_GROUP_LABELS[g] for g in TARGET_GROUPS],
            "real": {AGE_GROUP_LABELS[g]: real[g] for g in TARGET_GROUPS},
            "real_input_age": finite_mean(np.concatenate([v["age"].numpy() for v in per_size.values()])),
            "models": rows,
            "seconds": round(time.perf_counter() - started, 2),
        }

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        groups = result["groups"]
        headers = ["Model"] + [f"{g} {kind}" for g in groups for kind in ("Verif.%", "EAM")]
        rows: list[list[Any]] = []
        for row in result["models"]:
            cells: list[Any] = [row["label"]]
            for g in groups:
                values = row["groups"][g]
                cells += [f"{100 * values['verification']:.1f}", f"{values['eam']:.1f}"]
            rows.append(cells)
        real = result["real"]
        rows.append(
            [f"Real ({result['split']} mean age)"]
            + [
                cell
                for g in groups
                for cell in ("", "n/a" if not np.isfinite(real[g]["mean"]) else f"{real[g]['mean']:.1f}")
            ]
        )
        inputs = "the 20-29 group" if result["inputs"] == "20-29" else "all faces"
        notes = [
            f"Inputs: {inputs} of the `{result['split']}` split of `{Path(result['data']).name}` "
            f"(mean real age {result['real_input_age']:.1f}); each is moved to the centre age of every other group.",
        ]
        for row in result["models"]:
            identity = row["identity"]
            notes.append(
                f"- {row['label']} (`{row['model_type']}`, {row['image_size']} px, {row['num_inputs']} inputs, "
                f"their estimated age {row['estimated_input_age']:.1f}): verification threshold cosine "
                f"{identity['threshold']:.3f} at FAR {identity['far']:.0%} on {identity['impostor_pairs']} "
                f"different-face pairs; mean Verif. {100 * row['mean_verification']:.1f}%."
            )
        notes.append(
            "EAM = estimated age mean of the outputs (AgeEstimator); the last row is the real mean age of "
            "each group in the split."
        )
        return markdown_table(headers, rows) + "\n\n" + "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point; the same as ``training/evaluate.py table1``."""
    from training.evaluate import main as evaluate_main

    return evaluate_main(["table1", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
