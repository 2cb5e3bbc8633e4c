"""Round-3 outside audit of the newer entry points (npz/safetensors/Keras sources, rules,
asynchronous saves, settings, compat, SavedModel inspection): each test is the smallest input
that broke a promise of README "Guarantees" or docs/contracts.md, checked against the fix."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import tfckpt


def test_big_endian_npz_members_read_as_their_values(tmp_path: Path) -> None:
    """np.savez keeps '>f4' byte order in the .npy header: reading must honour it, not view the
    swapped bytes as little-endian (silently wrong values through load and convert)."""
    source = tmp_path / "be.npz"
    values = {"w": np.arange(6, dtype=">f4").reshape(2, 3), "i": np.arange(3, dtype=">i8"),
              "c": np.array([1 + 2j], dtype=">c8")}
    np.savez(source, **values)
    loaded = tfckpt.load(str(source))
    tfckpt.convert_checkpoint(str(source), str(tmp_path / "out" / "ckpt"))
    converted = tfckpt.load(str(tmp_path / "out" / "ckpt"))
    for name, value in values.items():
        np.testing.assert_array_equal(loaded[name], value)
        np.testing.assert_array_equal(converted[name], value)
        assert loaded[name].dtype.isnative


def test_big_endian_npz_member_named_by_the_dtypes_member_reads_as_its_value(tmp_path: Path) -> None:
    """A bfloat16 tensor stored (by another writer) as '>u2' bits under __tfckpt_dtypes__."""
    import json

    import ml_dtypes
    value = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
    source = tmp_path / "be.npz"
    np.savez(source, w=value.view(np.uint16).astype(">u2"), __tfckpt_dtypes__=np.array(json.dumps({"w": "bfloat16"})))
    np.testing.assert_array_equal(tfckpt.load(str(source))["w"], value)


@pytest.mark.parametrize(("argv", "message"), [(["no_such_script.py"], "can't open file .*no_such_script.py"),
                                               (["-c", "pass"], "unknown option '-c'")])
def test_compat_runner_usage_errors_exit_2_without_a_traceback(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The runner's docstring: exit 2 for a usage error (as `python missing.py` does), not a
    FileNotFoundError traceback from runpy with exit 1."""
    from tfckpt.compat import __main__ as runner
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        runner.main(argv)
    assert exited.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def _rules(rule: dict[str, object]) -> tfckpt.Rules:
    return tfckpt.Rules.from_json({"tfckpt_rules": 1, "rules": [rule]})


SIX = {"a": np.arange(6, dtype=np.float32)}
EMPTY = {"a": np.ones(0, np.float32)}


@pytest.mark.parametrize(("reshape", "tensors"), [
    ([[6], [-2, -3]], SIX),               # negative dims other than -1: numpy's ValueError
    ([[-1], [-1, -1]], {"a": np.ones(1, np.float32)}),  # two unknown dims
    ([[6], [2**70]], SIX),                # past int64: OverflowError in np.prod
    ([[-1], [2**62, 4]], EMPTY),          # int64 product wraps to 0 and passed the size check
    ([[-1], [0, -1]], EMPTY),             # -1 beside a 0 cannot be resolved
])
def test_rules_reshape_that_cannot_apply_is_an_invalid_argument_error(
        reshape: list[list[int]], tensors: dict[str, np.ndarray]) -> None:
    with pytest.raises(tfckpt.InvalidArgumentError, match="rule 1"):
        _rules({"match": "a", "name": "b", "reshape": reshape}).apply(tensors)


@pytest.mark.parametrize("sizes", [[-1, 7], [6], [1, 2, 3]])
def test_rules_split_sizes_must_be_one_non_negative_size_per_piece(sizes: list[int]) -> None:
    """[-1, 7] gave pieces of 5 and 1 (np.split's negative cut); [6] silently dropped 'c';
    [1, 2, 3] silently dropped the third piece."""
    with pytest.raises(tfckpt.InvalidArgumentError, match="rule 1: sizes"):
        _rules({"match": "a", "name": ["b", "c"], "split": 0, "sizes": sizes}).apply(SIX)


def test_rules_concat_sizes_must_be_one_per_piece() -> None:
    with pytest.raises(tfckpt.InvalidArgumentError, match="rule 1: sizes"):
        _rules({"match": ["a", "c"], "name": "b", "concat": 0, "sizes": [6, 6, 6]})


@pytest.mark.parametrize("pair", [["float32", "string"], ["string", "float32"], ["float32", "resource"],
                                  ["float32", "variant"]])
def test_rules_dtype_cast_is_between_numeric_dtypes_only(pair: list[str]) -> None:
    """A cast to string made an object array of floats, from string a raw ValueError, to
    resource/variant an AssertionError."""
    tensors = {"a": np.array([b"x"], dtype=object)} if pair[0] == "string" else SIX
    with pytest.raises(tfckpt.InvalidArgumentError, match="rule 1: dtype"):
        _rules({"match": "a", "name": "b", "dtype": pair}).apply(tensors)


def test_rules_concat_of_pieces_of_different_dtypes_is_refused() -> None:
    """float32 + int64 came out float64 while the plan said float32."""
    with pytest.raises(tfckpt.InvalidArgumentError, match="rule 1: cannot concatenate .*float32.*int64"):
        _rules({"match": ["a", "c"], "name": "b", "concat": 0}).apply(
            {"a": np.ones(6, np.float32), "c": np.ones(6, np.int64)})


def test_rules_file_with_a_huge_integer_literal_is_an_invalid_argument_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"tfckpt_rules": 1, "rules": [{"match": "a", "name": "b", "transpose": [' + "9" * 5000 + "]}]}")
    with pytest.raises(tfckpt.InvalidArgumentError, match="rules.json: not a JSON rules file"):
        tfckpt.load_rules(path)


def test_two_threads_saving_one_prefix_asynchronously_take_turns(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Both passed Background.wait() before either save started: the second joined a thread
    not yet started (RuntimeError: cannot join thread before it is started) or both wrote at
    once, though at most one save per prefix is in flight (tfckpt.asyncsave)."""
    import threading

    from tfckpt import asyncsave
    active, most = [0], [0]
    lock = threading.Lock()
    write = asyncsave.SnapshotWriter._write

    def counted(self: asyncsave.SnapshotWriter) -> None:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            write(self)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(asyncsave.SnapshotWriter, "_write", counted)
    prefix = str(tmp_path / "ck")
    errors: list[BaseException] = []
    for _ in range(8):
        barrier = threading.Barrier(2)

        def save(k: int, barrier: threading.Barrier = barrier) -> None:
            values = {"w": np.full(1 << 17, k, np.float32)}
            barrier.wait()
            try:
                tfckpt.save(values, prefix, asynchronous=True).wait()
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(k,)) for k in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert most[0] == 1
    assert set(np.unique(tfckpt.load(prefix)["w"])) <= {1.0, 2.0}


def test_keras_h5_deep_group_nesting_is_refused_quickly(tmp_path: Path) -> None:
    """1000 nested groups (a 1 MB file) took 3 s of CPU in h5py's visititems, 2000 took 16 s
    per call of load/ls/convert: quadratic. Now walked by tfckpt, refused past 64 levels."""
    import hostile_builders as hb

    from tfckpt.formats.keras_h5 import MAX_GROUP_DEPTH
    deep = hb.keras_h5_nesting(tmp_path / "deep", 1000)
    with pytest.raises(tfckpt.UnsupportedError, match=rf"m\.weights\.h5: group .* nests {MAX_GROUP_DEPTH + 1} deep"):
        tfckpt.load(deep)
    fits = hb.keras_h5_nesting(tmp_path / "fits", MAX_GROUP_DEPTH - 2)  # + vars: the deepest group allowed
    assert list(tfckpt.load(fits)) == ["/".join(["g"] * (MAX_GROUP_DEPTH - 2)) + "/vars/0"]


def test_keras_h5_walk_keeps_visititems_order_and_skips_links(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "m.weights.h5"
    with h5py.File(path, "w") as file:
        file["b/x"] = np.ones(1, np.float32)
        file["a/y/z"] = np.ones(1, np.float32)
        file["a/c"] = np.ones(1, np.float32)
        file["loop"] = file["a"]  # a hard link: the same group again
        file["soft"] = h5py.SoftLink("/a/c")
        file["external"] = h5py.ExternalLink("elsewhere.h5", "/x")
    assert list(tfckpt.load(str(path))) == ["a/c", "a/y/z", "b/x"]


def test_set_num_threads_takes_numpy_integers_and_refuses_the_rest_naming_them() -> None:
    """np.int64(4) (what len() of an array shape or np.argmax gives) was refused with
    'must be a positive integer, got 4'."""
    try:
        tfckpt.set_num_threads(np.int64(4))  # type: ignore[arg-type]
        assert tfckpt.get_num_threads() == 4 and type(tfckpt.get_num_threads()) is int
        for bad in (0, -1, 2.5, "4", True, np.float64(4)):
            with pytest.raises(tfckpt.InvalidArgumentError, match=r"positive integer, got .*" + type(bad).__name__):
                tfckpt.set_num_threads(bad)  # type: ignore[arg-type]
    finally:
        tfckpt.set_num_threads(None)
