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
