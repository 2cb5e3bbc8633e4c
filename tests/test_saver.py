import os
import time
from pathlib import Path

import numpy as np
import pytest

import tfckpt
import tfckpt.state as state_module
from tfckpt import InvalidArgumentError, NotFoundError, Saver, Variable


class Clock:
    """A fake time.time for the saver, advanced by hand."""

    def __init__(self) -> None:
        self.now = time.time()  # near real time: file mtimes are compared with it

    def __call__(self) -> float:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += hours * 3600


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(state_module, "now", fake)
    return fake


def state_lines(directory: Path) -> list[str]:
    return (directory / "checkpoint").read_text().splitlines()


def test_list_saves_under_own_names_dict_under_keys(tmp_path: Path) -> None:
    a, b = Variable([1.0], name="a"), Variable([2, 3], name="b")
    Saver([a, b]).save(tmp_path / "by_list")
    Saver({"x/y": a, "plain": np.array([7, 8, 9])}).save(tmp_path / "by_dict")
    assert tfckpt.list_variables(tmp_path / "by_list") == [("a", [1]), ("b", [2])]
    assert tfckpt.list_variables(tmp_path / "by_dict") == [("plain", [3]), ("x/y", [1])]


def test_construction_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="duplicate variable name 'v'"):
        Saver([Variable(1, name="v"), Variable(2, name="v")])
    with pytest.raises(InvalidArgumentError, match="has no name"):
        Saver([Variable(1)])
    with pytest.raises(InvalidArgumentError, match="use a dict"):
        Saver([np.zeros(2)])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="No variables to save"):
        Saver([])
    assert Saver([], allow_empty=True).save("unused") is None


def test_classic_subset_restore(tmp_path: Path) -> None:
    # Program 1 saves v1 [3] and v2 [5].
    v1, v2 = Variable(np.ones(3, np.float32), name="v1"), Variable(np.full(5, 2.0, np.float32), name="v2")
    path = Saver([v1, v2]).save(tmp_path / "model.ckpt")
    # Program 2 builds v1 with another shape and restores only v2.
    v1_new = Variable(np.full(2, 9.0, np.float32), name="v1")
    v2_new = Variable(np.zeros(5, np.float32), name="v2")
    Saver({"v2": v2_new}).restore(path)
    assert v2_new.numpy().tolist() == [2.0] * 5
    assert v1_new.numpy().tolist() == [9.0, 9.0]  # untouched


def test_restore_errors_restore_nothing(tmp_path: Path) -> None:
    path = Saver({"a": Variable([1.0, 2.0]), "v2": Variable(np.zeros(5, np.float32))}).save(tmp_path / "m")
    a = Variable([0.0, 0.0])
    wrong_shape = Variable(np.zeros(4, np.float32))
    with pytest.raises(InvalidArgumentError) as info:
        Saver({"a": a, "v2": wrong_shape}).restore(path)
    message = str(info.value)
    assert "'v2'" in message and path in message and "[5]" in message and "[4]" in message
    assert a.numpy().tolist() == [0.0, 0.0]  # all or nothing
    with pytest.raises(InvalidArgumentError, match="dtype float32, the variable has dtype float64"):
        Saver({"a": a, "v2": Variable(np.zeros(5, np.float64))}).restore(path)
    with pytest.raises(NotFoundError, match="Key missing not found"):
        Saver({"a": a, "missing": Variable([1.0])}).restore(path)
    assert a.numpy().tolist() == [0.0, 0.0]


def test_restore_fills_arrays_in_place(tmp_path: Path) -> None:
    path = Saver({"w": np.arange(4.0)}).save(tmp_path / "m")
    target = np.zeros(4)
    Saver({"w": target}).restore(path)
    assert target.tolist() == [0.0, 1.0, 2.0, 3.0]
    frozen = np.zeros(4)
    frozen.flags.writeable = False
    with pytest.raises(InvalidArgumentError, match="read-only"):
        Saver({"w": frozen}).restore(path)


def test_same_variable_in_several_savers(tmp_path: Path) -> None:
    shared = Variable([1, 2], name="shared")
    only_a = Variable([3], name="a")
    Saver([shared, only_a]).save(tmp_path / "a")
    Saver({"renamed": shared}).save(tmp_path / "b")
    shared.assign([0, 0])
    Saver({"renamed": shared}).restore(tmp_path / "b")
    assert shared.numpy().tolist() == [1, 2]


def test_global_step_naming(tmp_path: Path) -> None:
    v = Variable(1.0, name="v")
    assert Saver([v]).save(tmp_path / "model.ckpt", global_step=1000).endswith("model.ckpt-1000")
    step = Variable(np.int64(5), name="global_step")
    padded = Saver([v], pad_step_number=True).save(tmp_path / "model", global_step=step)
    assert padded.endswith("model-00000005")
    with pytest.raises(InvalidArgumentError, match="global_step"):
        Saver([v]).save(tmp_path / "m", global_step=1.5)


def test_parent_directory_is_created_and_state_is_relative(tmp_path: Path) -> None:
    saver = Saver([Variable(1.0, name="v")])
    path = saver.save(tmp_path / "new" / "dir" / "model.ckpt", global_step=3)
    assert os.path.exists(path + ".index")
    assert state_lines(tmp_path / "new" / "dir") == ['model_checkpoint_path: "model.ckpt-3"',
                                                     'all_model_checkpoint_paths: "model.ckpt-3"']
    absolute = Saver([Variable(1.0, name="v")], save_relative_paths=False)
    path = absolute.save(tmp_path / "abs" / "m", global_step=1)
    assert state_lines(tmp_path / "abs")[0] == f'model_checkpoint_path: "{path}"'


def test_latest_filename_rules(tmp_path: Path) -> None:
    saver = Saver([Variable(1.0, name="v")])
    saver.save(tmp_path / "m", global_step=1, latest_filename="my_state")
    assert (tmp_path / "my_state").exists() and not (tmp_path / "checkpoint").exists()
    assert tfckpt.latest_checkpoint(tmp_path, "my_state") == str(tmp_path / "m-1")
    with pytest.raises(InvalidArgumentError, match="path components"):
        saver.save(tmp_path / "m", latest_filename="sub/state")
    with pytest.raises(InvalidArgumentError, match="collides"):
        saver.save(tmp_path / "checkpoint")


def test_write_state_false_leaves_state_and_retention_alone(tmp_path: Path) -> None:
    saver = Saver([Variable(1.0, name="v")], max_to_keep=1)
    saver.save(tmp_path / "m", global_step=1, write_state=False)
    assert not (tmp_path / "checkpoint").exists() and saver.last_checkpoints == []


def test_max_to_keep_retention_sequence(tmp_path: Path, clock: Clock) -> None:
    saver = Saver([Variable(1.0, name="v")], max_to_keep=2)
    for step in range(1, 5):
        clock.advance(0.1)
        saver.save(tmp_path / "m", global_step=step)
    assert saver.last_checkpoints == [str(tmp_path / "m-3"), str(tmp_path / "m-4")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint", "m-3.data-00000-of-00001", "m-3.index", "m-4.data-00000-of-00001", "m-4.index"]
    assert state_lines(tmp_path) == ['model_checkpoint_path: "m-4"', 'all_model_checkpoint_paths: "m-3"',
                                     'all_model_checkpoint_paths: "m-4"']


def test_resaving_the_same_path_moves_it_to_the_end(tmp_path: Path, clock: Clock) -> None:
    saver = Saver([Variable(1.0, name="v")], max_to_keep=3)
    for step in (1, 2, 1):
        saver.save(tmp_path / "m", global_step=step)
    assert saver.last_checkpoints == [str(tmp_path / "m-2"), str(tmp_path / "m-1")]


@pytest.mark.parametrize("keep", [None, 0])
def test_max_to_keep_none_keeps_everything_and_lists_only_the_newest(tmp_path: Path, keep: int | None) -> None:
    saver = Saver([Variable(1.0, name="v")], max_to_keep=keep)
    for step in range(1, 8):
        saver.save(tmp_path / "m", global_step=step)
    assert len(list(tmp_path.glob("*.index"))) == 7
    assert state_lines(tmp_path) == ['model_checkpoint_path: "m-7"', 'all_model_checkpoint_paths: "m-7"']
    assert saver.last_checkpoints == []


def test_keep_checkpoint_every_n_hours(tmp_path: Path, clock: Clock) -> None:
    # One save every 20 minutes for 4 hours, keep 2, plus one per hour for good.
    saver = Saver([Variable(1.0, name="v")], max_to_keep=2, keep_checkpoint_every_n_hours=1.0)
    for step in range(1, 13):
        clock.advance(1 / 3)
        saver.save(tmp_path / "m", global_step=step)
    remaining = sorted(int(p.name[2:-6]) for p in tmp_path.glob("m-*.index"))
    # Saved at 20, 40, 60 (+eps) ... minutes; a queued checkpoint saved after the next hour mark
    # is preserved and moves the mark by an hour: steps 4 (t=80m), 7 (t=140m), 10 (t=200m).
    assert remaining == [4, 7, 10, 11, 12]
    assert saver.last_checkpoints == [str(tmp_path / "m-11"), str(tmp_path / "m-12")]


def test_expired_checkpoint_loses_every_file(tmp_path: Path, clock: Clock) -> None:
    saver = Saver([Variable(1.0, name="v")], max_to_keep=1)
    first = saver.save(tmp_path / "m", global_step=1)
    # Files TF may leave next to a checkpoint: extra shards and a meta graph.
    Path(first + ".meta").write_bytes(b"meta")
    Path(first + ".data-00001-of-00002").write_bytes(b"shard")
    saver.save(tmp_path / "m", global_step=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "m-2.data-00000-of-00001", "m-2.index"]


def test_set_and_recover_last_checkpoints(tmp_path: Path, clock: Clock) -> None:
    saver = Saver([Variable(1.0, name="v")], max_to_keep=2)
    paths = [saver.save(tmp_path / "m", global_step=s) for s in (1, 2)]
    fresh = Saver([Variable(1.0, name="v")], max_to_keep=2)
    fresh.recover_last_checkpoints(paths + [str(tmp_path / "gone-9")])
    assert fresh.last_checkpoints == paths
    fresh.save(tmp_path / "m", global_step=3)  # m-1 is now the oldest of three: deleted
    assert not Path(paths[0] + ".index").exists()
    fresh.set_last_checkpoints([paths[1]])
    fresh.save(tmp_path / "m", global_step=4)
    fresh.save(tmp_path / "m", global_step=5)
    assert Path(paths[1] + ".index").exists()  # infinite timestamp: preserved for good
    fresh.set_last_checkpoints_with_time([("a", 1.0), ("b", 2.0)])
    assert fresh.last_checkpoints == ["a", "b"]


def test_restore_accepts_directories_and_rejects_none(tmp_path: Path) -> None:
    v = Variable([1.0, 2.0], name="v")
    Saver([v]).save(tmp_path / "m", global_step=1)
    v.assign([0.0, 0.0])
    Saver([v]).restore(tmp_path)  # latest checkpoint of the directory
    assert v.numpy().tolist() == [1.0, 2.0]
    with pytest.raises(InvalidArgumentError, match="None"):
        Saver([v]).restore(None)  # type: ignore[arg-type]


def test_restore_from_tf_written_checkpoints() -> None:
    from conftest import FIXTURES
    from fixtures import values
    kernel = Variable(np.zeros((3, 4), np.float32), name="dense/kernel")
    step = np.zeros((), np.int64)
    Saver({"dense/kernel": kernel, "global_step": step}).restore(FIXTURES / "tf1_saver")
    np.testing.assert_array_equal(kernel.numpy(), values.tf1_variables()["dense/kernel"])
    assert step == 3
    net_kernel = np.zeros((2, 3), np.float32)
    Saver({"net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE": net_kernel}).restore(FIXTURES / "tf2_module")
    assert net_kernel.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_saver_output_is_byte_identical_to_tf1_saver_fixture(tmp_path: Path) -> None:
    from conftest import FIXTURES
    from fixtures import values
    variables = {n: Variable(v) for n, v in values.tf1_variables().items()}
    variables["global_step"] = Variable(np.int64(3))
    path = Saver(variables).save(tmp_path / "model.ckpt", global_step=3)
    for suffix in (".index", ".data-00000-of-00001"):
        assert Path(path + suffix).read_bytes() == (FIXTURES / "tf1_saver" / ("model.ckpt-3" + suffix)).read_bytes()
