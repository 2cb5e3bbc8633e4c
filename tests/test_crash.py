"""Crash safety and concurrency, for real: SIGKILL a saving process at many points, and read
while another process saves and prunes.

Every tensor of checkpoint N holds the value N, so a torn or mixed checkpoint cannot pass
unnoticed: reads must give one consistent N, or a clear tfckpt error, never wrong data.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.errors import TfckptError
from tfckpt.verify import verify_checkpoint

WRITER = textwrap.dedent("""
    import sys, numpy as np, tfckpt
    directory, mode, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    values = {"big": np.zeros(4 << 20, np.float32), "small": np.zeros(3, np.int64), "text": np.array([b""], dtype=object)}
    saver = tfckpt.Saver(values, max_to_keep=3)
    checkpoint = tfckpt.Checkpoint(**values)
    manager = tfckpt.CheckpointManager(checkpoint, directory, max_to_keep=2)
    step = start
    print("ready", flush=True)
    asynchronous = mode.startswith("async-")  # the caller mutates its arrays while the write runs
    mode = mode.removeprefix("async-")
    while True:
        step += 1
        values["big"][:] = step
        values["small"][:] = step
        values["text"][0] = str(step).encode()
        if mode == "saver":
            saver.save(directory + "/model", global_step=step, asynchronous=asynchronous)
        elif mode == "manager":
            manager.save(checkpoint_number=step, asynchronous=asynchronous)
        else:  # the same prefix overwritten again and again
            tfckpt.save(values, directory + "/same", asynchronous=asynchronous)
""")


def consistent_step(path: str) -> int:
    """Read everything (CRC-verified); return the one step all tensors agree on."""
    loaded = tfckpt.load(path)
    steps = set()
    for name, value in loaded.items():
        if name == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        key = name.split("/")[0]
        if key == "save_counter":
            continue
        if value.dtype == object:
            steps.add(int(value.flat[0].decode() or "0"))
        else:
            steps.update(np.unique(value).astype(int).tolist())
    assert len(steps) == 1, f"{path} mixes steps {sorted(steps)}"
    return steps.pop()


def start_writer(tmp_path: Path, directory: Path, mode: str, start: int) -> subprocess.Popen[str]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    process = subprocess.Popen([sys.executable, str(script), str(directory), mode, str(start)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.parametrize("mode", ["saver", "manager", "async-saver", "async-manager"])
def test_sigkill_during_saves_never_damages_the_latest_checkpoint(tmp_path: Path, mode: str) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    rng = random.Random(1234)
    last_step, kills, checked = 0, 0, 0
    for _ in range(12):
        process = start_writer(tmp_path, directory, mode, last_step)
        time.sleep(rng.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        latest = tfckpt.latest_checkpoint(directory)
        if latest is None:
            continue
        step = consistent_step(latest)
        assert step >= last_step, "the latest checkpoint went backwards"
        assert verify_checkpoint(latest).ok
        state = tfckpt.get_checkpoint_state(directory)
        assert state is not None
        for listed in state.all_model_checkpoint_paths:
            if tfckpt.checkpoint_exists(listed):
                consistent_step(listed)
                checked += 1
        last_step = step
        # Leftover temporaries are never what a reader finds.
        assert not any(".tempstate" in p or ".tmp" in p for p in [latest, *state.all_model_checkpoint_paths])
    assert kills == 12 and last_step > 0 and checked > 0
    # The next successful save (data, index and state file) removes the killed saves' leftovers.
    tfckpt.Saver({"x": np.zeros(2)}, max_to_keep=None).save(str(directory / "model"), global_step=10**9)
    assert not [p.name for p in directory.iterdir() if "tempstate" in p.name or ".tmp" in p.name]


@pytest.mark.parametrize(("mode", "rounds"), [("overwrite", 40), ("async-overwrite", 20)])
def test_sigkill_while_overwriting_one_prefix_always_leaves_a_whole_checkpoint(tmp_path: Path, mode: str,
                                                                                rounds: int) -> None:
    """Kills at random moments of re-saving one prefix (asynchronously too: the kill then lands
    in the background write): every time, the old or the new checkpoint loads completely and
    verifies clean; the step never goes backwards."""
    directory = tmp_path / "run"
    directory.mkdir()
    prefix = str(directory / "same")
    tfckpt.save({"big": np.zeros(4 << 20, np.float32), "small": np.zeros(3, np.int64),
                 "text": np.array([b"0"], dtype=object)}, prefix)
    rng = random.Random(99)
    last = 0
    for round_number in range(rounds):
        process = start_writer(tmp_path, directory, mode, (round_number + 1) * 1000)
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        step = consistent_step(prefix)  # never NotFoundError: the prefix always has a whole checkpoint
        assert step >= last
        report = verify_checkpoint(prefix)
        assert report.ok, report.problems
        last = step
    # The next successful save removes every leftover of the killed ones.
    tfckpt.save({"x": np.ones(2)}, prefix)
    assert sorted(p.name for p in directory.iterdir()) == ["same.data-00000-of-00001", "same.index"]


@pytest.mark.parametrize("mode", ["manager", "overwrite"])
def test_readers_see_consistent_checkpoints_while_another_process_saves(tmp_path: Path, mode: str) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    process = start_writer(tmp_path, directory, mode, 0)
    consistent, clear_errors, pruned = 0, 0, 0
    deadline, latest = time.monotonic() + 4.0, time.monotonic() + 30.0  # longer only on a slow machine
    try:
        while time.monotonic() < deadline or (consistent <= 10 and time.monotonic() < latest):
            path = str(directory / "same") if mode == "overwrite" else tfckpt.latest_checkpoint(directory)
            if path is None:
                continue
            try:
                consistent_step(path)
                consistent += 1
            except tfckpt.NotFoundError:
                if mode == "manager":
                    pruned += 1  # retention deleted the checkpoint between naming and reading it
                elif consistent:
                    clear_errors += 1  # (before the writer's first save, there is nothing yet)
            except TfckptError:
                clear_errors += 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    # Never a checksum or corruption error (an old index paired with new data), never mixed
    # values (consistent_step checks every one); in place, load() re-opens when a save
    # replaces the checkpoint under it, so it does not fail at all.
    assert clear_errors == 0, (consistent, clear_errors, pruned)
    assert consistent > 10 and consistent > pruned, (consistent, pruned)


def test_an_open_reader_never_mixes_two_saves(tmp_path: Path) -> None:
    """A reader opened before an overwrite either keeps reading the old checkpoint (data file
    already open) or says the checkpoint was replaced; it never pairs old index and new data,
    even with checksums off."""
    prefix = str(tmp_path / "ck")
    tfckpt.save({"a": np.full(1000, 1.0), "b": np.full(1000, 1.0)}, prefix, sync=False)
    fresh = tfckpt.load_checkpoint(prefix, verify_checksums=False)
    tfckpt.save({"a": np.full(1000, 2.0), "b": np.full(1000, 2.0)}, prefix, sync=False)
    with pytest.raises(tfckpt.CheckpointReplacedError, match="replaced by a newer save"):
        fresh["a"]
    fresh.close()
    opened = tfckpt.load_checkpoint(prefix, verify_checksums=False)
    assert opened["a"][0] == 2.0  # data file now open: it stays the one this index describes
    tfckpt.save({"a": np.full(1000, 3.0), "b": np.full(1000, 3.0)}, prefix, sync=False)
    assert opened["b"][0] == 2.0
    opened.close()
    assert tfckpt.load(prefix)["b"][0] == 3.0
