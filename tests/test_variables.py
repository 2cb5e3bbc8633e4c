import numpy as np
import pytest

from tfckpt import InvalidArgumentError, Variable


def test_variable_basics() -> None:
    v = Variable(np.arange(6).reshape(2, 3), name="w", dtype="float32")
    assert (v.name, v.shape, v.dtype.name) == ("w", (2, 3), "float32")
    copy = v.numpy()
    copy[0, 0] = 99
    assert v.numpy()[0, 0] == 0  # numpy() is a copy
    with pytest.raises(ValueError):
        v.value()[0, 0] = 1  # value() is a read-only view
    np.testing.assert_array_equal(np.asarray(v), np.arange(6).reshape(2, 3))


def test_initial_value_is_copied() -> None:
    source = np.zeros(3)
    v = Variable(source)
    source[0] = 5
    assert v.numpy()[0] == 0 and v.name is None and v.dtype.name == "float64"


def test_assign_checks_shape_and_kind() -> None:
    v = Variable(np.zeros(3, np.float32), name="v")
    v.assign([1, 2, 3])  # ints into float: same kind is fine
    assert v.numpy().tolist() == [1.0, 2.0, 3.0] and v.dtype.name == "float32"
    with pytest.raises(InvalidArgumentError, match=r"shape \[2\] does not match .* \[3\]"):
        v.assign([1.0, 2.0])
    i = Variable(np.zeros(2, np.int32), name="i")
    with pytest.raises(InvalidArgumentError, match="cannot assign float64 values to a int32 variable"):
        i.assign([1.5, 2.5])
    with pytest.raises(InvalidArgumentError):
        v.assign(["a", "b", "c"])


def test_string_variables() -> None:
    s = Variable(["a", b"b"], name="s")
    assert s.dtype.name == "string"
    assert s.numpy().tolist() == [b"a", b"b"]
    s.assign(["x", "y"])
    assert s.numpy().tolist() == [b"x", b"y"]
    with pytest.raises(InvalidArgumentError):
        Variable([1, 2], dtype="string")


@pytest.mark.parametrize("bad", ["", 3])
def test_bad_names(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        Variable(1.0, name=bad)  # type: ignore[arg-type]
