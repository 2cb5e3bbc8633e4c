"""Every public function and method that takes a path or a name refuses a wrong type (None, an
int, bytes) with tfckpt.ArgumentTypeError - a TypeError, as TensorFlow raises, and a TfckptError
naming the parameter - before it opens or writes anything.

The cases are found, not listed: each exported function, each exported class's constructor and
public methods, and `tfckpt.distributed`'s functions; a parameter is a path when its annotation
says PathLike, a name when it is a required `str` (or a list of either). The other required
parameters get a valid value from VALID, so only the one under test is wrong."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import EXAMPLES

import tfckpt
from tfckpt import distributed

MLP = str(EXAMPLES / "keras_mlp")
WRONG: list[Any] = [None, 7, MLP.encode()]


def valid(tmp: Path) -> dict[str, Any]:
    """A good value for each required parameter that is not under test (writes go to ``tmp``)."""
    out = str(tmp / "out" / "model")
    return {
        "path": MLP, "a": MLP, "b": MLP, "source": MLP, "checkpoint_prefix": out, "checkpoint_dir": MLP,
        "save_dir": str(tmp / "out"), "model_checkpoint_path": "model", "checkpoint_prefixes": [out],
        "prefix": out, "prefixes": [out], "destination": out, "file_prefix": out, "save_path": out,
        "directory": str(tmp / "managed"), "name": "save_counter", "names": ["save_counter"],
        "tensors": {"w": np.zeros(2)}, "value": np.zeros(2), "full_shape": [4], "piece": "0,2",
        "checkpoint": tfckpt.Checkpoint(), "max_to_keep": 1, "rank": 0, "world_size": 1,
        "var_list": {"w": np.zeros(2, np.float32)}, "initial_value": 1.0, "barrier": lambda: None,
        "last_checkpoints": [out], "checkpoint_paths": [out], "array": np.zeros(2),
        "tf_dtype": tfckpt.as_dtype("float64"),
    }


def instances(tmp: Path) -> dict[type, Callable[[], Any]]:
    """How to make an instance of each class whose methods are checked."""
    return {
        tfckpt.CheckpointReader: lambda: tfckpt.load_checkpoint(MLP),
        tfckpt.CheckpointWriter: lambda: tfckpt.CheckpointWriter(str(tmp / "w" / "model")),
        tfckpt.Saver: lambda: tfckpt.Saver({"w": tfckpt.Variable(np.zeros(2, np.float32))}),
        tfckpt.Checkpoint: lambda: tfckpt.Checkpoint(w=tfckpt.Variable(np.zeros(2, np.float32))),
        tfckpt.CheckpointManager: lambda: tfckpt.CheckpointManager(tfckpt.Checkpoint(), str(tmp / "m"), 1),
    }


def checked(parameter: inspect.Parameter) -> bool:
    note = str(parameter.annotation)
    return "PathLike" in note or (parameter.default is inspect.Parameter.empty
                                  and note in ("str", "list[str]", "Iterable[str]", "str | Store"))


def entry_points() -> Iterator[tuple[str, Callable[..., Any] | None, type | None, inspect.Parameter]]:
    """``(id, function, class, parameter)`` for every checked parameter."""
    owners = [(name, getattr(tfckpt, name)) for name in tfckpt.__all__]
    owners += [(f"distributed.{name}", getattr(distributed, name)) for name in distributed.__all__]
    for label, owner in owners:
        if inspect.isfunction(owner):
            members = [(label, owner, None)]
        elif inspect.isclass(owner) and not issubclass(owner, BaseException) and owner in CLASSES:
            members = [(f"{label}()", owner, None)]
            members += [(f"{label}.{name}", member, owner) for name, member in vars(owner).items()
                        if inspect.isfunction(member) and not name.startswith("_")]
        else:
            continue
        for where, function, cls in members:
            for parameter in inspect.signature(function).parameters.values():
                if parameter.name != "self" and checked(parameter):
                    yield where, (function if cls is None else None), cls, parameter


CLASSES = {tfckpt.CheckpointReader, tfckpt.CheckpointWriter, tfckpt.Saver, tfckpt.Checkpoint,
           tfckpt.CheckpointManager, tfckpt.Variable}
CASES = [(where, parameter.name, bad) for where, _, _, parameter in entry_points() for bad in WRONG
         if not (bad is None and "None" in str(parameter.annotation))]  # there None is a value (TF's too)


def test_the_generator_finds_the_entry_points_that_matter() -> None:
    found = {(where, parameter.name) for where, _, _, parameter in entry_points()}
    assert {("load_variable", "path"), ("load_variable", "name"), ("save", "prefix"), ("load", "path"),
            ("CheckpointReader.get_tensor", "name"), ("Saver.restore", "save_path"),
            ("latest_checkpoint", "checkpoint_dir"), ("merge_checkpoints", "prefixes"),
            ("CheckpointManager()", "directory"), ("convert_checkpoint", "destination")} <= found
    assert len(found) >= 40, sorted(found)


@pytest.mark.parametrize(("where", "parameter", "bad"), CASES,
                         ids=[f"{w}-{p}-{type(b).__name__}" for w, p, b in CASES])
def test_a_wrong_type_is_a_type_error_naming_the_parameter(tmp_path: Path, where: str, parameter: str,
                                                           bad: Any) -> None:
    function, cls = next((f, c) for w, f, c, p in entry_points() if (w, p.name) == (where, parameter))
    if cls is not None:
        instance = instances(tmp_path)[cls]()
        function = getattr(instance, where.rsplit(".", 1)[1])
    assert function is not None
    good = valid(tmp_path)
    arguments: dict[str, Any] = {}
    for p in inspect.signature(function).parameters.values():
        if p.name == parameter:
            arguments[p.name] = [bad] if str(p.annotation).startswith(("list", "Iterable")) else bad
        elif p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            if p.name not in good:  # a new entry point: say what this test needs
                pytest.fail(f"{where}: give valid() in tests/test_arguments.py a good value for {p.name!r}")
            arguments[p.name] = good[p.name]
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(tfckpt.ArgumentTypeError) as raised:
        result = function(**arguments)
        if isinstance(result, Iterator):  # a generator checks when it is read
            list(result)
    message = str(raised.value)
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, tfckpt.TfckptError)
    assert parameter in message and (type(bad).__name__ in message or repr(bad) in message), message
    assert sorted(tmp_path.rglob("*")) == before  # refused before anything was written


def test_load_variable_with_no_name_says_so() -> None:
    with pytest.raises(TypeError, match=r"^name must be a str, got NoneType None$"):
        tfckpt.load_variable(MLP, None)  # type: ignore[arg-type]
