"""The shipped refiners, by name: trained networks that run on top of the fitted engine, none of them on by default.

Each lives in its own Hub-layout folder under ``src/ganime_age/weights/refiners/<name>/`` (``config.json``,
``model.safetensors``, a card ``README.md`` with its Table I numbers and grids), and the folder's name is the name
users pick it by: ``FaceEditor.from_pretrained(refiner="agetransgan-mi")``, ``ganime-age edit ... --refiner
agetransgan-mi``, the Space's "Model" dropdown. The registry is the folders themselves (those holding a model whose
class declares the role "refiner"): shipping a refiner is adding its folder (``training/ship_refiner.py``), and
nothing else lists them.

A refiner is named by (:func:`resolve_refiner`): a shipped name; ``"engine"`` (or ``"none"``), the engine alone; a
folder; or a Hub id (``owner/name``). A bare word that is none of these is refused with the known names.
"""

from __future__ import annotations

import os
from pathlib import Path

from ganime_age.editing.manifest import WEIGHTS_DIR
from ganime_age.errors import GanimeAgeError, UnknownRefinerError, echo

REFINERS_DIR = WEIGHTS_DIR / "refiners"
ENGINE_ALONE = "engine"  # the name of "no refiner": the engine's edit as it is
NO_REFINER_NAMES = (ENGINE_ALONE, "none")


def _holds_a_refiner(folder: Path) -> bool:
    from ganime_age.hub import model_class_of

    if not (folder / "config.json").is_file():
        return False
    try:
        return model_class_of(folder).role == "refiner"
    except GanimeAgeError:
        return False


def shipped_refiners(root: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """name -> folder of every shipped refiner (each folder under `root`, default :data:`REFINERS_DIR`, that holds
    a refiner), sorted by name."""
    folder = Path(root) if root is not None else REFINERS_DIR
    if not folder.is_dir():
        return {}
    found = {p.name: p for p in folder.iterdir() if p.is_dir() and _holds_a_refiner(p)}
    return dict(sorted(found.items()))


def refiner_names(root: str | os.PathLike[str] | None = None) -> list[str]:
    """The names a refiner can be picked by: ``"engine"`` (the engine alone) first, then each shipped refiner."""
    return [ENGINE_ALONE, *shipped_refiners(root)]


def resolve_refiner(refiner: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str | None:
    """Where the refiner named by `refiner` lives, for ``load_pretrained``: a shipped refiner's folder, the folder
    or Hub id as given, or None for the engine alone (``"engine"``, ``"none"``). A bare word (no ``/``) that is
    neither a shipped name nor an existing folder raises :class:`~ganime_age.errors.UnknownRefinerError`."""
    text = os.fspath(refiner).strip()
    if text.lower() in NO_REFINER_NAMES:
        return None
    shipped = shipped_refiners(root)
    if text in shipped:
        return str(shipped[text])
    if os.path.isdir(text) or "/" in text or os.sep in text:
        return text  # a folder, or a Hub id: the loader says what is wrong with it
    known = ", ".join(refiner_names(root))
    raise UnknownRefinerError(
        f"unknown refiner {echo(text)}; the shipped names are: {known} (or give a refiner's folder or Hub id)"
    )
