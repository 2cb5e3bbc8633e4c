"""The layering ARCHITECTURE.md describes, checked on the source: each module imports only
modules of its own layer or below (inside ``bundle/`` and ``table/``, of its own level or
below), imports of other layers' modules form no cycle, every import of tfckpt is relative, and
no private name crosses a module boundary."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "tfckpt"

LAYERS = [  # lowest first
    {"errors", "arguments", "settings", "coding", "storage", "dtypes", "snappy", "_proto", "structured",
     "filetypes", "values", "formatnames"},
    {"table"},
    {"bundle"},
    {"state"},
    {"api", "variables", "restore", "saver", "checkpoint", "manager", "verify", "diff", "convert", "savedmodel",
     "stats", "tree",
     "distributed", "formats", "asyncsave", "keras", "rules"},
    {"cli", "__main__", "interrupt", "__init__", "compat"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
# The order inside the subpackages, lowest first: the same rule, one level per set.
SUBLAYERS = {
    "bundle": [
        {"naming", "slices", "entry", "payload", "plan", "validate", "graph", "objects",  # records and rules
         "fast_entries", "fast_payload", "fast_plan", "fast_reads"},  # and their fast twins
        {"store", "v1"},  # stores
        {"reader"},
        {"writer", "publish"},  # writers
        {"merge"},
        {"__init__"},
    ],
    "table": [
        {"format", "block", "block_builder", "fast_layout"},
        {"reader", "builder"},
        {"__init__"},
    ],
}
SUBLAYER_OF = {(package, name): level for package, levels in SUBLAYERS.items()
               for level, names in enumerate(levels) for name in names}


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


def imported_modules(module: Path, text: str | None = None) -> list[tuple[str, ...]]:
    """The dotted path, below ``tfckpt``, of every module ``module`` imports relatively
    (``from . import x`` names module ``x`` when ``x`` is a module, else the package)."""
    tree = ast.parse(module.read_text() if text is None else text)
    package = module.parent.relative_to(SRC).parts
    out: list[tuple[str, ...]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = (*base, *(node.module.split(".") if node.module else ()))
            for alias in node.names:
                child = SRC.joinpath(*target, alias.name)
                is_module = child.with_suffix(".py").exists() or (child / "__init__.py").exists()
                out.append((*target, alias.name) if is_module else target)
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


def sublayer_imports(module: Path, text: str | None = None) -> list[str]:
    """Imports of a module of ``bundle/`` or ``table/`` that go up its package's order."""
    relative = module.relative_to(SRC).parts
    package, mine = relative[0], module.stem
    if len(relative) != 2 or package not in SUBLAYERS:
        return []
    level = SUBLAYER_OF[package, mine]
    return [f"{module.relative_to(SRC)} imports {package}.{target[1]}" for target in imported_modules(module, text)
            if len(target) > 1 and target[0] == package and target[1] != mine
            and SUBLAYER_OF.get((package, target[1]), len(SUBLAYERS[package])) > level]


def test_every_subpackage_module_has_a_level() -> None:
    assert {(p.parent.name, p.stem) for package in SUBLAYERS for p in (SRC / package).glob("*.py")} \
        == set(SUBLAYER_OF)


def test_no_subpackage_module_imports_a_higher_level() -> None:
    assert [line for module in sources() for line in sublayer_imports(module)] == []


def absolute_imports(module: Path, text: str | None = None) -> list[str]:
    """``import tfckpt.x`` and ``from tfckpt... import y`` in ``module``: the layer checks
    read relative imports, so an absolute one would pass them unseen."""
    tree = ast.parse(module.read_text() if text is None else text)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "tfckpt"]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "tfckpt":
            found.append(str(node.module))
    return [f"{module.relative_to(SRC)} imports {name} absolutely" for name in found]


def test_tfckpt_imports_itself_relatively() -> None:
    assert [line for module in sources() for line in absolute_imports(module)] == []


def unit_graph() -> dict[str, set[str]]:
    """The layer units each unit imports (itself left out)."""
    graph: dict[str, set[str]] = {}
    for module in sources():
        mine = unit(module)
        graph.setdefault(mine, set()).update(target for target, _ in imported_units(module) if target != mine)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles of ``graph`` (a same-layer import is allowed; a loop is not)."""
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            visit(target, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return cycles


def test_layer_units_import_each_other_without_cycles() -> None:
    assert find_cycles(unit_graph()) == []


def test_no_private_name_is_imported_across_modules() -> None:
    assert [line for module in sources() for line in private_imports(module)] == []


def test_the_checks_can_fail() -> None:
    module = SRC / "bundle" / "reader.py"
    assert upward_imports(module, "from ..cli import main\nfrom .. import state\n") == [
        "bundle/reader.py imports cli", "bundle/reader.py imports state"]
    assert private_imports(module, "from .entry import _secret\n") == ["bundle/reader.py: _secret"]
    assert sublayer_imports(module, "from .writer import save_mapping\nfrom . import merge, entry\n") == [
        "bundle/reader.py imports bundle.writer", "bundle/reader.py imports bundle.merge"]
    assert sublayer_imports(SRC / "table" / "format.py", "from .reader import TableReader\n") == [
        "table/format.py imports table.reader"]
    assert absolute_imports(module, "import tfckpt.state\nfrom tfckpt.cli import main\nfrom tfckpt import api\n") == [
        "bundle/reader.py imports tfckpt.state absolutely", "bundle/reader.py imports tfckpt.cli absolutely",
        "bundle/reader.py imports tfckpt absolutely"]
    assert find_cycles({"api": {"verify"}, "verify": {"api", "state"}, "state": set()}) == [["api", "verify", "api"]]


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


def test_the_package_has_its_public_names_only() -> None:
    """``dir(tfckpt)`` is ``__all__`` and dunders right after ``import tfckpt``, after importing
    submodules and after ``python -m tfckpt``; ``import tfckpt`` binds nothing public (each
    name is imported on first use) and no implementation module (a later first import of one
    binds it, as Python does, unseen by dir)."""
    import json
    import os
    import subprocess
    import sys

    script = """
import json, runpy, sys
import tfckpt
seen = {}
def look(when):
    seen[when] = sorted(n for n in dir(tfckpt) if not n.startswith("__"))
look("import tfckpt")
seen["bound"] = sorted(n for n in vars(tfckpt) if not n.startswith("_"))  # public names load on first use
import tfckpt.compat, tfckpt.convert
look("import tfckpt.compat")
sys.argv = ["tfckpt", "--help"]
try:
    runpy.run_module("tfckpt", run_name="__main__")
except SystemExit:
    pass
look("python -m tfckpt")
import tfckpt.coding
seen["submodule reachable"] = tfckpt.coding.unmask.__name__
seen["missing"] = hasattr(tfckpt, "no_such_name")
print("RESULT" + json.dumps(seen))
"""
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env).stdout
    seen = json.loads(out[out.index("RESULT") + len("RESULT"):])
    import tfckpt
    public = sorted(tfckpt.__all__)
    for when in ("import tfckpt", "import tfckpt.compat", "python -m tfckpt"):
        assert seen[when] == public, when
    assert seen["bound"] == []
    assert seen["submodule reachable"] == "unmask"
    assert seen["missing"] is False


def exception_classes(module: Path, text: str | None = None) -> list[str]:
    """Classes ``module`` defines whose bases name an error (``...Error``, ``Exception``,
    ``NothingMatched``) or a class of ``tfckpt.errors``."""
    import tfckpt.errors
    error_names = {"Exception", "BaseException", *tfckpt.errors.__all__}
    tree = ast.parse(module.read_text() if text is None else text)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "") for base in node.bases}
            if bases & error_names or any(base.endswith(("Error", "Exception")) for base in bases):
                found.append(f"{module.relative_to(SRC)}: {node.name}")
    return found


def test_errors_are_defined_in_errors_only() -> None:
    """tfckpt's error kinds live in ``errors`` (``compat/errors`` holds TensorFlow's own
    ``tf.errors`` classes for the stand-in)."""
    homes = {SRC / "errors.py", SRC / "compat" / "errors.py"}
    assert [line for module in sources() if module not in homes for line in exception_classes(module)] == []
    assert exception_classes(SRC / "cli.py", "class Nope(TfckptError):\n    pass\n") == ["cli.py: Nope"]


def fast_twin_rows(text: str) -> dict[str, list[str]]:
    """ARCHITECTURE.md's "Fast twins" table: twin module (``package/fast_x``) -> the names of
    its property tests."""
    section = text.split("\n## Fast twins\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and "/fast_" in cells[0]:
            rows[cells[0].split("`")[1]] = cells[2].split("`")[1::2]
    return rows


def test_every_fast_twin_is_listed_with_its_property_test() -> None:
    """Every module named ``fast_*`` has a row in ARCHITECTURE.md's "Fast twins" table (and
    every row a module), and each property test the row names is in tests/test_fast_twins.py,
    which imports the twin."""
    rows = fast_twin_rows((SRC.parent.parent / "ARCHITECTURE.md").read_text())
    twins = {f"{p.parent.name}/{p.stem}" for p in SRC.rglob("fast_*.py")}
    assert twins and set(rows) == twins
    tree = ast.parse(Path(__file__).with_name("test_fast_twins.py").read_text())
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    imported = {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names} | {str(node.module) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    for twin, names in rows.items():
        assert names and set(names) <= defined, twin
        assert f"tfckpt.{twin.replace('/', '.')}" in imported, twin


# The modules ARCHITECTURE.md says state the bytes they encode or decode in their docstring.
BYTE_MODULES = ["coding", "snappy", *(f"table/{p.stem}" for p in sorted((SRC / "table").glob("*.py"))
                                      if p.stem != "__init__"),
                "bundle/naming", "bundle/slices", "bundle/entry", "bundle/payload", "bundle/graph", "bundle/v1",
                "state", "formats/safetensors"]


def byte_docstring_problems(modules: list[str], root: Path = SRC) -> list[str]:
    """Modules of ``modules`` whose docstring shows no byte layout (a ``::`` block) nor speaks
    of bytes."""
    problems = []
    for name in modules:
        text = ast.get_docstring(ast.parse((root / f"{name}.py").read_text())) or ""
        if "::" not in text and "bytes" not in text.lower():
            problems.append(name)
    return problems


def test_modules_that_encode_bytes_state_them_in_their_docstring(tmp_path: Path) -> None:
    architecture = (SRC.parent.parent / "ARCHITECTURE.md").read_text()
    listed = " ".join(architecture[architecture.index("states them in its docstring ("):].split(")", 1)[0].split())
    for name in BYTE_MODULES:  # the list the document gives is the one checked here
        assert f"`{name}`" in listed or f"`{name.rsplit('/', 1)[-1]}`" in listed or name.startswith("table/"), name
    assert "every `table/` module" in listed
    assert byte_docstring_problems(BYTE_MODULES) == []
    (tmp_path / "quiet.py").write_text('"""Reads things."""\n')
    assert byte_docstring_problems(["quiet"], tmp_path) == ["quiet"]


def capability_probes(source: str) -> list[str]:
    """Places in ``source`` that ask an object whether it has a method instead of calling one
    its protocol declares: ``hasattr(x, ...)``, ``getattr(x, "name", default)`` (``self``'s own
    attributes excepted: ``__del__`` may run on a half-made object) and
    ``# type: ignore[attr-defined]``."""
    found = [f"line {n}: type: ignore[attr-defined]" for n, line in enumerate(source.splitlines(), 1)
             if "type: ignore[attr-defined]" in line]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            on_self = bool(node.args) and isinstance(node.args[0], ast.Name) and node.args[0].id == "self"  # __del__
            if not on_self and (node.func.id == "hasattr" or (node.func.id == "getattr" and len(node.args) == 3)):
                found.append(f"line {node.lineno}: {node.func.id}")
    return found


def test_stores_and_sources_declare_their_capabilities() -> None:
    """The readers ask the ``ByteSource``/``Store`` protocols for optional capabilities
    (identity, prefetch, mapping, quick reads) by calling what the protocols declare, never by
    probing whether an object happens to have a method."""
    problems = {str(path.relative_to(SRC)): probes for path in sorted((SRC / "bundle").glob("*.py"))
                + sorted((SRC / "table").glob("*.py"))
                if (probes := capability_probes(path.read_text()))}
    assert problems == {}
    assert capability_probes('if hasattr(source, "mapping"):\n    pass\nx = getattr(s, "identity", None)\n') == [
        "line 1: hasattr", "line 3: getattr"]
