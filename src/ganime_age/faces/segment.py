"""The person's silhouette (MediaPipe Selfie Segmentation), which tells hair from the background behind it.

The model (Apache-2.0, 250 KB, shipped in ``weights/face-models``) runs through OpenCV's TFLite reader, so
no extra runtime is needed. It takes a 256x256 RGB square in 0..1 and returns the probability that each
pixel belongs to a person; the face analysis (:class:`ganime_age.faces.FaceAnalyzer`) holds one, and the
engine asks it about the square around one head.
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from ganime_age.assets import resolve_asset
from ganime_age.errors import ModelFileNotFoundError

INPUT_SIZE = 256


class SelfieSegmenter:
    """Person-vs-background probabilities of RGB images; reuse one instance (creation loads the network).

    Thread-safe: one OpenCV network serves one call at a time.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        path = resolve_asset("selfie_segmenter", model_path)
        try:
            self._net = cv2.dnn.readNet(str(path))
        except cv2.error as error:
            raise ModelFileNotFoundError(f"cannot read the selfie segmenter {path}: {error}") from error
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(h, w) float32 in 0..1: the person's silhouette in uint8 RGB `rgb` (h, w, 3), at its size."""
        height, width = rgb.shape[:2]
        square = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        blob = cv2.dnn.blobFromImage(square.astype(np.float32) / np.float32(255.0))
        with self._lock:
            self._net.setInput(blob)
            out = self._net.forward()
        mask = np.clip(out.reshape(INPUT_SIZE, INPUT_SIZE), 0.0, 1.0).astype(np.float32)
        return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
