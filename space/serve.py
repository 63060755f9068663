"""`python app.py` in a process of its own, on a free loopback port with a gradio cache of its own: the Space as a
visitor's machine runs it, for the tests and benchmarks that probe it from outside over HTTP (its memory can be
measured, a hang cannot stall the caller). Imports neither gradio nor torch.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 240.0


@dataclass
class ServedSpace:
    """A running `python app.py`: its URL, process, gradio cache folder (``GRADIO_TEMP_DIR``) and log."""

    url: str
    process: subprocess.Popen
    cache: Path
    log_path: Path
    log: IO[str]

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop within 30 s), then close its log."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(
    root: Path,
    settings: Mapping[str, str] | None = None,
    *,
    timeout: float = START_SECONDS,
    preexec_fn: Callable[[], None] | None = None,
) -> ServedSpace:
    """Start `python app.py` with its cache in ``root/uploads`` and its output in ``root/server.log``, `settings`
    added to the environment; return once it answers ``/gradio_api/info``. A server that exits or does not answer
    within `timeout` seconds raises RuntimeError with the end of its log."""
    import httpx

    cache = root / "uploads"
    cache.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_TEMP_DIR": str(cache),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        **(settings or {}),
    }
    log_path = root / "server.log"
    log = open(log_path, "w")  # noqa: SIM115  (closed by ServedSpace.stop)
    process = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec_fn,
    )
    served = ServedSpace(f"http://127.0.0.1:{port}", process, cache, log_path, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log.close()
            raise RuntimeError(f"app.py exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{served.url}/gradio_api/info", timeout=5).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            served.stop()
            raise RuntimeError(f"app.py did not start within {timeout:.0f} s: {log_path.read_text()[-2000:]}")
        time.sleep(1)
