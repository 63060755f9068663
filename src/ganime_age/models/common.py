"""Pieces shared by the models: the common edit interface, age/group conversions and age estimators' reading curves."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ganime_age.conditions import AGE_GROUPS, NUM_AGE_GROUPS, group_center
from ganime_age.config import bounded
from ganime_age.errors import ConfigError


class EditOutput(NamedTuple):
    """What every ageing model's ``edit_faces`` returns: the edited crops and, if it has one, its attention mask."""

    image: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    attention: torch.Tensor | None  # (N, 1, S, S) in [0, 1]; 1 keeps the input pixel


def holds_values(module: nn.Module) -> bool:
    """False for a skeleton built on the meta device (shapes only, as a load first checks a weights file against):
    drawing random values there is pointless, and PyTorch's meta `normal_` imports its compiler, a second of a load."""
    return not any(parameter.is_meta for parameter in module.parameters())


def soft_group_code(age: torch.Tensor, num_groups: int = NUM_AGE_GROUPS) -> torch.Tensor:
    """Years -> a one-hot over the age groups, blended linearly between adjacent group centres.

    Ageing models that work on groups use this so that a slider moving through the years gives a
    smooth transition instead of ten jumps.
    """
    centres = torch.tensor([group_center(i) for i in range(num_groups)], device=age.device, dtype=torch.float32)
    a = age.float().reshape(-1).clamp(float(centres[0]), float(centres[-1]))
    upper = torch.searchsorted(centres, a, right=False).clamp(1, num_groups - 1)
    lower = upper - 1
    span = centres[upper] - centres[lower]
    weight_upper = (a - centres[lower]) / span
    code = torch.zeros(a.shape[0], num_groups, device=age.device)
    code.scatter_(1, lower[:, None], (1 - weight_upper)[:, None])
    code.scatter_add_(1, upper[:, None], weight_upper[:, None])
    return code


def group_range(group: int) -> tuple[int, int]:
    return AGE_GROUPS[group]


# -- an age estimator's reading curve -----------------------------------------------------------------------------
# Age estimators regress to the mean: real 75-year-olds read ~55 on one, ~67 on another. Each estimator's config
# carries its own curve, measured on real faces of the UTKFace training split: the mean reading of faces of each
# true age (Gaussian-smoothed over true ages). It maps a reading back to the age of the real faces that read so
# (calibrated_age) and an age to what real faces of it read (expected_reading); without one, the identity.
IDENTITY_CURVE = (0.0, 100.0)


def reading_curve_ages_field() -> Any:
    """Config field: the true ages (years, increasing) at which the reading curve was measured."""
    return bounded(IDENTITY_CURVE, 0.0, 150.0, length=(2, 64))


def reading_curve_field() -> Any:
    """Config field: the mean reading of real faces at each of reading_curve_ages (increasing, so invertible)."""
    return bounded(IDENTITY_CURVE, 0.0, 150.0, length=(2, 64))


def check_reading_curve(config: Any) -> None:
    """The curve's rules across fields: one reading per age, ages and readings strictly increasing."""
    name = type(config).__name__
    ages, curve = tuple(config.reading_curve_ages), tuple(config.reading_curve)
    if len(ages) != len(curve):
        raise ConfigError(
            f"{name}.reading_curve has {len(curve)} values for {len(ages)} reading_curve_ages: give one per age"
        )
    for label, values in (("reading_curve_ages", ages), ("reading_curve", curve)):
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ConfigError(f"{name}.{label} must be strictly increasing (the curve is inverted)")


def _interpolate(x: Any, xp: tuple[float, ...], fp: tuple[float, ...]) -> Any:
    """Piecewise-linear interpolation clamped to the ends, for a number, a NumPy array or a tensor (kept on its
    device, differentiable in x)."""
    if isinstance(x, torch.Tensor):
        knots = torch.tensor(xp, dtype=torch.float32, device=x.device)
        values = torch.tensor(fp, dtype=torch.float32, device=x.device)
        clamped = x.float().clamp(knots[0], knots[-1])
        upper = torch.searchsorted(knots, clamped.detach().contiguous(), right=True).clamp(1, len(xp) - 1)
        lower = upper - 1
        weight = (clamped - knots[lower]) / (knots[upper] - knots[lower])
        return values[lower] + weight * (values[upper] - values[lower])
    value = np.interp(np.asarray(x, np.float64), xp, fp)
    return float(value) if np.ndim(value) == 0 else value


class AgeReading(NamedTuple):
    """One network's reading of a face: the expected age of its distribution over ages and that distribution's
    spread (its standard deviation, years): how sure the network itself is."""

    age: float
    spread: float


def distribution_reading(probabilities: Any, ages: Any) -> AgeReading:
    """The reading of a network's distribution over ages: its expected age and its spread."""
    probabilities = np.asarray(probabilities, np.float64)
    ages = np.asarray(ages, np.float64)
    mean = float(probabilities @ ages)
    return AgeReading(mean, float(np.sqrt(max(float(probabilities @ (ages - mean) ** 2), 0.0))))


class ReadingCalibration:
    """What an age estimator whose config holds ``reading_curve_ages`` / ``reading_curve`` can say of a reading."""

    config: Any

    def face_probabilities(self, rgb: np.ndarray, face: Any) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities over the network's classes, each class's age in years) for one analysed face."""
        raise NotImplementedError

    def read_distribution(self, rgb: np.ndarray, face: Any) -> AgeReading:
        """The reading of one analysed face (a ``FaceAnalysis`` of the RGB photo `rgb`) with its spread."""
        return distribution_reading(*self.face_probabilities(rgb, face))

    def calibrated_age(self, reading: Any) -> Any:
        """The true age of real faces that read `reading` on average: the inverse of the reading curve (clamped to
        the curve's ends). Takes a number, an array or a tensor and gives the same kind back."""
        return _interpolate(reading, tuple(self.config.reading_curve), tuple(self.config.reading_curve_ages))

    def expected_reading(self, age: Any) -> Any:
        """What real faces of `age` years read on average on this estimator (clamped to the curve's ends)."""
        return _interpolate(age, tuple(self.config.reading_curve_ages), tuple(self.config.reading_curve))
