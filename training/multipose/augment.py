"""Multi-pose augmentation of an age dataset: each source face at new head poses, with age relabelling.

Two backends make the images (``--backend``):

- ``mesh`` (the default; CPU, no weights): the source photo's own head turned in 3-D with the package's renderer
  (:class:`ganime_age.engine.turning.TurnableHead`: the MediaPipe face mesh drawn turned, the rest of the head
  the photo's own pixels moved with it), aimed again where the landmarker reads the turn short (:mod:`training.multipose.mesh`);
- ``controlnet`` (where Stable Diffusion weights exist): MediaPipe 3D landmarks -> turn the 3D face to each
  requested head pose -> project -> draw the conditioning image the ControlNet expects (the MediaPipe face mesh
  of ``CrucibleAI/ControlNetMediaPipeFace`` by default, or OpenPose face keypoints) -> generate with
  ``StableDiffusionControlNetPipeline`` (or its img2img / inpaint variants, which carry over identity and
  background).

Either way an output is kept only if a face is found at the requested pose (measured on the output by the
landmarker) with the source's identity, and its age is relabelled with the age estimator (by default the one
shipped with the package; ``--estimator none`` or ``--age-label source`` keep the source's label, recorded as
``age_label_source: "source"``). Poses are absolute by default (``--pose-mode``): the output's measured yaw and
pitch must reach the requested ones, whatever the source's were. Only the training split of the input is
augmented (``--split``, prepare_data's split), so held-out test faces never become training data.

Usage (rerun the same command to resume; ``accelerate launch`` splits the sources between processes)::

    python training/multipose/augment.py --source utkface --input ../shared/datasets/utkface \
        --output data/utkface-mesh-multipose --max-sources 3000 --image-format jpg
    python training/multipose/augment.py --backend controlnet --input data/utkface-128 \
        --output data/utkface-multipose --batch-size 8
    accelerate launch training/multipose/augment.py --backend controlnet --input data/ffhq-aging-256 \
        --output out/ffhq-mp --mode img2img --strength 0.75 --poses=-30:0,-15:0,15:0,30:0,0:-15,0:15 \
        --push-to-hub me/ffhq-aging-mp

The output folder is documented in :mod:`training.multipose.output`; ``summary.json`` counts what was
generated, kept and rejected (by reason). ``python training/multipose/augment.py --help`` lists all options.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ganime_age.config import from_dict, load_yaml, to_dict
from ganime_age.errors import ConfigError, DatasetError, GanimeAgeError
from training.multipose.config import (
    AGE_LABELS,
    BACKENDS,
    CONDITIONS,
    MODES,
    POSE_MODES,
    SOURCES,
    SPLITS,
    AugmentConfig,
    default_condition,
    default_poses,
    parse_pose,
    pose_tag,
)

log = logging.getLogger("training.multipose.augment")

# Settings that change what an output looks like: a resumed run with different values mixes two datasets.
_OUTPUT_SETTINGS = ("backend", "base_model", "controlnet", "condition", "mode", "strength", "resolution", "steps",
                    "guidance_scale", "controlnet_scale", "prompt", "negative_prompt", "seed", "pose_mode",
                    "face_scale", "aim_corrections", "max_turn", "age_label")  # fmt: skip


def validate(config: AugmentConfig) -> AugmentConfig:
    """Check option values; returns the config with `condition` resolved. Raises ConfigError."""
    if not config.input or not config.output:
        raise ConfigError("both --input and --output are required")
    choices = {"backend": BACKENDS, "source": SOURCES, "split": SPLITS, "mode": MODES, "pose_mode": POSE_MODES,
               "condition": CONDITIONS, "age_label": AGE_LABELS}  # fmt: skip
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ConfigError(
                f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}; got {getattr(config, name)!r}"
            )
    if config.resolution < 64 or config.resolution % 8:
        raise ConfigError(f"--resolution must be a multiple of 8 and at least 64; got {config.resolution}")
    if config.max_sources is not None and config.max_sources < 1:
        raise ConfigError(f"--max-sources must be at least 1; got {config.max_sources}")
    if config.steps < 1 or config.batch_size < 1:
        raise ConfigError("--steps and --batch-size must be at least 1")
    if not 0.0 < config.strength <= 1.0:
        raise ConfigError(f"--strength must lie in (0, 1]; got {config.strength}")
    if not 0.1 <= config.face_scale <= 1.5:
        raise ConfigError(f"--face-scale must lie in [0.1, 1.5]; got {config.face_scale}")
    if config.image_format not in ("png", "webp", "jpg"):
        raise ConfigError(f"--image-format must be png, webp or jpg; got {config.image_format!r}")
    if config.aim_corrections < 0 or config.aim_corrections > 5:
        raise ConfigError(f"--aim-corrections must lie in [0, 5]; got {config.aim_corrections}")
    if not 0.0 < config.max_turn <= 90.0:
        raise ConfigError(f"--max-turn must lie in (0, 90] degrees; got {config.max_turn}")
    if not 0.0 < config.pose_tolerance <= 45.0:
        raise ConfigError(f"--pose-tolerance must lie in (0, 45] degrees; got {config.pose_tolerance}")
    if not -1.0 <= config.identity_threshold <= 1.0:
        raise ConfigError(f"--identity-threshold is a cosine in [-1, 1]; got {config.identity_threshold}")
    poses = default_poses(config.backend) if config.poses is None else config.poses
    if not poses:
        raise ConfigError("no poses requested")
    tags = [pose_tag(y, p) for y, p in poses]
    if len(set(tags)) != len(tags):
        raise ConfigError(f"duplicate poses requested: {tags}")
    from training.multipose.poses import build_prompt

    try:
        build_prompt(config.prompt, 30.0, 0.0, 0.0)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    condition = default_condition(config.controlnet) if config.condition == "auto" else config.condition
    return dataclasses.replace(
        config, poses=tuple(poses), condition=condition, estimator=resolve_estimator(config.estimator)
    )


def resolve_estimator(option: str | None) -> str | None:
    """--estimator: "embedded" is the age estimator shipped with the package; "none" (or empty) keeps labels."""
    if option is None or option.strip().lower() in ("", "none"):
        return None
    if option == "embedded":
        from ganime_age.editing import DEFAULT_ESTIMATOR_DIR

        if not (DEFAULT_ESTIMATOR_DIR / "config.json").is_file():
            raise ConfigError(f"the embedded age estimator is missing from {DEFAULT_ESTIMATOR_DIR}; pass --estimator")
        return str(DEFAULT_ESTIMATOR_DIR)
    return option


def _check_previous_settings(output: Path, config: AugmentConfig) -> None:
    path = output / "config.json"
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError:
            previous = {}
        changed = [k for k in _OUTPUT_SETTINGS if k in previous and previous[k] != to_dict(config)[k]]
        if changed:
            log.warning("resuming %s with different %s than before: old and new outputs will be mixed",
                        output, ", ".join(changed))  # fmt: skip
    path.write_text(json.dumps(to_dict(config), indent=2))


def _base_record(job: Any, config: AugmentConfig) -> dict[str, Any]:
    record = {
        "key": job.key,
        "source_id": job.source.source_id,
        "source": job.source.origin,
        "backend": config.backend,
        "pose_requested": [round(v, 2) for v in job.requested],
        "pose_source": [round(float(v), 2) for v in job.source.pose],
    }
    if config.backend == "controlnet":
        record.update(seed=job.seed, prompt=job.prompt, negative_prompt=job.negative_prompt, mode=config.mode)
    return record


def make_backend(config: AugmentConfig, judge: Any, device: Any, pipeline: Any = None) -> Any:
    """The image maker of `config.backend`: ``produce(jobs) -> outcomes`` (made and judged), ``refuse(job)``."""
    if config.backend == "mesh":
        from training.multipose.mesh import MeshBackend

        return MeshBackend(config, judge)
    from training.multipose.generation import ControlNetBackend

    return ControlNetBackend(config, judge, device, pipeline)


def run(config: AugmentConfig, *, pipeline: Any = None, judge: Any = None) -> dict[str, Any]:
    """Augment `config.input` into `config.output`; returns the summary (see module docstring).

    `pipeline` (the ControlNet backend's) / `judge` may be passed in-process (already built objects) instead of
    being loaded from `config.base_model` / `config.controlnet`.
    """
    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    from training.multipose.judge import FaceJudge
    from training.multipose.output import OutputFolder, push_folder, summarise, write_card
    from training.multipose.poses import make_jobs
    from training.multipose.sources import encode_image, list_sources

    config = validate(config)
    started = time.perf_counter()
    sources = list_sources(config.input, config.source, split=config.split, labels=config.labels)
    if config.max_sources is not None:  # spread over the listing: UTKFace's names (and so its order) start with the age
        from training.evaluate import spread_indices

        sources = [sources[i] for i in spread_indices(len(sources), config.max_sources)]
    unlabelled = sum(source.age is None for source in sources)
    if unlabelled and not config.estimator:
        raise DatasetError(
            f"{unlabelled} source photo(s) in {config.input} have no age label: pass --estimator to estimate their "
            "ages, or use a labelled layout (--source utkface / cacd / csv --labels FILE / a prepared dataset)"
        )

    accelerator = Accelerator()
    output = OutputFolder(config.output, rank=accelerator.process_index)
    if accelerator.is_main_process:
        output.prepare()
        _check_previous_settings(output.root, config)
    accelerator.wait_for_everyone()
    done = output.done_keys()
    tags = [pose_tag(y, p) for y, p in config.poses or ()]
    pending = [s for s in sources if any(f"{s.source_id}_{t}" not in done for t in tags)]
    accelerator.wait_for_everyone()  # every process has read the same state before anyone appends to it

    counts: Counter[str] = Counter()
    with accelerator.split_between_processes(pending) as mine:
        backend: Any = None
        if mine:
            judge = judge or FaceJudge(config, device=accelerator.device)
            backend = make_backend(config, judge, accelerator.device, pipeline)
        queue: list[Any] = []

        def flush(jobs: list[Any]) -> None:
            for outcome in backend.produce(jobs):
                job, image, verdict = outcome.job, outcome.image, outcome.verdict
                counts["generated"] += 1
                record = _base_record(job, config)
                record.update(pose_measured=verdict.pose_measured, identity=verdict.identity,
                              age_estimated=verdict.age_estimated, **outcome.extra, **judge.label(verdict, job))  # fmt: skip
                if config.save_conditioning and job.control is not None:
                    output.write_image(f"conditioning/{job.key}.png", encode_image(job.control, "png"))
                if verdict.kept:
                    counts["kept"] += 1
                    record.update(file_name=f"{job.key}.{config.image_format}", kept=True, reason="ok")
                    output.keep(record, encode_image(image, config.image_format))
                else:
                    counts[f"rejected:{verdict.reason}"] += 1
                    record.update(kept=False, reason=verdict.reason)
                    output.reject(record)
                    if config.keep_rejected:
                        output.write_image(f"rejected/{job.key}.{config.image_format}",
                                           encode_image(image, config.image_format))  # fmt: skip

        def refuse(key: str, source: Any, reason: str) -> None:
            counts[f"rejected:{reason}"] += 1
            output.reject({"key": key, "source_id": source.source_id, "source": source.origin, "kept": False,
                           "reason": reason})  # fmt: skip

        bar = tqdm(mine, desc=f"sources [{accelerator.process_index}]", disable=not config.progress,
                   position=accelerator.process_index)  # fmt: skip
        for source in bar:
            framed = judge.frame(source, reframe=backend.reframe)
            if isinstance(framed, str):
                for tag in tags:
                    key = f"{source.source_id}_{tag}"
                    if key not in done:
                        refuse(key, source, framed)
                continue
            for job in make_jobs(config, framed, backend.condition, done):
                reason = backend.refuse(job)
                if reason is None:
                    queue.append(job)
                else:
                    refuse(job.key, source, reason)
            while len(queue) >= config.batch_size:
                flush(queue[: config.batch_size])
                queue = queue[config.batch_size :]
        if queue:
            flush(queue)

    all_counts = gather_object([dict(counts)])
    accelerator.wait_for_everyone()
    total: Counter[str] = Counter()
    for part in all_counts:
        total.update(part)
    summary: dict[str, Any] = {}
    if accelerator.is_main_process:
        kept, rejected = output.merge()
        run_info = {
            "sources": len(sources),
            "sources_pending": len(pending),
            "jobs_already_done": len(done),
            "processes": accelerator.num_processes,
            "seconds": round(time.perf_counter() - started, 2),
            **dict(sorted(total.items())),
        }
        summary = summarise(kept, rejected, run_info)
        summary["settings"] = to_dict(config)
        (output.root / "summary.json").write_text(json.dumps(summary, indent=2))
        write_card(output.root, summary, to_dict(config))
        if config.push_to_hub:
            summary["hub_commit"] = push_folder(output.root, config.push_to_hub, private=config.private)
    accelerator.wait_for_everyone()
    return summary


# -- command line -------------------------------------------------------------------------------------------
def _poses(text: str) -> tuple[tuple[float, float], ...]:
    try:
        poses = tuple(parse_pose(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not poses:
        raise argparse.ArgumentTypeError("give at least one yaw:pitch pose")
    return poses


def build_parser() -> argparse.ArgumentParser:
    """CLI flags mirror AugmentConfig fields; unset flags keep the --config file's value or the default."""
    parser = argparse.ArgumentParser(
        prog="training/multipose/augment.py", description=__doc__.split("\n\n")[0],
        argument_default=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    defaults = AugmentConfig()
    add = parser.add_argument
    add("--config", help="YAML file of AugmentConfig fields (flags override it)")
    add("--input", help="prepared dataset folder (training/prepare_data.py output) or a folder of photos")
    add("--output", help="output folder (created; rerun to resume)")
    add("--backend", choices=BACKENDS, help="mesh (default): turn the photo's own head in 3-D on the CPU; "
        "controlnet: generate with Stable Diffusion 1.5 + a ControlNet")  # fmt: skip
    add("--source", choices=SOURCES, help=f"input layout (default {defaults.source})")
    add("--labels", help="label CSV for --source csv / ffhq-aging")
    add("--split", choices=SPLITS, help=f"split to augment: a prepared dataset's, or prepare_data's split of a photo "
        f"folder (default {defaults.split}: held-out test faces stay out; all: every photo)")  # fmt: skip
    add("--max-sources", type=int, help="use only N source faces, spread evenly over the (sorted) listing")
    add("--poses", type=_poses, help="yaw:pitch pairs in degrees, comma separated; write --poses=-30:0,30:0 when "
        "the list starts with a minus sign (default: mesh ±15°, ±30°, ±45° yaw and ±15° pitch; controlnet ±15°, "
        "±30° yaw and ±15° pitch)")  # fmt: skip
    add("--pose-mode", choices=POSE_MODES, help="absolute (default): end at yaw:pitch; relative: source pose + "
        "yaw:pitch")  # fmt: skip
    add("--face-scale", type=float, help=f"controlnet: face size in the frame (default {defaults.face_scale}; <1 adds "
        "context)")  # fmt: skip
    add(
        "--aim-corrections",
        type=int,
        help=f"mesh: turn again, aimed by the measured shortfall, while an output "
        f"misses its pose by more than half the tolerance, at most this often (default {defaults.aim_corrections})",
    )
    add("--max-turn", type=float, help=f"mesh: skip poses further than this many degrees from the source's (default "
        f"{defaults.max_turn:g})")  # fmt: skip
    add("--base-model", help=f"SD1.5 pipeline, Hub id or folder (default {defaults.base_model})")
    add("--controlnet", help=f"ControlNet, Hub id or folder (default {defaults.controlnet})")
    add("--controlnet-subfolder", help="subfolder of the ControlNet repo ('auto': diffusion_sd15 for the default)")
    add("--condition", choices=CONDITIONS, help="conditioning drawing (auto: from the ControlNet id)")
    add("--revision", help="Hub revision of the base model")
    add(
        "--estimator",
        help='relabel kept outputs with this AgeEstimator (folder or Hub id); default "embedded" (the shipped one); '
        '"none" keeps the source labels',
    )
    add("--age-label", choices=AGE_LABELS, help="estimator (default): an output's label is the estimator's reading; "
        "source: the source's label (the reading is still recorded)")  # fmt: skip
    add("--recognizer", help="MobileFaceNet weights file (default: the resolved asset)")
    add("--mode", choices=MODES, help="txt2img (default) or img2img / inpaint (carry over identity and background)")
    add("--strength", type=float, help=f"img2img / inpaint denoising strength (default {defaults.strength})")
    add("--resolution", type=int, help=f"generation size in pixels (default {defaults.resolution})")
    add("--steps", type=int, help=f"denoising steps (default {defaults.steps})")
    add("--guidance-scale", type=float, help=f"classifier-free guidance (default {defaults.guidance_scale})")
    add("--controlnet-scale", type=float, help=f"ControlNet conditioning scale (default {defaults.controlnet_scale})")
    add("--prompt", help="prompt template; placeholders {age} {group} {pose} {yaw} {pitch}")
    add("--negative-prompt", help="negative prompt")
    add("--seed", type=int, help="base seed (each output's seed derives from it, its source id and pose)")
    add("--batch-size", type=int, help=f"images per pipeline call (default {defaults.batch_size})")
    add("--dtype", help="auto (fp16 on CUDA) | float16 | bfloat16 | float32")
    add("--channels-last", action="store_true", help="channels_last UNet/ControlNet")
    add("--compile", action="store_true", help="torch.compile the UNet and ControlNet")
    add("--pose-tolerance", type=float, help=f"max yaw/pitch error in degrees (default {defaults.pose_tolerance})")
    add("--identity-threshold", type=float, help=f"min identity cosine (default {defaults.identity_threshold})")
    add("--keep-rejected", action="store_true", help="also save rejected images under rejected/")
    add("--save-conditioning", action="store_true", help="save conditioning drawings")
    add("--image-format", choices=("png", "webp", "jpg"), help="image file format (default png)")
    add("--push-to-hub", help="upload the result to this Hub dataset repo")
    add("--private", action="store_true", help="create the Hub repo as private")
    add("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace) -> AugmentConfig:
    values = vars(args).copy()
    data = load_yaml(values.pop("config")) if "config" in values else {}
    data.update(values)
    if isinstance(data.get("poses"), list):
        data["poses"] = tuple(tuple(float(v) for v in pose) for pose in data["poses"])
    try:
        return from_dict(AugmentConfig, data)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        summary = run(config_from_args(args))
    except GanimeAgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished images are kept; run the same command again to resume", file=sys.stderr)
        return 130
    if summary:
        print(json.dumps({k: summary[k] for k in ("generated", "kept", "rejected", "rejected_by_reason", "this_run")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
