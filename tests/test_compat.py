"""tfckpt.compat, the checkpoint half of TensorFlow: one body of code run against real
TensorFlow and against the stand-in (the ``tfmod`` fixture), plus what only the stand-in has
(the runner, the missing-attribute error) and a third-party converter run both ways."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from conftest import optional

import tfckpt
import tfckpt.compat

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"


@pytest.fixture(params=["tfckpt.compat", pytest.param("tensorflow", marks=pytest.mark.tf)])
def tfmod(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        module: ModuleType = optional("tensorflow")
        return module
    return tfckpt.compat


NUMERIC = ["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
           "uint32", "uint64", "complex64", "complex128", "bool", "float8_e4m3fn", "float8_e5m2", "int4", "uint4"]
ALL = [*NUMERIC, "string", "qint8", "quint8", "qint32", "resource", "variant", "float32_ref"]


def outcome(read: Any) -> Any:
    try:
        value = read()
    except (TypeError, KeyError) as exc:
        return type(exc).__name__
    return value


def describe(tf: Any, name: str) -> dict[str, Any]:
    """What scripts look at in a DType, as plain values that compare across the two modules."""
    dt = tf.dtypes.as_dtype(name)
    record = {attr: getattr(dt, attr) for attr in
              ("name", "as_datatype_enum", "is_floating", "is_integer", "is_complex", "is_bool", "is_unsigned",
               "is_quantized", "size")}
    record.update(min=outcome(lambda: dt.min), max=outcome(lambda: dt.max), repr=repr(dt), str=str(dt),
                  real=dt.real_dtype.name, base=dt.base_dtype.name, hash=hash(dt) == dt.as_datatype_enum,
                  eq_name=dt == name, eq_enum=dt == dt.as_datatype_enum, eq_self=dt == tf.dtypes.as_dtype(name),
                  ne_other=dt != tf.dtypes.as_dtype("int8" if name != "int8" else "uint8"),
                  eq_none=dt == None, eq_junk=dt == "no such type")
    if name in NUMERIC or name == "float32_ref":
        numpy_type = dt.as_numpy_dtype
        record.update(numpy_type=numpy_type, scalar=type(numpy_type(0)), eq_numpy=dt == numpy_type,
                      eq_np_dtype=dt == np.dtype(numpy_type), eq_array=dt == np.zeros(1, numpy_type))
    return record


@pytest.mark.parametrize("name", ALL)
def test_dtypes_behave_as_tensorflows(tfmod: Any, name: str) -> None:
    record = describe(tfmod, name)
    assert record["repr"] == f"tf.{name}" and record["str"] == f"<dtype: '{name}'>"
    assert record["hash"] and record["eq_name"] and record["eq_enum"] and record["eq_self"] and record["ne_other"]
    assert not record["eq_none"] and not record["eq_junk"]
    if "numpy_type" in record:
        assert isinstance(record["numpy_type"], type) and record["scalar"] is record["numpy_type"]
        assert (record["eq_numpy"] and record["eq_np_dtype"] and record["eq_array"]) == (name in NUMERIC)
        if record["is_floating"] or record["is_integer"]:
            info = (ml_dtypes.finfo if record["is_floating"] else ml_dtypes.iinfo)(record["numpy_type"])
            assert (record["min"], record["max"]) == (info.min, info.max)
        else:
            assert record["min"] == record["max"] == "TypeError"


@pytest.mark.tf
def test_every_dtype_matches_tensorflow_attribute_by_attribute(tf: Any) -> None:
    assert {name: describe(tfckpt.compat, name) for name in ALL} == {name: describe(tf, name) for name in ALL}


def test_dtype_constants_aliases_and_conversions(tfmod: Any) -> None:
    tf = tfmod
    assert tf.float32 is tf.dtypes.float32 is tf.as_dtype("float") is tf.as_dtype(np.float32) is tf.as_dtype(1)
    assert tf.half is tf.float16 and tf.double is tf.float64 and tf.as_dtype(float) is tf.float32
    assert tf.as_dtype(np.dtype(">f4")) is tf.float32 and tf.as_dtype(np.dtype("U3")) is tf.string
    assert tf.as_dtype(ml_dtypes.bfloat16) is tf.bfloat16 and tf.bfloat16.as_numpy_dtype is ml_dtypes.bfloat16
    assert isinstance(tf.float32, tf.DType) and tf.DType is tf.dtypes.DType
    assert {tf.float32: "x"}[tf.as_dtype("float32")] == "x" and tf.complex128.real_dtype is tf.float64
    for bad in ("no such type", 999, str, int):
        with pytest.raises(TypeError):
            tf.as_dtype(bad)


def test_tfckpt_dtypes_compare_and_hash_as_tensorflows() -> None:
    f32 = tfckpt.as_dtype("float32")
    assert f32 == np.float32 and f32 == "float32" and f32 == 1 and f32 == np.dtype("<f4") and f32 != np.float64
    assert f32 == tfckpt.compat.float32 and tfckpt.compat.float32 == f32 and hash(f32) == 1
    assert f32 != "no such type" and f32 != None and f32 != object()
    assert f32.is_floating and f32.size == 4 and f32.min == np.finfo(np.float32).min
    assert tfckpt.as_dtype("uint4").is_unsigned and tfckpt.as_dtype("uint4").max == 15
    assert tfckpt.as_dtype("complex64").real_dtype is tfckpt.as_dtype("float32")
    with pytest.raises(TypeError, match="qint8"):
        _ = tfckpt.as_dtype("qint8").min
    assert tfckpt.as_dtype("float32").as_numpy_dtype == np.dtype("<f4")  # tfckpt's own attribute is unchanged


def write_checkpoint(directory: Path) -> str:
    prefix = tfckpt.save({"dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
                          "dense/bias": np.array([0.5, -1], np.float64), "step": np.int64(7),
                          "name": np.array(b"bert", dtype=object)}, directory / "model.ckpt-7")
    tfckpt.update_checkpoint_state(str(directory), prefix)
    return prefix


def test_train_functions_return_what_tensorflow_returns(tfmod: Any, tmp_path: Path) -> None:
    tf = tfmod
    prefix = write_checkpoint(tmp_path)
    assert tf.train.latest_checkpoint(str(tmp_path)) == prefix
    assert tf.train.get_checkpoint_state(str(tmp_path)).model_checkpoint_path == prefix
    assert tf.compat.v1.train.checkpoint_exists(prefix) and not tf.compat.v1.train.checkpoint_exists(prefix + "x")
    for where in (prefix, str(tmp_path)):
        listed = tf.train.list_variables(where)
        assert listed == [("dense/bias", [2]), ("dense/kernel", [2, 3]), ("name", []), ("step", [])]
        assert all(type(item) is tuple and type(item[1]) is list for item in listed)
        kernel = tf.train.load_variable(where, "dense/kernel:0")
        assert type(kernel) is np.ndarray and kernel.dtype == np.float32 and kernel.tolist() == [[0, 1, 2], [3, 4, 5]]
        step = tf.train.load_variable(where, "step")
        assert type(step) is np.int64 and step == 7
        assert tf.train.load_variable(where, "name") == b"bert"
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    assert reader.has_tensor("step") and not reader.has_tensor("nope")
    dtypes = reader.get_variable_to_dtype_map()
    assert dtypes["dense/bias"] == tf.float64 and dtypes["name"] == tf.string and isinstance(dtypes["step"], tf.DType)
    assert dtypes["dense/kernel"].as_numpy_dtype is np.float32
    assert tf.train.load_checkpoint(prefix).get_variable_to_shape_map()["dense/kernel"] == [2, 3]


def test_train_errors_are_tensorflows(tfmod: Any, tmp_path: Path) -> None:
    tf = tfmod
    errors = tf.errors
    for name in ("NotFoundError", "InvalidArgumentError", "DataLossError", "UnknownError", "UnimplementedError",
                 "AlreadyExistsError", "PermissionDeniedError", "FailedPreconditionError", "AbortedError"):
        cls = getattr(errors, name)
        assert issubclass(cls, errors.OpError) and not issubclass(cls, (KeyError, ValueError, OSError))
        error = cls(None, None, "the message")
        assert error.message == str(error) == "the message" and error.error_code == cls(None, None, "").error_code
    assert errors.NotFoundError(None, None, "").error_code == errors.NOT_FOUND == 5
    assert errors.DataLossError(None, None, "").error_code == errors.DATA_LOSS == 15
    prefix = write_checkpoint(tmp_path / "ok")
    with pytest.raises(errors.NotFoundError):
        tf.train.load_variable(prefix, "no/such/key")
    with pytest.raises(errors.NotFoundError):
        tf.train.load_checkpoint(str(tmp_path / "missing" / "model.ckpt"))
    with pytest.raises(errors.NotFoundError):
        tf.train.list_variables(str(tmp_path / "missing.ckpt"))
    (tmp_path / "empty").mkdir()
    for call in (tf.train.list_variables, tf.train.load_checkpoint, lambda path: tf.train.load_variable(path, "x")):
        with pytest.raises(ValueError, match="^Couldn't find 'checkpoint' file or checkpoints in given directory"):
            call(str(tmp_path / "empty"))
    assert tf.train.latest_checkpoint(str(tmp_path / "empty")) is None
    assert tf.train.get_checkpoint_state(str(tmp_path / "empty")) is None
    (tmp_path / "bad.index").write_bytes(b"not an sstable" * 10)
    with pytest.raises(errors.OpError):
        tf.train.load_checkpoint(str(tmp_path / "bad"))


def test_gfile_basics_behave_as_tensorflows(tfmod: Any, tmp_path: Path) -> None:
    gfile, errors = tfmod.io.gfile, tfmod.errors
    root = str(tmp_path)
    gfile.makedirs(gfile.join(root, "a", "b"))
    gfile.makedirs(gfile.join(root, "a", "b"))  # existing: fine
    with gfile.GFile(gfile.join(root, "a", "vocab.txt"), "w") as f:
        f.write("hé\nworld\n")
    with gfile.GFile(gfile.join(root, "a", "vocab.txt"), "rb") as f:
        assert f.read() == "hé\nworld\n".encode()
    assert gfile.GFile(gfile.join(root, "a", "vocab.txt")).read() == "hé\nworld\n"
    assert list(gfile.GFile(gfile.join(root, "a", "vocab.txt"))) == ["hé\n", "world\n"]
    assert sorted(gfile.listdir(gfile.join(root, "a"))) == ["b", "vocab.txt"]
    assert sorted(gfile.glob(gfile.join(root, "a", "*"))) == [gfile.join(root, "a", n) for n in ("b", "vocab.txt")]
    assert gfile.exists(gfile.join(root, "a")) and gfile.isdir(gfile.join(root, "a"))
    assert not gfile.exists(gfile.join(root, "nope")) and not gfile.isdir(gfile.join(root, "a", "vocab.txt"))
    assert [(d, sorted(s), f) for d, s, f in gfile.walk(root)] == [
        (root, ["a"], []), (gfile.join(root, "a"), ["b"], ["vocab.txt"]), (gfile.join(root, "a", "b"), [], [])]
    assert list(gfile.walk(gfile.join(root, "nope"))) == []
    gfile.copy(gfile.join(root, "a", "vocab.txt"), gfile.join(root, "copy.txt"))
    with pytest.raises(errors.AlreadyExistsError):
        gfile.copy(gfile.join(root, "a", "vocab.txt"), gfile.join(root, "copy.txt"))
    with pytest.raises(errors.AlreadyExistsError):
        gfile.rename(gfile.join(root, "a", "vocab.txt"), gfile.join(root, "copy.txt"))
    gfile.rename(gfile.join(root, "copy.txt"), gfile.join(root, "moved.txt"))
    gfile.remove(gfile.join(root, "moved.txt"))
    assert not gfile.exists(gfile.join(root, "moved.txt"))
    for call in (lambda: gfile.remove(gfile.join(root, "nope")), lambda: gfile.listdir(gfile.join(root, "nope")),
                 lambda: gfile.GFile(gfile.join(root, "nope")).read()):
        with pytest.raises(errors.NotFoundError):
            call()
    v1 = tfmod.compat.v1.gfile
    assert v1.Exists(gfile.join(root, "a")) and v1.ListDirectory(gfile.join(root, "a", "b")) == []


def test_gfile_works_on_urls(tmp_path: Path) -> None:
    optional("fsspec")
    gfile = tfckpt.compat.io.gfile
    base = f"memory:///compat-{os.getpid()}"
    gfile.makedirs(base + "/d")
    with gfile.GFile(base + "/d/x.txt", "w") as f:
        f.write("remote")
    assert gfile.GFile(base + "/d/x.txt").read() == "remote" and gfile.listdir(base + "/d") == ["x.txt"]
    assert gfile.exists(base + "/d/x.txt") and gfile.glob(base + "/d/*") == [base + "/d/x.txt"]
    gfile.remove(base + "/d/x.txt")
    with pytest.raises(tfckpt.compat.errors.NotFoundError):
        gfile.remove(base + "/d/x.txt")
    prefix = tfckpt.save({"w": np.ones(3, np.float32)}, base + "/ckpt/model")
    assert tfckpt.compat.train.list_variables(prefix) == [("w", [3])]


def test_anything_else_raises_one_clear_attribute_error() -> None:
    tf = tfckpt.compat
    for namespace, name, spelled in ((tf, "nn", "tf.nn"), (tf.train, "Saver", "tf.train.Saver"),
                                     (tf.io, "decode_png", "tf.io.decode_png"), (tf.errors, "Foo", "tf.errors.Foo"),
                                     (tf.compat, "v3", "tf.compat.v3"), (tf.dtypes, "cast", "tf.dtypes.cast"),
                                     (tf.io.gfile, "rmtree", "tf.io.gfile.rmtree")):
        assert not hasattr(namespace, name)
        with pytest.raises(AttributeError, match=f"^{spelled} is not part of tfckpt.compat .*install tensorflow"):
            getattr(namespace, name)
        with pytest.raises(tfckpt.TfckptError):
            getattr(namespace, name)
    from tfckpt.compat import tf as imported
    assert imported is tf and tf.compat.v1 is tf and tf.compat.v1.train.NewCheckpointReader is tf.train.NewCheckpointReader


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
                          check=False)


def test_importing_compat_never_shadows_tensorflow() -> None:
    done = run("-c", "import sys, tfckpt.compat; from tfckpt.compat import tf; print('tensorflow' in sys.modules)")
    assert done.returncode == 0 and done.stdout.split() == ["False"], done.stderr


SCRIPT = '''
import sys
import tensorflow as tf
import tensorflow.compat.v1 as tf1
from tensorflow.errors import NotFoundError
print(tf.train.list_variables.__module__, tf1 is tf, sys.argv[1:])
try:
    tf.train.load_variable(sys.argv[1], "missing")
except NotFoundError:
    print("not found")
sys.exit(int(sys.argv[2]))
'''


def test_runner_runs_a_script_with_tensorflow_resolved_to_the_stand_in(tmp_path: Path) -> None:
    prefix = write_checkpoint(tmp_path)
    (tmp_path / "script.py").write_text(SCRIPT)
    done = run("-m", "tfckpt.compat", str(tmp_path / "script.py"), prefix, "3")
    assert done.returncode == 3, done.stderr  # the script's exit code, forced stand-in even with TF installed
    assert done.stdout.splitlines() == [f"tfckpt.compat.train True ['{prefix}', '3']", "not found"]
    (tmp_path / "crash.py").write_text("import tensorflow as tf\ntf.nn.relu\n")
    done = run("-m", "tfckpt.compat", str(tmp_path / "crash.py"))
    assert done.returncode == 1 and "tf.nn is not part of tfckpt.compat" in done.stderr
    (tmp_path / "mod.py").write_text("import sys, tensorflow as tf\nprint(tf.float32, sys.argv[1:])\n")
    done = run("-m", "tfckpt.compat", "-m", "mod", "x", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "<dtype: 'float32'> ['x']\n", done.stderr
    assert run("-m", "tfckpt.compat").returncode == 2


BERT_HIDDEN, BERT_INTERMEDIATE, BERT_VOCAB = 8, 16, 30


def bert_variables() -> dict[str, np.ndarray]:
    """The variables of a tiny original-BERT checkpoint (google-research/bert's names)."""
    h, i, v = BERT_HIDDEN, BERT_INTERMEDIATE, BERT_VOCAB
    shapes: dict[str, tuple[int, ...]] = {
        "bert/embeddings/word_embeddings": (v, h), "bert/embeddings/position_embeddings": (16, h),
        "bert/embeddings/token_type_embeddings": (2, h), "bert/pooler/dense/kernel": (h, h),
        "bert/pooler/dense/bias": (h,), "cls/predictions/transform/dense/kernel": (h, h),
        "cls/predictions/transform/dense/bias": (h,), "cls/predictions/output_bias": (v,),
        "cls/seq_relationship/output_weights": (2, h), "cls/seq_relationship/output_bias": (2,),
        "bert/encoder/layer_0/intermediate/dense/kernel": (h, i), "bert/encoder/layer_0/intermediate/dense/bias": (i,),
        "bert/encoder/layer_0/output/dense/kernel": (i, h), "bert/encoder/layer_0/output/dense/bias": (h,),
        "bert/embeddings/word_embeddings/adam_m": (v, h)}  # optimizer state: the loader skips it
    for scope in ("bert/encoder/layer_0/attention/self/query", "bert/encoder/layer_0/attention/self/key",
                  "bert/encoder/layer_0/attention/self/value", "bert/encoder/layer_0/attention/output/dense"):
        shapes |= {f"{scope}/kernel": (h, h), f"{scope}/bias": (h,)}
    for scope in ("bert/embeddings", "bert/encoder/layer_0/attention/output", "bert/encoder/layer_0/output",
                  "cls/predictions/transform"):
        shapes |= {f"{scope}/LayerNorm/gamma": (h,), f"{scope}/LayerNorm/beta": (h,)}
    rng = np.random.default_rng(26)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


@pytest.mark.tf
def test_transformers_bert_converter_gives_the_same_bits_with_and_without_tensorflow(tf: Any, tmp_path: Path) -> None:
    optional("transformers")
    optional("torch")
    from compat_bert import convert
    from safetensors.numpy import load_file
    variables = bert_variables()
    prefix = str(tmp_path / "bert_model.ckpt")
    names = sorted(variables)  # written by TensorFlow itself, with a global_step as its scripts leave it
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=[*names, "global_step"], shape_and_slices=[""] * (len(names) + 1),
                      tensors=[*(tf.constant(variables[n]) for n in names), tf.constant(np.int64(1000))])
    convert(prefix, str(tmp_path / "with_tf.safetensors"))  # in this process: the real TensorFlow
    done = run("-m", "tfckpt.compat", str(TESTS / "compat_bert.py"), prefix, str(tmp_path / "compat.safetensors"))
    assert done.returncode == 0, done.stderr
    with_tf, with_compat = load_file(tmp_path / "with_tf.safetensors"), load_file(tmp_path / "compat.safetensors")
    assert sorted(with_tf) == sorted(with_compat)
    assert all(with_tf[k].dtype == with_compat[k].dtype and with_tf[k].tobytes() == with_compat[k].tobytes()
               for k in with_tf)
    # ...and the weights are the checkpoint's (transposed kernels), not two equal random initialisations.
    query = "bert.encoder.layer.0.attention.self.query.weight"
    assert with_compat[query].tobytes() == variables["bert/encoder/layer_0/attention/self/query/kernel"].T.tobytes()
    assert with_compat["cls.predictions.bias"].tobytes() == variables["cls/predictions/output_bias"].tobytes()
