"""The code's shape: one layer a folder, imports pointing one way (lazy imports inside functions included), the
library importing nothing of the repository's training, Space or benchmarks, and no edits of the import path."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "ganime_age"
# each layer may import itself and the layers before it, never one after it
LAYERS = (
    {"errors", "config", "conditions", "validation", "assets", "hub", "meshwarp", "video", "__init__", "__main__"},
    {"faces", "face_model", "warp"},
    {"engine"},
    {"models"},
    {"editing"},
    {"cli"},
)


def layer_of(module: str) -> int:
    """The layer of a module of the package, by its first name below ganime_age."""
    part = module.split(".")[1] if "." in module else "__init__"
    if not (PACKAGE / f"{part}.py").exists() and not (PACKAGE / part).is_dir():
        part = "__init__"  # a name the package itself exports (``from ganime_age import __version__``)
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"{module} belongs to no layer: add its folder to LAYERS")


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_imports_point_one_way_and_never_outside_the_package() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        for target in imports(path):
            root = target.split(".")[0]
            assert root not in ("training", "space", "benchmarks", "tests"), f"{source} imports {target}"
            if root != "ganime_age" or target == "ganime_age":
                continue
            if layer_of(target) > layer_of(source):
                upward.append(f"{source} -> {target}")
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(set(upward)))


def test_the_engine_is_a_package_of_its_jobs() -> None:
    files = {p.stem for p in (PACKAGE / "engine").glob("*.py")}
    assert {"config", "model", "frames", "geometry", "appearance", "hair", "mouth", "pixels"} <= files
    assert not (PACKAGE / "models" / "fitted_engine.py").exists()
    assert all(len(p.read_text().splitlines()) < 500 for p in (PACKAGE / "engine").glob("*.py"))


def test_nothing_edits_the_import_path() -> None:
    """The editable install puts the repository's folders on the path; no script, test or module changes it."""
    needle = "sys" + ".path"  # spelled apart, so that this file is not a hit itself
    found = subprocess.run(
        ["grep", "-rln", needle, "src", "training", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert found == [], found


def test_one_definition_of_the_landmark_count() -> None:
    found = subprocess.run(
        ["grep", "-rn", "--include=*.py", "NUM_LANDMARKS = ", "src", "training", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert len(found) == 1 and "faces/topology.py" in found[0], found
