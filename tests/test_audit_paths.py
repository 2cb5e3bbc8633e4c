"""Paths that come from somewhere else: a ``checkpoint`` state file's entries, a destination
directory's state file, caller-supplied paths and slice indices (audit findings 01, 02, 09, 10).

A path read from a state file is literal (never a glob pattern), is resolved on the state
file's own filesystem (never on another one) and, where tfckpt writes through it, must lie in
the directory it was read from.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from conftest import optional
from timing import confirmed

import tfckpt
from tfckpt.cli import main
from tfckpt.errors import InvalidArgumentError, UnsupportedError


def _state_file(directory: Path, model_checkpoint_path: str) -> None:
    (directory / "checkpoint").write_text(f"model_checkpoint_path: {model_checkpoint_path!r}\n".replace("'", '"'))


def _tensors(prefix: str) -> dict[str, list[int]]:
    return dict(tfckpt.list_variables(prefix))


# -- convert SRC DIR: the destination directory's state file -----------------------------------

@pytest.fixture
def victim(tmp_path: Path) -> str:
    return tfckpt.save({"precious": np.arange(3, dtype=np.float32)}, str(tmp_path / "victim" / "model"))


@pytest.fixture
def source(tmp_path: Path) -> str:
    return tfckpt.save({"new": np.zeros(2, np.float32)}, str(tmp_path / "src" / "ck"))


@pytest.mark.parametrize("how", ["relative", "absolute", "symlinked"])
def test_convert_refuses_a_destination_state_file_naming_a_checkpoint_outside(
        tmp_path: Path, victim: str, source: str, how: str) -> None:
    destination = tmp_path / "downloaded"
    destination.mkdir()
    if how == "symlinked":
        (destination / "link").symlink_to(tmp_path / "victim", target_is_directory=True)
    named = {"relative": "../victim/model", "absolute": victim, "symlinked": "link/model"}[how]
    _state_file(destination, named)
    with pytest.raises(InvalidArgumentError, match="outside the destination directory") as caught:
        tfckpt.convert_checkpoint(source, str(destination))
    assert str(destination / "checkpoint") in str(caught.value)
    assert _tensors(victim) == {"precious": [3]}
    assert main(["convert", source, str(destination)]) != 0
    assert _tensors(victim) == {"precious": [3]}
    assert sorted(os.listdir(destination)) == sorted(["checkpoint", *(["link"] if how == "symlinked" else [])])


def test_convert_still_writes_the_checkpoint_a_destination_state_file_names_inside(
        tmp_path: Path, source: str) -> None:
    destination = tmp_path / "run"
    inside = tfckpt.save({"old": np.ones(1, np.float32)}, str(destination / "sub" / "ckpt-7"))
    _state_file(destination, "sub/ckpt-7")
    tfckpt.convert_checkpoint(source, str(destination))
    assert _tensors(inside) == {"new": [2]}


# -- a state file's path is literal, never a glob pattern ----------------------------------------

def _latest_checkpoint_seconds(directory: Path, levels: int) -> tuple[float, str | None]:
    """The best of three ``latest_checkpoint`` times with a state file naming ``[ab]/`` repeated
    ``levels`` times (2**levels matches through the ``a``, ``b`` -> ``.`` symlinks, if globbed)."""
    _state_file(directory, "[ab]/" * levels + "ckpt-1.index")
    times, latest = [], None
    for _ in range(3):
        start = time.perf_counter()
        latest = tfckpt.latest_checkpoint(str(directory))
        times.append(time.perf_counter() - start)
    return min(times), latest


def test_a_state_file_path_with_glob_characters_is_not_expanded(tmp_path: Path) -> None:
    tfckpt.save({"x": [1.0]}, str(tmp_path / "ckpt-1"))
    (tmp_path / "a").symlink_to(".", target_is_directory=True)
    (tmp_path / "b").symlink_to(".", target_is_directory=True)
    (short, latest_short), (long, latest_long) = confirmed(
        lambda: [_latest_checkpoint_seconds(tmp_path, k) for k in (4, 11)],
        lambda timed: timed[1][0] < 4 * timed[0][0] + 0.05)
    assert latest_short is None and latest_long is None  # no checkpoint has that literal name
    assert long < 4 * short + 0.05, f"2**11 vs 2**4 glob matches: {long:.3f} s vs {short:.3f} s"


def test_load_checkpoint_does_not_open_files_a_state_file_pattern_matches(tmp_path: Path) -> None:
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    (elsewhere / "notes.bin").write_bytes(b"not a checkpoint, and not the caller's to open" * 4)
    _state_file(run, str(tmp_path / "*" / "*"))
    with pytest.raises(tfckpt.NotFoundError, match="Couldn't find"):
        tfckpt.load_checkpoint(str(run))


@pytest.mark.parametrize("name", ["model[1]", "model*", "m?del"])
def test_checkpoints_whose_names_hold_glob_characters_still_load(tmp_path: Path, name: str) -> None:
    directory = tmp_path / "runs[0]"
    prefix = tfckpt.save({"x": np.ones(2, np.float32)}, str(directory / name))
    _state_file(directory, name)
    assert tfckpt.latest_checkpoint(str(directory)) == prefix
    assert tfckpt.load_checkpoint(str(directory))["x"].tolist() == [1.0, 1.0]


# -- a state file's path is resolved on the state file's own filesystem --------------------------

class _CountingHandler(SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        _CountingHandler.requests.append(f"{self.command} {self.path}")
        return super().send_head()


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server over a directory holding a checkpoint ``ckpt-9``; counts requests."""
    optional("fsspec")
    optional("aiohttp")
    served = tmp_path / "served"
    tfckpt.save({"x": [666.0]}, str(served / "ckpt-9"))
    _CountingHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: _CountingHandler(*a, directory=str(served), **k))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_in_a_local_state_file_is_joined_like_a_relative_path(tmp_path: Path) -> None:
    """TensorFlow's answer (tf.train.get_checkpoint_state joins every non-absolute path onto
    the directory): ``DIR/zzz://host/ckpt-1``, a local name that does not exist."""
    run = tmp_path / "run"
    tfckpt.save({"x": [1.0]}, str(run / "ckpt-1"))
    _state_file(run, "zzz://host/ckpt-1")
    state = tfckpt.get_checkpoint_state(str(run))
    assert state is not None and state.model_checkpoint_path == os.path.join(str(run), "zzz://host/ckpt-1")
    assert tfckpt.latest_checkpoint(str(run)) is None
    assert tfckpt.checkpoint_exists(state.model_checkpoint_path) is False
    # no state file checkpoint: the directory's only checkpoint, as without a state file
    assert tfckpt.load_checkpoint(str(run))["x"].tolist() == [1.0]
    assert tfckpt.list_variables(str(run)) == [("x", [1])]
    assert tfckpt.load(str(run))["x"].tolist() == [1.0]
    assert main(["ls", str(run)]) == 0


def test_a_url_in_a_state_file_in_the_current_directory_stays_local(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _state_file(tmp_path, "zzz://host/ckpt-1")
    assert tfckpt.latest_checkpoint("") is None
    state = tfckpt.get_checkpoint_state("")
    assert state is not None and not state.model_checkpoint_path.startswith("zzz:")


def test_a_local_state_file_naming_an_http_url_contacts_no_host(
        tmp_path: Path, http_server: tuple[str, Path]) -> None:
    url, _ = http_server
    run = tmp_path / "run"
    run.mkdir()
    _state_file(run, f"{url}/ckpt-9")
    assert tfckpt.latest_checkpoint(str(run)) is None
    with pytest.raises(tfckpt.NotFoundError):
        tfckpt.load_checkpoint(str(run))
    assert _CountingHandler.requests == []
    assert tfckpt.latest_checkpoint(url) is None and _CountingHandler.requests  # the server does answer


def _remote_state_file(directory: str, text: str) -> None:
    with optional("fsspec").open(f"{directory}/checkpoint", "w") as f:
        f.write(text)


def _memory_directory() -> str:
    optional("fsspec")
    return f"memory://tfckpt-audit-paths/{uuid.uuid4().hex}"


def test_a_remote_state_file_naming_a_local_absolute_path_never_reads_the_local_disk(tmp_path: Path) -> None:
    local = tfckpt.save({"x": [123.0]}, str(tmp_path / "ckpt-1"))  # exists on this machine's disk
    run = _memory_directory()
    _remote_state_file(run, f'model_checkpoint_path: "{local}"\n')
    assert tfckpt.latest_checkpoint(run) is None  # not the local checkpoint
    with pytest.raises(tfckpt.NotFoundError):
        tfckpt.load_checkpoint(run)
    remote = tfckpt.save({"x": [7.0]}, f"{run}/ckpt-1")  # uploaded beside its state file
    assert tfckpt.latest_checkpoint(run) == remote
    assert tfckpt.load_checkpoint(run)["x"].tolist() == [7.0]


def test_a_remote_state_file_names_urls_of_its_own_filesystem_only(http_server: tuple[str, Path]) -> None:
    url, _ = http_server
    run = _memory_directory()
    inside = tfckpt.save({"x": [1.0]}, f"{run}/sub/ckpt-2")
    _remote_state_file(run, f'model_checkpoint_path: "{inside}"\n')
    assert tfckpt.latest_checkpoint(run) == inside
    _remote_state_file(run, f'model_checkpoint_path: "{url}/ckpt-9"\n')
    assert tfckpt.latest_checkpoint(run) is None
    assert _CountingHandler.requests == []


# -- caller-supplied paths and slice indices ---------------------------------------------------------

@pytest.mark.parametrize("mask", [np.array([True, False, True]), (np.array([True, False, True]),),
                                  (Ellipsis, np.array([0, 2]))])
def test_get_slice_refuses_array_indices_naming_what_it_supports(tmp_path: Path, mask: object) -> None:
    prefix = tfckpt.save({"w": np.arange(3, dtype=np.float32)}, str(tmp_path / "ck"))
    with tfckpt.load_checkpoint(prefix) as reader:
        view = reader.get_slice("w")
        with pytest.raises(tfckpt.TfckptError, match=r"supports integers, slices and '\.\.\.'"):
            view[mask]  # type: ignore[index]
        assert view[..., 1:].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("entry", [tfckpt.latest_checkpoint, tfckpt.load_checkpoint, tfckpt.verify_checkpoint,
                                   tfckpt.load, tfckpt.list_variables, tfckpt.checkpoint_exists])
def test_a_path_with_a_nul_character_is_an_argument_error(tmp_path: Path, entry: Callable[[str], object]) -> None:
    with pytest.raises(InvalidArgumentError, match="NUL character"):
        entry(str(tmp_path / "run\0" / "ck"))


def test_an_unknown_url_scheme_is_unsupported_and_named() -> None:
    optional("fsspec")
    report = tfckpt.verify_checkpoint("zzz://a/b")  # verify reports, it does not raise
    assert not report.ok and "zzz" in str(report.problems)
    for entry in (tfckpt.load_checkpoint, tfckpt.latest_checkpoint, tfckpt.list_variables):
        with pytest.raises(UnsupportedError, match="unknown URL scheme 'zzz'"):
            entry("zzz://a/b")


def test_a_url_whose_host_or_bucket_holds_brackets_loads() -> None:
    optional("fsspec")
    directory = f"memory://run[{uuid.uuid4().hex}]"
    prefix = tfckpt.save({"x": np.ones(2, np.float32)}, f"{directory}/ck")
    assert tfckpt.load_checkpoint(directory)["x"].tolist() == [1.0, 1.0]
    assert tfckpt.load_checkpoint(prefix)["x"].tolist() == [1.0, 1.0]
