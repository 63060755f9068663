"""The augmentation's output folder: a `datasets`-loadable image folder plus logs, written resumably.

Layout::

    OUT/data/<key>.png            kept images
    OUT/data/metadata.jsonl       one record per kept image (file_name, source, pose, age, identity, seed, ...)
    OUT/rejects.jsonl             one record per rejected job (reason + what was measured)
    OUT/labels.csv                file_name,age of the kept images (``prepare_data --source csv`` input)
    OUT/summary.json              counts: generated, kept, rejected by reason
    OUT/README.md                 dataset card
    OUT/parts/<kind>-<rank>.jsonl per-process append-only logs (the source of truth while running)
    OUT/conditioning/, OUT/rejected/  optional debugging images

``datasets.load_dataset("imagefolder", data_dir="OUT/data")`` (or ``load_dataset("OUT")`` through the card's
config) loads the kept images with their metadata. Every process appends only to its own part files, so
``accelerate launch`` needs no locking; the main process merges them at the end. A job counts as done once its
record is in any part file, which is what makes an interrupted run resumable.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

PARTS = "parts"
DATA = "data"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    if not path.is_file():
        return records
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash: that job is simply redone
                continue
    return records


class OutputFolder:
    """Reads what is done, appends this process's records, merges everything into the final files."""

    def __init__(self, root: str | Path, *, rank: int = 0) -> None:
        self.root = Path(root)
        self.rank = rank
        self.data = self.root / DATA
        self.parts = self.root / PARTS

    def prepare(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.parts.mkdir(parents=True, exist_ok=True)

    # -- reading ------------------------------------------------------------------------------------------
    def records(self, kind: str) -> list[dict[str, Any]]:
        """All records of `kind` ("metadata" or "rejects") from every part file, first one per key."""
        seen: dict[str, dict[str, Any]] = {}
        for path in sorted(self.parts.glob(f"{kind}-*.jsonl")):
            for record in _read_jsonl(path):
                key = record.get("key")
                if key and key not in seen:
                    if kind == "metadata" and not (self.data / record.get("file_name", "")).is_file():
                        continue  # the image was lost: redo the job
                    seen[key] = record
        return list(seen.values())

    def done_keys(self) -> set[str]:
        return {r["key"] for r in self.records("metadata")} | {r["key"] for r in self.records("rejects")}

    # -- writing (this process) ---------------------------------------------------------------------------
    def _append(self, kind: str, record: dict[str, Any]) -> None:
        path = self.parts / f"{kind}-{self.rank:05d}.jsonl"
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def write_image(self, relative: str, data: bytes) -> None:
        """Write atomically so a crash never leaves a truncated image behind."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp{self.rank}")
        temporary.write_bytes(data)
        os.replace(temporary, path)

    def keep(self, record: dict[str, Any], image: bytes) -> None:
        self.write_image(f"{DATA}/{record['file_name']}", image)
        self._append("metadata", record)

    def reject(self, record: dict[str, Any]) -> None:
        self._append("rejects", record)

    # -- merging (main process) ---------------------------------------------------------------------------
    def merge(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Write data/metadata.jsonl, rejects.jsonl and labels.csv from all part files (sorted by key)."""
        kept = sorted(self.records("metadata"), key=lambda r: r["key"])
        rejected = sorted(self.records("rejects"), key=lambda r: r["key"])
        kept_keys = {r["key"] for r in kept}
        rejected = [r for r in rejected if r["key"] not in kept_keys]
        _write_text(self.data / "metadata.jsonl", "".join(json.dumps(r) + "\n" for r in kept))
        _write_text(self.root / "rejects.jsonl", "".join(json.dumps(r) + "\n" for r in rejected))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["file_name", "age"])
        writer.writerows([r["file_name"], r["age"]] for r in kept)
        _write_text(self.root / "labels.csv", buffer.getvalue())
        return kept, rejected


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def summarise(kept: list[dict[str, Any]], rejected: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """Counts over the whole folder (all runs) plus what this run did."""
    reasons = Counter(r["reason"] for r in rejected)
    generated = len(kept) + sum(n for reason, n in reasons.items() if not reason.startswith("source_"))
    label_sources = Counter(r.get("age_label_source", "source") for r in kept)
    return {
        "generated": generated,
        "kept": len(kept),
        "rejected": len(rejected),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "keep_rate": round(len(kept) / generated, 4) if generated else None,
        "age_label_source": dict(label_sources),
        "this_run": run,
    }


def write_card(root: Path, summary: dict[str, Any], settings: dict[str, Any]) -> None:
    """A short dataset card with a `datasets` config pointing at data/; it says which backend made the images."""
    import yaml

    mesh = settings.get("backend", "controlnet") == "mesh"
    front = {
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": f"{DATA}/*"}]}],
        "tags": ["faces", "age", "synthetic", "mesh-turn" if mesh else "controlnet", "ganime-age"],
    }
    if settings.get("estimator") and settings.get("age_label", "estimator") == "estimator":
        relabel = "re-labelled by the age estimator `" + str(settings.get("estimator")) + "`"
    elif settings.get("estimator"):
        relabel = (
            "copied from the source face (`age_label_source` is `source`; the age estimator `"
            + str(settings.get("estimator"))
            + "`'s reading is in `age_estimated`)"
        )
    else:
        relabel = "copied from the source face (no age estimator was given: `age_label_source` is `source`)"
    if mesh:
        made = f"""Synthetic head poses of real source faces: each source photo's own head turned in 3-D by ganime-age's
renderer (`ganime_age.engine.turning.TurnableHead`: the photo's MediaPipe face mesh drawn turned, the hair, ears
and neck the photo's own pixels moved with a skull and a neck), to absolute yaw/pitch poses
(`training/multipose/augment.py --backend mesh`, pose mode `{settings.get("pose_mode")}`). The side of the head
that a turn brings into view is the photo's own side stretched (the face's mirror side where the photo saw it
too obliquely)."""
        columns = "turn (yaw, pitch degrees applied), attempts"
        licence = "The images derive from the source dataset and inherit its terms (UTKFace is non-commercial)."
    else:
        made = f"""Synthetic head poses of real source faces, generated with Stable Diffusion 1.5 (`{settings.get("base_model")}`)
and the ControlNet `{settings.get("controlnet")}` conditioned on the source's MediaPipe face mesh rotated to
new yaw/pitch angles (`training/multipose/augment.py`, mode `{settings.get("mode")}`)."""
        columns = "seed, prompt, negative_prompt, mode"
        licence = (
            "The images derive from the source dataset and inherit its terms (UTKFace and FFHQ-Aging are\n"
            "non-commercial); Stable Diffusion outputs are also subject to the CreativeML OpenRAIL-M licence."
        )
    body = f"""# Multi-pose age augmentation (ganime-age)

{made}

An image is kept only if a face is found in it, its measured head pose is within
{settings.get("pose_tolerance")} degrees of the requested one, and its MobileFaceNet identity cosine with the
source is at least {settings.get("identity_threshold")}. Ages are {relabel}.

| generated | kept | rejected | by reason |
|---|---|---|---|
| {summary["generated"]} | {summary["kept"]} | {summary["rejected"]} | {summary["rejected_by_reason"]} |

Columns of `data/metadata.jsonl`: file_name, key, source_id, source, backend, pose_requested, pose_source,
pose_measured (yaw, pitch, roll degrees), age, age_group, age_source, age_label_source, age_estimated, identity,
{columns}. `rejects.jsonl` lists the rejected jobs with the reason.

Licence: {licence}
"""
    _write_text(root / "README.md", "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + body)


def push_folder(root: Path, repo_id: str, *, private: bool = False) -> str:
    """Upload the finished folder as a Hub dataset repo (logs and parts included, temp files not)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(root), repo_id=repo_id, repo_type="dataset", ignore_patterns=["**/.*", ".*"],
        commit_message="Upload multi-pose augmentation (ganime-age)",
    )  # fmt: skip
    return str(getattr(info, "commit_url", info))
