"""Issue 26 item 1: a TF2 checkpoint converted to safetensors/npz and back keeps its structure:
TensorFlow and Keras restore the result by object graph, with the edits made in between."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES

import tfckpt
from tfckpt.cli import main
from tfckpt.formats.safetensors import read_header
from tfckpt.storage import filesystem_for

KERNEL = "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"  # Keras 3 keeps weights here


def _keras_model_and_adam(keras, seed: int):  # type: ignore[no-untyped-def]
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"),
                              keras.layers.Dense(2, name="out")])
    optimizer = keras.optimizers.Adam(0.01)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4)
    model.fit(x, x[:, :2], epochs=1, verbose=0)  # creates the optimizer's variables
    return model, optimizer


def _metadata(path: Path) -> dict[str, str]:
    source = filesystem_for(str(path)).open_source(str(path))
    try:
        header, _ = read_header(source)
    finally:
        source.close()
    metadata: dict[str, str] = header["__metadata__"]
    return metadata


@pytest.mark.tf
def test_safetensors_edited_in_pytorch_goes_back_to_a_checkpoint_tensorflow_restores(tf, tmp_path: Path) -> None:
    import keras
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    model, optimizer = _keras_model_and_adam(keras, 3)
    tf.train.Checkpoint(model=model, optimizer=optimizer).write(str(tmp_path / "ckpt"))
    st = tmp_path / "w.safetensors"
    assert main(["convert", str(tmp_path / "ckpt"), str(st), "--object-paths", "--strip-attributes"]) == 0
    # Edited in PyTorch: one value changed, one tensor to bfloat16; the metadata passed on.
    with safe_open(str(st), "pt") as opened:
        metadata = opened.metadata()
    tensors = load_file(str(st))
    hidden, out_bias = "model/_functional/_operations/1/_kernel", "model/_functional/_operations/2/bias"
    tensors[hidden] = tensors[hidden] + 1.0
    tensors[out_bias] = torch.full_like(tensors[out_bias], 0.5).to(torch.bfloat16)
    edited = tmp_path / "edited.safetensors"
    save_file(tensors, str(edited), metadata=metadata)
    assert main(["convert", str(edited), str(tmp_path / "back" / "ckpt")]) == 0

    model2, optimizer2 = _keras_model_and_adam(keras, 99)
    tf.train.Checkpoint(model=model2, optimizer=optimizer2).read(str(tmp_path / "back" / "ckpt")).assert_consumed()
    np.testing.assert_array_equal(model2.get_layer("hidden").kernel.numpy(),
                                  model.get_layer("hidden").kernel.numpy() + 1.0)
    assert model2.get_layer("out").bias.numpy().tolist() == [0.5, 0.5]
    assert model2.get_layer("out").bias.dtype == "float32"  # cast back to the graph's dtype
    for a, b in zip(optimizer.variables[2:], optimizer2.variables[2:]):  # slots: kept
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.tf
def test_npz_edited_in_numpy_goes_back_and_tf_keras_load_weights_takes_it(tf, tmp_path: Path) -> None:
    import tf_keras

    tf_keras.utils.set_random_seed(5)
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3, name="hidden")])
    model.save_weights(str(tmp_path / "ckpt"))  # the TF format: an object graph rooted at the model
    npz = tmp_path / "w.npz"
    tfckpt.convert_checkpoint(tmp_path / "ckpt", npz, strip_attributes=True, rename=[("/", ".")])
    with np.load(npz) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["layer_with_weights-0.bias"] = np.array([1.0, 2.0, 3.0], np.float32)
    np.savez(npz, **arrays)  # the structure member comes back with the other members
    tfckpt.convert_checkpoint(npz, tmp_path / "back" / "ckpt")

    tf_keras.utils.set_random_seed(6)
    model2 = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3, name="hidden")])
    model2.load_weights(str(tmp_path / "back" / "ckpt")).assert_consumed()
    assert model2.layers[0].bias.numpy().tolist() == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(model2.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())
    tf.train.Checkpoint(model2).read(str(tmp_path / "back" / "ckpt")).assert_consumed()


def test_the_structure_is_kept_in_safetensors_metadata(tmp_path: Path) -> None:
    st = tmp_path / "w.safetensors"
    tfckpt.convert_checkpoint(EXAMPLES / "keras_mlp", st, strip_attributes=True)
    metadata = _metadata(st)
    assert metadata["tfckpt.structure"] == "1"
    listed = json.loads(metadata["tfckpt.tensors"])
    assert listed["save_counter"][0] == "save_counter/.ATTRIBUTES/VARIABLE_VALUE"
    assert listed["save_counter"][1] == "int64"
    tfckpt.convert_checkpoint(st, tmp_path / "back")
    original, back = tfckpt.load(EXAMPLES / "keras_mlp"), tfckpt.load(tmp_path / "back")
    assert sorted(original) == sorted(back)
    for name, value in original.items():
        np.testing.assert_array_equal(value, back[name])


def test_a_cast_to_another_kind_of_number_is_refused_and_shapes_are_checked(tmp_path: Path) -> None:
    npz = tmp_path / "w.npz"
    tfckpt.convert_checkpoint(EXAMPLES / "keras_mlp", npz)
    with np.load(npz) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays[KERNEL] = arrays[KERNEL].astype(np.int32)
    arrays["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] = np.zeros(3, np.int64)
    np.savez(npz, **arrays)
    with pytest.raises(tfckpt.InvalidArgumentError) as caught:
        tfckpt.convert_checkpoint(npz, tmp_path / "back")
    assert "is int32" in str(caught.value) and "needs float32" in str(caught.value)
    assert "has shape [3]" in str(caught.value)
    assert not (tmp_path / "back").exists()
    # Without the structure it is written as it is.
    tfckpt.convert_checkpoint(npz, tmp_path / "plain", drop_object_graph=True)
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in tfckpt.load(tmp_path / "plain")


def test_like_names_every_missing_and_extra_tensor_in_one_error(tmp_path: Path) -> None:
    template = tfckpt.load(EXAMPLES / "keras_mlp")
    keys = [k for k in template if k.startswith("optimizer/_trainable_variables/")]
    arrays = {k.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE"): template[k] for k in keys[1:]}
    arrays["model/stray"] = np.zeros(2, np.float32)
    arrays["head/extra"] = np.zeros(1, np.float32)
    npz = tmp_path / "tuned.npz"
    np.savez(npz, **arrays)
    with pytest.raises(tfckpt.InvalidArgumentError) as caught:
        tfckpt.convert_checkpoint(npz, tmp_path / "back", like=EXAMPLES / "keras_mlp")
    message = str(caught.value)
    for name in (keys[0], "'model/stray'", "'head/extra'", "optimizer/_iterations"):
        assert name in message
    assert "2 not in the structure" in message
    assert not (tmp_path / "back").exists()


def test_like_rebuilds_the_template_structure_from_plain_names(tmp_path: Path) -> None:
    template = tfckpt.load(EXAMPLES / "keras_mlp")
    arrays = {k.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE"): v + 1 for k, v in template.items()
              if k != "_CHECKPOINTABLE_OBJECT_GRAPH" and not k.startswith("save_counter")}
    npz = tmp_path / "tuned.npz"
    np.savez(npz, **arrays)
    assert main(["convert", str(npz), str(tmp_path / "back" / "ckpt"), "--like", str(EXAMPLES / "keras_mlp")]) == 0
    back = tfckpt.load(tmp_path / "back")
    assert sorted(back) == sorted(template)
    np.testing.assert_array_equal(back[KERNEL], template[KERNEL] + 1)
    assert back["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == template["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
    assert back["_CHECKPOINTABLE_OBJECT_GRAPH"] == template["_CHECKPOINTABLE_OBJECT_GRAPH"]


def test_a_damaged_structure_record_is_a_corruption_error(tmp_path: Path) -> None:
    npz = tmp_path / "w.npz"
    np.savez(npz, w=np.ones(2, np.float32),
             __tfckpt_structure__=np.array(json.dumps({"tfckpt.structure": "1", "tfckpt.object_graph": "!!",
                                                       "tfckpt.tensors": "{}"})))
    with pytest.raises(tfckpt.CorruptionError, match="tfckpt.object_graph is not base64"):
        tfckpt.convert_checkpoint(npz, tmp_path / "back")


@pytest.mark.tf
def test_like_takes_a_pytorch_fine_tune_back_through_reversed_rules(tf, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    def model():  # type: ignore[no-untyped-def]
        root = tf.Module()
        root.bert = tf.Module()
        root.bert.pooler = tf.Module()
        root.bert.pooler.dense = tf.Module()
        root.bert.pooler.dense.kernel = tf.Variable(tf.zeros((4, 3)))
        root.bert.pooler.dense.bias = tf.Variable(tf.zeros(3))
        return root

    tf.train.Checkpoint(model=model()).write(str(tmp_path / "template"))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"tfckpt_rules": 1, "rules": [
        {"match": "model/bert/pooler/dense/kernel", "name": "bert.pooler.dense.weight", "transpose": [1, 0]},
        {"match": "model/bert/pooler/dense/bias", "name": "bert.pooler.dense.bias"}]}))
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 3)  # the fine-tune, in PyTorch's layout: weight is [out, in]
    save_file({f"bert.pooler.dense.{k}": v.detach().contiguous() for k, v in linear.state_dict().items()},
              str(tmp_path / "tuned.safetensors"))
    assert main(["convert", str(tmp_path / "tuned.safetensors"), str(tmp_path / "back" / "ckpt"),
                 "--rules", str(rules), "--reverse", "--like", str(tmp_path / "template")]) == 0
    restored = model()
    tf.train.Checkpoint(model=restored).read(str(tmp_path / "back" / "ckpt")).assert_consumed()
    np.testing.assert_array_equal(restored.bert.pooler.dense.kernel.numpy(), linear.weight.detach().numpy().T)
    np.testing.assert_array_equal(restored.bert.pooler.dense.bias.numpy(), linear.bias.detach().numpy())
