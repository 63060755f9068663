"""How much of the hair greys, or regains its colour, between two ages: the fitted share of grey hair at each
age (:attr:`EngineTables.tables` ``hair_greying``) read as the change between the photo's age and the target's;
and what greying adds where (:func:`grey_fields`)."""

from __future__ import annotations

import cv2
import numpy as np

from ganime_age.engine.tables import EngineTables

MAX_HAIR_GAIN = 4.0  # grey hair over the hair's brightness, at most (black hair's noise stays unseen)
# the fitted share of grey hair at the photo's age is taken as at least this when grey hair regains its colour: at
# 33 (a share of 0.02) hair that looks grey is most likely lit blond hair, which turned a dark blotch (issue 55)
GREY_BELIEVED = 0.2


def hair_restoring_share(engine: EngineTables, source_age: float, target_age: float) -> float:
    """The share of the hair grey at `source_age` that is still pigmented at `target_age` (0 when getting older,
    or when no young hair colour was fitted), young adults' by how likely their grey-looking hair is grey
    (:data:`GREY_BELIEVED`)."""
    table = engine.tables["hair_greying"]
    if target_age >= source_age or engine.config.hair_greying_gain <= 0.0 or not np.any(engine.tables["hair_young"]):
        return 0.0
    before, after = np.interp([source_age, target_age], engine.centres, table)
    if before <= 0.0:
        return 0.0
    share = engine.config.hair_greying_gain * (before - after) / max(before, GREY_BELIEVED)
    return float(np.clip(share, 0.0, 1.0))


def hair_greying_share(engine: EngineTables, source_age: float, target_age: float) -> float:
    """The share of the hair still pigmented at `source_age` that greys by `target_age` (0 when getting
    younger: then grey hair regains a colour, :func:`hair_restoring_share`)."""
    table = engine.tables["hair_greying"]
    if target_age <= source_age or engine.config.hair_greying_gain <= 0.0 or not table.any():
        return 0.0
    before, after = np.interp([source_age, target_age], engine.centres, table)
    share = engine.config.hair_greying_gain * (after - before) / max(1.0 - before, 1e-3)
    return float(np.clip(share, 0.0, 1.0))


def grey_fields(grid: np.ndarray, share: np.ndarray, grey: np.ndarray, face_width: float) -> np.ndarray:
    """(h, w, 8): grey hair's colour minus the local hair colour, the local hair brightness, grey hair's
    brightness gain over it minus 1 and the local hair colour (the hair's own pixels averaged over a tenth of a
    face)."""
    sigma = max(0.1 * face_width, 1.0)
    values = grid.astype(np.float32)
    weight = cv2.GaussianBlur(share, (0, 0), sigma) + 1e-4
    local = cv2.GaussianBlur(values * share[..., None], (0, 0), sigma) / weight[..., None]
    total = float(share.sum())
    if total > 0.0:  # far from any hair the local colour is the hair's mean
        mean = (values * share[..., None]).reshape(-1, 3).sum(axis=0) / total
        trust = np.clip(weight / (weight.max() * 0.05), 0.0, 1.0)[..., None]
        local = trust * local + (1.0 - trust) * mean
    brightness = local.mean(axis=2)
    gain = np.clip(float(grey.mean()) / np.maximum(brightness, 1.0), 1.0, MAX_HAIR_GAIN) - 1.0
    return np.concatenate([grey - local, brightness[..., None], gain[..., None], local], axis=2).astype(np.float32)
