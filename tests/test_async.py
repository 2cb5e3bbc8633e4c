"""Asynchronous saves: snapshot semantics, one save in flight, errors, exit, and the options."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt import asyncsave
from tfckpt.asyncsave import Background, is_immutable


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Background writes wait until the test opens the gate (so the caller's mutations
    certainly come before the write)."""
    opened = threading.Event()
    original = asyncsave.BundleWriter.add_many

    def gated(self: Any, prepared: Any) -> None:
        assert opened.wait(10)
        original(self, prepared)

    monkeypatch.setattr(asyncsave.BundleWriter, "add_many", gated)
    yield opened
    opened.set()


def test_later_mutation_of_numpy_arrays_does_not_change_what_is_written(tmp_path: Path,
                                                                         gate: threading.Event) -> None:
    weights = np.arange(1 << 16, dtype=np.float32)
    strided = np.arange(20, dtype=np.int64)[::2]
    text = np.empty(1, dtype=object)
    text[0] = bytearray(b"old")
    pending = tfckpt.save({"w": weights, "s": strided, "t": text}, tmp_path / "m", asynchronous=True)
    assert not pending.done()
    weights[:] = -1
    strided[:] = -1
    text[0][:] = b"new"
    gate.set()
    loaded = tfckpt.load(pending.wait())
    np.testing.assert_array_equal(loaded["w"], np.arange(1 << 16, dtype=np.float32))
    np.testing.assert_array_equal(loaded["s"], np.arange(0, 20, 2))
    assert loaded["t"][0] == b"old"


@pytest.mark.frameworks  # torch / JAX: only where .ci/run installs them
def test_later_mutation_of_torch_tensors_does_not_change_what_is_written(tmp_path: Path,
                                                                          gate: threading.Event) -> None:
    import torch
    tensor = torch.zeros(1000)
    saver = tfckpt.Saver({"t": tensor.numpy()})  # shares the tensor's memory
    prefix = saver.save(tmp_path / "model", asynchronous=True)
    tensor.add_(5)
    gate.set()
    assert saver.wait() == prefix
    assert float(tfckpt.load(prefix)["t"].max()) == 0.0


def test_variables_and_checkpoint_state_are_snapshotted(tmp_path: Path, gate: threading.Event) -> None:
    variable = tfckpt.Variable(np.zeros(3))
    ckpt = tfckpt.Checkpoint(v=variable)
    manager = tfckpt.CheckpointManager(ckpt, tmp_path, max_to_keep=2)
    path = manager.save(asynchronous=True)
    variable.assign([7.0, 7.0, 7.0])
    gate.set()
    assert manager.wait() == path and manager.latest_checkpoint == path
    assert tfckpt.latest_checkpoint(tmp_path) == path
    np.testing.assert_array_equal(tfckpt.load(path)["v/.ATTRIBUTES/VARIABLE_VALUE"], np.zeros(3))


@pytest.mark.frameworks  # torch / JAX: only where .ci/run installs them
def test_immutable_sources_are_recognised_and_not_copied(tmp_path: Path) -> None:
    import jax.numpy as jnp
    prefix = tfckpt.save({"w": np.ones(1 << 12, np.float32)}, tmp_path / "m")
    mapped = tfckpt.load_checkpoint(prefix, mmap=True)["w"]
    writable = np.ones(8)
    read_only_view = writable.view()
    read_only_view.flags.writeable = False
    owned_read_only = np.ones(8)
    owned_read_only.flags.writeable = False
    with open(tmp_path / "raw", "wb") as f:
        f.write(b"\0" * 64)
    with open(tmp_path / "raw", "r+b") as f:
        writable_map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_WRITE)
    immutable = [mapped, np.frombuffer(b"abcdefgh", np.uint8), np.asarray(jnp.ones(4))]
    mutable = [writable, read_only_view, owned_read_only, np.frombuffer(memoryview(bytearray(8)).toreadonly(), np.uint8),
               np.frombuffer(writable_map, np.uint8)]
    assert [is_immutable(a) for a in immutable] == [True] * 3
    assert [is_immutable(a) for a in mutable] == [False] * 5
    background = Background()
    for i, array in enumerate(immutable):
        assert background.snapshot(f"i{i}", array) is array
    copy = background.snapshot("m", writable)
    assert copy is not writable and np.shares_memory(copy, writable) is False
    assert background.snapshot("m", writable) is copy  # the owner's buffer is reused by its next save


def test_one_save_in_flight_per_prefix_the_next_waits(tmp_path: Path, gate: threading.Event) -> None:
    first = tfckpt.save({"a": np.zeros(4)}, tmp_path / "p", asynchronous=True)
    finished: list[str] = []
    second = threading.Thread(target=lambda: finished.append(
        tfckpt.save({"a": np.ones(4)}, tmp_path / "p", asynchronous=True).wait()))
    second.start()
    time.sleep(0.2)
    assert not first.done() and second.is_alive() and not finished  # waiting for the first
    other = tfckpt.save({"b": np.ones(2)}, tmp_path / "q", asynchronous=True)  # another prefix: not held up
    gate.set()
    second.join(10)
    assert first.wait() == finished[0] == str(tmp_path / "p") and other.wait() == str(tmp_path / "q")
    np.testing.assert_array_equal(tfckpt.load(tmp_path / "p")["a"], np.ones(4))


def test_errors_surface_on_wait_and_on_the_next_save(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")  # a file where a directory is needed: the write fails
    pending = tfckpt.save({"a": np.zeros(2)}, blocker / "m", asynchronous=True)
    with pytest.raises(OSError):
        pending.wait()
    with pytest.raises(OSError):
        pending.result()  # every time, as a Future's result()
    saver = tfckpt.Saver({"a": np.zeros(2)})
    assert saver.save(blocker / "m", asynchronous=True) == str(blocker / "m")
    with pytest.raises(OSError):
        saver.save(tmp_path / "ok", asynchronous=True)  # the previous failure, on the next call
    assert saver.save(tmp_path / "ok", asynchronous=True) == str(tmp_path / "ok")  # then afresh
    assert saver.wait() == str(tmp_path / "ok")
    assert saver.last_checkpoints == [str(tmp_path / "ok")]


def test_bad_values_are_refused_before_returning(tmp_path: Path) -> None:
    with pytest.raises(tfckpt.InvalidArgumentError, match="found dict"):
        tfckpt.save({"a": np.array([{}], dtype=object)}, tmp_path / "m", asynchronous=True)
    with pytest.raises(tfckpt.InvalidArgumentError, match="mapping"):
        tfckpt.save([("a", 1)], tmp_path / "m", asynchronous=True)  # type: ignore[call-overload]
    assert list(tmp_path.iterdir()) == []


def test_options_tf_spelling_and_own(tmp_path: Path) -> None:
    class TFOptions:  # what tf.train.CheckpointOptions looks like
        experimental_enable_async_checkpoint = False
        enable_async = True

    ckpt = tfckpt.Checkpoint(w=np.ones(3))
    first = ckpt.save(tmp_path / "ck", options=TFOptions())
    second = ckpt.save(tmp_path / "ck", options=tfckpt.CheckpointOptions(experimental_enable_async_checkpoint=True))
    assert ckpt.wait() == second and first.endswith("ck-1") and second.endswith("ck-2")
    written = ckpt.write(tmp_path / "plain", options=tfckpt.CheckpointOptions())  # synchronous
    assert ckpt.wait() is None and tfckpt.load(written)["w/.ATTRIBUTES/VARIABLE_VALUE"].tolist() == [1, 1, 1]
    assert tfckpt.latest_checkpoint(tmp_path) == second
    with pytest.raises(tfckpt.InvalidArgumentError, match="CheckpointOptions"):
        ckpt.save(tmp_path / "ck", options="async")  # type: ignore[arg-type]
    with pytest.raises(tfckpt.InvalidArgumentError, match="True or False"):
        tfckpt.save({"a": 1}, tmp_path / "x", asynchronous="yes")  # type: ignore[call-overload]


def test_manager_async_keeps_retention_and_restores(tmp_path: Path) -> None:
    variable = tfckpt.Variable(np.zeros(4))
    manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(v=variable), tmp_path, max_to_keep=2)
    for step in range(1, 6):
        variable.assign(np.full(4, float(step)))
        manager.save(asynchronous=True)
    assert [os.path.basename(p) for p in manager.checkpoints] == ["ckpt-4", "ckpt-5"]
    assert sorted(p.name for p in tmp_path.glob("*.index")) == ["ckpt-4.index", "ckpt-5.index"]
    variable.assign(np.zeros(4))
    manager.restore_or_initialize()
    np.testing.assert_array_equal(variable.numpy(), np.full(4, 5.0))


def test_process_exit_waits_for_the_write_and_reports_unobserved_failures(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys, numpy as np, tfckpt
        tfckpt.save({"big": np.full(16 << 20, 3.0, np.float32)}, sys.argv[1], asynchronous=True)
        tfckpt.save({"a": np.zeros(2)}, sys.argv[2], asynchronous=True)  # fails: nobody waits
    """)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m"), str(blocker / "m")],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert float(tfckpt.load(tmp_path / "m")["big"][-1]) == 3.0
    assert f"asynchronous save of {blocker / 'm'} failed" in done.stderr


def test_close_waits_for_the_save_in_flight_and_refuses_new_ones(tmp_path: Path, gate: threading.Event) -> None:
    ckpt = tfckpt.Checkpoint(w=np.arange(4.0))
    manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(w=np.ones(2)), tmp_path / "m", max_to_keep=2)
    saver = tfckpt.Saver({"a": np.zeros(2)})
    ckpt.save(tmp_path / "c", asynchronous=True)
    manager.save(asynchronous=True)
    saver.save(tmp_path / "s", asynchronous=True)
    closed: list[Any] = []
    closer = threading.Thread(target=lambda: closed.extend([ckpt.close(), manager.close(), saver.close()]))
    closer.start()
    time.sleep(0.2)
    assert closer.is_alive() and not closed  # close() waits for the writes
    gate.set()
    closer.join(10)
    assert closed == [str(tmp_path / "c-1"), str(tmp_path / "m" / "ckpt-1"), str(tmp_path / "s")]
    assert tfckpt.latest_checkpoint(tmp_path / "m") == str(tmp_path / "m" / "ckpt-1")  # its bookkeeping done too
    np.testing.assert_array_equal(tfckpt.load(tmp_path / "s")["a"], np.zeros(2))
    counter = int(ckpt.save_counter.numpy())
    for refused in (lambda: ckpt.save(tmp_path / "c", asynchronous=True),
                    lambda: ckpt.write(tmp_path / "w", asynchronous=True),
                    lambda: manager.save(asynchronous=True),
                    lambda: saver.save(tmp_path / "s2", asynchronous=True)):
        with pytest.raises(tfckpt.InvalidArgumentError, match="closed"):
            refused()
    assert int(ckpt.save_counter.numpy()) == counter  # refused before the counter moved
    assert not (tmp_path / "w.index").exists() and not (tmp_path / "s2.index").exists()
    assert ckpt.save(tmp_path / "c") == str(tmp_path / "c-2")  # synchronous saves still work
    assert ckpt.close() is None  # closing again: nothing in flight


def test_close_raises_the_failure_of_the_save_in_flight(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")  # a file where a directory is needed: the write fails
    saver = tfckpt.Saver({"a": np.zeros(2)})
    saver.save(blocker / "m", asynchronous=True)
    with pytest.raises(OSError):
        saver.close()
    assert saver.close() is None  # reported once
