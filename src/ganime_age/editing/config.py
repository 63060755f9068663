"""An editor's runtime options, and the device it runs on: what the Python API, the CLI and the Space share."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganime_age.errors import ConfigError

GENERATOR_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class EditorConfig:
    """Options of a FaceEditor (which models it holds is its manifest's business: :mod:`.manifest`)."""

    device: str | None = None  # "cuda", "mps", "cpu"; None picks the best available
    detector: str | None = None  # YuNet .onnx path (else resolved by ganime_age.assets)
    landmarker: str | None = None  # MediaPipe face_landmarker.task path
    batch_size: int = 8  # faces per refiner call
    cache_size: int = 8  # photos whose analysis is kept (at most; cache_megabytes bounds their memory too)
    cache_megabytes: float = 256.0  # memory the cached photos may hold; a 100 MP photo alone is ~290 MB
    max_faces: int | None = 32  # photos with more faces are refused (TooManyFacesError); None = no cap
    # refiner arithmetic: "fp32", or "bf16"/"fp16" autocast — faster on GPUs (and bf16 on CPUs with AMX),
    # a few 1/255 levels of difference in the output pixels; "fp16" needs a GPU
    precision: str = "fp32"


def pick_device(name: str | None = None) -> torch.device:
    """The named device (checked: it must exist and be usable here), or the best available one."""
    if name:
        try:
            device = torch.device(name)
        except (RuntimeError, TypeError, ValueError):
            raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is available here; use --device cpu")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
        mps = getattr(torch.backends, "mps", None)
        if device.type == "mps" and (mps is None or not mps.is_available()):
            raise ConfigError(f"device {name!r} asked for, but Apple's MPS is not available here; use cpu")
        if device.type not in ("cpu", "cuda", "mps"):
            raise ConfigError(f"device {name!r} is not supported; use cpu, cuda, cuda:N or mps")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The refiner's autocast dtype for a precision name (None: fp32), refused where the device cannot run it."""
    if precision not in GENERATOR_DTYPES:
        raise ConfigError(f"precision must be one of {', '.join(GENERATOR_DTYPES)}, not {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("precision fp16 needs a GPU; on a CPU use bf16 (fast with AMX) or fp32")
    return GENERATOR_DTYPES[precision]
