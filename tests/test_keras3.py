"""Keras 3 weights files as sources, and tf-keras checkpoints to Keras 3 ``.weights.h5`` and
back, checked against the real frameworks: Keras 3 on JAX loads what tfckpt wrote and computes
what tf-keras computed (fixtures: tests/fixtures/keras3/make_keras3_fixtures.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import optional
from keras3_models import CASES

import tfckpt
import tfckpt.cli
import tfckpt.keras
from tfckpt.errors import CorruptionError, InvalidArgumentError
from tfckpt.formats import open_reader

FIXTURES = Path(__file__).parent / "fixtures" / "keras3"
TFKERAS = FIXTURES / "tfkeras"
TESTS = Path(__file__).parent


def test_weights_h5_and_keras_archives_read_as_sources(capsys: pytest.CaptureFixture[str]) -> None:
    optional("h5py")
    with open_reader(FIXTURES / "seq.weights.h5") as weights, open_reader(FIXTURES / "seq.keras") as archive:
        shapes = weights.get_variable_to_shape_map()
        assert shapes == archive.get_variable_to_shape_map()
        assert shapes["layers/dense/vars/0"] == [4, 3] and shapes["layers/batch_normalization/vars/3"] == [3]
        assert shapes["optimizer/vars/0"] == []
        assert np.array_equal(weights["layers/dense_1/vars/0"], archive["layers/dense_1/vars/0"])
    assert tfckpt.cli.main(["diff", str(FIXTURES / "seq.keras"), str(FIXTURES / "seq.weights.h5")]) == 0
    assert tfckpt.cli.main(["stats", str(FIXTURES / "func.weights.h5")]) == 0
    assert "layers/lstm/cell/vars/1" in capsys.readouterr().out


def test_convert_reads_keras_weights_and_refuses_to_write_them(tmp_path: Path) -> None:
    optional("h5py")
    tfckpt.convert_checkpoint(FIXTURES / "sub.weights.h5", tmp_path / "w.safetensors")
    with open_reader(tmp_path / "w.safetensors") as converted, open_reader(FIXTURES / "sub.weights.h5") as original:
        assert sorted(converted.get_variable_to_shape_map()) == sorted(original.get_variable_to_shape_map())
        assert np.array_equal(converted["block/conv/vars/0"], original["block/conv/vars/0"])
    with pytest.raises(InvalidArgumentError, match="checkpoint_to_weights_h5"):
        tfckpt.convert_checkpoint(TFKERAS / "seq", tmp_path / "out.weights.h5")
    assert not list(tmp_path.glob("out*"))


def test_load_and_load_checkpoint_read_keras_files() -> None:
    optional("h5py")
    with open_reader(FIXTURES / "seq.weights.h5") as expected:
        want = {name: expected[name] for name in expected}
    for name in ("seq.weights.h5", "seq.keras"):
        with tfckpt.load_checkpoint(FIXTURES / name) as reader:
            assert reader.get_variable_to_shape_map() == {k: list(v.shape) for k, v in want.items()}
        loaded = tfckpt.load(FIXTURES / name)
        assert loaded.keys() == want.keys() and all(np.array_equal(loaded[k], want[k]) for k in want), name
    assert tfckpt.load_variable(FIXTURES / "seq.keras", "layers/dense/vars/0").shape == (4, 3)


def test_convert_with_like_pairs_keras3_files_by_structure_both_ways(tmp_path: Path) -> None:
    """`tfckpt convert CKPT out.weights.h5 --like TEMPLATE.weights.h5` and `tfckpt convert
    W.weights.h5 out/ckpt --like TF_CKPT` write what tfckpt.keras writes (which Keras 3 and
    TensorFlow load: the tests above)."""
    optional("h5py")
    assert tfckpt.cli.main(["convert", str(TFKERAS / "func"), str(tmp_path / "cli.weights.h5"),
                            "--like", str(FIXTURES / "func.weights.h5")]) == 0
    tfckpt.keras.checkpoint_to_weights_h5(TFKERAS / "func", tmp_path / "py.weights.h5", like=FIXTURES / "func.weights.h5")
    cli, py = tfckpt.load(tmp_path / "cli.weights.h5"), tfckpt.load(tmp_path / "py.weights.h5")
    assert cli.keys() == py.keys() and all(np.array_equal(cli[k], py[k]) for k in py)
    assert tfckpt.cli.main(["convert", str(FIXTURES / "seq.keras"), str(tmp_path / "back" / "ckpt"),
                            "--like", str(TFKERAS / "seq")]) == 0
    tfckpt.keras.weights_h5_to_checkpoint(FIXTURES / "seq.keras", tmp_path / "py" / "ckpt", like=TFKERAS / "seq")
    assert tfckpt.diff_checkpoints(tmp_path / "back" / "ckpt", tmp_path / "py" / "ckpt").same
    with tfckpt.load_checkpoint(tmp_path / "back" / "ckpt") as back, tfckpt.load_checkpoint(TFKERAS / "seq") as tf:
        assert back.get_variable_to_shape_map() == tf.get_variable_to_shape_map()
        key = "_CHECKPOINTABLE_OBJECT_GRAPH"
        assert back[key] == tf[key]  # the TF model's object graph, byte for byte
    report = tfckpt.convert_checkpoint(FIXTURES / "seq.weights.h5", tmp_path / "no_opt" / "ckpt", like=TFKERAS / "seq",
                                       optimizer=False)
    assert len(report.skipped) == 14 and "kept at the template's values" in report.warnings[0]
    with pytest.raises(InvalidArgumentError, match="rename, include do not apply"):
        tfckpt.convert_checkpoint(FIXTURES / "seq.weights.h5", tmp_path / "x" / "ckpt", like=TFKERAS / "seq",
                                  rename=[("a", "b")], include=["*"])
    assert not (tmp_path / "x").exists()


def test_hostile_h5_files_raise_tfckpt_errors(tmp_path: Path) -> None:
    h5py = optional("h5py")
    truncated = tmp_path / "cut.weights.h5"
    truncated.write_bytes((FIXTURES / "seq.weights.h5").read_bytes()[:3000])
    with pytest.raises(CorruptionError, match="cut.weights.h5"):
        open_reader(truncated)
    huge = tmp_path / "huge.weights.h5"
    with h5py.File(huge, "w") as file:  # 8 TB declared, nothing stored: reads as fill values
        file.create_dataset("layers/dense/vars/0", shape=(1 << 40, 2), dtype="f4", chunks=(1024, 2))
    with pytest.raises(CorruptionError, match="declares 8796093022208 bytes"):
        open_reader(huge)
    strings = tmp_path / "strings.h5"
    with h5py.File(strings, "w") as file:
        file["names"] = ["a", "b"]
    with pytest.raises(tfckpt.TfckptError, match="not tensors"):
        open_reader(strings)


KERAS3_LOAD = """
    import json, sys, numpy as np, keras, keras3_models
    out = {}
    for case, path in json.loads(sys.argv[1]).items():
        model = keras3_models.build(keras, case)
        if case == "seq":
            model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
        np.save(path + ".out.npy", keras3_models.output(model, case))
        if case == "seq":
            np.savez(path + ".opt.npz", *[np.asarray(v) for v in model.optimizer.variables])
    print(keras.backend.backend())
"""


@pytest.mark.tf
def test_tf_keras_checkpoints_become_weights_keras3_loads_on_jax(tmp_path: Path) -> None:
    """Sequential (BN, Adam state), functional (Embedding, LSTM, GRU, shared Dense), subclassed
    (nested Conv2D + BN, a list): Keras 3 on JAX loads the converted files and computes what
    tf-keras computed with the original checkpoint."""
    optional("h5py")
    optional("jax")
    written = {}
    for case in CASES:
        mapping = tfckpt.keras.checkpoint_to_weights_h5(TFKERAS / case, tmp_path / f"{case}.weights.h5",
                                                        like=FIXTURES / f"{case}.weights.h5")
        assert not mapping.kept and not mapping.unused, (case, mapping)
        written[case] = str(tmp_path / f"{case}.weights.h5")
    import json
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KERAS3_LOAD), json.dumps(written)],
                          capture_output=True, text=True, timeout=300, check=False, cwd=TESTS,
                          env={**os.environ, "PYTHONPATH": str(TESTS), "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.split()[-1] == "jax"
    for case, path in written.items():
        np.testing.assert_allclose(np.load(path + ".out.npy"), np.load(TFKERAS / f"{case}_out.npy"), rtol=1e-5,
                                   atol=1e-6, err_msg=case)
    optimizer = np.load(written["seq"] + ".opt.npz")
    state = [optimizer[f"arr_{i}"] for i in range(len(optimizer.files))]
    with tfckpt.load_checkpoint(TFKERAS / "seq") as reader:
        assert int(state[0]) == int(reader["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 2
        slots = [reader[f"optimizer/_variables/{n}/.ATTRIBUTES/VARIABLE_VALUE"] for n in range(1, len(state) - 1)]
    for loaded, slot in zip(state[2:], slots, strict=True):
        assert np.array_equal(loaded, slot)


TF_RESTORE = """
    import json, sys, numpy as np, tensorflow as tf, tf_keras, keras3_models
    for case, path in json.loads(sys.argv[1]).items():
        model = keras3_models.build(tf_keras, case)
        if case == "seq_tf":
            model = keras3_models.build(tf_keras, "seq")
            model.optimizer.build(model.trainable_variables)
            tf.train.Checkpoint(model=model, optimizer=model.optimizer).read(path).assert_consumed()
            case = "seq"
        else:
            model.load_weights(path).assert_existing_objects_matched()
        np.save(path + ".out.npy", keras3_models.output(model, case))
"""


@pytest.mark.tf
def test_keras3_weights_become_checkpoints_tf_keras_restores(tmp_path: Path) -> None:
    """The reverse: Keras 3 weights into the object graph of a tf-keras checkpoint, restored by
    tf-keras ``load_weights`` and by ``tf.train.Checkpoint(...).read().assert_consumed()``."""
    optional("h5py")
    optional("tf_keras")
    written = {}
    for case in (*CASES, "seq_tf"):
        weights = FIXTURES / f"{case.removesuffix('_tf')}.weights.h5"
        mapping = tfckpt.keras.weights_h5_to_checkpoint(weights, tmp_path / case / "ckpt", like=TFKERAS / case)
        assert not mapping.unused, (case, mapping)
        written[case] = str(tmp_path / case / "ckpt")
    import json
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(TF_RESTORE), json.dumps(written)],
                          capture_output=True, text=True, timeout=300, check=False, cwd=TESTS,
                          env={**os.environ, "PYTHONPATH": str(TESTS), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-4000:]
    for case, path in written.items():
        np.testing.assert_allclose(np.load(path + ".out.npy"), np.load(FIXTURES / f"{case.removesuffix('_tf')}_out.npy"),
                                   rtol=1e-5, atol=1e-6, err_msg=case)


def test_a_template_of_another_model_names_every_unpaired_variable(tmp_path: Path) -> None:
    optional("h5py")
    with pytest.raises(tfckpt.keras.KerasMappingError) as caught:
        tfckpt.keras.checkpoint_to_weights_h5(TFKERAS / "seq", tmp_path / "x.weights.h5", like=FIXTURES / "func.weights.h5")
    message = str(caught.value)
    assert "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE" in message
    assert "layers/lstm/cell/vars/0" in message
    assert not list(tmp_path.iterdir())


def test_optimizer_state_the_source_lacks_is_kept_from_the_template(tmp_path: Path) -> None:
    optional("h5py")
    mapping = tfckpt.keras.checkpoint_to_weights_h5(TFKERAS / "seq", tmp_path / "x.weights.h5",
                                                    like=FIXTURES / "seq.weights.h5", optimizer=False)
    assert mapping.kept == [f"optimizer/vars/{n}" for n in sorted(range(14), key=str)]
    assert len(mapping.unused) == 14  # the checkpoint's optimizer state, written nowhere
    with open_reader(tmp_path / "x.weights.h5") as out, open_reader(FIXTURES / "seq.weights.h5") as template:
        assert np.array_equal(out["optimizer/vars/3"], template["optimizer/vars/3"])
        assert not np.array_equal(out["layers/dense/vars/0"], template["layers/dense/vars/0"])
