"""The photos people upload (issue 55): where an age edit changes an in-the-wild photo, and what it turns black.

The set: FG-NET's scans (small, grey-scale, cluttered, every age), a warm group photo of three held-out CFEE people,
a crowd of held-out CFEE people cut out and set in two overlapping rows before a field, and single people
small in the same field, all recompressed. Every face of each
photo is made 75, 25 and 6 through the default editor, with the face parser as the edit's mask and, to compare,
without it (the selfie segmenter's silhouette and colour models, as before the parser).

What is measured, by references the edit does not use:

- **spill**: the share of the photo changed (by more than 8 grey levels) outside every face's head, hair and
  neck: the selfie segmenter's silhouette inside a head-and-neck window around each face (1.3 face widths either
  side, 1.4 above the mesh, 0.6 below the chin), grown by 5% of the face. Clothes, neighbours, walls and the
  photo's border lie outside it;
- **holes**: the share of the photo turned near-black (CIE L from 25 or more to under 12) outside the parser's
  hair (hair regaining a dark colour may be that dark); and of those, the ones with no near-black pixel of the
  input within a tenth of the face's width: made by the edit (an outline, a smear), not moved there (the dark wall
  or hair a moved head's outline shows);
- each again outside the *edited* photo's head and hair as well (the same references read off the edit): a head
  grown onto the wall, or a child's hair moved over the forehead by its growth, is the head's own change, not
  spill or a hole;
- **refused**: faces the detector found that the editor would not edit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from training.evaluate import spread_indices
from training.evaluation.gates import full_size_photos, test_photos
from training.evaluation.metrics import add_report_arguments

TARGETS = (75.0, 25.0, 6.0)
CHANGED = 8  # grey levels
WINDOW = (1.3, 1.4, 0.6)  # face widths: half-width, above the mesh's top and below the chin of a head and neck
BLACK = (25.0, 12.0)  # CIE L: a pixel at least this light before and darker than this after turned black
FEATURE_MARGIN = 0.03  # face widths around the eyes' and brows' landmarks: lashes, lids and brow hairs they miss
HOLES_GATE = 0.0005  # issue 55: at most 0.05% of a photo turned near-black outside the hair
MOVED_REACH = 0.1  # face widths: how far an edit moves a head's outline (a child's narrower head, a longer chin)


def wild_photos(shared: Path, fgnet_count: int = 16) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) in-the-wild photos made from the shared datasets' held-out people."""
    from ganime_age.faces import load_image
    from ganime_age.faces.segment import SelfieSegmenter
    from training.data.fgnet import parse_fgnet

    photos: list[tuple[str, np.ndarray]] = []
    scans = parse_fgnet(shared / "datasets" / "fgnet").photos
    for index in spread_indices(len(scans), fgnet_count) if fgnet_count > 0 else []:
        photos.append((f"fgnet {scans[index].path.name}", load_image(scans[index].path)))
    cfee_people = {p.person for p in test_photos("cfee", shared / "datasets" / "cfee")}
    originals = [load_image(p) for p in full_size_photos(shared / "datasets" / "cfee_full", cfee_people, 14)]
    group = np.concatenate([o[:, 220:780] for o in originals[:3]], axis=1).astype(np.float32)
    photos.append(("warm group", np.clip(group * np.array([1.18, 1.0, 0.78], np.float32), 0, 255).astype(np.uint8)))
    segmenter = SelfieSegmenter()
    people = [
        (o, segmenter(o)) for o in (cv2.resize(o, (1000, 750), interpolation=cv2.INTER_AREA) for o in originals[3:])
    ]
    # a shuttle, a flag's edge, a field and buildings: clutter without a face
    clutter = np.concatenate(
        [load_image(EXAMPLES / "astronaut.jpg")[:, 330:], load_image(EXAMPLES / "cameraman.jpg")[:, 400:]], 1
    )
    backdrop = cv2.resize(clutter, (1200, 900), interpolation=cv2.INTER_CUBIC)
    photos.append(("crowd", _recompressed(_crowd(backdrop, people[:6], 0.42))))
    for k, person in enumerate(people[6:10]):
        photos.append((f"small face {k}", _recompressed(_crowd(backdrop, [person], 0.22 + 0.06 * k))))
    return photos


EXAMPLES = Path(__file__).resolve().parents[2] / "space" / "examples"


def _crowd(backdrop: np.ndarray, people: list[tuple[np.ndarray, np.ndarray]], scale: float) -> np.ndarray:
    """People (photo, selfie silhouette) cut out by their silhouettes and set before `backdrop` at `scale`: the
    first half a back row, the rest a front row standing lower and overlapping it."""
    canvas = backdrop.astype(np.float32)
    height, width = canvas.shape[:2]
    back = (len(people) + 1) // 2 if len(people) > 1 else 0
    rows = [people[:back], people[back:]] if back else [people]
    for row_index, row in enumerate(rows):
        for k, (photo, silhouette) in enumerate(row):
            size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
            small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA).astype(np.float32)
            alpha = cv2.resize(silhouette, size, interpolation=cv2.INTER_AREA)
            alpha *= np.clip(np.linspace(8.0, 0.0, size[1]), 0.0, 1.0)[:, None]  # the photo's cut, faded
            alpha = alpha[..., None]
            x = round((k + 0.5) * width / len(row) - size[0] / 2 + (row_index - 0.5) * 0.1 * width * (back > 0))
            y = height - size[1] - (round(0.25 * size[1]) if row_index == 0 and back else 0)
            x0, x1 = max(x, 0), min(x + size[0], width)
            y0, y1 = max(y, 0), min(y + size[1], height)
            part = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
            canvas[y0:y1, x0:x1] = alpha[part] * small[part] + (1.0 - alpha[part]) * canvas[y0:y1, x0:x1]
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _recompressed(rgb: np.ndarray, quality: int = 60) -> np.ndarray:
    _, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def head_and_neck(rgb: np.ndarray, faces: list[Any], segmenter: Any) -> np.ndarray:
    """(h, w) bool: every face's head, hair and neck by the selfie segmenter inside a window around the face."""
    from ganime_age.faces.topology import CHIN, FACE_LEFT, FACE_RIGHT, NUM_MESH_VERTICES

    height, width = rgb.shape[:2]
    silhouette = segmenter(rgb) > 0.3
    region = np.zeros((height, width), bool)
    rows, cols = np.mgrid[0:height, 0:width]
    for face in faces:
        points = face.landmarks.landmarks[:NUM_MESH_VERTICES, :2]
        face_width = max(float(np.linalg.norm(points[FACE_RIGHT] - points[FACE_LEFT])), 8.0)
        half, above, below = (v * face_width for v in WINDOW)
        centre = float(points[:, 0].mean())
        window = (np.abs(cols - centre) < half) & (rows > points[:, 1].min() - above)
        window &= rows < points[CHIN, 1] + below
        grow = max(1, round(0.05 * face_width))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)
        region |= cv2.dilate((silhouette & window).astype(np.uint8), kernel).astype(bool)
    return region


def parsed_hair(rgb: np.ndarray, faces: list[Any], parser: Any, segmenter: Any) -> np.ndarray:
    """(h, w) bool: every face's hair by the face parser (its hair like the wall settled by the segmenter, as the
    edit's is)."""
    from ganime_age.engine.parsing import parse_head

    height, width = rgb.shape[:2]
    hair = np.zeros((height, width), np.float32)
    for face in faces:
        parsed = parse_head(rgb, face.landmarks.landmarks, parser, segmenter)
        hair = np.maximum(hair, parsed.hair_at(0, 0, width, height))
    return hair > 0.3


def eyes_and_brows(faces: list[Any], shape: tuple[int, ...]) -> np.ndarray:
    """(h, w) bool: every face's eyes and brows by its landmarks, grown by FEATURE_MARGIN of the face's width: a
    child's larger irises and a grown face's darker brows are dark by anatomy, not holes."""
    from ganime_age.faces.topology import LEFT_BROW, LEFT_EYE_CONTOUR, RIGHT_BROW, RIGHT_EYE_CONTOUR

    mask = np.zeros(shape[:2], np.uint8)
    for face in faces:
        points = np.asarray(face.landmarks.landmarks, np.float64)[:, :2]
        margin = max(round(FEATURE_MARGIN * float(np.ptp(points[:, 0]))), 1)
        for part in (LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, LEFT_BROW, RIGHT_BROW):
            outline = np.round(points[list(part)]).astype(np.int32)
            cv2.fillPoly(mask, [outline], 1)
            cv2.polylines(mask, [outline], True, 1, thickness=2 * margin)
    return mask.astype(bool)


def near_black(lightness: np.ndarray, faces: list[Any]) -> np.ndarray:
    """(h, w) bool: within MOVED_REACH of the widest face's width of a pixel the input holds near-black (CIE L under
    BLACK[1]): where an edit that moves a head's outline shows the dark wall or hair beside it, a near-black pixel
    was moved there, not made (an outline or a smear on a light wall or a white shirt has no black beside it)."""
    widths = [float(np.ptp(np.asarray(f.landmarks.landmarks)[:, 0])) for f in faces]
    reach = max(round(MOVED_REACH * max(widths, default=0.0)), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
    return cv2.dilate((lightness < BLACK[1]).astype(np.uint8), kernel).astype(bool)


def edited_head(editor: Any, edited: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head and neck, hair, eyes and brows) of the edited photo, as :func:`head_and_neck`, :func:`parsed_hair`
    and :func:`eyes_and_brows` read the input's: where the edit moved a head (grown onto the wall, a child's hair
    over the forehead) its changed pixels are the head's, not spill, and its dark hair, eyes and brows no hole."""
    from ganime_age.errors import GanimeAgeError

    empty = np.zeros(edited.shape[:2], bool)
    try:
        faces = [f for f in editor.analyzer.analyze(edited) if f.landmarks is not None]
    except GanimeAgeError:
        return empty, empty, empty
    if not faces:
        return empty, empty, empty
    segmenter = editor.analyzer.segmenter
    return (
        head_and_neck(edited, faces, segmenter),
        parsed_hair(edited, faces, editor.analyzer.parser, segmenter),
        eyes_and_brows(faces, edited.shape),
    )


def measure(editor: Any, photos: list[tuple[str, np.ndarray]], use_parser: bool, sheet: list | None) -> dict:
    """Spill, holes and refusals of every photo made each of TARGETS."""
    from ganime_age.errors import GanimeAgeError

    analyzer = editor.analyzer
    if not use_parser:  # the edit as it was before the parser: its silhouette and colours say where
        from ganime_age.editing.session import SessionCache

        def prepare(rgb: np.ndarray, face: Any, others: Any = ()) -> Any:
            return editor.engine.prepare_face(
                rgb,
                face.landmarks.landmarks,
                segment=analyzer.segmenter,
                others=others,
                exemplars=editor.exemplars,
                female=editor.female_probability(rgb, face),
            )

        editor.sessions = SessionCache(lambda: analyzer, editor._read_age, prepare)
    spill, holes, refused, found, names = [], [], 0, 0, []
    spill_edited: list[float] = []
    holes_edited: list[float] = []
    holes_features: list[float] = []
    holes_made: list[float] = []
    for name, rgb in photos:
        editor.sessions.clear()
        try:
            faces = [f for f in editor.analyze(rgb) if f.landmarks is not None]
        except GanimeAgeError:
            continue
        found += len(faces)
        region = head_and_neck(rgb, faces, analyzer.segmenter)
        hair = parsed_hair(rgb, faces, analyzer.parser, analyzer.segmenter)
        lightness = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 0]
        moved_dark = near_black(lightness, faces)
        for target in TARGETS:
            try:
                edited = np.asarray(editor.edit(rgb, age=target))
            except GanimeAgeError:
                refused += len(faces) if target == TARGETS[0] else 0
                continue
            changed = np.abs(edited.astype(np.int16) - rgb.astype(np.int16)).max(axis=2) > CHANGED
            after = cv2.cvtColor(edited.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 0]
            black = (lightness >= BLACK[0]) & (after < BLACK[1]) & ~hair
            spill.append(float((changed & ~region).mean()))
            names.append(f"{name} -> {target:g}")
            holes.append(float(black.mean()))
            # the edit's own head too: a head grown onto the wall, hair a child's growth moved over the forehead
            edited_region, edited_hair, features = edited_head(editor, edited)
            spill_edited.append(float((changed & ~region & ~edited_region).mean()))
            holes_edited.append(float((black & ~edited_hair).mean()))
            holes_features.append(float((black & ~edited_hair & ~features).mean()))
            holes_made.append(float((black & ~edited_hair & ~features & ~moved_dark).mean()))
            if sheet is not None:
                sheet.append((f"{name} -> {target:g}", rgb, edited, changed & ~region))
    return {
        "spill_median": float(np.median(spill)) if spill else float("nan"),
        "spill_worst": float(np.max(spill)) if spill else float("nan"),
        "spill_worst_edit": names[int(np.argmax(spill))] if spill else "",
        "holes_worst_edit": names[int(np.argmax(holes))] if holes else "",
        "holes_worst": float(np.max(holes)) if holes else float("nan"),
        "spill_edited_median": float(np.median(spill_edited)) if spill_edited else float("nan"),
        "spill_edited_worst": float(np.max(spill_edited)) if spill_edited else float("nan"),
        "spill_edited_worst_edit": names[int(np.argmax(spill_edited))] if spill_edited else "",
        "holes_edited_worst": float(np.max(holes_edited)) if holes_edited else float("nan"),
        "holes_edited_worst_edit": names[int(np.argmax(holes_edited))] if holes_edited else "",
        "holes_features_worst": float(np.max(holes_features)) if holes_features else float("nan"),
        "holes_features_worst_edit": names[int(np.argmax(holes_features))] if holes_features else "",
        "holes_made_worst": float(np.max(holes_made)) if holes_made else float("nan"),
        "holes_made_worst_edit": names[int(np.argmax(holes_made))] if holes_made else "",
        "holes_made_over_gate": int(np.sum(np.asarray(holes_made) > HOLES_GATE)),
        "refused": refused,
        "faces": found,
        "edits": len(spill),
    }


def write_sheet(path: Path, rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], height: int = 360) -> None:
    """Each edit beside its input and its spill (red) as JPEGs of rows `height` pixels tall."""
    path.mkdir(parents=True, exist_ok=True)
    for k, (name, before, after, spill) in enumerate(rows):
        marked = after.copy()
        marked[spill] = (0.4 * marked[spill] + np.array([153, 0, 0])).astype(np.uint8)
        row = np.concatenate([before, after, marked], axis=1)
        scale = height / row.shape[0]
        row = cv2.resize(row, (round(row.shape[1] * scale), height), interpolation=cv2.INTER_AREA)
        cv2.putText(row, name, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 0), 2)
        cv2.imwrite(str(path / f"wild_{k:03d}.jpg"), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))


class WildEvaluation:
    name = "wild"
    help = "in-the-wild photos (FG-NET scans, a warm group, a crowd, small faces): spill, holes, refusals"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--shared", required=True, help="the shared folder (datasets/fgnet, cfee, utkface)")
        parser.add_argument("--fgnet-count", type=int, default=16, help="FG-NET scans in the set")
        add_report_arguments(parser, samples="write each edit beside its input and its spill here (JPEG)")

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.editing import EditorConfig, FaceEditor

        started = time.perf_counter()
        photos = wild_photos(Path(args.shared), args.fgnet_count)
        result: dict[str, Any] = {"photos": len(photos)}
        for use_parser in (True, False):
            editor = FaceEditor.from_pretrained(config=EditorConfig(device="cpu"))
            sheet: list | None = [] if args.samples and use_parser else None
            result["parser" if use_parser else "silhouette"] = measure(editor, photos, use_parser, sheet)
            if sheet:
                write_sheet(Path(args.samples), sheet)
        result["seconds"] = time.perf_counter() - started
        return result

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        lines = [
            f"In-the-wild photos: {result['photos']} photos, every face made {', '.join(f'{t:g}' for t in TARGETS)}",
            "",
            "| mask | edits | spill outside head, hair and neck: median / worst | the same outside the edited "
            "head too | holes, worst | outside the edited hair too | and its eyes and brows | and no near-black "
            "within a tenth of the face in the input (made, not moved): worst, edits over 0.05% | refused faces |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key, label in (("silhouette", "selfie silhouette and colours"), ("parser", "face parser")):
            r = result[key]
            lines.append(
                f"| {label} | {r['edits']} | {100 * r['spill_median']:.2f}% / {100 * r['spill_worst']:.2f}% | "
                f"{100 * r['spill_edited_median']:.2f}% / {100 * r['spill_edited_worst']:.2f}% "
                f"({r['spill_edited_worst_edit']}) | {100 * r['holes_worst']:.3f}% | "
                f"{100 * r['holes_edited_worst']:.3f}% ({r['holes_edited_worst_edit']}) | "
                f"{100 * r.get('holes_features_worst', float('nan')):.3f}% ({r.get('holes_features_worst_edit', '')}) | "
                f"{100 * r.get('holes_made_worst', float('nan')):.3f}% ({r.get('holes_made_worst_edit', '')}), "
                f"{r.get('holes_made_over_gate', '')} | "
                f"{r['refused']} of {r['faces']} |"
            )
        lines.append(f"\n{result['seconds']:.0f} s")
        return "\n".join(lines)
