"""A face's current age from more than one network's reading, so that an edit never leans on one reading alone.

Each age estimator reads the face on its own view and says how sure it is (the spread of its distribution over
ages). Each reading is first mapped to the age of the real faces that read so on that network (its reading
curve, :meth:`~ganime_age.models.common.ReadingCalibration.calibrated_age`: estimators regress to the mean, one
reads real 75-year-olds as 55), then the ages are averaged, each weighted by the inverse of its network's
spread: a network unsure of a face (a young woman one network reads as 3, with a wide spread) gives way to
one that is sure. One estimator alone gives its calibrated reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ganime_age.models.common import AgeReading, distribution_reading

MIN_SPREAD = 2.0  # years: no network is trusted to a year (the sharpest distributions are narrower than their error)


def calibrated_readings(
    estimators: Sequence[Any], rgb: np.ndarray, face: Any, distributions: Sequence[Any] | None = None
) -> list[AgeReading]:
    """Each estimator's reading of the face mapped by its reading curve (years), with that network's spread: what
    :func:`reconciled_age` averages, and how far apart the networks are on this face. `distributions`: each
    estimator's ``face_probabilities`` of the face where already read (a network is run once a face)."""
    readings = []
    for n, estimator in enumerate(estimators):
        reading = (
            estimator.read_distribution(rgb, face) if distributions is None else distribution_reading(*distributions[n])
        )
        readings.append(AgeReading(float(estimator.calibrated_age(reading.age)), reading.spread))
    return readings


def reconciled_age(estimators: Sequence[Any], rgb: np.ndarray, face: Any) -> float:
    """The face's age (years) from every estimator's calibrated reading, weighted by how sure each is."""
    if not estimators:
        raise ValueError("reconciling an age needs at least one age estimator")
    readings = calibrated_readings(estimators, rgb, face)
    weights = [1.0 / max(reading.spread, MIN_SPREAD) ** 2 for reading in readings]
    return float(np.average([reading.age for reading in readings], weights=weights))
