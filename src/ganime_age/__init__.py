"""ganime-age: edit the age, the expression (FACS AUs) and the pose of real face photos.

Heavy modules are imported on first use, so ``import ganime_age`` stays cheap and side-effect free.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "EditorConfig": "ganime_age.pipeline",
    "FaceEditor": "ganime_age.pipeline",
    "GanimeAge": "ganime_age.models.ganimation_age",
    "GanimeAgeConfig": "ganime_age.models.ganimation_age",
    "GanimeAgeDiscriminator": "ganime_age.models.ganimation_age",
    "load_pretrained": "ganime_age.hub",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganime_age' has no attribute {name!r}")
