"""Train on a borrowed, time-limited GPU machine in slices, moving data in and weights out in small pieces.

The device machine of this project takes at most 64 MiB of carried files per call, runs a command for
at most 10 minutes, returns at most 8 files of 16 MiB, and keeps ignored folders between the calls of
one lease. The prepared UTKFace (78 MiB) and the fp16 GANimation-age generator (17.8 MB) are both over
those limits, so:

    # here: split the prepared dataset into carry-sized parts (each with the manifest of all shards)
    python training/lease.py pack-data --data data/utkface128 --to .carry --max-mib 50
    mkdir -p .carry/models && cp ../shared/models/{face_detection_yunet_2023mar.onnx,mobilefacenet_casia.safetensors} .carry/models/

    # device, call 1: carry [".carry/utkface128-part1", ".carry/models"] -> the first part lands, no training yet
    # device, call 2..n: carry [".carry/utkface128-part2"] (then nothing) -> data complete, train ~8 min a call
    # (the device has no editable install: PYTHONPATH makes `ganime_age` and `training` importable there)
    PYTHONPATH=src:. python3 training/lease.py run --out "$OUT" --minutes 8 [key.path=value ...]   # overrides go last

    # here: join the pieces, check the hash, strict-load, install as the embedded default
    python training/lease.py unpack --from <files_at> --to src/ganime_age/weights/ganime-age-refiner

`run` gathers whatever parts have arrived into --data, and trains only when every shard of the
manifest is there. Each call resumes from the newest checkpoint (kept on the machine), trains until
`train.max_minutes`, checkpoints and exports, evaluates the export on the test split (without the AU
measurements when MediaPipe is missing there), and writes to --out: the generator in pieces, a tar of
the rest of the Hub folder (config, card with the evaluation, sample grid, log) and summary.json. The
summary table is printed last.

The refiner's pairs (``training/data/refiner.py``, ``shards/*.npz``) are packed the same way. They are about
80 KB a row as built (every crop kept losslessly), and the repository itself takes most of a call's 64 MiB,
so ``pack-data --jpeg-quality 95`` carries their crops as JPEG (4:4:4, about 15 KB a row); `run` decodes them
back into shards on the machine:

    python training/lease.py pack-data --data data/refiner-lease --to .carry --max-mib 11 --jpeg-quality 95
    PYTHONPATH=src:. python3 training/lease.py run --config training/configs/ganimation_refiner.yaml \
        --data data/refiner-lease --output runs/lease_refiner --out "$OUT" --eval-faces 0 --minutes 7
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from training.systems.trackers import LOG_NAME

REPO = Path(__file__).resolve().parents[1]

MANIFEST = "lease-manifest.json"  # not manifest.json: a refiner dataset has its own
SUMMARY = "summary.json"
META_TAR = "export-meta.tar"
PIECE_PREFIX = "model.safetensors.part-"
MIB = 1024 * 1024
TRANSPORT = ".transport"  # where encoded shards are kept (and hash-checked) on the machine
# an image array carried as JPEG is three arrays: all its images' bytes, where each image's begin, its shape
JPEG_SUFFIX, OFFSETS_SUFFIX, SHAPE_SUFFIX = "__jpeg", "__jpeg_offsets", "__jpeg_shape"
# the two layouts a dataset can have: where its shards are, and the files beside them that travel in part 1
LAYOUTS = {
    "prepared": ("data", "*.parquet", ("README.md", "prepare_report.json")),  # training/prepare_data.py
    "refiner": ("shards", "*.npz", ("manifest.json", "plan.json")),  # training/data/refiner.py
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


# -- data in ---------------------------------------------------------------------------------------------


def dataset_layout(data: Path) -> str:
    """Which layout of :data:`LAYOUTS` a dataset folder has (SystemExit when neither: nothing to carry)."""
    for name, (folder, pattern, _) in LAYOUTS.items():
        if any((data / folder).glob(pattern)):
            return name
    raise SystemExit(
        f"{data} holds no data/*.parquet or shards/*.npz: prepare it first "
        "(python training/prepare_data.py ... or python training/data/refiner.py ...)"
    )


def encode_images(shard: Path, target: Path, quality: int) -> None:
    """Write `shard` (an npz) to `target` with every uint8 image array (N, H, W, 3) as JPEG bytes (4:4:4)."""
    import cv2

    flags = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    arrays = {}
    with np.load(shard) as source:
        for key in source.files:
            value = source[key]
            if value.dtype != np.uint8 or value.ndim != 4 or value.shape[-1] != 3:
                arrays[key] = value
                continue
            encoded = [cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), flags)[1] for image in value]
            arrays[key + OFFSETS_SUFFIX] = np.cumsum([0] + [len(e) for e in encoded]).astype(np.int64)
            arrays[key + SHAPE_SUFFIX] = np.asarray(value.shape, np.int64)
            arrays[key + JPEG_SUFFIX] = np.concatenate(encoded) if encoded else np.zeros(0, np.uint8)
    np.savez(target, **arrays)


def decode_images(encoded: Path, target: Path) -> None:
    """The inverse of :func:`encode_images`: an npz of image arrays again, written atomically to `target`."""
    import cv2

    arrays = {}
    with np.load(encoded) as source:
        for key in source.files:
            if key.endswith((OFFSETS_SUFFIX, SHAPE_SUFFIX)):
                continue
            if not key.endswith(JPEG_SUFFIX):
                arrays[key] = source[key]
                continue
            name = key.removesuffix(JPEG_SUFFIX)
            data, offsets = source[key], source[name + OFFSETS_SUFFIX]
            shape = tuple(int(v) for v in source[name + SHAPE_SUFFIX])
            images = [
                cv2.imdecode(data[start:end], cv2.IMREAD_COLOR)[..., ::-1] for start, end in itertools.pairwise(offsets)
            ]
            arrays[name] = np.stack(images) if images else np.zeros(shape, np.uint8)
    partial = target.with_name(f".{target.stem}.decoding.npz")
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(partial, **arrays)
    os.replace(partial, target)


def pack_data(data: Path, to: Path, max_mib: float, jpeg_quality: int = 0) -> list[Path]:
    """Split a dataset into folders of at most `max_mib` each, each holding the manifest of all its shards.

    `jpeg_quality` > 0 (refiner pairs only) carries their image arrays as JPEG; the manifest hashes what is
    carried, and the machine decodes it."""
    layout = dataset_layout(data)
    folder, pattern, extra_names = LAYOUTS[layout]
    if jpeg_quality and layout != "refiner":
        raise SystemExit("--jpeg-quality is for refiner pairs (shards/*.npz): a prepared dataset is already JPEG")
    extras = [data / name for name in extra_names if (data / name).is_file()]
    staging = to / f".{data.name}-encoded"
    shards = sorted((data / folder).glob(pattern))
    if jpeg_quality:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for shard in shards:
            encode_images(shard, staging / shard.name, jpeg_quality)
        shards = sorted(staging.glob(pattern))
    limit = int(max_mib * MIB)
    too_big = [p.name for p in shards if p.stat().st_size > limit]
    if too_big:
        raise SystemExit(f"shards larger than --max-mib {max_mib}: {', '.join(too_big)}")
    manifest = {
        "dataset": data.name,
        "layout": layout,
        "encoding": f"jpeg-{jpeg_quality}" if jpeg_quality else None,
        "shards": {f"{folder}/{p.name}": {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in shards},
    }
    groups: list[list[Path]] = [[]]
    used = sum(p.stat().st_size for p in extras)  # the first part also carries the files beside the shards
    for shard in shards:
        size = shard.stat().st_size
        if groups[-1] and used + size > limit:
            groups.append([])
            used = 0
        groups[-1].append(shard)
        used += size
    parts = []
    for number, group in enumerate(groups, start=1):
        part = to / f"{data.name}-part{number}"
        shutil.rmtree(part, ignore_errors=True)
        (part / folder).mkdir(parents=True)
        for shard in group:
            shutil.copy2(shard, part / folder / shard.name)
        if number == 1:
            for extra in extras:
                shutil.copy2(extra, part / extra.name)
        (part / MANIFEST).write_text(json.dumps({**manifest, "part": number, "parts": len(groups)}, indent=1))
        parts.append(part)
    shutil.rmtree(staging, ignore_errors=True)
    return parts


def _landed(data: Path, relative: str, manifest: dict[str, Any]) -> Path:
    """Where a carried shard is kept on the machine: in place, or (encoded) in the transport folder."""
    return data / TRANSPORT / relative if manifest.get("encoding") is not None else data / relative


def gather_data(parts: list[Path], data: Path) -> dict[str, Any]:
    """Copy the shards of the parts that arrived into `data` (encoded ones into its transport folder, decoded
    into place); report what the manifest still misses."""
    manifest: dict[str, Any] | None = None
    for part in parts:
        if not (part / MANIFEST).is_file():
            continue
        manifest = json.loads((part / MANIFEST).read_text())
        data.mkdir(parents=True, exist_ok=True)
        for item in part.iterdir():
            if item.is_file() and item.name != MANIFEST:
                shutil.copy2(item, data / item.name)
        for relative in manifest["shards"]:
            carried = part / relative
            if carried.is_file():  # what was carried this call wins
                landed = _landed(data, relative, manifest)
                landed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(carried, landed)
                if landed != data / relative:  # decoded again below: an earlier call's may hold other rows
                    (data / relative).unlink(missing_ok=True)
    if manifest is not None:
        (data / MANIFEST).write_text(json.dumps(manifest, indent=1))
    elif (data / MANIFEST).is_file():  # arrived in an earlier call of this lease
        manifest = json.loads((data / MANIFEST).read_text())
    if manifest is None:
        return {"complete": False, "missing": ["(no part with a manifest has arrived)"], "shards": 0}
    missing = []  # absent, short, or not the bytes the manifest hashed (a torn or stale copy)
    for relative, info in manifest["shards"].items():
        landed = _landed(data, relative, manifest)
        if not (landed.is_file() and landed.stat().st_size == info["bytes"] and sha256(landed) == info["sha256"]):
            missing.append(Path(relative).name)
        elif not (data / relative).is_file():  # an encoded shard, not yet decoded
            decode_images(landed, data / relative)
    return {"complete": not missing, "missing": missing, "shards": len(manifest["shards"])}


# -- weights out ------------------------------------------------------------------------------------------


def pack_export(export: Path, run_dir: Path, out: Path, piece_mib: float) -> dict[str, Any]:
    """The generator in pieces of at most `piece_mib`, the rest of the Hub folder and the run's record in a tar."""
    weights = export / "model.safetensors"
    for old in out.glob(PIECE_PREFIX + "*"):
        old.unlink()
    pieces = []
    size = int(piece_mib * MIB)
    with open(weights, "rb") as handle:
        for number, block in enumerate(iter(lambda: handle.read(size), b"")):
            piece = out / f"{PIECE_PREFIX}{number:02d}"
            piece.write_bytes(block)
            pieces.append(piece.name)
    samples = sorted((run_dir / "samples").glob("step-*.png"))
    with tarfile.open(out / META_TAR, "w") as tar:
        for item in sorted(export.iterdir()):
            if item.is_file() and item.name != "model.safetensors":
                tar.add(item, arcname=item.name)
        for extra in [run_dir / "evaluation.json", run_dir / LOG_NAME, *samples[-1:]]:
            if extra.is_file():
                tar.add(extra, arcname=f"run/{extra.name}")
    return {"pieces": pieces, "model_sha256": sha256(weights), "model_bytes": weights.stat().st_size}


def unpack(source: Path, target: Path) -> Path:
    """Join the pieces, check the hash, unpack the Hub folder and strict-load it (WeightsError if anything is off)."""
    from ganime_age.errors import WeightsError
    from ganime_age.hub import load_pretrained

    if not (source / SUMMARY).is_file():
        raise WeightsError(f"{source} holds no {SUMMARY}: point --from at the files a `lease.py run` call sent back")
    summary = json.loads((source / SUMMARY).read_text())
    packed = summary.get("packed")
    if not packed:
        raise WeightsError(f"{source / SUMMARY} lists no exported weights (did the run train?)")
    target.mkdir(parents=True, exist_ok=True)
    joined = target / "model.safetensors.joining"
    with open(joined, "wb") as handle:
        for name in packed["pieces"]:
            handle.write((source / name).read_bytes())
    if sha256(joined) != packed["model_sha256"]:
        joined.unlink()
        raise WeightsError("the joined model.safetensors does not match the hash the run recorded: a piece is missing")
    with tarfile.open(source / META_TAR) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and not m.name.startswith("run/")]
        tar.extractall(target, members=members, filter="data")
        run_members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("run/")]
        for member in run_members:  # the run's record goes beside the Hub folder, not into it
            member.name = member.name.removeprefix("run/")
        tar.extractall(target.parent / f"{target.name}-run", members=run_members, filter="data")
    os.replace(joined, target / "model.safetensors")
    load_pretrained(target)  # strict: a wrong or truncated file is a WeightsError here, not at the first edit
    return target


# -- one call on the device -------------------------------------------------------------------------------


def last_log_record(run_dir: Path) -> dict[str, Any]:
    """The newest training log line that has a throughput (the resumed run's own, not an older call's)."""
    from training.systems.trackers import read_log

    records = [r for r in read_log(run_dir) if "images_per_sec" in r]
    return records[-1] if records else {}


def evaluate_export(export: Path, data: Path, run_dir: Path, faces: int) -> tuple[dict[str, Any] | None, str]:
    from training import evaluate

    options = ["ganimation", "--model", str(export), "--estimator", str(REPO / "src/ganime_age/weights/age-estimator")]
    options += ["--data", str(data), "--max-faces", str(faces)]
    options += ["--json", str(run_dir / "evaluation.json"), "--markdown", str(run_dir / "evaluation.md")]
    note = ""
    if importlib.util.find_spec("mediapipe") is None:
        options.append("--no-aus")
        note = "AU accuracy not measured here (no MediaPipe): run training/evaluate.py ganimation after unpacking"
    if evaluate.main(options) != 0:
        return None, "evaluation failed (see the log above)"
    return json.loads((run_dir / "evaluation.json").read_text()), note


def train_slice(args: argparse.Namespace, data: Path, run_dir: Path, out: Path) -> tuple[dict[str, Any], list]:
    """Resume, train until the time budget, evaluate and pack the export; (summary, table rows)."""
    from training.train import load_run_config, run_training

    overrides = [f"train.data_dir={data}", f"train.output_dir={run_dir}", f"train.max_minutes={args.minutes}"]
    run = load_run_config(args.config, [*overrides, *args.overrides])
    trained = run_training(run, resume=True)
    record = last_log_record(run_dir)
    summary: dict[str, Any] = {"training": {**trained, "last_log": record}}
    resumed = trained["resumed_from"] or 0
    rows = [("steps", f"{resumed} -> {trained['step']} of {run.train.max_steps} ({trained['stopped'] or 'done'})")]
    if record:
        rates = f"{record['images_per_sec']:.1f} images/s, {record.get('steps_per_sec', float('nan')):.3f} steps/s"
        rows.append(("throughput", rates))
    export = Path(trained["export_dir"]) if trained["export_dir"] else None
    if export is None:
        return summary, rows
    if args.eval_faces > 0:
        evaluation, note = evaluate_export(export, data, run_dir, args.eval_faces)
        summary["evaluation"] = evaluation
        if evaluation is not None:
            run_training(run, export_only=True)  # re-render the card with the evaluation table
            ages = evaluation["age_summary"]
            rows.append(
                (
                    "evaluation",
                    f"{evaluation['num_faces']} test faces: age MAE to target {ages['mae']:.1f} y, "
                    f"identity cosine {ages['identity_cosine']:.3f}, verified {ages['identity_verified']:.0%}",
                )
            )
        if note:
            rows.append(("evaluation", note))
    summary["packed"] = pack_export(export, run_dir, out, args.piece_mib)
    rows.append(("weights out", f"{len(summary['packed']['pieces'])} piece(s) of <= {args.piece_mib} MiB + {META_TAR}"))
    return summary, rows


def run_slice(args: argparse.Namespace) -> int:
    """One device call; whatever happens, summary.json is written and the summary table printed last."""
    from ganime_age.errors import GanimeAgeError

    assets = Path(args.assets)
    if assets.is_dir() and "GANIME_AGE_ASSETS" not in os.environ:
        os.environ["GANIME_AGE_ASSETS"] = str(assets.resolve())
    out, data, run_dir = Path(args.out), Path(args.data), Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    code = 0
    summary: dict[str, Any] = {"data": gather_data(sorted(Path(args.carry_dir).glob(f"{data.name}-part*")), data)}
    status = summary["data"]
    rows = [("data", f"{status['shards'] - len(status['missing'])}/{status['shards']} shards in {data}")]
    if not status["complete"]:
        missing = status["missing"]
        rows.append(("training", f"waiting for data: {len(missing)} shard(s) missing, e.g. {missing[0]}"))
    else:
        try:
            trained, trained_rows = train_slice(args, data, run_dir, out)
            summary.update(trained)
            rows += trained_rows
        except (GanimeAgeError, ValueError, OSError) as error:  # the table still says what happened
            summary["error"] = f"{type(error).__name__}: {error}"
            rows.append(("error", summary["error"]))
            code = 2
    rows.append(("wall time", f"{(time.time() - started) / 60:.1f} min"))
    (out / SUMMARY).write_text(json.dumps(summary, indent=1, default=str))
    print("\n## Lease slice summary\n\n| item | value |\n|---|---|")
    for key, value in rows:
        print(f"| {key} | {value} |")
    return code


# -- command line -----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lease.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pack = sub.add_parser("pack-data", help="split a prepared dataset into carry-sized parts")
    pack.add_argument("--data", required=True, help="prepared dataset folder")
    pack.add_argument("--to", default=".carry", help="where the parts go (git-ignored)")
    pack.add_argument("--max-mib", type=float, default=50.0, help="size of a part (the carry limit is 64 MiB a call)")
    pack.add_argument(
        "--jpeg-quality",
        type=int,
        default=0,
        help="refiner pairs: carry their crops as JPEG of this quality (0: as built)",
    )
    run = sub.add_parser("run", help="one slice on the device: gather data, train, evaluate, pack the export")
    run.add_argument("--config", default=str(REPO / "training/configs/ganimation_age.yaml"))
    run.add_argument("--data", default="data/utkface128", help="where the parts are gathered (kept between calls)")
    run.add_argument("--carry-dir", default=".carry", help="where the carried <data name>-part* folders arrive")
    run.add_argument("--output", default="runs/lease_ganimation_age", help="the run folder (kept between calls)")
    run.add_argument("--out", required=True, help="what comes back ($OUT on the device machine)")
    run.add_argument("--minutes", type=float, default=8.0, help="training time of this call (train.max_minutes)")
    run.add_argument("--eval-faces", type=int, default=300, help="test faces to evaluate the export on (0: skip)")
    run.add_argument("--piece-mib", type=float, default=15.0, help="size of a weights piece (16 MiB per file back)")
    run.add_argument("--assets", default=".carry/models", help="model files (GANIME_AGE_ASSETS unless already set)")
    run.add_argument("overrides", nargs="*", metavar="key.path=value", help="config overrides, as for train.py")
    unpack_parser = sub.add_parser("unpack", help="join the pieces a run sent back into a Hub folder")
    unpack_parser.add_argument("--from", dest="source", required=True, help="the folder the files came back to")
    unpack_parser.add_argument(
        "--to", required=True, help="Hub folder to write, e.g. src/ganime_age/weights/ganime-age-refiner"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from ganime_age.errors import exit_status

    args = build_parser().parse_args(argv)

    def command() -> int:
        if args.command == "pack-data":
            for part in pack_data(Path(args.data), Path(args.to), args.max_mib, args.jpeg_quality):
                size = sum(f.stat().st_size for f in part.rglob("*") if f.is_file()) / MIB
                print(f"{part}  {size:.1f} MiB  (carry it in its own call)")
            return 0
        if args.command == "run":
            return run_slice(args)
        print(f"unpacked and strict-loaded {unpack(Path(args.source), Path(args.to))}")
        return 0

    return exit_status(command, prog="lease.py")


if __name__ == "__main__":
    sys.exit(main())
