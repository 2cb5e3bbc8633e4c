"""Names holding terminal control sequences are printed escaped in human output (JSON stays
exact), and normal names are printed as they are (inspect stays TF's output)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.cli import main, shown

CLEAR = "evil\x1b[2J\x1b[H"
CLIPBOARD = "clip\x1b]52;c;cm0gLXJmIH4=\x07"
BIDI = "name\u202etxt.exe"
HOSTILE = [CLEAR, CLIPBOARD, BIDI, "line\nbreak"]


@pytest.fixture
def hostile(tmp_path: Path) -> str:
    return str(tfckpt.save({name: np.ones(2, np.float32) for name in [*HOSTILE, "dense/kernel"]},
                           tmp_path / "h"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.mark.parametrize("command", [["ls"], ["tree"], ["stats"], ["inspect", "--all_tensor_names"],
                                     ["diff", "OTHER"]])
def test_control_characters_are_escaped_in_human_output(hostile: str, tmp_path: Path, command: list[str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    other = str(tfckpt.save({"x": np.ones(1)}, tmp_path / "other"))
    argv = [command[0], *(["--file_name", hostile] if command[0] == "inspect" else [hostile]),
            *[other if arg == "OTHER" else arg for arg in command[1:]]]
    _, out = run(capsys, *argv)
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "line\nbreak" not in out
    assert "evil\\x1b[2J\\x1b[H" in out and "clip\\x1b]52;c;cm0gLXJmIH4=\\x07" in out
    assert "name\\u202etxt.exe" in out and "line\\nbreak" in out and "kernel" in out


def test_verify_and_error_lines_are_escaped(hostile: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "ls", hostile, "--filter", "nothing\x1b[2J")
    assert status == 1 and "\x1b" not in out and "nothing\\x1b[2J" in out
    status, out = run(capsys, "ls", f"{hostile}\x1b[2J")  # the error names the path given
    assert status == 1 and "\x1b" not in out and "\\x1b[2J" in out
    data = Path(f"{hostile}.data-00000-of-00001")
    data.write_bytes(data.read_bytes() + b"\x1b[2J")  # bytes after the last tensor: a problem
    status, out = run(capsys, "verify", hostile)
    assert status == 1 and "\x1b" not in out


def test_json_output_keeps_names_exact(hostile: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, "ls", hostile, "--json")
    assert {row["name"] for row in json.loads(out)["tensors"]} == {*HOSTILE, "dense/kernel"}


def test_printable_names_are_unchanged() -> None:
    for name in ["dense/kernel", "層/重み", "a b", "x\\x1b", "émbedding"]:
        assert shown(name) == name
    assert shown("\udcff") == "\\udcff"  # an undecodable byte: printable, not a crash in print()
