"""Editing photos: the FaceEditor facade (also named GanimeAge), its photo sessions, refiner and reenactment,
and the editor manifest that says which models an editor is made of.

Layers, each importing only the ones below it: ``config`` (options, device) and ``manifest`` (editor.json),
``ages`` (a face's age reconciled from its estimators' readings), ``session`` (a photo analysed once),
``refining`` (a refiner's change added to the engine's photo), ``refiners`` (the shipped refiners, by name),
``reenactment`` (pose and expression from a driving face, on the sessions), ``editor`` (the facade).
"""

from ganime_age.editing.config import EditorConfig, pick_device
from ganime_age.editing.editor import EditResult, FaceEdit, FaceEditor, GanimeAge
from ganime_age.editing.manifest import (
    CYDRAL_ESTIMATOR_DIR,
    DEFAULT_EDITOR_DIR,
    DEFAULT_ENGINE_DIR,
    DEFAULT_ESTIMATOR_DIR,
    MANIFEST_NAME,
    MODEL_ENV,
    WEIGHTS_DIR,
    EditorManifest,
    default_engine,
    is_untrained_default,
)
from ganime_age.editing.reenactment import OneEuroFilter, Reenactment
from ganime_age.editing.refiners import ENGINE_ALONE, REFINERS_DIR, refiner_names, resolve_refiner, shipped_refiners
from ganime_age.editing.session import FacePlan, PhotoSession, SessionCache

__all__ = [
    "CYDRAL_ESTIMATOR_DIR",
    "DEFAULT_EDITOR_DIR",
    "DEFAULT_ENGINE_DIR",
    "DEFAULT_ESTIMATOR_DIR",
    "ENGINE_ALONE",
    "MANIFEST_NAME",
    "MODEL_ENV",
    "REFINERS_DIR",
    "WEIGHTS_DIR",
    "EditResult",
    "EditorConfig",
    "EditorManifest",
    "FaceEdit",
    "FaceEditor",
    "FacePlan",
    "GanimeAge",
    "OneEuroFilter",
    "PhotoSession",
    "Reenactment",
    "SessionCache",
    "default_engine",
    "is_untrained_default",
    "pick_device",
    "refiner_names",
    "resolve_refiner",
    "shipped_refiners",
]
