"""SavedModel inspection: `tfckpt savedmodel show`, compared with TF's saved_model_cli."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES
from google.protobuf import text_format

from tfckpt import savedmodel
from tfckpt._proto import saved_model_pb2
from tfckpt.errors import CorruptionError, InvalidArgumentError, NotFoundError

MODEL = FIXTURES / "savedmodel"


def ours(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfckpt", "savedmodel", "show", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_show_modes_on_the_fixture() -> None:
    assert ours("--dir", str(MODEL)).stdout == "The given SavedModel contains the following tag-sets:\n'serve'\n"
    keys = ours("--dir", str(MODEL), "--tag_set", "serve").stdout
    assert keys.splitlines()[1:] == ['SignatureDef key: "__saved_model_init_op"', 'SignatureDef key: "serving_default"']
    signature = ours("--dir", str(MODEL), "--tag_set", "serve", "--signature_def", "serving_default").stdout
    assert "      shape: (-1, 2)\n      name: serving_default_x:0\n" in signature
    assert signature.endswith("Method name is: tensorflow/serving/predict\n")


def test_errors(tmp_path: Path) -> None:
    result = ours("--dir", str(MODEL), "--tag_set", "train")
    assert result.returncode == 1 and "could not be found" in result.stderr and "Traceback" not in result.stderr
    result = ours("--dir", str(MODEL), "--tag_set", "serve", "--signature_def", "nope")
    assert result.returncode == 1 and 'Could not find signature "nope"' in result.stderr
    with pytest.raises(NotFoundError):
        savedmodel.read_saved_model(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff\xff")
    with pytest.raises(CorruptionError):
        savedmodel.read_saved_model(tmp_path)


def test_pbtxt_is_read(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pbtxt").write_text(
        'meta_graphs { meta_info_def { tags: "serve" tags: "gpu" } signature_def { key: "k" value { '
        'inputs { key: "a" value { name: "a:0" dtype: DT_INT64 tensor_shape { unknown_rank: true } } } '
        'method_name: "m" } } }')
    graphs = savedmodel.read_saved_model(tmp_path)
    assert savedmodel.show_tag_sets(graphs).splitlines()[1] == "'gpu, serve'"
    text = savedmodel.show_signature(savedmodel.get_meta_graph(graphs, "serve,gpu"), "k")
    assert "      dtype: DT_INT64\n      shape: unknown_rank\n      name: a:0\n" in text


def _saved_model_cli(*args: str) -> str:
    cli = shutil.which("saved_model_cli") or str(Path(sys.executable).parent / "saved_model_cli")
    return subprocess.run([cli, "show", *args], capture_output=True, text=True, timeout=300, check=True).stdout


@pytest.mark.tf
def test_output_matches_saved_model_cli_line_by_line(tf, tmp_path: Path) -> None:
    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(tf.ones((3, 2)))

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features"),
                                      tf.TensorSpec([], tf.int64, name="step")])
        def predict(self, features, step):  # type: ignore[no-untyped-def]
            return {"scores": tf.matmul(features, self.w), "step": step + 1}

        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="text")])
        def echo(self, text):  # type: ignore[no-untyped-def]
            return text

    model = Model()
    tf.saved_model.save(model, str(tmp_path), signatures={"serving_default": model.predict, "echo": model.echo})
    for args in ([], ["--tag_set", "serve"], ["--tag_set", "serve", "--signature_def", "serving_default"],
                 ["--tag_set", "serve", "--signature_def", "echo"]):
        assert ours("--dir", str(tmp_path), *args).stdout == _saved_model_cli("--dir", str(tmp_path), *args), args
    for fixture_args in ([], ["--tag_set", "serve", "--signature_def", "serving_default"]):
        assert ours("--dir", str(MODEL), *fixture_args).stdout == _saved_model_cli("--dir", str(MODEL), *fixture_args)
    assert normalized(ours("--dir", str(tmp_path), "--all").stdout) == normalized(
        _saved_model_cli("--dir", str(tmp_path), "--all"))


# ---- the corpus: SavedModels written by several TensorFlow versions ------------------------

CORPUS = Path(__file__).parent / "fixtures" / "savedmodels"
CORPUS_MODELS = sorted(p for p in CORPUS.glob("*/*") if (p / "expected").is_dir())


def normalized(text: str) -> list[object]:
    """saved_model_cli's output with what it leaves to chance put in a fixed form: the op
    set's order (a Python set) and the order of one function's traces (sorted by names the
    loader makes up, see tfckpt.savedmodel.load_order). Everything else stays line for line."""
    out: list[object] = []
    head, _, functions = text.partition("\nConcrete Functions:")
    for line in head.split("\n"):
        if " contains the following ops: " in line:
            prefix, ops = line.split(" contains the following ops: ")
            out.append((prefix, sorted(ops.strip("{}").split(", ")) if ops != "set()" else []))
        else:
            out.append(line)
    if _:
        for block in functions.split("\n  Function Name: ")[1:]:
            name, *rest = block.split("\n")
            options = "\n".join(rest).split("    Option #")
            out.append((name, options[0], sorted(o.split("\n", 1)[-1] for o in options[1:])))
    return out


def test_the_corpus_covers_several_versions_and_kinds() -> None:
    versions = {p.parent.name for p in CORPUS_MODELS}
    kinds = {p.name for p in CORPUS_MODELS}
    assert len(versions) >= 2 and {"module", "keras3", "tf1_ref", "tf_keras"} <= kinds


@pytest.mark.parametrize("model", CORPUS_MODELS, ids=lambda p: f"{p.parent.name}-{p.name}")
def test_every_mode_equals_saved_model_cli_of_the_version_that_wrote_it(model: Path) -> None:
    expected = model / "expected"
    graphs = savedmodel.read_saved_model(model)
    assert savedmodel.show_tag_sets(graphs) == (expected / "tag_sets.txt").read_text()
    for keys_file in expected.glob("keys_*.txt"):
        tags = keys_file.stem.removeprefix("keys_")
        assert savedmodel.show_signature_keys(savedmodel.get_meta_graph(graphs, tags)) == keys_file.read_text()
    signatures = list(expected.glob("signature_*.txt"))
    assert signatures
    for signature_file in signatures:
        for tags in (k.stem.removeprefix("keys_") for k in expected.glob("keys_*.txt")):
            prefix = f"signature_{tags}_"
            if signature_file.stem.startswith(prefix):
                meta_graph = savedmodel.get_meta_graph(graphs, tags)
                key = signature_file.stem.removeprefix(prefix)
                if key in meta_graph.signatures:
                    assert savedmodel.show_signature(meta_graph, key) == signature_file.read_text()
    mine = savedmodel.show_all(graphs)
    if (expected / "all.failed.txt").exists():  # that version's --all crashed (recorded): ours still prints
        assert not (expected / "all.txt").exists() and len(graphs) > 1, model
        assert mine.startswith("\nMetaGraphDef with tag-set: ")
        return
    theirs = (expected / "all.txt").read_text()
    assert normalized(mine) == normalized(theirs)
    assert len(mine.splitlines()) == len(theirs.splitlines())


def test_the_cli_prints_all_of_it() -> None:
    model = CORPUS / "2.21.0" / "module"
    result = ours("--dir", str(model), "--all")
    assert result.returncode == 0
    assert normalized(result.stdout) == normalized((model / "expected" / "all.txt").read_text())
    assert "\n  Function Name: 'poly'\n" in result.stdout and "DType: Point" in result.stdout


def test_reference_dtypes_have_their_names() -> None:
    import tfckpt
    model = CORPUS / "2.21.0" / "tf1_ref"
    text = savedmodel.show_signature(savedmodel.get_meta_graph(savedmodel.read_saved_model(model), "serve"),
                                     "serving_default")
    assert "dtype: DT_FLOAT_REF" in text and "dtype: 101" not in text
    ref = tfckpt.as_dtype("float32_ref")
    assert (ref.as_datatype_enum, ref.base_dtype.name, ref.is_ref) == (101, "float32", True)
    assert tfckpt.as_dtype(107).name == "string_ref" and not tfckpt.as_dtype("float32").is_ref
    writer = tfckpt.CheckpointWriter("unused-prefix")
    with pytest.raises(tfckpt.InvalidArgumentError, match="reference type"):
        writer.add("x", [1.0], "float32_ref")
    writer.abort()


META_FILES = sorted(CORPUS.glob("*/*.meta"))


@pytest.mark.parametrize("meta", META_FILES, ids=lambda p: p.parent.name)
def test_meta_files_read_as_tensorflow_reads_them(meta: Path) -> None:
    import json
    expected = json.loads(meta.with_suffix(".meta.json").read_text())
    graph = savedmodel.read_meta_graph_file(meta)
    assert list(graph.tags) == expected["tags"] and graph.tensorflow_version == expected["tensorflow_version"]
    assert [[v.name, v.dtype, list(v.shape or ()), v.trainable] for v in graph.variables] == expected["variables"]
    assert sorted(graph.ops) == expected["ops"]
    saver = graph.saver
    assert saver is not None
    assert [saver.filename_tensor_name, saver.save_tensor_name, saver.restore_op_name, saver.max_to_keep,
            saver.sharded, saver.keep_checkpoint_every_n_hours, saver.version] == expected["saver"]
    shown = subprocess.run([sys.executable, "-m", "tfckpt", "meta", "show", str(meta)], capture_output=True,
                           text=True, timeout=120, check=True).stdout
    for name, dtype, shape, _ in expected["variables"]:
        row = rf"^  {re.escape(name)} +{dtype} +{re.escape('[' + ', '.join(map(str, shape)) + ']')}"
        assert re.search(row, shown, re.MULTILINE), (name, shown)
    assert f"max_to_keep {expected['saver'][3]}" in shown


def test_meta_file_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        savedmodel.read_meta_graph_file(tmp_path / "nope.meta")
    (tmp_path / "bad.meta").write_bytes(b"\xff\xfe not a proto")
    with pytest.raises(CorruptionError, match="not a MetaGraphDef"):
        savedmodel.read_meta_graph_file(tmp_path / "bad.meta")
    result = subprocess.run([sys.executable, "-m", "tfckpt", "meta", "show", str(tmp_path / "bad.meta")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr


@pytest.mark.tf
def test_structured_values_print_as_tensorflows_own(tf) -> None:  # type: ignore[no-untyped-def]
    """Every StructuredValue kind, encoded by TensorFlow's coder: our decoding prints (str,
    repr, type name: what saved_model_cli uses) exactly as TensorFlow's decoding does."""
    import collections

    from tensorflow.python.framework.tensor_spec import BoundedTensorSpec
    from tensorflow.python.saved_model import nested_structure_coder

    from tfckpt._proto import struct_pb2
    from tfckpt.structured import decode_structure

    point = collections.namedtuple("Point", ["x", "y"])
    values = [
        None, True, False, 0, -7, 2**40, 1.0, 2.5, -0.0, "text", "",
        (), (1,), [1, "a", None], {"b": 1, "a": (2.0, "x")}, point(1, tf.TensorSpec([2], tf.float32)),
        tf.TensorSpec([None, 6, 10, 1], tf.float32, name="x"), tf.TensorSpec(None, tf.string),
        tf.TensorSpec([], tf.int64, name="step"), tf.TensorSpec([3], tf.bfloat16, name=None),
        BoundedTensorSpec([2], tf.float32, 0.0, 1.0, name="a"), BoundedTensorSpec([], tf.int32, -1, 5),
        tf.TensorShape([None, 3]), tf.TensorShape(None), tf.TensorShape([]), tf.float32, tf.qint8,
        tf.RaggedTensorSpec([None, None], tf.int32), tf.SparseTensorSpec([4, 4], tf.float32),
        (tf.TensorSpec([1], tf.float32), {"k": [tf.TensorSpec([2], tf.int8, name="k")]}),
    ]
    for value in values:
        stored = nested_structure_coder.encode_structure(value).SerializeToString()
        # Both decode what a file holds (parsed bytes): map order is the parser's, for both.
        theirs = nested_structure_coder.decode_proto(type(nested_structure_coder.encode_structure(None)).FromString(stored))
        mine = decode_structure(struct_pb2.StructuredValue.FromString(stored))
        assert (str(mine), repr(mine), type(mine).__name__) == (str(theirs), repr(theirs), type(theirs).__name__), value


SAVED_MODEL_FILES = sorted(CORPUS.glob("*/*/saved_model.pb"))


@pytest.mark.parametrize("pb", SAVED_MODEL_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_meta_show_reads_a_saved_models_meta_graph(pb: Path, tmp_path: Path) -> None:
    # A saved_model.pb is a SavedModel (schema version = 1, meta_graphs = 2), not a MetaGraphDef:
    # read as one it failed to parse or showed empty fields.
    meta_graphs = savedmodel.read_saved_model(pb.parent)
    shown = [savedmodel.show_meta_graph_file(meta_graph) for meta_graph in meta_graphs]
    assert savedmodel.show_meta_graph_file(savedmodel.read_meta_graph_file(pb)) == shown[0]
    for meta_graph, text in zip(meta_graphs, shown):
        assert savedmodel.show_meta_graph_file(savedmodel.read_meta_graph_file(pb, ",".join(meta_graph.tags))) == text
    with pytest.raises(NotFoundError, match="could not be found"):
        savedmodel.read_meta_graph_file(pb, "no-such-tag")
    # The text form too.
    proto = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    (tmp_path / "saved_model.pbtxt").write_text(text_format.MessageToString(proto))
    assert savedmodel.show_meta_graph_file(savedmodel.read_meta_graph_file(tmp_path / "saved_model.pbtxt")) == shown[0]
    command = [sys.executable, "-m", "tfckpt", "meta", "show", "--tag_set", ",".join(meta_graphs[-1].tags), str(pb)]
    assert subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout == shown[-1]


def test_meta_show_tag_set_needs_a_saved_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="holds one"):
        savedmodel.read_meta_graph_file(META_FILES[0], "serve")
    empty = tmp_path / "saved_model.pb"
    empty.write_bytes(saved_model_pb2.SavedModel(saved_model_schema_version=1).SerializeToString())
    with pytest.raises(CorruptionError, match="without any MetaGraphDef"):
        savedmodel.read_meta_graph_file(empty)
    (tmp_path / "cut.pb").write_bytes(b"\x08\x01\x12\x40" + b"\x0a" * 8)  # meta_graphs runs past the end
    with pytest.raises(CorruptionError, match="opens as a SavedModel"):
        savedmodel.read_meta_graph_file(tmp_path / "cut.pb")
