"""One call from a photo to everything the editors need about each face: box, landmarks, AUs, pose, crop."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganime_age.conditions import NUM_AUS
from ganime_age.errors import NoFaceError, TooManyFacesError
from ganime_age.faces.align import AlignedFace, align_face
from ganime_age.faces.aus import blendshapes_to_aus
from ganime_age.faces.detect import DetectedFace, FaceDetector
from ganime_age.faces.images import ImageSource, load_image
from ganime_age.faces.landmarks import FaceLandmarker, LandmarkResult
from ganime_age.faces.parse import FaceParser
from ganime_age.faces.segment import SelfieSegmenter

MIN_FACE_PIXELS = 20
"""Faces narrower than this, on the copy the detector searches, are rarely found (YuNet's lower limit)."""


@dataclass
class FaceAnalysis:
    """Everything measured about one face of a photo."""

    index: int  # position in the left-to-right order
    detection: DetectedFace
    landmarks: LandmarkResult | None  # None when not requested or MediaPipe failed on this face
    aus: np.ndarray  # (17,) float32 0..5 estimate; zeros without landmarks
    pose: np.ndarray  # (3,) float32 yaw, pitch, roll degrees; zeros without landmarks
    aligned: AlignedFace


class FaceAnalyzer:
    """YuNet detection + MediaPipe landmarks/AUs/pose + alignment + the person's silhouette, with the models
    loaded once.

    ``.detector``, ``.landmarker``, ``.segmenter`` and ``.parser`` can be reused on their own (the landmarker,
    the segmenter and the parser load on first use).
    """

    def __init__(
        self,
        detector_path: str | os.PathLike[str] | None = None,
        landmarker_path: str | os.PathLike[str] | None = None,
        size: int = 128,
        *,
        score_threshold: float = 0.6,
        detector: Any = None,
        max_faces: int | None = None,
    ) -> None:
        # `detector`: any object with FaceDetector's detect(rgb) -> list[DetectedFace] (e.g. InsightFaceDetector)
        self.detector = (
            detector if detector is not None else FaceDetector(detector_path, score_threshold=score_threshold)
        )
        self.landmarker = FaceLandmarker(landmarker_path)
        self.size = int(size)
        # Each face costs a landmarker run and a generator pass: a tiled photo of 347 faces held a Space worker
        # for a minute. Photos with more faces than this are refused before any per-face work (None: no cap).
        self.max_faces = max_faces
        self._segmenter: SelfieSegmenter | None = None
        self._parser: FaceParser | None = None

    @property
    def segmenter(self) -> SelfieSegmenter:
        """MediaPipe's selfie segmenter: the person's silhouette in a photo region (where the hair is)."""
        if self._segmenter is None:
            self._segmenter = SelfieSegmenter()
        return self._segmenter

    @property
    def parser(self) -> FaceParser:
        """The BiSeNetV2 face parser: what each pixel around a face is (skin, hair, neck, cloth, hat, ...)."""
        if self._parser is None:
            self._parser = FaceParser()
        return self._parser

    def analyze(self, rgb: ImageSource, *, landmarks: bool = True) -> list[FaceAnalysis]:
        """Every face of the photo, sorted left to right; raises NoFaceError if there is none and
        TooManyFacesError if there are more than `max_faces`.

        `rgb` is ideally the uint8 RGB array from :func:`load_image`; anything load_image accepts works.
        """
        image = load_image(rgb)
        detections = self.detector.detect(image)
        if not detections:
            height, width = image.shape[:2]
            # the detector searches a copy at most `max_side` pixels long: small faces of big photos shrink there
            searched = min(1.0, getattr(self.detector, "max_side", max(height, width)) / max(height, width))
            smallest = round(MIN_FACE_PIXELS / searched)
            crop = " (or crop the photo around the face)" if searched < 1.0 else ""
            raise NoFaceError(
                f"no face found in the {width}x{height} image; try a photo where the face is "
                f"visible, frontal-ish and at least ~{smallest} pixels wide{crop}"
            )
        if self.max_faces is not None and len(detections) > self.max_faces:
            raise TooManyFacesError(
                f"the photo has {len(detections)} faces; at most {self.max_faces} are edited at once "
                "(crop the photo to the faces you want, or raise max_faces)"
            )
        faces = []
        for index, detection in enumerate(detections):
            result = self.landmarker.analyze(image, detection) if landmarks else None
            aus = blendshapes_to_aus(result.blendshapes) if result is not None else np.zeros(NUM_AUS, np.float32)
            pose = result.pose.copy() if result is not None else np.zeros(3, np.float32)
            faces.append(
                FaceAnalysis(
                    index=index,
                    detection=detection,
                    landmarks=result,
                    aus=aus,
                    pose=pose,
                    aligned=align_face(image, detection.points, self.size),
                )
            )
        return faces

    def close(self) -> None:
        self.landmarker.close()
