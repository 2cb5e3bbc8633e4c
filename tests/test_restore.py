"""Restores are all-or-nothing: any failure leaves every target byte for byte unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.bundle.naming import data_filename


def snapshot(*targets: object) -> list[bytes]:
    out = []
    for target in targets:
        value = target.numpy() if isinstance(target, tfckpt.Variable) else np.asarray(target)
        out.append(value.tobytes() if value.dtype != object else repr(value.tolist()).encode())
    return out


@pytest.fixture
def saved(tmp_path: Path) -> str:
    return tfckpt.save({"a": np.arange(4, dtype=np.float32), "s": np.array([b"hello-long", b"x"], dtype=object),
                        "z": np.int64(5)}, tmp_path / "ck")


@pytest.mark.parametrize("string_target", [np.array(["zz", "yy"]), np.array([b"zz", b"yy"]),
                                           np.array(["zz", "yy"], dtype="U2")])
def test_strings_that_would_be_truncated_fail_before_anything_is_written(saved: str, string_target: np.ndarray) -> None:
    a = np.zeros(4, np.float32)
    before = snapshot(a, string_target)
    with pytest.raises(tfckpt.InvalidArgumentError, match="restore into an object array"):
        tfckpt.Saver({"a": a, "s": string_target}).restore(saved)
    assert snapshot(a, string_target) == before


def test_strings_restore_into_object_arrays_and_wide_enough_fixed_arrays(saved: str) -> None:
    objects, wide, text = np.empty(2, object), np.zeros(2, "S16"), np.zeros(2, "U10")
    tfckpt.Saver({"s": objects}).restore(saved)
    tfckpt.Saver({"s": wide}).restore(saved)
    tfckpt.Saver({"s": text}).restore(saved)
    assert objects.tolist() == [b"hello-long", b"x"]
    assert wide.tolist() == [b"hello-long", b"x"] and text.tolist() == ["hello-long", "x"]


@pytest.mark.parametrize("bad", ["missing", "shape", "dtype", "read-only"])
def test_any_mismatch_leaves_every_target_unchanged(saved: str, bad: str) -> None:
    a, z = np.full(4, 9, np.float32), tfckpt.Variable(np.int64(1))
    last: np.ndarray = np.zeros((), np.int64)
    targets: dict[str, object] = {"a": a, "z": z}
    if bad == "missing":
        targets["nope"] = last
    elif bad == "shape":
        targets["s"] = np.empty(3, object)
    elif bad == "dtype":
        targets["s"] = np.zeros(2, np.float32)
    else:
        last = np.zeros(2, object)
        last.flags.writeable = False
        targets["s"] = last
    before = snapshot(a, z)
    with pytest.raises(tfckpt.TfckptError):
        tfckpt.Saver(targets).restore(saved)  # type: ignore[arg-type]
    assert snapshot(a, z) == before


def test_a_checksum_failure_on_the_last_tensor_read_leaves_the_first_ones_unchanged(saved: str) -> None:
    reader = tfckpt.load_checkpoint(saved)
    info = reader.tensor_info("z")
    reader.close()
    path = data_filename(saved, 0, 1)
    data = bytearray(Path(path).read_bytes())
    data[info.offset] ^= 1
    Path(path).write_bytes(bytes(data))
    a, s, z = np.zeros(4, np.float32), np.empty(2, object), tfckpt.Variable(np.int64(0))
    before = snapshot(a, s, z)
    with pytest.raises(tfckpt.ChecksumError):
        tfckpt.Saver({"a": a, "s": s, "z": z}).restore(saved)
    assert snapshot(a, s, z) == before


def test_checkpoint_restore_and_read_are_all_or_nothing(tmp_path: Path) -> None:
    class Model:
        def __init__(self, width: int) -> None:
            self.kernel = tfckpt.Variable(np.ones((2, width), np.float32))
            self.bias = np.ones(width, np.float32)
            self.names = np.array([b"a", b"b"], dtype=object)

    path = tfckpt.Checkpoint(model=Model(3)).write(str(tmp_path / "ck"))
    wrong = Model(3)
    wrong.names = np.array(["z", "z"], dtype="U1")  # one character is enough for "a" and "b"
    tfckpt.Checkpoint(model=wrong).read(path).assert_consumed()
    other = Model(4)  # every shape differs except names
    other.names = np.array([b"q", b"q"], dtype=object)
    before = snapshot(other.kernel, other.bias, other.names)
    with pytest.raises(tfckpt.InvalidArgumentError, match="shape"):
        tfckpt.Checkpoint(model=other).read(path)
    assert snapshot(other.kernel, other.bias, other.names) == before
