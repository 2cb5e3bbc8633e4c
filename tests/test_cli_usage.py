"""The command line as a new user meets it: usage errors name what was wrong, tables line up,
listings come sorted, and numbers mean the same thing in every command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES

import tfckpt
from tfckpt import cli
from tfckpt.cli import main

MLP = str(EXAMPLES / "keras_mlp")


@pytest.mark.parametrize("argv", [["ls", "--regex", "[", MLP],
                                  ["inspect", "--file_name", MLP, "--count_exclude_pattern", "["]])
def test_a_bad_regular_expression_names_its_option_and_pattern(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    option = argv[argv.index("[") - 1]
    assert f"error: argument {option}: invalid regular expression '['" in err
    assert "error: error" not in err


def test_columns_line_up_when_every_cell_is_narrower_than_its_header(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = tfckpt.save({"a": np.int8(1), "b": np.zeros(2, np.int8)}, tmp_path / "m")
    assert main(["ls", prefix]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1:-1]
    for column in ("dtype", "shape"):
        start = header.index(column)
        assert all(row[start - 2:start] == "  " and row[start] != " " for row in rows), lines


def test_object_paths_are_listed_sorted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "--objects", MLP]) == 0
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:-1]]
    assert shown == sorted(shown) and "model/_functional/_operations/1/_kernel" in shown
    assert main(["stats", MLP]) == 0
    table = capsys.readouterr().out.split("\n\n")
    tensors = [line.split()[0] for line in table[0].splitlines()[1:]]
    modules = [line.split()[0] for line in table[1].splitlines()[1:-1]]
    assert tensors == sorted(tensors) and len(tensors) == 15
    assert modules == sorted(modules)


def test_show_help_says_show(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["show", "--help"])
    assert capsys.readouterr().out.startswith("usage: tfckpt show ")


@pytest.mark.parametrize("command", ["tree", "stats"])
@pytest.mark.parametrize("depth", ["0", "-1"])
def test_a_depth_below_one_is_refused(command: str, depth: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--depth", depth, MLP])
    assert exited.value.code == 2
    assert f"argument --depth: must be 1 or more, got {depth}" in capsys.readouterr().err


def test_convert_summarises_what_it_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "--drop-optimizer", MLP, str(tmp_path / "w.npz")]) == 0
    err = capsys.readouterr().err.splitlines()
    optimizer = [line for line in err if "optimizer state" in line]
    assert len(optimizer) == 1, err
    assert optimizer[0].startswith("skipped 10 tensors (optimizer/") and "... and 7 more): optimizer state" in optimizer[0]


@pytest.mark.parametrize("typo", ["ckpt-1.data", "ckpt-1.idx"])
def test_a_mistyped_suffix_is_not_taken_for_a_v1_checkpoint(typo: str) -> None:
    with pytest.raises(tfckpt.NotFoundError) as info:
        tfckpt.load_checkpoint(EXAMPLES / "keras_mlp" / typo)
    assert "bad magic" not in str(info.value)
    assert str(info.value).endswith(f"did you mean the checkpoint {str(EXAMPLES / 'keras_mlp' / 'ckpt-1')!r}?")


def test_every_json_output_names_the_same_quantities_alike(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {}
    for command in ("ls", "stats", "verify"):
        main([command, "--json", MLP])
        outputs[command] = json.loads(capsys.readouterr().out)
    ls, stats, verify = outputs["ls"], outputs["stats"], outputs["verify"]
    assert set(ls["total"]) == set(stats["total"]) == {"tensors", "elements", "bytes"}
    assert set(verify["total"]) == {"tensors", "bytes"}
    for row in [*ls["tensors"], *stats["tensors"], *stats["modules"]]:
        assert {"elements", "bytes"} <= set(row) and not {"size", "nbytes", "parameters"} & set(row), row
    graph = next(row for row in ls["tensors"] if row["name"] == "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert ls["total"]["bytes"] == verify["total"]["bytes"]  # every key, the graph included
    assert stats["total"]["bytes"] == ls["total"]["bytes"] - graph["bytes"]  # numeric tensors only
    assert stats["total"]["tensors"] == ls["total"]["tensors"] - 1


def test_a_checkpoint_directory_named_like_a_command_is_reached_as_dot_slash_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tfckpt.save({"w": np.zeros(2)}, tmp_path / "ls" / "model")
    monkeypatch.chdir(tmp_path)
    assert main(["./ls"]) == 0
    assert capsys.readouterr().out.endswith("in ./ls/model\n")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "is written `./ls`" in " ".join(capsys.readouterr().out.split())


def test_a_subcommand_added_to_the_parser_is_dispatched_with_no_other_list_to_update(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = cli.build_parser

    def with_newcmd() -> argparse.ArgumentParser:
        parser = real()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.add_parser("newcmd").set_defaults(handler=lambda args: 42)
        return parser

    monkeypatch.setattr(cli, "build_parser", with_newcmd)
    assert cli.main(["newcmd"]) == 42  # not `tfckpt ls newcmd`
    assert "newcmd" in cli.subcommands(with_newcmd())
