"""From a source photo to generation jobs: frame the face, re-pose its 3D landmarks, draw the conditioning.

The ControlNet backend's generation frame is the project's aligned-face framing (``ALIGN_TEMPLATE``) shrunk by
``face_scale`` so SD sees some hair and background around the face, at the generation resolution. The source's
MediaPipe landmarks are carried into that frame (x, y by the similarity warp, z by its scale), turned to each
requested head pose about the face centre, projected orthographically and drawn. The mesh backend keeps the
photo's own frame and needs no drawing (``condition=None``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ganime_age.conditions import AGE_GROUP_LABELS, age_to_group
from ganime_age.faces.align import ALIGN_TEMPLATE, affine_scale, similarity_transform, transform_points
from ganime_age.faces.mesh import FACE_OVAL, draw_condition, project_orthographic, turn_face

from .config import AugmentConfig, pose_tag


@dataclass
class FramedSource:
    """A source face analysed and warped into the generation frame."""

    source_id: str
    origin: str
    age: float
    image: np.ndarray  # (H, W, 3) uint8: the source in its frame ((R, R, 3) for ControlNet, the photo for mesh)
    landmarks: np.ndarray  # (478, 3) float32 in frame pixels
    pose: np.ndarray  # (3,) yaw, pitch, roll degrees as measured by the landmarker
    embedding: Any  # (1, D) identity embedding of the source's aligned crop (torch tensor)


@dataclass
class Job:
    """One image to generate: a source at a requested pose."""

    key: str  # "<source_id>_<pose tag>": output name and resumption key
    source: FramedSource
    requested: tuple[float, float, float]  # yaw, pitch, roll degrees the output should show
    seed: int
    prompt: str
    negative_prompt: str
    control: np.ndarray | None  # (R, R, 3) uint8 conditioning drawing (None for the mesh backend)
    mask: np.ndarray | None = None  # (R, R) uint8 inpainting mask (255 = regenerate)


def frame_matrix(points5: np.ndarray, resolution: int, face_scale: float) -> np.ndarray:
    """(2,3) similarity from photo pixels to the generation frame (aligned framing, face shrunk by face_scale)."""
    template = (ALIGN_TEMPLATE - 0.5) * float(face_scale) + 0.5
    return similarity_transform(points5, template * resolution - 0.5)


def warp_to_frame(rgb: np.ndarray, matrix: np.ndarray, resolution: int) -> np.ndarray:
    """Warp a photo into the frame; blur first when shrinking so the frame does not alias."""
    scale = affine_scale(matrix)
    source = cv2.GaussianBlur(rgb, (0, 0), sigmaX=0.5 / scale) if scale < 0.6 else rgb
    return cv2.warpAffine(
        source, matrix, (resolution, resolution), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def landmarks_to_frame(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (478,3) photo-pixel landmarks into the frame: x, y by the warp, depth by its uniform scale."""
    out = np.empty_like(np.asarray(landmarks, np.float32))
    out[:, :2] = transform_points(landmarks[:, :2], matrix)
    out[:, 2] = landmarks[:, 2] * affine_scale(matrix)
    return out


def item_seed(base_seed: int, key: str) -> int:
    """A reproducible 31-bit seed per output, independent of batching, process count and order."""
    digest = hashlib.sha256(f"{base_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def pose_phrase(yaw: float, pitch: float) -> str:
    """Plain words for a head pose (prompts; the ControlNet does the geometry)."""
    parts = []
    if abs(yaw) >= 7.5:
        side = "right" if yaw > 0 else "left"
        parts.append(f"head turned {'slightly ' if abs(yaw) < 22.5 else ''}to the {side}")
    if abs(pitch) >= 7.5:
        parts.append("looking up" if pitch > 0 else "looking down")
    return ", ".join(parts) or "frontal view"


def target_pose(config: AugmentConfig, source_pose: np.ndarray, yaw: float, pitch: float) -> tuple[float, float, float]:
    """The pose the output should show: the requested one (absolute) or the source's plus the request (relative)."""
    roll = float(source_pose[2])
    if config.pose_mode == "absolute":
        return float(yaw), float(pitch), roll
    return float(source_pose[0]) + yaw, float(source_pose[1]) + pitch, roll


def face_mask(points_a: np.ndarray, points_b: np.ndarray, resolution: int, grow: float = 0.08) -> np.ndarray:
    """Inpainting mask: the face-oval hulls of the source and the re-posed face, grown and feathered."""
    oval = sorted({i for pair in FACE_OVAL for i in pair})
    mask = np.zeros((resolution, resolution), np.uint8)
    for points in (points_a, points_b):
        hull = cv2.convexHull(np.round(points[oval, :2]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255)
    radius = max(1, round(float(grow * resolution)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = cv2.dilate(mask, kernel)
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=radius / 2.0)


def build_prompt(template: str, age: float, yaw: float, pitch: float) -> str:
    try:
        return template.format(
            age=round(float(age)), group=AGE_GROUP_LABELS[age_to_group(age)], pose=pose_phrase(yaw, pitch),
            yaw=round(float(yaw)), pitch=round(float(pitch)),
        )  # fmt: skip
    except (KeyError, IndexError) as error:
        raise ValueError(f"prompt template {template!r} uses an unknown placeholder {error}; "
                         "known: {age} {group} {pose} {yaw} {pitch}") from None  # fmt: skip


def make_jobs(config: AugmentConfig, source: FramedSource, condition: str | None, skip: set[str]) -> list[Job]:
    """The jobs of one source (one per requested pose), minus those whose key is in `skip`; `condition` None draws
    no conditioning image (the mesh backend turns the photo itself)."""
    jobs = []
    resolution = config.resolution
    for yaw, pitch in config.poses or ():
        key = f"{source.source_id}_{pose_tag(yaw, pitch)}"
        if key in skip:
            continue
        requested = target_pose(config, source.pose, yaw, pitch)
        control = mask = None
        if condition is not None:
            turned = turn_face(source.landmarks, source.pose, requested)
            control = draw_condition(condition, project_orthographic(turned), resolution)
            mask = face_mask(source.landmarks, turned, resolution) if config.mode == "inpaint" else None
        jobs.append(
            Job(
                key=key,
                source=source,
                requested=requested,
                seed=item_seed(config.seed, key),
                prompt=build_prompt(config.prompt, source.age, requested[0], requested[1]),
                negative_prompt=config.negative_prompt,
                control=control,
                mask=mask,
            )
        )
    return jobs
