"""Every feature on every filesystem the suite has: a local directory, ``memory://``, S3
(moto's server, through s3fs) and, for reads, plain HTTP (read-only). Each test is one of
issue 25's reproductions: a feature that worked locally and silently did something else (or
nothing) on a URL."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FIXTURES, optional
from test_remote import http_root  # noqa: F401 - the HTTP server fixture
from test_s3 import server  # noqa: F401 - the S3 server fixture

import tfckpt
from tfckpt import savedmodel, storage
from tfckpt.formats import open_reader

optional("fsspec")

WRITABLE = ["local", "memory", "s3"]
EVERY = [*WRITABLE, "http"]
SAVEDMODELS = Path(__file__).parent / "fixtures" / "savedmodels"


@dataclass
class Place:
    """A directory on one filesystem: ``root`` is where tfckpt reads it; files for it to read
    are put there with :meth:`put` (for HTTP, into the directory the server serves)."""

    kind: str
    root: str
    served: Path | None = None  # HTTP: the local directory behind ``root``

    def path(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    def writer_path(self, *parts: str) -> str:
        """Where to save something for this place to read."""
        return str(self.served.joinpath(*parts)) if self.served is not None else self.path(*parts)

    def put(self, relative: str, data: bytes) -> None:
        target = self.writer_path(relative)
        fs = storage.filesystem_for(target)
        fs.makedirs(fs.dirname(target))
        with fs.open_file(target, "wb") as f:
            f.write(data)


@pytest.fixture
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    kind = request.param
    if kind == "local":
        yield Place(kind, str(tmp_path / "root"))
    elif kind == "memory":
        root = f"memory://fs-{uuid.uuid4().hex[:12]}"
        yield Place(kind, root)
        import fsspec
        fsspec.filesystem("memory").rm(root.partition("://")[2], recursive=True)
    elif kind == "s3":
        optional("s3fs")
        request.getfixturevalue("server")
        import fsspec
        name = f"b-fs-{uuid.uuid4().hex[:12]}"
        fs = fsspec.filesystem("s3")
        fs.mkdir(name)
        fs.invalidate_cache()
        yield Place(kind, f"s3://{name}")
    else:
        url, served = request.getfixturevalue("http_root")
        yield Place(kind, url, served)


def _values(reader: Any) -> dict[str, list[Any]]:
    return {name: np.asarray(reader[name]).tolist() for name in reader}


def _fail_second_placement(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Make the second placement of a data file fail, at the level under every publisher:
    ``os.replace`` locally, the store's own copy (a move is a copy and a delete) remotely."""
    calls = [0]

    def second_fails() -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise OSError("injected failure of the second move")

    if kind == "local":
        import os
        real = os.replace

        def replace(*args: Any, **kwargs: Any) -> None:
            second_fails()
            real(*args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
    elif kind == "memory":
        from fsspec.implementations.memory import MemoryFileSystem
        real_copy = MemoryFileSystem.cp_file

        def cp_file(self: Any, *args: Any, **kwargs: Any) -> Any:
            second_fails()
            return real_copy(self, *args, **kwargs)

        monkeypatch.setattr(MemoryFileSystem, "cp_file", cp_file)
    else:
        import s3fs
        real_async = s3fs.S3FileSystem._cp_file

        async def _cp_file(self: Any, *args: Any, **kwargs: Any) -> Any:
            second_fails()
            return await real_async(self, *args, **kwargs)

        monkeypatch.setattr(s3fs.S3FileSystem, "_cp_file", _cp_file)


@pytest.mark.parametrize("place", WRITABLE, indirect=True)
def test_a_merge_over_a_checkpoint_whose_second_move_fails_keeps_the_old_one(
        place: Place, monkeypatch: pytest.MonkeyPatch) -> None:
    destination = place.path("merged", "model")
    tfckpt.save({"old": np.arange(3.0)}, destination)
    a = tfckpt.save({"a": np.ones(2)}, place.path("parts", "a"))
    b = tfckpt.save({"b": np.zeros(2)}, place.path("parts", "b"))
    with monkeypatch.context() as patch:
        _fail_second_placement(patch, place.kind)
        with pytest.raises(OSError, match="injected"):
            tfckpt.merge_checkpoints([a, b], destination)
    with tfckpt.load_checkpoint(destination) as reader:
        assert _values(reader) == {"old": [0.0, 1.0, 2.0]}
    assert {k: v.tolist() for k, v in tfckpt.load(a).items()} == {"a": [1.0, 1.0]}
    assert {k: v.tolist() for k, v in tfckpt.load(b).items()} == {"b": [0.0, 0.0]}
    tfckpt.merge_checkpoints([a, b], destination)  # and without the failure, the merge goes through
    assert {k: v.tolist() for k, v in tfckpt.load(destination).items()} == {"a": [1.0, 1.0], "b": [0.0, 0.0]}


@pytest.mark.parametrize("suffix", ["npz", "safetensors"])
@pytest.mark.parametrize("place", WRITABLE, indirect=True)
def test_convert_writes_to_the_destination_filesystem_and_reads_it_back(
        place: Place, suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    working = tmp_path / "cwd"
    working.mkdir()
    monkeypatch.chdir(working)  # a URL taken for a local name would be written here
    source = tfckpt.save({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.int64(4)},
                         place.path("ck", "model"))
    destination = place.path("c", f"out.{suffix}")
    tfckpt.convert_checkpoint(source, destination)
    assert list(working.iterdir()) == []
    assert storage.filesystem_for(destination).exists(destination)
    with open_reader(destination) as reader:  # an npz or safetensors source on this filesystem
        assert _values(reader) == {"w": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], "step": 4}


@pytest.mark.parametrize("suffix", ["npz", "safetensors"])
@pytest.mark.parametrize("place", WRITABLE, indirect=True)
def test_a_converted_file_is_never_seen_half_written_and_a_failure_keeps_the_older_one(
        place: Place, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tfckpt.formats.npz import NpzSink
    from tfckpt.formats.safetensors import SafetensorsSink
    sink = NpzSink if suffix == "npz" else SafetensorsSink
    source = tfckpt.save({f"t{k}": np.full(50_000, k, np.float32) for k in range(3)}, place.path("ck", "model"))
    destination = place.path("c", f"out.{suffix}")
    fs = storage.filesystem_for(destination)
    tfckpt.convert_checkpoint(source, destination)
    older = fs.read_bytes(destination)
    seen: list[bytes | None] = []
    real_add = sink.add

    def add(self: Any, *args: Any) -> None:
        real_add(self, *args)
        seen.append(fs.read_bytes(destination))  # what a reader finds meanwhile
        if len(seen) == 2:
            raise OSError("injected failure after the second tensor")

    monkeypatch.setattr(sink, "add", add)
    with pytest.raises(OSError, match="injected"):
        tfckpt.convert_checkpoint(source, destination)
    assert seen == [older, older]
    assert fs.read_bytes(destination) == older
    assert fs.listdir(place.path("c")) == [f"out.{suffix}"]  # no temporary left


def test_a_local_conversion_removes_the_temporaries_of_dead_processes(tmp_path: Path) -> None:
    source = tfckpt.save({"w": np.arange(3.0)}, str(tmp_path / "model"))
    dead = tmp_path / "out.npz.tempstate999999999_0123abcd"  # no such pid: a crashed conversion's
    dead.write_bytes(b"partial")
    tfckpt.convert_checkpoint(source, str(tmp_path / "out.npz"))
    assert not dead.exists()
    assert (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("place", EVERY, indirect=True)
def test_checkpoint_reader_opens_a_checkpoint_on_any_filesystem(place: Place) -> None:
    tfckpt.save({"w": np.arange(3.0)}, place.writer_path("m"))
    with tfckpt.CheckpointReader(place.path("m")) as reader:
        assert _values(reader) == {"w": [0.0, 1.0, 2.0]}


@pytest.mark.parametrize("place", EVERY, indirect=True)
def test_checkpoint_mtimes_on_any_filesystem(place: Place) -> None:
    before = time.time()
    tfckpt.save({"w": np.arange(3.0)}, place.writer_path("m"))
    prefixes = [place.path("m"), place.path("gone")]
    if place.kind == "http":  # a plain HTTP server reports no modification time
        with pytest.raises(tfckpt.UnsupportedError, match=r"modification times .* http://"):
            tfckpt.get_checkpoint_mtimes(prefixes)
        return
    times = tfckpt.get_checkpoint_mtimes(prefixes)
    assert len(times) == 1 and before - 5 <= times[0] <= time.time() + 5, times


@pytest.mark.parametrize("place", ["memory", "s3", "http"], indirect=True)
def test_a_remote_state_file_naming_a_local_absolute_path_never_reads_the_local_disk(
        place: Place, tmp_path: Path) -> None:
    local = str(tmp_path / "elsewhere" / "secret")
    tfckpt.save({"local_only": np.arange(2.0)}, local)
    place.put("run/checkpoint", f'model_checkpoint_path: "{local}"\n'.encode())
    with pytest.raises(tfckpt.TfckptError) as raised:
        tfckpt.load(place.path("run"))
    assert "local_only" not in str(raised.value)
    assert place.path("run") in str(raised.value)
    assert tfckpt.latest_checkpoint(place.path("run")) is None


@pytest.mark.parametrize("place", EVERY, indirect=True)
def test_savedmodel_and_meta_files_are_read_on_any_filesystem(place: Place) -> None:
    model = FIXTURES / "savedmodel"
    place.put("sm/saved_model.pb", (model / "saved_model.pb").read_bytes())
    meta = min(SAVEDMODELS.glob("*/*.meta"))
    place.put("graph.meta", meta.read_bytes())
    expected = savedmodel.show_all(savedmodel.read_saved_model(model))
    assert savedmodel.show_all(savedmodel.read_saved_model(place.path("sm"))) == expected
    local_meta = savedmodel.show_meta_graph_file(savedmodel.read_meta_graph_file(meta))
    assert savedmodel.show_meta_graph_file(savedmodel.read_meta_graph_file(place.path("graph.meta"))) == local_meta


@pytest.mark.parametrize("place", ["http"], indirect=True)
def test_writing_to_a_read_only_filesystem_names_the_operation_and_the_filesystem(place: Place) -> None:
    with pytest.raises(tfckpt.UnsupportedError, match=r"http"):
        tfckpt.save({"w": np.arange(2.0)}, place.path("m"))
    source = tfckpt.save({"w": np.arange(2.0)}, place.writer_path("src"))
    with pytest.raises(tfckpt.UnsupportedError, match=r"http"):
        tfckpt.convert_checkpoint(source, place.path("out.npz"))


PROBES = ("exists", "isfile", "isdir", "glob", "read_bytes", "listdir", "mtime", "identity")


def _count_probes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every question asked of remote storage while opening, as (operation, path)."""
    seen: list[tuple[str, str]] = []

    def counted(owner: Any, name: str) -> None:
        real = getattr(owner, name)

        def probe(self: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append((name, args[0] if args else getattr(self, "name", "")))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, probe)

    for name in PROBES:
        counted(storage.FsspecFilesystem, name)
    for name in ("read_whole", "size", "identity"):
        counted(storage.FsspecSource, name)
    return seen


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_opening_a_url_asks_no_question_twice(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Path resolution hands load_checkpoint what it found (kind, filesystem, prefix), so no
    probe of remote storage is repeated (each is a round trip)."""
    root = f"memory://probes-{uuid.uuid4().hex[:12]}"
    if version == "v1":
        source = FIXTURES / "v1_single" / "model.ckpt-5"
        storage.filesystem_for(root).write_bytes(f"{root}/model.ckpt-5", source.read_bytes())
        prefix = f"{root}/model.ckpt-5"
    else:
        prefix = tfckpt.save({"w": np.arange(3.0)}, f"{root}/model")
    seen = _count_probes(monkeypatch)
    with tfckpt.load_checkpoint(prefix) as reader:
        assert len(reader) > 0
    monkeypatch.undo()
    repeated = sorted({probe for probe in seen if seen.count(probe) > 1})
    assert seen and not repeated, f"{len(seen)} probes, repeated: {repeated}"


@pytest.mark.parametrize("place", ["s3"], indirect=True)
def test_racing_exclusive_creates_on_s3_have_exactly_one_winner(place: Place,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs
    fs = storage.filesystem_for(place.root)
    assert fs.conditional_create
    # Every creator passes any existence check before any of them writes: only a create the
    # store decides (If-None-Match: *) leaves one winner.
    creators = 4
    checked = threading.Barrier(creators)
    real_exists = s3fs.S3FileSystem._exists

    async def exists_then_wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = await real_exists(self, *args, **kwargs)
        await asyncio.get_running_loop().run_in_executor(None, checked.wait, 5)
        return found

    monkeypatch.setattr(s3fs.S3FileSystem, "_exists", exists_then_wait)
    lock = place.path("model.merging")
    outcomes: list[str] = []

    def create(k: int) -> None:
        try:
            fs.create_exclusive(lock, f"creator {k}".encode())
            outcomes.append(f"won {k}")
        except FileExistsError:
            outcomes.append("lost")

    threads = [threading.Thread(target=create, args=(k,)) for k in range(creators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(outcomes) == creators and len(winners) == 1, outcomes
    assert fs.read_bytes(lock) == f"creator {winners[0].split()[1]}".encode()


@pytest.mark.parametrize("place", ["s3"], indirect=True)
def test_a_second_merge_lock_on_s3_is_a_merge_conflict(place: Place) -> None:
    from tfckpt import distributed
    from tfckpt.errors import MergeConflictError
    prefix = place.path("model")
    # The lock alone, without a merge: a second one while the first is held is refused.
    fs = storage.filesystem_for(prefix)
    with distributed._merge_lock(prefix, fs), pytest.raises(MergeConflictError, match="another merge"), \
            distributed._merge_lock(prefix, fs):
        pass
    assert not fs.exists(prefix + ".merging")


@pytest.mark.parametrize("place", ["s3"], indirect=True)
def test_an_exclusive_create_on_s3_is_one_conditional_put(place: Place, monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs
    fs = storage.filesystem_for(place.root)
    calls: list[str] = []
    for name in ("_exists", "_info", "_put_object", "_call_s3"):
        real = getattr(s3fs.S3FileSystem, name, None)
        if real is None:
            continue

        def counted(self: Any, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(args[0] if _name == "_call_s3" else _name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(s3fs.S3FileSystem, name, counted)
    lock = place.path("state.lock")
    fs.create_exclusive(lock, b"first")
    assert calls == ["put_object"]  # no existence check: the store decides
    calls.clear()
    with pytest.raises(FileExistsError):
        fs.create_exclusive(lock, b"second")
    assert calls == ["put_object"]
    assert fs.read_bytes(lock) == b"first"


@pytest.mark.parametrize("place", ["memory", "s3"], indirect=True)
def test_merging_sources_of_another_filesystem_names_both(place: Place, tmp_path: Path) -> None:
    # The local source's path was handed to the destination's filesystem (an "unknown URL
    # scheme" error naming the local path as one).
    local = tfckpt.save({"a": np.ones(2)}, str(tmp_path / "a"))
    remote = tfckpt.save({"b": np.zeros(2)}, place.path("parts", "b"))
    destination = place.path("merged", "model")
    for sources, target in (([remote, local], destination), ([local, remote], str(tmp_path / "merged"))):
        with pytest.raises(tfckpt.UnsupportedError, match=r"cannot merge .* within one filesystem, and \S+ is not"):
            tfckpt.merge_checkpoints(sources, target)
    assert {k: v.tolist() for k, v in tfckpt.load(local).items()} == {"a": [1.0, 1.0]}
    assert {k: v.tolist() for k, v in tfckpt.load(remote).items()} == {"b": [0.0, 0.0]}
    assert not storage.filesystem_for(destination).exists(destination + ".index")


@pytest.mark.parametrize("suffix", ["npz", "safetensors"])
@pytest.mark.parametrize("place", EVERY, indirect=True)
def test_load_reads_an_npz_or_safetensors_file_on_any_filesystem(place: Place, suffix: str, tmp_path: Path) -> None:
    # Locally the file's first bytes chose its reader; on a URL it was read as a V1 table
    # ("not a TensorFlow checkpoint index (bad magic number ...)").
    source = tfckpt.save({"w": np.arange(4.0)}, str(tmp_path / "ck"))
    local = str(tmp_path / f"local.{suffix}")
    tfckpt.convert_checkpoint(source, local)
    place.put(f"weights.{suffix}", Path(local).read_bytes())
    url = place.path(f"weights.{suffix}")
    assert {k: v.tolist() for k, v in tfckpt.load(url).items()} == {"w": [0.0, 1.0, 2.0, 3.0]}
    assert tfckpt.list_variables(url) == [("w", [4])]
    place.put("run/checkpoint", b'model_checkpoint_path: "ck"\n')  # a state file given as a checkpoint
    with pytest.raises(tfckpt.CorruptionError, match=r"checkpoint.* state file"):
        tfckpt.load(place.path("run", "checkpoint"))


@pytest.mark.parametrize("place", ["memory", "s3"], indirect=True)
def test_checkpoint_mtimes_of_a_directory_on_an_object_store(place: Place) -> None:
    # A directory (a key prefix) has no object and so no time: it was reported as the whole
    # filesystem lacking modification times (UnsupportedError).
    tfckpt.save({"w": np.arange(3.0)}, place.path("run", "m"))
    assert tfckpt.get_checkpoint_mtimes([place.path("run")]) == []
    assert len(tfckpt.get_checkpoint_mtimes([place.path("run"), place.path("run", "m")])) == 1
