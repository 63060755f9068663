"""What an editor is made of: ``editor.json`` names its parts, the way diffusers' ``model_index.json`` composes a
pipeline.

An editor folder (or Hub repository) holds ``editor.json``::

    {"ganime_age_version": "0.1.0", "engine": "engine", "exemplars": "exemplars", "refiner": null,
     "age_estimator": "age-estimator", "second_age_estimator": "second-age-estimator",
     "sex_classifier": "sex-classifier", "reenactor": null}

Each part is a folder inside the editor or a Hub id ("owner/name"; an editor on the Hub names its parts so), and each is a
Hub-layout model (``config.json`` + ``model.safetensors``) whose class declares the role it plays
(:data:`ganime_age.hub.EDITOR_ROLES`; a second age estimator is an age estimator too: the face's age is reconciled
from both readings; the exemplars are the engine's bank of real faces of every age, which edits across the young
years match to the person). The engine is required; the rest are optional. The embedded default editor is
``src/ganime_age/weights/`` itself (its ``editor.json`` names the shipped engine and its two age estimators).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ganime_age import __version__
from ganime_age.errors import WeightsError, echo
from ganime_age.hub import (
    EDITOR_ROLES,
    MAX_CONFIG_BYTES,
    HubModel,
    _looks_like_a_path,
    _resolve_file,
    check_model_source,
    check_written_version,
    load_pretrained,
    model_class_of,
)

logger = logging.getLogger(__name__)

MANIFEST_NAME = "editor.json"
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_EDITOR_DIR = WEIGHTS_DIR  # the embedded default editor: its editor.json names the shipped parts
DEFAULT_ENGINE_DIR = WEIGHTS_DIR / "ganime-age-engine"
# the compact CNN on aligned crops: the editor's second age reading, and the one training losses read
DEFAULT_ESTIMATOR_DIR = WEIGHTS_DIR / "age-estimator"
CYDRAL_ESTIMATOR_DIR = WEIGHTS_DIR / "age-estimator-cydral"  # Cydral's network on its chip: the editor's first
PART_ROLES = {  # each manifest part -> the role its model's class must declare
    "engine": "engine",
    "exemplars": "exemplars",
    "refiner": "refiner",
    "age_estimator": "age_estimator",
    "second_age_estimator": "age_estimator",
    "sex_classifier": "sex_classifier",
    "reenactor": "reenactor",
}
PART_FOLDERS = {
    "engine": "engine",
    "exemplars": "exemplars",
    "refiner": "refiner",
    "age_estimator": "age-estimator",
    "second_age_estimator": "second-age-estimator",
    "sex_classifier": "sex-classifier",
    "reenactor": "reenactor",
}  # the subfolder each part is saved in
MODEL_ENV = "GANIME_AGE_MODEL"  # the editor (or one model) the CLI, the Space and from_pretrained() load by default


@dataclass
class EditorManifest:
    """The parts of an editor, by role: each a subfolder of the editor, a Hub id, or None (not in this editor)."""

    engine: str | None = None
    exemplars: str | None = None
    refiner: str | None = None
    age_estimator: str | None = None
    second_age_estimator: str | None = None
    sex_classifier: str | None = None
    reenactor: str | None = None

    def parts(self) -> dict[str, str]:
        """The named parts, role -> where."""
        return {role: where for role, where in asdict(self).items() if where is not None}

    def to_json(self) -> str:
        return json.dumps({"ganime_age_version": __version__, **asdict(self)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: bytes | str, source: str) -> EditorManifest:
        """Parse an editor.json: an object whose keys are roles and whose values are strings or null."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise WeightsError(f"{source}: {MANIFEST_NAME} is not readable JSON ({str(error)[:120]})") from None
        if not isinstance(data, dict):
            raise WeightsError(f"{source}: {MANIFEST_NAME} must hold a JSON object")
        check_written_version(data.pop("ganime_age_version", None), f"{source}: {MANIFEST_NAME}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise WeightsError(f"{source}: {MANIFEST_NAME} names unknown parts {unknown}; known: {list(EDITOR_ROLES)}")
        for role, where in data.items():
            if where is not None and (not isinstance(where, str) or not where.strip()):
                raise WeightsError(f"{source}: {MANIFEST_NAME}'s {role} must be a folder or Hub id, not {echo(where)}")
            if where is not None:
                check_model_source(where, f"{source}: {MANIFEST_NAME}'s {role}")
        manifest = cls(**data)
        if manifest.engine is None:
            raise WeightsError(f"{source}: {MANIFEST_NAME} names no engine; an editor needs one")
        return manifest


def find_manifest(source: str | os.PathLike[str], **hub_kwargs: Any) -> EditorManifest | None:
    """The manifest of an editor folder or Hub repository; None where `source` holds no editor.json (a single
    model, or nothing: the model loader then says which)."""
    text = str(source)
    if os.path.isdir(text):
        path = os.path.join(text, MANIFEST_NAME)
        if not os.path.isfile(path):
            return None
    else:
        try:
            path = _resolve_file(text, MANIFEST_NAME, **hub_kwargs)
        except WeightsError:
            return None
    with open(path, "rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise WeightsError(f"{text}: {MANIFEST_NAME} is larger than {MAX_CONFIG_BYTES:,} bytes")
    return EditorManifest.from_json(data, text)


def part_location(editor: str | os.PathLike[str], where: str) -> str:
    """Where a manifest's part lives: a folder inside a local editor (never outside it), else a Hub id as
    written (an editor on the Hub names its parts by Hub id)."""
    if os.path.isdir(str(editor)):
        root = os.path.realpath(str(editor))
        candidate = os.path.realpath(os.path.join(root, where))
        if os.path.commonpath([candidate, root]) == root and os.path.isdir(candidate):
            return candidate
        if _looks_like_a_path(where) or where.count("/") != 1:
            raise WeightsError(f"{editor}: {MANIFEST_NAME} names {echo(where)}, which is no folder inside the editor")
    return where


def write_manifest(folder: str | os.PathLike[str], manifest: EditorManifest) -> Path:
    path = Path(folder) / MANIFEST_NAME
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path


def parts_of(source: str, **hub_kwargs: Any) -> dict[str, str]:
    """role -> folder or Hub id of each part that `source` names: an editor's manifest, or one model by its role."""
    manifest = find_manifest(source, **hub_kwargs)
    if manifest is not None:
        return {role: part_location(source, where) for role, where in manifest.parts().items()}
    role = model_class_of(source, **hub_kwargs).role
    if role not in ("engine", "refiner"):
        load_pretrained(source, **hub_kwargs)  # a damaged folder says what is wrong with it first
        given = f"; give it as {role}=..." if role in EDITOR_ROLES else ""
        raise WeightsError(
            f"{source} holds a {role or 'role-less'} model, not an ageing model (an engine or a refiner){given}"
        )
    parts = {role: source}  # one model, in the embedded editor in place of that editor's own of its role
    default = find_manifest(DEFAULT_EDITOR_DIR)
    for other, where in (default.parts() if default is not None else {}).items():
        parts.setdefault(other, part_location(DEFAULT_EDITOR_DIR, where))
    return parts


def default_engine() -> HubModel:
    """The embedded fitted engine (``weights/ganime-age-engine``).

    Should the folder be missing (a trimmed install), an engine with empty tables stands in, with a warning:
    it returns every photo unchanged, so the API, CLI and Space still work end to end.
    """
    from ganime_age.engine import FittedEngine

    if (DEFAULT_ENGINE_DIR / "config.json").is_file():
        return load_pretrained(DEFAULT_ENGINE_DIR, role="engine")
    logger.warning(
        "The embedded edit engine is missing (%s); edits will return photos unchanged. "
        "Load an editor whose editor.json names a fitted engine (or pass engine=...).",
        DEFAULT_ENGINE_DIR,
    )
    engine = FittedEngine().eval()
    engine.untrained_default = True
    return engine


def is_untrained_default(model: HubModel) -> bool:
    """True for the empty stand-in used while no fitted engine is embedded."""
    return bool(getattr(model, "untrained_default", False))
