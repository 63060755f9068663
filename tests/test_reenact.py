"""Reenactment: shape transfer, the classical warp, the Reenactor, its training system, the user entry points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganime_age.editing import OneEuroFilter
from ganime_age.errors import FaceIndexError, NoFaceError, VideoError, WeightsError
from ganime_age.face_model import canonical_face, head_pose
from ganime_age.faces import FaceAnalyzer, load_image, transform_points
from ganime_age.hub import load_pretrained
from ganime_age.models.reenact import (
    HEATMAP_GROUPS,
    ReenactDiscriminator,
    Reenactor,
    ShapeTransfer,
    ShapeTransferConfig,
    identity_grid,
    landmark_tps_grid,
    render_heatmaps,
)
from ganime_age.warp import warp_face

TINY = {
    "image_size": 32,
    "conv_dim": 8,
    "num_residual_blocks": 1,
    "motion_size": 16,
    "motion_dim": 8,
    "motion_depth": 2,
    "max_motion_channels": 32,
}
TINY_D = {"image_size": 32, "conv_dim": 8, "num_layers": 3, "max_channels": 32, "heatmap_size": 16}


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer()


@pytest.fixture(scope="module")
def faces(utk_sample: list[Path], analyzer: FaceAnalyzer) -> list[tuple[Path, np.ndarray, object]]:
    """(path, rgb, FaceAnalysis) of the first 24 sample faces with landmarks."""
    out = []
    for path in utk_sample[:30]:
        rgb = load_image(path)
        found = analyzer.analyze(rgb)
        if found[0].landmarks is not None:
            out.append((path, rgb, found[0]))
    assert len(out) >= 20
    return out[:24]


def ratios(points: np.ndarray) -> np.ndarray:
    """Identity ratios on rigid parts, from 3D distances (rotation-invariant)."""

    def d(a: int, b: int) -> float:
        return float(np.linalg.norm(points[a] - points[b]))

    return np.array([d(33, 263) / d(168, 1), d(234, 454) / d(10, 1), d(133, 362) / d(33, 263)])


# -- canonical face and shape transfer ------------------------------------------------------------------


def test_canonical_face_is_read_from_the_landmarker_task(faces: list) -> None:
    face = canonical_face()
    assert face.vertices.shape == (468, 3) and face.triangles.shape == (898, 3)
    assert len(face.rigid_indices) == 33 and abs(face.rigid_weights.sum() - 1) < 1e-9
    assert face.vertices[1, 2] < face.vertices[234, 2]  # nose tip nearer the camera than the cheek edge (z away)
    # the landmark-only pose agrees with MediaPipe's matrix pose (perspective makes pitch differ a little)
    for _, _, analysis in faces[:10]:
        estimate = head_pose(analysis.landmarks.landmarks)
        assert abs(estimate[0] - analysis.pose[0]) < 5 and abs(estimate[2] - analysis.pose[2]) < 3
        assert abs(estimate[1] - analysis.pose[1]) < 7


@pytest.mark.parametrize("rotation", ["landmarks", "matrix"])
def test_shape_transfer_keeps_source_shape_and_takes_driver_pose(faces: list, rotation: str) -> None:
    transfer = ShapeTransfer(ShapeTransferConfig(rotation=rotation, max_turn_degrees=180.0))
    checked = 0
    for i in range(len(faces) - 1):
        src, drv = faces[i][2].landmarks, faces[i + 1][2].landmarks
        target = transfer(src, drv)
        assert target.shape == (478, 3) and target.dtype == np.float32
        r_src, r_drv, r_out = ratios(src.landmarks), ratios(drv.landmarks), ratios(target)
        differs = np.abs(r_drv - r_src) / r_src > 0.04
        # where the two faces differ, the output keeps the source's proportions, not the driver's
        assert np.all(np.abs(r_out - r_src)[differs] / r_src[differs] < 0.015)
        assert np.all(np.abs(r_out - r_src)[differs] < np.abs(r_out - r_drv)[differs])
        checked += int(differs.any())
        pose_error = np.abs(head_pose(target) - head_pose(drv.landmarks))
        assert pose_error.max() < (1.0 if rotation == "landmarks" else 6.0), pose_error
        # placement: the face turns on the spot, where the source's face is in the source photo
        centre_shift = np.linalg.norm(target[:, :2].mean(0) - src.landmarks[:, :2].mean(0))
        assert centre_shift < 0.1 * np.ptp(src.landmarks[:, 0])
    assert checked >= 10


def test_shape_transfer_limits_large_turns(faces: list) -> None:
    from ganime_age.face_model import head_similarity, rotation_angle

    by_yaw = sorted(faces, key=lambda f: f[2].pose[0])
    src, drv = by_yaw[0][2].landmarks, by_yaw[-1][2].landmarks
    full = rotation_angle(head_similarity(drv.landmarks).rotation @ head_similarity(src.landmarks).rotation.T)
    assert full > 30
    target = ShapeTransfer(ShapeTransferConfig(max_turn_degrees=20.0))(src, drv)
    turned = head_similarity(target).rotation @ head_similarity(src.landmarks).rotation.T
    assert rotation_angle(turned) == pytest.approx(20.0, abs=1.0)
    # on the way to the driver: the rest of the turn is what is left
    remaining = head_similarity(drv.landmarks).rotation @ head_similarity(target).rotation.T
    assert rotation_angle(remaining) == pytest.approx(full - 20.0, abs=1.5)


def test_shape_transfer_moves_expression_regions_only(faces: list) -> None:
    by_mouth = sorted(faces, key=lambda f: f[2].landmarks.blendshapes["jawOpen"])
    closed, opened = by_mouth[0][2].landmarks, by_mouth[-1][2].landmarks
    assert opened.blendshapes["jawOpen"] - closed.blendshapes["jawOpen"] > 0.1

    def lip_gap(points: np.ndarray) -> float:  # inner-lip gap relative to the eye-to-nose distance
        return float(np.linalg.norm(points[13] - points[14]) / np.linalg.norm(points[168] - points[1]))

    transfer = ShapeTransfer()
    target = transfer(closed, opened)
    assert abs(lip_gap(target) - lip_gap(opened.landmarks)) < abs(lip_gap(target) - lip_gap(closed.landmarks))
    # expression_scale 0 keeps the source's mouth exactly (only the pose changes)
    still = ShapeTransfer(ShapeTransferConfig(expression_scale=0.0))(closed, opened)
    assert lip_gap(still) == pytest.approx(lip_gap(closed.landmarks), rel=0.02)
    # the gates close when source and driver show the same expression
    assert np.allclose(transfer.gates(closed.blendshapes, closed.blendshapes), 0.0)


# -- classical warp ------------------------------------------------------------------------------------------


def test_classical_warp_turns_the_head_in_the_pixels(faces: list, analyzer: FaceAnalyzer) -> None:
    by_yaw = sorted(faces, key=lambda f: f[2].pose[0])
    middle = by_yaw[len(by_yaw) // 2]
    transfer = ShapeTransfer()
    for driver in (by_yaw[0], by_yaw[-1]):
        src, drv = middle[2], driver[2]
        assert abs(src.pose[0] - drv.pose[0]) > 10
        out = warp_face(middle[1], src.landmarks.landmarks, transfer(src.landmarks, drv.landmarks))
        assert out.shape == middle[1].shape and out.dtype == np.uint8
        measured = analyzer.analyze(out)[0].pose
        assert abs(measured[0] - drv.pose[0]) < 0.5 * abs(src.pose[0] - drv.pose[0])
    # the same landmarks give back the same photo
    same = warp_face(middle[1], middle[2].landmarks.landmarks, middle[2].landmarks.landmarks)
    assert np.abs(same.astype(int) - middle[1].astype(int)).mean() < 1.5


# -- the generator --------------------------------------------------------------------------------------------


def aligned_batch(faces: list, count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned crops (N, 3, size, size) in [-1, 1] and their landmarks (N, 478, 2) in crop pixels."""
    images, points = [], []
    for _, _, analysis in faces[:count]:
        crop = analysis.aligned.image  # 128 px
        lm = transform_points(analysis.landmarks.landmarks[:, :2], analysis.aligned.matrix)
        if size != crop.shape[0]:
            lm = (lm + 0.5) * size / crop.shape[0] - 0.5
            crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BICUBIC))
        images.append(crop)
        points.append(lm)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x, torch.from_numpy(np.stack(points)).float()


def test_heatmaps_peak_at_the_landmarks(faces: list) -> None:
    _, points = aligned_batch(faces, 2, 128)
    maps = render_heatmaps(points, 128, 64)
    assert maps.shape == (2, len(HEATMAP_GROUPS), 64, 64) and float(maps.max()) <= 1.0
    iris = [name for name, _ in HEATMAP_GROUPS].index("irises")
    for n in range(2):
        row, col = divmod(int(maps[n, iris].argmax()), 64)
        iris_points = (points[n, 468:478] + 0.5) / 2 - 0.5  # in heatmap pixels
        assert float(torch.hypot(iris_points[:, 0] - col, iris_points[:, 1] - row).min()) < 0.8
        assert float(maps[n, iris, row, col]) > 0.6


def test_reenactor_shapes_and_landmark_prior(faces: list) -> None:
    x, points = aligned_batch(faces, 2, 128)
    torch.manual_seed(0)
    model = Reenactor().eval()
    with torch.no_grad():
        moved = points.clone()
        moved[:, :, 0] += 6.0
        out = model(x, points, moved)
        assert out.image.shape == x.shape and out.warped.shape == x.shape
        assert out.grid.shape == (2, 64, 64, 2) and out.occlusion.shape == (2, 1, 64, 64)
        assert out.attention.shape == (2, 1, 128, 128)
        assert out.image.min() >= -1 and out.image.max() <= 1
        # untrained, the motion is the landmark spline: a 6 px shift to the right reads 6 px to the left
        shift = (out.grid - identity_grid(2, 64, 64))[:, 24:40, 24:40, 0].mean() * 64
        assert float(shift) == pytest.approx(-6.0, abs=0.5)
        same = model(x, points, points)
        assert torch.allclose(same.warped, x, atol=1e-4)
    critic = ReenactDiscriminator().eval()
    assert critic(x, points).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError):
        model(x, points[:, :100], points)


def test_reenactor_save_load_round_trip(tmp_path: Path, faces: list) -> None:
    x, points = aligned_batch(faces, 2, 32)
    torch.manual_seed(1)
    model = Reenactor(TINY).eval()
    with torch.no_grad():
        reference = model(x, points, points.flip(0)).image
    model.save_pretrained(tmp_path / "fp32")
    config = json.loads((tmp_path / "fp32" / "config.json").read_text())
    assert config["model_type"] == "reenactor" and config["motion_size"] == 16
    loaded = load_pretrained(tmp_path / "fp32")
    assert isinstance(loaded, Reenactor)
    with torch.no_grad():
        assert torch.equal(loaded(x, points, points.flip(0)).image, reference)
    model.save_pretrained(tmp_path / "fp16", dtype=torch.float16)
    half = load_pretrained(tmp_path / "fp16", role="reenactor")
    with torch.no_grad():
        assert (half(x, points, points.flip(0)).image - reference).abs().max() < 0.05
    critic = ReenactDiscriminator(TINY_D)
    critic.save_pretrained(tmp_path / "critic")
    assert isinstance(load_pretrained(tmp_path / "critic"), ReenactDiscriminator)
    with pytest.raises(WeightsError):  # a critic is not a reenactor
        load_pretrained(tmp_path / "critic", role="reenactor")
    with pytest.raises(WeightsError):  # strict: another size does not load
        Reenactor.from_pretrained(str(tmp_path / "fp32"), config={**TINY, "conv_dim": 16})


# -- training -------------------------------------------------------------------------------------------------


def build_system(**overrides: object):
    from accelerate import Accelerator

    from ganime_age.config import apply_overrides, from_dict, load_yaml
    from training.systems.base import TrainConfig
    from training.systems.reenact import ReenactSystem, ReenactSystemConfig

    raw = apply_overrides(
        load_yaml(Path(__file__).parents[1] / "training/configs/reenact_tiny.yaml"),
        [f"{k}={v}" for k, v in overrides.items()],
    )
    system = ReenactSystem(
        from_dict(ReenactSystemConfig, raw["system"]), from_dict(TrainConfig, raw["train"]), Accelerator(cpu=True)
    )
    system.build()
    return system


def test_random_pairs_move_landmarks_with_the_pixels(faces: list) -> None:
    from training.systems.reenact import WarpConfig, random_pairs

    x, points = aligned_batch(faces, 6, 128)
    source, source_points = random_pairs(x, points, WarpConfig(), torch.Generator().manual_seed(0))
    assert source.shape == x.shape and source_points.shape == points.shape
    assert (source - x).abs().mean() > 0.05  # it did move
    # warping the source back along its landmarks recovers most of the original
    back = F.grid_sample(
        source, landmark_tps_grid(source_points, points, 128, 128), padding_mode="border", align_corners=False
    )
    assert (back - x).abs().mean() < 0.7 * (source - x).abs().mean()


def test_training_steps_lower_the_loss(faces: list, tmp_path: Path) -> None:
    system = build_system(**{"system.lambda_id": 0, "system.lambda_adv": 0.1})
    x, points = aligned_batch(faces, 8, 32)
    batch = {"image": x, "landmarks": points}
    history = []
    for step in range(24):
        torch.manual_seed(123)  # the same pairs every step: a fixed batch
        logs = system.training_step(batch, step)
        history.append(float(logs["g_l1"]))
        assert np.isfinite(float(logs["d_loss"]))
    assert np.mean(history[-5:]) < 0.85 * np.mean(history[:5]), history
    grid = system.sample_grid({"image": x[:2], "landmarks": points[:2]})
    assert grid.size[0] > 7 * 32
    system.export(tmp_path / "export", {"trained_on": "a test batch"})
    assert isinstance(load_pretrained(tmp_path / "export", role="reenactor"), Reenactor)
    assert "UTKFace" in (tmp_path / "export" / "README.md").read_text()


def test_identity_loss_runs(faces: list) -> None:
    system = build_system(**{"system.lambda_adv": 0})
    x, points = aligned_batch(faces, 2, 32)
    logs = system.training_step({"image": x, "landmarks": points}, 0)
    assert "g_id" in logs and 0.0 <= float(logs["g_id"]) <= 2.0


# -- the user entry points --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def editor():
    """A FaceEditor: the embedded engine, a small *fresh* GANimation-age refiner on top, the embedded estimator."""
    from ganime_age.editing import DEFAULT_ESTIMATOR_DIR, EditorConfig, FaceEditor
    from ganime_age.hub import load_pretrained
    from ganime_age.models.ganimation_age import GanimationAge, GanimationAgeConfig

    torch.manual_seed(0)
    config = GanimationAgeConfig(image_size=32, conv_dim=8, num_residual_blocks=1, age_embedding_dim=8, refiner=True)
    estimator = load_pretrained(DEFAULT_ESTIMATOR_DIR)
    return FaceEditor(GanimationAge(config).eval(), age_estimator=estimator, config=EditorConfig(device="cpu"))


def test_reenact_returns_a_full_size_photo(faces: list, editor, tmp_path: Path) -> None:
    (src_path, src_rgb, _), (drv_path, _, _) = faces[0], faces[5]
    wide = np.concatenate([src_rgb, np.full((200, 120, 3), 200, np.uint8)], axis=1)  # not square, face off-centre
    engine = editor.reenactment
    assert engine.method == "warp"
    out = engine.image(wide, drv_path, age=60)
    assert out.size == (320, 200)
    changed = np.abs(np.asarray(out).astype(int) - wide.astype(int))
    assert changed[:, :200].mean() > 2 and changed[:, 280:].max() == 0  # the face changed, far background not
    # without an age estimator, age=None keeps the age (an age asks for the estimator), the pose still moves
    from ganime_age.editing import EditorConfig, FaceEditor
    from ganime_age.errors import ModelFileNotFoundError

    bare = FaceEditor(editor.model, analyzer=editor.analyzer, config=EditorConfig(device="cpu")).reenactment
    kept = np.asarray(bare.image(wide, drv_path))
    assert kept.shape == wide.shape and np.abs(kept.astype(int) - wide.astype(int)).mean() > 0.5
    with pytest.raises(ModelFileNotFoundError, match="no age estimator"):
        bare.image(wide, drv_path, age=60)
    # the learned path: a (tiny, untrained) reenactor redraws the aligned face, pasted back full size
    torch.manual_seed(0)
    learned = FaceEditor(
        editor.model, age_estimator=editor.age_estimator, reenactor=Reenactor(TINY), config=editor.config
    ).reenactment
    assert learned.method == "learned"
    assert learned.image(src_path, drv_path, age=30, aus_scale=0.5).size == (200, 200)
    # through FaceEditor: a reenactor folder given to from_pretrained is the learned path
    from ganime_age.editing import FaceEditor

    Reenactor(TINY).save_pretrained(tmp_path / "reenactor")
    loaded = FaceEditor.from_pretrained(device="cpu", reenactor=tmp_path / "reenactor")
    assert loaded.reenactment.method == "learned"
    assert loaded.reenact(src_path, drv_path).size == (200, 200)
    assert editor.reenact(src_path, drv_path, age=40, driving_face=0).size == (200, 200)


def test_reenact_takes_the_source_age_the_user_gives(faces: list, editor) -> None:
    """source_age= (the CLI's --from-age) sets the age change from the user's age, not the estimate: with it, an
    editor without an estimator can age a reenactment, and giving the estimate itself changes nothing."""
    from ganime_age.editing import EditorConfig, FaceEditor

    src, drv = faces[0][0], faces[5][0]
    estimate = editor.estimate_age(src, face=0)
    as_estimated = np.asarray(editor.reenact(src, drv, age=70))
    np.testing.assert_array_equal(np.asarray(editor.reenact(src, drv, age=70, source_age=estimate)), as_estimated)
    younger_source = np.asarray(editor.reenact(src, drv, age=70, source_age=max(estimate - 25.0, 0.0)))
    assert np.abs(younger_source.astype(int) - as_estimated.astype(int)).mean() > 0.3  # a larger change
    bare = FaceEditor(editor.model, analyzer=editor.analyzer, config=EditorConfig(device="cpu"))
    np.testing.assert_array_equal(np.asarray(bare.reenact(src, drv, age=70, source_age=estimate)), as_estimated)
    with pytest.raises(ValueError, match="source_age"):
        editor.reenact(src, drv, age=70, source_age=140)


def test_a_driver_turned_past_the_heads_reach_is_followed_as_far_as_it_can_be_with_a_note(
    shared_dir: Path, analyzer: FaceAnalyzer, editor
) -> None:
    """The source turned 35 degrees one way, the driver the same face mirrored (turned as far the other way): the
    head turns as far as it can, reads turned by about that much, and a TurnBeyondReachWarning says so; a driver
    within reach gets no note."""
    import warnings

    from ganime_age.errors import TurnBeyondReachWarning
    from ganime_age.face_model import head_pose

    path = shared_dir / "datasets" / "utkface" / "26_1_2_20170117201411430.jpg.chip.jpg"
    rgb = load_image(path)
    analysis = analyzer.analyze(rgb)[0]
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    wanted = 2.0 * abs(float(head_pose(analysis.landmarks.landmarks)[0]))
    reach = editor.reenactment.shape.config.max_turn_degrees
    assert wanted > reach + 20.0, wanted
    with pytest.warns(TurnBeyondReachWarning, match="as far as it can be"):
        out = np.asarray(editor.reenact(rgb, mirrored))
    turned = editor.analyze(out)[0].landmarks.landmarks
    reached = abs(float(head_pose(turned)[0] - head_pose(analysis.landmarks.landmarks)[0]))
    assert 0.5 * reach < reached < wanted - 20.0, (reached, reach, wanted)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TurnBeyondReachWarning)
        editor.reenact(rgb, path)  # the face's own pose: no turn


def test_reenact_odd_inputs(faces: list, editor, tmp_path: Path) -> None:
    engine = editor.reenactment
    src = faces[0][0]
    landscape = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (160, 1, 3))
    with pytest.raises(NoFaceError, match="driving image"):
        engine.image(src, landscape)
    with pytest.raises(NoFaceError):
        engine.image(landscape, src)
    with pytest.raises(FaceIndexError):
        engine.image(src, faces[1][0], face=3)
    with pytest.raises(ValueError):
        engine.image(src, faces[1][0], aus_scale=-1)
    with pytest.raises(VideoError, match="mp4"):
        engine.video(src, tmp_path / "x.mp4", tmp_path / "out.gif")


def write_driving_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """Written with imageio's own writer, independent of ganime_age.video."""
    import imageio.v2 as imageio

    with imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)


def test_reenact_video_has_one_frame_per_driving_frame(
    faces: list, editor, tmp_path: Path, audio_only_video: Path
) -> None:
    import imageio.v2 as imageio

    frames = [faces[i][1] for i in range(1, 10)]
    frames.insert(4, np.full_like(frames[0], 90))  # a frame without a face repeats the last pose
    driving = tmp_path / "driving.mp4"
    write_driving_video(driving, frames)
    seen: list[float] = []
    engine = editor.reenactment
    out = engine.video(
        faces[0][0],
        driving,
        tmp_path / "out" / "reenacted.mp4",
        age=50,
        progress=lambda fraction, _: seen.append(fraction),
        show_progress_bar=False,
    )
    with imageio.get_reader(out, format="FFMPEG") as reader:
        decoded = [frame for frame in reader]
    assert len(decoded) == 10 and decoded[0].shape == (200, 200, 3)
    assert seen[-1] == pytest.approx(1.0) and len(seen) == 10
    # no face in any frame: a clear error and no half-written file
    blank = tmp_path / "blank.mp4"
    write_driving_video(blank, [np.full((64, 64, 3), 90, np.uint8)] * 3)
    with pytest.raises(NoFaceError, match="any frame"):
        engine.video(faces[0][0], blank, tmp_path / "none.mp4", age=40, show_progress_bar=False)
    assert not (tmp_path / "none.mp4").exists()
    # not a video / a video without frames
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(VideoError):
        engine.video(faces[0][0], tmp_path / "text.mp4", tmp_path / "o.mp4")
    with pytest.raises(VideoError):
        engine.video(faces[0][0], audio_only_video, tmp_path / "o.mp4")
    with pytest.raises(VideoError, match="still image"):
        engine.video(faces[0][0], faces[1][0], tmp_path / "o.mp4")


def _pcm(path: Path) -> np.ndarray:
    """A video's audio decoded to 16 kHz mono samples by ffmpeg itself (independent of ganime_age.video)."""
    import subprocess

    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-vn", "-ac", "1"]
    command += ["-ar", "16000", "-f", "s16le", "-"]
    return np.frombuffer(subprocess.run(command, capture_output=True, check=True).stdout, np.int16)


def test_reenact_video_keeps_the_drivers_audio_and_frame_rate(faces: list, editor, tmp_path: Path) -> None:
    import subprocess

    import imageio.v2 as imageio
    import imageio_ffmpeg

    from ganime_age.video import has_audio, probe_video

    silent = tmp_path / "silent.mp4"
    write_driving_video(silent, [faces[i][1] for i in range(1, 7)], fps=12)
    driving = tmp_path / "driving.mp4"  # the same frames with a 440 Hz tone
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(silent), "-f", "lavfi"]
    command += ["-i", "sine=frequency=440:sample_rate=16000", "-map", "0:v", "-map", "1:a", "-c:v", "copy"]
    command += ["-c:a", "aac", "-shortest", str(driving)]
    subprocess.run(command, check=True)
    assert has_audio(driving) and not has_audio(silent)
    out = editor.reenactment.video(faces[0][0], driving, tmp_path / "out.mp4", show_progress_bar=False)
    assert has_audio(out)
    assert probe_video(out).fps == pytest.approx(12.0)
    with imageio.get_reader(out, format="FFMPEG") as reader:
        assert len([frame for frame in reader]) == 6
    # the tone itself: as long as the frames (0.5 s), its energy at 440 Hz
    sound = _pcm(out).astype(np.float64)
    assert abs(len(sound) / 16000 - 0.5) < 0.1
    spectrum = np.abs(np.fft.rfft(sound))
    assert abs(np.fft.rfftfreq(len(sound), 1 / 16000)[spectrum.argmax()] - 440.0) < 10.0
    # a silent driver gives a silent video, written all the same
    quiet = editor.reenactment.video(faces[0][0], silent, tmp_path / "quiet.mp4", show_progress_bar=False)
    assert not has_audio(quiet) and probe_video(quiet).fps == pytest.approx(12.0)


def test_cli_reenact(faces: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ganime_age.cli import main

    out = tmp_path / "out.png"
    assert main(["reenact", str(faces[0][0]), str(faces[3][0]), "--age", "60", "-o", str(out)]) == 0
    assert Image.open(out).size == (200, 200) and "wrote" in capsys.readouterr().out
    corrected = tmp_path / "corrected.png"
    argv = ["reenact", str(faces[0][0]), str(faces[3][0]), "--age", "60", "--from-age", "20", "-o", str(corrected)]
    assert main(argv) == 0 and not np.array_equal(np.asarray(Image.open(corrected)), np.asarray(Image.open(out)))
    with pytest.raises(SystemExit):
        main(["reenact", str(faces[0][0]), str(faces[3][0]), "--from-age", "-1", "-o", str(corrected)])
    assert "--from-age must be between 0 and 100" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 120), (90, 90, 90)).save(blank)
    assert main(["reenact", str(faces[0][0]), str(blank), "-o", str(tmp_path / "x.png")]) == 2
    assert "no face" in capsys.readouterr().err.lower()
    with pytest.raises(SystemExit):  # a photo driver cannot make a video
        main(["reenact", str(faces[0][0]), str(faces[3][0]), "-o", str(tmp_path / "x.mp4")])


def test_evaluation_script_on_real_faces(utk_sample: list[Path], tmp_path: Path) -> None:
    from training.evaluate import main

    photos = tmp_path / "photos"
    photos.mkdir()
    for path in utk_sample[10:16]:
        (photos / path.name).symlink_to(path)
    out = tmp_path / "eval.json"
    argv = ["reenact", "--photos", str(photos), "--max-faces", "5", "--device", "cpu", "--json", str(out)]
    assert main([*argv, "--markdown", str(tmp_path / "eval.md")]) == 0
    result = json.loads(out.read_text())
    assert result["faces"] == 5 and result["method"] == "warp"
    self_re = result["self_reenactment"]
    assert self_re["method"]["face_l1"] < self_re["noop"]["face_l1"]  # the warp moves towards the driver
    cross = result["cross_identity"]
    assert cross["method"]["yaw_error"] < cross["noop"]["yaw_error"]
    assert cross["method"]["identity_cosine"] > cross["noop"]["identity_cosine"]
    assert "Cross-identity" in (tmp_path / "eval.md").read_text()


def test_one_euro_filter_smooths_jitter_but_follows_motion() -> None:
    rng = np.random.default_rng(0)
    still = OneEuroFilter(fps=25)
    out = np.array([still(np.array([1.0]) + rng.normal(0, 0.01, 1)) for _ in range(100)])
    assert out[20:].std() < 0.5 * 0.01
    moving = OneEuroFilter(fps=25)
    ramp = np.array([moving(np.array([t / 25.0]))[0] for t in range(100)])  # 1 face unit per second
    assert abs(ramp[-1] - 99 / 25.0) < 0.1


# -- the Space tab ----------------------------------------------------------------------------------------------


def test_space_reenactment_endpoints(space_url: str) -> None:
    from gradio_client import Client, handle_file

    from ganime_age.video import probe_video

    examples = Path(__file__).resolve().parents[1] / "space" / "examples"
    client = Client(space_url, verbose=False, analytics_enabled=False)
    source, driver, result, note = client.predict(
        handle_file(str(examples / "astronaut.jpg")),
        "0",
        "default",
        handle_file(str(examples / "cameraman.jpg")),
        True,
        70,
        1.0,
        api_name="/reenact",
    )
    before, after = np.asarray(Image.open(source).convert("RGB")), np.asarray(Image.open(result).convert("RGB"))
    assert before.shape == after.shape == (512, 512, 3) and Image.open(driver).size == (512, 512)
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 8
    ys, xs = np.nonzero(changed)
    assert changed.mean() > 0.005 and 120 < np.median(xs) < 330 and 20 < np.median(ys) < 260  # on the face
    assert "turned in 3-D" in note
    _, video, _ = client.predict(
        handle_file(str(examples / "cameraman.jpg")),
        "0",
        "default",
        handle_file(str(examples / "astronaut-turning.mp4")),
        False,
        70,
        1.0,
        api_name="/reenact_video",
    )
    info = probe_video(video)
    assert info.frames == probe_video(examples / "astronaut-turning.mp4").frames == 24 and info.size == (512, 512)
