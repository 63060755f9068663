"""A trained refiner (GANimation-age, AgeTransGAN, RAGAN) run on the engine's photo: its change is added, at
the photo's resolution, to each face, so it can add detail but never blur the photo.

The refiner is told each face already is at the target (the engine moved it there), so an identity refiner
changes nothing and a trained one adds only what the engine left out.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ganime_age.editing.config import autocast_dtype
from ganime_age.errors import ModelOutputError
from ganime_age.hub import HubModel

ProgressCallback = Callable[[float, str], Any]


def to_batch(crops: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 RGB crops -> a float NCHW batch in [-1, 1] on `device` (what every network here reads)."""
    batch = torch.from_numpy(np.stack(crops)).to(device).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1.0


class Refining:
    """One refiner on one device, in a precision, `batch_size` faces a call."""

    def __init__(self, refiner: HubModel, device: torch.device, precision: str = "fp32", batch_size: int = 8) -> None:
        self.model = refiner.to(device).eval()
        self.device = device
        self.batch_size = max(1, batch_size)
        self.image_size = int(refiner.config.image_size)
        self._dtype = autocast_dtype(precision, device)

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast for the generator when a reduced precision is configured; fp32 otherwise."""
        if self._dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._dtype)

    def _conditions(self, *columns: Sequence[float] | Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Ages and AU vectors packed into one float32 array: one host-to-device copy instead of four."""
        blocks = [np.asarray(c, np.float32).reshape(len(c), -1) for c in columns]
        packed = torch.from_numpy(np.concatenate(blocks, axis=1)).to(self.device)
        bounds = np.cumsum([0] + [b.shape[1] for b in blocks]).tolist()
        return [packed[:, a] if b - a == 1 else packed[:, a:b] for a, b in itertools.pairwise(bounds)]

    def _check_finite(self, output: torch.Tensor) -> None:
        """NaN weights paste black squares over faces; refuse a non-finite generator output instead."""
        if not bool(torch.isfinite(output).all()):
            raise ModelOutputError(
                f"the refiner ({self.model.model_type}) produced NaN or infinite pixels: its weights are "
                "corrupt (or this device's arithmetic failed); load a clean copy of the model"
            )

    def __call__(
        self,
        photo: np.ndarray,
        points: Sequence[np.ndarray],
        target_age: Sequence[float],
        target_aus: Sequence[np.ndarray],
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """`photo` with the refiner's change added to each face (given by its 5 alignment points)."""
        from ganime_age.faces import add_crop_change, align_face

        step = self.batch_size
        with torch.inference_mode():
            for start in range(0, len(points), step):
                if progress is not None:
                    progress(start / len(points), f"refining faces {start + 1}-{min(start + step, len(points))}")
                chunk = points[start : start + step]
                aligned = [align_face(photo, p, self.image_size) for p in chunk]
                batch = to_batch([a.image for a in aligned], self.device)
                ages, aus = self._conditions(target_age[start : start + step], target_aus[start : start + step])
                with self._precision():
                    result = self.model.edit_faces(
                        batch, source_age=ages, target_age=ages, source_aus=aus, target_aus=aus
                    )
                self._check_finite(result.image)
                change = ((result.image.float().clamp(-1, 1) - batch) * 127.5).permute(0, 2, 3, 1).cpu().numpy()
                for a, delta in zip(aligned, change, strict=True):
                    photo = add_crop_change(photo, delta, a.matrix)
        return photo
