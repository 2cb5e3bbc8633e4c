"""PyTorch and JAX in and out: every writing entry point takes their tensors by one rule
(``tfckpt.values``), ``load(framework=...)`` gives them back with their own dtypes, restores
assign into torch tensors in place, and TensorFlow reads what torch values became."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from conftest import FIXTURES, optional

import tfckpt
from tfckpt.errors import InvalidArgumentError
from tfckpt.values import from_numpy

try:
    import jax
    import jax.numpy as jnp
    import torch
except ImportError:  # CI's stages without them deselect this module (-m "not frameworks")
    jax = jnp = torch = None


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    optional("torch")  # a skip on a developer's machine, an error under TFCKPT_REQUIRE_ALL
    optional("jax")


pytestmark = [pytest.mark.frameworks,
              pytest.mark.filterwarnings("ignore:ComplexHalf support:UserWarning"),
              pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")]

# Every dtype torch has, saved as the TF dtype of the same bits or refused with a clear message.
SAVED = {
    "bool": "bool", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64", "float16": "float16",
    "float32": "float32", "float64": "float64", "complex64": "complex64", "complex128": "complex128",
    "bfloat16": "bfloat16", "float8_e4m3fn": "float8_e4m3fn", "float8_e4m3fnuz": "float8_e4m3fnuz",
    "float8_e5m2": "float8_e5m2", "float8_e5m2fnuz": "float8_e5m2fnuz",
}
REFUSED = {"complex32", "quint8", "qint8", "qint32", "quint4x2", "quint2x4", "bits8", "bits16", "bits1x8",
           "bits2x4", "bits4x2", "float4_e2m1fn_x2", "float8_e8m0fnu",
           *(f"{sign}int{bits}" for sign in ("", "u") for bits in range(1, 8))}


def torch_dtype_names() -> set[str]:
    return {str(value).removeprefix("torch.") for value in vars(torch).values() if isinstance(value, torch.dtype)}


def sample(name: str, shape: tuple[int, ...] = (2, 3)) -> Any:
    """A tensor of every representable kind of value for ``name``, built through float32 or int64."""
    dtype = getattr(torch, name)
    count = int(np.prod(shape))
    if name == "bool":
        return (torch.arange(count) % 3 == 0).reshape(shape)
    if dtype.is_complex:
        real = torch.linspace(-2.5, 3.5, count)
        return torch.complex(real, real.flip(0)).to(dtype).reshape(shape)
    if dtype.is_floating_point:
        return (torch.arange(count, dtype=torch.float32) * 0.5 - 1.5).to(dtype).reshape(shape)
    return torch.arange(count).reshape(shape).to(dtype)


def bits(value: Any) -> bytes:
    """The bytes of a torch tensor's values, in C order."""
    host = value.detach().contiguous().cpu()
    return host.reshape(-1).view(torch.uint8).numpy().tobytes() if host.numel() else b""


def test_every_torch_dtype_is_listed() -> None:
    # A torch release with a new dtype fails here until it is decided which way it goes.
    assert torch_dtype_names() == set(SAVED) | REFUSED


@pytest.mark.parametrize("name", sorted(SAVED))
@pytest.mark.parametrize("shape", [(2, 3), (), (0, 3)], ids=["matrix", "scalar", "empty"])
def test_torch_dtypes_round_trip_bit_for_bit(tmp_path: Path, name: str, shape: tuple[int, ...]) -> None:
    value = sample(name, shape)
    prefix = tfckpt.save({"t": value}, tmp_path / "ckpt")
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.get_variable_to_dtype_map()["t"].name == tfckpt.as_dtype(SAVED[name]).name
    back = tfckpt.load(prefix, framework="pt")["t"]
    assert back.dtype == value.dtype and tuple(back.shape) == shape
    assert bits(back) == bits(value)
    assert tfckpt.load(prefix)["t"].tobytes() == bits(value)  # numpy: ml_dtypes' types, same bits


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_torch_dtypes_without_a_tf_equivalent_are_refused_before_writing(tmp_path: Path, name: str) -> None:
    value = torch.empty(2, dtype=getattr(torch, name))
    with pytest.raises(InvalidArgumentError, match=f"tensor 't'.*torch dtype {name}"):
        tfckpt.save({"ok": np.zeros(2), "t": value}, tmp_path / "d" / "ckpt")
    assert not (tmp_path / "d").exists()


def test_requires_grad_non_contiguous_and_views(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    values = {
        "grad": torch.nn.Parameter(base.clone()),
        "grad_bf16": base.to(torch.bfloat16).requires_grad_(),
        "transposed": base.t(),
        "stepped": base[::2, 1::3],
        "stepped_bf16": base.to(torch.bfloat16).t()[::3],
        "negative_view": -base[1],
        "conjugate": torch.complex(base, base).conj(),
        "scalar": torch.tensor(3.5, requires_grad=True),
    }
    prefix = tfckpt.save(values, tmp_path / "ckpt")
    back = tfckpt.load(prefix, framework="pt")
    for name, value in values.items():
        expected = value.detach().resolve_conj().resolve_neg()
        assert back[name].dtype == value.dtype, name
        assert bits(back[name]) == bits(expected), name
    assert not any(t.requires_grad for t in back.values())


def test_jax_arrays_in_and_out(tmp_path: Path) -> None:
    values = {"bf16": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3) / 4, "f32": jnp.ones((3,)),
              "i8": jnp.array([-1, 2], dtype=jnp.int8), "scalar": jnp.float32(2.5), "empty": jnp.zeros((0, 2))}
    prefix = tfckpt.save(values, tmp_path / "ckpt")
    assert tfckpt.load(prefix)["bf16"].dtype == ml_dtypes.bfloat16
    back = tfckpt.load(prefix, framework="jax")
    for name, value in values.items():
        assert isinstance(back[name], jax.Array)
        assert back[name].dtype == value.dtype and np.asarray(back[name]).tobytes() == np.asarray(value).tobytes()


def test_framework_names_follow_safetensors(tmp_path: Path) -> None:
    prefix = tfckpt.save({"w": np.arange(3, dtype=np.float32), "s": [b"x"]}, tmp_path / "ckpt")
    for name in ("pt", "torch", "pytorch"):
        assert isinstance(tfckpt.load(prefix, framework=name)["w"], torch.Tensor)
    for name in ("jax", "flax"):
        assert isinstance(tfckpt.load(prefix, framework=name)["w"], jax.Array)
    for name in ("numpy", "np"):
        assert type(tfckpt.load(prefix, framework=name)["w"]) is np.ndarray
    assert tfckpt.load(prefix, framework="pt")["s"].tolist() == [b"x"]  # strings stay numpy
    with pytest.raises(InvalidArgumentError, match="framework='tensorflow' is not one of"):
        tfckpt.load(prefix, framework="tensorflow")


def test_tf_written_fixture_loads_into_torch_and_jax_bit_for_bit() -> None:
    arrays = tfckpt.load(FIXTURES / "all_dtypes")
    with jax.enable_x64(True):  # JAX narrows 64-bit values unless asked not to, as for any numpy input
        as_jax = tfckpt.load(FIXTURES / "all_dtypes", framework="jax")
        for name, array in arrays.items():
            assert as_jax[name].dtype == array.dtype and np.asarray(as_jax[name]).tobytes() == array.tobytes(), name
    # torch has no int4/int2/float4 (nor e4m3b11fnuz): named, with the way out.
    with pytest.raises(InvalidArgumentError, match=r"tensor '(u?int[24]|float4_e2m1fn|float8_e4m3b11fnuz)/.*"
                                                   r"no torch equivalent; load it with framework='numpy'"):
        tfckpt.load(FIXTURES / "all_dtypes", framework="pt")
    keras = tfckpt.load(FIXTURES / "keras", framework="pt")
    for name, array in tfckpt.load(FIXTURES / "keras").items():
        if array.dtype.kind != "O":
            assert isinstance(keras[name], torch.Tensor) and keras[name].numpy().tobytes() == array.tobytes()


def mapped_ranges(path: Path) -> list[tuple[int, int]]:
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == str(path.resolve()):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


def test_mmap_load_into_torch_makes_no_copy(tmp_path: Path) -> None:
    peaks = []
    for count in (1 << 18, 1 << 20, 1 << 22):  # 1, 4, 16 MiB
        prefix = tfckpt.save({"w": np.ones(count, np.float32), "b": np.ones(count // 2, ml_dtypes.bfloat16)},
                             tmp_path / f"ckpt{count}")
        tracemalloc.start()
        loaded = tfckpt.load(prefix, framework="pt", mmap=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        data = Path(f"{prefix}.data-00000-of-00001")
        ranges = mapped_ranges(data)  # the tensors' bytes are the data file's mapped pages
        for tensor in loaded.values():
            assert any(start <= tensor.data_ptr() < end for start, end in ranges)
        assert loaded["b"].dtype == torch.bfloat16 and float(loaded["b"][0]) == 1.0
        del loaded
    assert peaks[-1] < peaks[0] * 2 + 64 * 1024  # flat, not growing with the 16x larger tensors


def anonymous_rss() -> int:
    """Bytes of the process's resident anonymous memory (a copy lands there; a file's mapped
    pages, touched by the checksum pass, count as RssFile instead)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def test_mmap_load_of_64_mib_into_torch_allocates_no_second_copy(tmp_path: Path) -> None:
    """float32, int64, bfloat16 and float8 tensors (16 MiB each, 64 MiB): torch tensors over the
    data file's pages, bfloat16/float8 reinterpreted by views, never converted."""
    each = 16 << 20
    tensors = {"f32": np.ones(each // 4, np.float32), "i64": np.arange(each // 8, dtype=np.int64),
               "bf16": np.full(each // 2, 1.5, ml_dtypes.bfloat16),
               "f8": np.full(each // 2, 2.0, ml_dtypes.float8_e4m3fn), "f8b": np.full(each // 2, 2.0, ml_dtypes.float8_e5m2)}
    prefix = tfckpt.save(tensors, tmp_path / "ckpt")
    data = sum(array.nbytes for array in tensors.values())
    # Imports and first-use caches outside the measure, on a small checkpoint (memory a copy of
    # the large one freed could be reused unseen by the measured load).
    tfckpt.load(tfckpt.save({name: array[:8] for name, array in tensors.items()}, tmp_path / "small"),
                framework="pt", mmap=True)
    del tensors
    before = anonymous_rss()
    tracemalloc.start()
    loaded = tfckpt.load(prefix, framework="pt", mmap=True)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    grown = anonymous_rss() - before
    assert traced < data // 64, f"traced peak {traced} bytes for {data} bytes of tensors"
    assert grown < data // 4, f"anonymous memory grew by {grown} bytes for {data} bytes of tensors"
    ranges = mapped_ranges(Path(f"{prefix}.data-00000-of-00001"))
    assert all(any(start <= t.data_ptr() < end for start, end in ranges) for t in loaded.values())
    assert {name: t.dtype for name, t in loaded.items()} == {
        "f32": torch.float32, "i64": torch.int64, "bf16": torch.bfloat16, "f8": torch.float8_e4m3fn,
        "f8b": torch.float8_e5m2}
    assert float(loaded["bf16"][-1]) == 1.5 and float(loaded["f8"][7]) == 2.0 and int(loaded["i64"][-1]) == each // 8 - 1


def test_mmap_loaded_tensors_are_writable_copy_on_write_and_never_change_the_file(tmp_path: Path) -> None:
    """load(mmap=True) maps the data file privately: its arrays and torch tensors (views of the
    mapping, no copy) take writes, which change this process's pages only - not the file, not a
    later load. A reader's own mmap views stay read-only (two reads share their pages)."""
    prefix = tfckpt.save({"w": np.arange(1024, dtype=np.float32), "b": sample("bfloat16", (8,))}, tmp_path / "ckpt")
    data = Path(f"{prefix}.data-00000-of-00001")
    before = data.read_bytes()
    tensors = tfckpt.load(prefix, framework="pt", mmap=True)
    arrays = tfckpt.load(prefix, mmap=True)
    tensors["w"][0] = 7.0
    tensors["b"][1] = 3.0
    arrays["w"][1] = 5.0
    assert tensors["w"][0] == 7.0 and arrays["w"][1] == 5.0 and arrays["w"][0] == 0.0
    assert data.read_bytes() == before
    again = tfckpt.load(prefix)  # checksums verified
    assert again["w"][0] == 0.0 and again["w"][1] == 1.0
    with tfckpt.load_checkpoint(prefix, mmap=True) as reader:
        view = reader["w"]
        assert not view.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            view[0] = 1.0
        copied = from_numpy(view, "torch", "w")  # torch has no read-only tensors
        copied[0] = 2.0
        assert reader["w"][0] == 0.0
    with tfckpt.load_checkpoint(prefix, mmap="c") as reader:
        view = reader["w"]
        view[0] = 4.0  # numpy's mmap_mode="c": this reader's pages only
        with pytest.raises(tfckpt.ChecksumError):  # no longer the file's values
            reader["w"]
    with tfckpt.load_checkpoint(prefix, mmap="c", verify_checksums=False) as reader:
        reader["w"][0] = 4.0
        assert reader["w"][0] == 4.0
    assert data.read_bytes() == before


def test_failure_on_the_second_of_three_values_writes_nothing(tmp_path: Path) -> None:
    good, bad = torch.ones(2), torch.empty(2, dtype=torch.complex32)
    with pytest.raises(InvalidArgumentError, match="'b'"):
        tfckpt.save({"a": good, "b": bad, "c": good}, tmp_path / "save" / "ckpt")
    with pytest.raises(InvalidArgumentError, match="'b"):
        tfckpt.Checkpoint(a=good, b=bad, c=good).write(tmp_path / "checkpoint" / "ckpt")
    with pytest.raises(InvalidArgumentError, match="'b'"):
        tfckpt.Saver({"a": good, "b": bad, "c": good}).save(tmp_path / "saver" / "ckpt")
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_takes_torch_jax_and_numbers_and_restores_into_torch(tmp_path: Path) -> None:
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3).requires_grad_()
    model = {"w": w, "b": sample("bfloat16", (3,)), "j": jnp.ones(2, jnp.bfloat16), "lr": 0.5, "sizes": [4, 2]}
    path = tfckpt.Checkpoint(model=model).write(tmp_path / "ckpt")
    paths = tfckpt.load_checkpoint(path).object_paths()
    assert sorted(paths.values()) == ["model/b", "model/j", "model/lr", "model/sizes", "model/w"]
    values = tfckpt.load(path)
    assert values["model/sizes/.ATTRIBUTES/VARIABLE_VALUE"].dtype == np.int32  # as save() infers
    targets = {"w": torch.zeros(2, 3, requires_grad=True), "b": torch.zeros(3, dtype=torch.bfloat16)}
    tfckpt.Checkpoint(model=targets).read(path).assert_existing_objects_matched()
    assert bits(targets["w"]) == bits(w) and bits(targets["b"]) == bits(model["b"])
    assert targets["w"].requires_grad
    with pytest.raises(InvalidArgumentError, match="JAX arrays are immutable"):
        tfckpt.Checkpoint(model={"j": jnp.zeros(2, jnp.bfloat16)}).read(path)


def test_saver_and_variable_take_torch_tensors(tmp_path: Path) -> None:
    t = sample("bfloat16").requires_grad_()
    v = tfckpt.Variable(t, name="v")
    assert v.dtype.name == "bfloat16" and v.numpy().tobytes() == bits(t)
    v.assign(torch.zeros(2, 3, dtype=torch.bfloat16))
    assert not v.numpy().any()
    target = torch.zeros(2, 3, dtype=torch.bfloat16)
    path = tfckpt.Saver({"t": t}).save(tmp_path / "ckpt")
    tfckpt.Saver({"t": target}).restore(path)
    assert bits(target) == bits(t)
    with tfckpt.CheckpointWriter(str(tmp_path / "w")) as writer:
        writer.add("x", t.t()[::2])
        writer.finish()
    assert tfckpt.load(tmp_path / "w", framework="pt")["x"].equal(t.detach().t()[::2])


def test_torch_and_jax_are_not_imported_by_tfckpt() -> None:
    code = "import sys, tfckpt, numpy as np, tempfile, os; " \
           "tfckpt.load(tfckpt.save({'a': np.ones(2)}, os.path.join(tempfile.mkdtemp(), 'c'))); " \
           "print(sorted(m for m in ('torch', 'jax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.tf
def test_tensorflow_reads_what_torch_values_became(tmp_path: Path, tf: Any) -> None:
    values = {name: sample(name) for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float16", "int64",
                                               "complex64", "bool")}
    values["grad_transposed"] = torch.ones(3, 2, requires_grad=True).t()
    prefix = tfckpt.save(values, tmp_path / "ckpt")
    reader = tf.train.load_checkpoint(str(prefix))
    for name, value in values.items():
        assert reader.get_tensor(name).tobytes() == bits(value), name
