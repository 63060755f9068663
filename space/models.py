"""Which systems the Space offers, and one lazily loaded FaceEditor per system.

The "Model" dropdown lists the engine alone (the default editor: ``$GANIME_AGE_MODEL``, else the embedded one) and
the same editor with each shipped refiner on top, by the names the registry finds
(:func:`ganime_age.editing.shipped_refiners`: the folders under ``src/ganime_age/weights/refiners/``), so a refiner
shipped with ``training/ship_refiner.py`` shows up without touching the Space, and a visitor compares the systems on
their own photo. Each refiner is labelled with its Table I verdict (its ``table1.json``): today none beats the
engine, so each reads "engine + NAME (no better, Table I)". The default editor is loaded once (up front with
``preload``); a refiner is loaded only when it is first picked, then kept, and put on top of it with
:meth:`FaceEditor.with_refiner`: the systems share the engine, the estimators and the photos' analyses, so switching
the model on a photo re-runs only the edit.
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
    refiner: str | None = None  # a shipped refiner's name (or folder) on top of that editor; None = the engine alone


def available_models(refiners_dir: Path | None = None, env_model: str | None = None) -> list[ModelChoice]:
    """The engine alone (the default editor) first, then the default editor with each shipped refiner on top."""
    from ganime_age.editing import MODEL_ENV, shipped_refiners

    env_model = env_model if env_model is not None else os.environ.get(MODEL_ENV) or None
    if env_model:
        folder = Path(env_model)
        base = ModelChoice(DEFAULT_KEY, folder.name if folder.is_dir() else env_model, env_model)
    else:
        base = ModelChoice(DEFAULT_KEY, "engine alone (default)", None)
    choices = [base]
    for name, folder in shipped_refiners(refiners_dir).items():
        where = name if refiners_dir is None else str(folder)
        choices.append(ModelChoice(name, f"engine + {name} ({table1_verdict(folder)})", base.source, where))
    return choices


def table1_verdict(folder: Path) -> str:
    """A refiner's Table I verdict in a few words, from the ``table1.json`` it ships with (training/ship_refiner.py):
    "no better, Table I" where it does not beat the engine alone, "better, Table I" where it does."""
    try:
        verdict = json.loads((Path(folder) / "table1.json").read_text(encoding="utf-8"))["verdict"]
        beats = verdict["beats_engine"]
    except (OSError, ValueError, KeyError, TypeError):
        return "not in Table I"
    return "better, Table I" if beats is True else "no better, Table I"


class EditorProvider:
    """Loads each FaceEditor once, on first use (the default one up front with `preload`), and hands it out."""

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
        # the systems share one editor's analyser and photo sessions (FaceEditor.with_refiner): one event at a time
        self._busy = threading.Lock()

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

    @property
    def loaded(self) -> list[str]:
        """The keys of the systems loaded so far, in the dropdown's order."""
        return [m.key for m in self.models if m.key in self._editors]

    def choice(self, key: str | None) -> ModelChoice:
        key = key or DEFAULT_KEY
        for model in self.models:
            if model.key == key:
                return model
        from ganime_age.errors import WeightsError, echo

        raise WeightsError(f"unknown model {echo(key)}; this Space offers: {', '.join(m.key for m in self.models)}")

    def get(self, key: str | None = None) -> FaceEditor:
        choice = self.choice(key)
        editor = self._editors.get(choice.key)
        if editor is not None:
            return editor
        with self._lock:  # two first requests must not load the same model twice
            editor = self._editors.get(choice.key)
            if editor is None:
                base = self._editors.get(DEFAULT_KEY)
                if base is None:
                    from ganime_age.editing import EditorConfig, FaceEditor

                    logger.info("loading editor %s (%s)", self.models[0].label, choice.source or "embedded default")
                    config = EditorConfig(device=self.device, precision=self.precision)
                    base = FaceEditor.from_pretrained(choice.source, config=config)
                    self._editors[DEFAULT_KEY] = base
                editor = base
                if choice.refiner is not None:
                    logger.info("loading refiner %s", choice.refiner)
                    editor = base.with_refiner(choice.refiner)
                self._editors[choice.key] = editor
        return editor

    __call__ = get

    @contextmanager
    def session(self, key: str | None = None) -> Iterator[FaceEditor]:
        """The editor for `key`, used by one event at a time.

        A FaceEditor keeps a per-photo cache and MediaPipe graphs that are not meant for concurrent
        calls, and every system here shares the default editor's, so events take turns (on ZeroGPU each GPU
        call runs in its own worker process, so there they never share one).
        """
        editor = self.get(key)
        with self._busy:
            yield editor

    def preload(self) -> None:
        """Load the default editor now, and run one edit of a shipped example with it: on ZeroGPU, state loaded
        inside a GPU call is not kept, and the face detector, landmarker and segmenter are created on first use
        (about 0.2 GB), which belongs in the idle level the memory budget is measured from.

        The refiners are not loaded here: none beats the engine alone (Table I) and each adds 1-2 s to an edit,
        so one is loaded when a visitor first picks it (1-4 MB of weights, a fraction of a second; on ZeroGPU,
        where a GPU call's state is not kept, in every call that uses it)."""
        self.get(DEFAULT_KEY).edit(WARM_UP_PHOTO, age=60)
