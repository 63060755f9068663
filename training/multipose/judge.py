"""Measure faces: analyse sources into the generation frame, and decide which generated images to keep.

An output is kept only if (checked in this order, the first failure is the recorded reason):

- ``no_face``: the detector finds a face;
- ``no_landmarks``: MediaPipe measures its landmarks (and so its head pose);
- ``pose``: its measured yaw and pitch are each within ``pose_tolerance`` degrees of the request;
- ``identity``: its MobileFaceNet embedding has cosine >= ``identity_threshold`` with the source's.

Kept outputs are relabelled with the age estimator when one is given (``age_label_source: "estimator"``);
otherwise, or with ``age_label: "source"``, they keep the source's label (``age_label_source: "source"``; the
estimator's reading, when one is loaded, is still recorded as ``age_estimated``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ganime_age.conditions import age_to_group
from ganime_age.errors import GanimeAgeError, NoFaceError
from training.prepare_data import pick_face

from .config import AugmentConfig
from .poses import FramedSource, Job, frame_matrix, landmarks_to_frame, warp_to_frame
from .sources import SourceFace

REJECT_REASONS = ("no_face", "no_landmarks", "pose", "identity")
# a source (or, for source_turn_too_large, one of its poses) that no output was made for: not counted as generated
SOURCE_REJECT_REASONS = ("source_unreadable", "source_no_face", "source_no_landmarks", "source_no_age",
                         "source_turn_too_large")  # fmt: skip


def _to_tensor(crops: list[np.ndarray]) -> Any:
    import torch

    array = np.stack(crops).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(array.transpose(0, 3, 1, 2).copy())


@dataclass
class Verdict:
    """What the filter measured on one output, and whether it is kept."""

    kept: bool
    reason: str  # "ok" or one of REJECT_REASONS
    pose_measured: list[float] | None = None
    identity: float | None = None
    age_estimated: float | None = None


@dataclass
class Outcome:
    """One job made and judged by a backend: the image, the verdict, and the backend's own record fields."""

    job: Job
    image: np.ndarray
    verdict: Verdict
    extra: dict[str, Any]


class FaceJudge:
    """Face analyser + identity recogniser (+ optional age estimator), loaded once per process."""

    def __init__(self, config: AugmentConfig, *, device: Any = None) -> None:
        import torch

        from ganime_age.faces import FaceAnalyzer
        from ganime_age.models.mobilefacenet import FaceRecognizer

        self.config = config
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.analyzer = FaceAnalyzer()
        self.recognizer = FaceRecognizer(config.recognizer).to(self.device).eval()
        self.estimator = load_estimator(config.estimator, self.device) if config.estimator else None

    # -- measurements -------------------------------------------------------------------------------------
    def embed(self, crops: list[np.ndarray]) -> Any:
        import torch

        with torch.no_grad():
            return self.recognizer.embed_aligned(_to_tensor(crops).to(self.device)).float().cpu()

    def estimate_ages(self, crops: list[np.ndarray]) -> list[float]:
        import torch

        if self.estimator is None:
            raise RuntimeError("no age estimator loaded")
        with torch.no_grad():
            ages = self.estimator.predict(_to_tensor(crops).to(self.device))
        return [float(a) for a in ages.float().cpu()]

    def analyse(self, rgb: np.ndarray) -> Any:
        """The main face of a photo (largest, most central), or raise NoFaceError."""
        faces = self.analyzer.analyze(rgb)
        return pick_face(faces, rgb.shape[1], rgb.shape[0])

    # -- sources ------------------------------------------------------------------------------------------
    def frame(self, source: SourceFace, *, reframe: bool = True) -> FramedSource | str:
        """Analyse a source photo into the generation frame (`reframe`; else it stays in its own frame and size,
        as the mesh backend turns it); a SOURCE_REJECT_REASONS string if it cannot be used."""
        try:
            rgb = source.load()
        except (GanimeAgeError, OSError):
            return "source_unreadable"
        try:
            face = self.analyse(rgb)
        except NoFaceError:
            return "source_no_face"
        if face.landmarks is None:
            return "source_no_landmarks"
        age = source.age
        if age is None:
            if self.estimator is None:
                return "source_no_age"
            age = self.estimate_ages([face.aligned.image])[0]
        if reframe:
            matrix = frame_matrix(face.detection.points, self.config.resolution, self.config.face_scale)
            image = warp_to_frame(rgb, matrix, self.config.resolution)
            landmarks = landmarks_to_frame(face.landmarks.landmarks, matrix)
        else:
            image, landmarks = rgb, np.asarray(face.landmarks.landmarks, np.float32)
        return FramedSource(
            source_id=source.source_id,
            origin=source.origin,
            age=float(age),
            image=image,
            landmarks=landmarks,
            pose=np.asarray(face.pose, np.float32),
            embedding=self.embed([face.aligned.image]),
        )

    # -- outputs ------------------------------------------------------------------------------------------
    def assess(self, image: np.ndarray, job: Job) -> Verdict:
        """Measure one generated image against its job and decide (see the module docstring)."""
        try:
            face = self.analyse(image)
        except NoFaceError:
            return Verdict(False, "no_face")
        if face.landmarks is None:
            return Verdict(False, "no_landmarks")
        measured = [round(float(v), 2) for v in face.pose]
        identity = float((self.embed([face.aligned.image]) * job.source.embedding).sum())
        verdict = Verdict(True, "ok", measured, round(identity, 4))
        if pose_error(verdict, job) > self.config.pose_tolerance:
            verdict.kept, verdict.reason = False, "pose"
        elif identity < self.config.identity_threshold:
            verdict.kept, verdict.reason = False, "identity"
        if self.estimator is not None:
            verdict.age_estimated = round(self.estimate_ages([face.aligned.image])[0], 2)
        return verdict

    def label(self, verdict: Verdict, job: Job) -> dict[str, Any]:
        """Age fields of a metadata record: the estimate when available, else the source's label."""
        if verdict.age_estimated is not None and self.config.age_label == "estimator":
            age, origin = verdict.age_estimated, "estimator"
        else:
            age, origin = round(job.source.age, 2), "source"
        return {"age": age, "age_group": age_to_group(age), "age_source": round(job.source.age, 2),
                "age_label_source": origin}  # fmt: skip


def pose_error(verdict: Verdict, job: Job) -> float:
    """The larger of the yaw and pitch misses (degrees) of a measured output; infinite where nothing was measured."""
    if verdict.pose_measured is None:
        return float("inf")
    return max(abs(verdict.pose_measured[0] - job.requested[0]), abs(verdict.pose_measured[1] - job.requested[1]))


def load_estimator(path: str, device: Any) -> Any:
    """An AgeEstimator (or any model with ``predict(images) -> ages``) from a folder or Hub id."""
    from ganime_age.hub import load_pretrained

    model = load_pretrained(path)
    if not hasattr(model, "predict"):
        raise GanimeAgeError(f"{path} holds a {type(model).__name__}, not an age estimator (no predict method)")
    return model.to(device).eval()
