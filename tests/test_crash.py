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
    while True:
        step += 1
        values["big"][:] = step
        values["small"][:] = step
        values["text"][0] = str(step).encode()
        if mode == "saver":
            saver.save(directory + "/model", global_step=step)
        elif mode == "manager":
            manager.save(checkpoint_number=step)
        else:  # the same prefix overwritten again and again
            tfckpt.save(values, directory + "/same")
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


@pytest.mark.parametrize("mode", ["saver", "manager"])
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


def test_sigkill_while_overwriting_one_prefix(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    rng = random.Random(99)
    seen = 0
    for round_number in range(10):
        process = start_writer(tmp_path, directory, "overwrite", round_number * 1000)
        time.sleep(rng.uniform(0.05, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        try:
            consistent_step(str(directory / "same"))  # complete, or
            seen += 1
        except tfckpt.NotFoundError:
            pass  # killed after the old index was removed and before the new one appeared
    assert seen > 0


@pytest.mark.parametrize("mode", ["manager", "overwrite"])
def test_readers_see_consistent_checkpoints_while_another_process_saves(tmp_path: Path, mode: str) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    process = start_writer(tmp_path, directory, mode, 0)
    consistent, clear_errors = 0, 0
    deadline = time.monotonic() + 4.0
    try:
        while time.monotonic() < deadline:
            path = str(directory / "same") if mode == "overwrite" else tfckpt.latest_checkpoint(directory)
            if path is None:
                continue
            try:
                consistent_step(path)
                consistent += 1
            except TfckptError:
                clear_errors += 1  # pruned or replaced mid-read: a clear error, never wrong data
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert consistent > 0, (consistent, clear_errors)
