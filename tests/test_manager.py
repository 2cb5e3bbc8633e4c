import time
from pathlib import Path

import numpy as np
import pytest

import tfckpt
import tfckpt.state as state_module
from tfckpt import Checkpoint, CheckpointManager, InvalidArgumentError, Variable


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(state_module, "now", fake)
    return fake


def names(paths: list[str]) -> list[str]:
    return [Path(p).name for p in paths]


def test_max_to_keep_and_state_file(tmp_path: Path, clock: Clock) -> None:
    manager = CheckpointManager(Checkpoint(v=Variable([1.0])), tmp_path, max_to_keep=2)
    for _ in range(4):
        clock.now += 10
        manager.save()
    assert names(manager.checkpoints) == ["ckpt-3", "ckpt-4"]
    assert manager.latest_checkpoint == str(tmp_path / "ckpt-4")
    assert sorted(p.name for p in tmp_path.glob("*.index")) == ["ckpt-3.index", "ckpt-4.index"]
    state = tfckpt.get_checkpoint_state(tmp_path)
    assert state is not None
    assert names(state.all_model_checkpoint_paths) == ["ckpt-3", "ckpt-4"]
    assert state.all_model_checkpoint_timestamps == [clock.now - 10, clock.now]
    assert 'model_checkpoint_path: "ckpt-4"' in (tmp_path / "checkpoint").read_text()  # relative


def test_keep_checkpoint_every_n_hours(tmp_path: Path, clock: Clock) -> None:
    manager = CheckpointManager(Checkpoint(v=Variable([1.0])), tmp_path, max_to_keep=1,
                                keep_checkpoint_every_n_hours=1.0)
    for _ in range(7):  # one save every 25 minutes
        clock.now += 25 * 60
        manager.save()
    kept = sorted(int(p.name[5:-6]) for p in tmp_path.glob("ckpt-*.index"))
    # Preserved: the first checkpoint at least an hour after the manager started (ckpt-3 at 75
    # min), then the first one at least an hour after that (ckpt-6 at 150 min), plus the newest.
    assert kept == [3, 6, 7]
    assert names(manager.checkpoints) == ["ckpt-7"]


def test_checkpoint_number_and_counter(tmp_path: Path, clock: Clock) -> None:
    ckpt = Checkpoint(v=Variable([1.0]))
    manager = CheckpointManager(ckpt, tmp_path, max_to_keep=None, checkpoint_name="model")
    assert Path(manager.save(checkpoint_number=100)).name == "model-100"
    assert int(ckpt.save_counter.numpy()) == 1  # still counted
    assert Path(manager.save(checkpoint_number=Variable(np.int64(200)))).name == "model-200"
    assert names(manager.checkpoints) == ["model-100", "model-200"]


def test_checkpoint_interval(tmp_path: Path, clock: Clock) -> None:
    step = Variable(np.int64(0))
    manager = CheckpointManager(Checkpoint(v=Variable([1.0])), tmp_path, max_to_keep=None,
                                step_counter=step, checkpoint_interval=10)
    saved = []
    for value in (0, 0, 5, 10, 12, 25):
        step.assign(value)
        saved.append(manager.save() is not None)
    assert saved == [True, False, False, True, False, True]
    step.assign(26)
    assert manager.save(check_interval=False) is not None
    with pytest.raises(InvalidArgumentError, match="step_counter"):
        CheckpointManager(Checkpoint(v=Variable([1.0])), tmp_path, max_to_keep=1, checkpoint_interval=5)


def test_a_new_manager_takes_over_the_directory(tmp_path: Path, clock: Clock) -> None:
    first = CheckpointManager(Checkpoint(v=Variable([1.0])), tmp_path, max_to_keep=3)
    for _ in range(3):
        clock.now += 5
        first.save()
    second = CheckpointManager(Checkpoint(v=Variable([1.0])), tmp_path, max_to_keep=2)
    assert names(second.checkpoints) == ["ckpt-1", "ckpt-2", "ckpt-3"]
    assert second.latest_checkpoint == str(tmp_path / "ckpt-3")
    clock.now += 5
    second.save()
    # The new Checkpoint's counter restarted at 1, so ckpt-1 is rewritten and moves to the end;
    # the oldest of the rest (ckpt-2) is pruned.
    assert names(second.checkpoints) == ["ckpt-3", "ckpt-1"]
    assert not (tmp_path / "ckpt-2.index").exists()


def test_restore_or_initialize(tmp_path: Path, clock: Clock) -> None:
    calls = []
    value = Variable([0.0])
    manager = CheckpointManager(Checkpoint(v=value), tmp_path, max_to_keep=1, init_fn=lambda: calls.append(1))
    assert manager.restore_or_initialize() is None and calls == [1]
    value.assign([3.0])
    path = manager.save()
    restored = Variable([0.0])
    again = CheckpointManager(Checkpoint(v=restored), tmp_path, max_to_keep=1, init_fn=lambda: calls.append(2))
    assert again.restore_or_initialize() == path and calls == [1]
    assert restored.numpy().tolist() == [3.0]


def test_bad_max_to_keep() -> None:
    with pytest.raises(InvalidArgumentError, match="positive integer"):
        CheckpointManager(Checkpoint(v=Variable([1.0])), "unused", max_to_keep=0)
