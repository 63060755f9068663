"""Reading and writing video frames through imageio-ffmpeg (a pip wheel that bundles an ffmpeg binary).

Frames are read and written as uint8 RGB (H, W, 3) arrays; :func:`add_audio` then gives a written video the
audio of the video it was made from.
Anything that is not a readable video, or a video without frames, raises :class:`VideoError`.
Output is H.264 MP4 (yuv420p, which needs even sides: odd frames get one replicated edge row/column).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganime_age.errors import VideoError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})
DEFAULT_FPS = 25.0
MAX_VIDEO_PIXELS = 4096 * 4096
MUX_TIMEOUT = 600.0  # seconds: copying an audio track takes far less; a hung ffmpeg must not hang a server


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    size: tuple[int, int]  # width, height
    frames: int | None  # ffmpeg's estimate from duration x fps (None when unknown)
    duration: float | None  # seconds


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True for file names with a common video extension (how the CLI and the Space tell videos from photos)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _ffmpeg() -> Any:
    try:
        import imageio_ffmpeg
    except ImportError as error:  # the `video` extra is not installed
        raise VideoError("video needs imageio-ffmpeg: pip install 'ganime-age[video]'") from error
    return imageio_ffmpeg


def _check_file(path: str | os.PathLike[str]) -> Path:
    file = Path(path)
    if file.is_dir():
        raise VideoError(f"{file} is a folder, not a video file")
    if file.exists() and not file.is_file():  # ffmpeg would read /dev/zero or wait on a FIFO forever
        raise VideoError(f"{file} is not a regular file (a device, a pipe or a socket), not a video file")
    if not file.is_file():
        raise VideoError(f"video not found: {file}")
    if file.stat().st_size == 0:
        raise VideoError(f"{file} is an empty file, not a video")
    return file


def _reject_still_image(file: Path) -> None:
    """ffmpeg happily reads a PNG or JPEG as a one-frame video; a photo given as a video is a mistake. An image
    whose header claims more pixels than a frame may have (a 10 KB WebP claiming 268 MP) is refused as too large,
    from its header, before anything decodes it."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is judged below
            with Image.open(file) as image:
                pixels = image.size[0] * image.size[1]
                animated = getattr(image, "n_frames", 1) > 1
    except Image.DecompressionBombError as error:  # past twice Pillow's limit: Pillow refuses to open it
        found = re.search(r"\((\d+) pixels\)", str(error))
        raise _too_large(file, int(found.group(1)) if found else None) from None
    except (UnidentifiedImageError, OSError, ValueError):
        return
    if not animated:
        raise VideoError(f"{file} is a still image, not a video")
    if pixels > MAX_VIDEO_PIXELS:  # an animation of huge frames: refused before ffmpeg decodes one
        raise _too_large(file, pixels)


def _too_large(file: Path, pixels: int | None) -> VideoError:
    size = f"{pixels / 1e6:.0f} MP" if pixels else "too large"
    return VideoError(
        f"{file}: the image is {size}; a video's frames are limited to {MAX_VIDEO_PIXELS / 1e6:.0f} MP — "
        "downscale it first"
    )


def _open(file: Path) -> tuple[Iterator[Any], dict[str, Any]]:
    _reject_still_image(file)
    reader = _ffmpeg().read_frames(str(file), pix_fmt="rgb24", output_params=["-an"])
    try:
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration, ValueError) as error:
        reader.close()
        raise VideoError(f"{file} is not a readable video (no video stream?): {_first_line(error)}") from error
    size = meta.get("size") or (0, 0)
    if not size[0] or not size[1]:
        reader.close()
        raise VideoError(f"{file} has no video stream")
    if size[0] * size[1] > MAX_VIDEO_PIXELS:
        reader.close()
        raise VideoError(f"{file}: {size[0]}x{size[1]} frames are larger than this tool handles")
    return reader, meta


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame rate, size and (estimated) length of a video, without decoding its frames."""
    file = _check_file(path)
    reader, meta = _open(file)
    reader.close()
    return _info(meta)


def _info(meta: dict[str, Any]) -> VideoInfo:
    fps = float(meta.get("fps") or 0.0)
    fps = fps if np.isfinite(fps) and fps > 0 else DEFAULT_FPS
    duration = meta.get("duration")
    duration = float(duration) if duration and np.isfinite(float(duration)) else None
    frames = round(duration * fps) if duration else None
    width, height = (int(v) for v in meta["size"])
    return VideoInfo(fps=fps, size=(width, height), frames=frames, duration=duration)


def iter_frames(path: str | os.PathLike[str], max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode the frames one at a time (constant memory); raises VideoError if there is not even one."""
    file = _check_file(path)
    reader, meta = _open(file)
    width, height = (int(v) for v in meta["size"])
    count = 0
    try:
        for raw in reader:
            frame = np.frombuffer(raw, np.uint8)
            if frame.size != width * height * 3:
                raise VideoError(f"{file}: a decoded frame has {frame.size} bytes, expected {width * height * 3}")
            yield frame.reshape(height, width, 3)
            count += 1
            if max_frames is not None and count >= max_frames:
                break
    except (RuntimeError, OSError) as error:
        raise VideoError(f"{file}: decoding failed after {count} frame(s): {_first_line(error)}") from error
    finally:
        reader.close()
    if count == 0:
        raise VideoError(f"{file} holds no video frames")


def read_video(path: str | os.PathLike[str], max_frames: int | None = None) -> tuple[list[np.ndarray], VideoInfo]:
    """All frames (up to `max_frames`) and the video's info."""
    info = probe_video(path)
    return list(iter_frames(path, max_frames)), info


def _even(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    pad_y, pad_x = height % 2, width % 2
    if pad_y or pad_x:
        frame = np.pad(frame, ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
    return np.ascontiguousarray(frame)


class VideoWriter:
    """H.264 MP4 writer: ``with VideoWriter(path, fps) as out: out.write(frame)`` (video only: see :func:`add_audio`)."""

    def __init__(self, path: str | os.PathLike[str], fps: float = DEFAULT_FPS, *, quality: float = 7.0) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise VideoError(f"video output must be an .mp4 file, got {self.path.name!r}")
        if not np.isfinite(fps) or fps <= 0:
            raise VideoError(f"frame rate must be positive, got {fps}")
        self.fps = float(fps)
        self.quality = quality
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._writer: Any = None

    def write(self, frame: np.ndarray) -> None:
        array = np.asarray(frame)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise VideoError(f"frames must be uint8 RGB (H, W, 3), got {array.dtype} {array.shape}")
        array = _even(array)
        size = (array.shape[1], array.shape[0])
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = size
            self._writer = _ffmpeg().write_frames(
                str(self.path),
                size,
                fps=self.fps,
                codec="libx264",
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                quality=self.quality,
                macro_block_size=2,
                ffmpeg_log_level="error",
                # x264's default preset spent ~38 ms of CPU a 640x480 frame, a fifth of a reenacted frame's;
                # ultrafast spends 7 at this quality setting (CRF 15): the same PSNR to the frames (43 dB, the
                # chroma subsampling's), a file about a fifth larger than veryfast's
                output_params=["-preset", "ultrafast"],
            )
            self._writer.send(None)  # start ffmpeg
        elif size != self._size:
            raise VideoError(f"all frames must have one size; got {size} after {self._size}")
        self._writer.send(array)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float = DEFAULT_FPS) -> Path:
    """Write frames to an H.264 MP4; returns the path. At least one frame is needed."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    if writer.frames == 0:
        raise VideoError("no frames to write")
    return Path(path)


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether a video file holds an audio stream (ffmpeg's own listing of its streams)."""
    file = _check_file(path)
    found = subprocess.run(
        [_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(file.absolute())],  # never an option
        capture_output=True,
        text=True,
        errors="replace",
        timeout=MUX_TIMEOUT,
        check=False,
    )
    return re.search(r"Stream #\S+.*: Audio:", found.stderr) is not None


def add_audio(video: str | os.PathLike[str], source: str | os.PathLike[str], duration: float | None = None) -> bool:
    """Give the written MP4 `video` the audio of `source` (the video it was made from), cut to `duration`
    seconds (the frames written); its video stream is copied as it is. Returns False, changing nothing, when
    `source` has no audio.

    The audio is encoded to AAC, which every MP4 player reads; the file is replaced only once ffmpeg has
    written the whole new one.
    """
    target = Path(video)
    if not has_audio(source):
        return False
    muxed = target.with_name(f".{target.stem}.audio{target.suffix}")
    command = [_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    command += ["-i", str(target.absolute())]
    if duration is not None:  # the audio read is cut, never the video: every frame written stays
        command += ["-t", f"{max(float(duration), 0.0):.3f}"]
    command += ["-i", str(Path(source).absolute()), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy"]
    command += ["-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", str(muxed.absolute())]
    try:
        done = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=MUX_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        muxed.unlink(missing_ok=True)
        raise VideoError(f"adding the audio of {Path(source).name} took longer than {MUX_TIMEOUT:g} s") from error
    if done.returncode != 0 or not muxed.is_file():
        muxed.unlink(missing_ok=True)
        reason = (done.stderr.strip().splitlines() or [f"ffmpeg exit status {done.returncode}"])[0]
        raise VideoError(f"adding the audio of {Path(source).name} failed: {reason}")
    muxed.replace(target)
    return True
