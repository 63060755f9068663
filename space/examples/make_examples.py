"""Re-create the example photos from scikit-image's bundled public-domain / CC0 images.

    python space/examples/make_examples.py

Sources (see README.md here): ``skimage.data.astronaut()`` (NASA, public domain) and
``skimage.data.camera()`` (CC0, Lav Varshney). Run once; the JPEGs are committed.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
QUALITY = 90


def make_examples(folder: Path = HERE) -> list[Path]:
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    camera = Image.fromarray(data.camera())  # greyscale: also exercises the L -> RGB path
    both = Image.new("RGB", (1024, 512))
    both.paste(astronaut, (0, 0))
    both.paste(camera.convert("RGB"), (512, 0))
    photos = {"astronaut.jpg": astronaut, "cameraman.jpg": camera, "two-faces.jpg": both}
    written = []
    for name, image in photos.items():
        path = folder / name
        image.save(path, quality=QUALITY, optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in make_examples():
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KB")
