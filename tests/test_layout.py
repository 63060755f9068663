"""The code's shape: one layer a folder, imports pointing one way (lazy imports inside functions included), the
library importing nothing of the repository's training, Space or benchmarks, and no edits of the import path."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
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


def module_graph() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (lazy and TYPE_CHECKING imports included).

    ``from pkg import name`` is an edge to ``pkg`` and, where ``name`` is a module, to ``pkg.name``; a module's
    own enclosing packages are left out (Python imports them before the module, whatever it imports).
    """
    paths = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for source, path in paths.items():
        targets = set()
        for target in imports(path):
            while target not in paths and "." in target:
                target = target.rsplit(".", 1)[0]  # a name defined in a module -> the module
            if target in paths and not source.startswith(f"{target}."):
                targets.add(target)
        graph[source] = targets - {source}
    return graph


def test_no_import_cycles() -> None:
    try:
        graphlib.TopologicalSorter(module_graph()).prepare()
    except graphlib.CycleError as error:
        raise AssertionError("an import cycle: " + " -> ".join(error.args[1])) from None


def test_the_engine_jobs_never_import_the_model() -> None:
    """The model imports its jobs; they type against ``engine.face`` and ``engine.tables``, never the model."""
    jobs = [p for p in (PACKAGE / "engine").glob("*.py") if p.stem not in ("model", "__init__")]
    model = "ganime_age.engine.model"
    found = sorted(p.stem for p in jobs if any(t == model or t.startswith(f"{model}.") for t in imports(p)))
    assert not found, f"engine jobs that import the model: {found}"


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


TRAINING = REPO / "training"
# the top level of training/ holds what a user runs; every other module sits in a folder by its job
TRAINING_ENTRY_POINTS = {"train.py", "evaluate.py", "fit_engine.py", "prepare_data.py", "ship_refiner.py", "lease.py"}
TRAINING_FOLDERS = {"configs", "systems", "data", "evaluation", "multipose", "tools", "warmstart"}


def test_the_training_folder_holds_only_its_entry_points_and_job_folders() -> None:
    entries = [p for p in TRAINING.iterdir() if not p.name.startswith((".", "__pycache__"))]
    files = {p.name for p in entries if p.is_file()}
    folders = {p.name for p in entries if p.is_dir()}
    assert files - {"__init__.py", "README.md", "JOURNAL.md"} == TRAINING_ENTRY_POINTS
    assert folders == TRAINING_FOLDERS
    for folder in sorted(folders):  # a folder of Python modules is a package
        if any((TRAINING / folder).glob("*.py")):
            assert (TRAINING / folder / "__init__.py").is_file(), folder


def test_every_training_module_compiles_and_imports() -> None:
    paths = sorted(TRAINING.rglob("*.py"))
    for path in paths:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    names = [".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for p in paths]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code, *names], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
