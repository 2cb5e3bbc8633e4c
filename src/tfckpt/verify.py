"""Checking a whole checkpoint: every block, every tensor checksum, every structural rule.

The rules are the reader's own (:mod:`tfckpt.bundle.validate` and the reader's checks), run
here collecting every problem instead of stopping at the first:

- the index parses (block checksums, footer, header) and each entry decodes;
- each stored entry's size fits its dtype and shape, its bytes lie inside an existing data
  file, its CRC32C matches (read in chunks: memory stays bounded) and strings decode;
- a partitioned tensor's slices do not overlap, cover it, and each has its data entry of the
  right dtype and shape;
- no data file holds bytes after its last tensor (the sign of an index and data files from
  different saves).

Some things TensorFlow itself writes and reads without complaint are *notes*, not problems:
an object-graph key with no tensor (a variable that had no value at save time), and a data
file named by the header that is missing but that no entry uses.
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack
from dataclasses import dataclass, field

from . import storage
from .api import load_checkpoint
from .arguments import path_argument
from .bundle.entry import TensorInfo
from .bundle.graph import OBJECT_GRAPH_KEY
from .bundle.objects import unmatched_keys
from .bundle.reader import CheckpointReader
from .bundle.slices import describe_key, encode_slice_key
from .bundle.store import MAX_UNUSED_SHARDS_LISTED
from .bundle.validate import array_problem, slice_entry_problem, tiling_problem
from .errors import TfckptError
from .formats import reading
from .storage import PathLike

__all__ = ["NAMES_SHOWN", "VerifyProblem", "VerifyReport", "verify_checkpoint"]


NAMES_SHOWN = 5  # a grouped problem's line names this many keys; ``keys`` holds them all


@dataclass(frozen=True)
class VerifyProblem:
    """One thing wrong with (or, as a note, worth knowing about) a checkpoint: one cause, one
    problem, however many tensors it affects.

    ``key``, ``file`` and ``offset`` say where, when the problem has one place; ``keys`` lists
    every key a problem with many victims affects (a missing data file: each key stored in it),
    in index order. ``str()`` is one line, naming each place once even when ``message`` (often
    the reader's own error text) already names it, and at most ``NAMES_SHOWN`` of ``keys``.

    Examples
    --------
    >>> str(VerifyProblem("checksum mismatch", key="w", file="m.data-00000-of-00001", offset=0))
    "key 'w', file m.data-00000-of-00001, offset 0: checksum mismatch"
    >>> str(VerifyProblem("m.data-00000-of-00001: key 'w': checksum mismatch at file offset 8",
    ...                   key="w", file="m.data-00000-of-00001", offset=8))
    "m.data-00000-of-00001: key 'w': checksum mismatch at file offset 8"
    >>> str(VerifyProblem("data file is missing", file="m.data", keys=tuple("abcdefg")))
    'file m.data: data file is missing: 7 keys affected: a, b, c, d, e, ... and 2 more'
    """

    message: str
    key: str | None = None
    file: str | None = None
    offset: int | None = None
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = []  # each place the message does not name already
        if self.key is not None and repr(describe_key(self.key)) not in self.message:
            parts.append(f"key {describe_key(self.key)!r}")
        if self.file and self.file not in self.message:
            parts.append(f"file {self.file}")
        if self.offset is not None and f"offset {self.offset}" not in self.message:
            parts.append(f"offset {self.offset}")
        where = ", ".join(parts)
        line = f"{where}: {self.message}" if where else self.message
        if self.keys:
            shown = ", ".join(describe_key(k) for k in self.keys[:NAMES_SHOWN])
            more = len(self.keys) - NAMES_SHOWN
            line += f": {len(self.keys)} keys affected: {shown}" + (f", ... and {more} more" if more > 0 else "")
        return line


@dataclass
class VerifyReport:
    """What :func:`verify_checkpoint` found; ``ok`` when ``problems`` is empty (notes do not
    count).

    ``problems`` and ``notes`` hold one :class:`VerifyProblem` per cause, in index order (a
    missing data file is one problem, its keys in ``VerifyProblem.keys``); ``tensors_checked``
    counts the tensors verify looked at and ``bytes_checked`` the tensor bytes it read and
    checksummed (every key, the object graph included).

    Examples
    --------
    >>> report = verify_checkpoint("examples/keras_mlp")
    >>> report.ok, report.problems, report.tensors_checked
    (True, [], 16)
    """

    prefix: str
    tensors_checked: int = 0
    bytes_checked: int = 0
    problems: list[VerifyProblem] = field(default_factory=list)
    notes: list[VerifyProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problems (notes allowed)."""
        return not self.problems


def verify_checkpoint(path: PathLike | CheckpointReader) -> VerifyReport:
    """Check everything about the checkpoint at ``path`` (or read by the reader ``path``, left
    open); never raises for damage found.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> prefix = tfckpt.save({"w": np.ones(4)}, os.path.join(tempfile.mkdtemp(), "m"))
    >>> report = verify_checkpoint(prefix)
    >>> report.ok, report.tensors_checked
    (True, 1)
    """
    if not isinstance(path, CheckpointReader):
        path_argument(path, "path")  # a wrong type is the caller's error, not a finding
    with ExitStack() as stack:
        try:
            reader = stack.enter_context(reading(path, opener=load_checkpoint))
        except TfckptError as exc:
            return VerifyReport(str(path), problems=[VerifyProblem(f"cannot open: {exc}")])
        report = VerifyReport(reader.prefix)
        stored: dict[str, TensorInfo] = {}
        for name, entry in reader.store.stored_entries():
            if isinstance(entry, TfckptError):
                report.problems.append(VerifyProblem(str(entry), name))
            else:
                stored[name] = entry
        extents: dict[int, int] = {}  # shard -> end of its last tensor
        files = {shard: path for shard, path, _ in reader.store.data_files()}
        lost: dict[int, list[str]] = {shard: [] for shard, _, size in reader.store.data_files() if size is None}
        checkable = []
        for name, info in stored.items():
            if info.slices:
                _check_partitioned(info, stored, report)
                continue
            report.tensors_checked += not name.startswith("\x00")
            extents[info.shard_id] = max(extents.get(info.shard_id, 0), info.offset + info.size)
            if info.shard_id in lost:  # one problem for the file, not one per key in it
                lost[info.shard_id].append(name)
            elif info.dtype.as_numpy_dtype is not None:  # variant / resource: opaque, no checksum to check
                checkable.append(info)
        # Values numpy cannot hold (rank over its limit, ...) are checked by streaming their
        # bytes, which builds no array; the bulk check cuts arrays out of shared buffers.
        holdable = [array_problem(info.dtype, info.shape) is None for info in checkable]
        problems: dict[str, VerifyProblem] = {}
        outcomes = itertools.chain(
            reader.store.check_many(info for info, ok in zip(checkable, holdable) if ok),
            ((info, _check_alone(reader, info)) for info, ok in zip(checkable, holdable) if not ok))
        for info, outcome in outcomes:
            if isinstance(outcome, TfckptError):
                problems[info.name] = VerifyProblem(str(outcome), info.name, files.get(info.shard_id), info.offset)
            else:
                report.bytes_checked += outcome
        report.problems += [problems[info.name] for info in checkable if info.name in problems]  # key order
        _check_data_files(reader, extents, lost, report)
        if not any(OBJECT_GRAPH_KEY == p.key or OBJECT_GRAPH_KEY in p.keys for p in report.problems):
            _check_graph(reader, report)  # a graph whose bytes are bad is that one problem, not two
    return report


def _check_alone(reader: CheckpointReader, info: TensorInfo) -> int | TfckptError:
    try:
        return reader.store.check_entry(info)
    except TfckptError as exc:
        return exc


def _check_partitioned(info: TensorInfo, stored: dict[str, TensorInfo], report: VerifyReport) -> None:
    report.tensors_checked += 1
    shape = info.shape
    problem = tiling_problem([piece.bounds(shape) for piece in info.slices], tuple((0, d) for d in shape), shape)
    if problem is not None:
        report.problems.append(VerifyProblem(problem, info.name))
    for piece in info.slices:
        part = stored.get(encode_slice_key(info.name, piece).decode("utf-8", "surrogateescape"))
        problem = slice_entry_problem(info, piece, part)
        if problem is not None:
            report.problems.append(VerifyProblem(problem, info.name))


def _check_data_files(reader: CheckpointReader, extents: dict[int, int], lost: dict[int, list[str]],
                      report: VerifyReport) -> None:
    files = reader.store.data_files()
    if reader.header.num_shards > len(files) + MAX_UNUSED_SHARDS_LISTED:  # see BundleStore.data_files
        report.notes.append(VerifyProblem(
            f"the header names {reader.header.num_shards} data files but entries use {len(files)}; only those "
            f"were looked for"))
    for shard, path, size in files:
        if size is None:
            if lost.get(shard):
                report.problems.append(VerifyProblem(_why_missing(path), file=path, keys=tuple(lost[shard])))
            else:
                report.notes.append(VerifyProblem("data file is missing, but no entry uses it", file=path))
        elif size > extents.get(shard, 0):
            end = extents.get(shard, 0)
            report.problems.append(VerifyProblem(
                f"{size - end} bytes after the last tensor (which ends at {end}): the index and this data "
                f"file look like they come from different saves", file=path, offset=end))


def _why_missing(path: str) -> str:
    """What stands where a data file should be: nothing, or something that is not a regular
    file (a FIFO, a directory: the storage layer's error says which, without blocking)."""
    fs = storage.filesystem_for(path)
    if not fs.exists(path):
        return "data file is missing"
    try:
        fs.open_source(path).close()
    except TfckptError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return "data file is missing"


def _check_graph(reader: CheckpointReader, report: VerifyReport) -> None:
    if OBJECT_GRAPH_KEY not in reader:
        return
    try:
        graph = reader.object_graph
    except TfckptError as exc:
        report.problems.append(VerifyProblem(str(exc), OBJECT_GRAPH_KEY))
        return
    assert graph is not None
    for key in unmatched_keys(graph, list(reader)):  # legacy saveables' keys have suffixes: matched too
        report.notes.append(VerifyProblem("the object graph names this key but the checkpoint has no tensor "
                                    "for it (TensorFlow writes this for a variable with no value at "
                                    "save time)", key))
