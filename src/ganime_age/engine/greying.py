"""How much of the hair greys, or regains its colour, between two ages: the fitted share of grey hair at each
age (:attr:`EngineTables.tables` ``hair_greying``) read as the change between the photo's age and the target's."""

from __future__ import annotations

import numpy as np

from ganime_age.engine.tables import EngineTables


def hair_restoring_share(engine: EngineTables, source_age: float, target_age: float) -> float:
    """The share of the hair grey at `source_age` that is still pigmented at `target_age` (0 when getting older,
    or when no young hair colour was fitted)."""
    table = engine.tables["hair_greying"]
    if target_age >= source_age or engine.config.hair_greying_gain <= 0.0 or not np.any(engine.tables["hair_young"]):
        return 0.0
    before, after = np.interp([source_age, target_age], engine.centres, table)
    if before <= 0.0:
        return 0.0
    share = engine.config.hair_greying_gain * (before - after) / before
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
