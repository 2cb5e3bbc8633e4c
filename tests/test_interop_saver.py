"""Saver and state file against real TensorFlow (TF1 graph-mode Saver)."""

import types
from pathlib import Path

import numpy as np
import pytest

import tfckpt
import tfckpt.state as state_module
from tfckpt import Saver, Variable

pytestmark = pytest.mark.tf


def tf1_session(tf):  # type: ignore[no-untyped-def]
    graph = tf.Graph()
    return graph, tf.compat.v1.Session(graph=graph)


def test_tf1_saver_restores_tfckpt_saver_output_by_list_and_dict(tf, tmp_path: Path) -> None:
    v1, v2 = Variable(np.arange(3, dtype=np.float32), name="v1"), Variable(np.full(5, 7, np.int64), name="v2")
    by_list = Saver([v1, v2]).save(tmp_path / "list" / "model.ckpt", global_step=2)
    by_dict = Saver({"renamed": v1}).save(tmp_path / "dict" / "model.ckpt")
    graph, sess = tf1_session(tf)
    with graph.as_default(), sess:
        t1 = tf.compat.v1.Variable(np.zeros(3, np.float32), name="v1")
        t2 = tf.compat.v1.Variable(np.zeros(5, np.int64), name="v2")
        other = tf.compat.v1.Variable(np.zeros(3, np.float32), name="other")
        sess.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver([t1, t2]).restore(sess, by_list)
        assert sess.run(t1).tolist() == [0, 1, 2] and sess.run(t2).tolist() == [7] * 5
        tf.compat.v1.train.Saver({"renamed": other}).restore(sess, by_dict)
        assert sess.run(other).tolist() == [0, 1, 2]
        assert tf.train.latest_checkpoint(str(tmp_path / "list")) == by_list


def test_tfckpt_restores_tf1_saver_output_subset(tf, tmp_path: Path) -> None:
    graph, sess = tf1_session(tf)
    with graph.as_default(), sess:
        a = tf.compat.v1.Variable(np.arange(4.0), name="a")
        b = tf.compat.v1.Variable([b"x", b"y"], name="b")
        sess.run(tf.compat.v1.global_variables_initializer())
        path = tf.compat.v1.train.Saver([a, b]).save(sess, str(tmp_path / "m"), global_step=9, write_meta_graph=False)
    a_ours, b_ours, untouched = Variable(np.zeros(4)), Variable([b"", b""]), Variable([5.0], name="a")
    Saver({"a": a_ours, "b": b_ours}).restore(path)
    assert a_ours.numpy().tolist() == [0, 1, 2, 3] and b_ours.numpy().tolist() == [b"x", b"y"]
    assert untouched.numpy().tolist() == [5.0]
    assert tfckpt.latest_checkpoint(tmp_path) == path


class SharedClock:
    def __init__(self) -> None:
        import time
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("max_to_keep", "hours", "saves", "step_hours"), [
    (2, 10000.0, 5, 0.1), (3, 1.0, 12, 0.34), (1, 0.5, 8, 0.2), (None, 10000.0, 4, 0.1), (0, 1.0, 3, 1.0),
])
def test_retention_matches_tf1_saver(tf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     max_to_keep: int | None, hours: float, saves: int, step_hours: float) -> None:
    from tensorflow.python.training import saver as tf_saver_module
    clock = SharedClock()
    monkeypatch.setattr(state_module, "now", clock)
    monkeypatch.setattr(tf_saver_module, "time", types.SimpleNamespace(time=clock))
    ours_dir, tf_dir = tmp_path / "ours", tmp_path / "tf"
    ours = Saver([Variable(1.0, name="v")], max_to_keep=max_to_keep, keep_checkpoint_every_n_hours=hours)
    graph, sess = tf1_session(tf)
    with graph.as_default(), sess:
        v = tf.compat.v1.Variable(1.0, name="v")
        sess.run(v.initializer)
        theirs = tf.compat.v1.train.Saver([v], max_to_keep=max_to_keep, keep_checkpoint_every_n_hours=hours,
                                          save_relative_paths=True)
        for step in range(1, saves + 1):
            clock.now += step_hours * 3600
            theirs.save(sess, str(tf_dir / "m"), global_step=step, write_meta_graph=False)
            ours.save(ours_dir / "m", global_step=step)
            assert sorted(p.name for p in ours_dir.iterdir()) == sorted(p.name for p in tf_dir.iterdir()), step
            assert (ours_dir / "checkpoint").read_text() == (tf_dir / "checkpoint").read_text(), step
            assert [Path(p).name for p in ours.last_checkpoints] == [Path(p).name for p in theirs.last_checkpoints]


def test_get_checkpoint_state_agrees_with_tf(tf, tmp_path: Path) -> None:
    saver = Saver([Variable(1.0, name="v")], max_to_keep=3)
    for step in range(1, 5):
        saver.save(tmp_path / "run" / "model.ckpt", global_step=step)
    tfckpt.update_checkpoint_state(tmp_path / "run", str(tmp_path / "run" / "model.ckpt-4"),
                                   saver.last_checkpoints, all_model_checkpoint_timestamps=[1.5, 2.5, 3.5],
                                   last_preserved_timestamp=0.5)
    theirs = tf.train.get_checkpoint_state(str(tmp_path / "run"))
    ours = tfckpt.get_checkpoint_state(tmp_path / "run")
    assert ours is not None
    assert ours.model_checkpoint_path == theirs.model_checkpoint_path
    assert ours.all_model_checkpoint_paths == list(theirs.all_model_checkpoint_paths)
    assert ours.all_model_checkpoint_timestamps == list(theirs.all_model_checkpoint_timestamps)
    assert ours.last_preserved_timestamp == theirs.last_preserved_timestamp
    # And TF writing the state file, tfckpt reading it.
    tf.compat.v1.train.update_checkpoint_state(str(tmp_path / "run"), "model.ckpt-3", ["model.ckpt-2", "model.ckpt-3"])
    again = tfckpt.get_checkpoint_state(tmp_path / "run")
    assert again is not None and again.all_model_checkpoint_paths == [
        str(tmp_path / "run" / "model.ckpt-2"), str(tmp_path / "run" / "model.ckpt-3")]
