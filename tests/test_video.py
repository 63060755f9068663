"""Video frames in and out through imageio-ffmpeg: round trips, odd sizes, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import webp_claiming
from PIL import Image

from ganime_age.errors import VideoError
from ganime_age.video import VideoWriter, is_video_path, iter_frames, probe_video, read_video, write_video


@pytest.fixture(scope="module")
def face_frames(utk_sample: list[Path]) -> list[np.ndarray]:
    """Eight real faces at an odd size (99 x 75), so the writer must pad to even sides."""
    return [np.asarray(Image.open(p).convert("RGB").resize((75, 99))) for p in utk_sample[:8]]


def test_round_trip_keeps_frames_fps_and_content(tmp_path: Path, face_frames: list[np.ndarray]) -> None:
    path = write_video(tmp_path / "sub" / "faces.mp4", face_frames, fps=12)
    info = probe_video(path)
    assert info.fps == pytest.approx(12.0) and info.size == (76, 100) and info.frames == 8
    frames, read_info = read_video(path)
    assert read_info == info and len(frames) == 8
    for original, decoded in zip(face_frames, frames, strict=True):
        assert decoded.shape == (100, 76, 3) and decoded.dtype == np.uint8
        # lossy H.264, but the same picture (padding replicates the edge row/column)
        assert np.abs(decoded[:99, :75].astype(int) - original.astype(int)).mean() < 8
    assert len(list(iter_frames(path, max_frames=3))) == 3


def test_frames_are_read_by_an_independent_decoder(tmp_path: Path, face_frames: list[np.ndarray]) -> None:
    import imageio.v2 as imageio

    path = write_video(tmp_path / "faces.mp4", face_frames, fps=10)
    with imageio.get_reader(path, format="FFMPEG") as reader:
        assert sum(1 for _ in reader) == len(face_frames)


def test_bad_inputs_raise_video_error(tmp_path: Path, utk_sample: list[Path], audio_only_video: Path) -> None:
    with pytest.raises(VideoError, match="not found"):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        list(iter_frames(tmp_path / "empty.mp4"))
    (tmp_path / "text.mp4").write_text("this is not a video" * 20)
    with pytest.raises(VideoError, match="not a readable video"):
        probe_video(tmp_path / "text.mp4")
    with pytest.raises(VideoError, match="still image"):
        probe_video(utk_sample[0])
    with pytest.raises(VideoError):
        list(iter_frames(audio_only_video))


@pytest.mark.parametrize(("side", "megapixels"), [(16384, 268), (10000, 100)])
def test_an_image_claiming_huge_frames_is_refused_by_its_size(tmp_path: Path, side: int, megapixels: int) -> None:
    """A WebP of a few hundred bytes claiming 268 MP escaped the still-image check as Pillow's
    DecompressionBombError (an internal error in the Space); one claiming 100 MP (below Pillow's error, above its
    warning) is refused from its header too, before ffmpeg decodes a frame."""
    bomb = tmp_path / "bomb.webp"
    bomb.write_bytes(webp_claiming(side, side))
    for read in (probe_video, lambda path: list(iter_frames(path))):
        with pytest.raises(VideoError, match=rf"the image is {megapixels} MP; a video's frames are limited to 17 MP"):
            read(bomb)


def test_writer_rejects_bad_frames_and_names(tmp_path: Path, face_frames: list[np.ndarray]) -> None:
    with pytest.raises(VideoError, match="mp4"):
        VideoWriter(tmp_path / "out.avi")
    with pytest.raises(VideoError, match="frame rate"):
        VideoWriter(tmp_path / "out.mp4", fps=0)
    with VideoWriter(tmp_path / "out.mp4", fps=5) as writer:
        writer.write(face_frames[0])
        with pytest.raises(VideoError, match="one size"):
            writer.write(face_frames[0][:50])
        with pytest.raises(VideoError, match="uint8 RGB"):
            writer.write(face_frames[0].astype(np.float32))
    with pytest.raises(VideoError, match="no frames"):
        write_video(tmp_path / "none.mp4", [])


def test_is_video_path() -> None:
    assert is_video_path("clip.MP4") and is_video_path(Path("a/b.webm"))
    assert not is_video_path("photo.jpg") and not is_video_path("noext")
