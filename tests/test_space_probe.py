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
import re
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import webp_claiming
from PIL import Image

from space.common import NOT_UPLOADED, not_uploaded
from space.serve import ServedSpace, serve

REPO = Path(__file__).resolve().parents[1]

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
    """The app.py server process (space.serve) and raw HTTP calls to its API."""

    def __init__(self, served: ServedSpace) -> None:
        self.served = served
        self.url = served.url.rstrip("/")
        self.process = served.process
        self.upload_dir = served.cache

    def log_text(self) -> str:
        self.served.log.flush()
        return self.served.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.served.stop()

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
        body = json.dumps({"data": data})  # NaN as the JSON literal an attacker may send (httpx's json= refuses it)
        answer = httpx.post(
            f"{self.url}/gradio_api/call/{endpoint}",
            content=body,
            headers={"content-type": "application/json"},
            timeout=CALL_TIMEOUT,
        )
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


def start_space(root: Path, **settings: str) -> Space:
    """`python app.py` in its own process on a free loopback port, with its own upload folder and `settings`."""
    return Space(serve(root, {"OMP_NUM_THREADS": "1", **settings}, preexec_fn=_limit_memory))


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Space]:
    server = start_space(tmp_path_factory.mktemp("space_probe"))
    try:
        yield server
    finally:
        server.stop()


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
    return [photo, 50, "all", "default", None]  # None: the current age is the estimate


def _age_strip(photo: Any, _: Any) -> list[Any]:
    return [photo, "0", "default", None]


def _expression(photo: Any, _: Any) -> list[Any]:
    return [photo, "all", "default", False, 50, *([0.0] * NUM_AUS)]


def _reenact_source(photo: Any, good: Any) -> list[Any]:
    return [photo, "0", "default", good, False, 50, 1.0]


def _reenact_driving(photo: Any, good: Any) -> list[Any]:
    return [good, "0", "default", photo, False, 50, 1.0]


def _reenact_video_source(photo: Any, good: Any) -> list[Any]:
    return [photo, "0", "default", None, False, 50, 1.0]


def _reenact_video_driving(video: Any, good: Any) -> list[Any]:
    return [good, "0", "default", video, False, 50, 1.0]


# (endpoint, how its data is built with the probe in one photo slot, the slot's API parameter): every photo the
# public API takes
PHOTO_SLOTS = [
    ("age", _age, "photo"),
    ("age_strip", _age_strip, "photo"),
    ("expression", _expression, "photo"),
    ("reenact", _reenact_source, "photo"),
    ("reenact", _reenact_driving, "driving"),
    ("reenact_video", _reenact_video_source, "photo"),
]


def _assert_refused(event: str, payload: Any, seconds: float, paths: list[str], label: str) -> str | None:
    assert event == "error", f"{label}: answered {event!r} with {str(payload)[:300]}"
    message = payload.get("error") if isinstance(payload, dict) else payload
    assert seconds < 30, f"{label}: took {seconds:.0f} s"
    assert message, f"{label}: a bare 'Error' with no message"
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
    for endpoint, build, parameter in PHOTO_SLOTS:
        messages = set()
        for name, path in probes.items():
            label = f"/{endpoint} ({build.__name__}) with {name} {path}"
            event, payload, seconds = space.call(endpoint, build({"path": path}, good))
            messages.add(_assert_refused(event, payload, seconds, paths, label))
        # one answer for a photo, a folder, a text file, a device, a FIFO and a missing path: no oracle
        assert messages == {not_uploaded(parameter)}, f"/{endpoint} ({build.__name__}): {messages}"
    grown = space.rss_mb - baseline
    assert grown < 200, f"the server grew by {grown:.0f} MB while refusing the probes"
    # the server still serves: the same upload again, and a second upload
    event, payload, _ = space.call("age", _age({"path": space.upload(ASTRONAUT), "meta": META}, None))
    assert event == "complete", payload
    (_, after), summary = payload
    assert Path(after["path"]).is_file() and "**50** years" in summary


def test_file_data_with_meta_and_bare_strings_are_refused_alike(space: Space, probes: dict[str, str]) -> None:
    """With gradio's `meta` key, gradio itself refuses paths outside its upload folder (named by the Space like
    its own refusals, not a bare "Error"); one inside it that gradio did not store reaches the Space's check. A
    bare string is never a path. None is read."""
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
        for video in ({"path": path}, {"path": path, "meta": META}, path, {"path": 7, "meta": META}):
            event, payload, seconds = space.call("reenact_video", [good, "0", "default", video, False, 50, 1.0])
            message = _assert_refused(event, payload, seconds, paths, f"/reenact_video with the video {video}")
            assert message == not_uploaded("video"), message
    assert with_meta == {NOT_UPLOADED}, with_meta
    event, payload, _ = space.call("age", _age(good, None))
    assert event == "complete", payload


def test_an_upload_sent_without_meta_is_still_served(space: Space) -> None:
    """Raw HTTP clients that upload first and send the returned path (without `meta`) keep working: the file is
    in gradio's upload registry. So do the shipped examples."""
    uploaded = space.upload(ASTRONAUT)
    for photo in ({"path": uploaded}, {"path": str(ASTRONAUT)}):
        event, payload, _ = space.call("age", _age(photo, None))
        assert event == "complete", (photo, payload)


def _traceback_count(space: Space) -> int:
    return space.log_text().count("Traceback")


def test_paths_gradio_cannot_use_are_refused_naming_the_parameter_in_one_log_line(space: Space) -> None:
    """An http URL (which gradio would download from the server), a NUL byte and a 10,000-character path got
    "does not fit this endpoint (ValueError/OSError)", naming no parameter, and each refused path logged gradio's
    whole traceback. Now every upload slot names its parameter, and each refusal is one line in the log."""
    good = {"path": space.upload(ASTRONAUT), "meta": META}
    paths = {
        "an http URL": "http://127.0.0.1:9/photo.jpg",
        "a NUL byte": "photo\x00.jpg",
        "10,000 characters": "a" * 10_000,
        "outside the upload folder": str(ASTRONAUT.parent.parent / "README.md"),
    }
    slots = [*PHOTO_SLOTS, ("reenact_video", _reenact_video_driving, "video")]
    tracebacks, lines = _traceback_count(space), len(space.log_text().splitlines())
    calls = 0
    for endpoint, build, parameter in slots:
        for name, path in paths.items():
            for payload in ({"path": path, "meta": META}, {"path": path}):
                event, answer, seconds = space.call(endpoint, build(payload, good))
                label = f"/{endpoint} {parameter} with {name}{' and meta' if 'meta' in payload else ''}"
                message = _assert_refused(event, answer, seconds, [], label)
                assert message == not_uploaded(parameter), f"{label}: {message}"
                calls += 1
    assert _traceback_count(space) == tracebacks, "a refused path logged a traceback"
    grown = len(space.log_text().splitlines()) - lines
    assert grown <= calls, f"{calls} refusals logged {grown} lines"


def test_gradios_own_video_payload_is_taken_as_the_video(space: Space) -> None:
    """`{"video": FileData, "subtitles": null}`, the payload gradio's Video sent (and older clients still send),
    was refused with "The photo did not arrive ...", blaming the photo."""
    good = {"path": space.upload(ASTRONAUT), "meta": META}
    video = {"path": space.upload(REPO / "space" / "examples" / "astronaut-turning.mp4"), "meta": META}
    event, payload, _ = space.call("reenact_video", _reenact_video_driving({"video": video, "subtitles": None}, good))
    assert event == "complete", payload
    _, result, note = payload
    assert Path(result["path"]).suffix == ".mp4" and Path(result["path"]).stat().st_size > 0 and note


def test_a_decompression_bomb_sent_as_the_video_is_refused_by_its_size(space: Space, tmp_path: Path) -> None:
    """A small WebP claiming 268 MP as the driving video got "Internal error: DecompressionBombError"."""
    bomb = tmp_path / "bomb.webp"
    bomb.write_bytes(webp_claiming(16384, 16384))
    good = {"path": space.upload(ASTRONAUT), "meta": META}
    video = {"path": space.upload(bomb), "meta": META}
    event, payload, _ = space.call("reenact_video", _reenact_video_driving(video, good))
    assert event == "error", payload
    assert payload["title"] == "Unusable video", payload
    assert "268 MP" in payload["error"] and "limited to 17 MP" in payload["error"], payload


@pytest.mark.parametrize("value", ["abc", "yes", 2, [], None, float("nan")])
@pytest.mark.parametrize("endpoint", ["expression", "reenact"])
def test_change_age_must_be_a_boolean(space: Space, endpoint: str, value: Any) -> None:
    """'abc', NaN, 2, [] and 'yes' were taken by their truth value."""
    photo = {"path": space.upload(ASTRONAUT), "meta": META}
    if endpoint == "expression":
        data = [photo, "all", "default", value, 50, *([None] * NUM_AUS)]
    else:
        data = [photo, "0", "default", photo, value, 50, 1.0]
    event, payload, _ = space.call(endpoint, data)
    assert event == "error", payload
    assert "change_age must be true or false" in payload["error"] and payload["title"] == "Invalid value", payload


def test_echoed_values_are_short_escaped_and_titled(space: Space) -> None:
    """A 1 MB face choice came back whole (a 1 MB answer), with its markup raw under the title "Error"; a 1 MB model
    name was logged whole (14 calls grew the log by 6.5 MB)."""
    photo = {"path": space.upload(ASTRONAUT), "meta": META}
    huge = "<script>alert(1)</script>" + "x" * 1_000_000
    before = space.served.log_path.stat().st_size
    event, payload, _ = space.call("age", [photo, 50, huge, "default", None])
    assert event == "error" and payload["title"] == "Unknown face choice", payload
    assert len(payload["error"]) < 400 and "&lt;script&gt;" in payload["error"] and "<script>" not in payload["error"]
    event, payload, _ = space.call("age", [photo, 50, "all", huge, None])
    assert event == "error" and payload["title"] == "Model problem", payload
    assert len(payload["error"]) < 400 and "<script>" not in payload["error"], payload
    grown = space.served.log_path.stat().st_size - before
    assert grown < 2_000, f"two refusals grew the log by {grown:,} bytes"


@pytest.mark.parametrize(
    ("endpoint", "build"),
    [
        ("age", lambda photo: [photo, 10**400, "all", "default", None]),
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


def test_a_large_request_writes_at_most_four_times_its_upload(space: Space, tmp_path: Path, shared_dir: Path) -> None:
    """A 12 MP edit wrote four full-size PNGs (47 MB for a 2 MB upload); now the upload is shown as it is and the
    result is one JPEG at quality 95: everything the request adds to gradio's cache, upload included, is at most
    4x the upload."""
    photo = Image.open(sorted((shared_dir / "datasets" / "cfee_full" / "images").glob("*.jpg"))[3])
    noise = np.random.default_rng(0).normal(0, 3, (3000, 4000, 3))  # a camera's grain: a 12 MP photo, not a blur
    big = np.clip(np.asarray(photo.resize((4000, 3000), Image.BICUBIC), np.float32) + noise, 0, 255).astype(np.uint8)
    path = tmp_path / "twelve-megapixels.jpg"
    Image.fromarray(big).save(path, quality=92)

    def cached() -> int:
        return sum(p.stat().st_size for p in space.upload_dir.rglob("*") if p.is_file())

    before = cached()
    event, payload, _ = space.call("age", _age({"path": space.upload(path), "meta": META}, None))
    assert event == "complete", payload
    written, upload = cached() - before, path.stat().st_size
    (_, after), _ = payload
    assert Image.open(after["path"]).size == (4000, 3000)
    assert written <= 4 * upload, f"{written / 1e6:.1f} MB written for a {upload / 1e6:.1f} MB upload"


def test_the_cache_is_cleaned_of_files_past_their_age(tmp_path: Path, utk_sample: list[Path]) -> None:
    """gradio's delete_cache, set from GANIME_AGE_CACHE_MAX_AGE: an upload and its edit are gone once older."""
    server = start_space(tmp_path, GANIME_AGE_CACHE_MAX_AGE="3")
    try:
        examples = {p for p in server.upload_dir.rglob("*") if p.is_file()}  # the shipped examples: kept
        event, payload, _ = server.call("age", _age({"path": server.upload(utk_sample[0]), "meta": META}, None))
        assert event == "complete", payload
        (_, after), _ = payload
        files = [p for p in server.upload_dir.rglob("*") if p.is_file() and p not in examples]
        assert Path(after["path"]) in files and len(files) == 2, files  # the upload and the edit
        deadline = time.monotonic() + 20
        while any(p.exists() for p in files) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [p for p in files if p.exists()], "files past their age are still in the cache"
        assert all(p.exists() for p in examples)
    finally:
        server.stop()


def test_too_few_values_are_refused_in_one_short_line(space: Space) -> None:
    """Four values where /age takes five, one of them a 1 MB string: gradio's check raised a ValueError holding the
    whole request, and the queue wrote its 20-line traceback, 1 MB of log from one call."""
    photo = {"path": space.upload(ASTRONAUT), "meta": META}
    before, tracebacks = space.served.log_path.stat().st_size, _traceback_count(space)
    event, payload, _ = space.call("age", [photo, 50, "x" * 1_000_000, "default"])
    assert event == "error" and payload["title"] == "Invalid request", payload
    assert "takes 5 values" in payload["error"] and "sent 4" in payload["error"] and len(payload["error"]) < 200
    time.sleep(0.5)  # the server's log is written by another process
    grown = space.served.log_path.stat().st_size - before
    assert grown < 400, f"one refusal grew the log by {grown:,} bytes"
    assert _traceback_count(space) == tracebacks, "the refusal logged a traceback"


@pytest.mark.parametrize("face", ["1" + "0" * 400, "Face " + "9" * 400, 10**400], ids=["digits", "label", "number"])
def test_a_huge_face_index_gets_a_short_message(space: Space, face: Any) -> None:
    """The face selector's value is a string in the API: a 401-digit one was echoed whole, in the answer and the
    log."""
    photo = {"path": space.upload(ASTRONAUT), "meta": META}
    before = space.served.log_path.stat().st_size
    event, payload, _ = space.call("age", [photo, 50, face, "default", None])
    assert event == "error" and payload["title"] == "No such face", payload
    assert len(payload["error"]) < 200 and "9999999999" not in payload["error"], payload
    assert "0000000000" not in payload["error"] and re.search(r"\b40[01] digits", payload["error"]), payload
    time.sleep(0.5)
    assert space.served.log_path.stat().st_size - before < 400
