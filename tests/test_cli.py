import json
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES, FIXTURES


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfckpt", *args], capture_output=True, text=True, timeout=120, check=False)


def test_lists_the_example_checkpoint() -> None:
    result = run(str(EXAMPLES / "keras_mlp"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "dtype", "shape", "size"]
    row = next(line for line in lines if line.startswith("save_counter/"))
    assert row.split()[1:] == ["int64", "[]", "8", "B"]
    kernel = next(line for line in lines if line.startswith("optimizer/_trainable_variables/0/"))
    assert kernel.split()[1:] == ["float32", "[4,", "3]", "48", "B"]
    assert lines[-1].startswith("# 16 tensors")


def test_json_output() -> None:
    result = run(str(FIXTURES / "tf1_saver"), "--json")
    data = json.loads(result.stdout)
    assert {t["name"]: t["shape"] for t in data["tensors"]}["dense/kernel"] == [3, 4]


def test_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("tfckpt: error:")
    assert "Traceback" not in result.stderr


def test_ls_filters_objects_and_optimizer_hiding() -> None:
    result = run("ls", str(EXAMPLES / "keras_mlp"), "--objects", "--no-optimizer", "--json")
    names = [t["path"] or t["name"] for t in json.loads(result.stdout)["tensors"]]
    assert "model/_functional/_operations/1/_kernel" in names
    assert not any("_variables" in n or "_iterations" in n for n in names)
    result = run(str(FIXTURES / "tf1_saver"), "--filter", "dense/*")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:-1]] == ["dense/bias", "dense/kernel"]
    result = run(str(FIXTURES / "tf1_saver"), "--regex", "^emb")
    assert result.stdout.splitlines()[-1].startswith("# 1 tensors, 20 elements")


def test_usage_errors_exit_2() -> None:
    assert run().returncode == 2
    assert run("savedmodel", "show").returncode == 2
