"""Publish the Space: ``python -m space.deploy <user>/<space> [--private]``.

Uploads only what the Space runs (app.py, requirements.txt, space/, src/) and puts
``space/README.md`` at the root as the Space's ``README.md``, whose front matter configures it;
the project's own README.md stays the library's documentation.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOW = ["app.py", "requirements.txt", "space/**", "src/**"]
IGNORE = ["**/__pycache__/**", "**/*.pyc", "space/README.md"]


def deploy(repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Create (if needed) and update the Space; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="space",
        folder_path=str(ROOT),
        allow_patterns=ALLOW,
        ignore_patterns=IGNORE,
        commit_message="Update the Space from the ganime-age repository",
    )
    api.upload_file(
        path_or_fileobj=str(ROOT / "space" / "README.md"),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="space",
        commit_message="Space README (front matter)",
    )
    return str(url)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo_id", help="<user or org>/<space name>")
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)
    print(deploy(args.repo_id, private=args.private))


if __name__ == "__main__":
    main()
