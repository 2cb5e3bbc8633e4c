"""Publishing a checkpoint: failures injected at every step of ``finish()``.

Every file-system operation the writer and the publisher make (opening files, writes into
them, which buffered files make on flush and close too, closes, fsyncs, hard links, renames)
is counted; the test fails the k-th one with ENOSPC, for every k, and then checks the promise:
the old checkpoint (or, when the failure comes after the commit, the new one) reads completely
and verifies clean, and no temporary file remains.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt.bundle import publish as publish_module
from tfckpt.verify import verify_checkpoint


class Injector:
    """Fails the ``fail_at``-th counted operation (and every later one if ``persistent``)."""

    def __init__(self, fail_at: int | None, persistent: bool = False, fail_kind: str | None = None) -> None:
        self.fail_at = fail_at
        self.persistent = persistent
        self.fail_kind = fail_kind  # fail every operation of this kind ("open", "write", "close", "fsync", ...)
        self.count = 0
        self.failed = False

    def check(self, kind: str) -> None:
        """Count one operation; raise ENOSPC if it is one to fail."""
        index = self.count
        self.count += 1
        if kind == self.fail_kind or (
                self.fail_at is not None and (index == self.fail_at or (self.persistent and index > self.fail_at))):
            self.failed = True
            raise OSError(errno.ENOSPC, "No space left on device (injected)")

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def operation(*args: Any, **kwargs: Any) -> Any:
            self.check(real.__name__)
            return real(*args, **kwargs)
        return operation

    def open(self, file: Any, mode: str = "r", buffering: int = -1, **kwargs: Any) -> Any:
        """``open``, counted; a file opened for writing in binary mode is a real buffered
        writer over a counted raw file, so a failure can hit a ``write``, the flush of what is
        buffered (at ``flush()`` and again at ``close()``, as a full disk does) or the close."""
        self.check("open")
        if "b" not in mode or not set(mode) & set("wxa"):
            return builtins.open(file, mode, buffering, **kwargs)
        raw = _CountedRaw(file, mode, self)
        return io.BufferedWriter(raw, buffering if buffering > 1 else io.DEFAULT_BUFFER_SIZE)


class _CountedRaw(io.FileIO):
    """A raw file whose writes and close count as operations of an :class:`Injector`."""

    def __init__(self, file: Any, mode: str, injector: Injector) -> None:
        super().__init__(file, mode)
        self._injector = injector

    def write(self, data: Any) -> int:
        self._injector.check("write")
        return super().write(data)

    def close(self) -> None:
        if self.closed:
            return
        super().close()  # as NFS does: the descriptor is gone, the error is reported after
        self._injector.check("close")


@contextmanager
def injected(monkeypatch: pytest.MonkeyPatch, injector: Injector) -> Iterator[Injector]:
    with monkeypatch.context() as patch:
        for name in ("replace", "link", "fsync"):
            patch.setattr(os, name, injector.wrap(getattr(os, name)))
        # Files: the data files (writer) and the index files (publisher), all opened by storage.
        patch.setattr("tfckpt.storage.open", injector.open, raising=False)
        yield injector


def values(step: int, shards: int) -> dict[str, np.ndarray]:
    return {f"t{i}": np.full(64 + i, float(step), np.float32) for i in range(2 * shards)}


def save(prefix: str, step: int, shards: int) -> None:
    with tfckpt.CheckpointWriter(prefix) as writer:
        for i, (name, value) in enumerate(values(step, shards).items()):
            writer.add(name, value, shard=i % shards)


def step_of(prefix: str) -> int:
    loaded = tfckpt.load(prefix)
    steps = {float(v[0]) for v in loaded.values()} | {float(x) for v in loaded.values() for x in np.unique(v)}
    assert len(steps) == 1, f"mixed checkpoint: {steps}"
    return int(steps.pop())


def leftovers(directory: Path, expected_shards: int) -> list[str]:
    names = sorted(p.name for p in directory.iterdir())
    wanted = {"ck.index", *(f"ck.data-{k:05d}-of-{expected_shards:05d}" for k in range(expected_shards))}
    return [n for n in names if n not in wanted]


CASES = [  # (old shard count or None for a fresh prefix, new shard count)
    (None, 1), (None, 3), (1, 1), (2, 2), (1, 3), (3, 1),
]


@pytest.mark.parametrize("persistent", [False, True], ids=["one-failure", "disk-stays-full"])
@pytest.mark.parametrize(("old_shards", "new_shards"), CASES)
def test_a_failure_at_any_step_leaves_the_old_or_the_new_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old_shards: int | None, new_shards: int,
        persistent: bool) -> None:
    k = 0
    while True:
        directory = tmp_path / f"k{k}"
        directory.mkdir()
        prefix = str(directory / "ck")
        if old_shards is not None:
            save(prefix, 1, old_shards)
        raised = False
        with injected(monkeypatch, Injector(k, persistent)) as injector:
            try:
                save(prefix, 2, new_shards)
            except OSError as exc:
                assert "injected" in str(exc)
                raised = True
        if not injector.failed:
            break  # k is past the last operation: every step has been failed once
        assert not [n for n in os.listdir(directory) if "tempstate" in n], f"k={k}: temporaries left"
        if not raised:  # the failure came after the commit (a directory fsync): the new one stands
            assert step_of(prefix) == 2 and verify_checkpoint(prefix).ok
            assert leftovers(directory, new_shards) == [], f"k={k}"
        elif old_shards is None:
            assert list(directory.iterdir()) == [], f"k={k}: a failed first save left {list(directory.iterdir())}"
        else:
            assert step_of(prefix) == 1, f"k={k}: the failed save replaced the old checkpoint"
            report = verify_checkpoint(prefix)
            assert report.ok, (k, report.problems)
            if not persistent:  # with a full disk, undoing may stop at the re-pointed old checkpoint
                assert leftovers(directory, old_shards) == [], f"k={k}"
        # Whatever happened, the next successful save publishes and tidies everything.
        save(prefix, 3, new_shards)
        assert step_of(prefix) == 3
        assert leftovers(directory, new_shards) == [], f"k={k}"
        k += 1
    assert k >= 5  # files opened, fsyncs, links and renames were all reached


def test_without_hard_links_an_overwrite_still_publishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = str(tmp_path / "ck")
    save(prefix, 1, 2)

    def no_links(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    save(prefix, 2, 2)
    assert step_of(prefix) == 2
    # The new checkpoint took names the old index does not use: one more, empty, shard.
    assert leftovers(tmp_path, 3) == []
    assert os.path.getsize(prefix + ".data-00002-of-00003") == 0 and verify_checkpoint(prefix).ok
    save(prefix, 3, 2)  # and the next save, names the current one does not use: the usual ones
    assert step_of(prefix) == 3
    assert leftovers(tmp_path, 2) == []


@pytest.mark.parametrize(("old_shards", "new_shards"), [(1, 1), (2, 2), (3, 1), (1, 3)])
def test_data_files_are_never_renamed_over_an_existing_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old_shards: int, new_shards: int) -> None:
    """ext4 (auto_da_alloc) writes a file renamed over another one out to the disk before the
    rename commits, so an overwrite would wait for the disk: the name a data file moves to is
    free when it moves (the file there, which no index in place uses, deleted first)."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1, old_shards)
    real = os.replace
    over: list[str] = []

    def replace(source: Any, destination: Any) -> None:
        if ".data-" in str(destination) and os.path.exists(destination):
            over.append(os.path.basename(destination))
        real(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    save(prefix, 2, new_shards)
    assert over == [] and step_of(prefix) == 2 and verify_checkpoint(prefix).ok


@pytest.mark.parametrize("shards", [1, 2])
def test_a_failure_to_free_a_data_files_name_keeps_the_old_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shards: int) -> None:
    """The deletion before a data file's move fails (after the old checkpoint was re-pointed,
    and for the second shard after the first one moved in): the save raises, the old checkpoint
    is back under its own names and verifies, nothing is left over, the next save works."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1, shards)
    real = os.remove
    target = f"ck.data-{shards - 1:05d}-of-{shards:05d}"

    def remove(path: Any) -> None:
        if os.path.basename(path) == target and os.path.exists(path):
            raise OSError(errno.EIO, "Input/output error (injected)")
        real(path)

    monkeypatch.setattr(os, "remove", remove)
    with pytest.raises(OSError, match="injected"):
        save(prefix, 2, shards)
    monkeypatch.setattr(os, "remove", real)
    assert step_of(prefix) == 1 and verify_checkpoint(prefix).ok
    assert leftovers(tmp_path, shards) == []
    save(prefix, 3, shards)
    assert step_of(prefix) == 3 and leftovers(tmp_path, shards) == []


def test_the_repointed_old_checkpoint_is_a_standard_bundle_tensorflow_layout(tmp_path: Path) -> None:
    """Step 1 leaves the old checkpoint under N+1 shard names with an empty last shard: still
    an ordinary bundle (our reader and verify accept it; the interop test has TF read it)."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1, 2)
    state = publish_module.repoint_existing(prefix, 2, sync=False)
    assert state is not None
    names = sorted(n for n in os.listdir(tmp_path) if "tempstate" not in n)
    assert names == ["ck.data-00000-of-00002", "ck.data-00000-of-00003", "ck.data-00001-of-00002",
                     "ck.data-00001-of-00003", "ck.data-00002-of-00003", "ck.index"]
    assert os.path.getsize(prefix + ".data-00002-of-00003") == 0
    assert step_of(prefix) == 1 and verify_checkpoint(prefix).ok
    assert tfckpt.load_checkpoint(prefix).header.num_shards == 3


def test_writer_creates_nothing_before_the_first_tensor(tmp_path: Path) -> None:
    prefix = tmp_path / "sub" / "ck"
    writer = tfckpt.CheckpointWriter(prefix)
    with pytest.raises(tfckpt.InvalidArgumentError):
        writer.add("", np.zeros(1))
    assert not (tmp_path / "sub").exists()
    writer.add("a", np.zeros(1))
    with pytest.raises(tfckpt.InvalidArgumentError, match="duplicate"):
        writer.add("a", np.zeros(1))
    writer.abort()
    assert list(tmp_path.iterdir()) == []  # the directory it created is gone too


def test_writer_close_publishes_and_a_dropped_writer_cleans_up(tmp_path: Path) -> None:
    writer = tfckpt.CheckpointWriter(tmp_path / "ck")
    writer.add("a", np.arange(3))
    writer.close()
    writer.close()  # idempotent
    assert tfckpt.load(tmp_path / "ck")["a"].tolist() == [0, 1, 2]
    dropped = tfckpt.CheckpointWriter(tmp_path / "other")
    dropped.add("a", np.arange(3))
    with pytest.warns(ResourceWarning, match="neither finished nor aborted"):
        dropped.__del__()  # what the garbage collector calls
    assert not [p for p in os.listdir(tmp_path) if p.startswith("other")]


@pytest.mark.parametrize("prefix", ["trail/", "", ".", "a/.."])
def test_prefixes_without_a_file_name_are_refused(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(tfckpt.InvalidArgumentError, match="needs a file name"):
        tfckpt.save({"a": [1]}, os.path.join(str(tmp_path), prefix) if prefix else prefix)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_stale_temporaries_of_dead_processes_are_removed_by_the_next_save(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    dead = tmp_path / "ck.data-00000-of-00001.tempstate999999999_0123abcd"
    dead.write_bytes(b"x")
    alive = tmp_path / f"ck.index.tempstate{os.getppid()}_0123abcd"  # a running process: kept
    alive.write_bytes(b"x")
    foreign = tmp_path / "ck.index.tempstate12345678901234"  # not ours (TensorFlow's form): kept
    foreign.write_bytes(b"x")
    tfckpt.save({"a": [1]}, prefix)
    assert not dead.exists() and alive.exists() and foreign.exists()



@pytest.mark.parametrize("kind", ["write", "flush", "fsync", "close"])
def test_retrying_a_save_on_a_full_disk_leaves_only_the_old_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """A training loop retrying its save while the disk stays full: every attempt fails (at a
    write of a tensor, at the flush of the buffered data, at the fsync or at the close of the
    data file), and after each the directory holds exactly the old checkpoint, so retries
    do not fill the disk further."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1, 1)
    before = sorted(os.listdir(tmp_path))
    monkeypatch.setattr("tfckpt.bundle.writer.WRITE_BUFFER_BYTES", 1024)
    # A tensor larger than the buffer is written through at add(); a small one waits for the flush.
    value = np.full(1024 if kind == "write" else 4, 2.0, np.float32)
    for attempt in range(3):
        injector = Injector(None, fail_kind="write" if kind == "flush" else kind)
        with (injected(monkeypatch, injector), pytest.raises(OSError, match="injected"),
              tfckpt.CheckpointWriter(prefix) as writer):
            writer.add("t0", value)
            assert not injector.failed or kind == "write"
        assert injector.failed
        assert sorted(os.listdir(tmp_path)) == before, f"attempt {attempt}"
        assert step_of(prefix) == 1 and verify_checkpoint(prefix).ok
