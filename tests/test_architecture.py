"""The layering ARCHITECTURE.md describes, checked on the source: each module imports only
modules of its own layer or below, and no private name crosses a module boundary."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "tfckpt"

LAYERS = [  # lowest first
    {"errors", "coding", "storage", "dtypes", "snappy", "_proto", "structured", "filetypes"},
    {"table", "table_layout"},
    {"bundle"},
    {"state"},
    {"api", "variables", "restore", "saver", "checkpoint", "manager", "verify", "diff", "convert", "savedmodel",
     "stats", "tree",
     "distributed", "formats", "rules"},
    {"cli", "__main__", "__init__", "compat"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def unit(module: Path) -> str:
    """The layer unit of a source file: its top-level module, or the subpackage it is in."""
    relative = module.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_units(module: Path, text: str | None = None) -> list[tuple[str, list[str]]]:
    """(unit, names) for every tfckpt import of ``module`` (relative imports resolved)."""
    tree = ast.parse(module.read_text() if text is None else text)
    package = module.parent.relative_to(SRC).parts
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = (*base, *(node.module.split(".") if node.module else ()))
            names = [alias.name for alias in node.names]
            if not target:  # "from . import x": x is the unit
                out += [(name, [name]) for name in names]
            else:
                out.append((target[0], names))
    return out


def sources() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if "_proto" not in p.parts]


def test_every_module_has_a_layer() -> None:
    assert {unit(p) for p in sources()} <= set(LAYER_OF)


def upward_imports(module: Path, text: str | None = None) -> list[str]:
    mine = LAYER_OF[unit(module)]
    return [f"{module.relative_to(SRC)} imports {target}" for target, _ in imported_units(module, text)
            if LAYER_OF.get(target, -1) > mine]


def private_imports(module: Path, text: str | None = None) -> list[str]:
    return [f"{module.relative_to(SRC)}: {name}" for _, names in imported_units(module, text) for name in names
            if name.startswith("_") and not name.startswith("__") and name != "_proto"]


def test_no_module_imports_a_higher_layer() -> None:
    assert [line for module in sources() for line in upward_imports(module)] == []


def test_no_private_name_is_imported_across_modules() -> None:
    assert [line for module in sources() for line in private_imports(module)] == []


def test_the_checks_can_fail() -> None:
    module = SRC / "bundle" / "reader.py"
    assert upward_imports(module, "from ..cli import main\nfrom .. import state\n") == [
        "bundle/reader.py imports cli", "bundle/reader.py imports state"]
    assert private_imports(module, "from .entry import _secret\n") == ["bundle/reader.py: _secret"]


def test_every_public_name_is_documented_with_an_example() -> None:
    import inspect

    import tfckpt
    missing = []
    for name in tfckpt.__all__:
        value = getattr(tfckpt, name)
        if inspect.ismodule(value) or (inspect.isclass(value) and issubclass(value, BaseException)):
            continue
        doc = inspect.getdoc(value) or ""
        if ">>>" not in doc:
            missing.append(name)
    assert missing == []
