"""Which ageing models the Space offers, and one lazily loaded FaceEditor per model.

The model selector lists every folder under ``src/ganime_age/weights/`` whose ``config.json``
names an ageing model type, so a new model (RAGAN, AgeTransGAN, a retrained GANimation-age)
shows up by adding its folder, without touching the Space.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ganime_age.pipeline import FaceEditor
    from space.budget import MemoryBudget

logger = logging.getLogger(__name__)

DEFAULT_KEY = "default"
WARM_UP_PHOTO = Path(__file__).resolve().parent / "examples" / "astronaut.jpg"


@dataclass(frozen=True)
class ModelChoice:
    key: str  # the value the dropdown and the API use
    label: str  # what a visitor reads
    source: str | None  # Hub id or folder for FaceEditor.from_pretrained; None = the embedded default
    model_type: str | None  # None when it cannot be known without downloading (a Hub id)

    @property
    def uses_aus(self) -> bool:
        """Can this model change expressions (AUs)? Unknown types are given the benefit of the doubt."""
        return self.model_type is None or model_uses_aus(self.model_type)


def model_uses_aus(model_type: str) -> bool:
    """Every ageing model edits expressions: the fitted engine does, and a refiner (RAGAN, AgeTransGAN,
    GANimation-age) runs on top of it."""
    from ganime_age.pipeline import AGEING_MODEL_TYPES

    return model_type in AGEING_MODEL_TYPES


def _model_type(folder: Path) -> str | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("model_type") if isinstance(config, dict) else None


def available_models(weights_dir: Path | None = None, env_model: str | None = None) -> list[ModelChoice]:
    """The default model first (``$GANIME_AGE_MODEL`` or the embedded one), then every other ageing folder."""
    from ganime_age.pipeline import AGEING_MODEL_TYPES, DEFAULT_MODEL_DIR, MODEL_ENV, WEIGHTS_DIR

    weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    env_model = env_model if env_model is not None else os.environ.get(MODEL_ENV) or None
    choices: list[ModelChoice] = []
    if env_model:
        folder = Path(env_model)
        model_type = _model_type(folder) if folder.is_dir() else None
        choices.append(
            ModelChoice(DEFAULT_KEY, f"{folder.name if folder.is_dir() else env_model}", env_model, model_type)
        )
    elif (DEFAULT_MODEL_DIR / "config.json").is_file():
        choices.append(ModelChoice(DEFAULT_KEY, DEFAULT_MODEL_DIR.name, None, _model_type(DEFAULT_MODEL_DIR)))
    else:
        choices.append(ModelChoice(DEFAULT_KEY, f"{DEFAULT_MODEL_DIR.name} (empty)", None, "fitted_engine"))
    default_dir = DEFAULT_MODEL_DIR.resolve()
    if weights_dir.is_dir():
        for folder in sorted(p for p in weights_dir.iterdir() if p.is_dir()):
            model_type = _model_type(folder)
            if model_type not in AGEING_MODEL_TYPES:
                continue  # the age estimator and anything else that cannot edit a face
            if folder.resolve() == default_dir and not env_model:
                continue  # already listed as the default
            if env_model and Path(env_model).is_dir() and folder.resolve() == Path(env_model).resolve():
                continue
            choices.append(ModelChoice(folder.name, folder.name, str(folder), model_type))
    return choices


class EditorProvider:
    """Loads each FaceEditor once, on first use (or up front with `preload`), and hands it out."""

    def __init__(
        self,
        models: list[ModelChoice] | None = None,
        *,
        device: str | None = None,
        precision: str = "fp32",
        budget: MemoryBudget | None = None,
    ) -> None:
        self._models = models
        self._budget = budget
        self.device = device
        self.precision = precision  # EditorConfig.precision for every editor
        self._editors: dict[str, FaceEditor] = {}
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Lock] = {}

    @property
    def budget(self) -> MemoryBudget:
        """The memory every request is admitted by (from the environment unless one was given)."""
        if self._budget is None:
            from space.budget import MemoryBudget

            self._budget = MemoryBudget.from_env()
        return self._budget

    @property
    def models(self) -> list[ModelChoice]:
        if self._models is None:
            self._models = available_models()
        return self._models

    def choices(self, *, needs_aus: bool = False) -> list[ModelChoice]:
        return [m for m in self.models if m.uses_aus or not needs_aus]

    def choice(self, key: str | None) -> ModelChoice:
        key = key or DEFAULT_KEY
        for model in self.models:
            if model.key == key:
                return model
        from ganime_age.errors import WeightsError

        raise WeightsError(f"unknown model {key!r}; this Space offers: {', '.join(m.key for m in self.models)}")

    def get(self, key: str | None = None) -> FaceEditor:
        choice = self.choice(key)
        editor = self._editors.get(choice.key)
        if editor is not None:
            return editor
        with self._lock:  # two first requests must not load the same model twice
            editor = self._editors.get(choice.key)
            if editor is None:
                from ganime_age.pipeline import EditorConfig, FaceEditor

                logger.info("loading ageing model %s (%s)", choice.label, choice.source or "embedded default")
                config = EditorConfig(device=self.device, precision=self.precision)
                editor = FaceEditor.from_pretrained(choice.source, config=config)
                self._editors[choice.key] = editor
        return editor

    __call__ = get

    @contextmanager
    def session(self, key: str | None = None) -> Iterator[FaceEditor]:
        """The editor for `key`, used by one event at a time.

        A FaceEditor keeps a per-photo cache and MediaPipe graphs that are not meant for concurrent
        calls, so events that share an editor take turns (on ZeroGPU each GPU call runs in its own
        worker process, so there they never share one).
        """
        editor = self.get(key)
        with self._lock:
            busy = self._busy.setdefault(self.choice(key).key, threading.Lock())
        with busy:
            yield editor

    def preload(self) -> None:
        """Load every offered model now, and run one edit of a shipped example with each: on ZeroGPU, state loaded
        inside a GPU call is not kept, and the face detector, landmarker and segmenter are created on first use
        (about 0.2 GB), which belongs in the idle level the memory budget is measured from."""
        for model in self.models:
            self.get(model.key).edit(WARM_UP_PHOTO, age=60)
