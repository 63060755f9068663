"""The ``ganime-age`` command: ``edit`` a photo's ages and expressions, ``reenact`` it from a driving face.

Each command is a module with ``add_parser(commands)`` and ``run(args)``; the options every command shares are
in :mod:`.options`. Errors a user can fix are printed as one line (exit status 2), not as a traceback
(``--debug`` shows it). Arguments and the output path are checked before any model is loaded, by the same
checks the Python API and the Space use. Training and dataset preparation are scripts of the repository
(``training/``), not commands of the installed package.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ganime_age import __version__
from ganime_age.cli import edit, reenact
from ganime_age.cli.options import OneLineParser
from ganime_age.errors import exit_status

COMMANDS = (edit, reenact)


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="ganime-age", description="Edit the age, expression and pose of faces in photos.")
    parser.add_argument("--version", action="version", version=f"ganime-age {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def command() -> int:
        args, unknown = build_parser().parse_known_args(argv)
        if unknown:  # said by the command's parser, so the hint names its --help ("ganime-age edit --help")
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return args.handler(args)

    return exit_status(command, prog="ganime-age", also=(FileNotFoundError,), debug="--debug" in argv)
