"""Which editors the Space offers, and one lazily loaded FaceEditor per editor.

The model selector lists the default editor (``$GANIME_AGE_MODEL``, else the embedded one) and, for every folder
under ``src/ganime_age/weights/`` holding a refiner (a model whose class declares the role "refiner"), the
default editor with that refiner on top: a new refiner (RAGAN, AgeTransGAN, a retrained GANimation-age) shows up
by adding its folder, without touching the Space.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ganime_age.editing import FaceEditor
    from space.budget import MemoryBudget

logger = logging.getLogger(__name__)

DEFAULT_KEY = "default"
WARM_UP_PHOTO = Path(__file__).resolve().parent / "examples" / "astronaut.jpg"


@dataclass(frozen=True)
class ModelChoice:
    key: str  # the value the dropdown and the API use
    label: str  # what a visitor reads
    source: str | None  # editor or model (folder or Hub id) for FaceEditor.from_pretrained; None = the default


def _role(folder: Path) -> str | None:
    """The role of the model a folder holds (from its config.json's model_type), or None."""
    from ganime_age.errors import GanimeAgeError
    from ganime_age.hub import model_class_of

    try:
        return model_class_of(folder).role
    except GanimeAgeError:
        return None


def available_models(weights_dir: Path | None = None, env_model: str | None = None) -> list[ModelChoice]:
    """The default editor first, then the default editor with each shipped refiner on top."""
    from ganime_age.editing import DEFAULT_EDITOR_DIR, MODEL_ENV, WEIGHTS_DIR

    weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    env_model = env_model if env_model is not None else os.environ.get(MODEL_ENV) or None
    if env_model:
        folder = Path(env_model)
        choices = [ModelChoice(DEFAULT_KEY, folder.name if folder.is_dir() else env_model, env_model)]
    else:
        choices = [ModelChoice(DEFAULT_KEY, "ganime-age (the fitted engine)", None)]
    if weights_dir.is_dir():
        for folder in sorted(p for p in weights_dir.iterdir() if p.is_dir()):
            if folder.resolve() == DEFAULT_EDITOR_DIR.resolve() or _role(folder) != "refiner":
                continue  # the engine, the age estimator, the face models: parts of the default editor
            if env_model and Path(env_model).is_dir() and folder.resolve() == Path(env_model).resolve():
                continue
            choices.append(ModelChoice(folder.name, f"engine + {folder.name}", str(folder)))
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

    def choices(self) -> list[ModelChoice]:
        return list(self.models)

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
                from ganime_age.editing import EditorConfig, FaceEditor

                logger.info("loading editor %s (%s)", choice.label, choice.source or "embedded default")
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
