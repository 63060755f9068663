"""Ship a trained refiner inside the package, by name, with a card that carries its Table I numbers and grids.

    python training/ship_refiner.py /work/runs/agetransgan_mi_refiner/export agetransgan-mi \\
        --card-note "AgeTransGAN with the MI term, trained ... on 2 CPU cores." [--table1 table1.json --samples DIR]

One command: the export's ``config.json`` and ``model.safetensors`` (nothing else: no critic, no checkpoint) are
checked to load as a model of the role "refiner" and to have been trained (its card's ``Steps:`` line, written by
``training/train.py``, must be above 0: an untrained placeholder is never shipped), copied to
``src/ganime_age/weights/refiners/<name>/`` and loaded again from there; then Table I (``evaluate.py table1``,
the engine alone against the engine with this refiner, ``--max-inputs`` held-out faces: about 4 minutes for 40
on 2 CPU cores) is measured, unless ``--table1`` gives a Table I JSON that already has both rows, and the card
(``README.md``) is written from it: whether the refiner beats the engine alone (said plainly either way), the
numbers, the grids (``table1.jpg``, ``table1_engine.jpg``), the training facts of the export's own card and its
licence. From then on the registry (:mod:`ganime_age.editing.refiners`) lists the name: the Space's "Model"
dropdown, ``ganime-age edit --refiner NAME`` and ``FaceEditor.from_pretrained(refiner=NAME)`` offer it. The
default editor is not changed: the engine alone stays the default until a refiner beats it on the gates.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.errors import ConfigError, WeightsError, exit_status

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
SHIPPED_FILES = ("config.json", "model.safetensors")
AGE_MARGIN = 1.0  # years: a mean |EAM - real| gap this much smaller (larger) is better (worse); less is a tie
TRAINING_FACTS = ("- Parameters:", "- Trained on:", "- Steps:", "- Training time:", "- Trainer:")


def trained_steps(source: Path) -> int | None:
    """The optimisation steps the export's card (training/train.py's) says it was trained for; None without one."""
    card = source / "README.md"
    if not card.is_file():
        return None
    found = re.search(r"^- Steps: ([\d,]+)", card.read_text(encoding="utf-8"), re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else None


def check_source(source: Path, steps: int | None) -> int:
    """The export is a trained refiner: its files are there, it loads as a refiner, and it was trained."""
    from ganime_age.hub import load_pretrained

    missing = [name for name in SHIPPED_FILES if not (source / name).is_file()]
    if missing:
        raise WeightsError(f"{source} has no {', '.join(missing)}: give a run's export folder (Hub layout)")
    load_pretrained(source, role="refiner")  # the role and the weights' integrity, before anything is copied
    steps = steps if steps is not None else trained_steps(source)
    if steps is None:
        raise ConfigError(f"{source} has no card saying how long it was trained; give --trained-steps N")
    if steps <= 0:
        raise ConfigError(f"{source} was trained for {steps} steps: an untrained refiner is never shipped")
    return steps


def install(source: Path, name: str, root: Path, *, force: bool) -> Path:
    """Copy the export's config and weights to ``root/name`` (through a partial folder), loaded again there."""
    from ganime_age.hub import load_pretrained

    target = root / name
    if target.exists() and not force:
        raise ConfigError(f"{target} exists: pass --force to replace it")
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for file in SHIPPED_FILES:
        shutil.copyfile(source / file, partial / file)
    load_pretrained(partial, role="refiner")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def measure_table1(name: str, samples: Path, max_inputs: int, max_real: int) -> dict[str, Any]:
    """Table I for the engine alone and the engine with the shipped refiner `name`, grids into `samples`."""
    from training.evaluate import build_parser
    from training.evaluation.table1 import Table1Evaluation

    args = build_parser().parse_args(
        [
            "table1",
            "--refiner",
            name,
            "--max-inputs",
            str(max_inputs),
            "--max-real",
            str(max_real),
            "--samples",
            str(samples),
        ]
    )
    return Table1Evaluation.run(args)


def only_rows(result: dict[str, Any], name: str) -> dict[str, Any]:
    """The Table I result reduced to the engine's row and `name`'s, compared with each other."""
    from training.evaluation.table1 import ENGINE_LABEL

    labels = [row["label"] for row in result["systems"]]
    for wanted in (ENGINE_LABEL, name):
        if wanted not in labels:
            raise ConfigError(
                f"the Table I result has no row {wanted!r} (rows: {labels}): run it with --refiner {name}"
            )
    reduced = dict(result)
    reduced["systems"] = [row for row in result["systems"] if row["label"] in (ENGINE_LABEL, name)]
    reduced["comparisons"] = [
        c for c in result.get("comparisons", []) if (c["first"], c["second"]) == (name, ENGINE_LABEL)
    ]
    reduced["samples"] = [n for n in (result.get("samples") or []) if n in (f"table1_{name}.jpg", "table1_engine.jpg")]
    return reduced


def verdict(result: dict[str, Any], name: str) -> dict[str, Any]:
    """Whether engine + `name` beats the engine alone on Table I, and the numbers that say so.

    Beats: better on identity (the all-groups Verif.% difference's 95% interval above 0) or on age (the mean
    |EAM - real faces' reading| over the groups smaller by more than AGE_MARGIN years on every age reading), and
    worse on neither."""
    from training.evaluation.table1 import ENGINE_LABEL

    rows = {row["label"]: row for row in result["systems"]}
    readings = age_readings(result)
    gaps = {}
    for label in (ENGINE_LABEL, name):
        for key in readings:
            gaps[label, key] = float(
                np.nanmean(
                    [abs(values[f"eam_{key}"] - result["real"][g][key]) for g, values in rows[label]["groups"].items()]
                )
            )
    comparison = next(c for c in result["comparisons"] if (c["first"], c["second"]) == (name, ENGINE_LABEL))
    identity = comparison["verified_all_groups"]
    age_better = all(gaps[name, k] < gaps[ENGINE_LABEL, k] - AGE_MARGIN for k in readings)
    age_worse = any(gaps[name, k] > gaps[ENGINE_LABEL, k] + AGE_MARGIN for k in readings)
    identity_better, identity_worse = identity["low"] > 0.0, identity["high"] < 0.0
    return {
        "beats_engine": bool((age_better or identity_better) and not (age_worse or identity_worse)),
        "age_better": age_better,
        "age_worse": age_worse,
        "identity_better": identity_better,
        "identity_worse": identity_worse,
        "verification": {label: rows[label]["mean_verification"] for label in (ENGINE_LABEL, name)},
        "verification_difference": identity,
        "eam_gap": {f"{label}/{key}": value for (label, key), value in gaps.items()},
    }


def age_readings(result: dict[str, Any]) -> list[str]:
    """The age readings a Table I result has (older results have two of the three)."""
    from training.evaluation.table1 import AGE_READINGS

    real = next(iter(result["real"].values()))
    return [key for key in AGE_READINGS if key in real]


def verdict_sentence(name: str, found: dict[str, Any]) -> str:
    from training.evaluation.table1 import AGE_READINGS, ENGINE_LABEL, reading_network

    gap = found["eam_gap"]
    difference = found["verification_difference"]
    readings = [key for key in AGE_READINGS if f"{name}/{key}" in gap]
    ages = "; ".join(
        f"{gap[f'{name}/{key}']:.1f} years on {reading_network(key)} (engine alone {gap[f'{ENGINE_LABEL}/{key}']:.1f})"
        for key in readings
    )
    numbers = (
        f"dlib verifies {100 * found['verification'][name]:.1f}% of its edits against the engine alone's "
        f"{100 * found['verification'][ENGINE_LABEL]:.1f}% (difference {100 * difference['difference']:+.1f} points, "
        f"95% interval {100 * difference['low']:+.1f} to {100 * difference['high']:+.1f}); its edits' mean distance "
        f"from real faces' age reading is {ages}"
    )
    if found["beats_engine"]:
        return (
            f"**On Table I this refiner beats the engine alone**: {numbers}. The default editor is still the engine "
            "alone until the gates (`python training/evaluate.py gates --model <this folder>`) say so too."
        )
    return (
        f"**This refiner does not beat the engine alone**, and the default editor does not use it: {numbers}. "
        f'It ships so that it can be compared with the engine on your own photos (the Space\'s "Model" dropdown, '
        f'`ganime-age edit --refiner {name}`, `FaceEditor.from_pretrained(refiner="{name}")`).'
    )


def card_text(name: str, result: dict[str, Any], found: dict[str, Any], note: str, source_card: str) -> str:
    """The refiner's model card: what it is, the verdict, its Table I, the training facts, the licence."""
    from training.evaluation.table1 import table1_markdown

    model_type = next(r["refiner_type"] for r in result["systems"] if r["label"] == name)
    facts = [line for line in source_card.splitlines() if line.startswith(TRAINING_FACTS)]
    licence = re.search(r"^## Licence\n(.*?)(?=^## |\Z)", source_card, re.DOTALL | re.MULTILINE)
    lines = [
        "---",
        "library_name: ganime-age",
        "license: other",
        "pipeline_tag: image-to-image",
        "tags:",
        "- face-aging",
        "- face-editing",
        "- ganime-age",
        "- refiner",
        "---",
        "",
        f"# {name}: a refiner of the fitted edit engine",
        "",
        f"{'An' if model_type[:1] in 'AEIOU' else 'A'} `{model_type}` network shipped with ganime-age as a *refiner*: `FaceEditor` runs the fitted engine on the "
        "photo at its own resolution, then gives this network the aligned crop of the engine's edit with the target "
        "age and AUs and adds its change (output minus input), upsampled, to the edit: it can add detail, never blur "
        "the photo. It is not on by default; pick it by name:",
        "",
        "```python",
        "from ganime_age import FaceEditor",
        f'editor = FaceEditor.from_pretrained(refiner="{name}")   # the embedded editor with this refiner',
        "```",
        "",
        f"```bash\nganime-age edit photo.jpg --age 70 --refiner {name} -o out.jpg\n```",
        "",
        'and in the Space, the "Model" dropdown of the Age tab.',
        "",
        "## Does it beat the engine alone?",
        "",
        verdict_sentence(name, found),
        "",
    ]
    if note.strip():
        lines += [note.strip(), ""]
    lines += [
        "## Table I",
        "",
        f"`python training/evaluate.py table1 --refiner {name} --max-inputs {result['inputs']}` (this project's "
        "version of AgeTransGAN's Table I, `training/evaluation/table1.py`):",
        "",
        table1_markdown(result),
        "",
    ]
    if facts:
        lines += ["## Training", "", *facts, ""]
    lines += [
        "## Licence",
        "",
        licence.group(1).strip()
        if licence
        else "Trained on UTKFace and CFEE photos (non-commercial research only); these weights inherit that.",
        "",
        "## Limitations",
        "",
        "Face editing models can be misused to impersonate people or to fabricate images of them. Edit only photos "
        "you have the right to edit, and label edited images as edited. The age and identity judges are networks "
        "with their own biases (dataset age, gender and ethnicity imbalance).",
    ]
    return "\n".join(lines) + "\n"


def write_card(
    folder: Path, name: str, result: dict[str, Any], note: str, source_card: str, grids: Path | None
) -> Path:
    """The card, its grids and the Table I numbers (``table1.json``) in the shipped refiner's folder."""
    from training.evaluation.metrics import json_ready

    result = only_rows(result, name)
    if not result["comparisons"]:
        raise ConfigError(f"the Table I result does not compare {name} with the engine: run it without --compare")
    found = verdict(result, name)
    shown = []
    for grid in result.get("samples") or []:
        if grids is not None and (grids / grid).is_file():
            shown_name = "table1.jpg" if grid == f"table1_{name}.jpg" else grid
            shutil.copyfile(grids / grid, folder / shown_name)
            shown.append(shown_name)
    result["samples"] = sorted(shown, key=lambda n: n != "table1.jpg")
    (folder / "README.md").write_text(card_text(name, result, found, note, source_card), encoding="utf-8")
    summary = {"refiner": name, "verdict": found, "table1": result}
    (folder / "table1.json").write_text(json.dumps(json_ready(summary), indent=1, allow_nan=False) + "\n")
    return folder / "README.md"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ship_refiner.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a trained refiner's export folder (config.json, model.safetensors)")
    parser.add_argument("name", help="the name users pick it by: lowercase letters, digits and hyphens")
    parser.add_argument("--card-note", default="", help="what the card says about its training and its gates")
    parser.add_argument("--table1", type=Path, help="a Table I JSON with this refiner's row (default: measure it)")
    parser.add_argument("--samples", type=Path, help="the grids of that Table I (table1_<name>.jpg, ...)")
    parser.add_argument("--max-inputs", type=int, default=40, help="Table I inputs when it is measured here")
    parser.add_argument("--max-real", type=int, default=40, help="Table I real faces a group when measured here")
    parser.add_argument("--trained-steps", type=int, help="steps trained, where the export has no card saying so")
    parser.add_argument("--root", type=Path, help="where shipped refiners live (default: the package's)")
    parser.add_argument("--force", action="store_true", help="replace a shipped refiner of that name")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def ship() -> int:
        from ganime_age.editing.refiners import NO_REFINER_NAMES, REFINERS_DIR

        if not NAME_PATTERN.match(args.name) or args.name in NO_REFINER_NAMES:
            raise ConfigError(f"{args.name!r} cannot name a refiner: lowercase letters, digits and hyphens")
        steps = check_source(args.source, args.trained_steps)
        root = args.root or REFINERS_DIR
        folder = install(args.source, args.name, root, force=args.force)
        source_card = (
            (args.source / "README.md").read_text(encoding="utf-8") if (args.source / "README.md").is_file() else ""
        )
        with tempfile.TemporaryDirectory() as scratch:
            if args.table1 is not None:
                result, grids = json.loads(args.table1.read_text()), args.samples
            else:
                if args.root is not None:
                    raise ConfigError("--root needs --table1: Table I loads shipped refiners from the package")
                grids = Path(scratch)
                result = measure_table1(args.name, grids, args.max_inputs, args.max_real)
            card = write_card(folder, args.name, result, args.card_note, source_card, grids)
        print(f"shipped {args.source} ({steps} steps) as {folder}; card {card}")
        return 0

    return exit_status(ship, prog="ship_refiner.py")


if __name__ == "__main__":
    sys.exit(main())
