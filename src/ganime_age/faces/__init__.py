"""Faces in photos: load, detect (YuNet), landmarks/blendshapes/pose (MediaPipe), AUs, align, paste back.

Importing this package loads no model; detectors are created when you construct them.
"""

from __future__ import annotations

from ganime_age.faces.align import (
    ALIGN_TEMPLATE,
    AlignedFace,
    add_crop_change,
    align_face,
    dlib_face_chip,
    extract_dlib_chip,
    invert_affine,
    paste_back,
    portrait,
    similarity_transform,
    template_points,
    transform_points,
)
from ganime_age.faces.analyzer import FaceAnalysis, FaceAnalyzer
from ganime_age.faces.aus import (
    AU_BLENDSHAPES,
    AU_CALIBRATION,
    blendshapes_to_aus,
    read_ganimation_pickle,
    read_openface_csv,
)
from ganime_age.faces.detect import DetectedFace, FaceDetector
from ganime_age.faces.images import MAX_FILE_BYTES, MAX_PIXELS, MIN_SIDE, ImageHeader, load_image, read_image_header
from ganime_age.faces.landmarks import FaceLandmarker, LandmarkResult, pose_from_matrix

__all__ = [
    "ALIGN_TEMPLATE",
    "AU_BLENDSHAPES",
    "AU_CALIBRATION",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "AlignedFace",
    "DetectedFace",
    "FaceAnalysis",
    "FaceAnalyzer",
    "FaceDetector",
    "FaceLandmarker",
    "ImageHeader",
    "LandmarkResult",
    "add_crop_change",
    "align_face",
    "blendshapes_to_aus",
    "dlib_face_chip",
    "extract_dlib_chip",
    "invert_affine",
    "load_image",
    "paste_back",
    "portrait",
    "pose_from_matrix",
    "read_ganimation_pickle",
    "read_image_header",
    "read_openface_csv",
    "similarity_transform",
    "template_points",
    "transform_points",
]
