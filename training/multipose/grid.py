"""A grid of an augmentation's kept images, to look at what it made: one row per source face, the source photo
among its turned versions (columns ordered by yaw).

    python -m training.multipose.grid --augmented data/utkface-mesh-multipose --input ../shared/datasets/utkface \\
        --source utkface --out training/multipose/mesh_grid.jpg

Rows are sources whose every asked pose was kept, spread evenly over their sorted ids (UTKFace's ids start with
the age, so the rows span the ages). Written as a JPEG (quality 85), small enough to keep in the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ganime_age.errors import DatasetError, exit_status

from .config import SOURCES, SPLITS, parse_pose, pose_tag
from .output import DATA, OutputFolder

HEADER = 16  # pixels of the column captions


def _poses(text: str) -> list[tuple[float, float]]:
    try:
        return [parse_pose(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_grid(
    augmented: Path,
    input_folder: Path,
    *,
    source: str = "auto",
    split: str = "train",
    poses: list[tuple[float, float]],
    faces: int = 8,
    size: int = 128,
) -> np.ndarray:
    """The grid as an RGB array: `faces` rows, the source plus each of `poses`, `size` pixels a cell."""
    from PIL import Image, ImageDraw

    from training.evaluate import spread_indices

    from .sources import list_sources

    kept = OutputFolder(augmented).records("metadata")
    by_key = {record["key"]: record for record in kept}
    ids = sorted({record["source_id"] for record in kept})
    tags = [pose_tag(y, p) for y, p in poses]
    complete = [i for i in ids if all(f"{i}_{tag}" in by_key for tag in tags)]
    if not complete:
        raise DatasetError(f"{augmented}: no source has every pose of {', '.join(tags)} kept")
    chosen = [complete[i] for i in spread_indices(len(complete), faces)]
    sources = {s.source_id: s for s in list_sources(input_folder, source, split=split) if s.source_id in chosen}
    # columns by yaw, the source (yaw 0 relative to itself) between the negative and the positive turns
    order = sorted([*range(len(poses)), -1], key=lambda i: (0.0, 0.0) if i < 0 else poses[i])
    captions = ["source" if i < 0 else f"yaw {poses[i][0]:+g}" + (f" pitch {poses[i][1]:+g}" if poses[i][1] else "")
                for i in order]  # fmt: skip
    canvas = Image.new("RGB", (size * len(order), HEADER + size * len(chosen)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for column, caption in enumerate(captions):
        draw.text((column * size + 4, 2), caption, fill=(0, 0, 0))
    for row, source_id in enumerate(chosen):
        if source_id not in sources:
            raise DatasetError(f"source {source_id} of {augmented} is not in {input_folder} ({source}, {split})")
        for column, index in enumerate(order):
            if index < 0:
                image = Image.fromarray(sources[source_id].load())
            else:
                image = Image.open(augmented / DATA / by_key[f"{source_id}_{tags[index]}"]["file_name"]).convert("RGB")
            canvas.paste(image.resize((size, size), Image.LANCZOS), (column * size, HEADER + row * size))
    return np.asarray(canvas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.multipose.grid", description=__doc__.split("\n\n")[0])
    parser.add_argument("--augmented", required=True, help="the augmentation's output folder")
    parser.add_argument("--input", required=True, help="the augmentation's --input (the source photos)")
    parser.add_argument("--source", choices=SOURCES, default="auto", help="the augmentation's --source")
    parser.add_argument("--split", choices=SPLITS, default="train", help="the augmentation's --split")
    parser.add_argument("--poses", type=_poses, default=_poses("-45:0,-30:0,30:0,45:0"), help="yaw:pitch columns")
    parser.add_argument("--faces", type=int, default=8, help="rows")
    parser.add_argument("--size", type=int, default=128, help="pixels a cell")
    parser.add_argument("--out", required=True, help="JPEG to write")
    args = parser.parse_args(argv)

    def make() -> int:
        from PIL import Image

        grid = build_grid(Path(args.augmented), Path(args.input), source=args.source, split=args.split,
                          poses=args.poses, faces=args.faces, size=args.size)  # fmt: skip
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(args.out, quality=85)
        print(json.dumps({"out": args.out, "size": list(grid.shape[1::-1])}))
        return 0

    return exit_status(make, prog="grid")


if __name__ == "__main__":
    sys.exit(main())
