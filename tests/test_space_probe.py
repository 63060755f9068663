"""A probe of the running Space over raw HTTP, the way an attacker would send it (issue 20's security section).

The Space runs as `python app.py` runs it, in its own process (its memory can be measured, a hang cannot stall
the tests), with an upload folder of its own. Every photo slot of every endpoint gets file data naming a server
path instead of an upload: a real photo outside the upload folder, one planted in the upload folder behind
gradio's back, a symlink and a ``..`` escape out of it, ``/etc/shadow``, a folder, a missing path, ``/dev/zero``
and a FIFO. None may come back as an image; all get the same message, which names no path (no oracle of the
server's files); the server's memory stays flat, every call returns, and a real upload is still served.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import stop_process

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from space.common import NOT_UPLOADED  # noqa: E402

ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
NUM_AUS = 17
CALL_TIMEOUT = 60.0
SERVER_MEMORY_LIMIT = 12 << 30  # address space: a regression that reads /dev/zero fails here, not the machine
META = {"_type": "gradio.FileData"}


def _vm_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SERVER_MEMORY_LIMIT, SERVER_MEMORY_LIMIT))


class Space:
    """The app.py server process and raw HTTP calls to its API."""

    def __init__(self, url: str, process: subprocess.Popen, upload_dir: Path) -> None:
        self.url = url.rstrip("/")
        self.process = process
        self.upload_dir = upload_dir

    def upload(self, path: Path) -> str:
        import httpx

        with open(path, "rb") as handle:
            answer = httpx.post(f"{self.url}/gradio_api/upload", files={"files": (path.name, handle)}, timeout=30)
        answer.raise_for_status()
        return answer.json()[0]

    def call(self, endpoint: str, data: list[Any]) -> tuple[str, Any, float]:
        """(event, data, seconds) of one API call: event is "complete" or "error"."""
        import httpx

        started = time.monotonic()
        answer = httpx.post(f"{self.url}/gradio_api/call/{endpoint}", json={"data": data}, timeout=CALL_TIMEOUT)
        answer.raise_for_status()
        event_id = answer.json()["event_id"]
        stream = httpx.get(f"{self.url}/gradio_api/call/{endpoint}/{event_id}", timeout=CALL_TIMEOUT).text
        event, payload = "", None
        for line in stream.splitlines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
        return event, payload, time.monotonic() - started

    @property
    def rss_mb(self) -> float:
        return _vm_rss_mb(self.process.pid)


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Space]:
    root = tmp_path_factory.mktemp("space_probe")
    upload_dir = root / "uploads"
    upload_dir.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "GRADIO_TEMP_DIR": str(upload_dir),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    log = open(root / "server.log", "w")  # noqa: SIM115  (closed in the finally below)
    process = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_limit_memory,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                raise AssertionError(f"app.py exited with {process.returncode}: {(root / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/gradio_api/info", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("app.py did not start within 240 s")
            time.sleep(1)
        yield Space(url, process, upload_dir)
    finally:
        stop_process(process, log)


@pytest.fixture(scope="module")
def probes(space: Space, tmp_path_factory: pytest.TempPathFactory, utkface_files: list[Path]) -> dict[str, str]:
    """name -> a server path that no visitor uploaded."""
    outside = tmp_path_factory.mktemp("server_files")
    server_photo = outside / "server-photo.jpg"
    shutil.copyfile(ASTRONAUT, server_photo)
    beside_uploads = space.upload_dir.parent / "beside-uploads.jpg"
    shutil.copyfile(ASTRONAUT, beside_uploads)
    planted = space.upload_dir / "planted" / "planted.jpg"  # in the upload folder, but gradio never stored it
    planted.parent.mkdir()
    shutil.copyfile(ASTRONAUT, planted)
    link = space.upload_dir / "planted" / "link.jpg"
    link.symlink_to(server_photo)
    fifo = outside / "fifo.jpg"
    os.mkfifo(fifo)
    return {
        "server photo": str(server_photo),
        "shared dataset photo": str(utkface_files[0]),
        "planted in the upload folder": str(planted),
        "symlink out of the upload folder": str(link),
        "dot-dot out of the upload folder": f"{space.upload_dir}/planted/../../{beside_uploads.name}",
        "/etc/shadow": "/etc/shadow",
        "a folder": "/root",
        "missing": str(outside / "missing.jpg"),
        "/dev/zero": "/dev/zero",
        "fifo": str(fifo),
    }


def _age(photo: Any, _: Any) -> list[Any]:
    return [photo, 50, "all", "default"]


def _age_strip(photo: Any, _: Any) -> list[Any]:
    return [photo, "0", "default"]


def _expression(photo: Any, _: Any) -> list[Any]:
    return [photo, "all", "default", False, 50, *([0.0] * NUM_AUS)]


def _reenact_source(photo: Any, good: Any) -> list[Any]:
    return [photo, "0", "default", good, False, 50, 1.0]


def _reenact_driving(photo: Any, good: Any) -> list[Any]:
    return [good, "0", "default", photo, False, 50, 1.0]


def _reenact_video_source(photo: Any, good: Any) -> list[Any]:
    return [photo, "0", "default", None, False, 50, 1.0]


# (endpoint, how its data is built with the probe in one photo slot): every photo the public API takes
PHOTO_SLOTS = [
    ("age", _age),
    ("age_strip", _age_strip),
    ("expression", _expression),
    ("reenact", _reenact_source),
    ("reenact", _reenact_driving),
    ("reenact_video", _reenact_video_source),
]


def _assert_refused(event: str, payload: Any, seconds: float, paths: list[str], label: str) -> str | None:
    assert event == "error", f"{label}: answered {event!r} with {str(payload)[:300]}"
    message = payload.get("error") if isinstance(payload, dict) else payload
    assert seconds < 30, f"{label}: took {seconds:.0f} s"
    if message is not None:
        assert "/" not in message, f"{label}: the message shows a path: {message}"
        for path in paths:
            assert Path(path).name not in message, f"{label}: the message names {Path(path).name}: {message}"
    return message


def test_no_server_file_is_read_and_every_refusal_is_the_same(space: Space, probes: dict[str, str]) -> None:
    good = {"path": space.upload(ASTRONAUT), "meta": META}
    event, payload, _ = space.call("age", _age(good, None))  # loads the models: the baseline below includes them
    assert event == "complete", payload
    baseline = space.rss_mb
    paths = list(probes.values())
    for endpoint, build in PHOTO_SLOTS:
        messages = set()
        for name, path in probes.items():
            label = f"/{endpoint} ({build.__name__}) with {name} {path}"
            event, payload, seconds = space.call(endpoint, build({"path": path}, good))
            messages.add(_assert_refused(event, payload, seconds, paths, label))
        # one answer for a photo, a folder, a text file, a device, a FIFO and a missing path: no oracle
        assert messages == {NOT_UPLOADED}, f"/{endpoint} ({build.__name__}): {messages}"
    grown = space.rss_mb - baseline
    assert grown < 200, f"the server grew by {grown:.0f} MB while refusing the probes"
    # the server still serves: the same upload again, and a second upload
    event, payload, _ = space.call("age", _age({"path": space.upload(ASTRONAUT), "meta": META}, None))
    assert event == "complete", payload
    (_, after), summary = payload
    assert Path(after["path"]).is_file() and "**50** years" in summary


def test_file_data_with_meta_and_bare_strings_are_refused_alike(space: Space, probes: dict[str, str]) -> None:
    """With gradio's `meta` key, gradio itself refuses paths outside its upload folder (a bare "Error"); one inside
    it that gradio did not store reaches the Space's check. A bare string is never a path. None is read."""
    good = {"path": space.upload(ASTRONAUT), "meta": META}
    paths = list(probes.values())
    with_meta = set()
    for name, path in probes.items():
        event, payload, seconds = space.call("age", _age({"path": path, "meta": META}, None))
        message = _assert_refused(event, payload, seconds, paths, f"/age with meta and {name}")
        with_meta.add(message)
        event, payload, seconds = space.call("age", _age(path, None))
        assert _assert_refused(event, payload, seconds, paths, f"/age with the string {name}") == NOT_UPLOADED
        # the driving video slot: gradio's Video payload needs `meta`, and the upload-folder check applies
        for video in ({"path": path}, {"path": path, "meta": META}):
            event, payload, seconds = space.call("reenact_video", [good, "0", "default", video, False, 50, 1.0])
            _assert_refused(event, payload, seconds, paths, f"/reenact_video with the video {video}")
    assert with_meta <= {None, NOT_UPLOADED}, with_meta
    event, payload, _ = space.call("age", _age(good, None))
    assert event == "complete", payload


def test_an_upload_sent_without_meta_is_still_served(space: Space) -> None:
    """Raw HTTP clients that upload first and send the returned path (without `meta`) keep working: the file is
    in gradio's upload registry. So do the shipped examples."""
    uploaded = space.upload(ASTRONAUT)
    for photo in ({"path": uploaded}, {"path": str(ASTRONAUT)}):
        event, payload, _ = space.call("age", _age(photo, None))
        assert event == "complete", (photo, payload)


@pytest.mark.parametrize(
    ("endpoint", "build"),
    [
        ("age", lambda photo: [photo, 10**400, "all", "default"]),
        ("expression", lambda photo: [photo, "all", "default", True, 50, *([0.0] * 8), 10**400, *([0.0] * 8)]),
        ("expression", lambda photo: [photo, "all", "default", True, -(10**400), *([0.0] * NUM_AUS)]),
        ("reenact", lambda photo: [photo, "0", "default", photo, True, 10**400, 1.0]),
    ],
    ids=["age", "expression AU12", "expression age", "reenact age"],
)
def test_a_huge_number_gets_a_readable_error(space: Space, endpoint: str, build: Any) -> None:
    """10**400 overflowed float() (OverflowError), which the Space showed as a bare "Error"."""
    photo = {"path": space.upload(ASTRONAUT), "meta": META}
    event, payload, _ = space.call(endpoint, build(photo))
    assert event == "error", payload
    message = payload.get("error") if isinstance(payload, dict) else payload
    assert message and "must be between" in message and "integer of about 401 digits" in message, message
