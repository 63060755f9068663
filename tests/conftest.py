"""Shared fixtures: real data and models from ../shared (never copied into the project)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANIME_AGE_SHARED", REPO.parent / "shared")).resolve()
UTKFACE = SHARED / "datasets" / "utkface"
GANIMATION_SAMPLE = SHARED / "datasets" / "ganimation_sample"
MODELS = SHARED / "models"

# Point the asset resolver at the shared copies before any test loads a detector.
os.environ.setdefault("GANIME_AGE_ASSETS", str(MODELS))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_configure(config: pytest.Config) -> None:
    if not UTKFACE.is_dir():
        raise pytest.UsageError(f"real test data not found at {SHARED}; set GANIME_AGE_SHARED")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS


@pytest.fixture(scope="session")
def utkface_files() -> list[Path]:
    """All well-formed UTKFace file names, sorted (deterministic picks)."""
    return sorted(p for p in UTKFACE.iterdir() if p.name.count("_") == 3 and p.name.endswith(".jpg.chip.jpg"))


def utk_age(path: Path) -> int:
    return int(path.name.split("_")[0])


@pytest.fixture(scope="session")
def utk_sample(utkface_files: list[Path]) -> list[Path]:
    """50 real faces spread over the age range."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(utkface_files), size=50, replace=False)
    return [utkface_files[i] for i in sorted(picks)]
