"""Audit round 3, second auditor: reproductions found independently of test_audit_round3.py
(Keras HDF5 external storage and deflated archives, rules files, asynchronous saves of one
object from two threads, ``python -m tfckpt.compat``), each the smallest input that broke a
promise. Its big-endian npz cases duplicate test_audit_round3.py's and were left there."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt import asyncsave
from tfckpt.rules import Rules

SRC = Path(__file__).resolve().parents[1] / "src"


def rules(*entries: dict[str, object]) -> Rules:
    return Rules.from_json({"tfckpt_rules": 1, "rules": list(entries)})


# ---- npz sources and destinations ----------------------------------------------------------

def test_a_weights_h5_dataset_stored_in_an_external_file_is_refused(tmp_path: Path) -> None:
    """HDF5's external storage would read any local file (here 1 GiB of /dev/zero) for a
    1-KiB input."""
    import h5py
    with h5py.File(tmp_path / "x.weights.h5", "w") as f:
        f.create_dataset("x", shape=(2**28,), dtype="f4", external=[("/dev/zero", 0, h5py.h5f.UNLIMITED)])
    with pytest.raises(tfckpt.UnsupportedError, match="external"):
        tfckpt.convert_checkpoint(tmp_path / "x.weights.h5", tmp_path / "out.npz")


def _compressed_keras(path: Path, datasets: int) -> None:
    import h5py
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for i in range(datasets):
            f.create_dataset(f"layers/l{i}/vars/0", data=np.full(256, i, np.float32))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.weights.h5", buffer.getvalue())


def test_a_keras_archive_with_a_deflated_weights_member_is_decompressed_once(tmp_path: Path,
                                                                           monkeypatch: Any) -> None:
    """h5py seeks back for every object header, and zipfile seeks back in a deflated member by
    decompressing it again from the start: 1,024 datasets took 10 s (4x the datasets, 10x the
    time). Counted as the bytes the zip member yields, which must be about its size."""
    _compressed_keras(tmp_path / "m.keras", 256)
    size = zipfile.ZipFile(tmp_path / "m.keras").getinfo("model.weights.h5").file_size
    yielded = [0]
    read = zipfile.ZipExtFile.read

    def counted(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        data = read(self, n)
        yielded[0] += len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counted)
    tfckpt.convert_checkpoint(tmp_path / "m.keras", tmp_path / "o.npz")
    assert yielded[0] <= 2 * size, (yielded[0], size)
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["layers/l255/vars/0"], np.full(256, 255, np.float32))


# ---- rules files ---------------------------------------------------------------------------

@pytest.mark.parametrize("reshape", [[[1], [-1, -1]], [[2, 3], [-2, -3]], [[2, 3], [2**70]],
                                     [[0], [2**32, 2**32, 3]]], ids=["two -1", "negative", "2^70", "wraps"])
def test_a_reshape_rule_no_array_can_take_is_an_invalid_argument(reshape: list[list[int]]) -> None:
    size = int(np.prod(reshape[0]))
    with pytest.raises(tfckpt.InvalidArgumentError, match="reshape"):
        rules({"match": "w", "name": "v", "reshape": reshape}).apply(
            {"w": np.zeros(reshape[0] if size else 0, np.float32)})


def test_a_split_rule_with_negative_sizes_is_refused() -> None:
    with pytest.raises(tfckpt.InvalidArgumentError, match="sizes"):
        rules({"match": "w", "name": ["a", "b"], "split": 0, "sizes": [-1, 3]})


@pytest.mark.parametrize("to", ["resource", "variant", "string"])
def test_a_dtype_rule_to_a_non_numeric_dtype_is_refused(to: str) -> None:
    with pytest.raises(tfckpt.InvalidArgumentError, match="dtype"):
        rules({"match": "w", "name": "v", "dtype": ["float32", to]})


@pytest.mark.parametrize("regex", ["a{4294967296}", "(" * 5000 + "w" + ")" * 5000], ids=["repeat", "nesting"])
def test_a_regex_python_cannot_compile_is_an_invalid_argument(regex: str) -> None:
    with pytest.raises(tfckpt.InvalidArgumentError, match="regex"):
        rules({"match": regex, "name": "v"})


def test_load_rules_of_a_missing_file_or_a_directory_or_a_huge_number_raises_tfckpt_errors(tmp_path: Path) -> None:
    with pytest.raises(tfckpt.NotFoundError):
        tfckpt.load_rules(tmp_path / "none.json")
    with pytest.raises(tfckpt.NotFoundError, match="no rules file there"):
        tfckpt.load_rules(tmp_path)
    (tmp_path / "big.json").write_text('{"tfckpt_rules": 1, "rules": [{"match": "w", "name": "v", "split": '
                                       + "9" * 5000 + "}]}")
    with pytest.raises(tfckpt.InvalidArgumentError):
        tfckpt.load_rules(tmp_path / "big.json")


# ---- asynchronous saves --------------------------------------------------------------------

def test_two_threads_saving_one_checkpoint_asynchronously_do_not_share_a_snapshot(tmp_path: Path,
                                                                                 monkeypatch: Any) -> None:
    """Thread A's save is still snapshotting (held at tensor ``z``, after ``w``) when thread B saves the same
    object: B must wait for A, not copy its own values into the buffer A is about to write."""
    weights = np.zeros(4, np.float32)
    ckpt = tfckpt.Checkpoint(w=weights, z=np.zeros(1, np.float32))
    held, release = threading.Event(), threading.Event()
    snapshot = asyncsave.Background.snapshot

    def slow_snapshot(self: asyncsave.Background, name: str, array: np.ndarray) -> np.ndarray:
        if threading.current_thread().name == "A" and name.startswith("z/"):
            held.set()
            release.wait(10)
        return snapshot(self, name, array)

    monkeypatch.setattr(asyncsave.Background, "snapshot", slow_snapshot)
    paths: dict[str, str] = {}
    first = threading.Thread(target=lambda: paths.setdefault("A", ckpt.write(tmp_path / "a", asynchronous=True)),
                             name="A")
    first.start()
    assert held.wait(10)
    second = threading.Thread(target=lambda: paths.setdefault("B", ckpt.write(tmp_path / "b", asynchronous=True)),
                              name="B")
    weights += 7  # B saves 7s; A snapshotted zeros before
    second.start()
    time.sleep(0.3)
    release.set()
    first.join(10)
    second.join(10)
    ckpt.wait()
    assert tfckpt.load(tmp_path / "a")["w/.ATTRIBUTES/VARIABLE_VALUE"][0] == 0
    assert tfckpt.load(tmp_path / "b")["w/.ATTRIBUTES/VARIABLE_VALUE"][0] == 7


# ---- python -m tfckpt.compat ---------------------------------------------------------------

def _compat(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # (no empty entry: an empty PYTHONPATH item is the working directory)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "tfckpt.compat", *args], cwd=cwd, env=env, capture_output=True, check=False,
                          text=True, timeout=60)


def test_compat_with_a_missing_script_is_a_usage_error_as_python_makes_it(tmp_path: Path) -> None:
    done = _compat("nope.py", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "nope.py" in done.stderr and "Traceback" not in done.stderr


def test_compat_with_a_missing_module_says_so_without_a_traceback(tmp_path: Path) -> None:
    done = _compat("-m", "no_such_module_here", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "No module named" in done.stderr and "Traceback" not in done.stderr


def test_compat_does_not_put_the_working_directory_on_a_scripts_path(tmp_path: Path) -> None:
    """``python script.py`` finds modules beside the script, not in the working directory."""
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "only_in_cwd.py").write_text("")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "beside.py").write_text("")
    (tmp_path / "scripts" / "run.py").write_text("import beside\nimport only_in_cwd\n")
    done = _compat(str(tmp_path / "scripts" / "run.py"), cwd=tmp_path / "cwd")
    assert done.returncode == 1 and "No module named 'only_in_cwd'" in done.stderr, done.stderr
