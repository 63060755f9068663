"""The head's growth fitted on the same people across years (FG-NET): the engine's cardioidal strain per age centre.

The engine grows a head with one number per age, a cardioidal strain k (:func:`ganime_age.engine.geometry.
growth_field`: about the centre between the ears, a point at angle theta from the head's up direction moves to
radius R (1 + k (1 - cos theta)); the eyes keep their size). FG-NET photographs the same people from infancy to
adulthood with 68 landmarks, so each young photo's shape can be compared with the shapes the engine's model makes
of the same person's own grown landmarks:

- each person of FG-NET's training split (:func:`training.data.fgnet.fgnet_split`: the held-out people judge
  the result in ``evaluate.py ages``) with a photo at 20-35 (:data:`REFERENCE_AGES`; the one nearest 30) as
  the grown reference;
- each of their photos younger than :data:`GROWN_FROM`: the strain k whose growth of the reference's landmarks
  matches its 68 points best once moved, turned and scaled onto them (:func:`strain_for`; a single proportion,
  the face's length over the eyes' distance, was too sensitive to the head's pitch: its strains spread over the
  whole searched range);
- one smooth curve through all of them, k(age) = k0 (1 - age / GROWN_FROM) ** power (:func:`growth_curve`:
  growth ends at GROWN_FROM, and single ages' photos are too few, their poses too varied, to fit each centre
  alone), read at each age centre below GROWN_FROM. Each centre's own photos' mean strain (the engine's linear
  age weights) is reported beside it.

Grown centres keep the engine's own strains: FG-NET has too few people past 45 to fit an old face's change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.engine.geometry import age_weights
from training.data.fgnet import fgnet_split, parse_fgnet

GROWN_FROM = 20.0  # years: below this age growth is fitted
REFERENCE_AGES = (20, 35)  # a person's grown reference is a photo at these ages (a face lengthens a little again
# later, which the engine's grown strains carry)
JAW_ENDS = (0, 16)  # the 68-point outline's ends, beside the ears: the strain's centre is between them
CHIN = 8
RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)
STRAINS = np.linspace(-0.4, 0.2, 121)  # the strains searched (the engine config's range)
POWERS = np.linspace(0.25, 4.0, 76)  # the growth curve's powers searched


def strained(points: np.ndarray, k: float) -> np.ndarray:
    """68-point landmarks moved by the engine's cardioidal strain k (about the outline's ends' midpoint, up being
    away from the chin across the eyes' line)."""
    points = np.asarray(points, np.float64)
    centre = 0.5 * (points[JAW_ENDS[0]] + points[JAW_ENDS[1]])
    across = points[LEFT_EYE].mean(axis=0) - points[RIGHT_EYE].mean(axis=0)
    down = np.array([-across[1], across[0]]) / max(float(np.linalg.norm(across)), 1e-9)
    if (points[CHIN] - centre) @ down < 0:
        down = -down
    offset = points - centre
    radius = np.maximum(np.linalg.norm(offset, axis=1), 1e-9)
    one_less_cos = 1.0 + (offset @ down) / radius  # 1 - cos(theta), theta from the up direction
    return centre + offset * (1.0 + k * one_less_cos)[:, None]


def shape_error(model: np.ndarray, photo: np.ndarray) -> float:
    """How unlike two 68-point shapes are once the first is moved, turned and scaled onto the second (Umeyama's
    similarity): the residual's share of the photo's spread."""
    model_centred, photo_centred = model - model.mean(axis=0), photo - photo.mean(axis=0)
    u, singular, vt = np.linalg.svd(model_centred.T @ photo_centred)
    flip = np.diag([1.0, float(np.sign(np.linalg.det(u @ vt)))])
    rotation = u @ flip @ vt
    scale = float((singular * np.diag(flip)).sum() / max(float((model_centred**2).sum()), 1e-12))
    residual = photo_centred - scale * model_centred @ rotation
    return float((residual**2).sum() / max(float((photo_centred**2).sum()), 1e-12))


def strain_for(grown: np.ndarray, young: np.ndarray) -> float:
    """The strain k whose growth of the grown landmarks (:func:`strained`) best matches the young photo's shape
    (all 68 points, after moving, turning and scaling: the photo's framing and the head's roll do not count)."""
    errors = [shape_error(strained(grown, k), young) for k in STRAINS]
    return float(STRAINS[int(np.argmin(errors))])


def growth_curve(ages: np.ndarray, strains: np.ndarray) -> tuple[float, float]:
    """(k0, power) of the curve k(age) = k0 (1 - age / GROWN_FROM) ** power nearest the photos' strains (least
    squares, the power searched over :data:`POWERS`): growth that ends when the person is grown, smooth and
    monotone in between, where the photos of single ages are few and their poses differ."""
    best = (float("inf"), 0.0, 1.0)
    for power in POWERS:
        shape = (1.0 - np.clip(ages, 0.0, GROWN_FROM) / GROWN_FROM) ** power
        k0 = float(shape @ strains / max(float(shape @ shape), 1e-12))
        error = float(((strains - k0 * shape) ** 2).sum())
        if error < best[0]:
            best = (error, k0, float(power))
    return best[1], best[2]


@dataclass
class GrowthFit:
    strains: np.ndarray  # (centres,) the fitted strain per age centre (grown centres: the engine's own)
    report: dict[str, Any]


def fit_growth(fgnet: Path, centres: np.ndarray, current: np.ndarray) -> GrowthFit:
    """The strains per age centre from FG-NET's training people (module docstring); `current` are the engine's
    strains, kept at grown centres and where too few young photos are near a centre."""
    centres = np.asarray(centres, np.float64)
    photos = [p for p in parse_fgnet(fgnet).photos if p.points_path is not None and fgnet_split(p.person) == "train"]
    by_person: dict[str, list[Any]] = {}
    for photo in photos:
        by_person.setdefault(photo.person, []).append(photo)
    ages, strains = [], []
    for person_photos in by_person.values():
        grown = [p for p in person_photos if REFERENCE_AGES[0] <= p.age <= REFERENCE_AGES[1]]
        if not grown:
            continue
        nearest = grown[int(np.argmin([abs(p.age - 30) for p in grown]))].points().astype(np.float64)
        for photo in person_photos:
            if photo.age < GROWN_FROM:
                ages.append(photo.age)
                strains.append(strain_for(nearest, photo.points().astype(np.float64)))
    age, strain = np.asarray(ages, np.float64), np.asarray(strains, np.float64)
    young = centres < GROWN_FROM
    fitted = np.asarray(current, np.float64).copy()
    weights = np.stack([age_weights(a, centres) for a in age]) if len(age) else np.zeros((0, len(centres)))
    measured = (weights * strain[:, None]).sum(axis=0) / np.maximum(weights.sum(axis=0), 1e-9)
    k0, power = growth_curve(age, strain) if len(age) else (0.0, 1.0)
    if len(age):
        fitted[young] = k0 * (1.0 - centres[young] / GROWN_FROM) ** power
    report = {
        "people": len(by_person),
        "young_photos": len(age),
        "curve": {"k0": round(k0, 4), "power": round(power, 3), "ends_at": GROWN_FROM},
        "measured": {f"{c:g}": round(float(m), 4) for c, m, y in zip(centres, measured, young, strict=True) if y},
        "strains": [round(float(v), 4) for v in fitted],
        "kept_grown": [f"{c:g}" for c in centres[~young]],
    }
    return GrowthFit(fitted.astype(np.float64), report)
