"""What pyproject.toml declares matches what the README promises and what CI proves."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def project() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]  # type: ignore[no-any-return]


def test_the_remote_extra_installs_what_http_urls_need() -> None:
    """README: `pip install ".[remote]"` gives http(s):// paths; fsspec's HTTP file system needs
    its own `http` extra (aiohttp), which plain `fsspec` does not install."""
    extra = [Requirement(text) for text in project()["optional-dependencies"]["remote"]]
    fsspec = [req for req in extra if req.name == "fsspec"]
    assert fsspec and "http" in fsspec[0].extras, extra
    readme = (ROOT / "README.md").read_text()
    assert re.search(r'pip install "?\.\[remote\]"?\s+# plus fsspec, for s3://, gs://, http\(s\)://', readme)


def test_every_supported_python_is_declared_and_tested_in_ci() -> None:
    meta = project()
    lowest = re.fullmatch(r">=3\.(\d+)", meta["requires-python"])
    assert lowest
    declared = {int(m) for c in meta["classifiers"]
                for m in re.findall(r"^Programming Language :: Python :: 3\.(\d+)$", c)}
    assert declared == set(range(int(lowest.group(1)), max(declared) + 1)), declared
    ci = (ROOT / ".ci" / "run").read_text()
    loop = re.search(r"^for version in ([\d. ]+); do$", ci, re.MULTILINE)
    assert loop, "the per-Python loop of .ci/run"
    tested = {int(v.split(".")[1]) for v in loop.group(1).split()} | {11}  # 3.11: the first stage's .venv
    assert tested == declared


def test_the_api_reference_lists_every_public_member() -> None:
    """The reference hid members without docstrings; now it lists them all, and TensorFlow's
    own CheckpointReader methods, which users come looking for, are documented."""
    import tfckpt

    assert re.search(r"^\s+show_if_no_docstring: true", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    for method in ("get_tensor", "has_tensor", "get_variable_to_shape_map", "get_variable_to_dtype_map",
                   "debug_string", "close"):
        assert getattr(tfckpt.CheckpointReader, method).__doc__, method
    assert tfckpt.VerifyReport.ok.__doc__ and tfckpt.SliceView.read.__doc__


def stray_paths(root: Path) -> list[str]:
    """Files under ``root`` (dot-directories, caches and build outputs aside) whose path is a
    local copy of something else: a URL (``http:/host/out.npz``, a ``:`` no Windows checkout
    can hold) or a bytes repr (``b'/abs/path'``) that a run wrote as a relative path."""
    skipped = {"__pycache__", "build", "dist", "site"}
    found = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") or part in skipped or part.endswith(".egg-info") for part in parts):
            continue
        if any(":" in part or part.startswith(("b'", 'b"')) for part in parts):
            found.append("/".join(parts))
    return found


def test_the_tree_holds_no_file_written_under_a_mangled_name(tmp_path: Path) -> None:
    assert stray_paths(ROOT) == []
    (tmp_path / "http:" / "127.0.0.1:1").mkdir(parents=True)
    (tmp_path / "http:" / "127.0.0.1:1" / "out.npz").write_bytes(b"")
    (tmp_path / "b'" / "abs").mkdir(parents=True)
    (tmp_path / "ok.txt").write_bytes(b"")
    assert sorted(stray_paths(tmp_path)) == ["b'", "b'/abs", "http:", "http:/127.0.0.1:1", "http:/127.0.0.1:1/out.npz"]
