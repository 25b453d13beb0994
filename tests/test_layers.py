"""The package's layers (DESIGN.md, "Layers"), checked on every module's imports with ``ast``.

Each layer imports only from layers below it:

    base  →  state spaces  →  sampling  →  train  →  recipes  →  (notebooks, benchmarks)

* **base** (config, _checks, _random, cache, checkpoint, schedules, grids) imports nothing else of the package;
* **state spaces** (process, gaussian, categorical, masked, uniform, joint, clocks, guidance) import base and each
  other;
* **nets/, data/, metrics/** and **viz** sit beside the state spaces: they may import base and the state spaces and
  their own package, but none of sampling, train or recipes, and not each other (the math knows no network or data
  set, data does not depend on its judges, metrics score samples but never draw them);
* **sampling** imports base and state spaces (no network, data or metric);
* **train** (train, distributed) imports everything below it (base, state spaces, nets/data/metrics, sampling), never
  recipes;
* **recipes** may import anything in the package.

The package's face, ``diffuse_edu/__init__.py``, re-exports the paper's nouns from any layer and is exempt. Imports
inside functions and under ``if TYPE_CHECKING:`` count like any other. A module the table below does not place fails
the test: put every new module in a layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "diffuse_edu"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

BASE = {"config", "_checks", "_random", "cache", "checkpoint", "schedules", "grids"}
STATE = {"process", "gaussian", "categorical", "masked", "uniform", "joint", "clocks", "guidance"}
BESIDE = {"nets", "data", "metrics", "viz"}

# The layer of each top-level part of the package, and the layers it may import.
LAYER = {**{m: "base" for m in BASE}, **{m: "state spaces" for m in STATE}, **{m: m for m in BESIDE}}
LAYER.update(sampling="sampling", train="train", distributed="train", recipes="recipes")
ALLOWED = {
    "base": {"base"},
    "state spaces": {"base", "state spaces"},
    **{m: {"base", "state spaces", m} for m in BESIDE},
    "sampling": {"base", "state spaces", "sampling"},
    "train": {"base", "state spaces", *BESIDE, "sampling", "train"},
    "recipes": {"base", "state spaces", *BESIDE, "sampling", "train", "recipes"},
}
EXEMPT = {f"{PACKAGE}/__init__.py"}


def modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    """``diffuse_edu/sampling/joint.py`` → ``diffuse_edu.sampling.joint``; a package's ``__init__`` → the package."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(path: Path) -> str:
    """The top-level part of the package a file belongs to: ``"sampling"`` for ``sampling/joint.py``."""
    rel = path.relative_to(ROOT).with_suffix("").parts
    return rel[0]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every ``diffuse_edu...`` module a file imports, absolute, with its line number."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            if target == PACKAGE or node.module is None:
                # `from diffuse_edu import x` / `from .. import x`: each name is a module (or a re-exported object)
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
    return found


def target_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_has_a_layer():
    unplaced = sorted({part_of(p) for p in modules() if str(p.relative_to(ROOT.parent)) not in EXEMPT} - set(LAYER))
    assert not unplaced, (
        f"modules or subpackages {unplaced} of {PACKAGE} are in no layer: add them to tests/test_layers.py "
        "(and to DESIGN.md's layer list) before importing them anywhere."
    )


def violations() -> list[str]:
    out = []
    for path in modules():
        rel = str(path.relative_to(ROOT.parent))
        if rel in EXEMPT or part_of(path) not in LAYER:
            continue
        layer = LAYER[part_of(path)]
        for line, module in imported_modules(path):
            part = target_part(module)
            if part is None or part not in LAYER:
                if part not in {None, *LAYER} and part != "__version__":
                    out.append(f"{rel}:{line} imports {module}, which is in no layer")
                continue
            if LAYER[part] not in ALLOWED[layer]:
                out.append(
                    f"{rel}:{line} imports {module} ({LAYER[part]}), but {layer} may import only "
                    f"{', '.join(sorted(ALLOWED[layer]))}"
                )
    return out


def test_imports_respect_the_layers():
    bad = violations()
    assert not bad, "layer violations (see DESIGN.md, 'Layers'):\n  " + "\n  ".join(bad)


def _write(tmp: Path, rel: str, text: str) -> Path:
    p = tmp / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("rel", "source", "want"),
    [
        ("diffuse_edu/metrics/x.py", "from ..sampling import sample_joint\n", ["diffuse_edu.sampling"]),
        ("diffuse_edu/metrics/x.py", "from ..data.digits import load\n", ["diffuse_edu.data.digits"]),
        ("diffuse_edu/sampling/x.py", "from .joint import f\nfrom .. import grids\n",
         ["diffuse_edu.sampling.joint", "diffuse_edu.grids"]),
        ("diffuse_edu/x.py", "import diffuse_edu.recipes.text as t\ndef f():\n    from .train import train\n",
         ["diffuse_edu.recipes.text", "diffuse_edu.train"]),
        ("diffuse_edu/data/__init__.py", "from .text import CharVocab\n", ["diffuse_edu.data.text"]),
    ],
)  # fmt: skip
def test_import_resolution(tmp_path, monkeypatch, rel, source, want):
    """The parser resolves relative, absolute and function-level imports to absolute module names."""
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path / PACKAGE, raising=True)
    path = _write(tmp_path, rel, source)
    assert [m for _, m in imported_modules(path)] == want
