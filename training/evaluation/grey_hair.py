"""Greyed hair's local contrast (issue 55): an edit's grey hair against real old people's, at every size.

    python training/evaluate.py grey-hair --utkface ../shared/datasets/utkface [--count 40] [--sizes 60px,1,3] \\
        [--samples DIR] [--json out.json] [--markdown out.md]

Grey hair painted flat (a smooth grey cap) reads as a wig even where its colour is right: real grey hair keeps its
strands. The measure is the hair's local contrast: on CIE L (0..100), the standard deviation of L minus L blurred
at 0.04 face widths (the face parser's mesh points FACE_LEFT to FACE_RIGHT), over the parser's hair eroded by a
pixel or two (its outline against the background is not the hair's texture). Two groups of UTKFace's held-out
photos (prepare_data's test split, which the engine's fitting never saw):

- **real**: people aged 70 and over whose parsed hair is grey (median Lab chroma under 12, median L over 55);
- **edited**: people aged 20-35 with dark hair (median L under 40) made 75 by the default editor, measured on the
  original photo's parsed hair where the edit made it lighter (L up by more than 10): the greyed hair, eroded the
  same way (its edge against the hair left dark is not texture either).

Each group is measured with the photos downscaled so the face is about 60 px wide (INTER_AREA), as they are, and
upscaled 3x (INTER_CUBIC: the real photos too, so both are compared at the same detail). The edit is made on the
resized photo, as a user's photo of that size would be; the hair is parsed once, on the photo as it is, and
resized with it. The gate: edited / real medians at least 0.85 at every size.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from training.evaluation.gates import labelled_grid, save_grid, test_photos
from training.evaluation.metrics import add_report_arguments, markdown_table
from training.evaluation.wild import parsed_hair

OLD_AGE = 70  # real grey hair: people this old and older
YOUNG = (20, 35)  # the edited group's ages
TARGET = 75.0
GREY = (12.0, 55.0)  # grey hair: median chroma below, median L above
DARK = 40.0  # dark hair: median L below
MIN_HAIR = 0.015  # of the photo: less hair says nothing of its texture
LIGHTER = 10.0  # CIE L: a hair pixel the edit lightened by more than this was greyed
SIGMA = 0.04  # face widths: the blur whose residue is the local contrast
ERODE = 0.015  # face widths (1 to 2 px): the hair's outline left out
MIN_PIXELS = 30  # measured hair pixels below which a photo is not measured
GATE = 0.85
SCAN = 8  # candidates read per photo wanted, at most
DEFAULT_SIZES = "60px,1,3"
SAMPLES = 6  # photos of each group on the sample sheets
TILE = 160


@dataclass
class HairPhoto:
    """A photo and its one face's parsed hair."""

    name: str
    rgb: np.ndarray  # uint8 RGB
    hair: np.ndarray  # (h, w) bool
    face_width: float  # pixels


def parse_sizes(text: str) -> list[str]:
    """Comma-separated sizes: ``60px`` (scaled so the face is that wide) or a scale factor (``1``, ``3``)."""
    sizes = [part.strip() for part in text.split(",") if part.strip()]
    try:
        values = [float(s.removesuffix("px")) for s in sizes]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes takes e.g. 60px,1,3, got {text!r}") from None
    if not sizes or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("--sizes must be positive")
    return sizes


def scale_of(size: str, face_width: float) -> float:
    return float(size[:-2]) / face_width if size.endswith("px") else float(size)


def size_label(size: str) -> str:
    return f"face {size[:-2]} px" if size.endswith("px") else f"x{size}"


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab as float32, L in 0..100."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def hair_colour(rgb: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Median CIE L and median chroma of the pixels in `mask`."""
    values = lab(rgb)[mask]
    return float(np.median(values[:, 0])), float(np.median(np.hypot(values[:, 1], values[:, 2])))


def inner(mask: np.ndarray, face_width: float) -> np.ndarray:
    """`mask` eroded by 1-2 pixels: its outline (hair against a wall) is an edge, not the hair's texture."""
    radius = int(np.clip(round(ERODE * face_width), 1, 2))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)


def local_contrast(rgb: np.ndarray, mask: np.ndarray, face_width: float) -> float:
    """Std of CIE L minus L blurred at SIGMA face widths over `mask` (already eroded); NaN on too few pixels.
    Absolute L units: flat paint is near 0 whatever its shade, strands are not."""
    if mask.sum() < MIN_PIXELS:
        return float("nan")
    lightness = lab(rgb)[..., 0]
    residue = lightness - cv2.GaussianBlur(lightness, (0, 0), SIGMA * face_width)
    return float(residue[mask].std())


def read_hair(editor: Any, name: str, rgb: np.ndarray) -> HairPhoto | None:
    """The photo's parsed hair, where it shows exactly one face with landmarks and at least MIN_HAIR hair."""
    from ganime_age.errors import GanimeAgeError
    from ganime_age.faces.topology import FACE_LEFT, FACE_RIGHT

    editor.sessions.clear()
    try:
        faces = [f for f in editor.analyze(rgb) if f.landmarks is not None]
    except GanimeAgeError:
        return None
    if len(faces) != 1:
        return None
    hair = parsed_hair(rgb, faces, editor.analyzer.parser, editor.analyzer.segmenter)
    if hair.mean() < MIN_HAIR:
        return None
    points = faces[0].landmarks.landmarks
    face_width = float(np.linalg.norm(points[FACE_RIGHT, :2] - points[FACE_LEFT, :2]))
    return HairPhoto(name, rgb, hair, face_width)


def is_grey(photo: HairPhoto) -> bool:
    lightness, chroma = hair_colour(photo.rgb, photo.hair)
    return chroma < GREY[0] and lightness > GREY[1]


def is_dark(photo: HairPhoto) -> bool:
    return hair_colour(photo.rgb, photo.hair)[0] < DARK


def find(editor: Any, candidates: list[Any], keep: Any, count: int) -> tuple[list[HairPhoto], int]:
    """The first `count` candidates (in a seeded random order) whose hair `keep` accepts, reading at most
    SCAN x `count`; and how many were read."""
    from ganime_age.faces import load_image

    found: list[HairPhoto] = []
    order = np.random.default_rng(0).permutation(len(candidates))[: SCAN * count]
    read = 0
    for index in order:
        if len(found) >= count:
            break
        read += 1
        path = candidates[int(index)].path
        photo = read_hair(editor, path.name, load_image(path))
        if photo is not None and keep(photo):
            found.append(photo)
    return found, read


def resized(photo: HairPhoto, size: str) -> HairPhoto:
    """The photo and its hair at `size` (INTER_AREA down, INTER_CUBIC up)."""
    scale = scale_of(size, photo.face_width)
    if abs(scale - 1.0) < 1e-6:
        return photo
    height, width = photo.rgb.shape[:2]
    shape = (max(round(width * scale), 1), max(round(height * scale), 1))
    down = scale < 1
    rgb = cv2.resize(photo.rgb, shape, interpolation=cv2.INTER_AREA if down else cv2.INTER_CUBIC)
    hair = cv2.resize(photo.hair.astype(np.float32), shape, interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
    return HairPhoto(photo.name, rgb, hair > 0.5, photo.face_width * scale)


def hair_tile(rgb: np.ndarray) -> np.ndarray:
    """The whole photo in a TILE px square (UTKFace's hair frames the face: a crop at the hair's middle showed
    the eyes), its pixels kept sharp when enlarged."""
    height, width = rgb.shape[:2]
    scale = TILE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shown = cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA)
    tile = np.full((TILE, TILE, 3), 128, np.uint8)
    tile[: shown.shape[0], : shown.shape[1]] = shown
    return tile


def measure_size(editor: Any, real: list[HairPhoto], dark: list[HairPhoto], size: str, sheet: Path | None) -> dict:
    """Both groups' local contrast at `size`; the dark-haired photos made TARGET at that size first."""
    from ganime_age.errors import GanimeAgeError

    tiles: dict[str, list[np.ndarray]] = {"input": [], "edited": [], "real": []}
    real_rows: list[dict] = []
    for photo in (resized(p, size) for p in real):
        mask = inner(photo.hair, photo.face_width)
        lightness, chroma = hair_colour(photo.rgb, photo.hair)
        row = {"photo": photo.name, "face_width": photo.face_width, "L": lightness, "chroma": chroma}
        real_rows.append({**row, "contrast": local_contrast(photo.rgb, mask, photo.face_width)})
        if len(tiles["real"]) < SAMPLES:
            tiles["real"].append(hair_tile(photo.rgb))
    edited_rows: list[dict] = []
    refused = 0
    for photo in (resized(p, size) for p in dark):
        editor.sessions.clear()
        try:
            edited = np.asarray(editor.edit(photo.rgb, age=TARGET))
        except GanimeAgeError:
            refused += 1
            continue
        lighter = lab(edited)[..., 0] - lab(photo.rgb)[..., 0] > LIGHTER
        greyed = photo.hair & lighter
        mask = inner(greyed, photo.face_width)  # the greyed hair's own edge (to dark hair or skin) left out too
        lightness, chroma = hair_colour(edited, greyed) if greyed.any() else (float("nan"), float("nan"))
        edited_rows.append(
            {
                "photo": photo.name,
                "face_width": photo.face_width,
                "greyed_share": float(greyed.sum() / photo.hair.sum()),
                "L": lightness,
                "chroma": chroma,
                "contrast": local_contrast(edited, mask, photo.face_width),
                "input_contrast": local_contrast(photo.rgb, mask, photo.face_width),
            }
        )
        if len(tiles["edited"]) < SAMPLES:
            tiles["input"].append(hair_tile(photo.rgb))
            tiles["edited"].append(hair_tile(edited))
    if sheet is not None:
        write_sheet(sheet / f"grey_hair_{size}.jpg", size, tiles)
    real_median, edited_median = _median(real_rows, "contrast"), _median(edited_rows, "contrast")
    ratio = edited_median / real_median if real_median > 0 else float("nan")
    return {
        "size": size,
        "real": {"rows": real_rows, "measured": _count(real_rows), "contrast": real_median},
        "edited": {"rows": edited_rows, "measured": _count(edited_rows), "contrast": edited_median, "refused": refused},
        "face_width": _median(real_rows + edited_rows, "face_width"),
        "ratio": ratio,
        "passes": bool(ratio >= GATE),
    }


def _median(rows: list[dict], key: str) -> float:
    values = np.array([r[key] for r in rows], np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def _count(rows: list[dict]) -> int:
    return int(sum(np.isfinite(r["contrast"]) for r in rows))


def write_sheet(path: Path, size: str, tiles: dict[str, list[np.ndarray]]) -> None:
    """Rows of hair crops (the dark hair, the edit's grey, real grey) at one size, padded to equal length."""
    width = max(len(t) for t in tiles.values()) or 1
    blank = np.full((TILE, TILE, 3), 128, np.uint8)
    labels = {"input": f"input {size}", "edited": f"made {TARGET:g}", "real": f"real {OLD_AGE}+"}
    save_grid(path, labelled_grid([(labels[k], t + [blank] * (width - len(t))) for k, t in tiles.items()]))


class GreyHairEvaluation:
    name = "grey-hair"
    help = "greyed hair's local contrast against real old people's grey hair (issue 55), at every size"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--utkface", required=True, help="UTKFace folder (its held-out test split is used)")
        parser.add_argument("--count", type=int, default=40, help="photos of each group")
        parser.add_argument(
            "--sizes",
            type=parse_sizes,
            default=parse_sizes(DEFAULT_SIZES),
            help=f"face sizes: NNpx (face width) or a scale factor (default {DEFAULT_SIZES})",
        )
        add_report_arguments(parser, samples="write a sheet of hair crops per size here (JPEG)")

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.editing import EditorConfig, FaceEditor

        started = time.perf_counter()
        editor = FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))
        photos = test_photos("utkface", Path(args.utkface))
        old = [p for p in photos if p.age >= OLD_AGE]
        young = [p for p in photos if YOUNG[0] <= p.age <= YOUNG[1]]
        real, real_read = find(editor, old, is_grey, args.count)
        dark, dark_read = find(editor, young, is_dark, args.count)
        sheet = Path(args.samples) if args.samples else None
        sizes = [measure_size(editor, real, dark, size, sheet) for size in args.sizes]
        return {
            "evaluation": "grey-hair",
            "real": {"photos": len(real), "read": real_read, "candidates": len(old)},
            "dark": {"photos": len(dark), "read": dark_read, "candidates": len(young)},
            "sizes": sizes,
            "worst_ratio": min((s["ratio"] for s in sizes), default=float("nan")),
            "passes": all(s["passes"] for s in sizes),
            "samples": sorted(p.name for p in sheet.glob("grey_hair_*.jpg")) if sheet else None,
            "seconds": round(time.perf_counter() - started, 1),
        }

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        real, dark = result["real"], result["dark"]
        headers = [
            "size",
            "face width (px)",
            f"real {OLD_AGE}+ grey: photos, contrast",
            f"made {TARGET:g}: photos, contrast (before the edit)",
            "greyed hair L / chroma (real)",
            f"edited / real (gate >= {GATE})",
        ]
        rows = []
        for s in result["sizes"]:
            greyed = f"{_median(s['edited']['rows'], 'L'):.0f} / {_median(s['edited']['rows'], 'chroma'):.1f} "
            greyed += f"({_median(s['real']['rows'], 'L'):.0f} / {_median(s['real']['rows'], 'chroma'):.1f})"
            rows.append(
                [
                    size_label(s["size"]),
                    f"{s['face_width']:.0f}",
                    f"{s['real']['measured']}, {s['real']['contrast']:.2f}",
                    f"{s['edited']['measured']}, {s['edited']['contrast']:.2f} "
                    f"({_median(s['edited']['rows'], 'input_contrast'):.2f})",
                    greyed,
                    f"{s['ratio']:.2f} {'pass' if s['passes'] else 'FAIL'}",
                ]
            )
        lines = [
            "### Greyed hair's local contrast (issue 55)",
            "",
            f"UTKFace held-out photos: {real['photos']} people aged {OLD_AGE}+ with grey hair (of {real['read']} read), "
            f"{dark['photos']} aged {YOUNG[0]}-{YOUNG[1]} with dark hair (of {dark['read']} read) made {TARGET:g}. "
            f"Contrast: median std of CIE L minus L blurred at {SIGMA} face widths, inside the parsed hair (edits: "
            f"where they lightened it by more than {LIGHTER:g} L).",
            "",
            markdown_table(headers, rows),
            "",
            f"Gate {'passes' if result['passes'] else 'FAILS'}: worst ratio {result['worst_ratio']:.2f}. "
            f"{result['seconds']:.0f} s.",
        ]
        if result.get("samples"):
            lines += ["", *[f"![{name}]({name})" for name in result["samples"]]]
        return "\n".join(lines)
