"""Make the README's picture, ``docs/readme_strip.jpg``: one of the Space's public-domain example photos
(``space/examples/astronaut.jpg``) as it is, made 5, 25, 50 and 75, smiling (AU12 at 3), and reenacted with a frame
of the Space's example video (``space/examples/astronaut-turning.mp4``, her head turned 15 degrees) as the driver,
each a labelled head-and-shoulders tile.

    python docs/make_readme_strip.py [--output docs/readme_strip.jpg] [--height 256]

It runs the embedded default editor on the CPU in about half a minute."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "space" / "examples" / "astronaut.jpg"
DRIVER = REPO / "space" / "examples" / "astronaut-turning.mp4"
DRIVER_FRAME = 6  # the head turned about 15 degrees to the side, looking a little up
OUTPUT = REPO / "docs" / "readme_strip.jpg"
AGES = (5, 25, 50, 75)
LABEL_HEIGHT = 28  # pixels of white under each tile for its label


def tiles(editor: object) -> list[tuple[str, Image.Image]]:
    """(label, head-and-shoulders portrait) of the photo, its edits and its reenactment, all cut around the
    source face's box as the Space's age strip cuts them."""
    from ganime_age.faces import portrait

    box = editor.analyze(SOURCE)[0].detection.box  # type: ignore[attr-defined]

    def cut(image: Image.Image) -> Image.Image:
        return Image.fromarray(portrait(np.asarray(image.convert("RGB")), box))

    shown = [("photo", cut(Image.open(SOURCE)))]
    shown += [(f"age {years:g}", image) for years, image in editor.age_strip(SOURCE, face=0, ages=AGES)]  # type: ignore[attr-defined]
    shown.append(("smile (AU12 = 3)", cut(editor.edit(SOURCE, aus={"AU12": 3.0}, face=0))))  # type: ignore[attr-defined]
    from ganime_age.video import read_video

    driver = read_video(DRIVER, max_frames=DRIVER_FRAME + 1)[0][DRIVER_FRAME]
    shown.append(("reenacted", cut(editor.reenact(SOURCE, driver))))  # type: ignore[attr-defined]
    return shown


def compose(shown: list[tuple[str, Image.Image]], height: int) -> Image.Image:
    """The tiles side by side, each `height` pixels tall, its label centred below it."""
    scaled = [
        (label, image.resize((round(image.width * height / image.height), height), Image.LANCZOS))
        for label, image in shown
    ]
    width = sum(image.width for _, image in scaled)
    strip = Image.new("RGB", (width, height + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=18)
    x = 0
    for label, image in scaled:
        strip.paste(image, (x, 0))
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        draw.text(
            (x + (image.width - (right - left)) / 2, height + (LABEL_HEIGHT - (bottom - top)) / 2 - top),
            label,
            fill="black",
            font=font,
        )
        x += image.width
    return strip


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--height", type=int, default=256, help="each tile's height in pixels")
    args = parser.parse_args(argv)
    from ganime_age import GanimeAge

    strip = compose(tiles(GanimeAge.from_pretrained()), args.height)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    strip.save(args.output, quality=85, optimize=True, progressive=True)
    print(f"wrote {args.output} ({strip.width}x{strip.height}, {args.output.stat().st_size // 1024} KB)")
    return args.output


if __name__ == "__main__":
    main()
