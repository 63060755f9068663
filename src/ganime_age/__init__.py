"""ganime-age: edit the age, the expression (FACS AUs) and the pose of real face photos.

Heavy modules are imported on first use, so ``import ganime_age`` stays cheap and side-effect free.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "GanimeAge": "ganime_age.editing",  # the editor, loaded whole from a manifest: GanimeAge.from_pretrained(...)
    "FaceEditor": "ganime_age.editing",  # the same class under its working name
    "EditorConfig": "ganime_age.editing",
    "EditorManifest": "ganime_age.editing",
    "FittedEngine": "ganime_age.engine",
    "FittedEngineConfig": "ganime_age.engine",
    "GanimationAge": "ganime_age.models.ganimation_age",
    "GanimationAgeConfig": "ganime_age.models.ganimation_age",
    "load_pretrained": "ganime_age.hub",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganime_age' has no attribute {name!r}")
