"""Peak memory of one Space request by its photo's pixel count: what `space/budget.py` admits work by.

    python benchmarks/bench_memory.py [--sizes 1 4 12 25 50] [--json runs/bench_memory.json]
    python benchmarks/bench_memory.py --smoke          # CI: 1 and 4 MP, the age edit only
    python benchmarks/bench_memory.py --held           # what a server keeps between requests

Each (task, size) runs in a fresh process: the default editor is loaded and warmed up on a 0.3 MP photo, memory
is returned to the system (``gc.collect`` and glibc's ``malloc_trim``, as the Space does after a request), and
then the task runs on the photo while a thread samples the process's resident memory every 2 ms. The row is the
peak above the level before the task. The photo is CFEE's first full-size original (the face about 300 px wide
in 1000x750) resampled to the size, as a JPEG (quality 90); the "no face" task is a one-colour photo of the
size, refused after decoding and detection, as the attack files of `bench_reliability.py` are when they pass
the pixel limit. The tasks are what the Space's events call: the age edit (`edit_details` and the output
JPEG), the age strip, an AU12 edit, a reenactment driven by a 1 MP photo of another person, and one driven by
the shipped 24-frame example video (`space/examples/astronaut-turning.mp4`, written to an MP4).

The fitted line (peak = bytes a pixel x pixels + fixed) of each task, rounded up, is what
`space/budget.py:REQUEST_MEMORY` holds; the table is in benchmarks/README.md (issue 54: the age edit at 12 MP
644 -> 329 MB, its line 19.6 B/px + 94 MB; the AU12 edit 515 -> 233 MB; the strip 639 -> 508 MB).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO, markdown_table, write_json

TASKS = ("age", "age_strip", "expression", "reenact", "reenact_video", "no_face")
DRIVING_VIDEO = REPO / "space" / "examples" / "astronaut-turning.mp4"


def shared_dir() -> Path:
    return Path(os.environ.get("GANIME_AGE_SHARED", REPO.parent / "shared"))


def make_photo(folder: Path, megapixels: float, *, face: bool = True, index: int = 0, grain: float = 0.0) -> Path:
    """CFEE's full-size original number `index` (or one colour) resampled to `megapixels`, as a JPEG; `grain`
    adds a camera's noise (its standard deviation in levels), so the file is as large as a phone's photo."""
    import cv2
    from PIL import Image

    root = shared_dir() / "datasets" / "cfee_full"
    with open(root / "labels.csv", newline="") as handle:
        name = [row["file_name"] for row in csv.DictReader(handle)][index]
    rgb = np.asarray(Image.open(root / name).convert("RGB"))
    scale = (megapixels * 1e6 / (rgb.shape[0] * rgb.shape[1])) ** 0.5
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    photo = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC) if face else np.full((*size[::-1], 3), 128, np.uint8)
    if grain:
        noise = np.random.default_rng(index).normal(0.0, grain, photo.shape)
        photo = np.clip(photo + noise, 0, 255).astype(np.uint8)
    path = folder / f"{'face' if face else 'plain'}-{index}-{megapixels:g}mp.jpg"
    Image.fromarray(photo).save(path, quality=90)
    return path


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def release_memory() -> None:
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(task: str, photo: Path, driver: Path, warm: Path) -> dict[str, Any]:
    """In this process: the task's peak resident memory above the level before it (bytes)."""
    from PIL import Image

    from ganime_age import FaceEditor
    from ganime_age.errors import NoFaceError

    editor = FaceEditor.from_pretrained()
    editor.edit_details(warm, age=70)
    editor.reenact(warm, driver)
    release_memory()
    before = resident_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        if task == "age":
            result = editor.edit_details(photo, age=70)
            result.image.save(io.BytesIO(), "JPEG", quality=95)
        elif task == "age_strip":
            editor.age_strip(photo, face=0)
        elif task == "expression":
            editor.edit_details(photo, aus={"AU12": 3.0}).image.save(io.BytesIO(), "JPEG", quality=95)
        elif task == "reenact":
            editor.reenact(photo, driver).save(io.BytesIO(), "JPEG", quality=95)
        elif task == "reenact_video":
            with tempfile.TemporaryDirectory() as folder:
                editor.reenact_video(photo, DRIVING_VIDEO, Path(folder) / "out.mp4", show_progress_bar=False)
        elif task == "no_face":
            with contextlib.suppress(NoFaceError):
                editor.analyze(photo)
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    with Image.open(photo) as image:
        pixels = image.size[0] * image.size[1]
    return {"task": task, "pixels": pixels, "peak_bytes": peak[0] - before, "seconds": seconds}


def held(photos: list[Path], warm: Path) -> list[float]:
    """In this process: resident memory (MB) above the warm level after each of `photos` is edited in turn, and
    after the editor's photo cache is emptied: what a server keeps between requests."""
    from ganime_age import FaceEditor

    editor = FaceEditor.from_pretrained()
    editor.edit_details(warm, age=70)
    release_memory()
    start = resident_bytes()
    levels = []
    for photo in photos:
        editor.edit_details(photo, age=70)
        release_memory()
        levels.append((resident_bytes() - start) / 1e6)
    editor.sessions.clear()
    release_memory()
    return [*levels, (resident_bytes() - start) / 1e6]


def fit(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per task, the line through its rows that lies on or above every one of them (a budget must not fall short)."""
    lines = {}
    for task in TASKS:
        points = [(r["pixels"], r["peak_bytes"]) for r in rows if r["task"] == task]
        if not points:
            continue
        x, y = np.array(points, np.float64).T
        slope = float(np.polyfit(x, y, 1)[0]) if len(points) > 1 else float(y[0] / x[0])
        slope = max(slope, 0.0)
        fixed = float(np.max(y - slope * x))
        lines[task] = {"bytes_per_pixel": slope, "fixed_mb": fixed / 1e6}
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 12, 25, 50])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--smoke", action="store_true", help="1 and 4 MP, the age edit only")
    parser.add_argument("--json", help="also write the rows and fitted lines here")
    parser.add_argument("--held", action="store_true", help="what stays resident after five 25 MP edits, only")
    parser.add_argument("--one", nargs=4, metavar=("TASK", "PHOTO", "DRIVER", "WARM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        task, photo, driver, warm = args.one
        print(json.dumps(measure(task, Path(photo), Path(driver), Path(warm))))
        return
    if args.held:
        with tempfile.TemporaryDirectory() as folder:
            photos = [make_photo(Path(folder), 25.0, index=i) for i in range(5)]
            levels = held(photos, make_photo(Path(folder), 0.3))
        print("MB held above the warm level after each of five 25 MP edits, then with the cache emptied:")
        print(" ".join(f"{level:.0f}" for level in levels))
        return
    sizes, tasks = ([1, 4], ["age"]) if args.smoke else (args.sizes, args.tasks)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        driver = make_photo(Path(folder), 1.0, index=1)
        warm = make_photo(Path(folder), 0.3)
        for size in sizes:
            photo = make_photo(Path(folder), size)
            plain = make_photo(Path(folder), size, face=False)
            for task in tasks:
                target = plain if task == "no_face" else photo
                command = [sys.executable, __file__, "--one", task, str(target), str(driver), str(warm)]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f"{task:>10} {row['pixels'] / 1e6:5.1f} MP: {row['peak_bytes'] / 1e6:7.0f} MB in {row['seconds']:.1f} s"
                )
    table = [
        {
            "task": r["task"],
            "MP": f"{r['pixels'] / 1e6:.1f}",
            "peak MB": f"{r['peak_bytes'] / 1e6:.0f}",
            "bytes a pixel": f"{r['peak_bytes'] / r['pixels']:.1f}",
            "s": f"{r['seconds']:.1f}",
        }
        for r in rows
    ]
    print(markdown_table(table, ["task", "MP", "peak MB", "bytes a pixel", "s"]))
    lines = fit(rows)
    print(
        markdown_table(
            [{"task": k, **{n: f"{v:.1f}" for n, v in line.items()}} for k, line in lines.items()],
            ["task", "bytes_per_pixel", "fixed_mb"],
        )
    )
    write_json(args.json, {"rows": rows, "lines": lines})


if __name__ == "__main__":
    main()
