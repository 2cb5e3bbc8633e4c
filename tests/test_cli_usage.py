"""The command line as a new user meets it: usage errors name what was wrong, tables line up,
listings come sorted, and numbers mean the same thing in every command."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES

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
