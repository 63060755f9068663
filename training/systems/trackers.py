"""Experiment trackers for the trainer: TensorBoard when it is installed, and always a JSONL file.

The JSONL tracker is an accelerate ``GeneralTracker``: it works offline, needs nothing beyond the
standard library, and is what tests, the model card and quick plots read (``output_dir/logs.jsonl``,
one JSON object per logging step, appended across resumptions).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker

LOG_NAME = "logs.jsonl"


def _plain(value: Any) -> Any:
    """JSON-safe scalars: tensors/numpy to floats, non-finite floats to strings (JSON has no NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class JSONLTracker(GeneralTracker):
    """Appends ``{"step": ..., "time": ..., **values}`` lines to ``<logging_dir>/logs.jsonl``."""

    name = "jsonl"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, run_name: str, logging_dir: str | Path) -> None:
        super().__init__()
        self.run_name = run_name
        self.logging_dir = Path(logging_dir)
        self.path = self.logging_dir / LOG_NAME
        self._handle: Any = None

    @property
    def tracker(self) -> Any:
        if self._handle is None:
            self.logging_dir.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        return self._handle

    def store_init_configuration(self, values: dict[str, Any]) -> None:
        self.logging_dir.mkdir(parents=True, exist_ok=True)
        (self.logging_dir / "hparams.json").write_text(json.dumps(values, indent=2, default=str), encoding="utf-8")

    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        record = {"step": step, "time": round(time.time(), 3), **{k: _plain(v) for k, v in values.items()}}
        self.tracker.write(json.dumps(record) + "\n")
        self.tracker.flush()

    def finish(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            return False
    return True


def build_trackers(kind: str, output_dir: str | Path) -> list[Any]:
    """Trackers for ``Accelerator(log_with=...)``: JSONL always; TensorBoard for "tensorboard" or "auto" if installed."""
    if kind not in ("auto", "tensorboard", "jsonl"):
        raise ValueError(f"train.tracker must be auto, tensorboard or jsonl, not {kind!r}")
    trackers: list[Any] = [JSONLTracker("train", output_dir)]
    if kind == "tensorboard" and not tensorboard_available():
        raise ValueError("train.tracker=tensorboard but neither tensorboard nor tensorboardX is installed")
    if kind == "tensorboard" or (kind == "auto" and tensorboard_available()):
        trackers.append("tensorboard")
    return trackers


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> flat ``a.b`` keys with scalar values (TensorBoard hparams accept only scalars)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, name + "."))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a logs.jsonl (a torn last line from a killed run is skipped)."""
    records = []
    file = Path(path)
    if file.is_dir():
        file = file / LOG_NAME
    if not file.is_file():
        return records
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
