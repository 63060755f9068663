"""The Space's memory budget: every request is admitted by the memory its photo will take, known from the header.

A photo's pixels set what its edit holds in memory (the decoded photo, the engine's reads, the output), so the
peak of each kind of request is a line in its pixel count, measured by ``benchmarks/bench_memory.py`` and
rounded up here. Before a pixel is decoded, a request reads its photo's header (size, format, a JPEG's data
present), is refused if the photo exceeds the Space's pixel limit, and then waits until the memory its edit
needs is free: the requests running at once never need more than the budget holds beside the loaded models.
After a request (and always after a failure) the memory it held goes back to the system: ``gc.collect`` frees
what reference cycles held (a traceback's frames hold a photo) and glibc's ``malloc_trim`` returns freed heap
pages, which it otherwise keeps for the next allocation.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import gradio as gr

logger = logging.getLogger(__name__)

MB = 1_000_000


@dataclass(frozen=True)
class MemoryLine:
    """A request's peak memory above the server's idle level: ``bytes_per_pixel`` x pixels + ``fixed``."""

    bytes_per_pixel: float
    fixed: int

    def need(self, pixels: int) -> int:
        return int(self.bytes_per_pixel * pixels + self.fixed)


# Measured on 1-50 MP photos (benchmarks/bench_memory.py; tables in benchmarks/README.md: the age edit 19.6 bytes a
# pixel and 94 MB, the age strip 39.4 and 76 MB, an AU edit 16.4 and 47 MB, a reenactment 85.8 and 60 MB) and rounded
# up by a quarter; a request's pixels are its photos' summed (a reenactment's source and driver, a driving video's
# source and one frame). An analysis costs what the age edit does: it decodes and parses the photo, which dominates.
REQUEST_MEMORY: dict[str, MemoryLine] = {
    "analyze": MemoryLine(25.0, 120 * MB),
    "age": MemoryLine(25.0, 120 * MB),
    "age_strip": MemoryLine(50.0, 95 * MB),
    "expression": MemoryLine(21.0, 60 * MB),
    "reenact": MemoryLine(110.0, 75 * MB),
    "reenact_video": MemoryLine(110.0, 75 * MB),
}
HEADROOM = 450 * MB
"""Beside the idle level: the photo analyses a FaceEditor keeps for slider moves (``EditorConfig.cache_megabytes``,
256 MB, reached after a few large photos and then flat), what stays of the allocator's heaps after them (about
70 MB) and what gradio holds for requests in flight (payloads, queue): measured by benchmarks/bench_memory.py."""

DEFAULT_BUDGET = 4_000 * MB
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_WAIT_SECONDS = 45.0
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_bytes(text: str | int) -> int:
    """'4GB', '4096mb', '4g' or a number of bytes -> bytes (decimal units, as gradio's max_file_size)."""
    if isinstance(text, int):
        return text
    found = SIZE.match(str(text))
    if found is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 4GB or 4096MB)")
    return int(float(found.group(1)) * 1000 ** " kmgt".index(found.group(2).lower() or " "))


def resident_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_memory() -> None:
    """Free what cycles hold and give freed heap pages back to the system (glibc; a no-op elsewhere)."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class MemoryBudget:
    """Admits requests while the memory they need, summed, fits beside the loaded models.

    ``budget`` is the server's whole resident memory allowed; ``idle`` its resident memory with the models
    loaded (measured by :meth:`settle`, after the Space preloads them), so ``budget - idle - HEADROOM`` is what
    requests in flight may take together. A request that could never fit is refused at once, naming the pixel
    count that would; one that fits later waits up to ``wait_seconds`` for running ones to finish.
    """

    def __init__(
        self,
        budget: int = DEFAULT_BUDGET,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        self.budget = budget
        self.max_pixels = max_pixels
        self.wait_seconds = wait_seconds
        self.idle = 0
        self._used = 0
        self._changed = threading.Condition()

    @classmethod
    def from_env(cls) -> MemoryBudget:
        """GANIME_AGE_MEMORY_BUDGET (4GB), GANIME_AGE_MAX_PIXELS (50 MP) and GANIME_AGE_ADMIT_WAIT (45 s)."""
        return cls(
            parse_bytes(os.environ.get("GANIME_AGE_MEMORY_BUDGET", DEFAULT_BUDGET)),
            max_pixels=int(float(os.environ.get("GANIME_AGE_MAX_PIXELS", DEFAULT_MAX_PIXELS))),
            wait_seconds=float(os.environ.get("GANIME_AGE_ADMIT_WAIT", DEFAULT_WAIT_SECONDS)),
        )

    @property
    def capacity(self) -> int:
        """What requests in flight may hold together."""
        return max(0, self.budget - self.idle - HEADROOM)

    @property
    def in_use(self) -> int:
        return self._used

    def settle(self) -> None:
        """Measure the idle level (call with the models loaded and no request running)."""
        release_memory()
        self.idle = resident_bytes()
        largest = max(line.need(self.max_pixels) for line in REQUEST_MEMORY.values())
        logger.info(
            "memory budget %.1f GB: %.1f GB idle, %.1f GB for requests in flight (a %.0f MP edit needs up to %.1f GB)",
            self.budget / 1e9,
            self.idle / 1e9,
            self.capacity / 1e9,
            self.max_pixels / 1e6,
            largest / 1e9,
        )

    def need(self, task: str, pixels: int) -> int:
        return REQUEST_MEMORY[task].need(pixels)

    def largest_pixels(self, task: str) -> int:
        """The most pixels a `task` request may have: the pixel limit, or less where the budget is smaller."""
        line = REQUEST_MEMORY[task]
        return int(min(self.max_pixels, max(0.0, (self.capacity - line.fixed) / line.bytes_per_pixel)))

    @contextmanager
    def admit(self, task: str, pixels: int) -> Iterator[None]:
        """Hold the memory a `task` request on `pixels` pixels needs while the block runs; give it back after."""
        need = self.need(task, pixels)
        if need > self.capacity:
            largest = self.largest_pixels(task)
            raise gr.Error(
                f"This photo is {pixels / 1e6:.0f} MP; this Space edits photos of up to {largest / 1e6:.0f} MP "
                f"(its memory budget is {self.budget / 1e9:.1f} GB). Downscale the photo and upload it again.",
                title="Photo too large for this Space",
                print_exception=False,
            )
        with self._changed:
            if not self._changed.wait_for(lambda: self._used + need <= self.capacity, timeout=self.wait_seconds):
                raise gr.Error(
                    "The Space is busy with other large photos right now; try again in a minute, or upload a "
                    "smaller photo.",
                    title="Busy",
                    print_exception=False,
                )
            self._used += need
        try:
            yield
        finally:
            with self._changed:
                self._used -= need
                self._changed.notify_all()
            if need >= 100 * MB:
                release_memory()
