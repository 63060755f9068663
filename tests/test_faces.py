"""Faces package on real photos: detection, landmarks, AUs, pose, alignment, paste-back, AU file readers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from ganime_age.conditions import AU_NAMES, NUM_AUS
from ganime_age.errors import AnnotationError
from ganime_age.faces import (
    ALIGN_TEMPLATE,
    FaceAnalyzer,
    align_face,
    blendshapes_to_aus,
    invert_affine,
    load_image,
    paste_back,
    read_ganimation_pickle,
    read_openface_csv,
    template_points,
    transform_points,
)

AU12 = AU_NAMES.index("AU12")
# Picked by looking at candidates: two broad toothy smiles and two clearly relaxed, closed-mouth faces.
SMILING = ("28_0_3_20170105175516710", "46_0_0_20170104211749300")
NEUTRAL = ("60_0_3_20170119201822925", "35_0_0_20170117191433859")
# A woman looking clearly towards the image's right (nose right of the eye midpoint).
TURNED_RIGHT = "27_1_2_20170116163830302"


def utk(shared_dir: Path, stem: str) -> np.ndarray:
    return load_image(shared_dir / "datasets" / "utkface" / f"{stem}.jpg.chip.jpg")


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    analyzer = FaceAnalyzer()
    yield analyzer
    analyzer.close()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()  # public domain (NASA)


def test_one_face_per_utkface_crop(analyzer: FaceAnalyzer, utk_sample: list[Path]) -> None:
    for path in utk_sample[:8]:
        image = load_image(path)
        faces = analyzer.detector.detect(image)
        assert len(faces) == 1, path.name
        _, _, w, h = faces[0].box
        assert faces[0].score > 0.6
        assert 40 < w < 200 and 40 < h < 220  # a face filling much of the 200 px crop


def test_astronaut_landmarks_land_on_the_face(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    faces = analyzer.analyze(astronaut)
    assert len(faces) == 1
    face = faces[0]
    x, y, w, h = face.detection.box
    assert 120 < x + w / 2 < 320 and 40 < y + h / 2 < 220  # her face, top centre of the 512x512 photo
    points = face.detection.points
    assert points[0, 0] < points[1, 0]  # subject's right eye is on the image's left
    assert points[:2, 1].max() < points[2, 1] < points[3:, 1].min()  # eyes above nose above mouth
    assert face.landmarks is not None
    landmarks = face.landmarks.landmarks
    assert landmarks.shape == (478, 3) and landmarks.dtype == np.float32
    margin = 0.15 * max(w, h)
    inside = (
        (landmarks[:, 0] > x - margin)
        & (landmarks[:, 0] < x + w + margin)
        & (landmarks[:, 1] > y - margin)
        & (landmarks[:, 1] < y + h + margin)
    )
    assert inside.mean() > 0.95
    eye_y = landmarks[[33, 133, 362, 263], 1].mean()
    mouth_y = landmarks[[13, 14, 61, 291], 1].mean()
    assert eye_y < landmarks[1, 1] < mouth_y < landmarks[152, 1]  # eyes, nose tip, mouth, chin
    # MediaPipe's eye corners agree with YuNet's eye centres to a few pixels (the 2 models are independent).
    assert np.linalg.norm(landmarks[[33, 133], :2].mean(0) - points[0]) < 0.1 * w
    assert np.linalg.norm(landmarks[[362, 263], :2].mean(0) - points[1]) < 0.1 * w
    assert len(face.landmarks.blendshapes) == 52 and "mouthSmileLeft" in face.landmarks.blendshapes
    assert face.landmarks.matrix.shape == (4, 4)
    assert face.aus.shape == (NUM_AUS,) and face.aus.min() >= 0 and face.aus.max() <= 5
    assert np.all(np.abs(face.pose) < 30)  # a near-frontal portrait


def test_smile_raises_au12(analyzer: FaceAnalyzer, shared_dir: Path) -> None:
    smiles = [analyzer.analyze(utk(shared_dir, stem))[0].aus[AU12] for stem in SMILING]
    neutral = [analyzer.analyze(utk(shared_dir, stem))[0].aus[AU12] for stem in NEUTRAL]
    assert min(smiles) > 2.5, smiles
    assert max(neutral) < 1.0, neutral


def test_mirroring_flips_yaw(analyzer: FaceAnalyzer, shared_dir: Path) -> None:
    image = utk(shared_dir, TURNED_RIGHT)
    yaw = analyzer.analyze(image)[0].pose[0]
    mirrored_yaw = analyzer.analyze(np.ascontiguousarray(image[:, ::-1]))[0].pose[0]
    assert yaw > 10, yaw  # convention: positive yaw = face turned towards the image's right
    assert mirrored_yaw < -10, mirrored_yaw


def test_a_face_read_mirrored_is_the_face_read_directly(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    """The landmarker's retry on a mirrored crop reindexes the mesh to the face's own sides and flips it back."""
    landmarker = analyzer.landmarker
    detection = analyzer.analyze(astronaut)[0].detection
    direct = landmarker._analyze(astronaut, detection, landmarker.padding, mirrored=False)
    mirrored = landmarker._analyze(astronaut, detection, landmarker.padding, mirrored=True)
    width = float(np.ptp(direct.landmarks[:, 0]))
    gaps = np.linalg.norm(direct.landmarks[:, :2] - mirrored.landmarks[:, :2], axis=1)
    assert np.median(gaps) < 0.02 * width and gaps.max() < 0.08 * width, (np.median(gaps), gaps.max(), width)
    assert np.abs(direct.pose - mirrored.pose).max() < 4.0, (direct.pose, mirrored.pose)
    assert direct.pose[0] * mirrored.pose[0] > 0 or abs(direct.pose[0]) < 3.0  # yaw keeps its sign
    assert set(mirrored.blendshapes) == set(direct.blendshapes)


def test_faces_the_landmarker_misses_at_first_are_read(analyzer: FaceAnalyzer, shared_dir: Path) -> None:
    """A turned face cut close (UTKFace) and a blurred one: MediaPipe finds no face in the usual crop of either
    (they were refused as turned too far); the mirrored crop finds both."""
    landmarker = analyzer.landmarker
    for stem in ("22_1_1_20170112230450501", "26_0_0_20170113210127287"):
        image = utk(shared_dir, stem)
        [face] = analyzer.analyze(image)
        assert landmarker._analyze(image, face.detection, landmarker.padding, mirrored=False) is None, stem
        assert face.landmarks is not None, stem
        irises = face.landmarks.landmarks[[468, 473], :2]  # the iris centres, left to right, on YuNet's eyes
        irises, eyes = irises[np.argsort(irises[:, 0])], face.detection.points[:2]
        eyes = eyes[np.argsort(eyes[:, 0])]
        assert np.linalg.norm(irises - eyes, axis=1).max() < 0.15 * face.detection.box[2], stem


def test_roll_follows_image_rotation(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    import cv2

    face = analyzer.analyze(astronaut)[0]
    rotation = cv2.getRotationMatrix2D(face.detection.center, 20, 1.0)  # counter-clockwise on screen
    rotated = cv2.warpAffine(astronaut, rotation, astronaut.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    roll = analyzer.analyze(rotated)[0].pose[2]
    assert 10 < roll - face.pose[2] < 30


def test_alignment_puts_points_on_the_template(astronaut: np.ndarray, analyzer: FaceAnalyzer) -> None:
    points = analyzer.detector.detect(astronaut)[0].points
    for size in (128, 256):
        aligned = align_face(astronaut, points, size)
        assert aligned.image.shape == (size, size, 3) and aligned.image.dtype == np.uint8
        error = np.linalg.norm(transform_points(points, aligned.matrix) - template_points(size), axis=1)
        assert error.max() < 0.05 * size  # a similarity fits 5 points of a frontal face closely
        back = transform_points(transform_points(points, aligned.matrix), invert_affine(aligned.matrix))
        np.testing.assert_allclose(back, points, atol=1e-3)
    # the template is mirror-symmetric, so flipped crops stay aligned
    mirrored = ALIGN_TEMPLATE[[1, 0, 2, 4, 3]].copy()
    mirrored[:, 0] = 1 - mirrored[:, 0]
    np.testing.assert_allclose(mirrored, ALIGN_TEMPLATE, atol=1e-9)


def test_utkface_crops_match_the_template_framing(analyzer: FaceAnalyzer, utk_sample: list[Path]) -> None:
    """Aligning a UTKFace crop at 200 px reproduces (nearly) the same framing: the template was measured there."""
    scales = []
    for path in utk_sample[:6]:
        image = load_image(path)
        aligned = align_face(image, analyzer.detector.detect(image)[0].points, 200)
        scales.append(np.sqrt(abs(np.linalg.det(aligned.matrix[:, :2]))))
    assert 0.85 < float(np.median(scales)) < 1.15


def test_align_then_paste_back_identity(astronaut: np.ndarray, analyzer: FaceAnalyzer) -> None:
    points = analyzer.detector.detect(astronaut)[0].points
    for size in (128, 256):
        aligned = align_face(astronaut, points, size)
        restored = paste_back(astronaut, aligned.image, aligned.matrix)
        assert restored.shape == astronaut.shape and restored.dtype == np.uint8
        diff = np.abs(restored.astype(np.int16) - astronaut.astype(np.int16))
        changed = diff.max(axis=2) > 0
        assert diff.mean() < 1.0 and diff.max() < 80
        # only the face's neighbourhood is touched
        ys, xs = np.nonzero(changed)
        x, y, w, h = analyzer.detector.detect(astronaut)[0].box
        assert xs.min() > x - w and xs.max() < x + 2 * w and ys.min() > y - h and ys.max() < y + 2 * h
    # an edit shows up inside the face but fades out towards the crop border
    aligned = align_face(astronaut, points, 128)
    pasted = paste_back(astronaut, np.zeros_like(aligned.image), aligned.matrix, feather=0.2)
    centre = transform_points([[63.5, 63.5]], invert_affine(aligned.matrix))[0].round().astype(int)
    assert pasted[centre[1], centre[0]].max() < 10  # fully replaced in the middle
    corner = transform_points([[1.0, 1.0]], invert_affine(aligned.matrix))[0].round().astype(int)
    assert np.abs(pasted[corner[1], corner[0]].astype(int) - astronaut[corner[1], corner[0]].astype(int)).max() < 20


def test_group_photo_finds_every_face(analyzer: FaceAnalyzer, utk_sample: list[Path]) -> None:
    rng = np.random.default_rng(3)
    canvas = rng.integers(90, 166, size=(420, 900, 3), dtype=np.uint8)  # noisy grey background
    sizes = (40, 56, 72, 88, 104, 120)
    x = 20
    placed = []
    for path, size in zip(utk_sample[10:16], sizes, strict=True):
        face = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.LANCZOS))
        y = int(rng.integers(20, 420 - size - 20))
        canvas[y : y + size, x : x + size] = face
        placed.append((x, y, size))
        x += size + 30
    faces = analyzer.analyze(canvas)
    assert len(faces) == len(placed)
    for face, (px, py, size) in zip(faces, placed, strict=True):  # sorted left to right, like `placed`
        cx, cy = face.detection.center
        assert px < cx < px + size and py < cy < py + size
    assert [face.index for face in faces] == list(range(len(placed)))
    assert sum(face.landmarks is not None for face in faces) >= 5  # MediaPipe works on the upsampled crops


def test_frame_filling_close_ups(analyzer: FaceAnalyzer, utk_sample: list[Path]) -> None:
    """YuNet alone misses or splits faces 1000 px wide; the coarse pass + refinement find each once, accurately."""
    import cv2

    for path in utk_sample[2:5]:
        crop = load_image(path)
        native = (analyzer.detector.detect(crop)[0].points + 0.5) / 200.0
        close_up = np.asarray(Image.fromarray(crop).resize((1000, 1000), Image.BICUBIC))
        photo = cv2.copyMakeBorder(close_up, 100, 100, 100, 100, cv2.BORDER_REFLECT)
        faces = analyzer.detector.detect(photo)
        assert len(faces) == 1, path.name
        found = (faces[0].points - 100 + 0.5) / 1000.0
        assert np.abs(found - native).max() < 0.08, path.name  # same points, relative to the face


def test_analyze_without_landmarks(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    face = analyzer.analyze(astronaut, landmarks=False)[0]
    assert face.landmarks is None
    assert not face.aus.any() and not face.pose.any()
    assert face.aligned.image.shape == (128, 128, 3)


def test_blendshapes_to_aus_mapping() -> None:
    assert not blendshapes_to_aus({}).any()
    # 0.5, not a faint 0.2: on CFEE, faces coded without AU12 reach smile scores of ~0.25 (90th percentile),
    # so the calibrated read-out only counts a smile score above its rest level (~0.4) as AU12.
    weak = blendshapes_to_aus({"mouthSmileLeft": 0.5, "mouthSmileRight": 0.5})
    strong = blendshapes_to_aus({"mouthSmileLeft": 0.9, "mouthSmileRight": 0.7})
    assert strong[AU12] > weak[AU12] > 0
    assert np.count_nonzero(strong) == 1  # a smile blendshape only moves AU12
    saturated = blendshapes_to_aus(dict.fromkeys(("jawOpen", "browInnerUp", "eyeBlinkLeft", "eyeBlinkRight"), 1.0))
    assert saturated.max() == 5.0 and saturated.min() >= 0.0
    assert saturated[AU_NAMES.index("AU26")] == 5.0 and saturated[AU_NAMES.index("AU45")] == 5.0


def test_openface_csv(tmp_path: Path) -> None:
    intensity = [f" {name}_r" for name in AU_NAMES]
    presence = [f" {name}_c" for name in AU_NAMES]
    header = ["frame", " face_id", " timestamp", " confidence", " success", *intensity, *presence]
    rows = [
        [
            str(frame),
            "0",
            f"{frame * 0.04:.2f}",
            "0.98",
            "1",
            *(f"{(frame + i) % 6 * 0.5:.2f}" for i in range(NUM_AUS)),
            *("1" for _ in range(NUM_AUS)),
        ]
        for frame in range(1, 4)
    ]
    path = tmp_path / "video.csv"
    path.write_text("\n".join(", ".join(row) for row in [header, *rows]) + "\n")
    aus = read_openface_csv(path)
    assert aus.shape == (3, NUM_AUS) and aus.dtype == np.float32
    assert aus[0, 0] == pytest.approx(0.5) and aus[2, 3] == pytest.approx(((3 + 3) % 6) * 0.5)
    incomplete = tmp_path / "no_au45.csv"
    incomplete.write_text("\n".join(",".join(h for h in row if "AU45_r" not in h) for row in [header]) + "\n")
    with pytest.raises(AnnotationError, match="AU45_r"):
        read_openface_csv(incomplete)


def test_ganimation_pickle_is_opt_in(shared_dir: Path) -> None:
    path = shared_dir / "datasets" / "ganimation_sample" / "aus_openface.pkl"
    with pytest.raises(AnnotationError, match="allow_pickle=True"):
        read_ganimation_pickle(path)
    aus = read_ganimation_pickle(path, allow_pickle=True)
    assert len(aus) == 4
    for key, vector in aus.items():
        assert isinstance(key, str) and vector.shape == (NUM_AUS,)
        assert vector.min() >= 0 and vector.max() <= 5
    assert aus["N_0000000356_00190"][0] == pytest.approx(2.86, abs=0.01)


def test_landmarker_exits_quietly(models_dir: Path, tmp_path: Path) -> None:
    """MediaPipe's FaceLandmarker raises in __del__ at interpreter exit unless closed the right way."""
    script = tmp_path / "use_landmarker.py"
    script.write_text(
        textwrap.dedent(f"""
        import skimage.data
        from ganime_age.faces import FaceAnalyzer
        analyzer = FaceAnalyzer({str(models_dir / "face_detection_yunet_2023mar.onnx")!r},
                                {str(models_dir / "face_landmarker.task")!r})
        assert analyzer.analyze(skimage.data.astronaut())[0].landmarks is not None
        print("done")
    """)
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "done" in result.stdout
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_landmarker_collected_during_a_mediapipe_call_does_not_hang(models_dir: Path, tmp_path: Path) -> None:
    """The garbage collector ran a dropped analyzer's finalizer inside another landmarker's call, where mediapipe
    1.2 holds concurrent.futures' global lock: closing there took that lock again and the test suite hung for good.
    Here a collection runs at that very point (inside ThreadPoolExecutor.submit) while a dropped analyzer waits."""
    script = tmp_path / "collect_mid_call.py"
    script.write_text(
        textwrap.dedent(f"""
        import concurrent.futures.thread, gc
        import skimage.data
        from ganime_age.faces import FaceAnalyzer
        paths = ({str(models_dir / "face_detection_yunet_2023mar.onnx")!r}, {str(models_dir / "face_landmarker.task")!r})
        photo = skimage.data.astronaut()
        kept = FaceAnalyzer(*paths)
        kept.analyze(photo)
        adjust = concurrent.futures.thread.ThreadPoolExecutor._adjust_thread_count
        def collecting(executor):
            gc.collect()
            return adjust(executor)
        concurrent.futures.thread.ThreadPoolExecutor._adjust_thread_count = collecting
        for _ in range(2):
            dropped = FaceAnalyzer(*paths)
            dropped.analyze(photo)
            dropped.cycle = dropped  # only the cyclic collector frees it
            del dropped
            assert kept.analyze(photo)[0].landmarks is not None
        print("done")
    """)
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "done" in result.stdout


def test_insightface_backend_is_optional() -> None:
    """Without the optional packages the backend fails with a typed ImportError that says what to install."""
    try:
        import insightface  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("insightface is installed here")
    from ganime_age.errors import BackendNotInstalledError
    from ganime_age.faces.insightface import ARCFACE_TEMPLATE, InsightFaceDetector, norm_crop

    with pytest.raises(ImportError, match=r"ganime-age\[insightface\]") as caught:
        InsightFaceDetector()
    assert isinstance(caught.value, BackendNotInstalledError)
    # its ArcFace-style alignment needs no insightface: the 5 points land on the ArcFace template
    points = np.array([[200.0, 100.0], [250.0, 102.0], [226.0, 130.0], [205.0, 155.0], [246.0, 156.0]])
    crop = norm_crop(skimage.data.astronaut(), points, 112)
    assert crop.image.shape == (112, 112, 3)
    assert np.abs(transform_points(points, crop.matrix) - ARCFACE_TEMPLATE).max() < 4
