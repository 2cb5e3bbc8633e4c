"""SavedModel inspection: `tfckpt savedmodel show`, compared with TF's saved_model_cli."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES

from tfckpt import savedmodel
from tfckpt.errors import CorruptionError, NotFoundError

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
    # --all: identical up to the op list, which needs TensorFlow to compute.
    theirs = _saved_model_cli("--dir", str(tmp_path), "--all")
    mine = ours("--dir", str(tmp_path), "--all").stdout
    assert theirs.startswith(mine) and theirs[len(mine):].startswith("The MetaGraph with tag set")
