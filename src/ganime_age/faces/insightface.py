"""Optional InsightFace backend: SCRFD detection and ArcFace embeddings behind the FaceDetector interface.

Install with ``pip install "ganime-age[insightface]"``. It is optional because the ``insightface``
package depends on ``opencv-python``, which overwrites the ``cv2`` of ``opencv-contrib-python`` that
MediaPipe and this package use; install it in a separate environment if you can. Nothing here is
imported by ``ganime_age.faces``; the ``insightface`` package itself is imported only when a backend
object is created.

Models come from a local model root (``<root>/models/<name>/*.onnx``, e.g. InsightFace's ``buffalo_l``
pack), never downloaded implicitly: their licence (non-commercial research) must be accepted by you.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ganime_age.errors import BackendNotInstalledError, ModelFileNotFoundError
from ganime_age.faces.align import AlignedFace, similarity_transform
from ganime_age.faces.detect import DetectedFace

ROOT_ENV = "GANIME_AGE_INSIGHTFACE_ROOT"

# ArcFace's 5-point template for 112x112 crops (cv2 pixel coordinates), the one insightface's
# `norm_crop` uses; same point order as YuNet (image-left eye first).
ARCFACE_TEMPLATE: np.ndarray = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def _require_insightface() -> Any:
    try:
        import insightface  # the top-level package, not this module (absolute import)
    except ImportError as error:
        raise BackendNotInstalledError(
            "the InsightFace backend needs the 'insightface' and 'onnxruntime' packages: "
            "pip install 'ganime-age[insightface]' (note: insightface pulls opencv-python, which replaces "
            "the cv2 of opencv-contrib-python; prefer a separate environment). The default YuNet + MediaPipe "
            "backend needs neither."
        ) from error
    return insightface


def norm_crop(rgb: np.ndarray, points5: np.ndarray, size: int = 112) -> AlignedFace:
    """ArcFace-style alignment (like insightface's ``norm_crop``): similarity to ARCFACE_TEMPLATE at `size`."""
    if size % 112 == 0:
        dst = ARCFACE_TEMPLATE * (size / 112.0)
    else:  # insightface's rule for other sizes: scale as for 128 and shift right by 8 px (at 128)
        ratio = size / 128.0
        dst = ARCFACE_TEMPLATE * ratio + np.array([8.0 * ratio, 0.0])
    matrix = similarity_transform(np.asarray(points5, np.float64).reshape(5, 2), dst)
    image = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return AlignedFace(image=image, matrix=matrix, size=size)


class InsightFaceDetector:
    """SCRFD faces + ArcFace embeddings through ``insightface.app.FaceAnalysis``; a FaceDetector drop-in.

    ``detect(rgb)`` returns :class:`DetectedFace` objects (same contract as :class:`FaceDetector`), so it
    can be passed as ``FaceAnalyzer(detector=...)``; ``embed(rgb, face)`` gives the 512-d ArcFace embedding.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        name: str = "buffalo_l",
        *,
        det_size: tuple[int, int] = (640, 640),
        score_threshold: float = 0.5,
        providers: list[str] | None = None,
    ) -> None:
        _require_insightface()
        from insightface.app import FaceAnalysis

        root = Path(root or os.environ.get(ROOT_ENV) or Path.home() / ".insightface").expanduser()
        model_dir = root / "models" / name
        if not model_dir.is_dir() or not any(model_dir.glob("*.onnx")):
            raise ModelFileNotFoundError(
                f"no InsightFace model pack at {model_dir}: put the '{name}' .onnx files there "
                f"(or pass root= / set {ROOT_ENV}); they are not downloaded automatically"
            )
        self.app = FaceAnalysis(
            name=name,
            root=str(root),
            allowed_modules=["detection", "recognition"],
            providers=providers or ["CPUExecutionProvider"],
        )
        self.app.prepare(ctx_id=-1, det_thresh=float(score_threshold), det_size=tuple(det_size))
        self._recognizer = self.app.models.get("recognition")

    def _faces(self, rgb: np.ndarray) -> list[Any]:
        return self.app.get(np.ascontiguousarray(rgb[..., ::-1]))

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """All faces, sorted left to right, in the FaceDetector format (insightface's kps share YuNet's order)."""
        faces = []
        for face in self._faces(rgb):
            x1, y1, x2, y2 = (float(v) for v in face.bbox)
            faces.append(
                DetectedFace(
                    box=np.array([x1, y1, x2 - x1, y2 - y1], np.float32),
                    points=np.asarray(face.kps, np.float32).reshape(5, 2),
                    score=float(face.det_score),
                )
            )
        faces.sort(key=lambda face: face.center[0])
        return faces

    def embed(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        """L2-normalised ArcFace embedding (512,) of one detected face."""
        if self._recognizer is None:
            raise ModelFileNotFoundError("the InsightFace model pack has no recognition model")
        crop = norm_crop(rgb, face.points, 112).image
        feature = np.asarray(self._recognizer.get_feat(crop[..., ::-1]), np.float32).reshape(-1)
        return feature / max(float(np.linalg.norm(feature)), 1e-12)
