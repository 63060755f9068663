"""The engine as its jobs read it (:class:`EngineTables`): its config, its fitted tables and what is derived from
them. :class:`~ganime_age.engine.model.FittedEngine` is one; the jobs type against this, never the model."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ganime_age.engine.config import FittedEngineConfig
from ganime_age.engine.frames import Template


class EngineTables(Protocol):
    """What a job reads of the engine (all read-only)."""

    @property
    def config(self) -> FittedEngineConfig: ...

    @property
    def tables(self) -> dict[str, np.ndarray]: ...  # the fitted tables by name, float32 NumPy copies

    @property
    def template(self) -> Template: ...

    @property
    def centres(self) -> np.ndarray: ...  # the age centres the tables are fitted at

    @property
    def age_split(self) -> dict[str, np.ndarray]: ...  # the tables as a slider move reads them
