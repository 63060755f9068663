"""`gpu`: the ZeroGPU decorator when running on a ZeroGPU Space, a no-op everywhere else.

`spaces.GPU` is itself a pass-through off ZeroGPU, but importing `spaces` pulls in its own
machinery (and on ZeroGPU it must come before CUDA is initialised), so it is imported only where
it has a job to do: when ``SPACES_ZERO_GPU`` is set, as it is on ZeroGPU hardware.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def on_zero_gpu() -> bool:
    """True inside a ZeroGPU Space (the platform sets SPACES_ZERO_GPU=true there)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def on_spaces() -> bool:
    """True inside any Hugging Face Space (the platform sets SPACE_ID)."""
    return bool(os.environ.get("SPACE_ID"))


def gpu(duration: int = 60) -> Callable[[F], F]:
    """Ask ZeroGPU for a GPU for up to `duration` seconds while the function runs.

    On ZeroGPU the function runs in a forked worker: its arguments and results are pickled, and a
    `gr.Error` raised inside is re-raised in the app (any other exception becomes an opaque
    "ZeroGPU worker error"), so user mistakes must be turned into `gr.Error` inside the function.
    """

    def decorate(fn: F) -> F:
        if not on_zero_gpu():
            return fn
        import spaces

        return spaces.GPU(duration=duration)(fn)

    return decorate
