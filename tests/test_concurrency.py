"""Concurrency as a tested model: the states a prefix passes through while it is overwritten,
with and without hard links, with readers opened before and during the overwrite, and two
writers at once (real processes, SIGKILLed at random moments).

Every tensor of a save holds one value (the save's step), so a reader that paired one save's
index with another's data cannot pass unnoticed, even with checksums off.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import random
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt.verify import verify_checkpoint


def tensors(step: int) -> dict[str, np.ndarray]:
    # The same sizes for every step: a mixed read is not caught by a size check.
    return {"a": np.full(500, float(step)), "b": np.full(700, float(step))}


def save(prefix: str, step: int, shards: int = 1) -> None:
    with tfckpt.CheckpointWriter(prefix, sync=False) as writer:
        for i, (name, value) in enumerate(tensors(step).items()):
            writer.add(name, value, shard=i % shards)


def no_links(*args: Any, **kwargs: Any) -> None:
    raise PermissionError(errno.EPERM, "Operation not permitted (no hard links here)")


def during_each_rename(monkeypatch: pytest.MonkeyPatch, observe: Callable[[str], None]) -> None:
    """Call ``observe(destination)`` right after every rename the publisher makes."""
    real = os.replace

    def replace(source: Any, destination: Any) -> None:
        real(source, destination)
        observe(os.fspath(destination))

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("verify", [True, False], ids=["checksums", "no-checksums"])
@pytest.mark.parametrize("shards", [1, 2])
def test_without_hard_links_a_reader_never_pairs_the_old_index_with_new_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verify: bool, shards: int) -> None:
    """A filesystem without hard links (exFAT, some FUSE/SMB mounts): a reader that parsed the
    old index and opens a data file at any moment of the overwrite reads the old values or
    hears that the checkpoint was replaced; never new data under the old index."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1, shards)
    monkeypatch.setattr(os, "link", no_links)
    outcomes: list[object] = []

    def observe(destination: str) -> None:
        for name in ("a", "b"):
            reader = tfckpt.load_checkpoint(prefix, verify_checksums=verify)  # opened before this step...
            try:
                values = set(reader[name].tolist())  # ...its data file opened after it
                outcomes.append(values)
            except tfckpt.CheckpointReplacedError:
                outcomes.append("replaced")
            except tfckpt.TfckptError as exc:
                outcomes.append(exc)
            finally:
                reader.close()
        # Whatever the step, a fresh load finds one whole checkpoint.
        loaded = tfckpt.load(prefix)
        outcomes.append({float(x) for v in loaded.values() for x in np.unique(v)})

    during_each_rename(monkeypatch, observe)
    save(prefix, 2, shards)
    monkeypatch.undo()
    assert outcomes and all(o in ({1.0}, {2.0}, "replaced") for o in outcomes), outcomes
    assert {float(x) for v in tfckpt.load(prefix).values() for x in np.unique(v)} == {2.0}
    assert verify_checkpoint(prefix).ok


def test_readers_opened_before_an_overwrite_without_hard_links_read_old_values_or_hear_of_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers that parsed the old index before the save began, each reading (its data file
    opened then) after another step of it."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1)
    monkeypatch.setattr(os, "link", no_links)
    waiting = [tfckpt.load_checkpoint(prefix, verify_checksums=False) for _ in range(6)]
    outcomes: list[object] = []

    def read(reader: tfckpt.CheckpointReader) -> None:
        try:
            outcomes.append(set(reader["a"].tolist()) | set(reader["b"].tolist()))
        except tfckpt.CheckpointReplacedError:
            outcomes.append("replaced")
        reader.close()

    during_each_rename(monkeypatch, lambda destination: read(waiting.pop()) if waiting else None)
    save(prefix, 2)
    monkeypatch.undo()
    while waiting:
        read(waiting.pop())
    assert len(outcomes) == 6 and all(o in ({1.0}, "replaced") for o in outcomes), outcomes


def test_without_hard_links_every_state_of_an_overwrite_is_a_whole_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No window at all: not even a crash between two renames loses the old checkpoint."""
    prefix = str(tmp_path / "ck")
    for step in (1, 2, 3):  # the shard count alternates between saves: both directions
        monkeypatch.setattr(os, "link", no_links)
        seen: list[float] = []

        def observe(destination: str, seen: list[float] = seen) -> None:
            report = verify_checkpoint(prefix)
            assert report.ok, report.problems
            seen.extend({float(x) for v in tfckpt.load(prefix, verify_checksums=False).values() for x in np.unique(v)})

        if step > 1:
            during_each_rename(monkeypatch, observe)
        save(prefix, step)
        monkeypatch.undo()
        assert set(seen) <= {step - 1.0, float(step)} and (step == 1 or step - 1.0 in seen), seen
        assert {float(x) for v in tfckpt.load(prefix).values() for x in np.unique(v)} == {float(step)}
        data = [p for p in os.listdir(tmp_path) if ".data-" in p]
        assert len(data) in (1, 2) and not [p for p in os.listdir(tmp_path) if "tempstate" in p], data


def test_a_checksum_error_caused_by_a_replacement_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that does not follow tfckpt's protocol (TensorFlow's own save renames the data
    file, then the index) can pair old index and new data for an instant: the CRC catches it,
    and since the index has changed meanwhile, load() re-opens instead of failing."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1)
    other = str(tmp_path / "other" / "ck")
    save(other, 2)
    os.replace(other + ".data-00000-of-00001", prefix + ".data-00000-of-00001")  # step 1 of such a save
    from tfckpt import storage

    def reading(real: Callable[..., Any]) -> Callable[..., Any]:
        def read(self: storage.FileSource, *args: Any) -> Any:
            if ".data-" in self.name and os.path.exists(other + ".index"):
                os.replace(other + ".index", prefix + ".index")  # its step 2, as our data is read
            return real(self, *args)
        return read

    for method in ("read_at", "readinto_at", "mapping"):
        monkeypatch.setattr(storage.FileSource, method, reading(getattr(storage.FileSource, method)))
    loaded = tfckpt.load(prefix)
    assert {float(x) for v in loaded.values() for x in np.unique(v)} == {2.0}


def test_a_checksum_error_of_an_unreplaced_checkpoint_is_still_raised(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    save(prefix, 1)
    data = Path(prefix + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[10] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(tfckpt.ChecksumError):
        tfckpt.load(prefix)


def keep_saving(prefix: str, me: int, ready: Any, failures: str) -> None:
    """A writer process: re-save ``prefix`` in a loop; a failure that is not a tfckpt error
    is written to ``failures`` and ends the process with status 3."""
    ready.set()
    step = 0
    while True:
        step += 1
        value = me * 100000 + step
        try:
            # Shard counts 1 and 2 in turn: overwrites that re-point and ones that do not.
            with tfckpt.CheckpointWriter(prefix, sync=False) as writer:
                for i in range(4):
                    writer.add(f"t{i}", np.full(16384, float(value)), shard=i % (1 + step % 2))
        except tfckpt.TfckptError as exc:  # e.g. ConcurrentSaveError where no lock is possible
            with open(failures, "a") as out:
                out.write(f"tfckpt error: {type(exc).__name__}: {exc}\n")
        except BaseException:  # noqa: BLE001 - reported to the test, which fails on it
            with open(failures, "a") as out:
                out.write(traceback.format_exc())
            os._exit(3)


def one_value(prefix: str) -> float:
    values = {float(x) for v in tfckpt.load(prefix).values() for x in np.unique(v)}
    assert len(values) == 1, f"{prefix} mixes saves {sorted(values)}"
    return values.pop()


def test_two_processes_saving_one_prefix_at_once_take_turns(tmp_path: Path) -> None:
    """Two ranks of a misconfigured job re-save one prefix in loops while this process reads
    it; both are SIGKILLed at random moments, several rounds. Readers always find one whole
    checkpoint (either writer's), writers never fail with anything but a tfckpt error, and
    after every kill the prefix loads and verifies clean."""
    # From a fork server, neither forked from this process (other tests' threads, JAX's among
    # them, may hold locks at the fork: a deadlock) nor spawned (a fresh interpreter importing
    # numpy per writer takes seconds on a busy machine): one clean process imports once, forks.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["numpy", "tfckpt"])
    failures = str(tmp_path / "failures.txt")
    prefix = str(tmp_path / "run" / "same")
    save(prefix, 0)
    rng = random.Random(2024)
    reads, replaced, errors = 0, 0, []
    for round_number in range(4):
        ready = [context.Event() for _ in range(2)]
        writers = [context.Process(target=keep_saving, args=(prefix, 2 * round_number + k + 1, ready[k], failures))
                   for k in range(2)]
        for writer in writers:
            writer.start()
        for event in ready:
            assert event.wait(30)
        deadline = time.monotonic() + rng.uniform(0.2, 0.6)
        while time.monotonic() < deadline:
            try:
                one_value(prefix)
                reads += 1
            except tfckpt.CheckpointReplacedError:
                replaced += 1  # re-saved more often than load() re-opens: said so, never mixed
            except tfckpt.TfckptError as exc:
                errors.append(exc)
        for writer in writers:
            time.sleep(rng.uniform(0.0, 0.05))
            assert writer.pid is not None
            os.kill(writer.pid, signal.SIGKILL)
        for writer in writers:
            writer.join()
            # Never died of its own exception, never reported a tfckpt error either.
            assert writer.exitcode == -signal.SIGKILL, Path(failures).read_text()
        assert not os.path.exists(failures), Path(failures).read_text()
        one_value(prefix)
        report = verify_checkpoint(prefix)
        assert report.ok, report.problems
    assert errors == [] and reads > 5, (reads, replaced, errors)
    save(prefix, 99)  # the next save tidies what the killed ones left
    assert sorted(os.listdir(tmp_path / "run")) == ["same.data-00000-of-00001", "same.index"]


@pytest.mark.parametrize("links", [True, False], ids=["links", "no-links"])
def test_where_no_lock_can_be_taken_a_save_overtaken_by_another_raises_concurrent_save_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool) -> None:
    """No flock (a platform without fcntl, a network mount refusing it): a save that finds,
    before its commit, that another save replaced the index raises ConcurrentSaveError and
    leaves the other save's checkpoint whole."""
    import contextlib

    from tfckpt import storage
    prefix = str(tmp_path / "ck")
    save(prefix, 1)

    @contextlib.contextmanager
    def no_lock(path: str) -> Any:
        yield False

    monkeypatch.setattr(storage, "directory_lock", no_lock)
    if not links:
        monkeypatch.setattr(os, "link", no_links)
    overtaken: list[str] = []

    def observe(destination: str) -> None:
        if not overtaken and ".data-" in destination:
            overtaken.append(destination)
            save(prefix, 5)  # the other writer publishes meanwhile, from start to commit

    during_each_rename(monkeypatch, observe)
    with pytest.raises(tfckpt.ConcurrentSaveError, match="another save replaced"):
        save(prefix, 2)
    monkeypatch.undo()
    assert one_value(prefix) == 5.0 and verify_checkpoint(prefix).ok
    save(prefix, 6)
    assert one_value(prefix) == 6.0
    assert sorted(os.listdir(tmp_path)) == ["ck.data-00000-of-00001", "ck.index"]
