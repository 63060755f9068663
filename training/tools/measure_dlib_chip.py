"""Measure dlib's face-chip alignment, so that ``ganime_age.faces.align`` can reproduce it without dlib.

    python -m training.tools.measure_dlib_chip template
    python -m training.tools.measure_dlib_chip pyramid
    python -m training.tools.measure_dlib_chip landmarks --utkface ../shared/datasets/utkface --photos 600

Why: Cydral's age network (:class:`ganime_age.models.cydral_age.CydralAgeEstimator`) reads 64x64 chips cut by
``dlib.get_face_chip_details(shape, 64, 0.2)`` around dlib's 5 points. The package has MediaPipe's 478
landmarks and no dlib, so it needs (1) the mean-face template that dlib fits the 5 points to, (2) how dlib's
``extract_image_chip`` samples the photo (pixel convention, pyramid), and (3) dlib's 5 points written as
MediaPipe points. Each command measures one of them from dlib itself and prints what it found.

- ``template``: dlib fits a least-squares similarity S (scale s) from a fixed template to the 5 points, then
  makes the chip rectangle: centred on S(size/2, size/2), ``rect.width()`` = s·size, turned by S's angle. So
  ``(cos·width, sin·width, centre)`` is a linear function of the 10 point coordinates, θ = M p; M is measured on
  random integer point sets (dlib's points are integer pixels) and the template read off the pseudo-inverse of
  M (its first column is the template around the chip centre, in chip widths). Done at several sizes and
  paddings, it is one normalised template m placed at ``(padding + m) / (1 + 2 padding) · size``.
- ``pyramid``: ``extract_image_chip`` on images whose pixel values are their own x and y coordinates reads,
  in each chip pixel, where it sampled; and ``dlib.pyramid_down(2)`` on a single bright pixel shows its filter
  and where its output pixels sit.
- ``landmarks``: dlib's 5 points (HOG detector + ``shape_predictor_5_face_landmarks``, as
  ``training.evaluation.judges.DlibAge`` finds them) and MediaPipe's 478 landmarks of the same UTKFace training-split
  photos; each dlib point is written as a blend of two MediaPipe points (:data:`MIRRORED_PAIRS`), the blend
  fitted by least squares on half the faces and measured on the other half, in eye distances.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.errors import exit_status


# -- the template ---------------------------------------------------------------------------------------------
def _chip_parameters(dlib: Any, points: np.ndarray, size: int, padding: float) -> np.ndarray:
    """(cos·w, sin·w, centre x, centre y) of dlib's chip for integer 5-point coordinates."""
    parts = dlib.points([dlib.point(int(x), int(y)) for x, y in points])
    details = dlib.get_face_chip_details(dlib.full_object_detection(dlib.rectangle(0, 0, 10, 10), parts), size, padding)
    rect = details.rect
    width = rect.width()  # a drectangle's width is right - left + 1: the similarity's scale times the chip size
    centre = ((rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2)
    return np.array([np.cos(details.angle) * width, np.sin(details.angle) * width, *centre])


def measure_template(size: int, padding: float, trials: int = 200, seed: int = 0) -> dict[str, Any]:
    """dlib's 5-point template at one chip size and padding, in chip pixels and normalised (mean face) units."""
    import dlib

    rng = np.random.default_rng(seed)
    face = np.array([[0.86, 0.21], [0.65, 0.23], [0.12, 0.21], [0.33, 0.23], [0.49, 0.63]])  # any face-like start
    rows, params = [], []
    for _ in range(trials):
        angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(2e3, 2e4)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = (face + rng.normal(0, 0.05, face.shape)) @ rotation.T * scale + rng.uniform(-1e4, 1e4, 2)
        points = np.round(points)
        rows.append(points.reshape(-1))
        params.append(_chip_parameters(dlib, points, size, padding))
    p, theta = np.asarray(rows), np.asarray(params)
    linear, *_ = np.linalg.lstsq(p, theta, rcond=None)  # theta = p @ linear: M = linear.T (4 x 10)
    residual = float(np.abs(p @ linear - theta).max() / np.abs(theta).max())
    design = np.linalg.pinv(linear.T)  # (10, 4): columns template, its perpendicular, x and y translation
    relative = design[:, 0].reshape(5, 2)  # template - chip centre, in chip widths
    normalised = (relative + 0.5) * (1 + 2 * padding) - padding
    fitted = (relative + 0.5) * size  # what dlib fits the points to: (padding + m) / (1 + 2 padding) * size
    return {
        "size": size,
        "padding": padding,
        "relative_linearity_error": residual,
        "translation_columns_error": float(np.abs(design[:, 2:] - np.tile(np.eye(2), (5, 1))).max()),
        "template_normalised": normalised.round(10).tolist(),
        "template_fitted_units": fitted.round(6).tolist(),
    }


# -- the sampling ---------------------------------------------------------------------------------------------
def measure_sampling() -> dict[str, Any]:
    """Where extract_image_chip samples (vs the rectangle's corners on pixel centres 0 and size - 1), by level."""
    import dlib

    side = 1200
    xs = np.tile(np.arange(side, dtype=np.float64), (side, 1))
    ys = np.ascontiguousarray(xs.T)
    template = np.asarray(measure_template(64, 0.2, trials=40)["template_normalised"])
    grid = np.stack(np.meshgrid(np.arange(64.0), np.arange(64.0)), -1).reshape(-1, 2)
    inner = ((grid > 4) & (grid < 59)).all(axis=1)
    found = []
    for width, angle in ((60, 0.1), (100, -0.2), (200, 0.05), (400, 0.3), (800, -0.1)):
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = np.round((template - 0.5) * width @ rotation.T + side / 2)
        parts = dlib.points([dlib.point(int(x), int(y)) for x, y in points])
        details = dlib.get_face_chip_details(dlib.full_object_detection(dlib.rectangle(0, 0, 9, 9), parts), 64, 0.2)
        read = np.stack([dlib.extract_image_chip(xs, details), dlib.extract_image_chip(ys, details)], -1)
        rect = details.rect
        span = rect.right() - rect.left()
        centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
        turn = np.array(
            [[np.cos(details.angle), -np.sin(details.angle)], [np.sin(details.angle), np.cos(details.angle)]]
        )
        predicted = (grid - 31.5) * (span / 63) @ turn.T + centre
        offset = (read.reshape(-1, 2) - predicted)[inner]
        found.append(
            {
                "rect_width": round(span, 2),
                "offset_mean": offset.mean(axis=0).round(6).tolist(),
                "offset_spread": float(offset.std(axis=0).max()),
            }
        )
    pyramid = dlib.pyramid_down(2)
    image = np.zeros((41, 41), np.float32)
    image[20, 20] = 256.0
    out = np.asarray(pyramid(image))
    row, col = np.unravel_index(int(out.argmax()), out.shape)
    kernel = out[row - 1 : row + 2, col - 1 : col + 2]
    believed = pyramid.point_down(dlib.dpoint(20.0, 20.0))
    return {
        "levels": found,
        "pyramid_input_side": 41,
        "pyramid_output_side": int(out.shape[0]),
        "pyramid_peak": [int(row), int(col)],
        "pyramid_peak_3x3_of_256": kernel.round(4).tolist(),
        "pyramid_point_down_of_20": [believed.x, believed.y],
    }


# -- dlib's points from MediaPipe's ---------------------------------------------------------------------------
# Each dlib point as a blend of two MediaPipe points, b + w (a - b), one w for a point and its mirror image:
# the pairs that fitted best among the 10 MediaPipe points nearest each dlib point, made left-right symmetric.
MIRRORED_PAIRS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "outer eye corners": ((0, 263, 339), (2, 33, 110)),  # (dlib part, a, b)
    "inner eye corners": ((1, 362, 381), (3, 133, 154)),
    "nose base": ((4, 2, 164),),
}


def fit_landmark_mapping(dlib_points: np.ndarray, landmarks: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """How well MediaPipe's points stand for dlib's: the nearest single points, and the blends of MIRRORED_PAIRS.

    `dlib_points` (N, 5, 2) and `landmarks` (N, 478, 2), both photo pixels. Distances are in eye distances (between
    the mean MediaPipe corner positions of the two eyes); each blend's w is fitted on a random half of the faces and
    its error and bias (mean of fitted - dlib, in the image's x and y) are measured on the other half.
    """
    eyes = np.linalg.norm(landmarks[:, [33, 133]].mean(1) - landmarks[:, [362, 263]].mean(1), axis=1)
    order = np.random.default_rng(seed).permutation(len(dlib_points))
    fit, held = order[: len(order) // 2], order[len(order) // 2 :]
    result: dict[str, Any] = {"faces": len(dlib_points), "eye_distance_px": float(eyes.mean()), "nearest": {}}
    for part in range(5):
        distance = (np.linalg.norm(landmarks - dlib_points[:, part][:, None], axis=2) / eyes[:, None])[held].mean(0)
        result["nearest"][part] = {int(k): round(float(distance[k]), 4) for k in np.argsort(distance)[:10]}
    blends = {}
    for name, pairs in MIRRORED_PAIRS.items():
        top = sum(
            ((dlib_points[fit, part] - landmarks[fit, b]) * (landmarks[fit, a] - landmarks[fit, b])).sum()
            for part, a, b in pairs
        )
        bottom = sum(((landmarks[fit, a] - landmarks[fit, b]) ** 2).sum() for _, a, b in pairs)
        weight = float(top / bottom)
        rows = []
        for part, a, b in pairs:
            blend = landmarks[:, b] + weight * (landmarks[:, a] - landmarks[:, b])
            error = (blend - dlib_points[:, part]) / eyes[:, None]
            rows.append(
                {
                    "dlib_part": part,
                    "weights": {a: round(weight, 4), b: round(1 - weight, 4)},
                    "error": round(float(np.linalg.norm(error[held], axis=1).mean()), 4),
                    "bias_xy": error[held].mean(0).round(4).tolist(),
                }
            )
        blends[name] = rows
    result["blends"] = blends
    return result


def collect_points(utkface: Path, photos: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """dlib's 5 points and MediaPipe's landmarks of `photos` random UTKFace training-split photos (both found)."""
    from ganime_age.errors import NoFaceError
    from ganime_age.faces import FaceAnalyzer, load_image
    from training.data.face_records import utkface_split
    from training.evaluation.judges import DlibAge

    judge = DlibAge()
    analyzer = FaceAnalyzer()
    items = utkface_split(utkface, "train")
    rng = np.random.default_rng(seed)
    picks = [items[i] for i in sorted(rng.choice(len(items), size=min(photos, len(items)), replace=False))]
    dlib_points, landmarks = [], []
    for index, (path, _) in enumerate(picks):
        rgb = load_image(path)
        try:
            shape = judge._faces.landmarks(rgb)
            faces = analyzer.analyze(rgb)
        except NoFaceError:  # no face for one of them: left out
            continue
        face = max(faces, key=lambda f: f.detection.box[2] * f.detection.box[3])
        if face.landmarks is None:
            continue
        dlib_points.append([(p.x, p.y) for p in shape.parts()])
        landmarks.append(face.landmarks.landmarks[:, :2])
        if (index + 1) % 100 == 0:
            print(f"{index + 1}/{len(picks)}", file=sys.stderr, flush=True)
    analyzer.close()
    return np.asarray(dlib_points, np.float64), np.asarray(landmarks, np.float64)


# -- command line ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.tools.measure_dlib_chip",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("template", help="dlib's 5-point template (several sizes and paddings)")
    commands.add_parser("pyramid", help="where extract_image_chip samples, and dlib's pyramid_down")
    points = commands.add_parser("landmarks", help="dlib's 5 points as MediaPipe points (UTKFace train split)")
    points.add_argument("--utkface", type=Path, required=True)
    points.add_argument("--photos", type=int, default=600)
    points.add_argument("--seed", type=int, default=0)
    points.add_argument("--cache", type=Path, help="an .npz of the points: read if it exists, else written")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        if args.command == "template":
            result: Any = [measure_template(size, padding) for size, padding in ((64, 0.2), (200, 0.25), (150, 0.0))]
        elif args.command == "pyramid":
            result = measure_sampling()
        else:
            if args.cache is not None and args.cache.is_file():
                with np.load(args.cache) as saved:
                    dlib_points, landmarks = saved["dlib_points"], saved["landmarks"]
            else:
                dlib_points, landmarks = collect_points(args.utkface, args.photos, args.seed)
                if args.cache is not None:
                    np.savez_compressed(args.cache, dlib_points=dlib_points, landmarks=landmarks)
            result = fit_landmark_mapping(dlib_points, landmarks, args.seed)
        print(json.dumps(result, indent=2))
        return 0

    return exit_status(run, prog="python -m training.tools.measure_dlib_chip", debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
