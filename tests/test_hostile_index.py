"""Hostile indexes and files that cost far more than their size, or never answer.

Each case is a small file crafted by hand: a prefix-compression bomb, an index block naming one
data block many times, a header claiming 2^31-1 shards, a directory or a FIFO where a file
should be. Each must end in a tfckpt error (or a verify report) at a cost bounded by the bytes
present, compared across a geometric sweep rather than against one absolute figure.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.bundle.entry import BundleHeader
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.store import MAX_UNUSED_SHARDS_LISTED
from tfckpt.coding import FIXED32, crc32c, mask
from tfckpt.errors import CorruptionError
from tfckpt.storage import FileSource
from tfckpt.table import (
    MAX_KEY_BYTES_PER_BLOCK_BYTE,
    NO_COMPRESSION,
    BlockBuilder,
    BlockHandle,
    Footer,
    TableBuilder,
    TableReader,
)

Items = Sequence[tuple[bytes, bytes]]


def _with_trailer(contents: bytes) -> bytes:
    kind = bytes([NO_COMPRESSION])
    return contents + kind + FIXED32.pack(mask(crc32c(kind, crc32c(contents))))


def craft_table(blocks: Sequence[Items], restart_interval: int = 1 << 30,
                index: Callable[[list[BlockHandle]], list[tuple[bytes, BlockHandle]]] | None = None) -> bytes:
    """A table of these data blocks laid out as given (one restart per ``restart_interval``
    entries: by default, a whole block shares prefixes), with an index block of ``index(handles)``
    (default: one short separator per block, in order)."""
    out = bytearray()
    handles = []
    for items in blocks:
        builder = BlockBuilder(restart_interval)
        for key, value in items:
            builder.add(key, value)
        contents = builder.finish()
        handles.append(BlockHandle(len(out), len(contents)))
        out += _with_trailer(contents)
    metaindex = BlockBuilder(16).finish()
    metaindex_handle = BlockHandle(len(out), len(metaindex))
    out += _with_trailer(metaindex)
    pointers = index(handles) if index is not None else [(b"\xff" * (n + 1), h) for n, h in enumerate(handles)]
    index_block = BlockBuilder(1)
    for separator, handle in pointers:
        index_block.add(separator, handle.encode())
    contents = index_block.finish()
    index_handle = BlockHandle(len(out), len(contents))
    out += _with_trailer(contents)
    return bytes(out + Footer(metaindex_handle, index_handle).encode())


def write_checkpoint(directory: Path, index: bytes, data: bytes | None = b"") -> str:
    directory.mkdir(parents=True, exist_ok=True)
    prefix = str(directory / "ck")
    Path(index_filename(prefix)).write_bytes(index)
    if data is not None:
        Path(data_filename(prefix, 0, 1)).write_bytes(data)
    return prefix


def traced_peak(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- 1. prefix-compression bombs -------------------------------------------------------------

def prefix_bomb(first_key: int, followers: int) -> bytes:
    """A bundle index whose one data block holds a ``first_key``-byte key, then ``followers``
    keys each sharing the whole previous key plus one byte (about 7 bytes each on disk)."""
    key = b"a" * first_key
    items = [(b"", BundleHeader().encode()), (key, b"")]
    for _ in range(followers):
        key += b"b"
        items.append((key, b""))
    return craft_table([items])


@pytest.mark.parametrize("followers", [256, 1024, 4096])
def test_prefix_compression_bomb_is_refused_at_a_cost_bounded_by_the_index(tmp_path: Path, followers: int) -> None:
    """Materialised in full, the keys take followers x 16 KiB (64 MiB at 4096) from a 45 KiB
    index; the reader refuses the block once its keys pass MAX_KEY_BYTES_PER_BLOCK_BYTE times
    its bytes, naming the file and the block's offset."""
    index = prefix_bomb(16 << 10, followers)
    prefix = write_checkpoint(tmp_path / str(followers), index)

    def attempt() -> None:
        with pytest.raises(CorruptionError, match=r"ck\.index: data block 0 at offset 0: entry at block offset "
                                                  r"\d+: the block's keys would take more than 32 times"):
            tfckpt.load_checkpoint(prefix)
    attempt()  # untraced: the modules a first open imports lazily are not the bomb's cost
    peak = traced_peak(attempt)
    assert peak < (MAX_KEY_BYTES_PER_BLOCK_BYTE + 8) * len(index) + (1 << 20), (peak, len(index))
    report = tfckpt.verify_checkpoint(prefix)
    assert not report.ok and "prefix-compression bomb" in str(report.problems[0])


def test_tensorflow_layouts_with_long_shared_prefixes_still_read(tmp_path: Path) -> None:
    """The bound leaves room for every honest layout: restarts every 16 entries (TF's and
    ours) yield at most 16x, here with 20 KiB keys that differ only in their last bytes."""
    items = [(b"", b"h")] + [(b"n" * 20000 + b"%05d" % i, b"v") for i in range(600)]
    sink = io.BytesIO()
    builder = TableBuilder(sink)
    builder.add_many(items)
    builder.finish()
    entries = TableReader(_Counting(sink.getvalue())).scan()
    assert len(entries.texts) == len(items) and entries.key(600) == items[600][0]


# ---- 2. an index block naming one data block many times --------------------------------------

class _Counting:
    """A ByteSource over bytes that counts the bytes read."""

    is_remote = False

    def __init__(self, data: bytes, name: str = "mem.index") -> None:
        self.data, self.name, self.read = data, name, 0

    def size(self) -> int:
        return len(self.data)

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset + n > len(self.data):
            raise CorruptionError(f"{self.name}: read past the end")
        self.read += n
        return self.data[offset:offset + n]

    def readinto_at(self, offset: int, buffer: memoryview) -> None:
        buffer[:] = self.read_at(offset, buffer.nbytes)

    def close(self) -> None:
        pass


BLOCK_ITEMS = [(b"", BundleHeader().encode())] + [(b"k%06d" % i, b"v" * 100) for i in range(500)]


@pytest.mark.parametrize(("what", "index", "message"), [
    ("repeated", lambda hs: [(b"z%05d" % i, hs[0]) for i in range(200)],
     "index entry 1: data block at offset 0 overlaps or precedes the previous one, which ends at"),
    ("overlapping", lambda hs: [(b"y", hs[0]), (b"z", BlockHandle(hs[0].offset + 8, hs[0].size))],
     "index entry 1: data block at offset 8 overlaps"),
    ("out of order", lambda hs: [(b"y", hs[1]), (b"z", hs[0])],
     "index entry 1: data block at offset 0 overlaps or precedes"),
])
def test_index_handles_must_follow_each_other_and_are_checked_before_reading(
        what: str, index: Callable[[list[BlockHandle]], list[tuple[bytes, BlockHandle]]], message: str) -> None:
    """Before: each of K pointers to one 56 KiB block read and kept a copy (K x the block)
    before the key-order check failed. Now no block is read and the message names the entry."""
    table = craft_table([BLOCK_ITEMS, [(b"m", b"")]], restart_interval=16, index=index)
    source = _Counting(table)
    reader = TableReader(source)
    before = source.read
    with pytest.raises(CorruptionError, match=message):
        reader.scan()
    assert source.read == before, f"{what}: {source.read - before} bytes of data blocks read"


def test_repeated_handles_cost_no_more_than_the_file(tmp_path: Path) -> None:
    """Through the public API: peak memory stays flat as the number of repeats grows 16-fold."""
    peaks = []
    for repeats in (32, 128, 512):
        table = craft_table([BLOCK_ITEMS], restart_interval=16,
                            index=lambda hs, r=repeats: [(b"z%05d" % i, hs[0]) for i in range(r)])
        prefix = write_checkpoint(tmp_path / str(repeats), table)

        def attempt(prefix: str = prefix) -> None:
            with pytest.raises(CorruptionError, match="overlaps or precedes"):
                tfckpt.load(prefix)
        peaks.append(traced_peak(attempt))
    assert peaks[-1] < 2 * peaks[0] + (256 << 10), peaks


# ---- 16. a directory or a FIFO where a file should be ----------------------------------------

SPECIAL_FILE_CHILD = """
import os, sys
import numpy as np
import tfckpt
directory, which, kind = sys.argv[1:]
prefix = os.path.join(directory, "ck")
tfckpt.save({"w": np.ones(3)}, prefix)
target = {"index": prefix + ".index", "data": prefix + ".data-00000-of-00001",
          "state": os.path.join(directory, "checkpoint")}[which]
if os.path.exists(target):
    os.remove(target)
os.mkfifo(target) if kind == "fifo" else os.mkdir(target)
for name, action in (("load", lambda: tfckpt.load(directory if which == "state" else prefix)),
                     ("verify", lambda: tfckpt.verify_checkpoint(prefix))):
    try:
        outcome = action()
        print(name, "problems" if getattr(outcome, "problems", None) else "ok",
              " | ".join(str(p) for p in getattr(outcome, "problems", [])))
    except tfckpt.TfckptError as exc:
        print(name, "TfckptError", exc)
    except Exception as exc:
        print(name, "raw", type(exc).__name__, exc)
"""


def run_special_file_child(directory: Path, which: str, kind: str) -> dict[str, str]:
    """Run SPECIAL_FILE_CHILD; ``{"load": outcome, "verify": outcome}``. A hang fails the test
    (after a timeout) instead of hanging the suite."""
    package_root = str(Path(tfckpt.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    try:
        child = subprocess.run([sys.executable, "-c", SPECIAL_FILE_CHILD, str(directory), which, kind],
                               capture_output=True, text=True, timeout=30, env=env, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading a checkpoint whose {which} file is a {kind} hung")
    return dict(line.split(" ", 1) for line in child.stdout.splitlines())


@pytest.mark.parametrize("kind", ["fifo", "directory"])
@pytest.mark.parametrize("which", ["index", "data"])
def test_a_special_file_in_place_of_a_checkpoint_file_is_an_error_naming_it(tmp_path: Path, which: str,
                                                                           kind: str) -> None:
    """Before: a FIFO blocked load() and verify forever in open(); a directory raised a bare
    IsADirectoryError."""
    outcomes = run_special_file_child(tmp_path, which, kind)
    found = "a FIFO (named pipe)" if kind == "fifo" else "a directory"
    path = index_filename("ck") if which == "index" else data_filename("ck", 0, 1)
    assert outcomes["load"] == f"TfckptError {tmp_path / path}: expected a regular file, found {found}", outcomes
    assert outcomes["verify"].startswith("problems"), outcomes
    assert f"{path}: expected a regular file, found {found}" in outcomes["verify"], outcomes


def test_a_fifo_as_the_state_file_does_not_block(tmp_path: Path) -> None:
    outcomes = run_special_file_child(tmp_path, "state", "fifo")
    assert outcomes["load"] == f"TfckptError {tmp_path / 'checkpoint'}: expected a regular file, found a FIFO " \
                               f"(named pipe)", outcomes


# ---- 10. a header claiming 2^31-1 shards -----------------------------------------------------

def claim_shards(directory: Path, num_shards: int) -> str:
    """A one-tensor checkpoint whose header claims ``num_shards`` data files (the one that
    exists is shard 0, named accordingly)."""
    from tfckpt.bundle.writer import write_index
    prefix = str(directory / "ck")
    tfckpt.save({"w": np.arange(3.0)}, prefix)
    with tfckpt.load_checkpoint(prefix) as reader:
        info = reader.tensor_info("w")
    os.rename(data_filename(prefix, 0, 1), data_filename(prefix, 0, num_shards))
    with open(index_filename(prefix), "wb") as out:
        write_index(out, BundleHeader(num_shards=num_shards), [info])
    return prefix


@pytest.mark.parametrize("num_shards", [1 << 12, 1 << 16, (1 << 31) - 1])
def test_an_absurd_shard_count_costs_no_work_per_claimed_shard(tmp_path: Path, num_shards: int) -> None:
    """Before: data_files() (and so verify) looked for every shard the header names: 2^31-1
    files from a 125-byte index. Now only the files entries use are opened, and verify notes
    the claim once."""
    prefix = claim_shards(tmp_path, num_shards)
    opened: list[str] = []

    def opener(path: str) -> FileSource:
        opened.append(path)
        assert len(opened) < 100, "data_files() looks for every shard the header claims"
        return FileSource(path)
    with tfckpt.CheckpointReader(prefix, opener=opener) as reader:
        files = reader.store.data_files()
    assert files == [(0, data_filename(prefix, 0, num_shards), 24)]
    assert len(opened) == 2  # the index and the one data file used
    report = tfckpt.verify_checkpoint(prefix)
    assert report.ok and [str(note) for note in report.notes] == [
        f"the header names {num_shards} data files but entries use 1; only those were looked for"]
    assert tfckpt.load(prefix)["w"].tolist() == [0.0, 1.0, 2.0]


def test_a_plausible_shard_count_still_lists_every_missing_data_file(tmp_path: Path) -> None:
    prefix = claim_shards(tmp_path, 1 + MAX_UNUSED_SHARDS_LISTED)
    report = tfckpt.verify_checkpoint(prefix)
    assert report.ok and len(report.notes) == MAX_UNUSED_SHARDS_LISTED
    assert str(report.notes[-1]).endswith("data file is missing, but no entry uses it")


# ---- 3. string tensors: memory per element ---------------------------------------------------

@pytest.mark.parametrize("width", [0, 8])
def test_string_tensors_cost_a_bounded_amount_per_element(tmp_path: Path, width: int) -> None:
    """README's bound for strings: reading n elements in b bytes allocates at most
    2b + 64n bytes (a Python bytes object and its slots per element; an empty string costs
    its slots only), and verifying them at most 2b + 8n: verify checks the layout and the
    checksums without making values (before: 17 bytes per empty string, 66 per 8-byte one).
    Swept over 16x more elements to see the growth stays linear."""
    warm = str(tmp_path / "warm")  # what the first load and verify allocate once (caches)
    tfckpt.save({"s": np.array([b"x"], dtype=object)}, warm)
    tfckpt.load(warm)
    tfckpt.verify_checkpoint(warm)
    loads, verifies = [], []
    for count in (1 << 12, 1 << 14, 1 << 16):
        prefix = str(tmp_path / f"s{count}")
        tfckpt.save({"s": np.array([b"x" * width] * count, dtype=object)}, prefix)
        data = Path(data_filename(prefix, 0, 1)).stat().st_size
        loads.append(traced_peak(lambda prefix=prefix: tfckpt.load(prefix)))
        verifies.append(traced_peak(lambda prefix=prefix: tfckpt.verify_checkpoint(prefix)))
        assert loads[-1] < 2 * data + 64 * count + (256 << 10), (count, data, loads)
        assert verifies[-1] < 2 * data + 8 * count + (256 << 10), (count, data, verifies)
    assert loads[-1] < 20 * loads[0] and verifies[-1] < 20 * verifies[0], (loads, verifies)
