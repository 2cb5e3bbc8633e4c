"""The CLI tools through the real entry point: inspect, verify, diff, convert."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, FIXTURES
from fixtures import values
from test_bundle import assert_same

import tfckpt
import tfckpt.coding
from tfckpt.bundle.naming import data_filename
from tfckpt.convert import convert


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfckpt", *args], capture_output=True, text=True,
                          timeout=300, check=False)


# ---- inspect --------------------------------------------------------------------------------

def test_inspect_output_without_tensorflow() -> None:
    prefix = str(FIXTURES / "tf1_saver" / "model.ckpt-3")
    result = run("inspect", f"--file_name={prefix}", "--tensor_name=dense/bias", "--count_exclude_pattern=dense")
    assert result.stdout == ("tensor: dense/bias (float32) [4]\n[ 0.5 -0.5  1.5  2.5]\n"
                             "# Excluding 2 tensors (16 params) that match dense when counting.\n"
                             "# Total number of params: 22\n")
    assert run("inspect", f"--file_name={prefix}", "--tensor_name=nope").stdout == "Tensor nope not found in checkpoint\n"
    names = run("inspect", "--file_name", prefix, "--all_tensor_names").stdout.splitlines()
    assert names[0] == "tensor: counter (int64) []" and names[-1] == "# Total number of params: 38"
    usage = run("inspect")
    assert usage.returncode == 1 and usage.stdout.startswith("Usage: inspect_checkpoint --file_name=")


def test_inspect_accepts_an_index_file_without_tf_hint(tmp_path: Path) -> None:
    result = run("inspect", f"--file_name={FIXTURES / 'tf1_saver' / 'model.ckpt-3.index'}", "--all_tensor_names")
    assert result.stderr == ""  # TF's "Try removing the '.' and extension" hint does not apply
    assert "tensor: dense/kernel (float32) [3, 4]" in result.stdout
    junk = tmp_path / "x.index"
    junk.write_bytes(b"\0" * 100)
    result = run("inspect", f"--file_name={junk}")
    assert result.returncode == 1 and "Try removing" not in result.stderr
    assert "not a TensorFlow checkpoint index (bad magic number" in result.stderr


def _tf_inspect(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "tensorflow.python.tools.inspect_checkpoint", *args],
                          capture_output=True, text=True, timeout=300, check=True).stdout


@pytest.mark.tf
@pytest.mark.parametrize("args", [
    ["--file_name={tf1_saver}"],
    ["--file_name={tf1_saver}", "--all_tensors"],
    ["--file_name={tf1_saver}", "--all_tensor_names", "--count_exclude_pattern=^dense"],
    ["--file_name={tf1_saver}", "--tensor_name=embedding", "--printoptions", "precision=2", "threshold=5"],
    ["--file_name={partitioned}", "--all_tensors=True"],
    ["--file_name={keras}", "--all_tensor_names"],
    ["--file_name={strings}", "--tensor_name=vector"],
    ["--file_name={all_dtypes}", "--tensor_name=bfloat16/matrix"],
])
def test_inspect_matches_tensorflow_line_by_line(tf, args: list[str]) -> None:
    paths = {"tf1_saver": FIXTURES / "tf1_saver" / "model.ckpt-3", "partitioned": FIXTURES / "tf1_partitioned" / "model.ckpt",
             "keras": FIXTURES / "keras" / "ckpt-1", "strings": FIXTURES / "strings" / "ckpt",
             "all_dtypes": FIXTURES / "all_dtypes" / "ckpt"}
    filled = [a.format(**paths) for a in args]
    ours = run("inspect", *filled)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.splitlines() == _tf_inspect(*filled).splitlines()


# ---- verify ---------------------------------------------------------------------------------

def _copy(tmp_path: Path, name: str = "tf1_saver") -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def test_verify_good_and_bad(tmp_path: Path) -> None:
    for fixture in ("tf1_saver", "keras", "tf1_partitioned", "tf1_sharded", "iterator", "v1_single"):
        result = run("verify", str(FIXTURES / fixture))
        assert result.returncode == 0 and result.stdout.startswith("# OK"), (fixture, result.stdout)
    directory = _copy(tmp_path)
    prefix = str(directory / "model.ckpt-3")
    reader = tfckpt.load_checkpoint(prefix)
    info = reader.tensor_info("embedding")
    data = Path(data_filename(prefix, 0, 1))
    raw = bytearray(data.read_bytes())
    raw[info.offset + 5] ^= 0x01
    data.write_bytes(bytes(raw))
    result = run("verify", prefix, "--json")
    assert result.returncode == 1
    problems = json.loads(result.stdout)["problems"]
    assert len(problems) == 1, problems  # reported once
    assert {k: problems[0][k] for k in ("key", "file", "offset")} == {
        "key": "embedding", "file": str(data), "offset": info.offset}
    assert f"key 'embedding': checksum mismatch: stored 0x{tfckpt.coding.unmask(info.masked_crc32c):08x}" in \
        problems[0]["message"]


def test_verify_detects_index_and_data_from_different_saves(tmp_path: Path) -> None:
    old = tfckpt.save({"w": np.zeros(100, np.float32), "b": np.zeros(3, np.float32)}, tmp_path / "old")
    new = tfckpt.save({"w": np.ones(100, np.float32), "b": np.ones(3, np.float32), "extra": np.ones(50)}, tmp_path / "new")
    shutil.copy(data_filename(new, 0, 1), data_filename(old, 0, 1))  # new data under the old index
    result = run("verify", old)
    assert result.returncode == 1
    assert "checksum mismatch" in result.stdout and "different saves" in result.stdout
    Path(data_filename(old, 0, 1)).unlink()
    assert "data file is missing" in run("verify", old).stdout or "does not exist" in run("verify", old).stdout
    assert run("verify", str(tmp_path / "nothing")).returncode == 1


# ---- diff -----------------------------------------------------------------------------------

def test_diff_reports_and_exit_codes(tmp_path: Path) -> None:
    a = tfckpt.save({"same": np.arange(4), "val": np.zeros(3), "dt": np.zeros(2, np.float32),
                     "shape": np.zeros(2), "gone": [1], "s": [b"x"]}, tmp_path / "a")
    b = tfckpt.save({"same": np.arange(4), "val": np.array([0, 0.5, 1e-7]), "dt": np.zeros(2, np.float64),
                     "shape": np.zeros(3), "new": [1], "s": [b"y"]}, tmp_path / "b")
    result = run("diff", a, b)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "- gone" in lines and "+ new" in lines
    assert "~ dt: dtype float32 -> float64" in lines and "~ shape: shape [2] -> [3]" in lines
    assert "~ val: 2/3 values differ, max abs diff 0.5" in lines and "~ s: 1/1 values differ" in lines
    data = json.loads(run("diff", a, b, "--atol", "1e-6", "--json").stdout)
    assert [v["name"] for v in data["value_changed"]] == ["s", "val"] and data["value_changed"][1]["mismatched"] == 1
    assert run("diff", a, a).returncode == 0


# ---- convert --------------------------------------------------------------------------------

def test_convert_checkpoint_to_safetensors_read_by_the_real_package(tmp_path: Path) -> None:
    from safetensors.numpy import load_file
    target = tmp_path / "model.safetensors"
    result = run("convert", str(EXAMPLES / "keras_mlp"), str(target), "--object-paths", "--drop-optimizer",
                 "--drop-save-counter", "--rename", "^model/_functional/_operations/=layers.")
    assert result.returncode == 0, result.stderr
    loaded = load_file(str(target))
    assert sorted(loaded) == ["layers.1/_kernel", "layers.1/bias", "layers.2/_kernel", "layers.2/bias"]
    reader = tfckpt.load_checkpoint(EXAMPLES / "keras_mlp")
    np.testing.assert_array_equal(loaded["layers.1/_kernel"],
                                  reader["optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"])
    assert "skipped 10 tensors (optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE, " in result.stderr
    assert "... and 7 more): optimizer state" in result.stderr  # one line for them all


def test_every_safetensors_dtype_both_ways(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    from tfckpt.formats.safetensors import SAFETENSORS_DTYPES
    tensors = {name: value for name, (tf_name, value) in values.all_dtypes().items()
               if tf_name in SAFETENSORS_DTYPES and not tf_name.startswith("float8")}
    report = convert(FIXTURES / "all_dtypes" / "ckpt", tmp_path / "ours.safetensors", include=list(tensors))
    theirs = load_file(str(tmp_path / "ours.safetensors"))
    for name, value in tensors.items():
        assert_same(theirs[name], value)
    skipped = dict(convert(FIXTURES / "all_dtypes" / "ckpt", tmp_path / "all.safetensors").skipped)
    assert skipped["complex128/matrix"] == "safetensors cannot store complex128"
    save_file(tensors, str(tmp_path / "package.safetensors"))
    convert(tmp_path / "package.safetensors", tmp_path / "back")
    back = tfckpt.load(tmp_path / "back")
    for name, value in tensors.items():
        assert_same(back[name], value)
    # float8, which the package cannot hand to numpy, round-trips through tfckpt's reader.
    f8 = {n: v for n, (t, v) in values.all_dtypes().items() if t in ("float8_e4m3fn", "float8_e5m2")}
    convert(FIXTURES / "all_dtypes" / "ckpt", tmp_path / "f8.safetensors", include=list(f8))
    convert(tmp_path / "f8.safetensors", tmp_path / "f8back")
    for name, value in f8.items():
        assert_same(tfckpt.load(tmp_path / "f8back")[name], value)
    assert report.skipped and all(reason == "not included" for _, reason in report.skipped)


def test_npz_round_trip_keeps_every_dtype(tmp_path: Path) -> None:
    convert(FIXTURES / "all_dtypes" / "ckpt", tmp_path / "all.npz")
    convert(tmp_path / "all.npz", tmp_path / "back")
    original, back = tfckpt.load_checkpoint(FIXTURES / "all_dtypes" / "ckpt"), tfckpt.load_checkpoint(tmp_path / "back")
    for name in original:
        assert back.tensor_info(name).dtype == original.tensor_info(name).dtype
        assert_same(back[name], original[name])
    with np.load(tmp_path / "all.npz") as plain:  # a plain numpy user sees ordinary arrays
        assert plain["float32/matrix"].dtype == np.float32


def test_cast_filters_and_collisions(tmp_path: Path) -> None:
    source = tfckpt.save({"a/.ATTRIBUTES/VARIABLE_VALUE": np.ones(3, np.float32),
                          "b/.ATTRIBUTES/VARIABLE_VALUE": np.ones(3, np.float64), "a": np.zeros(1)}, tmp_path / "src")
    report = convert(source, tmp_path / "out.npz", cast={"float32": "bfloat16"}, exclude=["a"])
    assert [w for _, w in report.written] == ["a/.ATTRIBUTES/VARIABLE_VALUE", "b/.ATTRIBUTES/VARIABLE_VALUE"]
    out = tfckpt.load_checkpoint(convert(tmp_path / "out.npz", tmp_path / "ck").destination)
    assert out.tensor_info("a/.ATTRIBUTES/VARIABLE_VALUE").dtype.name == "bfloat16"
    with pytest.raises(tfckpt.InvalidArgumentError, match="would both be written as 'a'"):
        convert(source, tmp_path / "clash.safetensors", strip_attributes=True)
    assert not (tmp_path / "clash.safetensors").exists()


def test_damaged_npz_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = run("convert", str(bad), str(tmp_path / "x"))
    assert result.returncode == 1 and "not a readable .npz" in result.stderr and "Traceback" not in result.stderr
    assert "Traceback" in run("--debug", "convert", str(bad), str(tmp_path / "x")).stderr


def test_damaged_safetensors_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    result = run("convert", str(bad), str(tmp_path / "x"))
    assert result.returncode == 1 and "header length" in result.stderr and "Traceback" not in result.stderr


def test_progress_bar_only_on_terminals(capsys: pytest.CaptureFixture[str]) -> None:
    from tfckpt.cli import ProgressBar
    ProgressBar("convert", enabled=False)(1, 1, 10, 10)
    assert capsys.readouterr().err == ""
    ProgressBar("convert", enabled=True)(2, 2, 2048, 2048)
    assert "convert [##############################] 2/2 tensors" in capsys.readouterr().err


@pytest.mark.tf
def test_tensorflow_loads_a_checkpoint_converted_from_safetensors(tf, tmp_path: Path) -> None:
    from safetensors.numpy import save_file
    weights = {"dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4), "dense/bias": np.ones(4, np.float32)}
    save_file(weights, str(tmp_path / "w.safetensors"))
    assert run("convert", str(tmp_path / "w.safetensors"), str(tmp_path / "ckpt")).returncode == 0
    reader = tf.train.load_checkpoint(str(tmp_path / "ckpt"))
    for name, value in weights.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        kernel = tf.compat.v1.Variable(np.zeros((3, 4), np.float32), name="dense/kernel")
        tf.compat.v1.train.Saver([kernel]).restore(sess, str(tmp_path / "ckpt"))
        np.testing.assert_array_equal(sess.run(kernel), weights["dense/kernel"])


def test_a_failed_convert_leaves_no_destination_directory(tmp_path: Path) -> None:
    source = tfckpt.save({"a": np.ones(3), "b": np.ones(3)}, tmp_path / "src")
    calls = []

    def fail_on_second(done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        calls.append(done)
        if done == 1:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of a conversion

    with pytest.raises(KeyboardInterrupt):
        convert(source, tmp_path / "new" / "deeper" / "out.ckpt", progress=fail_on_second)
    assert calls == [1] and not (tmp_path / "new").exists()


def test_a_conversion_is_planned_from_the_listing_alone() -> None:
    """plan_conversion reads no tensor: every read() here would fail."""
    from tfckpt.convert import plan_conversion
    from tfckpt.dtypes import as_dtype
    from tfckpt.formats import SourceTensor

    def never() -> np.ndarray:
        raise AssertionError("planning must not read values")

    listing = [
        SourceTensor("model/w/.ATTRIBUTES/VARIABLE_VALUE", as_dtype("float32"), (2, 2), never, object_path="model/w"),
        SourceTensor("optimizer/m/.ATTRIBUTES/VARIABLE_VALUE", as_dtype("float32"), (2, 2), never,
                     optimizer_state=True, object_path="optimizer/m"),
        SourceTensor("names", as_dtype("string"), (3,), never),
        SourceTensor("_CHECKPOINTABLE_OBJECT_GRAPH", as_dtype("string"), (), never),
    ]
    plan = plan_conversion(listing, "safetensors", object_paths=True, drop_optimizer=True,
                           rename=[("^model/", "net/"), ("^nothing", "x")], cast={"float32": "bfloat16"})
    assert [(t.name, t.dtype.name) for t in plan.tensors] == [("net/w", "bfloat16")]
    assert dict(plan.skipped) == {"optimizer/m/.ATTRIBUTES/VARIABLE_VALUE": "optimizer state",
                                  "names": "safetensors cannot store string",
                                  "_CHECKPOINTABLE_OBJECT_GRAPH": "object graph (TF-only metadata)"}
    assert plan.warnings == ["rename pattern '^nothing' matched no tensor"]
    with pytest.raises(tfckpt.InvalidArgumentError, match="would both be written as 'same'"):
        plan_conversion(listing[:2], "npz", rename=[("^.*$", "same")])
