"""The filesystem seam, checked on the source: every file operation goes through
``tfckpt.storage`` (its :class:`~tfckpt.storage.Filesystem` classes), so that each feature works
on every filesystem or says which one it cannot use. Outside ``storage`` no module calls the
builtin ``open``, imports ``glob``/``shutil``/``pathlib``, tests ``is_url``, or uses ``os``
beyond the few names listed below, each with its reason."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "tfckpt"

# os names that are no file operation, allowed everywhere.
ALLOWED_OS = {
    "fspath": "turns a path object into its string (the str-or-PathLike argument rule)",
    "PathLike": "the type of path objects, in annotations and the argument check",
    "environ": "settings read from the environment (thread count)",
    "cpu_count": "the default thread count",
    "sched_getaffinity": "the default thread count under taskset/cgroups",
    "SEEK_END": "seeking an in-memory or already-open file object",
    "getpid": "names a merge lock's owner in its note",
}
# Names allowed in one module only, with the reason.
ALLOWED_HERE = {
    "cli.py": {"open": "redirects stdout to os.devnull after a closed pipe (process I/O, no checkpoint file)",
               "devnull": "as above", "O_WRONLY": "as above", "dup2": "as above"},
    "interrupt.py": {"write": "Ctrl-C's one line to stderr, from a signal handler (process I/O, no file)",
                     "_exit": "ends the program at once on Ctrl-C"},
    "compat/__main__.py": {"getcwd": "puts a script's directory on sys.path, as `python script.py` does",
                           "path.abspath": "as above", "path.dirname": "as above"},
}
BANNED_MODULES = {"glob", "shutil", "pathlib", "tempfile"}
OPEN_ALIASES = {"io", "builtins", "codecs"}  # X.open is the builtin open under another name


def _os_name(node: ast.Attribute) -> str | None:
    """``X`` for ``os.X``, ``path.X`` for ``os.path.X``; ``None`` for anything else."""
    parts = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if isinstance(current, ast.Name) and current.id == "os":
        return ".".join(reversed(parts))
    return None


def violations(module: Path) -> list[str]:
    relative = module.relative_to(SRC).as_posix()
    allowed = {**ALLOWED_OS, **ALLOWED_HERE.get(relative, {})}
    tree = ast.parse(module.read_text())
    _mark_parents(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and not isinstance(getattr(node, "_parent", None), ast.Attribute):
            name = _os_name(node)
            if name is not None and name not in allowed and name.split(".")[0] not in allowed:
                found.append(f"{where}: os.{name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            found.append(f"{where}: builtin open()")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if node.level == 0 else [])
            found += [f"{where}: import {name}" for name in names if name.split(".")[0] in BANNED_MODULES]
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "os":
                found.append(f"{where}: from {node.module} import ...")
            # An alias (`import os as o`, `import os.path as p`) hides every later use from the
            # `os.X` check above.
            if isinstance(node, ast.Import):
                found += [f"{where}: import {alias.name} as {alias.asname}" for alias in node.names
                          if alias.name.split(".")[0] == "os" and alias.asname]
        if isinstance(node, ast.Name) and node.id in ("is_url", "posixpath"):
            found.append(f"{where}: {node.id}")
        if (isinstance(node, ast.Attribute) and node.attr == "open" and isinstance(node.value, ast.Name)
                and node.value.id in OPEN_ALIASES):
            found.append(f"{where}: {node.value.id}.open")
        if isinstance(node, ast.Attribute) and node.attr == "is_url":
            found.append(f"{where}: .is_url")
        if isinstance(node, ast.alias) and node.name in ("is_url", "posixpath"):
            found.append(f"{where}: imports {node.name}")
    return found


def _mark_parents(tree: ast.AST) -> None:
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child._parent = parent  # type: ignore[attr-defined]


def test_file_operations_go_through_storage() -> None:
    found = []
    for module in sorted(SRC.rglob("*.py")):
        relative = module.relative_to(SRC).as_posix()
        if relative == "storage.py" or relative.startswith("_proto/"):
            continue
        found += violations(module)
    assert not found, "file operations outside tfckpt.storage:\n" + "\n".join(found)


def test_the_check_sees_what_it_bans(tmp_path: Path) -> None:
    """The checker itself: each banned form is reported, each allowed one is not."""
    package = tmp_path / "tfckpt"
    package.mkdir()
    module = package / "probe.py"
    module.write_text("import os\nimport shutil\nimport posixpath\nfrom ..storage import is_url\n"
                      "os.path.exists('x')\nos.replace('a', 'b')\nopen('x')\nstorage.is_url('y')\n"
                      "os.fspath('z')\nos.environ.get('A')\nf.open('ok')\n"
                      "import os as o\nimport os.path as osp\nfrom os.path import join\nio.open('x')\n"
                      "builtins.open('x')\n")
    global SRC
    saved, SRC = SRC, package
    try:
        found = violations(module)
    finally:
        SRC = saved
    text = "\n".join(found)
    for expected in ("import shutil", "posixpath", "imports is_url", "os.path.exists", "os.replace",
                     "builtin open()", ".is_url", "import os as o", "import os.path as osp",
                     "from os.path import", "io.open", "builtins.open"):
        assert expected in text, (expected, found)
    assert "fspath" not in text and "environ" not in text and "'ok'" not in text


# storage's module-level functions that pick a filesystem themselves, with the reason; every
# other caller takes ``storage.filesystem_for(path)`` once and calls methods on what it returns.
CHOOSERS = {
    "filesystem_for": "the one place a path's filesystem is chosen",
    "path_identity": "a file's identity for a reader's staleness check, from its path alone",
}


def test_storage_offers_no_function_that_chooses_the_filesystem_on_every_call() -> None:
    tree = ast.parse((SRC / "storage.py").read_text())
    choosers = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                and not node.name.startswith("_")
                and any(isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                        and call.func.id in ("filesystem_for", "_filesystem") for call in ast.walk(node))]
    assert sorted(choosers) == sorted(CHOOSERS), choosers
