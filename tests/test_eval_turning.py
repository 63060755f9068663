"""The 3-D turn's evaluation (issue 31) on real held-out photos, through the evaluate.py command users run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from training.evaluate import main
from training.evaluation.turning import SEAM_RATIO, SHEET_TILE


def test_outline_edges_read_a_hard_cut_and_not_a_soft_one(shared_dir: Path) -> None:
    """The seam measure: a face outline pasted onto a flat grey (a hard cut) reads stronger edges than the
    photo's own outline, the photo blurred (no edge at all) weaker ones."""
    from ganime_age.faces import FaceAnalyzer, load_image
    from ganime_age.faces.topology import FACE_OVAL
    from training.evaluation.turning import outline_edges

    rgb = load_image(shared_dir / "datasets" / "cfee_full" / "images" / "0113.jpg")
    outline = FaceAnalyzer().analyze(rgb)[0].landmarks.landmarks[[a for a, _ in FACE_OVAL], :2]
    own = outline_edges(rgb, outline)
    blurred = outline_edges(cv2.GaussianBlur(rgb, (0, 0), 12.0), outline)
    inside = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(outline).astype(np.int32)], 1)
    cut = np.where(inside[..., None] > 0, rgb, np.uint8(10))
    assert blurred < 0.6 * own < own < outline_edges(cut, outline)


def test_the_turning_evaluation_on_held_out_photos(tmp_path: Path, shared_dir: Path) -> None:
    """A small run of ``evaluate.py turning``: the self-reenactments verify and keep the driver's pose, the
    turned outlines have no edge much stronger than the photos' own, a near-frontal reenactment draws nothing
    beyond the face, the videos keep their audio, the still background's pixels and the head's size, and the
    grids, the contact sheet and the videos are written."""
    datasets = shared_dir / "datasets"
    out_json, samples = tmp_path / "turning.json", tmp_path / "samples"
    args = ["turning", "--utkface", str(datasets / "utkface"), "--cfee", str(datasets / "cfee")]
    args += ["--cfee-full", str(datasets / "cfee_full"), "--max-people", "2", "--max-pairs", "2"]
    args += ["--max-scan", "60", "--seam-people", "1", "--samples", str(samples), "--json", str(out_json)]
    assert main(args) == 0
    result = json.loads(out_json.read_text())
    own = result["self"]
    assert own["pairs"] >= 4 and own["verified"] >= 0.75
    assert own["yaw_error"] < 5.0 and own["pitch_error"] < 5.0 and own["au_error"] < 1.5
    turned = result["turned"]
    assert turned["pairs"] >= 1 and turned["driver_yaw"] >= 20.0
    seams = result["seams"]
    assert len(seams["rows"]) == 1 and len(seams["rows"][0]["turned"]) == 4 and seams["worst_ratio"] <= SEAM_RATIO
    # beyond the face a near-frontal reenactment only moves the photo's pixels, and a video's head keeps its size
    assert result["frontal"]["worst_drawn"] <= 0.001, result["frontal"]
    videos = {v["driver"]: v for v in result["video"]}
    made = next(v for name, v in videos.items() if name.startswith("driver_"))
    assert made["audio_kept"] and made["frames"] == 30 and made["driver_fps"] == 10.0
    # the still background keeps its pixels frame to frame (the drivers' own compression noise is larger)
    assert all(v["background"] < 0.05 and v["fps"] > 0 and np.isfinite(v["hair"]) for v in videos.values()), videos
    assert all(v["head_size"] <= 0.03 for v in videos.values()), videos
    names = {p.name for p in samples.iterdir()}
    assert {"self_reenactment.jpg", "turned_drivers.jpg", "seams.jpg", "near_frontal.jpg", "video_frames.jpg"} <= names
    # the contact sheet: each held-out original beside its reenactments by a frontal and two turned drivers,
    # without an age and with one, in tiles of the photo's own pixels
    sheet = cv2.imread(str(samples / "reenact_sheet.jpg"))
    assert sheet.shape[1] == 150 + 7 * SHEET_TILE and sheet.shape[0] % SHEET_TILE == 0 and sheet.shape[0] >= SHEET_TILE
    assert sum(name.startswith("turn_1to1_") for name in names) == 2
    assert sum(name.startswith("reenacted_by_") for name in names) == 2
