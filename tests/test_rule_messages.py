"""Each rule is written once (ARCHITECTURE.md "Where each rule lives"): the same message text
raised (or returned by a ``*_problem`` rule function) in two places means a rule restated, which
drifts. And the fast twin of a reference path calls the very rule functions the reference path
does, so changing a rule changes both."""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt import errors
from tfckpt.bundle import validate
from tfckpt.bundle.store import BundleStore
from tfckpt.errors import CorruptionError

SRC = Path(__file__).resolve().parent.parent / "src" / "tfckpt"
ERROR_NAMES = {name for name in dir(errors) if isinstance(getattr(errors, name), type)
               and issubclass(getattr(errors, name), errors.TfckptError)}
MIN_WORDS = 4  # messages with fewer constant words ("{}: {}") say nothing of a rule

# Messages allowed in two places, each with its reason.
ALLOWED: dict[str, str] = {
    # storage's byte sources (local file, local positional reads, fsspec object), one message
    # per kind of source; the seam (issue 25) left them as three classes' own checks.
    "read of {} bytes at offset {} runs past the end of the file ({} bytes)":
        "storage's local and remote sources (filesystem seam)",
    "file shrank while reading at offset {}": "storage's two local read paths (filesystem seam)",
}


def message_text(node: ast.expr) -> str | None:
    """The constant text of a message, each interpolation as ``{}``, normalised (lower case,
    single spaces, a leading "where: " dropped); ``None`` for a message not written here."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    else:
        return None
    text = re.sub(r"\s+", " ", text).strip().lower()
    return re.sub(r"^(\{\}[: ]*)+", "", text)


def called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def messages(tree: ast.AST) -> list[tuple[str, int]]:
    """``(message, line)`` for each error constructed with a message written in place, and each
    message a ``*_problem`` rule function returns."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and called_name(node) in ERROR_NAMES and node.args:
            found.append((node.args[0], node.lineno))
        elif isinstance(node, ast.FunctionDef) and node.name.endswith("_problem"):
            found += [(ret.value, ret.lineno) for ret in ast.walk(node)
                      if isinstance(ret, ast.Return) and ret.value is not None]
    out = []
    for expr, line in found:
        text = message_text(expr)
        if text is not None and len(re.sub(r"\{\}", " ", text).split()) >= MIN_WORDS:
            out.append((text, line))
    return out


def duplicate_messages(sources: dict[str, str]) -> dict[str, list[str]]:
    """Each message written in more than one place -> those places (``file:line``)."""
    places: dict[str, list[str]] = defaultdict(list)
    for name, text in sources.items():
        for message, line in messages(ast.parse(text)):
            places[message].append(f"{name}:{line}")
    return {message: where for message, where in places.items() if len(where) > 1 and message not in ALLOWED}


def test_no_rule_message_is_written_twice() -> None:
    sources = {str(path.relative_to(SRC)): path.read_text() for path in sorted(SRC.rglob("*.py"))
               if "_proto" not in path.parts}
    assert duplicate_messages(sources) == {}


def test_the_scan_finds_a_restated_rule() -> None:
    # The duplicate this test was written for: payload restated validate's string size rule.
    restated = {
        "validate.py": 'def size_problem(size, count):\n'
                       '    return f"invalid size in bundle entry: stored size {size}; a string tensor needs {count}"\n',
        "payload.py": 'def check(size, count, where):\n'
                      '    raise CorruptionError(f"{where}: invalid size in bundle entry: stored size {size}; "\n'
                      '                          f"a string tensor needs {count}")\n',
        "other.py": 'raise CorruptionError(f"{where}: {problem}")\n',  # too short to be a rule's text
    }
    assert duplicate_messages(restated) == {
        "invalid size in bundle entry: stored size {}; a string tensor needs {}": ["validate.py:2", "payload.py:2"]}


def test_allowlist_entries_still_match() -> None:
    sources = {str(path.relative_to(SRC)): path.read_text() for path in sorted(SRC.rglob("*.py"))
               if "_proto" not in path.parts}
    # An entry whose message is written once now (or not at all) no longer excuses anything.
    written = Counter(message for text in sources.values() for message, _ in messages(ast.parse(text)))
    assert {message: written[message] for message in ALLOWED if written[message] < 2} == {}


def test_changing_the_shard_rule_changes_the_quick_and_the_reference_path(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = str(tmp_path / "ck")
    tfckpt.save({"a": np.arange(4, dtype=np.float32), "b": np.ones(3, dtype=np.int32)}, prefix)
    store = BundleStore(prefix)
    assert store.quick_sizes(["a", "b"]) == [16, 12]
    store.close()
    # One edit to the rule: no entry may name data file 0 any more.
    monkeypatch.setattr(validate, "shard_inside", lambda shard_id, num_shards: shard_id < 0)
    store = BundleStore(prefix)
    assert store.quick_sizes(["a", "b"]) == [-1, -1]  # the quick path refuses...
    with pytest.raises(CorruptionError, match="is in shard 0 but the header says there are 1 shards"):
        store.info("a")  # ...and the reference path says why
    store.close()


def test_changing_the_size_rule_changes_the_quick_and_the_reference_path(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = str(tmp_path / "ck")
    tfckpt.save({"a": np.arange(4, dtype=np.float32)}, prefix)
    # One edit to the rule: every fixed-size tensor "needs" one byte more than it has.
    real = validate.fixed_nbytes
    monkeypatch.setattr(validate, "fixed_nbytes", lambda dtype, shape: real(dtype, shape) + 1)
    store = BundleStore(prefix)
    info = store.info("a")
    assert info is not None
    assert store.quick_sizes(["a"]) == [-1]
    with pytest.raises(CorruptionError, match="stored size 16; expected 17"):
        store.check_stored(info)
    store.close()
