"""This project's Table I: the engine alone and the engine with each refiner, edited as a user edits, judged by dlib.

    python training/evaluate.py table1 --utkface ../shared/datasets/utkface \\
        --refiner ganimation-age [--refiner agetransgan-mi --refiner LABEL=FOLDER ...] [--max-inputs 40] \\
        [--max-real 40] [--compare agetransgan-mi:agetransgan] [--samples DIR] [--json out.json] [--markdown out.md]

AgeTransGAN's protocol (the seed's Table I) on this project's data and editor:

- **Inputs**: UTKFace photos aged 20-29 from prepare_data's *test* split (a content hash, the split the gates and
  the engine's fit hold out: never a training face), ``--max-inputs`` spread over it.
- **Edits**: each input edited through :class:`~ganime_age.editing.FaceEditor` on the photo file at its own
  resolution (UTKFace's 200 px chips) to the centre age of every other FFHQ-Aging group (0-2 ... 70+). The engine
  edits each input once per group; each refiner is then applied to that very edit (``FaceEditor.refine_photo``, what
  the editor does after its engine), so every system is judged on the same engine edits.
- **Verif.%**: dlib's ResNet face descriptor (:class:`training.evaluation.judges.DlibIdentity`, in no loss and no fit here)
  accepts the edit as its input's person at a distance threshold letting 1% of different-person pairs through; the
  pairs are the real test faces read below (each photo its own person: UTKFace has no identity labels). An edit in
  which no face is found counts as not verified.
- **EAM**: the estimated age mean of the edits by the shipped estimator (Cydral's network on its chip, the editor's
  first age reading, raw), by dlib's age network (:class:`training.evaluation.judges.DlibAge`: the same network on dlib's own
  alignment) and by the editor's compact CNN (its second estimator, a network of its own), each beside its own mean
  reading of real test faces of that group (``--max-real`` a group): an estimator regresses to the mean, so real
  faces' reading, not the nominal age, is what an edit should read.
- **Noise**: for each compared pair (``--compare A:B``; by default AgeTransGAN with MI against without, and each
  refiner against the engine alone) the difference in Verif.% and EAM per group with a 95% bootstrap interval over
  the inputs (paired: both systems edited the same inputs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.conditions import AGE_GROUP_LABELS, NUM_AGE_GROUPS, age_to_group, group_center, group_from_label
from ganime_age.errors import GanimeAgeError
from training.evaluate import spread_indices
from training.evaluation.judges import IDENTITY_THRESHOLD_FAR_1
from training.evaluation.metrics import bootstrap_difference, finite_mean, markdown_table

INPUT_GROUP = group_from_label("20-29")
TARGET_GROUPS: tuple[int, ...] = tuple(g for g in range(NUM_AGE_GROUPS) if g != INPUT_GROUP)
ENGINE_LABEL = "engine"
MI_PAIR = ("agetransgan-mi", "agetransgan")
SEED_TABLE = (
    "AgeTransGAN's Table I (the seed): FFHQ-Aging at 1024 px, inputs of the 20-29 group, verification 85.3-99.6% by "
    "Face++ and EAM per group by their own estimator"
)


def default_utkface() -> str | None:
    shared = os.environ.get("GANIME_AGE_SHARED")
    candidates = [Path(shared) / "datasets" / "utkface"] if shared else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "datasets" / "utkface")
    return next((str(p) for p in candidates if p.is_dir()), None)


def parse_refiner(text: str) -> tuple[str, str]:
    """'LABEL=WHERE' or 'WHERE' (a shipped name, labelled by itself; a folder, by its name, or its parent's for a
    run's ``export``)."""
    label, sep, where = text.partition("=")
    if not sep:
        where = text
        path = Path(text.rstrip("/"))
        label = path.parent.name if path.name == "export" and path.parent.name else path.name or text
    if not where.strip() or not label.strip():
        raise argparse.ArgumentTypeError(f"--refiner takes NAME, FOLDER or LABEL=FOLDER, got {text!r}")
    return label.strip(), where.strip()


def parse_pair(text: str) -> tuple[str, str]:
    first, sep, second = text.partition(":")
    if not sep or not first.strip() or not second.strip():
        raise argparse.ArgumentTypeError(f"--compare takes LABEL:LABEL, got {text!r}")
    return first.strip(), second.strip()


class _Uncached:
    """The reading side of an editor without its photo cache: the judge's readings of edits (hundreds of photos)
    must not push the inputs' analyses out of the editor's sessions."""

    def __init__(self, editor: Any) -> None:
        self.analyze = editor.analyzer.analyze
        self.age_estimator = editor.age_estimator
        self.second_age_estimator = None  # the judge's second reading is dlib's age network


# each age reading: its key in the results, and the network (the editor's first estimator, dlib's age network, the
# editor's second estimator)
AGE_READINGS = {"shipped": "shipped estimator", "dlib": "dlib's age network", "cnn": "compact CNN"}


def reading_network(key: str) -> str:
    """An age reading's network as prose ("the shipped estimator", "dlib's age network")."""
    name = AGE_READINGS[key]
    return name if name.startswith("dlib") else f"the {name}"


AGE_NETWORKS = ("CydralAgeEstimator", "DlibAge", "AgeEstimator")


class Worker:
    """What edits and reads, one per process: the engine alone, the engine with each refiner (sharing its photo
    analyses, :meth:`FaceEditor.with_refiner`) and the judges."""

    def __init__(self, engine: str | None, refiners: list[tuple[str, str]]) -> None:
        from ganime_age.editing import EditorConfig, FaceEditor
        from training.evaluation.gates import Judge
        from training.evaluation.judges import DlibAge, DlibIdentity

        self.engine = FaceEditor.from_pretrained(engine=engine, refiner="engine", config=EditorConfig(device="cpu"))
        self.systems = [(ENGINE_LABEL, self.engine)] + [(label, self.engine.with_refiner(w)) for label, w in refiners]
        self.judge = Judge(_Uncached(self.engine), DlibIdentity(), DlibAge())
        self.cnn = self.engine.second_age_estimator  # the third reading: a network of its own

    def read_real(self, path: str) -> dict[str, Any] | None:
        """A real face's two age readings and descriptor (None where no face is found)."""
        rgb = _load(Path(path))
        return self._readings(rgb, self.judge.read(rgb))

    def _readings(self, rgb: np.ndarray, reading: Any) -> dict[str, Any] | None:
        if reading is None:
            return None
        return {**self._ages(rgb, reading), "descriptor": self.judge.descriptor(rgb, reading)}

    def _ages(self, rgb: np.ndarray, reading: Any) -> dict[str, float]:
        """The three age readings of a read face (:data:`AGE_READINGS`)."""
        cnn = float(self.cnn.read_face(rgb, reading.face)) if self.cnn is not None else float("nan")
        return {"shipped": reading.age, "dlib": self.judge.other_age(rgb, reading), "cnn": cnn}

    def edit_input(self, path: str, show: bool) -> dict[str, Any] | None:
        """One input edited to every group by the engine, each refiner applied to that edit, every result read:
        per system the descriptor distance to the input, and the two age readings (NaN where no face is found)."""
        judge = self.judge
        rgb = _load(Path(path))
        before = judge.read(rgb)
        if before is None:
            return None
        answer = self._readings(rgb, before) or {}
        descriptor = answer["descriptor"]
        count = len(TARGET_GROUPS)
        values = {label: {k: np.full(count, np.nan) for k in ("distance", *AGE_READINGS)} for label, _ in self.systems}
        tiles: dict[str, dict[str, np.ndarray]] = {label: {"input": _tile(rgb, before)} for label, _ in self.systems}
        seconds = dict.fromkeys(("engine", "refine", "read"), 0.0)
        for column, group in enumerate(TARGET_GROUPS):
            target = float(group_center(group))
            clock = time.perf_counter()
            edited = np.asarray(self.engine.edit(rgb, age=target, face=0))
            plan = self.engine.session(rgb).plans(target, None, 0)[0]
            seconds["engine"] += time.perf_counter() - clock
            for label, editor in self.systems:
                output = edited
                clock = time.perf_counter()
                if editor.refiner is not None:
                    output = editor.refine_photo(
                        edited.copy(), [plan.face.detection.points], [plan.target_age], [plan.target_aus]
                    )
                    seconds["refine"] += time.perf_counter() - clock
                    clock = time.perf_counter()
                after = judge.read(output)
                if after is not None:  # else NaN: no face found in the edit
                    for key, age in self._ages(output, after).items():
                        values[label][key][column] = age
                    values[label]["distance"][column] = np.linalg.norm(descriptor - judge.descriptor(output, after))
                seconds["read"] += time.perf_counter() - clock
                if show:
                    tiles[label][AGE_GROUP_LABELS[group]] = _tile(output, before)
        return {**answer, "values": values, "tiles": tiles if show else None, "seconds": seconds}


_WORKER: Worker | None = None


def _start_worker(engine: str | None, refiners: list[tuple[str, str]], threads: int | None) -> None:
    global _WORKER
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    _WORKER = Worker(engine, refiners)


def _do(task: tuple[str, str, bool]) -> dict[str, Any] | None:
    kind, path, show = task
    assert _WORKER is not None
    return _WORKER.read_real(path) if kind == "real" else _WORKER.edit_input(path, show)


def run_tasks(
    tasks: list[tuple[str, str, bool]],
    engine: str | None,
    refiners: list[tuple[str, str]],
    workers: int,
    started: float,
) -> list[dict[str, Any] | None]:
    """Every task's answer, in order: in this process, or in `workers` processes (one torch thread each)."""
    answers: list[dict[str, Any] | None] = []

    def progress(done: int) -> None:
        if done % 10 == 0 or done == len(tasks) or tasks[done - 1][0] == "input":
            print(f"table1: {done}/{len(tasks)} photos, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    if workers <= 1:
        _start_worker(engine, refiners, None)
        for task in tasks:
            answers.append(_do(task))
            progress(len(answers))
        return answers
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, _start_worker, (engine, refiners, 1)) as pool:
        for answer in pool.imap(_do, tasks, chunksize=1):
            answers.append(answer)
            progress(len(answers))
    return answers


class Table1Evaluation:
    """Verification rate and EAM per target group of the engine alone and of the engine with each refiner."""

    name = "table1"
    help = "Table I: verification (dlib) and estimated age mean per target group, engine alone and with refiners"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--utkface", default=default_utkface(), help="UTKFace folder (the original photos)")
        parser.add_argument("--engine", default=None, help="fitted engine folder or Hub id (default: the embedded)")
        parser.add_argument(
            "--refiner",
            dest="refiners",
            action="append",
            type=parse_refiner,
            default=[],
            help="a shipped refiner's name, a folder or LABEL=FOLDER: one more row (repeatable)",
        )
        parser.add_argument("--max-inputs", type=int, default=40, help="UTKFace test faces aged 20-29 to edit")
        parser.add_argument("--max-real", type=int, default=40, help="real test faces a group for the real rows")
        parser.add_argument("--far", type=float, default=0.01, help="false-accept rate of the identity threshold")
        parser.add_argument(
            "--compare",
            action="append",
            type=parse_pair,
            default=None,
            help="LABEL:LABEL, the difference A - B with a bootstrap interval (default: MI vs no MI, each refiner "
            "vs the engine)",
        )
        parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws for the intervals")
        parser.add_argument(
            "--workers", type=int, default=2, help="processes editing and reading photos (one torch thread each)"
        )
        parser.add_argument("--samples", default=None, help="write a grid per system (table1_<label>.jpg) here")
        parser.add_argument("--sample-inputs", type=int, default=4, help="inputs (columns) of the grids")
        parser.add_argument("--json", dest="json_path")
        parser.add_argument("--markdown")

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.editing import resolve_refiner
        from ganime_age.hub import model_class_of
        from training.evaluation.gates import test_photos

        started = time.perf_counter()
        if not args.utkface or not Path(args.utkface).is_dir():
            raise GanimeAgeError(f"UTKFace not found at {args.utkface!r}: pass --utkface FOLDER")
        labels = [ENGINE_LABEL] + [label for label, _ in args.refiners]
        if len(set(labels)) != len(labels):
            raise GanimeAgeError(f"two rows share a label: {labels}; name them with --refiner LABEL=FOLDER")
        kinds = {ENGINE_LABEL: None}
        for label, where in args.refiners:  # refused here, before any worker starts, where a name is unknown
            folder = resolve_refiner(where)
            kinds[label] = model_class_of(folder).__name__ if folder is not None else None

        photos = [p for p in test_photos("utkface", Path(args.utkface)) if np.isfinite(p.age)]
        by_group: dict[int, list[Any]] = {g: [] for g in range(NUM_AGE_GROUPS)}
        for photo in photos:
            by_group[age_to_group(photo.age)].append(photo)
        inputs = [by_group[INPUT_GROUP][i] for i in spread_indices(len(by_group[INPUT_GROUP]), args.max_inputs)]
        if not inputs:
            raise GanimeAgeError(f"{args.utkface}'s test split has no faces aged 20-29")
        real_photos = {
            group: [by_group[group][i] for i in spread_indices(len(by_group[group]), args.max_real)]
            for group in TARGET_GROUPS
        }
        shown = set(spread_indices(len(inputs), args.sample_inputs).tolist()) if args.samples else set()
        tasks = [("real", str(p.path), False) for group in TARGET_GROUPS for p in real_photos[group]]
        tasks += [("input", str(p.path), row in shown) for row, p in enumerate(inputs)]
        answers = run_tasks(tasks, args.engine, args.refiners, args.workers, started)
        real_answers, input_answers = answers[: -len(inputs)], answers[-len(inputs) :]

        # real test faces: each group's readings, and (with the inputs) the different-person pairs
        descriptors: list[np.ndarray] = []
        real: dict[str, dict[str, Any]] = {}
        position = 0
        for group in TARGET_GROUPS:
            chosen = real_photos[group]
            read = [a for a in real_answers[position : position + len(chosen)] if a is not None]
            position += len(chosen)
            descriptors += [a["descriptor"] for a in read]
            real[AGE_GROUP_LABELS[group]] = {
                "faces": len(read),
                "true_age": finite_mean([p.age for p in chosen]),
                **{key: finite_mean([a[key] for a in read]) for key in AGE_READINGS},
            }

        shape = (len(inputs), len(TARGET_GROUPS))
        values = {label: {key: np.full(shape, np.nan) for key in ("distance", *AGE_READINGS)} for label in labels}
        tiles: dict[str, dict[str, list[np.ndarray]]] = {label: {} for label in labels}
        seconds = dict.fromkeys(("engine", "refine", "read"), 0.0)
        read_inputs = np.array([a is not None for a in input_answers])
        for row, answer in enumerate(input_answers):
            if answer is None:
                continue
            descriptors.append(answer["descriptor"])
            for label in labels:
                for key, cells in answer["values"][label].items():
                    values[label][key][row] = cells
                for name, tile in (answer["tiles"] or {}).get(label, {}).items():
                    tiles[label].setdefault(name, []).append(tile)
            for key in seconds:
                seconds[key] += answer["seconds"][key]
        if len(descriptors) < 2:
            raise GanimeAgeError("fewer than two faces were read: no identity threshold can be set")
        threshold, pairs = identity_threshold(np.stack(descriptors), args.far)
        for label in labels:
            distances = values[label].pop("distance")
            verified = np.where(np.isfinite(distances), distances < threshold, False).astype(np.float64)
            verified[~read_inputs] = np.nan  # an input whose own face was not read takes no part
            values[label]["verified"] = verified

        rows = []
        for label, where in [(ENGINE_LABEL, None), *args.refiners]:
            groups = {}
            for column, group in enumerate(TARGET_GROUPS):
                cells = {key: values[label][key][:, column] for key in ("verified", *AGE_READINGS)}
                groups[AGE_GROUP_LABELS[group]] = {
                    "target_age": float(group_center(group)),
                    "verification": finite_mean(cells["verified"]),
                    **{f"eam_{key}": finite_mean(cells[key]) for key in AGE_READINGS},
                    "read": int(np.isfinite(cells["shipped"]).sum()),
                }
            rows.append(
                {
                    "label": label,
                    "refiner": None if where is None else str(where),
                    "refiner_type": kinds[label],
                    "groups": groups,
                    "mean_verification": finite_mean([g["verification"] for g in groups.values()]),
                }
            )
        pairs_asked = args.compare if args.compare is not None else default_pairs(labels)
        comparisons = []
        for first, second in pairs_asked:
            if first not in values or second not in values:
                raise GanimeAgeError(f"--compare {first}:{second}: the rows are {labels}")
            comparisons.append(compare(values, first, second, args.bootstrap))
        samples = write_grids(Path(args.samples), tiles) if args.samples else None
        inputs_read = int(read_inputs.sum())
        return {
            "evaluation": "table1",
            "data": str(args.utkface),
            "split": "test",
            "inputs": inputs_read,
            "input_true_age": finite_mean([p.age for p in inputs]),
            **{f"input_{key}": finite_mean([a[key] for a in input_answers if a is not None]) for key in AGE_READINGS},
            "groups": [AGE_GROUP_LABELS[g] for g in TARGET_GROUPS],
            "identity_threshold": {"far": args.far, "distance": threshold, "impostor_pairs": pairs},
            "age_networks": list(AGE_NETWORKS),
            "real": real,
            "systems": rows,
            "comparisons": comparisons,
            "samples": samples,
            "workers": args.workers,
            "engine_seconds": round(seconds["engine"], 1),
            "refine_seconds": round(seconds["refine"], 1),
            "read_seconds": round(seconds["read"], 1),
            "seconds": round(time.perf_counter() - started, 1),
        }

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        return table1_markdown(result)


def _load(path: Path) -> np.ndarray:
    from ganime_age.faces import load_image

    return load_image(path)


def _tile(rgb: np.ndarray, reading: Any) -> np.ndarray:
    from training.evaluation.gates import face_tile

    return face_tile(rgb, reading)


def identity_threshold(descriptors: np.ndarray, far: float, max_pairs: int = 200_000) -> tuple[float, int]:
    """dlib distance below which `far` of the pairs of different photos fall: every pair, or `max_pairs` drawn
    without repeats where there are more (each photo its own person: UTKFace has no identity labels)."""
    from training.evaluation.metrics import threshold_at_far

    first, second = np.triu_indices(len(descriptors), k=1)
    if first.size > max_pairs:
        keep = np.random.default_rng(0).choice(first.size, max_pairs, replace=False)
        first, second = first[keep], second[keep]
    if first.size == 0:
        raise GanimeAgeError("the identity threshold needs at least two real faces read")
    distances = np.linalg.norm(descriptors[first] - descriptors[second], axis=1)
    return -threshold_at_far(-distances, far), int(first.size)  # threshold_at_far takes similarities


def default_pairs(labels: list[str]) -> list[tuple[str, str]]:
    """MI against no MI where both are rows, then each refiner against the engine alone."""
    pairs = [MI_PAIR] if all(label in labels for label in MI_PAIR) else []
    return pairs + [(label, ENGINE_LABEL) for label in labels if label != ENGINE_LABEL]


def compare(values: dict[str, dict[str, np.ndarray]], first: str, second: str, draws: int) -> dict[str, Any]:
    """`first` - `second` per group (and Verif.% over all groups, per input) with bootstrap intervals."""
    a, b = values[first], values[second]
    groups = {}
    for column, group in enumerate(TARGET_GROUPS):
        groups[AGE_GROUP_LABELS[group]] = {
            key: bootstrap_difference(a[key][:, column], b[key][:, column], draws, seed=column)
            for key in ("verified", *AGE_READINGS)
            if key in a and key in b
        }
    overall = bootstrap_difference(np.nanmean(a["verified"], axis=1), np.nanmean(b["verified"], axis=1), draws)
    return {"first": first, "second": second, "groups": groups, "verified_all_groups": overall}


def write_grids(folder: Path, tiles: dict[str, dict[str, list[np.ndarray]]]) -> list[str]:
    """One grid per system: rows the input and the groups, columns the shown inputs (256 px tiles)."""
    from training.evaluation.gates import labelled_grid, save_grid

    names = []
    for label, rows in tiles.items():
        if not rows:
            continue
        name = f"table1_{label}.jpg"
        save_grid(folder / name, labelled_grid(list(rows.items())))
        names.append(name)
    return names


def _interval(cell: dict[str, float], scale: float = 1.0, digits: int = 1) -> str:
    if not np.isfinite(cell["difference"]):
        return "n/a"
    d, lo, hi = (scale * cell[k] for k in ("difference", "low", "high"))
    return f"{d:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def table1_markdown(result: dict[str, Any]) -> str:
    groups = result["groups"]
    systems = result["systems"]
    real = result["real"]
    first = result["age_networks"][0]

    def name(row: dict[str, Any]) -> str:
        return "engine alone" if row["label"] == ENGINE_LABEL else f"engine + {row['label']}"

    def number(value: float, scale: float = 1.0) -> str:
        return "n/a" if not np.isfinite(value) else f"{scale * value:.1f}"

    verification = markdown_table(
        ["Verif.% (dlib, FAR 1%)", *groups, "mean"],
        [
            [
                name(r),
                *(number(r["groups"][g]["verification"], 100) for g in groups),
                number(r["mean_verification"], 100),
            ]
            for r in systems
        ],
    )
    eam = {}
    readings = [key for key in AGE_READINGS if all(f"eam_{key}" in g for g in systems[0]["groups"].values())]
    for key in readings:
        reader = AGE_READINGS[key]
        eam[key] = markdown_table(
            [f"EAM, {reader}", *groups],
            [[name(r), *(number(r["groups"][g][f"eam_{key}"]) for g in groups)] for r in systems]
            + [["real test faces of the group", *(number(real[g][key]) for g in groups)]],
        )
    identity = result["identity_threshold"]
    counts = sorted({v["faces"] for v in real.values()})
    faces = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    lines = [
        f"Inputs: {result['inputs']} UTKFace test photos aged 20-29 (true mean {result['input_true_age']:.1f}; read "
        + ", ".join(f"{result[f'input_{key}']:.1f} by {reading_network(key)}" for key in readings)
        + "), "
        "each edited through `FaceEditor` at its own resolution (200 px chips) to the centre age of every other "
        "FFHQ-Aging group; every refiner is applied to the engine's very edit. Verification: dlib's descriptor, "
        f"distance below {identity['distance']:.3f} (1% of {identity['impostor_pairs']:,} different-photo pairs of the "
        f"same test faces, spread evenly over the age groups; dlib's calibration on 1,000 random UTKFace photos put it "
        f"at {IDENTITY_THRESHOLD_FAR_1}: this one is {'stricter' if identity['distance'] < IDENTITY_THRESHOLD_FAR_1 else 'looser'}; "
        "an edit without a face found is not verified). EAM: "
        f"the mean reading of the edits, beside each network's reading of {faces} real test faces of the group (last "
        "row).",
        "",
        verification,
    ]
    for key in readings:
        lines += ["", eam[key]]
    for comparison in result["comparisons"]:
        a, b = comparison["first"], comparison["second"]
        lines += [
            "",
            f"{a} - {b}: difference per group, 95% bootstrap interval over the inputs (paired); an interval that "
            f"holds 0 is noise. All groups, Verif.%: {_interval(comparison['verified_all_groups'], 100)}.",
            "",
            markdown_table(
                ["group", "Verif.% difference", *(f"EAM difference, {AGE_READINGS[key]}" for key in readings)],
                [
                    [
                        g,
                        _interval(comparison["groups"][g]["verified"], 100),
                        *(_interval(comparison["groups"][g][key]) for key in readings),
                    ]
                    for g in groups
                ],
            ),
        ]
    lines += [
        "",
        f"What differs from {SEED_TABLE}: the data (UTKFace's 200 px test chips, not FFHQ-Aging's 1024 px photos), "
        f"the judges (dlib's descriptor and dlib's age network, not Face++ and their estimator; the shipped estimator "
        f"({first}) is Cydral's network too, ported, on its own chip: those two age readings are one network on two "
        f"alignments, not independent, and the compact CNN is the independent one), the threshold (set on different UTKFace photos, each taken as its own person: "
        "UTKFace has no identity labels) and the systems (the fitted engine edits; a refiner only adds its change to the "
        "engine's edit). The numbers are comparable across the rows here, not with the paper's.",
        "",
        f"Runtime: {result['seconds']:.0f} s wall-clock on the CPU"
        + (
            f" with {result['workers']} worker processes (summed over them: engine edits {result['engine_seconds']:.0f} "
            f"s, refiners {result['refine_seconds']:.0f} s, the judges' readings of the edits {result['read_seconds']:.0f} s)."
            if "read_seconds" in result
            else f" (engine edits {result['engine_seconds']:.0f} s, refiners {result['refine_seconds']:.0f} s)."
        ),
    ]
    if result.get("samples"):
        lines += ["", "Grids: the input (top row) and its edits to each group, per system.", ""]
        lines += [f"![{n}]({n})" for n in result["samples"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point; the same as ``training/evaluate.py table1``."""
    from training.evaluate import main as evaluate_main

    return evaluate_main(["table1", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
