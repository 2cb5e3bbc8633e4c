"""Which files ``convert`` and the reading commands accept, and where ``convert`` writes:
--from, every command reading every source format, files given by mistake named for what
they are, no empty output over an existing one, directories as destinations."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES

import tfckpt
from tfckpt.cli import main
from tfckpt.convert import convert
from tfckpt.errors import CorruptionError, InvalidArgumentError
from tfckpt.formats import detect_format, open_reader


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(path))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


# -- --from ------------------------------------------------------------------------------------


def test_from_names_the_source_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "w.npz", w=np.arange(3, dtype=np.float32))
    os.rename(tmp_path / "w.npz", tmp_path / "w.bin")
    status, _, err = run(capsys, "convert", "--from", "npz", str(tmp_path / "w.bin"), str(tmp_path / "out"))
    assert status == 0, err
    assert tfckpt.load(tmp_path / "out")["w"].tolist() == [0, 1, 2]
    report = convert(tmp_path / "w.bin", tmp_path / "again.safetensors", from_="npz")
    assert report.written == [("w", "w")]
    with pytest.raises(InvalidArgumentError, match="unknown format 'zip'"):
        convert(tmp_path / "w.bin", tmp_path / "x.npz", from_="zip")


def test_a_safetensors_file_named_bin_is_read_by_its_bytes(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "pytorch_model.bin", {"w": np.ones((2, 2), np.float32)})
    convert(tmp_path / "pytorch_model.bin", tmp_path / "ck")
    assert tfckpt.load(tmp_path / "ck")["w"].shape == (2, 2)


# -- every reading command takes every source format -------------------------------------------


def test_ls_stats_diff_tree_read_safetensors_and_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tfckpt.formats import open_reader

    values = {"dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "dense/bias": np.zeros(3, np.float32)}
    write_safetensors(tmp_path / "w.safetensors", values)
    np.savez(tmp_path / "w.npz", **values)
    tfckpt.save(values, tmp_path / "ck")
    for path in (tmp_path / "w.safetensors", tmp_path / "w.npz"):
        status, out, err = run(capsys, "ls", str(path), "--json")
        assert status == 0, err
        assert {t["name"]: t["shape"] for t in json.loads(out)["tensors"]} == {"dense/kernel": [2, 3],
                                                                              "dense/bias": [3]}
        status, out, err = run(capsys, "stats", str(path), "--json")
        assert status == 0, err
        assert json.loads(out)["total"]["elements"] == 9
        status, out, err = run(capsys, "diff", str(path), str(tmp_path / "ck"))
        assert (status, out.splitlines()[-1]) == (0, "# same: 2 equal, 0 only in A, 0 only in B, 0 changed"), err
        status, out, err = run(capsys, "tree", str(path))
        assert status == 0 and "kernel" in out, err
    with open_reader(tmp_path / "w.safetensors") as reader:
        assert reader.read_slice("dense/kernel", "1,1:-").tolist() == [[3, 4, 5]]
    values["dense/bias"] = np.ones(3, np.float32)
    write_safetensors(tmp_path / "v.safetensors", values)
    status, out, _ = run(capsys, "diff", str(tmp_path / "w.npz"), str(tmp_path / "v.safetensors"))
    assert status == 1 and "~ dense/bias: 3/3 values differ" in out


# -- files given by mistake ------------------------------------------------------------------


def mistaken_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Files users try, each with a phrase the error must contain."""
    import h5py

    write_safetensors(tmp_path / "model.st", {"w": np.ones(2, np.float32)})
    np.savez(tmp_path / "arrays.npz", w=np.ones(2))
    os.rename(tmp_path / "arrays.npz", tmp_path / "arrays.zipped")
    with h5py.File(tmp_path / "model.weights.h5", "w") as f:
        f["w"] = np.ones(2)
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"")
    np.save(tmp_path / "one.npy", np.ones(2))
    prefix = tfckpt.save({"w": np.ones(2)}, tmp_path / "ckpts" / "model")
    (tmp_path / "ckpts" / "checkpoint").write_text('model_checkpoint_path: "model"\n')
    (tmp_path / "ckpts" / "model.meta").write_bytes(b"\n\x05\n\x03abc")  # a tiny MetaGraphDef
    return {
        "safetensors": (tmp_path / "model.st", "is a safetensors file"),
        "npz": (tmp_path / "arrays.zipped", "is a numpy .npz archive"),
        "hdf5": (tmp_path / "model.weights.h5", "is an HDF5 file"),
        "keras": (tmp_path / "model.keras", "is a Keras 3 .keras archive"),
        "npy": (tmp_path / "one.npy", "single numpy .npy array"),
        "state": (tmp_path / "ckpts" / "checkpoint", "'checkpoint' state file"),
        "meta": (Path(prefix + ".meta"), "`tfckpt meta show`"),
    }


def test_files_given_by_mistake_are_named_for_what_they_are(tmp_path: Path) -> None:
    for kind, (path, phrase) in mistaken_files(tmp_path).items():
        if kind in (*READ_AS_SOURCES, "keras"):  # read, or refused by their reader (test below)
            continue
        with pytest.raises(CorruptionError) as caught:
            tfckpt.load_checkpoint(path)
        message = str(caught.value)
        assert phrase in message and str(path) in message and "magic" not in message, (kind, message)


READ_AS_SOURCES = ("safetensors", "npz", "hdf5")  # load_checkpoint reads these (by their bytes)


def test_load_checkpoint_and_load_read_the_other_source_formats(tmp_path: Path) -> None:
    files = mistaken_files(tmp_path)
    for kind in READ_AS_SOURCES:
        path = files[kind][0]
        with tfckpt.load_checkpoint(path) as reader:
            assert reader.get_variable_to_shape_map() == {"w": [2]}, kind
        assert tfckpt.load(path)["w"].tolist() == [1.0, 1.0], kind
        assert tfckpt.list_variables(path) == [("w", [2])], kind
    # an archive that looks like a .keras file but is not readable: the reader's own error
    with pytest.raises(CorruptionError, match=r"model\.keras: not a readable HDF5 file"):
        tfckpt.load(files["keras"][0])


def test_a_data_file_without_its_index_says_so(tmp_path: Path) -> None:
    prefix = tfckpt.save({"w": np.ones(2)}, tmp_path / "model")
    os.remove(prefix + ".index")
    data = prefix + ".data-00000-of-00001"
    with pytest.raises(CorruptionError, match=r"is a data file of the checkpoint .*model\.index is missing"):
        tfckpt.load_checkpoint(data)


def test_the_cli_reads_what_it_can_and_names_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = mistaken_files(tmp_path)
    for kind in ("safetensors", "npz", "hdf5"):
        status, out, err = run(capsys, "ls", str(files[kind][0]))
        assert status == 0 and out.startswith("name"), err
    status, _, err = run(capsys, "ls", str(files["keras"][0]))  # its model.weights.h5 is empty
    assert status == 1 and "not a readable HDF5 file" in err, err
    for kind in ("state",):
        status, _, err = run(capsys, "ls", str(files[kind][0]))
        assert status == 1 and files[kind][1] in err, err


def test_a_damaged_real_checkpoint_keeps_its_own_message(tmp_path: Path) -> None:
    prefix = tfckpt.save({"w": np.ones(2)}, tmp_path / "m")
    index = Path(prefix + ".index")
    index.write_bytes(index.read_bytes()[:-1] + b"\0")  # the table magic's last byte
    with pytest.raises(CorruptionError, match="bad magic"):
        tfckpt.load_checkpoint(prefix)


# -- no empty output unless asked for ------------------------------------------------------------


def test_a_filter_that_keeps_nothing_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    convert(EXAMPLES / "keras_mlp", out)
    before = sorted(tfckpt.load(out))
    for flags in (["--include", "modle/*"], ["--exclude", "*"]):
        status, _, err = run(capsys, "convert", str(EXAMPLES / "keras_mlp"), str(out), *flags)
        assert status == 1, err
        assert "nothing was written" in err and repr(flags[1]) in err and "--allow-empty" in err
        assert sorted(tfckpt.load(out)) == before
    with pytest.raises(InvalidArgumentError, match="no tensor of .* was kept"):
        convert(EXAMPLES / "keras_mlp", tmp_path / "w.npz", include=["nope"])
    assert not (tmp_path / "w.npz").exists()
    status, _, err = run(capsys, "convert", str(EXAMPLES / "keras_mlp"), str(out), "--exclude", "*", "--allow-empty")
    assert status == 0, err
    assert tfckpt.load(out) == {}
    report = convert(EXAMPLES / "keras_mlp", tmp_path / "e.npz", exclude=["*"], allow_empty=True)
    assert report.written == [] and np.load(tmp_path / "e.npz").files == []


def test_an_empty_source_says_so(tmp_path: Path) -> None:
    np.savez(tmp_path / "none.npz")
    with pytest.raises(InvalidArgumentError, match="holds no tensor"):
        convert(tmp_path / "none.npz", tmp_path / "ck")


# -- a directory as destination ---------------------------------------------------------------


def test_a_destination_directory_means_the_checkpoint_inside(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", w=np.ones(2, np.float32))
    empty = tmp_path / "empty"
    empty.mkdir()
    report = convert(tmp_path / "w.npz", empty)
    assert report.destination == str(empty / "ckpt")
    assert not (tmp_path / "empty.index").exists()
    assert sorted(os.listdir(empty)) == ["ckpt.data-00000-of-00001", "ckpt.index"]
    assert tfckpt.load(empty)["w"].tolist() == [1, 1]  # what a source reads from the same directory
    # a directory with a checkpoint: that one is replaced, as reading the directory finds it
    np.savez(tmp_path / "v.npz", v=np.zeros(1))
    assert convert(tmp_path / "v.npz", empty).destination == str(empty / "ckpt")
    assert list(tfckpt.load(empty)) == ["v"]
    state_dir = tmp_path / "with_state"
    tfckpt.save({"a": [1]}, state_dir / "ckpt-1")
    tfckpt.save({"a": [2]}, state_dir / "ckpt-2")
    (state_dir / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    assert convert(tmp_path / "w.npz", state_dir).destination == str(state_dir / "ckpt-1")
    (state_dir / "checkpoint").unlink()
    with pytest.raises(InvalidArgumentError, match="name one: ckpt-1, ckpt-2"):
        convert(tmp_path / "w.npz", state_dir)
    with pytest.raises(InvalidArgumentError, match="is a directory: name the npz file"):
        convert(tmp_path / "w.npz", empty, to="npz")
    named_like_a_file = tmp_path / "out.d"
    named_like_a_file.mkdir()
    assert convert(tmp_path / "w.npz", named_like_a_file).destination == str(named_like_a_file / "ckpt")


def test_a_data_file_whose_first_bytes_look_like_a_safetensors_header_is_read_as_a_checkpoint(tmp_path: Path) -> None:
    """A tensor whose bytes open the data file as ``<8-byte length>{}`` would sniff as an empty
    safetensors file: a checkpoint's own file names are never sniffed."""
    header = np.frombuffer(struct.pack("<Q", 2) + b"{}", np.uint8).copy()
    prefix = tfckpt.save({"a": header}, tmp_path / "m")
    data = f"{prefix}.data-00000-of-00001"
    assert detect_format(data) == "checkpoint"
    with open_reader(data) as reader:
        assert list(reader) == ["a"]
