"""The Space under load and misuse: 50 visitors at once through gradio_client, and API calls that send junk.

The server is the real app (conftest `space_url`, loopback only) on the embedded default model; the photo
is a shipped public-domain example. Every request must be answered: an edited photo, or for misuse a
readable error that names the problem and shows no server path.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
VISITORS = 50


@pytest.fixture(scope="module")
def client(space_url: str):
    from gradio_client import Client

    return Client(space_url, verbose=False, analytics_enabled=False)


def test_fifty_concurrent_age_requests_are_all_served(client) -> None:
    from gradio_client import handle_file

    photo = handle_file(str(ASTRONAUT))
    started = time.monotonic()
    jobs = [client.submit(photo, 20 + i, "all", "default", api_name="/age") for i in range(VISITORS)]
    answers = [job.result(timeout=180) for job in jobs]  # a refused or failed request raises here
    elapsed = time.monotonic() - started
    original = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    for age, ((before, after), summary) in zip(range(20, 20 + VISITORS), answers, strict=True):
        assert np.asarray(Image.open(after).convert("RGB")).shape == original.shape
        assert f"**{age}** years" in summary, summary
        assert Path(before).is_file()
    print(f"{VISITORS} concurrent /age requests answered in {elapsed:.1f} s")


@pytest.mark.parametrize(
    ("target_age", "face", "expected"),
    [
        ("abc", "all", "target age must be a number"),
        ([30, 40], "all", "target age must be a number"),
        (None, "all", "target age must be a number"),
        (150, "all", "target age must be between 0 and 100"),
        (-5, "all", "target age must be between 0 and 100"),
        (50, "banana", "Unknown face choice"),
        (50, "7", "not in this photo"),
    ],
)
def test_api_misuse_gets_a_readable_error(client, target_age, face, expected: str) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=expected) as caught:
        client.predict(handle_file(str(ASTRONAUT)), target_age, face, "default", api_name="/age")
    assert "/tmp" not in str(caught.value) and str(REPO) not in str(caught.value)


@pytest.mark.parametrize("photo", ["not a photo", "/etc/hostname", str(REPO / "README.md")])
def test_a_photo_sent_as_a_bare_string_is_refused(client, photo: str) -> None:
    """A string is never read as a server path: only files gradio received (or shipped examples) are used."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="did not arrive as an uploaded file") as caught:
        client.predict(photo, 50, "all", "default", api_name="/age")
    assert "hostname" not in str(caught.value) and str(REPO) not in str(caught.value)


def test_error_details_show_file_names_not_server_paths() -> None:
    from ganime_age.errors import CorruptImageError
    from space.common import to_gradio_error

    error = to_gradio_error(CorruptImageError("/tmp/gradio/3f9a1c/upload/holiday.jpg: the image data is truncated"))
    assert "holiday.jpg: the image data is truncated" in error.message
    assert "/tmp" not in error.message and "3f9a1c" not in error.message
