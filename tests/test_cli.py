import json
import subprocess
import sys
from pathlib import Path

import pytest
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
    assert result.stdout.splitlines()[-1].startswith("# 1 tensor, 20 elements")


def test_usage_errors_exit_2() -> None:
    assert run().returncode == 2
    assert run("savedmodel", "show").returncode == 2


def test_filters_match_the_object_paths_users_see() -> None:
    """README's own example: `--filter 'model/*'` on the Keras example (keys start with
    optimizer/..., object paths with model/...)."""
    for extra in ([], ["--objects"]):
        result = run("ls", str(EXAMPLES / "keras_mlp"), "--filter", "model/*", *extra, "--json")
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)["tensors"]) == 4
    result = run("ls", str(EXAMPLES / "keras_mlp"), "--regex", "^model/.*bias$", "--objects")
    assert result.stdout.splitlines()[-1].startswith("# 2 tensors")


def test_a_filter_that_matches_nothing_says_so() -> None:
    result = run("ls", str(EXAMPLES / "keras_mlp"), "--filter", "nothing/*")
    assert result.returncode == 1 and result.stdout == ""
    assert "matches --filter 'nothing/*'" in result.stderr and result.stderr.count("\n") == 1


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    import numpy as np

    import tfckpt
    prefix = tfckpt.save({f"t{i:05d}": np.zeros(1) for i in range(20000)}, tmp_path / "big")
    result = subprocess.run(f"{sys.executable} -m tfckpt ls {prefix} | head -1", shell=True, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.stdout.split() == ["name", "dtype", "shape", "size"]
    assert result.stderr == ""


@pytest.mark.parametrize("entry", [
    "from tfckpt.cli import main\nsys.exit(main(sys.argv[1:]))\n",  # called from Python
    "from tfckpt.__main__ import main\nsys.exit(main())\n",  # the program, where reading commands end at once
], ids=["cli.main", "program"])
def test_ctrl_c_is_one_line_and_status_130(tmp_path: Path, entry: str) -> None:
    """Ctrl-C in the middle of a conversion (held there: the first tensor is in the output's
    temporary file, the second not yet), not at a moment a timer guesses: the partial output
    is removed, called from Python and in the program alike."""
    import signal

    import numpy as np

    import tfckpt
    prefix = tfckpt.save({"a": np.zeros(1000, np.uint8), "b": np.ones(1000, np.uint8)}, tmp_path / "ck", sync=False)
    held = (  # SIGINT handled as in a terminal: a test run started in the background (CI under
        # nohup, `cmd &`) passes SIGINT on ignored, and Python then never raises KeyboardInterrupt
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from tfckpt.formats import npz\n"
        "real_add = npz.NpzSink.add\n"
        "def add(self, name, value, dtype):\n"
        "    real_add(self, name, value, dtype)\n"
        "    print('in the middle', flush=True)\n"
        "    time.sleep(60)\n"
        "npz.NpzSink.add = add\n" + entry)
    process = subprocess.Popen([sys.executable, "-c", held, "convert", prefix, str(tmp_path / "x.npz")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "in the middle\n"
    assert [p for p in tmp_path.iterdir() if p.name.startswith("x.npz")]  # the output is being written
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err == "tfckpt: interrupted\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.data-00000-of-00001", "ck.index"]


def test_debug_is_accepted_after_the_subcommand(tmp_path: Path) -> None:
    result = run("ls", str(tmp_path / "missing"), "--debug")
    assert "Traceback" in result.stderr and "NotFoundError" in result.stderr


def test_convert_refuses_a_destination_whose_format_it_cannot_tell(tmp_path: Path) -> None:
    result = run("convert", str(FIXTURES / "tf1_saver"), str(tmp_path / "out.txt"))
    assert result.returncode == 1 and "cannot tell which format" in result.stderr
    assert list(tmp_path.iterdir()) == []
    result = run("convert", str(FIXTURES / "tf1_saver"), str(tmp_path / "out.txt"), "--to", "npz")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.txt").read_bytes()[:2] == b"PK"
    assert "safetensors (*.safetensors)" in run("convert", "--help").stdout


def test_convert_warns_about_patterns_that_match_nothing(tmp_path: Path) -> None:
    result = run("convert", str(EXAMPLES / "keras_mlp"), str(tmp_path / "w.npz"), "--rename", "^model/=net/")
    assert result.returncode == 0
    assert "rename pattern '^model/' matched no tensor; renames apply to checkpoint keys unless" in result.stderr
    result = run("convert", str(EXAMPLES / "keras_mlp"), str(tmp_path / "v.npz"), "--object-paths",
                 "--rename", "^model/=net/", "--include", "model/*")
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    import numpy as np
    assert all(name.startswith("net/") for name in np.load(tmp_path / "v.npz").files
               if name != "__tfckpt_structure__")  # the TF2 structure, kept for the way back


def test_verify_help_describes_every_argument() -> None:
    text = run("verify", "--help").stdout
    assert "checkpoint prefix, .index/.data file" in text and "print the report as JSON" in text


def test_the_version_has_one_source() -> None:
    """tfckpt.__version__ is the one place: the installed metadata, `--version` and the newest
    CHANGELOG entry all say the same."""
    import importlib.metadata
    import re
    import subprocess
    import sys
    from pathlib import Path

    import tfckpt
    assert importlib.metadata.version("tfckpt") == tfckpt.__version__
    shown = subprocess.run([sys.executable, "-m", "tfckpt", "--version"], capture_output=True, text=True,
                           timeout=60, check=True).stdout.strip()
    assert shown == f"tfckpt {tfckpt.__version__}"
    changelog = (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text()
    released = [v for v in re.findall(r"^## (\S+)", changelog, re.MULTILINE) if v != "Unreleased"]
    assert released[0] == tfckpt.__version__  # the newest release (an "Unreleased" section may come first)
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and "\nversion =" not in pyproject.split("[tool.")[0]
