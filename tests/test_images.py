"""load_image and the analyzer on the odd inputs users really send: every one gets RGB or a typed error."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from conftest import call_with_memory_cap
from PIL import Image

from ganime_age.errors import (
    CorruptImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    NoFaceError,
    NotAnImageError,
)
from ganime_age.faces import FaceAnalyzer, load_image


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    analyzer = FaceAnalyzer()
    yield analyzer
    analyzer.close()


@pytest.fixture(scope="module")
def face_path(utk_sample: list[Path]) -> Path:
    return utk_sample[0]


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_real_jpeg_from_path_bytes_pil_and_array(face_path: Path) -> None:
    from_path = load_image(face_path)
    assert from_path.shape == (200, 200, 3) and from_path.dtype == np.uint8
    np.testing.assert_array_equal(load_image(str(face_path)), from_path)
    np.testing.assert_array_equal(load_image(face_path.read_bytes()), from_path)
    np.testing.assert_array_equal(load_image(Image.open(face_path)), from_path)
    np.testing.assert_array_equal(load_image(from_path), from_path)


def test_text_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(NotAnImageError, match="text"):
        load_image(b"name,age\nalice,30\n")
    notes = tmp_path / "notes.jpg"
    notes.write_text("this is not a photo")
    with pytest.raises(NotAnImageError):
        load_image(notes)
    with pytest.raises(NotAnImageError):
        load_image(12345)  # type: ignore[arg-type]


def test_truncated_jpeg_is_corrupt(face_path: Path, tmp_path: Path) -> None:
    data = face_path.read_bytes()
    with pytest.raises(CorruptImageError):
        load_image(data[: len(data) // 2])
    truncated = tmp_path / "half.jpg"
    truncated.write_bytes(data[:300])  # the header is cut short too
    with pytest.raises(CorruptImageError):
        load_image(truncated)


def header_only_jpeg(width: int, height: int, data: bytes = b"") -> bytes:
    """A real JPEG's header with its size changed, `data` for image data, then the end marker."""
    jpeg = bytearray(encode(Image.new("RGB", (16, 16), (90, 90, 90)), "JPEG"))
    struct.pack_into(">HH", jpeg, jpeg.find(b"\xff\xc0") + 5, height, width)
    scan = jpeg.find(b"\xff\xda")
    return bytes(jpeg[: scan + 2 + int.from_bytes(jpeg[scan + 2 : scan + 4], "big")]) + data + b"\xff\xd9"


@pytest.mark.parametrize(
    ("width", "height", "data"), [(10_000, 10_000, b""), (7_000, 7_000, bytes(300)), (640, 480, b"")]
)
def test_a_jpeg_without_its_image_data_is_refused_never_decoded_as_grey(width: int, height: int, data: bytes) -> None:
    """libjpeg decodes a header followed by an end marker as a grey picture of the size the header claims (a
    629-byte file became 100 MP of grey); such a file is refused as truncated before a pixel is decoded."""
    from ganime_age.faces import read_image_header

    fake = header_only_jpeg(width, height, data)
    assert len(fake) < 1000
    for read in (load_image, read_image_header):
        with pytest.raises(CorruptImageError, match="truncated"):
            read(fake, max_pixels=200_000_000)


def test_the_jpeg_data_check_accepts_every_real_kind_of_jpeg(face_path: Path, shared_dir: Path) -> None:
    from ganime_age.faces import read_image_header

    photo = Image.open(sorted((shared_dir / "datasets" / "cfee_full" / "images").glob("*.jpg"))[0])
    kinds = [
        {"progressive": True},
        {"optimize": True},
        {"quality": 98, "subsampling": 0},
        {"progressive": True, "optimize": True, "quality": 5},
        {"quality": 90, "restart_marker_rows": 1},
    ]
    for options in kinds:
        np.testing.assert_equal(load_image(encode(photo, "JPEG", **options)).shape, (750, 1000, 3))
    load_image(encode(photo.convert("L"), "JPEG", quality=3))
    load_image(encode(photo.convert("CMYK"), "JPEG"))
    load_image(face_path.read_bytes() + b"a phone's trailer after the end marker" * 50)  # e.g. a motion photo
    # the smallest real data a JPEG holds: one colour at the lowest quality, still 3x the bound
    flat = encode(Image.new("RGB", (8000, 6000), (128, 128, 128)), "JPEG", quality=1, optimize=True, progressive=True)
    header = read_image_header(flat, max_pixels=50_000_000)
    assert (header.width, header.height, header.format, header.pixels) == (8000, 6000, "JPEG", 48_000_000)


def test_the_header_is_read_without_decoding(tmp_path: Path) -> None:
    """The Space's admission reads the size from the header: a 100 MP PNG is refused in milliseconds."""
    from ganime_age.faces import read_image_header

    rows = zlib.compress(bytes(10_001) * 10_000, 9)
    png = b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        for kind, body in (
            (b"IHDR", struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0)),
            (b"IDAT", rows),
            (b"IEND", b""),
        )
    )
    path = tmp_path / "huge.png"
    path.write_bytes(png)
    header = read_image_header(path, max_pixels=200_000_000)
    assert (header.width, header.height, header.format, header.mode) == (10_000, 10_000, "PNG", "L")
    with pytest.raises(
        ImageTooLargeError, match=r"100\.0 MP \(10000x10000 = 100,000,000 pixels\); the limit is 50,000,000"
    ):
        read_image_header(path, max_pixels=50_000_000)


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(CorruptImageError, match="empty"):
        load_image(empty)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "nowhere.jpg")


def test_grayscale_becomes_rgb(face_path: Path) -> None:
    gray = Image.open(face_path).convert("L")
    rgb = load_image(encode(gray, "PNG"))
    assert rgb.shape == (200, 200, 3)
    np.testing.assert_array_equal(rgb[..., 0], np.asarray(gray))
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_rgba_and_palette_transparency_composite_on_white(face_path: Path) -> None:
    rgba = Image.open(face_path).convert("RGBA")
    alpha = np.full((200, 200), 255, np.uint8)
    alpha[:, :100] = 0  # left half fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    rgb = load_image(encode(rgba, "PNG"))
    assert rgb.shape == (200, 200, 3)
    assert (rgb[:, :100] == 255).all()
    np.testing.assert_array_equal(rgb[:, 100:], np.asarray(Image.open(face_path).convert("RGB"))[:, 100:])
    la = load_image(encode(rgba.convert("LA"), "PNG"))
    assert (la[:, :100] == 255).all() and la.shape == (200, 200, 3)
    palette = load_image(encode(rgba.convert("P"), "GIF"))  # palette image, no alpha
    assert palette.shape == (200, 200, 3)
    # RGBA numpy arrays too
    array = np.zeros((40, 40, 4), np.uint8)
    array[..., 3] = 0
    assert (load_image(array) == 255).all()


def test_cmyk_jpeg(face_path: Path) -> None:
    original = np.asarray(Image.open(face_path).convert("RGB")).astype(np.float32)
    cmyk = Image.open(face_path).convert("CMYK")
    rgb = load_image(encode(cmyk, "JPEG", quality=95))
    assert rgb.shape == (200, 200, 3)
    assert np.abs(rgb.astype(np.float32) - original).mean() < 6  # same picture, not inverted colours


def test_sixteen_bit_png_scaled_to_eight_bit(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    gray_path = tmp_path / "gray16.png"
    assert cv2.imwrite(str(gray_path), ramp)
    assert Image.open(gray_path).mode.startswith("I;16")
    gray = load_image(gray_path)
    assert gray.shape == (64, 64, 3)
    assert gray[0, 0, 0] == 0 and gray[-1, -1, 0] == 255
    np.testing.assert_allclose(gray[..., 0].astype(float), ramp / 257.0, atol=1.0)
    color = np.stack([ramp, 65535 - ramp, np.full_like(ramp, 32896)], axis=-1)
    color_path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(color_path), color[..., ::-1])  # cv2 writes BGR
    rgb = load_image(color_path)
    assert abs(int(rgb[0, 0, 0]) - 0) <= 1 and abs(int(rgb[0, 0, 1]) - 255) <= 1 and abs(int(rgb[5, 5, 2]) - 128) <= 1
    np.testing.assert_array_equal(load_image(ramp)[..., 0], gray[..., 0])  # uint16 arrays scale the same way


def test_float_arrays_in_unit_range() -> None:
    image = np.linspace(0.0, 1.0, 48 * 48 * 3).reshape(48, 48, 3)
    rgb = load_image(image)
    assert rgb.dtype == np.uint8 and rgb[0, 0, 0] == 0 and rgb[-1, -1, -1] == 255
    with pytest.raises(NotAnImageError, match=r"\[0, 1\]"):
        load_image(image * 255.0)


def test_exif_orientation_is_applied(face_path: Path) -> None:
    stored = np.zeros((200, 300, 3), np.uint8)  # landscape as stored: 300 wide, 200 high
    stored[:20, :20] = (255, 0, 0)  # red marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a phone held upright
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    rgb = load_image(data)
    assert rgb.shape == (300, 200, 3)  # displayed portrait
    expected = np.rot90(stored, k=-1)  # 90 degrees clockwise: the marker moves to the top-right
    assert rgb[5, -5, 0] > 200 and rgb[5, 5, 0] < 50
    assert np.abs(rgb.astype(int) - expected.astype(int)).mean() < 3


def test_tiny_image_is_refused() -> None:
    with pytest.raises(ImageTooSmallError, match="32"):
        load_image(np.zeros((20, 200, 3), np.uint8))
    with pytest.raises(ImageTooSmallError):
        load_image(encode(Image.new("RGB", (31, 31)), "PNG"))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that *declares* width x height (a decompression bomb) without holding the pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def test_pixel_budget() -> None:
    with pytest.raises(ImageTooLargeError):
        load_image(png_header_only(30000, 20000))  # 600 MP, refused before decoding
    with pytest.raises(ImageTooLargeError):
        load_image(png_header_only(12000, 10000))  # 120 MP: over our 100 MP budget
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((100, 100, 3), np.uint8), max_pixels=5000)


def test_huge_photo_face_found_in_full_resolution(analyzer: FaceAnalyzer, face_path: Path) -> None:
    height, width = 4000, 6000
    photo = np.empty((height, width, 3), np.uint8)
    photo[:] = np.linspace(40, 200, width).astype(np.uint8)[None, :, None]  # a plain gradient wall
    face = np.asarray(Image.open(face_path).convert("RGB").resize((800, 800), Image.BICUBIC))
    x0, y0 = 3700, 1500
    photo[y0 : y0 + 800, x0 : x0 + 800] = face
    faces = analyzer.analyze(photo)
    assert len(faces) == 1
    x, y, w, h = faces[0].detection.box
    assert x0 < x + w / 2 < x0 + 800 and y0 < y + h / 2 < y0 + 800  # full-resolution coordinates
    assert 250 < w < 800
    native = analyzer.detector.detect(load_image(face_path))[0].points  # the same face in its 200 px crop
    expected = (native + 0.5) * 4.0 - 0.5 + (x0, y0)
    # YuNet's points jitter by a few % of the face between scales; a coordinate mix-up would be off by 1000s
    assert np.abs(faces[0].detection.points - expected).max() < 0.1 * 800
    landmarks = faces[0].landmarks
    assert landmarks is not None
    assert (landmarks.landmarks[:, 0] > x0).all() and (landmarks.landmarks[:, 0] < x0 + 800).all()


def test_photos_without_faces(analyzer: FaceAnalyzer) -> None:
    with pytest.raises(NoFaceError):
        analyzer.analyze(skimage.data.coffee())
    gradient = np.repeat(np.linspace(0, 255, 320, dtype=np.float32)[None, :], 240, axis=0).astype(np.uint8)
    with pytest.raises(NoFaceError):
        analyzer.analyze(gradient)


# -- only regular files are read, and only up to a size cap (issue 20) ------------------------------------


@pytest.mark.parametrize("kind", ["/dev/zero", "/dev/null", "fifo", "folder", "socket"])
def test_special_files_are_refused_before_reading(tmp_path: Path, kind: str) -> None:
    """/dev/zero was read whole (gigabytes in seconds) and a FIFO blocked forever; both are refused from stat()."""
    import socket

    path = {"/dev/zero": "/dev/zero", "/dev/null": "/dev/null"}.get(kind, str(tmp_path / f"{kind}.jpg"))
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        os.mkdir(path)
    holder = socket.socket(socket.AF_UNIX) if kind == "socket" else None
    if holder is not None:
        holder.bind(path)
    try:
        verdict, seconds, peak_mb, printed = call_with_memory_cap("ganime_age.faces:load_image", path, 1536, 60)
    finally:
        if holder is not None:
            holder.close()
    assert verdict.startswith("NotAnImageError: ") and path in verdict, printed
    expected = {"/dev/zero": "a device", "/dev/null": "a device", "fifo": "a pipe", "folder": "a folder"}
    assert expected.get(kind, "a socket") in verdict
    assert seconds < 5 and peak_mb < 400, (seconds, peak_mb)


def test_files_above_the_size_cap_are_refused_unread(tmp_path: Path, face_path: Path) -> None:
    from ganime_age.faces import MAX_FILE_BYTES

    sparse = tmp_path / "huge.jpg"
    with open(sparse, "wb") as handle:
        handle.write(face_path.read_bytes())
        handle.truncate(MAX_FILE_BYTES + 1)  # a sparse file: no disk used, nothing worth reading
    with pytest.raises(ImageTooLargeError, match="limited to 100 MB"):
        load_image(sparse)
    data = face_path.read_bytes()
    with pytest.raises(ImageTooLargeError, match="limited to"):
        load_image(face_path, max_bytes=len(data) - 1)
    with pytest.raises(ImageTooLargeError, match="limited to"):
        load_image(data, max_bytes=len(data) - 1)
    assert load_image(face_path, max_bytes=len(data)).shape == (200, 200, 3)  # the cap itself is allowed
