"""``ganime-age reenact source.jpg driving.(jpg|mp4) [--age 60] -o out.(jpg|mp4)``: the source photo with the
driving face's head pose and expression; a driving video gives an MP4 with its audio."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganime_age.cli.options import add_editor_options, load_editor, save_image
from ganime_age.cli.own import add_own_options, check_own_options, load_person
from ganime_age.errors import InvalidArgumentError

IMAGE_OUTPUTS = (".jpg", ".jpeg", ".png", ".webp")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "reenact",
        help="give a photo the pose and expression of a driving photo or video",
        description="Give the source photo the driving face's head pose and expression (optionally a new age). "
        "A driving video gives an MP4 with its audio.",
    )
    parser.add_argument("source", help="source photo (the person to keep)")
    parser.add_argument("driving", help="driving photo or video (the pose and expression to copy)")
    parser.add_argument("-o", "--output", required=True, help="output image (.jpg/.png/.webp) or .mp4 for a video")
    parser.add_argument(
        "--overwrite", action="store_true", help="allow -o to be an input file (its original is replaced)"
    )
    parser.add_argument("--age", type=float, help="target age in years, 0-100 (default: keep the source's age)")
    parser.add_argument(
        "--from-age", type=float, help="the source face's current age, where the estimate is wrong (default: estimated)"
    )
    parser.add_argument("--aus-scale", type=float, default=1.0, help="strength of the driver's expression AUs")
    parser.add_argument("--face", type=int, default=0, help="source face index (0 = leftmost)")
    parser.add_argument("--driving-face", type=int, default=0, help="driving face index (0 = leftmost)")
    parser.add_argument(
        "--reenactor",
        help="trained reenactor folder or Hub id (default: the editor's own, else the engine's landmark warp)",
    )
    parser.add_argument("--no-smoothing", action="store_true", help="videos: do not smooth landmarks over time")
    parser.add_argument("--max-frames", type=int, help="videos: stop after this many frames")
    add_own_options(parser)
    add_editor_options(parser)
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from ganime_age.validation import check_aus_scale, check_not_an_input, check_optional_age, check_output_path
    from ganime_age.video import is_video_path

    parser = args.parser
    output = Path(args.output)
    video = is_video_path(args.driving)
    suffix = output.suffix.lower()
    if video and suffix != ".mp4":
        parser.error(f"the driving input is a video, so the output must be .mp4, not {output.name!r}")
    if not video and suffix not in IMAGE_OUTPUTS:
        parser.error(f"the driving input is a photo; write an image ({', '.join(IMAGE_OUTPUTS)}), not {output.name!r}")
    try:  # the API's own checks and messages ("--age must be between 0 and 100 years, not 100.0000001")
        check_optional_age(args.age, "--age")
        check_optional_age(args.from_age, "--from-age")
        check_aus_scale(args.aus_scale, "--aus-scale")
    except InvalidArgumentError as error:
        parser.error(str(error))
    # the output is checked before any model is loaded: a folder, a path under a file, a place that takes no
    # new files, or one of the inputs (the user's original) fails in a second, as one line
    output = check_output_path(output, (".mp4",) if video else IMAGE_OUTPUTS)
    check_not_an_input(output, [args.source, args.driving], overwrite=args.overwrite)
    check_own_options(args)
    editor = load_editor(args, **({"reenactor": args.reenactor} if args.reenactor else {}))
    options = {
        "age": args.age,
        "aus_scale": args.aus_scale,
        "face": args.face,
        "driving_face": args.driving_face,
        "source_age": args.from_age,
        "person": load_person(args, editor),
    }
    if video:
        editor.reenact_video(
            args.source, args.driving, output, smoothing=not args.no_smoothing, max_frames=args.max_frames, **options
        )
    else:
        save_image(editor.reenact(args.source, args.driving, **options), output)
    print(f"wrote {output} ({editor.reenactment.description})")
    return 0
