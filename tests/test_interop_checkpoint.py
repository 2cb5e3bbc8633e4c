"""TF2 object-based checkpoints against real TensorFlow and Keras 3."""

import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import tfckpt
import tfckpt.state as state_module
from tfckpt import Checkpoint, CheckpointManager, Variable

pytestmark = pytest.mark.tf


def test_tensorflow_restores_tfckpt_structures(tf, tmp_path: Path) -> None:
    dense = SimpleNamespace(kernel=Variable(np.arange(6, dtype=np.float32).reshape(2, 3)),
                            bias=np.full(3, 0.5, np.float32))
    ours = Checkpoint(net=SimpleNamespace(dense=dense, step=Variable(np.int64(9))),
                      items=[Variable(np.int32(3)), np.ones((2, 2), np.float16)],
                      table={"a": np.array([1.0, 2.0], np.float32), "b/c": Variable(b"text")})
    path = ours.save(tmp_path / "ckpt")

    net = tf.Module()
    net.dense = tf.Module()
    net.dense.kernel = tf.Variable(tf.zeros((2, 3)))
    net.dense.bias = tf.Variable(tf.zeros(3))
    net.step = tf.Variable(np.int64(0))
    items = [tf.Variable(np.int32(0)), tf.Variable(np.zeros((2, 2), np.float16))]
    table = {"a": tf.Variable(tf.zeros(2)), "b/c": tf.Variable(b"")}
    theirs = tf.train.Checkpoint(net=net, items=items, table=table)
    theirs.restore(path).assert_consumed()
    assert net.dense.kernel.numpy().tolist() == [[0, 1, 2], [3, 4, 5]]
    assert net.dense.bias.numpy().tolist() == [0.5] * 3 and int(net.step.numpy()) == 9
    assert items[1].numpy().tolist() == [[1, 1], [1, 1]] and table["b/c"].numpy() == b"text"
    assert int(theirs.save_counter.numpy()) == 1
    assert tf.train.latest_checkpoint(str(tmp_path)) == path


def test_tfckpt_restores_tensorflow_structures(tf, tmp_path: Path) -> None:
    net = tf.Module()
    net.dense = tf.Module()
    net.dense.kernel = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    items = [tf.Variable(np.int64(7))]
    table = {"x.y": tf.Variable([1.5, 2.5])}
    path = tf.train.Checkpoint(net=net, items=items, table=table).save(str(tmp_path / "ckpt"))
    kernel, item, entry = np.zeros((2, 3), np.float32), Variable(np.int64(0)), Variable(np.zeros(2, np.float32))
    Checkpoint(net=SimpleNamespace(dense=SimpleNamespace(kernel=kernel)), items=[item],
               table={"x.y": entry}).restore(tmp_path).assert_consumed()
    assert tfckpt.latest_checkpoint(tmp_path) == path  # the directory resolved to TF's save
    assert kernel.tolist() == [[0, 1, 2], [3, 4, 5]] and int(item.numpy()) == 7
    assert entry.numpy().tolist() == [1.5, 2.5]


def _keras_model(keras):  # type: ignore[no-untyped-def]
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(2, name="out")])


def test_flagship_numpy_weights_into_a_keras_model(tf, tmp_path: Path) -> None:
    import keras
    rng = np.random.default_rng(0)
    weights = {"k1": rng.standard_normal((4, 3), dtype=np.float32), "b1": rng.standard_normal(3, dtype=np.float32),
               "k2": rng.standard_normal((3, 2), dtype=np.float32), "b2": rng.standard_normal(2, dtype=np.float32)}
    # The object paths of a Keras 3 Sequential model (see `tfckpt <checkpoint>` on one TF wrote).
    layers = {"1": {"_kernel": weights["k1"], "bias": weights["b1"]},
              "2": {"_kernel": weights["k2"], "bias": weights["b2"]}}
    path = Checkpoint(model={"_functional": {"_operations": layers}}).write(tmp_path / "weights")
    model = _keras_model(keras)
    tf.train.Checkpoint(model=model).read(path).assert_consumed()
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), weights["k1"])
    np.testing.assert_array_equal(model.layers[1].bias.numpy(), weights["b2"])
    x = rng.standard_normal((5, 4), dtype=np.float32)
    expected = (x @ weights["k1"] + weights["b1"]) @ weights["k2"] + weights["b2"]
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_keras_model_and_adam_round_trip_through_numpy(tf, tmp_path: Path) -> None:
    import keras
    keras.utils.set_random_seed(3)
    model = _keras_model(keras)
    optimizer = keras.optimizers.Adam(0.01)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4)
    model.fit(x, x[:, :2], epochs=2, verbose=0)
    source = tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(tmp_path / "tf" / "ckpt"))
    # tfckpt: read the whole tree as numpy, and write it back as a new checkpoint.
    tree = tfckpt.load_checkpoint(source).nested()
    counter = tree.pop("save_counter")
    copy_path = Checkpoint(**tree).write(tmp_path / "copy")
    # A fresh Keras model + Adam restores tfckpt's copy, with everything consumed.
    keras.utils.set_random_seed(99)
    model2 = _keras_model(keras)
    optimizer2 = keras.optimizers.Adam(0.01)
    model2.compile(optimizer=optimizer2, loss="mse")
    model2.fit(x, x[:, :2], epochs=1, verbose=0)  # creates the optimizer's variables
    tf.train.Checkpoint(model=model2, optimizer=optimizer2).read(copy_path).assert_consumed()
    for a, b in zip(model.weights, model2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(optimizer.variables, optimizer2.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(counter) == 1


class SharedClock:
    def __init__(self) -> None:
        import time
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("max_to_keep", "hours", "saves", "minutes"), [
    (2, None, 5, 1), (1, 1.0, 8, 25), (3, 0.5, 10, 7), (None, None, 3, 1),
])
def test_checkpoint_manager_matches_tensorflow(tf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               max_to_keep: int | None, hours: float | None, saves: int,
                                               minutes: int) -> None:
    from tensorflow.python.checkpoint import checkpoint_management
    clock = SharedClock()
    monkeypatch.setattr(state_module, "now", clock)
    monkeypatch.setattr(checkpoint_management, "time", types.SimpleNamespace(time=clock))
    ours = CheckpointManager(Checkpoint(v=Variable([1.0])), tmp_path / "ours", max_to_keep, hours)
    theirs = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable([1.0])), str(tmp_path / "tf"),
                                        max_to_keep, hours)
    for step in range(saves):
        clock.now += minutes * 60
        ours.save()
        theirs.save()
        assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == \
            sorted(p.name for p in (tmp_path / "tf").iterdir()), step
        assert (tmp_path / "ours" / "checkpoint").read_text() == (tmp_path / "tf" / "checkpoint").read_text()
        assert [Path(p).name for p in ours.checkpoints] == [Path(p).name for p in theirs.checkpoints]
    # Managers created later over each directory recover the same list.
    again_ours = CheckpointManager(Checkpoint(v=Variable([1.0])), tmp_path / "ours", max_to_keep, hours)
    again_theirs = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable([1.0])), str(tmp_path / "tf"),
                                              max_to_keep, hours)
    assert [Path(p).name for p in again_ours.checkpoints] == [Path(p).name for p in again_theirs.checkpoints]
